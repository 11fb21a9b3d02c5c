//! [`ReviewItem`]: a frame a taught query was unsure about (its confidence under the
//! query's `review_below`), kept so that a person can label exactly that picture.

use std::sync::Arc;
use std::time::SystemTime;

use serde::Serialize;

use crate::model::clip::Embedding;

/// An uncertain answer's picture, waiting for a person's label.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewItem {
    /// Unique within the daemon's run: `r-<UTC time>-<n>`.
    pub id: Arc<str>,
    /// The camera's id.
    pub camera: Arc<str>,
    /// The query's id.
    pub query: Arc<str>,
    /// The question.
    pub ask: Arc<str>,
    /// The query's answer on the frame (`None` while it had none).
    pub answer: Option<String>,
    /// The probability of that answer.
    pub confidence: f32,
    /// When the frame was decoded.
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// The region the crop is of.
    pub region: Option<[f32; 4]>,
    /// The crop as a JPEG.
    #[serde(skip)]
    pub jpeg: Arc<[u8]>,
    /// The crop's embedding (what a label of it trains on).
    #[serde(skip)]
    pub embedding: Embedding,
}

fn rfc3339<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}
