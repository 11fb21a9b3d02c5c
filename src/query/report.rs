//! What one evaluated frame produced: the camera's detections and every query's
//! answer. Printed by `ocellus ask`, published by the daemon.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use serde::{Serialize, Serializer};

use super::Evaluation;
use crate::model::Detection;

#[derive(Debug, Clone, Serialize)]
pub struct FrameReport {
    pub camera: Arc<str>,
    pub seq: u64,
    /// Presentation time in seconds (position in a file).
    pub pts: f64,
    /// Wall-clock time the frame was decoded.
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detections: Option<Vec<Detection>>,
    pub queries: Vec<Evaluation>,
    /// Model failures on this frame, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(skip)]
    pub decoded_at: Instant,
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}
