//! What can go wrong with a model: [`ModelError`], one line naming the model (and, at
//! load, the file); and [`RunError`], why one ONNX run under a
//! [`Cancel`](super::Cancel) failed.

use std::path::PathBuf;

use crate::engine::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {model}: {}: {cause}", file.display())]
    Load {
        model: String,
        file: PathBuf,
        cause: String,
    },
    #[error("model {model}: {cause}")]
    Run { model: String, cause: String },
    /// Stopped by its [`Cancel`](super::Cancel) (the slow lane is closing).
    #[error("model {model}: cancelled")]
    Cancelled { model: String },
    /// A prompt longer than the model takes, refused before any ONNX work.
    #[error("model {model}: {what} has {tokens} tokens, more than the {limit} it may have")]
    TooLong {
        model: String,
        what: &'static str,
        tokens: usize,
        limit: usize,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Why a run under a [`Cancel`](super::Cancel) failed.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cancelled")]
    Cancelled,
    #[error(transparent)]
    Ort(#[from] ort::Error),
}

impl ModelError {
    /// The error of `model`'s run that failed with `e`.
    pub fn of_run(model: &str, e: RunError) -> Self {
        match e {
            RunError::Cancelled => ModelError::Cancelled {
                model: model.into(),
            },
            RunError::Ort(e) => ModelError::Run {
                model: model.into(),
                cause: e.to_string(),
            },
        }
    }

    /// True for a call stopped by its [`Cancel`](super::Cancel).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ModelError::Cancelled { .. })
    }
}
