//! One camera's evaluator: for a frame the gate let through, run each needed model
//! once (detector on the whole frame, dual encoder once per region unless the
//! embedding cache has that region already), then evaluate every query; for a frame
//! the gate found unchanged, evaluate the queries on the last outputs. Everything is
//! written into reused buffers and a pooled report.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use crate::cache::{EmbeddingCache, Key};
use crate::engine::BatchClient;
use crate::kit::metrics::CameraMetrics;
use crate::kit::shutdown::Shutdown;
use crate::kit::watchdog::{Heartbeat, Watchdog};
use crate::kit::{Cells, RateLimits, Verdict};
use crate::kit::{Frame, LiveFrame, Pixels, Sample};
use crate::model::clip::ClipImage;
use crate::model::yolox::YoloxScratch;
use crate::model::{Loaded, Registry, StepTimes};
use crate::query::{FrameOutputs, FrameReport, Inference, Pooled, QueryConfig, StandingQuery};
use crate::snapshot::{Region, SnapshotConfig, Snapshotter};
use crate::source::CameraConfig;
use crate::teach::{FrameSlot, Lessons, ReviewItem};

use super::slow::{self as generative, Cadence, SlowLane, SlowQueries};

/// Where the camera's slow queries run.
enum Slow {
    /// None configured.
    Off,
    /// On the evaluator's thread, into the frame's own report (`ocellus ask`).
    Inline(Box<SlowQueries>),
    /// On the camera's slow lane (the daemon).
    Lane(SlowLane),
}

/// A model output the camera's queries need, computed once per encoded frame into
/// slot `slot` of the outputs.
enum Need {
    Detect {
        slot: usize,
        loaded: Arc<Loaded>,
        engine: BatchClient,
    },
    Embed {
        slot: usize,
        region: Option<[f32; 4]>,
        cells: Cells,
        key: Key,
        loaded: Arc<Loaded>,
        engine: BatchClient,
    },
}

/// What the worker shares with the rest of the daemon.
#[derive(Clone)]
pub struct WorkerContext {
    /// Image embeddings shared by every camera (keyed by camera, model and region).
    pub cache: Arc<EmbeddingCache>,
    /// The camera's counters.
    pub metrics: Arc<CameraMetrics>,
    /// Taught queries' examples, last frames and review items.
    pub lessons: Arc<Lessons>,
}

/// One camera's evaluator: runs the models its queries need on a sampled frame and
/// evaluates every query into a pooled report.
pub struct CameraWorker {
    camera: Arc<str>,
    queries: Vec<StandingQuery>,
    needs: Vec<Need>,
    /// Outputs of the last encoded frame (reused for unchanged frames).
    outputs: FrameOutputs,
    has_outputs: bool,
    has_detector: bool,
    yolox: YoloxScratch,
    clip: ClipImage,
    cache: Arc<EmbeddingCache>,
    /// Fingerprints closer than this are the same picture (the change threshold).
    tolerance: f32,
    max_staleness: Duration,
    metrics: Arc<CameraMetrics>,
    /// Configured queries that could not be prepared (each already logged).
    failed: usize,
    slow: Slow,
    cadences: Vec<Cadence>,
    snapshots: Option<Snapshotter>,
    /// The regions of the camera's queries (drawn on snapshots).
    regions: Vec<Region>,
    /// The configs of the slow queries (a runtime change restarts the lane only when
    /// these change).
    slow_configs: Vec<QueryConfig>,
    /// How a slow lane is started again after a runtime change.
    lane: Option<(Shutdown, Emit)>,
    /// Watches the slow lane's loop (set by the daemon).
    watchdog: Option<Arc<Watchdog>>,
    lessons: Arc<Lessons>,
    /// Where the last frame is kept for labelling, when a query is taught.
    frame_slot: Option<Arc<FrameSlot>>,
    /// The camera's live picture, for the people watching it.
    live: Option<Arc<LiveFrame>>,
    /// Each fast query's escalation bit in the slow lane's due mask.
    escalation_bits: Vec<(Arc<str>, u64)>,
    /// Escalations to hand the slow lane with this frame.
    escalate_due: u64,
    /// After a runtime change of pixel format: frames in the old format still queued
    /// are skipped until the rebuilt pipeline delivers this one.
    awaiting: Option<Pixels>,
    /// Once the source delivers RGB it keeps doing so until the camera restarts:
    /// query changes alone never switch it back (each switch rebuilds the pipeline,
    /// on RTSP a reconnect), so clients cannot force repeated reconnects.
    rgb_kept: bool,
}

/// Where a slow lane's reports go.
type Emit = Arc<dyn Fn(Pooled) + Send + Sync>;

/// A camera's per-frame queries and the model outputs they need.
struct FastQueries {
    queries: Vec<StandingQuery>,
    needs: Vec<Need>,
    outputs: FrameOutputs,
    failed: usize,
}

impl FastQueries {
    /// Prepares the per-frame queries of `cam`, taking from `reuse` any query whose
    /// config is unchanged (with its state).
    fn prepare(
        cam: &CameraConfig,
        models: &Registry,
        camera: &Arc<str>,
        mut reuse: Vec<StandingQuery>,
        lessons: &Lessons,
    ) -> Self {
        let mut fast = Self {
            queries: Vec::new(),
            needs: Vec::new(),
            outputs: FrameOutputs::default(),
            failed: 0,
        };
        for q in &cam.queries {
            if models.get(&q.model).is_some_and(|m| m.is_slow()) {
                continue; // a slow model's query: the slow lane's
            }
            let sq = match reuse.iter().position(|old| old.config == *q) {
                Some(i) => reuse.swap_remove(i),
                None => match bind(cam, q, models, lessons) {
                    Ok(sq) => sq,
                    Err(e) => {
                        fast.failed += 1;
                        tracing::error!(
                            camera = %cam.id,
                            query = %q.id,
                            model = %q.model,
                            "camera {}: query {}: {e}",
                            cam.id,
                            q.id
                        );
                        continue;
                    }
                },
            };
            let Some((loaded, engine)) = models
                .get(&q.model)
                .and_then(|l| Some((l.clone(), l.engine()?.client())))
            else {
                continue;
            };
            fast.need(camera, q, loaded, engine, sq.needs_detections());
            fast.queries.push(sq);
        }
        fast
    }

    /// Adds the model output query `q` needs, unless another query needs it already.
    fn need(
        &mut self,
        camera: &Arc<str>,
        q: &QueryConfig,
        loaded: Arc<Loaded>,
        engine: BatchClient,
        detections: bool,
    ) {
        let name: Arc<str> = Arc::from(q.model.as_str());
        let outputs = &mut self.outputs;
        if detections {
            if !outputs.detections.iter().any(|(m, _)| *m == name) {
                self.needs.push(Need::Detect {
                    slot: outputs.detections.len(),
                    engine,
                    loaded,
                });
                outputs.detections.push((name, None));
            }
        } else if !outputs
            .embeddings
            .iter()
            .any(|(m, r, _)| *m == name && *r == q.region)
        {
            self.needs.push(Need::Embed {
                slot: outputs.embeddings.len(),
                region: q.region,
                cells: Cells::of_region(q.region),
                key: Key::new(camera, &name, q.region),
                engine,
                loaded,
            });
            outputs.embeddings.push((name, q.region, None));
        }
    }
}

/// Binds `q`, with its lesson when it can be taught on its model: an embedder
/// query needs one; a clip query whose examples cannot be opened runs zero-shot
/// (logged).
fn bind(
    cam: &CameraConfig,
    q: &QueryConfig,
    models: &Registry,
    lessons: &Lessons,
) -> Result<StandingQuery, crate::query::BindError> {
    let loaded = models.get(&q.model);
    let teachable = loaded.is_some_and(|l| l.image_identity().is_some());
    let lesson = match (crate::query::lesson_spec(&cam.id, q), loaded) {
        (Some(spec), Some(loaded)) if teachable => match lessons.lesson(spec, loaded) {
            Ok(l) => Some(l),
            Err(e) if matches!(loaded.as_ref(), Loaded::Embedder { .. }) => return Err(e.into()),
            Err(e) => {
                tracing::warn!(camera = %cam.id, query = %q.id, model = %q.model, "{e}; answering zero-shot");
                None
            }
        },
        _ => None,
    };
    StandingQuery::taught(q.clone(), models, lesson)
}

/// The configs of `cam`'s queries that run on slow models, in order.
fn slow_configs(cam: &CameraConfig, models: &Registry) -> Vec<QueryConfig> {
    let escalations = cam.queries.iter().filter_map(QueryConfig::escalation);
    cam.queries
        .iter()
        .filter(|q| models.get(&q.model).is_some_and(|m| m.is_slow()))
        .cloned()
        .chain(escalations)
        .collect()
}

/// Each fast query's escalation bit in the slow lane's due mask.
fn escalation_bits(cam: &CameraConfig, slow: &SlowQueries) -> Vec<(Arc<str>, u64)> {
    cam.queries
        .iter()
        .filter_map(|q| Some((Arc::from(q.id.as_str()), slow.escalation_bit(&q.id)?)))
        .collect()
}

impl CameraWorker {
    /// Prepares the camera's queries; a query that cannot run is logged (camera, query,
    /// cause) and left out, the others go on.
    pub fn new(cam: &CameraConfig, models: &Registry, ctx: WorkerContext) -> Self {
        let camera: Arc<str> = Arc::from(cam.id.as_str());
        let fast = FastQueries::prepare(cam, models, &camera, Vec::new(), &ctx.lessons);
        let frame_slot = fast
            .queries
            .iter()
            .any(|q| q.lesson().is_some())
            .then(|| ctx.lessons.frame(&camera));
        let (mut generative, failed) = SlowQueries::new(cam, models, ctx.metrics.clone());
        generative.attach_lessons(&ctx.lessons);
        Self {
            escalation_bits: escalation_bits(cam, &generative),
            escalate_due: 0,
            has_detector: !fast.outputs.detections.is_empty(),
            queries: fast.queries,
            needs: fast.needs,
            outputs: fast.outputs,
            camera,
            has_outputs: false,
            yolox: YoloxScratch::default(),
            clip: ClipImage::new(),
            cache: ctx.cache,
            tolerance: cam.change_threshold,
            max_staleness: cam.max_staleness,
            metrics: ctx.metrics,
            failed: failed + fast.failed,
            cadences: generative.cadences(),
            slow_configs: slow_configs(cam, models),
            snapshots: None,
            regions: super::regions::snapshot_regions(&cam.queries),
            slow: if generative.is_empty() {
                Slow::Off
            } else {
                Slow::Inline(Box::new(generative))
            },
            lane: None,
            watchdog: None,
            awaiting: None,
            rgb_kept: false,
            lessons: ctx.lessons,
            frame_slot,
            live: None,
        }
    }

    /// Offers each frame with pixels to `live`, the camera's live picture (copied only
    /// while someone watches it).
    pub fn show_live(&mut self, live: Arc<LiveFrame>) {
        self.live = Some(live);
    }

    /// Replaces the camera's queries with `cam.queries` (a runtime change) between two
    /// frames: a query whose config is unchanged keeps its state; a new one is
    /// prepared here (its prompts come from the prompt cache when the change was
    /// validated first); the slow lane restarts only when the slow queries
    /// changed. Returns the gate regions and pixels the camera's source must now use.
    pub fn replace_queries(
        &mut self,
        cam: &CameraConfig,
        models: &Registry,
    ) -> (Vec<Option<[f32; 4]>>, Pixels) {
        let before = self.pixels();
        self.rgb_kept = before == Pixels::Rgb;
        let old = std::mem::take(&mut self.queries);
        let fast = FastQueries::prepare(cam, models, &self.camera, old, &self.lessons);
        self.frame_slot = fast
            .queries
            .iter()
            .any(|q| q.lesson().is_some())
            .then(|| self.lessons.frame(&self.camera));
        self.has_detector = !fast.outputs.detections.is_empty();
        self.queries = fast.queries;
        self.needs = fast.needs;
        self.outputs = fast.outputs;
        self.has_outputs = false;
        self.failed = fast.failed;
        let slow = slow_configs(cam, models);
        if slow != self.slow_configs {
            if let Slow::Lane(lane) = &mut self.slow {
                lane.close();
            }
            let (mut generative, failed) = SlowQueries::new(cam, models, self.metrics.clone());
            generative.attach_lessons(&self.lessons);
            self.escalation_bits = escalation_bits(cam, &generative);
            if let (Some(shots), Some(_)) = (&self.snapshots, &self.lane) {
                generative.enable_snapshots(shots.sibling());
            }
            self.failed += failed;
            self.cadences = generative.cadences();
            self.slow = match (&self.lane, generative.is_empty()) {
                (_, true) => Slow::Off,
                (Some((shutdown, emit)), false) => {
                    let emit = emit.clone();
                    let heartbeat = self.slow_heartbeat();
                    Slow::Lane(SlowLane::spawn(
                        generative,
                        shutdown.clone(),
                        heartbeat,
                        move |r| emit(r),
                    ))
                }
                (None, false) => Slow::Inline(Box::new(generative)),
            };
            self.slow_configs = slow;
        }
        self.regions = super::regions::snapshot_regions(&cam.queries);
        let pixels = self.pixels();
        if pixels != before {
            self.awaiting = Some(pixels);
        }
        (cam.queries.iter().map(|q| q.region).collect(), pixels)
    }

    /// Moves the slow queries onto a slow lane thread whose reports go to
    /// `emit` (the daemon); without this they run inline in each frame's report.
    /// With snapshots enabled before, the worker takes those of its alerts.
    pub fn start_generative(
        &mut self,
        shutdown: Shutdown,
        emit: impl Fn(Pooled) + Send + Sync + 'static,
    ) {
        let emit: Emit = Arc::new(emit);
        if let Slow::Inline(mut g) = std::mem::replace(&mut self.slow, Slow::Off) {
            if let Some(shots) = &self.snapshots {
                g.enable_snapshots(shots.sibling());
            }
            let e = emit.clone();
            let heartbeat = self.slow_heartbeat();
            self.slow = Slow::Lane(SlowLane::spawn(*g, shutdown.clone(), heartbeat, move |r| {
                e(r)
            }));
        }
        self.lane = Some((shutdown, emit));
    }

    /// Has `watchdog` watch the slow lane (call before `start_generative`).
    pub fn watch(&mut self, watchdog: Arc<Watchdog>) {
        self.watchdog = Some(watchdog);
    }

    fn slow_heartbeat(&self) -> Option<Heartbeat> {
        let name = format!("camera {}: slow lane", self.camera);
        self.watchdog.as_ref().map(|w| w.register(name))
    }

    /// Takes a snapshot of the frame behind each alert (a state change between two
    /// known states) of the per-frame queries.
    pub fn enable_snapshots(&mut self, cfg: SnapshotConfig) {
        self.snapshots = Some(Snapshotter::new(&self.camera, cfg));
    }

    /// Stops the slow lane: at once when the camera is shutting down, else
    /// after the frames it was handed (the end of a file).
    pub fn stop_generative(&mut self) {
        if let Slow::Lane(lane) = &mut self.slow {
            lane.finish();
        }
    }

    /// How many of the camera's queries could not be prepared.
    pub fn failed_queries(&self) -> usize {
        self.failed
    }

    /// The camera's id.
    pub fn camera(&self) -> &Arc<str> {
        &self.camera
    }

    /// The pixels this camera's models need: RGB when a dual encoder reads the
    /// frame, else the decoder's I420 (detectors convert only what they sample) —
    /// but RGB once it was RGB (a runtime change never switches back).
    pub fn pixels(&self) -> Pixels {
        if self.rgb_kept
            || self.needs.iter().any(|n| matches!(n, Need::Embed { .. }))
            || !matches!(self.slow, Slow::Off)
        {
            Pixels::Rgb
        } else {
            Pixels::I420
        }
    }

    /// The camera's counters (shared with its source).
    pub fn metrics(&self) -> &Arc<CameraMetrics> {
        &self.metrics
    }

    /// Evaluates `sample` into `report`; false when there is nothing to report (an
    /// unchanged frame before any frame was encoded).
    pub fn evaluate(&mut self, sample: &Sample, report: &mut FrameReport) -> bool {
        report.errors.clear();
        let (seq, pts, time, decoded_at, change, inference) = match sample {
            Sample::Frame(frame) if self.awaiting.is_some_and(|p| !p.matches(frame.format)) => {
                return false;
            }
            Sample::Frame(frame) => {
                self.awaiting = None;
                let inference = self.encode(frame, &mut report.errors);
                let f = frame;
                (
                    f.seq,
                    f.pts,
                    f.captured,
                    f.decoded_at,
                    f.verdict.score(),
                    inference,
                )
            }
            Sample::Unchanged(u) => {
                if !self.has_outputs {
                    return false;
                }
                (
                    u.seq,
                    u.pts,
                    u.captured,
                    u.decoded_at,
                    u.score,
                    Inference::Reused,
                )
            }
        };
        let t0 = Instant::now();
        let now = SystemTime::now();
        report.queries.clear();
        report.reviews.clear();
        for q in &mut self.queries {
            if let Some(e) = q.evaluate(&self.outputs, now, pts) {
                if let (Sample::Frame(frame), Some(below)) = (sample, q.config.review_below)
                    && e.confidence.is_none_or(|c| c < below)
                    && let Some(item) =
                        review(&self.camera, &self.outputs, &self.lessons, q, &e, frame)
                {
                    report.reviews.push(item);
                }
                if let (Sample::Frame(frame), Some(below), Some((_, bit))) = (
                    sample,
                    q.config.review_below,
                    self.escalation_bits.iter().find(|(id, _)| **id == *e.id),
                ) && e.confidence.is_none_or(|c| c < below)
                    && escalate(&self.outputs, q, frame)
                {
                    self.escalate_due |= bit;
                }
                if e.change.is_some() && q.lesson().is_some() {
                    let keep = |f: &Frame| {
                        keep_event(&self.camera, &self.outputs, &self.lessons, q, &e, f, time)
                    };
                    match (sample, &self.frame_slot) {
                        (Sample::Frame(frame), _) => keep(frame),
                        (Sample::Unchanged(_), Some(slot)) => {
                            slot.with(keep);
                        }
                        _ => {}
                    }
                }
                report.queries.push(e);
            }
        }
        if let (Sample::Frame(frame), Some(slot)) = (sample, &self.frame_slot) {
            slot.keep(frame);
        }
        if let (Sample::Frame(frame), Some(live)) = (sample, &self.live) {
            live.offer(frame);
        }
        if self.has_detector {
            let list = report.detections.get_or_insert_with(Vec::new);
            list.clear();
            for (_, found) in &self.outputs.detections {
                list.extend(found.iter().flatten().cloned());
            }
        } else {
            report.detections = None;
        }
        self.metrics.queries.record(t0.elapsed());
        report.captions.clear();
        let mut inference = inference;
        if let Sample::Frame(frame) = sample {
            if let Some(s) = &mut self.snapshots {
                s.keep(frame);
            }
            if self.slow(frame, report) {
                inference = Inference::Encoded;
            }
        }
        self.snapshot(report, time);
        report.camera.clone_from(&self.camera);
        report.seq = seq;
        report.pts = pts.as_secs_f64();
        report.time = time;
        report.decoded_at = decoded_at;
        report.change = change;
        report.inference = inference;
        self.metrics.evaluated.inc();
        self.metrics.latency.record(decoded_at.elapsed());
        tracing::trace!(camera = %self.camera, seq, ?inference, "frame evaluated");
        true
    }

    /// Attaches the snapshot of the kept frame when a query of `report` alerted.
    fn snapshot(&mut self, report: &mut FrameReport, time: std::time::SystemTime) {
        report.snapshot = None;
        let Some(shots) = &mut self.snapshots else {
            return;
        };
        let Some(alert) = report
            .queries
            .iter()
            .find(|q| q.change.as_ref().is_some_and(|c| c.from.is_some()))
        else {
            return;
        };
        let boxes = report.detections.as_deref().unwrap_or_default();
        match shots.take(&self.regions, boxes, time, &alert.id) {
            Ok(shot) => report.snapshot = Some(shot),
            Err(e) => {
                static FAILED: RateLimits = RateLimits::new();
                if let Some(s) = FAILED.allow(&*self.camera) {
                    tracing::warn!(
                        camera = %self.camera,
                        query = %alert.id,
                        suppressed = s.count(),
                        "{e}{s}"
                    );
                }
                report.errors.push(e.to_string());
            }
        }
    }

    /// Runs (inline) or hands over (worker) the slow queries due on `frame`; true when
    /// they ran inline, into `report`.
    fn slow(&mut self, frame: &Frame, report: &mut FrameReport) -> bool {
        if matches!(self.slow, Slow::Off) {
            return false;
        }
        let due = generative::due(&mut self.cadences, frame.pts, frame.verdict)
            | std::mem::take(&mut self.escalate_due);
        if due == 0 {
            return false;
        }
        match &mut self.slow {
            Slow::Off => false,
            Slow::Inline(g) => {
                g.answer(frame, due, report);
                true
            }
            Slow::Lane(lane) => {
                lane.offer(frame, due);
                false
            }
        }
    }

    /// Refreshes the outputs from `frame`: runs the models, or takes embeddings from
    /// the cache when the region looks as it did (never on a stale re-encode).
    fn encode(&mut self, frame: &Frame, errors: &mut Vec<String>) -> Inference {
        let mut hits = 0;
        // A re-encode forced by `max_staleness` must not be answered from the cache.
        let stale = matches!(frame.verdict, Verdict::Stale(_));
        for need in &mut self.needs {
            match need {
                Need::Detect {
                    slot,
                    loaded,
                    engine,
                } => {
                    let Loaded::Yolox { model, .. } = loaded.as_ref() else {
                        continue;
                    };
                    let entry = &mut self.outputs.detections[*slot].1;
                    let mut found = entry.take().unwrap_or_default();
                    match model.detect(engine, frame, &mut self.yolox, &mut found) {
                        Ok(()) => {
                            *entry = Some(found);
                            record(&self.metrics, &self.yolox.stages);
                        }
                        Err(e) => {
                            model_failed(&self.camera, ("detect", *slot), &e);
                            errors.push(e.to_string());
                        }
                    }
                }
                Need::Embed {
                    slot,
                    region,
                    cells,
                    key,
                    loaded,
                    engine,
                } => {
                    if !matches!(
                        loaded.as_ref(),
                        Loaded::Clip { .. } | Loaded::Embedder { .. }
                    ) {
                        continue;
                    }
                    let entry = &mut self.outputs.embeddings[*slot].2;
                    if let (false, Some(thumb)) = (stale, &frame.thumb) {
                        let hit = self.cache.get(
                            key,
                            thumb,
                            cells,
                            self.tolerance,
                            frame.pts,
                            self.max_staleness,
                        );
                        if let Some(e) = hit {
                            self.metrics.cache_hits.inc();
                            *entry = Some(e);
                            hits += 1;
                            continue;
                        }
                        self.metrics.cache_misses.inc();
                    }
                    let embedded = match loaded.as_ref() {
                        Loaded::Clip { model, .. } => {
                            model.embed_image(engine, frame, *region, &mut self.clip)
                        }
                        Loaded::Embedder { model, .. } => {
                            model.embed_image(engine, frame, *region, &mut self.clip)
                        }
                        _ => continue,
                    };
                    match embedded {
                        Ok(e) => {
                            record(&self.metrics, &self.clip.stages);
                            if let Some(thumb) = frame.thumb {
                                self.cache.put(
                                    key.clone(),
                                    thumb,
                                    cells,
                                    self.tolerance,
                                    frame.pts,
                                    e.clone(),
                                );
                            }
                            *entry = Some(e);
                        }
                        Err(e) => {
                            *entry = None;
                            model_failed(&self.camera, ("embed", *slot), &e);
                            errors.push(e.to_string());
                        }
                    }
                }
            }
        }
        self.has_outputs = true;
        if self.needs.is_empty() {
            // No query needs a model: nothing ran, nothing came from the cache.
            Inference::Reused
        } else if hits == self.needs.len() {
            Inference::Cached
        } else {
            self.metrics.encoded.inc();
            Inference::Encoded
        }
    }
}

/// A review item of `frame` for query `q`, unless the query made one too recently
/// or of the same scene.
fn review(
    camera: &Arc<str>,
    outputs: &FrameOutputs,
    lessons: &Lessons,
    q: &StandingQuery,
    e: &crate::query::Evaluation,
    frame: &Frame,
) -> Option<Arc<ReviewItem>> {
    let lesson = q.lesson()?;
    let embedding = outputs.embedding(&q.config.model, q.config.region)?;
    if !lesson.admit_review(embedding, lessons.config().review_every) {
        return None;
    }
    let item = picture(camera, embedding, lessons.review_id(), q, e, frame)?;
    lessons.add_review(item.clone());
    tracing::debug!(camera = %camera, query = %q.config.id, id = %item.id, "review item");
    Some(item)
}

/// Whether uncertain query `q` hands `frame` to its escalation model: only a scene
/// the model has not answered, one frame at a time (the crop is made only then).
fn escalate(outputs: &FrameOutputs, q: &StandingQuery, frame: &Frame) -> bool {
    let (Some(lesson), Some(embedding)) = (
        q.lesson(),
        outputs.embedding(&q.config.model, q.config.region),
    ) else {
        return false;
    };
    if !lesson.wants_escalation(embedding) {
        return false;
    }
    match crate::teach::crop_jpeg(frame, q.config.region) {
        Ok(jpeg) => {
            lesson.pend_escalation(frame.seq, embedding, jpeg, q.config.region);
            true
        }
        Err(_) => false,
    }
}

/// Keeps the frame behind a taught query's state change under its event id, so
/// that a person can say what it really showed (state changes are rare: the crop is
/// made only then).
fn keep_event(
    camera: &Arc<str>,
    outputs: &FrameOutputs,
    lessons: &Lessons,
    q: &StandingQuery,
    e: &crate::query::Evaluation,
    frame: &Frame,
    time: SystemTime,
) {
    if q.lesson().is_none() || e.change.as_ref().is_none_or(|c| c.from.is_none()) {
        return;
    }
    let Some(embedding) = outputs.embedding(&q.config.model, q.config.region) else {
        return;
    };
    let id = Arc::from(crate::query::event_id(camera, &e.id, time));
    if let Some(item) = picture(camera, embedding, id, q, e, frame) {
        lessons.add_event(item);
    }
}

/// The crop of `frame` for query `q`, with its embedding and the query's answer.
fn picture(
    camera: &Arc<str>,
    embedding: &crate::model::clip::Embedding,
    id: Arc<str>,
    q: &StandingQuery,
    e: &crate::query::Evaluation,
    frame: &Frame,
) -> Option<Arc<ReviewItem>> {
    let jpeg = match crate::teach::crop_jpeg(frame, q.config.region) {
        Ok(j) => j,
        Err(err) => {
            tracing::warn!(camera = %camera, query = %q.config.id, "picture to label: {err}");
            return None;
        }
    };
    Some(Arc::new(ReviewItem {
        id,
        camera: camera.clone(),
        query: e.id.clone(),
        ask: Arc::from(q.config.ask.as_str()),
        answer: e.state.as_ref().map(|s| s.to_string()),
        confidence: e.confidence.unwrap_or(0.0),
        time: frame.captured,
        region: q.config.region,
        jpeg: Arc::from(jpeg),
        embedding: embedding.clone(),
    }))
}

/// Logs a model that failed on a frame: at once, then once a minute per camera and
/// model output (`need`: its kind and slot), saying how many failed meanwhile.
fn model_failed(camera: &str, need: (&str, usize), e: &dyn std::fmt::Display) {
    static FAILED: RateLimits = RateLimits::new();
    if let Some(s) = FAILED.allow((camera, need)) {
        tracing::warn!(camera = %camera, suppressed = s.count(), "{e}{s}");
    }
}

fn record(m: &CameraMetrics, s: &StepTimes) {
    m.preprocess.record(s.preprocess);
    m.infer.record(s.infer);
    m.postprocess.record(s.postprocess);
}
