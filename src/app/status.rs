//! What the daemon shows its endpoints: each camera's config, counters and progress,
//! each model's load state and counters, the publisher's counters, the latest
//! snapshots, and the way to ask the daemon for changes.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Instant;

use crossbeam_channel::Sender;

use crate::app::control::Request;
use crate::app::teacher::Teacher;
use crate::app::web::Web;
use crate::cache::{EmbeddingCache, PromptCache};
use crate::kit::metrics::{CameraMetrics, ModelMetrics, PublisherMetrics};
use crate::kit::watchdog::Watchdog;
use crate::source::{CameraConfig, CameraStatus, Progress};
use crate::teach::Lessons;

/// The daemon's runtime status: written by the daemon, read by the HTTP endpoints,
/// the metrics and the summaries.
pub struct Status {
    /// When the daemon started.
    pub started: Instant,
    /// Each camera's view, by camera id.
    pub cameras: RwLock<BTreeMap<String, CameraView>>,
    /// Each model's view, by model name.
    pub models: RwLock<BTreeMap<String, ModelView>>,
    /// `None` without a broker.
    pub publisher: Option<Arc<PublisherMetrics>>,
    /// The image-embedding cache, for its counters.
    pub cache: Arc<EmbeddingCache>,
    /// The prompt-embedding cache the models share.
    pub prompts: Arc<PromptCache>,
    /// The JPEG of each camera's latest alert.
    pub snapshots: Mutex<HashMap<String, Arc<[u8]>>>,
    /// Changes go to the daemon's supervisor (the same path as MQTT commands).
    pub requests: Sender<Request>,
    /// The loops that must keep moving (a stalled one makes the daemon unhealthy).
    pub watchdog: Arc<Watchdog>,
    /// Taught queries' examples, each camera's last frame and review items.
    pub lessons: Arc<Lessons>,
    /// Where labels go (the same queue as MQTT's); `None` outside `ocellus run`.
    pub teacher: Option<Teacher>,
    /// The web interface's live stream and pictures; `None` without `[http]`.
    pub web: Option<Arc<Web>>,
}

impl Status {
    /// The status of a daemon starting now.
    pub fn new(
        publisher: Option<Arc<PublisherMetrics>>,
        cache: Arc<EmbeddingCache>,
        requests: Sender<Request>,
        watchdog: Arc<Watchdog>,
    ) -> Self {
        Self {
            started: Instant::now(),
            cameras: RwLock::default(),
            models: RwLock::default(),
            publisher,
            cache,
            prompts: Arc::default(),
            snapshots: Mutex::default(),
            requests,
            watchdog,
            lessons: Arc::default(),
            teacher: None,
            web: None,
        }
    }

    /// Keeps taught queries' examples in `lessons`; labels go to `teacher`.
    pub fn with_lessons(mut self, lessons: Arc<Lessons>, teacher: Teacher) -> Self {
        self.lessons = lessons;
        self.teacher = Some(teacher);
        self
    }

    /// Serves the web interface's live parts.
    pub fn with_web(mut self, web: Arc<Web>) -> Self {
        self.web = Some(web);
        self
    }

    /// Shows `prompts` (the daemon's shared prompt cache) on the endpoints.
    pub fn with_prompts(mut self, prompts: Arc<PromptCache>) -> Self {
        self.prompts = prompts;
        self
    }

    /// The cameras' views, to read.
    pub fn cameras(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, CameraView>> {
        self.cameras.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The cameras' views, to change.
    pub fn cameras_mut(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<String, CameraView>> {
        self.cameras.write().unwrap_or_else(|e| e.into_inner())
    }

    /// The models' views, to read.
    pub fn models(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<String, ModelView>> {
        self.models.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the models' views (at start and after a reload).
    pub fn set_models(&self, models: BTreeMap<String, ModelView>) {
        *self.models.write().unwrap_or_else(|e| e.into_inner()) = models;
    }

    /// Keeps `jpeg` as `camera`'s latest snapshot (served by `GET /api/snapshot/<cam>`).
    pub fn put_snapshot(&self, camera: &str, jpeg: Arc<[u8]>) {
        self.snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(camera.to_string(), jpeg);
    }

    /// The latest snapshot of `camera`, if any.
    pub fn snapshot(&self, camera: &str) -> Option<Arc<[u8]>> {
        self.snapshots
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(camera)
            .cloned()
    }
}

/// One running camera.
#[derive(Clone)]
pub struct CameraView {
    /// As it runs now (runtime query changes included).
    pub config: CameraConfig,
    /// The camera's counters and histograms.
    pub metrics: Arc<CameraMetrics>,
    /// How far the camera's source has got (frames, reconnects, the stream's size).
    pub progress: Arc<Progress>,
    /// The camera's status as last published.
    pub status: Arc<StatusCell>,
    /// Set once its source has ended (a file played out, or a failure).
    pub ended: Arc<AtomicBool>,
}

/// One configured model.
#[derive(Clone)]
pub struct ModelView {
    /// The model's family (`clip`, `yolox`, ...).
    pub family: &'static str,
    /// Why it could not be loaded.
    pub error: Option<String>,
    /// The engine's counters (models with a batching engine).
    pub metrics: Option<Arc<ModelMetrics>>,
    /// The client's counters and availability (served models).
    pub remote: Option<Arc<crate::kit::metrics::RemoteMetrics>>,
    /// Answers the model gave that could not be read (qwen2vl grounding that is not
    /// JSON). A counter, not the model: the status must not keep a model alive.
    pub unreadable: Option<crate::kit::metrics::Counter>,
}

/// A camera's last reported status.
#[derive(Debug, Default)]
pub struct StatusCell(AtomicU8);

impl StatusCell {
    /// Records `s` as the camera's status.
    pub fn set(&self, s: CameraStatus) {
        let v = match s {
            CameraStatus::Online => 1,
            CameraStatus::Reconnecting => 2,
            CameraStatus::Offline => 3,
        };
        self.0.store(v, Ordering::Relaxed);
    }

    /// `starting` until the source reports.
    pub fn name(&self) -> &'static str {
        match self.0.load(Ordering::Relaxed) {
            1 => "online",
            2 => "reconnecting",
            3 => "offline",
            _ => "starting",
        }
    }
}
