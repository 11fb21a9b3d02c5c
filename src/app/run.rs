//! Daemon: wires the stages together. Per camera a source thread (GStreamer) and an
//! evaluator thread (gate → models → queries) joined by a bounded frame queue, plus a
//! slow lane for its slow queries (VLMs, OCR) fed newest-frame-wins; one
//! publisher task on tokio; a supervisor that serves query changes and reloads, with
//! a `query-binder` thread that binds runtime queries to their models. `run` serves until SIGINT/SIGTERM (or until every file
//! camera has ended); `ask` runs one camera's queries over a given image, clip or URL
//! and prints a JSON line per evaluated frame.
//!
//! ```no_run
//! let config = ocellus::app::config::load("pipelines/demo.toml".as_ref()).unwrap();
//! let code = ocellus::app::run(config, ocellus::app::RunOptions::default()).unwrap();
//! std::process::exit(code);
//! ```

use std::sync::Arc;
use std::time::Duration;

use super::camera::{self, CameraEnv};
use super::supervisor::Supervisor;
use super::teacher::Teacher;

use crate::app::config::Config;
use crate::app::control::{Control, Request, StateFile};
use crate::app::http;
use crate::app::status::Status;
use crate::app::web::Web;
use crate::cache::{EmbeddingCache, PromptCache};
use crate::engine::{self, EngineError};
use crate::kit::metrics::PublisherMetrics;
use crate::kit::shutdown::Shutdown;
use crate::kit::watchdog::{self, Notifier, Watchdog};
use crate::model::Registry;
use crate::publish::{self, MqttConfig, PublishError};

/// Requests (query changes, reloads) waiting for the supervisor.
const REQUESTS: usize = 64;

/// How often the metrics summary is logged.
const SUMMARY_EVERY: Duration = Duration::from_secs(60);

#[derive(Debug, thiserror::Error)]
/// Why the daemon could not start or run.
pub enum DaemonError {
    #[error("GStreamer: {0}")]
    /// GStreamer could not be initialised.
    Gstreamer(String),
    #[error(transparent)]
    /// ONNX Runtime could not be loaded.
    Engine(#[from] EngineError),
    #[error(transparent)]
    /// The publisher could not start (broker URL, credentials, TLS files).
    Publish(#[from] PublishError),
    #[error("{0}")]
    /// The command line or config asks for something impossible.
    Usage(String),
    #[error("cannot start the async runtime: {0}")]
    /// The tokio runtime could not start.
    Runtime(std::io::Error),
    #[error(transparent)]
    /// Labelling or reading a query's examples failed (`ocellus teach`, `dataset`).
    Teach(#[from] crate::teach::TeachError),
}

#[derive(Debug, Default, Clone)]
/// What `ocellus run` takes besides the config.
pub struct RunOptions {
    /// Overrides `[mqtt] url` (or enables MQTT when the config has no `[mqtt]`).
    pub mqtt_url: Option<String>,
}

/// Runs the daemon; returns the process exit code (0 after a signal or when every
/// camera finished cleanly, 1 when a camera failed).
pub fn run(config: Config, opts: RunOptions) -> Result<i32, DaemonError> {
    if let Some(why) = opts.mqtt_url.as_deref().and_then(MqttConfig::url_problem) {
        return Err(DaemonError::Usage(format!("--mqtt-url {why}")));
    }
    gstreamer::init().map_err(|e| DaemonError::Gstreamer(e.to_string()))?;
    let env = engine::environment(&config.engine)?;
    let prompts = Arc::new(PromptCache::new(config.cache.prompts_bytes()));
    let models = Arc::new(Registry::load(
        &config.models,
        &config.engine,
        env,
        &prompts,
    ));
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
    // Runtime query changes (over MQTT or HTTP) are saved next to the outbox journal.
    let state = mqtt.as_ref().and_then(|m| m.state_dir.as_deref());
    let mut control = Control::new(&config, state.map(StateFile::in_dir));
    control.restore(&models);
    let cameras = control.cameras();
    let (requests_tx, requests) = crossbeam_channel::bounded(REQUESTS);
    // The publisher's counters are logged only when there is a broker to count for.
    let mqtt_metrics = mqtt
        .is_some()
        .then(|| Arc::new(PublisherMetrics::default()));
    // systemd (Type=notify): READY/RELOADING/STOPPING, and watchdog pings while every
    // watched loop makes progress.
    let notifier = Notifier::from_env().map(Arc::new);
    let (limit, every) = watchdog::timing(notifier.as_ref().and_then(|n| n.watchdog()));
    let watchdog = Watchdog::new(limit);
    // Labels of taught queries (MQTT and HTTP) go to the teacher's thread.
    let lessons = Arc::new(crate::teach::Lessons::new(config.teach.clone()));
    let (teacher, labels) = Teacher::queue();
    // The web interface sees what the publisher publishes (its live stream).
    let web = config.http.as_ref().map(|h| {
        let prefix = mqtt.as_ref().map_or("ocellus", |m| m.prefix.as_str());
        Arc::new(Web::new(prefix, h.web.clone()))
    });
    let links = publish::Links {
        commands: Some({
            let requests = requests_tx.clone();
            Arc::new(move |cmd| {
                requests
                    .try_send(Request::Query { cmd, reply: None })
                    .is_ok()
            })
        }),
        labels: Some(teacher.labels()),
        metrics: mqtt_metrics.clone().unwrap_or_default(),
        tap: web.as_ref().map(|w| w.hub.clone() as publish::Tap),
        heartbeat: Some(watchdog.register("publisher")),
    };
    let (tx, publisher) = publish::spawn(
        rt.handle(),
        mqtt,
        true,
        &cameras,
        config.snapshots.is_some(),
        links,
    )?;
    let shutdown = Shutdown::new();
    rt.spawn(signals(shutdown.clone(), requests_tx.clone()));
    let mut status = Status::new(
        mqtt_metrics.clone(),
        cache.clone(),
        requests_tx,
        watchdog.clone(),
    )
    .with_prompts(prompts.clone())
    .with_lessons(lessons.clone(), teacher);
    if let Some(web) = web {
        status = status.with_web(web);
    }
    let shared = Arc::new(status);
    Teacher::spawn(labels, lessons, &tx);
    if let Some(http) = &config.http {
        http::spawn(rt.handle(), http, shared.clone());
    }
    let camera_env = CameraEnv {
        models,
        cache,
        snapshots: config.snapshots.clone(),
        tx,
        shared: shared.clone(),
    };
    let mut supervisor = Supervisor::start(config, env, prompts, control, camera_env);
    rt.spawn(summaries(shared.clone()));
    rt.spawn(watchdog::serve(
        watchdog.clone(),
        notifier.clone(),
        every,
        shutdown.clone(),
    ));
    let notify = |state: &str| {
        if let Some(n) = &notifier {
            n.send(state);
        }
    };
    notify(&format!("READY=1\nSTATUS={}", supervisor.status()));
    let heartbeat = watchdog.register("supervisor");
    // Query changes bound to their models off this thread come back here.
    let bound = supervisor.bound();
    loop {
        heartbeat.beat();
        crossbeam_channel::select! {
            recv(requests) -> request => match request {
                Ok(request @ Request::Reload { .. }) => {
                    notify("RELOADING=1");
                    supervisor.handle(request);
                    notify(&format!("READY=1\nSTATUS={}", supervisor.status()));
                }
                Ok(request) => supervisor.handle(request),
                Err(_) => break,
            },
            recv(bound) -> done => {
                if let Ok(done) = done {
                    supervisor.finish(done);
                }
            }
            default(Duration::from_millis(200)) => {}
        }
        if shutdown.is_triggered() || !supervisor.reap() {
            break;
        }
    }
    notify("STOPPING=1");
    drop(heartbeat);
    let failed = supervisor.stop_all();
    rt.block_on(async {
        match tokio::time::timeout(Duration::from_secs(10), publisher).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => tracing::error!("publisher task failed: {e}"),
            Err(_) => tracing::error!("publisher did not finish within 10 s"),
        }
    });
    rt.shutdown_timeout(Duration::from_secs(1));
    log_engines(&shared);
    if let Some(m) = &mqtt_metrics {
        tracing::info!("metrics mqtt: {}", m.summary());
    }
    Ok(if shutdown.is_triggered() || failed == 0 {
        0
    } else {
        1
    })
}

/// Logs every camera's and model's counters, and the publisher's, once a minute.
async fn summaries(shared: Arc<Status>) {
    let mut tick = tokio::time::interval(SUMMARY_EVERY);
    tick.tick().await;
    loop {
        tick.tick().await;
        for (id, m) in camera::views(&shared) {
            tracing::info!(camera = %id, "metrics camera {id}: {}", m.summary());
        }
        log_engines(&shared);
        let cache = &shared.cache;
        tracing::info!(
            "metrics cache: {} hits, {} misses, {} evictions, {} KiB",
            cache.hits(),
            cache.misses(),
            cache.evictions(),
            cache.bytes() / 1024
        );
        let prompts = &shared.prompts;
        tracing::info!(
            "metrics prompt cache: {} hits, {} misses, {} evictions, {} entries, {} KiB",
            prompts.hits(),
            prompts.misses(),
            prompts.evictions(),
            prompts.len(),
            prompts.bytes() / 1024
        );
        if let Some(m) = &shared.publisher {
            tracing::info!("metrics mqtt: {}", m.summary());
        }
    }
}

/// One line per model engine: runs, frames, mean batch, waits.
fn log_engines(shared: &Status) {
    let engines: Vec<_> = shared
        .models()
        .iter()
        .filter_map(|(n, m)| Some((n.clone(), m.metrics.clone()?)))
        .collect();
    for (name, m) in engines {
        tracing::info!(model = %name, "metrics model {name}: {}", m.summary());
    }
}

/// SIGTERM and SIGINT shut down; SIGHUP asks for a reload.
async fn signals(shutdown: Shutdown, requests: crossbeam_channel::Sender<Request>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
            signal(SignalKind::terminate()),
            signal(SignalKind::interrupt()),
            signal(SignalKind::hangup()),
        ) else {
            tracing::error!("cannot install signal handlers");
            return;
        };
        let name = loop {
            tokio::select! {
                _ = term.recv() => break "SIGTERM",
                _ = int.recv() => break "SIGINT",
                _ = hup.recv() => {
                    tracing::info!("SIGHUP: reloading the config");
                    if requests.try_send(Request::Reload { reply: None }).is_err() {
                        tracing::warn!("SIGHUP: the daemon is busy; try again");
                    }
                }
            }
        };
        shutdown.trigger();
        tracing::info!("{name}: shutting down");
    }
    #[cfg(not(unix))]
    {
        let _ = requests;
        let _ = tokio::signal::ctrl_c().await;
        shutdown.trigger();
    }
}
