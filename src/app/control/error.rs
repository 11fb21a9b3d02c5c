//! Why a runtime query change was refused, and why the file that keeps the runtime
//! queries could not be read or written. The text of each is what the client sees
//! (on `.../query/<q>/error` over MQTT, in the HTTP reply), cut to one line.

use std::path::PathBuf;

use super::limits::{
    CHANGE_BURST, CHANGE_EVERY, MAX_PENDING_CHANGES, MAX_SPEC_BYTES, MAX_STATE_FILE_BYTES,
};
use crate::eval::slow::MAX_SLOW_QUERIES;
use crate::kit::Problem;
use crate::query::BindError;

/// Why `<state_dir>/queries.json` could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("runtime queries {}: cannot read: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("runtime queries {}: larger than its limit of {MAX_STATE_FILE_BYTES} bytes", path.display())]
    TooLargeToRead { path: PathBuf },
    #[error("runtime queries {}: {source}", path.display())]
    Parse {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("runtime queries {}: cannot {what}: {source}", path.display())]
    Write {
        path: PathBuf,
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("runtime queries: cannot encode: {0}")]
    Encode(#[source] serde_json::Error),
    #[error(
        "runtime queries {} would grow to {bytes} bytes, over its limit of {MAX_STATE_FILE_BYTES}; \
         delete runtime queries first",
        path.display()
    )]
    TooLargeToWrite { path: PathBuf, bytes: usize },
}

/// Why a runtime query spec is not a valid query.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the spec is not JSON: {0}")]
    NotJson(#[source] serde_json::Error),
    #[error("the spec must be a JSON object with the fields of a query")]
    NotObject,
    #[error("id {given} differs from the query id {id:?} in the topic")]
    IdDiffers { given: String, id: String },
    #[error("invalid spec: {0}")]
    Invalid(#[source] serde_json::Error),
    /// Every problem the checks found, joined with `; `.
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Problems { problems: Vec<Problem> },
}

/// Why a query change was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("no camera {camera:?} is configured (known: {known})")]
    NoCamera { camera: String, known: String },
    #[error("the spec is {bytes} bytes; a query spec may have at most {MAX_SPEC_BYTES}")]
    TooLarge { bytes: usize },
    #[error("camera {camera} has no query {query:?} to delete")]
    NoQuery { camera: String, query: String },
    #[error(transparent)]
    Spec(#[from] SpecError),
    #[error(
        "camera {camera} already runs {queries} queries, the most one camera may run; delete one first"
    )]
    TooManyQueries { camera: String, queries: usize },
    #[error("camera {camera} already has {MAX_SLOW_QUERIES} slow queries")]
    TooManySlow { camera: String },
    #[error(
        "camera {camera}: too many query changes (at most {CHANGE_BURST} at once, then one every {}); try again in {wait_s:.1} s",
        humantime::format_duration(CHANGE_EVERY)
    )]
    TooFast { camera: String, wait_s: f64 },
    /// The file of runtime queries could not be read at the start and was kept.
    #[error(
        "runtime queries {} could not be read at the start and are kept: fix or remove the file",
        path.display()
    )]
    Blocked { path: PathBuf },
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Bind(#[from] BindError),
    #[error("camera {camera} is busy: {MAX_PENDING_CHANGES} query changes are already waiting")]
    Busy { camera: String },
    #[error("binding the query to its model failed (panic)")]
    BindPanicked,
}
