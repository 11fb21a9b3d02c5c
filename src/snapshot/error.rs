//! What can go wrong making a snapshot: one line each (the text an alert's report
//! carries), the cause kept as its `source`.

use std::path::PathBuf;

use crate::engine::EngineError;

/// A snapshot could not be made or written.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// No frame with pixels has been kept yet for the camera.
    #[error("no frame yet")]
    NoFrame,
    /// The frame's pixels could not be read (a buffer shorter than its layout).
    #[error("snapshot: {0}")]
    Frame(#[from] EngineError),
    /// An I420 frame offered no I420 view (its format and layout disagree).
    #[error("snapshot: not an I420 frame")]
    NotI420,
    /// The frame is wider than a JPEG can be (65535 pixels).
    #[error("snapshot: frame too wide for JPEG")]
    TooWide,
    /// The frame is taller than a JPEG can be (65535 pixels).
    #[error("snapshot: frame too tall for JPEG")]
    TooTall,
    /// The JPEG encoder failed.
    #[error("snapshot: JPEG: {0}")]
    Jpeg(#[source] jpeg_encoder::EncodingError),
    /// The camera's snapshot folder could not be created, written, listed or pruned.
    #[error("snapshot folder {}: {source}", dir.display())]
    Folder {
        /// The camera's snapshot folder.
        dir: PathBuf,
        /// The file-system error.
        #[source]
        source: std::io::Error,
    },
}
