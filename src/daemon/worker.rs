//! One camera's evaluator: run each needed model once per frame (detector on the
//! whole frame, dual encoder once per region), evaluate every query, report.

use std::sync::Arc;
use std::time::SystemTime;

use crate::model::clip::ClipImage;
use crate::model::yolox::YoloxScratch;
use crate::model::{Loaded, Registry};
use crate::query::{FrameOutputs, FrameReport, StandingQuery};
use crate::source::{CameraConfig, Frame};

/// A model output the camera's queries need, computed once per frame.
enum Need {
    Detect(Arc<str>, Arc<Loaded>),
    Embed(Arc<str>, Option<[f32; 4]>, Arc<Loaded>),
}

pub struct CameraWorker {
    camera: Arc<str>,
    queries: Vec<StandingQuery>,
    needs: Vec<Need>,
    yolox: YoloxScratch,
    clip: ClipImage,
    /// Configured queries that could not be prepared (each already logged).
    failed: usize,
}

impl CameraWorker {
    /// Prepares the camera's queries; a query that cannot run is logged (camera, query,
    /// cause) and left out, the others go on.
    pub fn new(cam: &CameraConfig, models: &Registry) -> Self {
        let mut queries = Vec::new();
        let mut needs: Vec<Need> = Vec::new();
        let mut failed = 0;
        for q in &cam.queries {
            match StandingQuery::prepare(q.clone(), models) {
                Ok(sq) => {
                    let Some(loaded) = models.get(&q.model).cloned() else {
                        continue;
                    };
                    let name: Arc<str> = Arc::from(q.model.as_str());
                    let need = if sq.needs_detections() {
                        Need::Detect(name, loaded)
                    } else {
                        Need::Embed(name, q.region, loaded)
                    };
                    let dup = needs.iter().any(|n| match (n, &need) {
                        (Need::Detect(a, _), Need::Detect(b, _)) => a == b,
                        (Need::Embed(a, ra, _), Need::Embed(b, rb, _)) => a == b && ra == rb,
                        _ => false,
                    });
                    if !dup {
                        needs.push(need);
                    }
                    queries.push(sq);
                }
                Err(e) => {
                    failed += 1;
                    tracing::error!("camera {}: query {}: {e}", cam.id, q.id)
                }
            }
        }
        Self {
            camera: Arc::from(cam.id.as_str()),
            queries,
            needs,
            yolox: YoloxScratch::default(),
            clip: ClipImage::new(),
            failed,
        }
    }

    /// How many of the camera's queries could not be prepared.
    pub fn failed_queries(&self) -> usize {
        self.failed
    }

    pub fn camera(&self) -> &Arc<str> {
        &self.camera
    }

    /// Runs the models and queries on `frame`.
    pub fn evaluate(&mut self, frame: &Frame) -> FrameReport {
        let mut outputs = FrameOutputs::default();
        let mut errors = Vec::new();
        for need in &self.needs {
            match need {
                Need::Detect(name, loaded) => {
                    if let Loaded::Yolox { model, session } = loaded.as_ref() {
                        let mut found = Vec::new();
                        match model.detect(session, frame, &mut self.yolox, &mut found) {
                            Ok(()) => outputs.detections.push((name.clone(), found)),
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                }
                Need::Embed(name, region, loaded) => {
                    if let Loaded::Clip { model, sessions } = loaded.as_ref() {
                        match model.embed_image(sessions, frame, *region, &mut self.clip) {
                            Ok(e) => outputs.embeddings.push((name.clone(), *region, e)),
                            Err(e) => errors.push(e.to_string()),
                        }
                    }
                }
            }
        }
        for e in &errors {
            tracing::warn!("camera {}: {e}", self.camera);
        }
        let now = SystemTime::now();
        let queries = self
            .queries
            .iter_mut()
            .filter_map(|q| q.evaluate(&outputs, now))
            .collect();
        // The queries have read the detections: move them into the report.
        let detections = (!outputs.detections.is_empty()).then(|| {
            outputs
                .detections
                .into_iter()
                .flat_map(|(_, d)| d)
                .collect()
        });
        tracing::trace!(camera = %self.camera, seq = frame.seq, "frame evaluated");
        FrameReport {
            camera: self.camera.clone(),
            seq: frame.seq,
            pts: frame.pts.as_secs_f64(),
            time: frame.captured,
            detections,
            queries,
            errors,
            decoded_at: frame.decoded_at,
        }
    }
}
