//! [`YoloxError`]: what a YOLOX model file or its output breaks of the contract (the
//! cause of a [`ModelError`](crate::model::ModelError), which names the model and, at
//! load, the file).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum YoloxError {
    #[error("expected 1 input, found {0}")]
    Inputs(usize),
    #[error("expected 1 output, found {0}")]
    Outputs(usize),
    #[error("input {name} has shape {dims:?}, expected [1, 3, H, W]")]
    InputShape { name: String, dims: Vec<i64> },
    #[error("output {name} has shape {dims:?}, expected [1, N, 5 + classes]")]
    OutputShape { name: String, dims: Vec<i64> },
    #[error("input size {width}x{height} is not a fixed multiple of 32")]
    InputSize { width: u32, height: u32 },
    #[error(
        "output has {cols} columns but {} has {labels} labels (expected 5 + labels)",
        labels_file.display()
    )]
    Columns {
        cols: i64,
        labels_file: PathBuf,
        labels: usize,
    },
    #[error("output has {rows} rows, expected {expected} for strides 8/16/32 at {width}x{height}")]
    Rows {
        rows: i64,
        expected: usize,
        width: u32,
        height: u32,
    },
    #[error("output {name} has {values} values, expected {rows} rows of {cols}")]
    OutputValues {
        name: String,
        values: usize,
        rows: usize,
        cols: usize,
    },
}
