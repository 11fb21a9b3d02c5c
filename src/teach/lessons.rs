//! [`Lessons`]: every taught query's [`Lesson`] in the daemon (or one `ocellus`
//! command), each camera's last frame for "label the current frame", and each
//! camera's bounded list of review items.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::config::TeachConfig;
use super::error::TeachError;
use super::lesson::{Lesson, LessonSpec};
use super::review::ReviewItem;
use crate::kit::Frame;
use crate::model::Loaded;

/// Every lesson, frame slot and review list.
pub struct Lessons {
    cfg: TeachConfig,
    lessons: Mutex<HashMap<(String, String), Arc<Lesson>>>,
    frames: Mutex<HashMap<String, Arc<FrameSlot>>>,
    reviews: Mutex<HashMap<String, VecDeque<Arc<ReviewItem>>>>,
    review_ids: AtomicU64,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Default for Lessons {
    fn default() -> Self {
        Self::new(TeachConfig::default())
    }
}

impl Lessons {
    /// Lessons stored under `cfg.dir`.
    pub fn new(cfg: TeachConfig) -> Self {
        Self {
            cfg,
            lessons: Mutex::default(),
            frames: Mutex::default(),
            reviews: Mutex::default(),
            review_ids: AtomicU64::new(0),
        }
    }

    /// The `[teach]` section.
    pub fn config(&self) -> &TeachConfig {
        &self.cfg
    }

    /// The lesson of `spec`, opened (and its head trained) the first time, or again
    /// when its spec or its model's embedder changed.
    pub fn lesson(&self, spec: LessonSpec, loaded: &Loaded) -> Result<Arc<Lesson>, TeachError> {
        let key = (spec.camera.clone(), spec.query.clone());
        if let Some(l) = lock(&self.lessons).get(&key)
            && *l.spec() == spec
            && loaded.image_identity().as_deref() == Some(l.identity())
        {
            return Ok(l.clone());
        }
        // Opened outside the map's lock: it may embed files.
        let lesson = Arc::new(Lesson::open(spec, &self.cfg, loaded)?);
        lock(&self.lessons).insert(key, lesson.clone());
        Ok(lesson)
    }

    /// The open lesson of `camera`'s `query`, if any.
    pub fn find(&self, camera: &str, query: &str) -> Option<Arc<Lesson>> {
        lock(&self.lessons)
            .get(&(camera.to_string(), query.to_string()))
            .cloned()
    }

    /// `camera`'s last frame.
    pub fn frame(&self, camera: &str) -> Arc<FrameSlot> {
        lock(&self.frames)
            .entry(camera.to_string())
            .or_default()
            .clone()
    }

    /// A new review item id.
    pub fn review_id(&self) -> Arc<str> {
        let n = self.review_ids.fetch_add(1, Ordering::Relaxed);
        let time: String = humantime::format_rfc3339_millis(std::time::SystemTime::now())
            .to_string()
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
            .collect();
        Arc::from(format!("r-{time}-{n}"))
    }

    /// Keeps `item` in its camera's list (the oldest goes beyond `review_keep`).
    pub fn add_review(&self, item: Arc<ReviewItem>) {
        let mut all = lock(&self.reviews);
        let list = all.entry(item.camera.to_string()).or_default();
        while list.len() >= self.cfg.review_keep.max(1) {
            list.pop_front();
        }
        list.push_back(item);
    }

    /// `camera`'s review items, oldest first.
    pub fn reviews(&self, camera: &str) -> Vec<Arc<ReviewItem>> {
        lock(&self.reviews)
            .get(camera)
            .map(|l| l.iter().cloned().collect())
            .unwrap_or_default()
    }

    /// `camera`'s review item `id`, if still kept.
    pub fn review(&self, camera: &str, id: &str) -> Option<Arc<ReviewItem>> {
        lock(&self.reviews)
            .get(camera)?
            .iter()
            .find(|r| &*r.id == id)
            .cloned()
    }

    /// Removes review item `id` of `camera` (it was answered).
    pub fn answered(&self, camera: &str, id: &str) {
        if let Some(list) = lock(&self.reviews).get_mut(camera) {
            list.retain(|r| &*r.id != id);
        }
    }
}

/// A camera's last frame with pixels, copied into a reused buffer.
#[derive(Default)]
pub struct FrameSlot {
    frame: Mutex<Option<Frame>>,
}

impl FrameSlot {
    /// Keeps a copy of `frame` (the previous copy's buffer is reused).
    pub fn keep(&self, frame: &Frame) {
        let mut slot = lock(&self.frame);
        let buf = slot.take().and_then(Frame::into_buffer).unwrap_or_default();
        *slot = Some(frame.copy_into(buf));
    }

    /// Runs `f` on the last frame; `None` before the first.
    pub fn with<T>(&self, f: impl FnOnce(&Frame) -> T) -> Option<T> {
        lock(&self.frame).as_ref().map(f)
    }
}
