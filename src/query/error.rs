//! Why a query cannot be bound to its model.

use crate::model::ModelError;

/// Why a query cannot run on its model (said when the query is set: config, MQTT or
/// HTTP, and logged for a camera's query that cannot start).
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    /// The model is configured but failed to load.
    #[error("model {model} is not loaded: {why}")]
    NotLoaded {
        /// The model's name.
        model: String,
        /// Why it failed to load, as the registry recorded it.
        why: String,
    },
    /// No `[models.<name>]` has the query's model name.
    #[error("model {model} is not configured")]
    NotConfigured {
        /// The model's name.
        model: String,
    },
    /// A detector query's `label` is not one of the detector's classes.
    #[error("label {label:?} is not one of model {model}'s classes")]
    UnknownLabel {
        /// The label asked for.
        label: String,
        /// The detector's name.
        model: String,
    },
    /// The model's family does not answer the query's kind.
    #[error("model {model} cannot answer {kind} queries")]
    Cannot {
        /// The model's name.
        model: String,
        /// The query's kind.
        kind: &'static str,
    },
    /// An embedder query was bound without its examples (a bug of the caller).
    #[error("model {model} answers from examples only, and the query has no lesson")]
    NoLesson {
        /// The model's name.
        model: String,
    },
    /// The query's examples could not be opened.
    #[error(transparent)]
    Teach(#[from] crate::teach::TeachError),
    /// A read query's `pattern` does not compile within its size limit.
    #[error("pattern: {0}")]
    Pattern(#[source] regex::Error),
    /// Embedding a prompt, or checking its length, failed in the model.
    #[error(transparent)]
    Model(#[from] ModelError),
}
