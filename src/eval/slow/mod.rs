//! The slow lane: each camera's slow queries (florence2, smolvlm, paligemma, qwen2vl,
//! ppocr, and the served openai and ollama models) run
//! on a thread of their own, so that a caption that takes seconds never delays the
//! per-frame answers of the dual encoder and the detector. The camera's evaluator
//! decides which slow queries are due on a frame the gate let through
//! ([`Cadence`]), copies that frame into a reused buffer and puts it in a one-slot
//! `Mailbox` where the newest frame wins (the queries a replaced frame was due for
//! carry over). The worker encodes each (model, region) once per frame and asks
//! every due query on those features, then publishes one report with the answers,
//! boxes and captions, and, with snapshots on, the picture of the frame behind the
//! first alert among them (the camera's regions and that query's boxes drawn).
//!
//! Closing the lane ([`SlowLane::close`]: a change of the camera's slow queries, the
//! camera's stop, SIGTERM) raises the lane's [`Cancel`]: the answer in progress stops
//! at its next decode step (a SmolVLM/Florence-2 token, six OCR lines) and an ONNX
//! run in progress (a vision encode, a prefill) at its next graph node, so `close`
//! returns within one step; the abandoned frame is not reported. Only the end of a
//! file ([`SlowLane::finish`]) lets the worker answer its last frames. A query whose
//! prompt is longer than its model takes is refused when the lane is built (logged
//! once, counted as failed), before any ONNX work.
//!
//! ```no_run
//! use ocellus::eval::slow::SlowQueries;
//! let config = ocellus::app::config::load("pipelines/demo.toml".as_ref()).unwrap();
//! let env = ocellus::engine::environment(&config.engine).unwrap();
//! let prompts = std::sync::Arc::new(ocellus::cache::PromptCache::default());
//! let models = ocellus::model::Registry::load(&config.models, &config.engine, env, &prompts);
//! let cam = &config.cameras[0];
//! let metrics = std::sync::Arc::new(ocellus::kit::metrics::CameraMetrics::default());
//! let (slow, _failed) = SlowQueries::new(cam, &models, metrics);
//! println!("{} slow queries", slow.len());
//! ```

mod cadence;
mod mailbox;
mod run;

use std::ops::Range;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{Receiver, Sender};

pub use cadence::Cadence;
use mailbox::{Mailbox, Taken};
use run::Encoded;

use crate::kit::metrics::CameraMetrics;
use crate::kit::shutdown::Shutdown;
use crate::kit::watchdog::Heartbeat;
use crate::kit::{Frame, RateLimits};
use crate::model::{Cancel, Registry};
use crate::query::slow::Outcome;
use crate::query::{
    Caption, FrameReport, Inference, Pooled, QueryConfig, QueryKind, ReportPool, SlowQuery,
};
use crate::snapshot::{Region, Snapshotter};
use crate::source::CameraConfig;
use crate::teach::{Lesson, Lessons};

/// Slow queries per camera are tracked in a 64-bit mask.
pub const MAX_SLOW_QUERIES: usize = 64;

/// A frame for the worker and the queries due on it (bit i = slow query i).
pub struct Job {
    /// The frame to answer.
    pub frame: Frame,
    /// The slow queries due on it (bit i = slow query i).
    pub due: u64,
}

/// Marks the queries due on a frame at `pts` judged `verdict` (bit i = query i) and
/// notes that they ran.
pub fn due(cadences: &mut [Cadence], pts: Duration, verdict: crate::kit::Verdict) -> u64 {
    let mut due = 0u64;
    for (i, c) in cadences.iter_mut().enumerate() {
        if c.due(pts, verdict) {
            c.ran(pts);
            due |= 1 << i;
        }
    }
    due
}

/// A camera's slow queries and the encodes of the frame being answered.
pub struct SlowQueries {
    camera: Arc<str>,
    queries: Vec<SlowQuery>,
    /// Per query: `Some` for a fast query's escalation (its answer goes to the fast
    /// query's lesson, not to the report); the lesson once attached.
    escalations: Vec<Option<Option<Arc<Lesson>>>>,
    encoded: Encoded,
    metrics: Arc<CameraMetrics>,
    snapshots: Option<Snapshotter>,
    /// The regions of the camera's queries (drawn on snapshots).
    regions: Vec<Region>,
}

impl SlowQueries {
    /// Prepares the camera's queries that use slow models (others are skipped);
    /// returns how many of those failed (each logged with camera and query).
    pub fn new(
        cam: &CameraConfig,
        models: &Registry,
        metrics: Arc<CameraMetrics>,
    ) -> (Self, usize) {
        let mut queries = Vec::new();
        let mut escalations = Vec::new();
        let mut failed = 0;
        let escalated: Vec<QueryConfig> = cam
            .queries
            .iter()
            .filter_map(QueryConfig::escalation)
            .collect();
        let all = cam
            .queries
            .iter()
            .map(|q| (q, false))
            .chain(escalated.iter().map(|q| (q, true)));
        for (q, escalation) in all {
            match SlowQuery::prepare(q, models) {
                None => {}
                Some(Ok(sq)) if queries.len() < MAX_SLOW_QUERIES => {
                    queries.push(sq);
                    escalations.push(escalation.then_some(None));
                }
                Some(Ok(_)) => {
                    failed += 1;
                    tracing::error!(
                        camera = %cam.id,
                        query = %q.id,
                        model = %q.model,
                        "more than {MAX_SLOW_QUERIES} slow queries on one camera"
                    );
                }
                Some(Err(e)) => {
                    failed += 1;
                    tracing::error!(
                        camera = %cam.id,
                        query = %q.id,
                        model = %q.model,
                        "camera {}: query {}: {e}",
                        cam.id,
                        q.id
                    );
                }
            }
        }
        let generative = Self {
            camera: Arc::from(cam.id.as_str()),
            queries,
            escalations,
            encoded: Encoded::default(),
            metrics,
            snapshots: None,
            regions: crate::eval::regions::snapshot_regions(&cam.queries),
        };
        (generative, failed)
    }

    /// How many slow queries the camera has (at most [`MAX_SLOW_QUERIES`]).
    pub fn len(&self) -> usize {
        self.queries.len()
    }

    /// Whether the camera has no slow query.
    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Takes a snapshot of the frame behind each alert (a state change between two
    /// known states) of the slow queries, into the report of that frame.
    pub fn enable_snapshots(&mut self, shots: Snapshotter) {
        self.snapshots = Some(shots);
    }

    /// The cadence of each query, in order (an escalation is never due by itself).
    pub fn cadences(&self) -> Vec<Cadence> {
        self.queries
            .iter()
            .zip(&self.escalations)
            .map(|(q, e)| match e {
                Some(_) => Cadence::never(),
                None => Cadence::of(&q.config),
            })
            .collect()
    }

    /// Gives each escalation the lesson of its fast query (where its answers go).
    pub fn attach_lessons(&mut self, lessons: &Lessons) {
        for (q, e) in self.queries.iter().zip(&mut self.escalations) {
            if let Some(lesson) = e {
                *lesson = lessons.find(&self.camera, q.id());
            }
        }
    }

    /// The due bit of fast query `query`'s escalation, if it has one.
    pub fn escalation_bit(&self, query: &str) -> Option<u64> {
        self.queries
            .iter()
            .zip(&self.escalations)
            .position(|(q, e)| e.is_some() && &**q.id() == query)
            .map(|i| 1 << i)
    }

    /// Answers the queries of `due` on `frame`, appending to `report` (its frame
    /// fields are left to the caller).
    pub fn answer(&mut self, frame: &Frame, due: u64, report: &mut FrameReport) {
        self.answer_with(frame, due, report, Cancel::never());
    }

    /// [`SlowQueries::answer`], stopped at the next model step once `cancel` is
    /// raised; false then (the report is incomplete and must not be sent).
    pub fn answer_with(
        &mut self,
        frame: &Frame,
        due: u64,
        report: &mut FrameReport,
        cancel: &Cancel,
    ) -> bool {
        self.encoded.clear();
        self.metrics.slow_jobs.inc();
        let now = SystemTime::now();
        let mut boxes = Vec::new();
        let mut any_boxes = false;
        // The first query that alerted, and the boxes it found.
        let mut alert: Option<(Arc<str>, Range<usize>)> = None;
        for (i, q) in self.queries.iter_mut().enumerate() {
            if due & (1 << i) == 0 {
                continue;
            }
            if cancel.is_raised() {
                self.encoded.clear();
                return false;
            }
            let span = tracing::trace_span!("slow query", camera = %self.camera, query = %q.id());
            let _enter = span.enter();
            let escalation = self.escalations.get(i).and_then(Option::as_ref);
            match run::ask(q, frame, &mut self.encoded, &self.metrics, cancel) {
                Ok((outcome, _)) if escalation.is_some() => {
                    // The answer is for the fast query's lesson, not the report.
                    let p = match outcome {
                        Outcome::Probability(p) => p,
                        Outcome::Judged(j) => j.p_yes,
                        _ => continue,
                    };
                    let Some(Some(lesson)) = escalation else {
                        continue;
                    };
                    if let Some(ex) = lesson.answer_escalation(frame.seq, p, &q.config.model) {
                        tracing::info!(
                            camera = %self.camera,
                            query = %q.id(),
                            model = %q.config.model,
                            "escalated: p(yes) {p:.3}, kept as candidate {}",
                            ex.id
                        );
                    }
                }
                Ok((outcome, took)) => {
                    tracing::trace!(camera = %self.camera, query = %q.id(), ?took, "slow query answered");
                    any_boxes |= matches!(q.config.kind, QueryKind::Detect | QueryKind::Ground);
                    let first_box = boxes.len();
                    if let Some(e) = q.conclude(outcome, (now, frame.pts), &mut boxes) {
                        if alert.is_none() && e.change.as_ref().is_some_and(|c| c.from.is_some()) {
                            alert = Some((e.id.clone(), first_box..boxes.len()));
                        }
                        if e.kind == QueryKind::Caption
                            && let Some(crate::query::Answer::Text(text)) = &e.state
                        {
                            report.captions.push(Caption {
                                query: e.id.clone(),
                                model: e.model.clone(),
                                text: text.clone(),
                            });
                        }
                        report.queries.push(e);
                    }
                }
                Err(_) if cancel.is_raised() => {
                    tracing::debug!(camera = %self.camera, query = %q.id(), "slow query cancelled");
                    self.encoded.clear();
                    return false;
                }
                Err(e) => {
                    static FAILED: RateLimits = RateLimits::new();
                    if let Some(s) = FAILED.allow((&*self.camera, q.id())) {
                        tracing::warn!(
                            camera = %self.camera,
                            query = %q.id(),
                            suppressed = s.count(),
                            "{e}{s}"
                        );
                    }
                    report.errors.push(format!("query {}: {e}", q.id()));
                }
            }
        }
        if let Some((query, found)) = alert {
            self.snapshot(frame, &query, &boxes[found], report);
        }
        if any_boxes {
            report.detections.get_or_insert_with(Vec::new).extend(boxes);
        }
        self.encoded.clear();
        true
    }

    /// Attaches the snapshot of `frame` for `query`'s alert (when snapshots are on).
    fn snapshot(
        &mut self,
        frame: &Frame,
        query: &str,
        boxes: &[crate::model::Detection],
        report: &mut FrameReport,
    ) {
        let Some(shots) = &mut self.snapshots else {
            return;
        };
        match shots.take_of(frame, &self.regions, boxes, frame.captured, query) {
            Ok(shot) => report.snapshot = Some(shot),
            Err(e) => {
                static FAILED: RateLimits = RateLimits::new();
                if let Some(s) = FAILED.allow(&*self.camera) {
                    tracing::warn!(camera = %self.camera, query = %query, suppressed = s.count(), "{e}{s}");
                }
                report.errors.push(e.to_string());
            }
        }
    }
}

/// The evaluator's side of a camera's slow lane.
pub struct SlowLane {
    mailbox: Arc<Mailbox<Job>>,
    shutdown: Shutdown,
    /// Stops the worker's model calls (raised by [`SlowLane::close`]; the camera's
    /// shutdown counts as raised too).
    cancel: Arc<Cancel>,
    /// Pixel buffers coming back from the worker.
    free: Receiver<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
}

impl SlowLane {
    /// Starts the worker thread of `generative`; its reports go to `emit`.
    /// `heartbeat`, when given, is beaten each time round the worker's loop (at least
    /// every 500 ms while it waits) and at every model step of an answer.
    pub fn spawn(
        mut generative: SlowQueries,
        shutdown: Shutdown,
        heartbeat: Option<Heartbeat>,
        emit: impl FnMut(Pooled) + Send + 'static,
    ) -> Self {
        let mailbox = Arc::new(Mailbox::new(generative.metrics.slow_replaced.clone()));
        let (free_tx, free) = crossbeam_channel::bounded(2);
        let inbox = mailbox.clone();
        let name = format!("gen-{}", generative.camera);
        let stop = shutdown.clone();
        let cancel = Arc::new(Cancel::new().or_on(shutdown.clone()));
        cancel.watch(heartbeat);
        let worker_cancel = cancel.clone();
        let camera = generative.camera.clone();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                // The heartbeat retires with the worker, however it ends.
                let _retire = Unwatch(&worker_cancel);
                serve(
                    &mut generative,
                    &inbox,
                    &free_tx,
                    &stop,
                    &worker_cancel,
                    emit,
                )
            })
            .map_err(|e| tracing::error!(camera = %camera, "cannot start the slow lane: {e}"))
            .ok();
        if thread.is_none() {
            cancel.unwatch();
        }
        Self {
            mailbox,
            shutdown,
            cancel,
            free,
            spare: Vec::new(),
            thread,
        }
    }

    /// Hands a copy of `frame` to the worker for the queries of `due`.
    pub fn offer(&mut self, frame: &Frame, due: u64) {
        let buf = self
            .spare
            .pop()
            .or_else(|| self.free.try_recv().ok())
            .unwrap_or_default();
        let job = Job {
            frame: frame.copy_into(buf),
            due,
        };
        if let Some(old) = self.mailbox.put(job, |new, old| new.due |= old.due)
            && let Some(buf) = old.frame.into_buffer()
        {
            self.spare.push(buf);
        }
    }

    /// Stops the worker now: the answer in progress ends at its next model step (an
    /// ONNX run in progress at its next node) and is not reported, the waiting frame
    /// is dropped. Returns once the worker has stopped.
    pub fn close(&mut self) {
        self.cancel.raise();
        drop(self.mailbox.close(true));
        self.join();
    }

    /// The camera's stream ended: unless the camera is shutting down (then as
    /// [`SlowLane::close`]), lets the worker answer its current and waiting frames
    /// (a file's last frames get their answers), then stop.
    pub fn finish(&mut self) {
        if self.shutdown.is_triggered() {
            self.close();
        } else {
            drop(self.mailbox.close(false));
            self.join();
        }
    }

    fn join(&mut self) {
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("slow lane panicked");
        }
    }
}

/// Retires the worker's heartbeat when the worker ends.
struct Unwatch<'a>(&'a Cancel);

impl Drop for Unwatch<'_> {
    fn drop(&mut self) {
        self.0.unwatch();
    }
}

impl Drop for SlowLane {
    fn drop(&mut self) {
        self.close();
    }
}

fn serve(
    generative: &mut SlowQueries,
    inbox: &Mailbox<Job>,
    free: &Sender<Vec<u8>>,
    shutdown: &Shutdown,
    cancel: &Cancel,
    mut emit: impl FnMut(Pooled),
) {
    let pool = ReportPool::new(generative.camera.clone(), 2);
    loop {
        cancel.beat();
        let job = match inbox.take(Duration::from_millis(500)) {
            Taken::Item(job) => job,
            Taken::Empty if shutdown.is_triggered() => break,
            Taken::Empty => continue,
            Taken::Closed => break,
        };
        let mut report = pool.take();
        start_report(&mut report, &job.frame);
        let answered = generative.answer_with(&job.frame, job.due, &mut report, cancel);
        if let Some(buf) = job.frame.into_buffer() {
            let _ = free.try_send(buf);
        }
        if !answered {
            tracing::debug!(camera = %generative.camera, "slow lane closing: answer abandoned");
            break;
        }
        if !report.queries.is_empty() || !report.errors.is_empty() {
            emit(report);
        }
    }
}

/// Clears `report` and sets its frame fields from `frame`.
fn start_report(report: &mut FrameReport, frame: &Frame) {
    report.queries.clear();
    report.captions.clear();
    report.errors.clear();
    report.detections = None;
    report.snapshot = None;
    report.seq = frame.seq;
    report.pts = frame.pts.as_secs_f64();
    report.time = frame.captured;
    report.decoded_at = frame.decoded_at;
    report.change = frame.verdict.score();
    report.inference = Inference::Encoded;
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

    use super::*;
    use std::collections::BTreeMap;

    use crate::cache::PromptCache;
    use crate::engine::EngineConfig;
    use crate::kit::Frame;
    use crate::model::ModelConfig;

    /// The sections the lane needs: the models, the engine, the cameras.
    struct Config {
        models: BTreeMap<String, ModelConfig>,
        engine: EngineConfig,
        cameras: Vec<CameraConfig>,
    }

    /// A camera with `n` answer queries on the tiny random-weight SmolVLM (which never
    /// emits its stop token: every answer runs to the token cap).
    fn config(n: usize, ask: &str) -> Config {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smolvlm_tiny");
        let models = format!(
            "[smol]\nfamily = \"smolvlm\"\ndir = \"{dir}\"\nproviders = [\"cpu\"]\nmax_tokens = 256\n"
        );
        let mut camera = "id = \"door\"\nurl = \"rtsp://127.0.0.1/door\"\n\n".to_string();
        for i in 0..n {
            camera += &format!(
                "[[queries]]\nid = \"q{i}\"\nask = {ask:?}\nkind = \"answer\"\nmodel = \"smol\"\n\n"
            );
        }
        let mut models: BTreeMap<String, ModelConfig> = toml::from_str(&models).unwrap();
        for m in models.values_mut() {
            m.resolve_paths(std::path::Path::new("/"));
        }
        Config {
            models,
            engine: EngineConfig::default(),
            cameras: vec![toml::from_str(&camera).unwrap()],
        }
    }

    fn generative(config: &Config) -> (SlowQueries, usize, Arc<CameraMetrics>) {
        let env = crate::engine::environment(&config.engine).unwrap();
        let models = Registry::load(
            &config.models,
            &config.engine,
            env,
            &Arc::new(PromptCache::default()),
        );
        assert!(models.failed().is_empty(), "{:?}", models.failed());
        let metrics = Arc::new(CameraMetrics::default());
        let (g, failed) = SlowQueries::new(&config.cameras[0], &models, metrics.clone());
        (g, failed, metrics)
    }

    fn frame() -> Frame {
        Frame::from_rgb(64, 64, 64 * 3, vec![90; 64 * 64 * 3])
    }

    #[test]
    fn closing_the_lane_abandons_a_runaway_answer_at_the_next_token() {
        // 32 answers (a camera's most queries) of 256 tokens: seconds of decoding.
        let n = crate::query::limits::MAX_QUERIES_PER_CAMERA;
        let cfg = config(n, "What is in the picture?");
        let (g, failed, metrics) = generative(&cfg);
        assert_eq!((g.len(), failed), (n, 0));
        let reports = Arc::new(Mutex::new(0usize));
        let seen = reports.clone();
        let mut lane = SlowLane::spawn(g, Shutdown::new(), None, move |_| {
            *seen.lock().unwrap() += 1;
        });
        lane.offer(&frame(), u64::MAX);
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while metrics.slow_jobs.get() == 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(
            metrics.slow_jobs.get(),
            1,
            "the worker never took the frame"
        );
        // Without the cancel, close() waited for all 32 answers and sent their report.
        let t0 = std::time::Instant::now();
        lane.close();
        eprintln!("close() returned after {:?}", t0.elapsed());
        assert_eq!(
            *reports.lock().unwrap(),
            0,
            "the abandoned frame was reported"
        );
    }

    #[test]
    fn the_end_of_a_file_lets_the_last_frame_be_answered_within_the_token_cap() {
        let cfg = config(1, "What is in the picture?");
        let (g, _, _) = generative(&cfg);
        let answers = Arc::new(Mutex::new(Vec::new()));
        let seen = answers.clone();
        let mut lane = SlowLane::spawn(g, Shutdown::new(), None, move |r| {
            seen.lock().unwrap().push(r.queries.len());
        });
        lane.offer(&frame(), 1);
        lane.finish();
        assert_eq!(*answers.lock().unwrap(), [1]);
    }

    #[test]
    fn paligemma_answers_every_kind_of_a_frame_from_one_image_prefix() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/paligemma_tiny");
        let mut models: BTreeMap<String, ModelConfig> = toml::from_str(&format!(
            "[pali]\nfamily = \"paligemma\"\ndir = \"{dir}\"\nproviders = [\"cpu\"]\nmax_tokens = 16\n"
        ))
        .unwrap();
        for m in models.values_mut() {
            m.resolve_paths(std::path::Path::new("/"));
        }
        let mut camera = "id = \"door\"\nurl = \"rtsp://127.0.0.1/door\"\n\n".to_string();
        for (id, kind, extra) in [
            ("person", "yes_no", "ask = \"Is there a person?\""),
            ("what", "answer", "ask = \"What is on the table?\""),
            ("scene", "caption", "ask = \"\""),
            ("sign", "read", "ask = \"\""),
            (
                "cars",
                "detect",
                "ask = \"\"\nlabels = [\"car\", \"person\"]",
            ),
            ("cat", "ground", "ask = \"the cat\""),
        ] {
            camera += &format!(
                "[[queries]]\nid = \"{id}\"\nkind = \"{kind}\"\nmodel = \"pali\"\n{extra}\n\n"
            );
        }
        let cfg = Config {
            models,
            engine: EngineConfig::default(),
            cameras: vec![toml::from_str(&camera).unwrap()],
        };
        let (g, failed, metrics) = generative(&cfg);
        assert_eq!((g.len(), failed), (6, 0));
        let reports = Arc::new(Mutex::new(Vec::new()));
        let seen = reports.clone();
        let mut lane = SlowLane::spawn(g, Shutdown::new(), None, move |r| {
            seen.lock()
                .unwrap()
                .push((r.queries.len(), r.errors.clone()));
        });
        lane.offer(&frame(), u64::MAX);
        lane.finish();
        assert_eq!(*reports.lock().unwrap(), [(6, Vec::new())]);
        assert_eq!(
            metrics.slow_encode.count(),
            1,
            "one image prefix for six queries"
        );
    }

    #[test]
    fn a_question_longer_than_the_model_takes_is_refused_when_the_lane_is_built() {
        // The config's bound (1,000 characters) is bypassed here: the model's own
        // bounds hold whatever reaches it. The tiny vocabulary makes this about
        // 1,000 tokens, under the byte bound.
        let with_ask = |ask: String| {
            let mut cfg = config(1, "What is in the picture?");
            cfg.cameras[0].queries[0].ask = ask;
            cfg
        };
        let long = "Is the door open and is the light on? ".repeat(60);
        assert!(long.len() < crate::model::smolvlm::MAX_QUESTION_BYTES);
        let (g, failed, _) = generative(&with_ask(long));
        assert_eq!((g.len(), failed), (0, 1));
        // 40 KB (the finding's question) is refused before it is even tokenised.
        let (g, failed, _) = generative(&with_ask("x".repeat(40_000)));
        assert_eq!((g.len(), failed), (0, 1));
    }
}
