//! What can go wrong with a model: [`ModelError`], one line naming the model (and, at
//! load, the file), with what caused it kept as the error's source; [`RunError`], why
//! one ONNX run under a [`Cancel`](super::Cancel) failed; and [`TokenizerError`], the
//! failures of the tokenizers the families share.
//!
//! ```
//! use ocellus::model::{ModelError, TokenizerError};
//! use std::error::Error;
//! let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file");
//! let e = ModelError::load("people", "/m/labels.txt".as_ref(), io);
//! assert_eq!(e.to_string(), "model people: /m/labels.txt: No such file");
//! assert_eq!(e.source().unwrap().to_string(), "No such file");
//! let e = ModelError::run("vqa", TokenizerError::Text("bad id".into()));
//! assert_eq!(e.to_string(), "model vqa: tokenizer: bad id");
//! ```

use std::path::{Path, PathBuf};

use crate::engine::EngineError;

/// The cause of a [`ModelError`]: a family's own error (what a file or an output
/// breaks of the family's contract), or the I/O, JSON, tokenizer or ONNX Runtime error
/// behind it. Boxed, so that this file needs none of the families'.
pub type Cause = Box<dyn std::error::Error + Send + Sync>;

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    /// A file of the model cannot be read, or breaks the family's contract.
    #[error("model {model}: {}: {source}", file.display())]
    Load {
        model: String,
        file: PathBuf,
        #[source]
        source: Cause,
    },
    /// A call failed: an ONNX run, the tokenizer, or outputs unlike the contract.
    #[error("model {model}: {source}")]
    Run {
        model: String,
        #[source]
        source: Cause,
    },
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
    /// A per-frame model (YOLOX, CLIP) asked to run on the slow lane.
    #[error("model {model}: not a slow model")]
    NotSlow { model: String },
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

/// A tokenizer's failure (`tokenizers` reports its errors boxed).
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// `tokenizer.json` cannot be read, or set up as the model needs.
    #[error(transparent)]
    File(tokenizers::Error),
    /// Text that cannot be encoded, or ids that cannot be decoded.
    #[error("tokenizer: {0}")]
    Text(#[source] tokenizers::Error),
}

impl ModelError {
    /// `file` of `model` could not be used, because of `source`.
    pub fn load(
        model: &str,
        file: &Path,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        ModelError::Load {
            model: model.into(),
            file: file.to_path_buf(),
            source: Box::new(source),
        }
    }

    /// A call of `model` failed, because of `source`.
    pub fn run(model: &str, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        ModelError::Run {
            model: model.into(),
            source: Box::new(source),
        }
    }

    /// The error of `model`'s run that failed with `e`.
    pub fn of_run(model: &str, e: RunError) -> Self {
        match e {
            RunError::Cancelled => ModelError::Cancelled {
                model: model.into(),
            },
            RunError::Ort(e) => ModelError::run(model, e),
        }
    }

    /// True for a call stopped by its [`Cancel`](super::Cancel).
    pub fn is_cancelled(&self) -> bool {
        matches!(self, ModelError::Cancelled { .. })
    }
}
