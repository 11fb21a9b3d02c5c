//! [`PpocrError`]: what PP-OCR's model files or outputs break of the contract (the
//! cause of a [`ModelError`](crate::model::ModelError), which names the model and, at
//! load, the file).

#[derive(Debug, thiserror::Error)]
pub enum PpocrError {
    #[error("expected one input and one output")]
    Io,
    #[error("file not found, and the rec model has no 'character' metadata")]
    NoKeys,
    #[error(
        "{characters} characters + blank + space = {total}, but the rec model has {classes} classes"
    )]
    Classes {
        characters: usize,
        total: usize,
        classes: i64,
    },
    #[error("det output has {values} values, expected {expected}")]
    DetValues { values: usize, expected: usize },
    #[error("rec output has shape {0:?}")]
    RecShape(Vec<usize>),
    #[error("rec output has shape {shape:?}, expected [{lines}, steps, {classes}]")]
    RecClasses {
        shape: Vec<usize>,
        lines: usize,
        classes: usize,
    },
    /// A run of one of the three models (`det`, `cls`, `rec`) failed.
    #[error("{step}: {source}")]
    Step {
        step: &'static str,
        #[source]
        source: ort::Error,
    },
    #[error("{step}: no output {output}")]
    NoOutput { step: &'static str, output: String },
}
