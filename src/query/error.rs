//! Why a query cannot be bound to its model.

use crate::model::ModelError;

/// Why a query cannot run on its model (said when the query is set: config, MQTT or
/// HTTP, and logged for a camera's query that cannot start).
#[derive(Debug, thiserror::Error)]
pub enum BindError {
    #[error("model {model} is not loaded: {why}")]
    NotLoaded { model: String, why: String },
    #[error("model {model} is not configured")]
    NotConfigured { model: String },
    #[error("label {label:?} is not one of model {model}'s classes")]
    UnknownLabel { label: String, model: String },
    #[error("model {model} cannot answer {kind} queries")]
    Cannot { model: String, kind: &'static str },
    #[error("pattern: {0}")]
    Pattern(#[source] regex::Error),
    /// Embedding a prompt, or checking its length, failed in the model.
    #[error(transparent)]
    Model(#[from] ModelError),
}
