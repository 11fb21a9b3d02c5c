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
    /// The file could not be read.
    Read {
        /// The file of runtime queries.
        path: PathBuf,
        /// What it failed with.
        #[source]
        source: std::io::Error,
    },
    #[error("runtime queries {}: larger than its limit of {MAX_STATE_FILE_BYTES} bytes", path.display())]
    /// The file is larger than any this daemon writes.
    TooLargeToRead {
        /// The file of runtime queries.
        path: PathBuf,
    },
    #[error("runtime queries {}: {source}", path.display())]
    /// The file is not the JSON this daemon writes.
    Parse {
        /// The file of runtime queries.
        path: PathBuf,
        /// What it failed with.
        #[source]
        source: serde_json::Error,
    },
    #[error("runtime queries {}: cannot {what}: {source}", path.display())]
    /// The file could not be written.
    Write {
        /// The file of runtime queries.
        path: PathBuf,
        /// What could not be done (`write`, `replace`, ...).
        what: &'static str,
        /// What it failed with.
        #[source]
        source: std::io::Error,
    },
    #[error("runtime queries: cannot encode: {0}")]
    /// The changes could not be encoded as JSON.
    Encode(#[source] serde_json::Error),
    #[error(
        "runtime queries {} would grow to {bytes} bytes, over its limit of {MAX_STATE_FILE_BYTES}; \
         delete runtime queries first",
        path.display()
    )]
    /// The changes would make the file larger than its limit.
    TooLargeToWrite {
        /// The file of runtime queries.
        path: PathBuf,
        /// The size it would have.
        bytes: usize,
    },
}

/// Why a runtime query spec is not a valid query.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    #[error("the spec is not JSON: {0}")]
    /// The payload is not JSON.
    NotJson(#[source] serde_json::Error),
    #[error("the spec must be a JSON object with the fields of a query")]
    /// The payload is JSON, but not an object.
    NotObject,
    #[error("id {given} differs from the query id {id:?} in the topic")]
    /// The spec's `id` is not the topic's.
    IdDiffers {
        /// The `id` in the spec.
        given: String,
        /// The query id in the topic.
        id: String,
    },
    #[error("invalid spec: {0}")]
    /// The object is not a query: an unknown field, a wrong type, a missing field.
    Invalid(#[source] serde_json::Error),
    /// Every problem the checks found, joined with `; `.
    #[error("{}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Problems {
        /// Every problem found, each named by field.
        problems: Vec<Problem>,
    },
}

/// Why a query change was refused.
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    #[error("no camera {camera:?} is configured (known: {known})")]
    /// The command names a camera the config does not have.
    NoCamera {
        /// The camera the command names.
        camera: String,
        /// The configured cameras, comma-separated.
        known: String,
    },
    #[error("the spec is {bytes} bytes; a query spec may have at most {MAX_SPEC_BYTES}")]
    /// The spec is over the size limit; it was not parsed.
    TooLarge {
        /// The spec's size in bytes.
        bytes: usize,
    },
    #[error("camera {camera} has no query {query:?} to delete")]
    /// An empty payload (delete) for a query the camera does not have.
    NoQuery {
        /// The camera's id.
        camera: String,
        /// The query to delete.
        query: String,
    },
    #[error(transparent)]
    /// The spec is not a valid query.
    Spec(#[from] SpecError),
    #[error(
        "camera {camera} already runs {queries} queries, the most one camera may run; delete one first"
    )]
    /// The camera already runs the most queries one camera may.
    TooManyQueries {
        /// The camera's id.
        camera: String,
        /// How many queries it runs.
        queries: usize,
    },
    #[error("camera {camera} already has {MAX_SLOW_QUERIES} slow queries")]
    /// The camera already has the most slow queries its lane takes.
    TooManySlow {
        /// The camera's id.
        camera: String,
    },
    #[error(
        "camera {camera}: too many query changes (at most {CHANGE_BURST} at once, then one every {}); try again in {wait_s:.1} s",
        humantime::format_duration(CHANGE_EVERY)
    )]
    /// The camera's changes come faster than its rate allows.
    TooFast {
        /// The camera's id.
        camera: String,
        /// Seconds until the next change is taken.
        wait_s: f64,
    },
    /// The file of runtime queries could not be read at the start and was kept.
    #[error(
        "runtime queries {} could not be read at the start and are kept: fix or remove the file",
        path.display()
    )]
    Blocked {
        /// The file of runtime queries.
        path: PathBuf,
    },
    #[error(transparent)]
    /// The change could not be saved.
    State(#[from] StateError),
    #[error(transparent)]
    /// The query cannot run on its model.
    Bind(#[from] BindError),
    #[error("camera {camera} is busy: {MAX_PENDING_CHANGES} query changes are already waiting")]
    /// Too many of the camera's changes already wait for their turn.
    Busy {
        /// The camera's id.
        camera: String,
    },
    #[error("binding the query to its model failed (panic)")]
    /// Binding the query to its model panicked.
    BindPanicked,
}
