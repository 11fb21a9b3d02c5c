//! Why the publisher could not start.

/// The publisher could not start.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The `[mqtt]` config is unusable (bad URL, unreadable password or TLS file); the
    /// text names the key.
    #[error("{0}")]
    Config(String),
}
