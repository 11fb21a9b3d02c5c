//! `ocellus ask`: one camera's queries over an image, a clip or a URL, one JSON line
//! per evaluated frame on stdout.

use std::io::Write;

use std::sync::Arc;

use super::run::DaemonError;
use crate::app::config::Config;
use crate::cache::{EmbeddingCache, PromptCache};
use crate::engine;
use crate::eval::{CameraWorker, WorkerContext, evaluate_until_closed};
use crate::kit::metrics::CameraMetrics;
use crate::kit::shutdown::Shutdown;
use crate::model::Registry;
use crate::query::ReportPool;
use crate::source::{self, Ended, WhenFull};

#[derive(Debug, Clone, Default)]
/// How `ocellus ask` runs: which camera of the config, and how long.
pub struct AskOptions {
    /// Camera whose queries to run (required when the config has several).
    pub camera: Option<String>,
    /// Overrides the camera's `sample_fps`.
    pub sample_fps: Option<f64>,
}

/// Runs the queries over `media`; returns the exit code (1 if the media failed or a
/// query could not run).
pub fn ask(config: Config, media: &str, opts: AskOptions) -> Result<i32, DaemonError> {
    let mut cam = pick_camera(&config, opts.camera.as_deref())?;
    gstreamer::init().map_err(|e| DaemonError::Gstreamer(e.to_string()))?;
    cam.url = media.to_string();
    cam.resolve_paths(&std::env::current_dir().unwrap_or_default());
    cam.repeat = false;
    cam.realtime = false;
    if let Some(fps) = opts.sample_fps {
        cam.sample_fps = fps;
    }
    let mut needed = config.clone();
    needed.models.retain(|name, _| {
        cam.queries
            .iter()
            .any(|q| &q.model == name || q.escalate.as_ref() == Some(name))
    });
    let env = engine::environment(&config.engine)?;
    let models = Registry::load(
        &needed.models,
        &needed.engine,
        env,
        &Arc::new(PromptCache::default()),
    );
    let metrics = Arc::new(CameraMetrics::default());
    let ctx = WorkerContext {
        cache: Arc::new(EmbeddingCache::new(
            (config.cache.embeddings_mb as usize).saturating_mul(1 << 20),
        )),
        metrics: metrics.clone(),
        lessons: Arc::new(crate::teach::Lessons::new(config.teach.clone())),
    };
    let mut worker = CameraWorker::new(&cam, &models, ctx);
    let (tx, rx) = source::frame_queue(cam.queue, WhenFull::Block);
    let source = source::spawn(
        cam,
        worker.pixels(),
        tx,
        |_| {},
        Shutdown::new(),
        source::Retry::Never,
        metrics,
    );
    let pool = ReportPool::new(worker.camera().clone(), 2);
    let mut out = std::io::stdout().lock();
    let print = |report: crate::query::Pooled| {
        if let Ok(line) = serde_json::to_string(&*report) {
            let _ = writeln!(out, "{line}");
        }
    };
    let _ = evaluate_until_closed(&mut worker, &rx, &pool, print, |_| {}, None);
    tracing::info!(
        camera = %worker.camera(),
        "camera {}: {}",
        worker.camera(),
        worker.metrics().summary()
    );
    Ok(match source.join() {
        Ended::Failed(_) => 1,
        _ if worker.failed_queries() > 0 => 1,
        _ => 0,
    })
}

/// The camera `camera` of `config`, or its only camera; a usage error naming the
/// cameras otherwise.
pub(super) fn pick_camera(
    config: &Config,
    camera: Option<&str>,
) -> Result<crate::source::CameraConfig, DaemonError> {
    let ids = || {
        let ids: Vec<&str> = config.cameras.iter().map(|c| c.id.as_str()).collect();
        ids.join(", ")
    };
    match (camera, config.cameras.as_slice()) {
        (Some(id), cams) => cams.iter().find(|c| c.id == id).cloned().ok_or_else(|| {
            DaemonError::Usage(format!(
                "no camera {id:?} in {} (cameras: {})",
                config.path.display(),
                ids()
            ))
        }),
        (None, [only]) => Ok(only.clone()),
        (None, cams) => Err(DaemonError::Usage(format!(
            "{} has {} cameras; pick one with --camera ({})",
            config.path.display(),
            cams.len(),
            ids()
        ))),
    }
}
