//! [`Detection`]: one object a detector (YOLOX) or a slow model (Florence-2) found in
//! a frame, as it is published.

use std::sync::Arc;

use serde::Serialize;

/// One detected object; `bbox` is normalised `[x0, y0, x1, y1]` in the frame.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    #[serde(skip)]
    pub class: usize,
    pub label: Arc<str>,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// The model that found it, for detections of slow models (florence2) that share
    /// the camera's detections topic with the per-frame detector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<Arc<str>>,
}
