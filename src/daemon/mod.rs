//! Daemon: wires the stages together. Per camera a source thread (GStreamer) and an
//! evaluator thread (gate → models → queries) joined by a bounded frame queue, plus a
//! generative worker for its slow queries (VLMs, OCR) fed newest-frame-wins; one
//! publisher task on tokio. `run` serves until SIGINT/SIGTERM (or until every file
//! camera has ended); `ask` runs one camera's queries over a given image, clip or URL
//! and prints a JSON line per evaluated frame.
//!
//! ```no_run
//! let config = ocellus::config::load("pipelines/demo.toml".as_ref()).unwrap();
//! let code = ocellus::daemon::run(config, ocellus::daemon::RunOptions::default()).unwrap();
//! std::process::exit(code);
//! ```

mod ask;
pub mod generative;
mod worker;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::Receiver;
use std::time::Duration;

use tokio::sync::mpsc;

pub use ask::{AskOptions, ask};
pub use worker::{CameraWorker, WorkerContext};

use crate::cache::{EmbeddingCache, PromptCache};
use crate::config::Config;
use crate::control::{self, Control, StateFile};
use crate::engine::{self, EngineError};
use crate::metrics::{CameraMetrics, PublisherMetrics};
use crate::model::Registry;
use crate::publish::{self, MqttConfig, Outgoing, PublishError};
use crate::query::{Pooled, ReportPool};
use crate::shutdown::Shutdown;
use crate::source::{self, CameraConfig, Ended, FrameReceiver, WhenFull};

/// Runtime query commands waiting for the control thread.
const COMMANDS: usize = 64;

/// How often the metrics summary is logged.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("GStreamer: {0}")]
    Gstreamer(String),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Publish(#[from] PublishError),
    #[error("{0}")]
    Usage(String),
    #[error("cannot start the async runtime: {0}")]
    Runtime(std::io::Error),
}

#[derive(Debug, Default, Clone)]
pub struct RunOptions {
    /// Overrides `[mqtt] url` (or enables MQTT when the config has no `[mqtt]`).
    pub mqtt_url: Option<String>,
}

/// Runs the daemon; returns the process exit code (0 after a signal or when every
/// camera finished cleanly, 1 when a camera failed).
pub fn run(mut config: Config, opts: RunOptions) -> Result<i32, DaemonError> {
    gstreamer::init().map_err(|e| DaemonError::Gstreamer(e.to_string()))?;
    let env = engine::environment(&config.engine)?;
    let prompts = Arc::new(PromptCache::default());
    let models = Arc::new(Registry::load(&config, env, &prompts));
    let cache = Arc::new(EmbeddingCache::new(
        (config.cache.embeddings_mb as usize).saturating_mul(1 << 20),
    ));
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .thread_name("ocellus-io")
        .build()
        .map_err(DaemonError::Runtime)?;
    let mqtt = match (opts.mqtt_url, config.mqtt.clone()) {
        (Some(url), Some(mut m)) => {
            m.url = url;
            Some(m)
        }
        (Some(url), None) => Some(MqttConfig::from_url(&url)),
        (None, m) => m,
    };
    // Runtime query changes (over MQTT) are saved next to the outbox journal.
    let state = mqtt.as_ref().and_then(|m| m.state_dir.as_deref());
    let mut control = Control::new(&config, state.map(StateFile::in_dir));
    control.restore(&models);
    config.cameras = control.cameras();
    let (commands_tx, commands) = crossbeam_channel::bounded(COMMANDS);
    // The publisher's counters are logged only when there is a broker to count for.
    let mqtt_metrics = mqtt
        .is_some()
        .then(|| Arc::new(PublisherMetrics::default()));
    let (tx, publisher) = publish::spawn(
        rt.handle(),
        mqtt,
        true,
        &config.cameras,
        config.snapshots.is_some(),
        Some(commands_tx),
        mqtt_metrics.clone().unwrap_or_default(),
    )?;
    let shutdown = Shutdown::new();
    rt.spawn(signals(shutdown.clone()));

    let mut routes = BTreeMap::new();
    let cameras: Vec<_> = config
        .cameras
        .iter()
        .map(|cam| {
            let (changes_tx, changes) = crossbeam_channel::bounded(4);
            routes.insert(cam.id.clone(), changes_tx);
            start_camera(
                cam,
                &models,
                &cache,
                config.snapshots.clone(),
                (tx.clone(), changes),
                shutdown.clone(),
            )
        })
        .collect();
    let (done, control_done) = crossbeam_channel::bounded::<()>(0);
    let reject_tx = tx.clone();
    let routes = control::Routes {
        cameras: routes,
        reject: Box::new(move |cmd, reason| {
            let _ = reject_tx.blocking_send(Outgoing::Rejected {
                camera: cmd.camera.clone(),
                query: cmd.query.clone(),
                reason,
            });
        }),
    };
    let control = control::spawn(control, models.clone(), commands, control_done, routes)
        .map_err(DaemonError::Runtime)?;
    drop(tx);
    let watched: Vec<(String, Arc<CameraMetrics>)> = cameras
        .iter()
        .map(|(id, m, _)| (id.clone(), m.clone()))
        .collect();
    rt.spawn(summaries(
        watched,
        models.clone_engines(),
        cache.clone(),
        mqtt_metrics.clone(),
    ));
    let mut failed = 0;
    for (id, _, handle) in cameras {
        match handle.join() {
            Ok(Ended::Failed(_)) => failed += 1,
            Ok(ended) => tracing::info!("camera {id}: {ended:?}"),
            Err(_) => {
                tracing::error!("camera {id}: evaluator thread panicked");
                failed += 1;
            }
        }
    }
    drop(done);
    if control.join().is_err() {
        tracing::error!("the runtime query thread panicked");
    }
    rt.block_on(async {
        match tokio::time::timeout(Duration::from_secs(10), publisher).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("publisher task failed: {e}"),
            Err(_) => tracing::error!("publisher did not finish within 10 s"),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    if let Some(m) = &mqtt_metrics {
        tracing::info!("metrics mqtt: {}", m.summary());
    }
    Ok(if shutdown.is_triggered() || failed == 0 {
        0
    } else {
        1
    })
}

/// Starts one camera: its source thread and its evaluator thread (returned with the
/// camera's metrics).
fn start_camera(
    cam: &CameraConfig,
    models: &Arc<Registry>,
    cache: &Arc<EmbeddingCache>,
    snapshots: Option<crate::snapshot::SnapshotConfig>,
    (tx, changes): (mpsc::Sender<Outgoing>, Receiver<CameraConfig>),
    shutdown: Shutdown,
) -> (String, Arc<CameraMetrics>, JoinHandle<Ended>) {
    let policy = if cam.is_live() {
        WhenFull::DropOldest
    } else {
        WhenFull::Block
    };
    let metrics = Arc::new(CameraMetrics::default());
    let (frames_tx, frames_rx) =
        source::frame_queue_counting(cam.queue, policy, metrics.dropped.clone());
    let ctx = WorkerContext {
        cache: cache.clone(),
        metrics: metrics.clone(),
    };
    let mut worker = CameraWorker::new(cam, models, ctx);
    if let Some(cfg) = snapshots {
        worker.enable_snapshots(cfg);
    }
    let slow_tx = tx.clone();
    worker.start_generative(shutdown.clone(), move |report| {
        let _ = slow_tx.blocking_send(Outgoing::Frame(report));
    });
    let camera: Arc<str> = Arc::from(cam.id.as_str());
    let status_tx = tx.clone();
    let source = source::spawn(
        cam.clone(),
        worker.pixels(),
        frames_tx,
        move |status| {
            let _ = status_tx.blocking_send(Outgoing::Camera {
                camera: camera.clone(),
                status,
            });
        },
        shutdown,
        source::Retry::Forever,
        metrics.clone(),
    );
    let id = cam.id.clone();
    let models = models.clone();
    let mut current = cam.clone();
    let handle = std::thread::Builder::new()
        .name(format!("eval-{id}"))
        .spawn(move || {
            let pool = ReportPool::new(worker.camera().clone(), 8);
            let progress = source.progress.clone();
            let emit = |report| {
                let _ = tx.blocking_send(Outgoing::Frame(report));
            };
            // Runtime query changes are taken between two frames.
            let between = |worker: &mut CameraWorker| {
                while let Ok(next) = changes.try_recv() {
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
            evaluate_until_closed(&mut worker, &frames_rx, &pool, emit, between);
            worker.stop_generative();
            tracing::info!("camera {}: {}", worker.camera(), worker.metrics().summary());
            source.join()
        })
        .unwrap_or_else(|e| panic!("cannot spawn a thread: {e}"));
    (cam.id.clone(), metrics, handle)
}

/// Evaluates every sample the source delivers (the gates already ran in the
/// pipeline) until it closes the queue; returns how many were reported.
fn evaluate_until_closed(
    worker: &mut CameraWorker,
    frames: &FrameReceiver,
    pool: &ReportPool,
    mut emit: impl FnMut(Pooled),
    mut between: impl FnMut(&mut CameraWorker),
) -> u64 {
    let mut evaluated = 0;
    while let Ok(next) = frames.recv_timeout(Duration::from_millis(250)) {
        between(worker);
        let Some(sample) = next else { continue };
        let mut report = pool.take();
        if worker.evaluate(&sample, &mut report) {
            // The frame's buffer goes back to GStreamer before the report is sent.
            drop(sample);
            emit(report);
            evaluated += 1;
        }
    }
    evaluated
}

/// Logs every camera's and model's counters, and the publisher's, once a minute.
async fn summaries(
    cameras: Vec<(String, Arc<CameraMetrics>)>,
    engines: Vec<(String, Arc<crate::metrics::ModelMetrics>)>,
    cache: Arc<EmbeddingCache>,
    mqtt: Option<Arc<PublisherMetrics>>,
) {
    let mut tick = tokio::time::interval(SUMMARY_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        for (id, m) in &cameras {
            tracing::info!("metrics camera {id}: {}", m.summary());
        }
        for (name, m) in &engines {
            tracing::info!("metrics model {name}: {}", m.summary());
        }
        tracing::info!(
            "metrics cache: {} hits, {} misses, {} evictions, {} KiB",
            cache.hits(),
            cache.misses(),
            cache.evictions(),
            cache.bytes() / 1024
        );
        if let Some(m) = &mqtt {
            tracing::info!("metrics mqtt: {}", m.summary());
        }
    }
}

async fn signals(shutdown: Shutdown) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        };
        shutdown.trigger();
        tracing::info!("{name}: shutting down");
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
        shutdown.trigger();
    }
}
