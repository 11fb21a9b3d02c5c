//! [`TeachError`]: why an example could not be added, stored or read — one line
//! naming the camera, query, state, file or id.

use std::path::PathBuf;

use crate::model::ModelError;

/// Why labelling or loading examples failed.
#[derive(Debug, thiserror::Error)]
pub enum TeachError {
    /// The state is not one of the query's.
    #[error(
        "camera {camera}: query {query}: {state} is not a state of the query (states: {states})"
    )]
    UnknownState {
        /// The camera's id.
        camera: String,
        /// The query's id.
        query: String,
        /// The state given.
        state: String,
        /// The query's states, comma-separated.
        states: String,
    },
    /// The query's kind cannot be taught (only yes_no and classify).
    #[error(
        "camera {camera}: query {query}: {kind} queries on model {model} cannot be taught (yes_no and classify on clip or embedder models can)"
    )]
    NotTeachable {
        /// The camera's id.
        camera: String,
        /// The query's id.
        query: String,
        /// The query's kind.
        kind: &'static str,
        /// The query's model.
        model: String,
    },
    /// The query already has as many examples as `[teach] max_examples` allows.
    #[error(
        "camera {camera}: query {query}: already {max} examples, the most [teach] max_examples allows; forget some first"
    )]
    Full {
        /// The camera's id.
        camera: String,
        /// The query's id.
        query: String,
        /// The bound.
        max: usize,
    },
    /// No example of that id.
    #[error("camera {camera}: query {query}: no example {id}")]
    NoExample {
        /// The camera's id.
        camera: String,
        /// The query's id.
        query: String,
        /// The id asked for.
        id: String,
    },
    /// No review item of that id (answered already, or pushed out of the bounded list).
    #[error("camera {camera}: no review item {id} (answered already, or no longer kept)")]
    NoReview {
        /// The camera's id.
        camera: String,
        /// The id asked for.
        id: String,
    },
    /// No kept frame for that event (not a taught query's, or pushed out of the
    /// bounded list).
    #[error(
        "camera {camera}: no frame kept for event {id} (not a taught query's, or no longer kept)"
    )]
    NoEvent {
        /// The camera's id.
        camera: String,
        /// The event id asked for.
        id: String,
    },
    /// A label message that is not a label.
    #[error("label: {0}")]
    Label(String),
    /// No lesson is open for the camera's query: no such camera or query, a query
    /// that is not yes_no or classify, or a model that does not embed images.
    #[error(
        "camera {camera}: query {query} cannot be taught here (no such running query, or not a yes_no/classify query on a clip or embedder model)"
    )]
    NotTaught {
        /// The camera's id.
        camera: String,
        /// The query's id.
        query: String,
    },
    /// The camera has not delivered a frame yet.
    #[error("camera {camera}: no frame yet to label")]
    NoFrame {
        /// The camera's id.
        camera: String,
    },
    /// The frame cannot be cropped or encoded.
    #[error("frame: {0}")]
    Frame(String),
    /// An image (an upload, a file of an examples folder, a stored crop) cannot be decoded.
    #[error("{}: {why}", file.display())]
    Image {
        /// The file.
        file: PathBuf,
        /// Why.
        why: String,
    },
    /// An image or clip gave no frame.
    #[error(transparent)]
    Media(#[from] crate::source::StillError),
    /// A file of the store cannot be read or written.
    #[error("{}: {source}", file.display())]
    Io {
        /// The file or folder.
        file: PathBuf,
        /// The error.
        #[source]
        source: std::io::Error,
    },
    /// A stored example is not valid JSON of an example.
    #[error("{}: {source}", file.display())]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// The parser's error.
        #[source]
        source: serde_json::Error,
    },
    /// The model failed to embed the picture.
    #[error(transparent)]
    Model(#[from] ModelError),
    /// The model does not embed images (not clip or embedder).
    #[error("model {0} does not embed images")]
    NoEmbedder(String),
}

impl TeachError {
    /// An I/O error on `file`.
    pub fn io(file: impl Into<PathBuf>, source: std::io::Error) -> Self {
        TeachError::Io {
            file: file.into(),
            source,
        }
    }
}
