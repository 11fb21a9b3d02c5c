//! What one evaluated frame produced: the camera's detections and every query's
//! answer. Printed by `ocellus ask`, published by the daemon. Reports are pooled per
//! camera: the publisher drops a [`Pooled`] report, which goes back to its pool with
//! its buffers, so the steady state allocates none.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use serde::{Serialize, Serializer};

use super::Evaluation;
use crate::model::Detection;

/// Where a frame's model outputs came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Inference {
    /// At least one model ran on this frame.
    Encoded,
    /// Every output came from the embedding cache.
    Cached,
    /// The gate found the frame unchanged: the last outputs were reused.
    Reused,
}

#[derive(Debug, Clone, Serialize)]
/// Everything one evaluated frame produced for its camera: published as one batch of MQTT messages, then returned to its pool.
pub struct FrameReport {
    /// The camera's id.
    pub camera: Arc<str>,
    /// The frame's per-camera sequence number.
    pub seq: u64,
    /// Presentation time in seconds (position in a file).
    pub pts: f64,
    /// Wall-clock time the frame was decoded.
    #[serde(serialize_with = "rfc3339")]
    pub time: SystemTime,
    /// How the answers were had: a fresh encode, reused outputs, ...
    pub inference: Inference,
    /// The change gate's score for this frame (0..1).
    pub change: f32,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The frame's detections, when a detector query ran.
    pub detections: Option<Vec<Detection>>,
    /// Each query's outcome on the frame.
    pub queries: Vec<Evaluation>,
    /// Captions made for this frame (caption queries, published retained on
    /// `<cam>/caption`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub captions: Vec<Caption>,
    /// Frames a query was unsure about, for a person to label (published on
    /// `<cam>/review`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reviews: Vec<Arc<crate::teach::ReviewItem>>,
    /// The picture behind this frame's alerts (published on `<cam>/snapshot`).
    #[serde(skip)]
    pub snapshot: Option<crate::snapshot::Snapshot>,
    /// Model failures on this frame, one line each.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<String>,
    #[serde(skip)]
    /// When the frame left the decoder (frame-to-MQTT latency).
    pub decoded_at: Instant,
}

impl FrameReport {
    /// An empty report for `camera`.
    pub fn new(camera: Arc<str>) -> Self {
        Self {
            camera,
            seq: 0,
            pts: 0.0,
            time: SystemTime::UNIX_EPOCH,
            inference: Inference::Encoded,
            change: 0.0,
            detections: None,
            queries: Vec::new(),
            captions: Vec::new(),
            reviews: Vec::new(),
            snapshot: None,
            errors: Vec::new(),
            decoded_at: Instant::now(),
        }
    }
}

/// A caption query's text.
#[derive(Debug, Clone, Serialize)]
pub struct Caption {
    /// The caption query's id.
    pub query: Arc<str>,
    /// The model that wrote it.
    pub model: Arc<str>,
    /// The caption.
    pub text: Arc<str>,
}

/// RFC 3339 with milliseconds, UTC.
pub fn rfc3339<S: Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_rfc3339_millis(*t))
}

/// Reports of one camera, recycled.
pub struct ReportPool {
    camera: Arc<str>,
    tx: Sender<Box<FrameReport>>,
    rx: Receiver<Box<FrameReport>>,
}

impl ReportPool {
    /// A pool keeping up to `keep` idle reports.
    pub fn new(camera: Arc<str>, keep: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(keep.max(1));
        Self { camera, tx, rx }
    }

    /// An idle report (a new one when all are in use).
    pub fn take(&self) -> Pooled {
        let report = self
            .rx
            .try_recv()
            .unwrap_or_else(|_| Box::new(FrameReport::new(self.camera.clone())));
        Pooled {
            report: Some(report),
            home: self.tx.clone(),
        }
    }
}

/// A report on loan from its pool; dropping it returns it.
pub struct Pooled {
    report: Option<Box<FrameReport>>,
    home: Sender<Box<FrameReport>>,
}

impl Deref for Pooled {
    type Target = FrameReport;
    fn deref(&self) -> &FrameReport {
        self.report
            .as_deref()
            .unwrap_or_else(|| unreachable!("report taken"))
    }
}

impl DerefMut for Pooled {
    fn deref_mut(&mut self) -> &mut FrameReport {
        self.report
            .as_deref_mut()
            .unwrap_or_else(|| unreachable!("report taken"))
    }
}

impl Drop for Pooled {
    fn drop(&mut self) {
        if let Some(r) = self.report.take() {
            let _ = self.home.try_send(r);
        }
    }
}

impl std::fmt::Debug for Pooled {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_dropped_report_comes_back_with_its_buffers() {
        let pool = ReportPool::new(Arc::from("cam"), 2);
        let mut r = pool.take();
        r.queries.reserve(10);
        r.seq = 7;
        let ptr = r.queries.as_ptr();
        drop(r);
        let again = pool.take();
        assert_eq!((again.seq, again.queries.as_ptr()), (7, ptr));
    }
}
