//! What a call to a served model can meet: the server's answers (an HTTP status with
//! its error message), the transport (a timeout, a refused connection), a reply unlike
//! the dialect's documented shape, and ocellus' own refusals (the hourly budget is
//! spent, the circuit breaker has the model marked unavailable).

use std::time::Duration;

/// Why a call to a served model gave no answer.
#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    /// The server answered with an error status (the first line of its message kept).
    #[error("{url}: HTTP {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
        /// `Retry-After` of a 429 or 503, when the server sent one.
        retry_after: Option<Duration>,
    },
    /// No answer within `timeout`.
    #[error("{url}: no answer within {:?}", timeout)]
    Timeout { url: String, timeout: Duration },
    /// The server cannot be reached (refused, reset, no route, DNS).
    #[error("{url}: {source}")]
    Transport {
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// The reply is not what the dialect documents (not JSON, no choices, no content,
    /// a JSON answer outside its schema).
    #[error("{url}: malformed reply: {what}")]
    Malformed { url: String, what: String },
    /// The hourly call budget is spent; the call was not made.
    #[error(
        "the budget of {limit} calls an hour is spent (next call in {:.0?})",
        wait
    )]
    OverBudget { limit: u32, wait: Duration },
    /// The circuit breaker marks the model unavailable; the call was not made.
    #[error(
        "unavailable after {failures} failed calls in a row (next probe in {:.0?}): {last}",
        retry_in
    )]
    Unavailable {
        failures: u32,
        retry_in: Duration,
        last: String,
    },
    /// The slow lane is closing.
    #[error("cancelled")]
    Cancelled,
    /// The API key cannot be read.
    #[error("api_key_file {path}: {source}")]
    Key {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl RemoteError {
    /// Whether another try of the same call may succeed: 408, 429, 5xx, a timeout or
    /// a transport failure. A 4xx (a bad request, a wrong key or model) never does.
    pub fn is_transient(&self) -> bool {
        match self {
            RemoteError::Status { status, .. } => {
                *status == 408 || *status == 429 || *status >= 500
            }
            RemoteError::Timeout { .. } | RemoteError::Transport { .. } => true,
            _ => false,
        }
    }

    /// Whether the call reached the server and failed there or on the way: these
    /// count towards the circuit breaker (a malformed reply does too: a server that
    /// answers garbage is as unusable as a dead one). ocellus' own refusals do not.
    pub fn counts_as_failure(&self) -> bool {
        !matches!(
            self,
            RemoteError::OverBudget { .. }
                | RemoteError::Unavailable { .. }
                | RemoteError::Cancelled
                | RemoteError::Key { .. }
        )
    }
}
