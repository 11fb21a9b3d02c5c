//! What can go wrong building a camera's pipeline: one line each, the cause kept as
//! its `source`.

use gstreamer::glib;

/// A camera's pipeline could not be built.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("not a usable path: {0}")]
    Uri(#[source] glib::Error),
    #[error("GStreamer element {factory} is missing (install the GStreamer plugins)")]
    MissingElement {
        factory: &'static str,
        #[source]
        source: glib::BoolError,
    },
    #[error("cannot assemble pipeline: {0}")]
    Assemble(#[source] glib::BoolError),
    #[error("cannot link pipeline: {0}")]
    Link(#[source] glib::BoolError),
}
