//! Why the publisher could not start.

#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("{0}")]
    Config(String),
}
