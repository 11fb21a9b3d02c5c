//! One running camera: its source thread, its evaluator thread (which takes runtime
//! query changes between two frames) and its slow lane, stopped on its own
//! (a reload) or with the daemon.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::Sender;
use tokio::sync::mpsc;

use crate::app::status::{CameraView, Status, StatusCell};
use crate::cache::EmbeddingCache;
use crate::eval::{CameraWorker, WorkerContext, evaluate_until_closed};
use crate::kit::metrics::CameraMetrics;
use crate::kit::shutdown::Shutdown;
use crate::model::Registry;
use crate::publish::Outgoing;
use crate::query::ReportPool;
use crate::snapshot::SnapshotConfig;
use crate::source::{self, CameraConfig, Ended, WhenFull};

/// What every camera is started with.
#[derive(Clone)]
pub(super) struct CameraEnv {
    pub models: Arc<Registry>,
    pub cache: Arc<EmbeddingCache>,
    pub snapshots: Option<SnapshotConfig>,
    pub tx: mpsc::Sender<Outgoing>,
    pub shared: Arc<Status>,
}

pub(super) struct RunningCamera {
    pub view: CameraView,
    shutdown: Shutdown,
    /// The camera's queries after a runtime change.
    changes: Sender<CameraConfig>,
    handle: JoinHandle<Ended>,
}

impl RunningCamera {
    /// Starts `cam` with the models of `env`.
    pub(super) fn start(cam: &CameraConfig, env: &CameraEnv) -> Self {
        let shutdown = Shutdown::new();
        let (changes, changes_rx) = crossbeam_channel::bounded::<CameraConfig>(4);
        let policy = if cam.is_live() {
            WhenFull::DropOldest
        } else {
            WhenFull::Block
        };
        let metrics = Arc::new(CameraMetrics::default());
        let (frames_tx, frames_rx) =
            source::frame_queue_counting(cam.queue, policy, metrics.dropped.clone());
        let ctx = WorkerContext {
            cache: env.cache.clone(),
            metrics: metrics.clone(),
            lessons: env.shared.lessons.clone(),
        };
        let mut worker = CameraWorker::new(cam, &env.models, ctx);
        if let Some(cfg) = env.snapshots.clone() {
            worker.enable_snapshots(cfg);
        }
        worker.watch(env.shared.watchdog.clone());
        if let Some(web) = &env.shared.web {
            worker.show_live(web.tiles.tile(&cam.id).frame.clone());
        }
        let heartbeat = env
            .shared
            .watchdog
            .register(format!("camera {}: evaluator", cam.id));
        let emit = reporter(env, &cam.id);
        let slow_emit = emit.clone();
        worker.start_generative(shutdown.clone(), move |report| slow_emit(report));
        let status = Arc::new(StatusCell::default());
        let camera: Arc<str> = Arc::from(cam.id.as_str());
        let (status_tx, cell) = (env.tx.clone(), status.clone());
        let source = source::spawn(
            cam.clone(),
            worker.pixels(),
            frames_tx,
            move |s| {
                cell.set(s);
                let _ = status_tx.blocking_send(Outgoing::Camera {
                    camera: camera.clone(),
                    status: s,
                });
            },
            shutdown.clone(),
            source::Retry::Forever,
            metrics.clone(),
        );
        let view = CameraView {
            config: cam.clone(),
            metrics,
            progress: source.progress.clone(),
            status,
            ended: Arc::new(AtomicBool::new(false)),
        };
        let (models, tx, mut current) = (env.models.clone(), env.tx.clone(), cam.clone());
        let ended = view.ended.clone();
        let handle = std::thread::Builder::new()
            .name(format!("eval-{}", cam.id))
            .spawn(move || {
                let pool = ReportPool::new(worker.camera().clone(), 8);
                let progress = source.progress.clone();
                // Runtime query changes are taken between two frames.
                let between = |worker: &mut CameraWorker| {
                    while let Ok(next) = changes_rx.try_recv() {
                        let removed = current
                            .queries
                            .iter()
                            .filter(|q| !next.queries.iter().any(|n| n.id == q.id))
                            .map(|q| q.id.clone())
                            .collect();
                        let (regions, pixels) = worker.replace_queries(&next, &models);
                        progress.tuning.retune(regions, pixels);
                        let _ = tx.blocking_send(Outgoing::Queries {
                            camera: Box::new(next.clone()),
                            removed,
                        });
                        current = next;
                    }
                };
                evaluate_until_closed(
                    &mut worker,
                    &frames_rx,
                    &pool,
                    |r| emit(r),
                    between,
                    Some(&heartbeat),
                );
                drop(heartbeat);
                worker.stop_generative();
                tracing::info!(
                    camera = %worker.camera(),
                    "camera {}: {}",
                    worker.camera(),
                    worker.metrics().summary()
                );
                let end = source.join();
                ended.store(true, std::sync::atomic::Ordering::Relaxed);
                end
            })
            .unwrap_or_else(|e| panic!("cannot spawn a thread: {e}"));
        Self {
            view,
            shutdown,
            changes,
            handle,
        }
    }

    /// Hands the camera its new queries (taken between two frames).
    pub(super) fn change_queries(&mut self, cam: CameraConfig) -> bool {
        self.view.config = cam.clone();
        self.changes
            .send_timeout(cam, Duration::from_secs(5))
            .is_ok()
    }

    pub(super) fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }

    /// Asks the camera to stop (after its current frame).
    pub(super) fn stop(&self) {
        self.shutdown.trigger();
    }

    /// Waits for the camera's threads; how its source ended.
    pub(super) fn join(self) -> Ended {
        self.handle
            .join()
            .unwrap_or_else(|_| Ended::Failed("evaluator thread panicked".into()))
    }
}

/// Sends a camera's reports to the publisher, keeping each alert's snapshot for the
/// HTTP endpoint.
fn reporter(env: &CameraEnv, camera: &str) -> Arc<dyn Fn(crate::query::Pooled) + Send + Sync> {
    let (tx, shared, camera) = (env.tx.clone(), env.shared.clone(), camera.to_string());
    Arc::new(move |report| {
        if let Some(shot) = &report.snapshot {
            shared.put_snapshot(&camera, shot.jpeg.clone());
        }
        let _ = tx.blocking_send(Outgoing::Frame(report));
    })
}

/// Cameras that are running, for the summaries (which take them from `shared`).
pub(super) fn views(shared: &Status) -> Vec<(String, Arc<CameraMetrics>)> {
    shared
        .cameras()
        .iter()
        .map(|(id, v)| (id.clone(), v.metrics.clone()))
        .collect()
}
