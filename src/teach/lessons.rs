//! [`Lessons`]: every taught query's [`Lesson`] in the daemon (or one `ocellus`
//! command), each camera's last frame for "label the current frame", and each
//! camera's bounded list of review items.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::config::TeachConfig;
use super::error::TeachError;
use super::example::{Example, Source};
use super::label::Label;
use super::lesson::{Lesson, LessonSpec};
use super::review::ReviewItem;
use crate::kit::Frame;
use crate::model::Loaded;

/// Every lesson, frame slot and review list.
pub struct Lessons {
    cfg: TeachConfig,
    lessons: Mutex<HashMap<(String, String), Open>>,
    frames: Mutex<HashMap<String, Arc<FrameSlot>>>,
    reviews: Mutex<HashMap<String, VecDeque<Arc<ReviewItem>>>>,
    /// The frames behind the latest state changes of taught queries, per camera.
    events: Mutex<HashMap<String, VecDeque<Arc<ReviewItem>>>>,
    review_ids: AtomicU64,
}

/// An open lesson and the model that embeds its pictures.
struct Open {
    lesson: Arc<Lesson>,
    loaded: Arc<Loaded>,
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
            events: Mutex::default(),
            review_ids: AtomicU64::new(0),
        }
    }

    /// The `[teach]` section.
    pub fn config(&self) -> &TeachConfig {
        &self.cfg
    }

    /// The lesson of `spec`, opened (and its head trained) the first time, or again
    /// when its spec or its model's embedder changed.
    pub fn lesson(
        &self,
        spec: LessonSpec,
        loaded: &Arc<Loaded>,
    ) -> Result<Arc<Lesson>, TeachError> {
        let key = (spec.camera.clone(), spec.query.clone());
        if let Some(open) = lock(&self.lessons).get_mut(&key)
            && *open.lesson.spec() == spec
            && loaded.image_identity().as_deref() == Some(open.lesson.identity())
        {
            open.loaded = loaded.clone();
            return Ok(open.lesson.clone());
        }
        // Opened outside the map's lock: it may embed files.
        let lesson = Arc::new(Lesson::open(spec, &self.cfg, loaded)?);
        let open = Open {
            lesson: lesson.clone(),
            loaded: loaded.clone(),
        };
        lock(&self.lessons).insert(key, open);
        Ok(lesson)
    }

    /// The open lesson of `camera`'s `query`, if any.
    pub fn find(&self, camera: &str, query: &str) -> Option<Arc<Lesson>> {
        self.open(camera, query).map(|(l, _)| l)
    }

    fn open(&self, camera: &str, query: &str) -> Option<(Arc<Lesson>, Arc<Loaded>)> {
        lock(&self.lessons)
            .get(&(camera.to_string(), query.to_string()))
            .map(|o| (o.lesson.clone(), o.loaded.clone()))
    }

    fn taught(&self, camera: &str, query: &str) -> Result<(Arc<Lesson>, Arc<Loaded>), TeachError> {
        self.open(camera, query)
            .ok_or_else(|| TeachError::NotTaught {
                camera: crate::kit::shown(camera).to_string(),
                query: crate::kit::shown(query).to_string(),
            })
    }

    /// The open lessons, ordered by camera and query.
    pub fn all(&self) -> Vec<Arc<Lesson>> {
        let mut all: Vec<_> = lock(&self.lessons)
            .values()
            .map(|o| o.lesson.clone())
            .collect();
        all.sort_by(|a, b| {
            (&a.spec().camera, &a.spec().query).cmp(&(&b.spec().camera, &b.spec().query))
        });
        all
    }

    /// Applies a person's label to `camera`'s `query`: a review item's picture
    /// (then answered), or the camera's current frame (the query's region of it).
    /// The head is trained again before it returns; the camera answers with it
    /// from its next frame.
    pub fn label(
        &self,
        camera: &str,
        query: &str,
        label: &Label,
        source: Source,
    ) -> Result<Example, TeachError> {
        let (lesson, loaded) = self.taught(camera, query)?;
        let state = lesson.state(&label.state)?;
        if let Some(id) = &label.review {
            let item = self
                .review(camera, id)
                .filter(|r| &*r.query == query)
                .ok_or_else(|| TeachError::NoReview {
                    camera: camera.to_string(),
                    id: crate::kit::shown(id).to_string(),
                })?;
            let ex = lesson.add_picture(
                &state,
                &item.jpeg,
                &item.embedding,
                source,
                Some(format!("review {id}")),
                item.region,
                "person",
            )?;
            self.answered(camera, id);
            return Ok(ex);
        }
        if let Some(id) = &label.event {
            let item = lock(&self.events)
                .get(camera)
                .and_then(|l| {
                    l.iter()
                        .find(|r| &*r.id == id && &*r.query == query)
                        .cloned()
                })
                .ok_or_else(|| TeachError::NoEvent {
                    camera: camera.to_string(),
                    id: crate::kit::shown(id).to_string(),
                })?;
            return lesson.add_picture(
                &state,
                &item.jpeg,
                &item.embedding,
                source,
                Some(format!("event {id}")),
                item.region,
                "person",
            );
        }
        let region = lesson.spec().region;
        self.frame(camera)
            .with(|f| lesson.add_frame(&state, f, region, source, None, &loaded))
            .ok_or_else(|| TeachError::NoFrame {
                camera: camera.to_string(),
            })?
    }

    /// Labels a picture sent by a person (an uploaded image, taken as a frame of the
    /// camera: the query's region is cropped from it) as `state`.
    pub fn label_picture(
        &self,
        camera: &str,
        query: &str,
        state: &str,
        bytes: &[u8],
        source: Source,
    ) -> Result<Example, TeachError> {
        let (lesson, loaded) = self.taught(camera, query)?;
        let state = lesson.state(state)?;
        let n = self.review_ids.fetch_add(1, Ordering::Relaxed);
        let tmp = lesson
            .dir()
            .join(format!(".upload-{}-{n}.tmp", std::process::id()));
        std::fs::create_dir_all(lesson.dir()).map_err(|e| TeachError::io(lesson.dir(), e))?;
        std::fs::write(&tmp, bytes).map_err(|e| TeachError::io(&tmp, e))?;
        let frame = crate::source::first_frame(&tmp, crate::kit::Pixels::Rgb);
        let _ = std::fs::remove_file(&tmp);
        let frame = frame.map_err(|e| TeachError::Image {
            file: "the uploaded picture".into(),
            why: e.to_string(),
        })?;
        let region = lesson.spec().region;
        lesson.add_frame(
            &state,
            &frame,
            region,
            source,
            Some("upload".into()),
            &loaded,
        )
    }

    /// Removes example `id` of `camera`'s `query`.
    pub fn forget(&self, camera: &str, query: &str, id: &str) -> Result<(), TeachError> {
        self.taught(camera, query)?.0.forget(id)
    }

    /// `camera`'s `query`'s lesson, or why there is none.
    pub fn lesson_of(&self, camera: &str, query: &str) -> Result<Arc<Lesson>, TeachError> {
        Ok(self.taught(camera, query)?.0)
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

    /// The kept frame behind event `id` of `camera`, if still kept.
    pub fn event(&self, camera: &str, id: &str) -> Option<Arc<ReviewItem>> {
        lock(&self.events)
            .get(camera)?
            .iter()
            .find(|r| &*r.id == id)
            .cloned()
    }

    /// Keeps the frame behind a state change (`item.id` is its event id), the
    /// oldest going beyond `review_keep` per camera.
    pub fn add_event(&self, item: Arc<ReviewItem>) {
        let mut all = lock(&self.events);
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
