//! The generative worker: each camera's slow queries (florence2, smolvlm, ppocr) run
//! on a thread of their own, so that a caption that takes seconds never delays the
//! per-frame answers of the dual encoder and the detector. The camera's evaluator
//! decides which slow queries are due on a frame the gate let through
//! ([`Cadence`]), copies that frame into a reused buffer and puts it in a one-slot
//! [`Mailbox`] where the newest frame wins (the queries a replaced frame was due for
//! carry over). The worker encodes each (model, region) once per frame and asks
//! every due query on those features, then publishes one report with the answers,
//! boxes and captions, and, with snapshots on, the picture of the frame behind the
//! first alert among them (the camera's regions and that query's boxes drawn).
//!
//! ```no_run
//! use ocellus::daemon::generative::Generative;
//! let config = ocellus::config::load("pipelines/demo.toml".as_ref()).unwrap();
//! let env = ocellus::engine::environment(&config.engine).unwrap();
//! let prompts = std::sync::Arc::new(ocellus::cache::PromptCache::default());
//! let models = ocellus::model::Registry::load(&config, env, &prompts);
//! let cam = &config.cameras[0];
//! let metrics = std::sync::Arc::new(ocellus::metrics::CameraMetrics::default());
//! let (slow, _failed) = Generative::new(cam, &models, metrics);
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

use crate::metrics::CameraMetrics;
use crate::model::Registry;
use crate::query::{Caption, FrameReport, Inference, Pooled, QueryKind, ReportPool, SlowQuery};
use crate::shutdown::Shutdown;
use crate::snapshot::{self, Region, Snapshotter};
use crate::source::{CameraConfig, Frame};
use crate::watchdog::Heartbeat;

/// Slow queries per camera are tracked in a 64-bit mask.
pub const MAX_SLOW_QUERIES: usize = 64;

/// A frame for the worker and the queries due on it (bit i = slow query i).
pub struct Job {
    pub frame: Frame,
    pub due: u64,
}

/// Marks the queries due on a frame at `pts` judged `verdict` (bit i = query i) and
/// notes that they ran.
pub fn due(cadences: &mut [Cadence], pts: Duration, verdict: crate::gate::Verdict) -> u64 {
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
pub struct Generative {
    camera: Arc<str>,
    queries: Vec<SlowQuery>,
    encoded: Encoded,
    metrics: Arc<CameraMetrics>,
    snapshots: Option<Snapshotter>,
    /// The regions of the camera's queries (drawn on snapshots).
    regions: Vec<Region>,
}

impl Generative {
    /// Prepares the camera's queries that use slow models (others are skipped);
    /// returns how many of those failed (each logged with camera and query).
    pub fn new(
        cam: &CameraConfig,
        models: &Registry,
        metrics: Arc<CameraMetrics>,
    ) -> (Self, usize) {
        let mut queries = Vec::new();
        let mut failed = 0;
        for q in &cam.queries {
            match SlowQuery::prepare(q, models) {
                None => {}
                Some(Ok(sq)) if queries.len() < MAX_SLOW_QUERIES => queries.push(sq),
                Some(Ok(_)) => {
                    failed += 1;
                    tracing::error!(
                        "camera {}: query {}: more than {MAX_SLOW_QUERIES} slow queries on one camera",
                        cam.id,
                        q.id
                    );
                }
                Some(Err(e)) => {
                    failed += 1;
                    tracing::error!("camera {}: query {}: {e}", cam.id, q.id);
                }
            }
        }
        let generative = Self {
            camera: Arc::from(cam.id.as_str()),
            queries,
            encoded: Encoded::default(),
            metrics,
            snapshots: None,
            regions: snapshot::regions(&cam.queries),
        };
        (generative, failed)
    }

    pub fn len(&self) -> usize {
        self.queries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queries.is_empty()
    }

    /// Takes a snapshot of the frame behind each alert (a state change between two
    /// known states) of the slow queries, into the report of that frame.
    pub fn enable_snapshots(&mut self, shots: Snapshotter) {
        self.snapshots = Some(shots);
    }

    /// The cadence of each query, in order.
    pub fn cadences(&self) -> Vec<Cadence> {
        self.queries
            .iter()
            .map(|q| Cadence::of(&q.config))
            .collect()
    }

    /// Answers the queries of `due` on `frame`, appending to `report` (its frame
    /// fields are left to the caller).
    pub fn answer(&mut self, frame: &Frame, due: u64, report: &mut FrameReport) {
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
            let span = tracing::trace_span!("slow query", camera = %self.camera, query = %q.id());
            let _enter = span.enter();
            match run::ask(q, frame, &mut self.encoded, &self.metrics) {
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
                Err(e) => {
                    let line = format!("query {}: {e}", q.id());
                    tracing::warn!("camera {}: {line}", self.camera);
                    report.errors.push(line);
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
                tracing::warn!("camera {}: {e}", self.camera);
                report.errors.push(e);
            }
        }
    }
}

/// The evaluator's side of a camera's generative worker.
pub struct SlowLane {
    mailbox: Arc<Mailbox<Job>>,
    shutdown: Shutdown,
    /// Pixel buffers coming back from the worker.
    free: Receiver<Vec<u8>>,
    spare: Vec<Vec<u8>>,
    thread: Option<JoinHandle<()>>,
}

impl SlowLane {
    /// Starts the worker thread of `generative`; its reports go to `emit`.
    /// `heartbeat`, when given, is beaten each time round the worker's loop (at least
    /// every 500 ms while it waits, and after every frame it answers).
    pub fn spawn(
        mut generative: Generative,
        shutdown: Shutdown,
        heartbeat: Option<Heartbeat>,
        emit: impl FnMut(Pooled) + Send + 'static,
    ) -> Self {
        let mailbox = Arc::new(Mailbox::new(generative.metrics.slow_replaced.clone()));
        let (free_tx, free) = crossbeam_channel::bounded(2);
        let inbox = mailbox.clone();
        let name = format!("gen-{}", generative.camera);
        let stop = shutdown.clone();
        let thread = std::thread::Builder::new()
            .name(name)
            .spawn(move || serve(&mut generative, &inbox, &free_tx, &stop, heartbeat, emit))
            .map_err(|e| tracing::error!("cannot start the generative worker: {e}"))
            .ok();
        Self {
            mailbox,
            shutdown,
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

    /// Lets the worker finish its current frame (and the waiting one, unless the
    /// daemon is shutting down) and stop.
    pub fn close(&mut self) {
        drop(self.mailbox.close(self.shutdown.is_triggered()));
        if let Some(t) = self.thread.take()
            && t.join().is_err()
        {
            tracing::error!("generative worker panicked");
        }
    }
}

impl Drop for SlowLane {
    fn drop(&mut self) {
        self.close();
    }
}

fn serve(
    generative: &mut Generative,
    inbox: &Mailbox<Job>,
    free: &Sender<Vec<u8>>,
    shutdown: &Shutdown,
    heartbeat: Option<Heartbeat>,
    mut emit: impl FnMut(Pooled),
) {
    let pool = ReportPool::new(generative.camera.clone(), 2);
    loop {
        if let Some(h) = &heartbeat {
            h.beat();
        }
        let job = match inbox.take(Duration::from_millis(500)) {
            Taken::Item(job) => job,
            Taken::Empty if shutdown.is_triggered() => break,
            Taken::Empty => continue,
            Taken::Closed => break,
        };
        let mut report = pool.take();
        start_report(&mut report, &job.frame);
        generative.answer(&job.frame, job.due, &mut report);
        if let Some(buf) = job.frame.into_buffer() {
            let _ = free.try_send(buf);
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
