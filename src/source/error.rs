//! What can go wrong building a camera's pipeline: one line each, the cause kept as
//! its `source`.

use gstreamer::glib;

/// A camera's pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// A plain path that GStreamer cannot turn into a `file://` URI.
    #[error("not a usable path: {0}")]
    Uri(#[source] glib::Error),
    /// A GStreamer element the pipeline needs is not installed.
    #[error("GStreamer element {factory} is missing (install the GStreamer plugins)")]
    MissingElement {
        /// The element factory that could not be made (e.g. `videoflip`).
        factory: &'static str,
        /// GStreamer's error.
        #[source]
        source: glib::BoolError,
    },
    /// An element could not be added to the pipeline.
    #[error("cannot assemble pipeline: {0}")]
    Assemble(#[source] glib::BoolError),
    /// The elements could not be linked (converter to appsink).
    #[error("cannot link pipeline: {0}")]
    Link(#[source] glib::BoolError),
}
