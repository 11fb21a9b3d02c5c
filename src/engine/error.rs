//! What can go wrong in the engine: loading ONNX Runtime, opening a model's session,
//! running it, and resizing frames into its input. Each error is one line naming the
//! library, model or image; the cause it wraps is its `source`.

use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(
        "ONNX Runtime library {}: not found (run deploy/setup.sh, or set ORT_DYLIB_PATH)",
        path.display()
    )]
    LibraryMissing { path: PathBuf },
    #[error("ONNX Runtime library {}: {source}", path.display())]
    LibraryLoad {
        path: PathBuf,
        #[source]
        source: ort::LoadDynamicError,
    },
    #[error("ONNX Runtime library {}: {source}", path.display())]
    Library {
        path: PathBuf,
        #[source]
        source: ort::Error,
    },
    #[error("model {model}: {}: file not found", file.display())]
    ModelMissing { model: String, file: PathBuf },
    /// Every provider was skipped or failed; `skipped` says why, provider by
    /// provider, and `source` is the last provider's failure, if one was tried.
    #[error("model {model}: {}: no provider could run it ({skipped})", file.display())]
    NoProvider {
        model: String,
        file: PathBuf,
        skipped: String,
        #[source]
        source: Option<ort::Error>,
    },
    #[error("model {model}: inference failed: {source}")]
    Run {
        model: String,
        #[source]
        source: RunError,
    },
    #[error("image resize: {0}")]
    Resize(String),
}

/// Why a model could not be run (the model is named by [`EngineError::Run`]).
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("the model needs an input and an output{}", named.as_ref().map(|o| format!(" named {o}")).unwrap_or_default())]
    NoInputOrOutput { named: Option<String> },
    #[error("input {input} has no batch dimension")]
    NoBatchDimension { input: String },
    #[error("input {input} has shape {dims:?}; only the batch dimension may vary")]
    VaryingShape { input: String, dims: Vec<i64> },
    #[error("cannot start the engine thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error("input has {got} values, the model's {input} takes {want} ({shape:?})")]
    InputLength {
        got: usize,
        input: String,
        want: usize,
        shape: Vec<usize>,
    },
    #[error("the engine thread has stopped")]
    Stopped,
    #[error("cannot allocate a request's tensors: {0}")]
    Buffers(#[source] ort::Error),
    /// The batch this request ran in failed (every request of it gets the error).
    #[error(transparent)]
    Batch(Arc<BatchError>),
}

/// Why one batch run failed, on the engine thread.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("{0}")]
    Ort(#[from] ort::Error),
    #[error("output {output} has {values} values for a batch of {batch}")]
    OutputLength {
        output: String,
        values: usize,
        batch: usize,
    },
}
