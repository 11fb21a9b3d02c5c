//! What can go wrong making a snapshot: one line each (the text an alert's report
//! carries), the cause kept as its `source`.

use std::path::PathBuf;

use crate::engine::EngineError;

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("no frame yet")]
    NoFrame,
    #[error("snapshot: {0}")]
    Frame(#[from] EngineError),
    #[error("snapshot: not an I420 frame")]
    NotI420,
    #[error("snapshot: frame too wide for JPEG")]
    TooWide,
    #[error("snapshot: frame too tall for JPEG")]
    TooTall,
    #[error("snapshot: JPEG: {0}")]
    Jpeg(#[source] jpeg_encoder::EncodingError),
    #[error("snapshot folder {}: {source}", dir.display())]
    Folder {
        dir: PathBuf,
        #[source]
        source: std::io::Error,
    },
}
