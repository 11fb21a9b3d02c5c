//! [`Lesson`]: one taught query's examples, on disk and in memory, and the head
//! trained on them. Labelling (CLI, MQTT, HTTP) adds to it from any thread; the
//! camera's evaluator picks up a new head between two frames by its generation
//! number, without a lock on the frame path.

use std::collections::{BTreeMap, VecDeque};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use serde::Serialize;

use super::config::TeachConfig;
use super::crop::{crop_jpeg, decode};
use super::error::TeachError;
use super::example::{Example, Source};
use super::head::{Head, cross_validate};
use super::store::Store;
use crate::kit::Frame;
use crate::model::Loaded;
use crate::model::clip::{ClipImage, Embedding};

/// What a lesson is for: the query's names, states and region.
#[derive(Debug, Clone, PartialEq)]
pub struct LessonSpec {
    /// The camera's id.
    pub camera: String,
    /// The query's id.
    pub query: String,
    /// The model that embeds its pictures (a clip or embedder model).
    pub model: String,
    /// The query's states: `["ON", "OFF"]` for yes_no, the labels for classify.
    pub states: Vec<String>,
    /// A yes_no query (its states are also said `yes`/`no`, `true`/`false`).
    pub yes_no: bool,
    /// The query's `examples` folder: a sub-folder of images per state.
    pub folder: Option<PathBuf>,
    /// The query's region (what "label the current frame" crops).
    pub region: Option<[f32; 4]>,
}

/// The head trained on a lesson's examples, and what the query reports of it.
#[derive(Debug)]
pub struct Trained {
    /// `None` until every state has an example labelled by a person.
    pub head: Option<Head>,
    /// Examples per state, accuracy: the query's attributes.
    pub summary: Arc<Summary>,
    /// Examples the head was trained on.
    pub examples: usize,
}

/// What a taught query reports (in its attributes, `ocellus teach`, the HTTP API).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Summary {
    /// Examples labelled by a person, per state.
    pub examples: BTreeMap<String, usize>,
    /// Leave-one-out (5-fold beyond 40 examples) accuracy; `None` while a state has
    /// fewer than 2 examples.
    pub accuracy: Option<f32>,
    /// Examples a model made (escalation candidates), not trained on.
    #[serde(skip_serializing_if = "is_zero")]
    pub candidates: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One taught query's examples and head.
pub struct Lesson {
    spec: LessonSpec,
    /// The embedder's identity the stored embeddings must match.
    identity: String,
    store: Store,
    max: usize,
    /// From the `examples` folder (not stored, not forgettable).
    folder: Vec<Example>,
    examples: Mutex<Vec<Example>>,
    trained: Mutex<Arc<Trained>>,
    generation: AtomicU64,
    review: Mutex<ReviewGate>,
    escalations: Mutex<Escalations>,
}

/// The scene sent to the escalation model and not answered yet, and the recent
/// answers it gave, by scene.
#[derive(Default)]
struct Escalations {
    pending: Option<Pending>,
    answered: VecDeque<(Embedding, f32)>,
}

/// A frame handed to the escalation model.
struct Pending {
    seq: u64,
    at: Instant,
    embedding: Embedding,
    jpeg: Vec<u8>,
    region: Option<[f32; 4]>,
}

/// How long an unanswered escalation blocks the next one (a frame the slow lane
/// dropped for a newer one is never answered).
const ESCALATION_PATIENCE: Duration = Duration::from_secs(60);

/// When the query last made a review item, and the embeddings of its recent ones.
#[derive(Default)]
struct ReviewGate {
    last: Option<Instant>,
    recent: VecDeque<Embedding>,
}

/// Review items closer than this (cosine) to a recent one are the same scene.
const SAME_SCENE: f32 = 0.97;
/// Recent review embeddings compared with.
const RECENT_REVIEWS: usize = 16;

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Lesson {
    /// Loads the query's stored examples (embedding again from its crop any example
    /// of another embedder) and its folder, and trains the head. A file that cannot
    /// be read is logged, one line naming it, and left out.
    pub fn open(spec: LessonSpec, cfg: &TeachConfig, loaded: &Loaded) -> Result<Self, TeachError> {
        let identity = loaded
            .image_identity()
            .ok_or_else(|| TeachError::NoEmbedder(spec.model.clone()))?;
        let root = cfg
            .dir
            .clone()
            .unwrap_or_else(|| PathBuf::from(".ocellus/examples"));
        let store = Store::new(&root, &spec.camera, &spec.query);
        let (mut examples, problems) = store.load();
        for p in problems {
            tracing::warn!(camera = %spec.camera, query = %spec.query, "examples: {p}; left out");
        }
        // Files copied in by hand may outnumber the bound: the newest are kept.
        if examples.len() > cfg.max_examples {
            tracing::warn!(
                camera = %spec.camera,
                query = %spec.query,
                "examples: {} in {}, over [teach] max_examples = {}; the oldest left out",
                examples.len(),
                store.dir().display(),
                cfg.max_examples
            );
            let extra = examples.len() - cfg.max_examples;
            examples.drain(..extra);
        }
        let mut scratch = ClipImage::new();
        let mut recomputed = 0;
        examples.retain_mut(|ex| {
            if ex.embedder == identity {
                return true;
            }
            let jpeg = store.jpeg_path(&ex.id);
            match embed_file(loaded, &spec.model, &jpeg, &mut scratch) {
                Ok(e) => {
                    ex.embedding = e.to_vec();
                    ex.embedder = identity.clone();
                    if let Err(e) = store.save(ex, None) {
                        tracing::warn!(camera = %spec.camera, query = %spec.query, "examples: {e}");
                    }
                    recomputed += 1;
                    true
                }
                Err(e) => {
                    tracing::warn!(
                        camera = %spec.camera, query = %spec.query,
                        "example {}: made with another embedder and cannot be embedded again: {e}; left out",
                        ex.id
                    );
                    false
                }
            }
        });
        if recomputed > 0 {
            tracing::info!(
                camera = %spec.camera, query = %spec.query, model = %spec.model,
                "{recomputed} examples embedded again with the new embedder"
            );
        }
        examples.retain(|ex| {
            let known = spec.states.contains(&ex.state);
            if !known {
                tracing::warn!(
                    camera = %spec.camera, query = %spec.query,
                    "example {}: state {:?} is no longer one of the query's; left out", ex.id, ex.state
                );
            }
            known
        });
        let folder = match &spec.folder {
            Some(dir) => read_folder(
                &spec,
                dir,
                loaded,
                &identity,
                cfg.max_examples,
                &mut scratch,
            ),
            None => Vec::new(),
        };
        let lesson = Self {
            identity,
            store,
            max: cfg.max_examples,
            folder,
            trained: Mutex::new(Arc::new(Trained {
                head: None,
                summary: Arc::new(Summary {
                    examples: BTreeMap::new(),
                    accuracy: None,
                    candidates: 0,
                }),
                examples: 0,
            })),
            examples: Mutex::new(examples),
            generation: AtomicU64::new(0),
            review: Mutex::default(),
            escalations: Mutex::default(),
            spec,
        };
        lesson.retrain(&lock(&lesson.examples));
        Ok(lesson)
    }

    /// What the lesson is for.
    pub fn spec(&self) -> &LessonSpec {
        &self.spec
    }

    /// The embedder identity of its embeddings.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The folder the examples are stored in.
    pub fn dir(&self) -> &Path {
        self.store.dir()
    }

    /// Counts up each time the head is trained again.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// The current head.
    pub fn trained(&self) -> Arc<Trained> {
        lock(&self.trained).clone()
    }

    /// The state as the query names it: `ON`/`OFF` (also `yes`/`no`, `true`/`false`)
    /// for yes_no, a label (any case) for classify.
    pub fn state(&self, given: &str) -> Result<String, TeachError> {
        state_of(&self.spec, given).ok_or_else(|| TeachError::UnknownState {
            camera: self.spec.camera.clone(),
            query: self.spec.query.clone(),
            state: crate::kit::shown(given).to_string(),
            states: self.spec.states.join(", "),
        })
    }

    /// Labels `region` of `frame` as `state`: embedded with `loaded`, stored with its
    /// crop, and the head trained again.
    #[allow(clippy::too_many_arguments)]
    pub fn add_frame(
        &self,
        state: &str,
        frame: &Frame,
        region: Option<[f32; 4]>,
        source: Source,
        media: Option<String>,
        loaded: &Loaded,
    ) -> Result<Example, TeachError> {
        let state = self.state(state)?;
        self.room()?;
        let jpeg = crop_jpeg(frame, region)?;
        let embedding = loaded
            .embed_image(frame, region, &mut ClipImage::new())
            .ok_or_else(|| TeachError::NoEmbedder(self.spec.model.clone()))??;
        self.add_picture(&state, &jpeg, &embedding, source, media, region, "person")
    }

    /// Labels a picture whose crop and embedding are known (a review item, an
    /// escalated answer): `by` is `person` or `model:<name>`.
    #[allow(clippy::too_many_arguments)]
    pub fn add_picture(
        &self,
        state: &str,
        jpeg: &[u8],
        embedding: &[f32],
        source: Source,
        media: Option<String>,
        region: Option<[f32; 4]>,
        by: &str,
    ) -> Result<Example, TeachError> {
        let state = self.state(state)?;
        let mut examples = lock(&self.examples);
        if examples.len() >= self.max {
            return Err(self.full());
        }
        let example = Example {
            id: new_id(&examples),
            state,
            time: humantime::format_rfc3339_millis(SystemTime::now()).to_string(),
            source,
            by: by.into(),
            media,
            region,
            embedder: self.identity.clone(),
            embedding: embedding.to_vec(),
        };
        self.store.save(&example, Some(jpeg))?;
        examples.push(example.clone());
        self.retrain(&examples);
        Ok(example)
    }

    /// Labels the picture of an image file (a crop of the query's region) as `state`.
    pub fn add_file(
        &self,
        state: &str,
        file: &Path,
        source: Source,
        loaded: &Loaded,
    ) -> Result<Example, TeachError> {
        let frame = decode(file)?;
        self.add_frame(
            state,
            &frame,
            None,
            source,
            Some(file.display().to_string()),
            loaded,
        )
    }

    fn room(&self) -> Result<(), TeachError> {
        if lock(&self.examples).len() >= self.max {
            return Err(self.full());
        }
        Ok(())
    }

    fn full(&self) -> TeachError {
        TeachError::Full {
            camera: self.spec.camera.clone(),
            query: self.spec.query.clone(),
            max: self.max,
        }
    }

    /// Removes example `id`.
    pub fn forget(&self, id: &str) -> Result<(), TeachError> {
        let mut examples = lock(&self.examples);
        let Some(i) = examples.iter().position(|e| e.id == id) else {
            return Err(TeachError::NoExample {
                camera: self.spec.camera.clone(),
                query: self.spec.query.clone(),
                id: crate::kit::shown(id).to_string(),
            });
        };
        self.store.remove(id)?;
        examples.remove(i);
        self.retrain(&examples);
        Ok(())
    }

    /// Removes every stored example; returns how many.
    pub fn forget_all(&self) -> Result<usize, TeachError> {
        let mut examples = lock(&self.examples);
        let n = examples.len();
        for ex in examples.iter() {
            self.store.remove(&ex.id)?;
        }
        examples.clear();
        self.retrain(&examples);
        Ok(n)
    }

    /// The stored examples, then the folder's, in order.
    pub fn examples(&self) -> Vec<Example> {
        let mut all = lock(&self.examples).clone();
        all.extend(self.folder.iter().cloned());
        all
    }

    /// The crop of example `id`: a stored one's JPEG, or a folder example's picture
    /// made small (decoded from its file: slow, call it off async threads).
    pub fn jpeg(&self, id: &str) -> Option<Vec<u8>> {
        if let Some(ex) = self.folder.iter().find(|e| e.id == id) {
            let frame = super::crop::decode(std::path::Path::new(ex.media.as_deref()?)).ok()?;
            return super::crop::crop_jpeg(&frame, None).ok();
        }
        std::fs::read(self.store.jpeg_path(id)).ok()
    }

    /// The escalation model's p(yes) for this scene (cosine ≥ 0.97 to one it
    /// answered recently), if it answered one.
    pub fn escalated(&self, embedding: &[f32]) -> Option<f32> {
        lock(&self.escalations)
            .answered
            .iter()
            .find(|(e, _)| crate::model::clip::dot(e, embedding) >= SAME_SCENE)
            .map(|(_, p)| *p)
    }

    /// Whether an uncertain frame of this scene should go to the escalation model:
    /// it has not answered this scene, and no frame waits for its answer.
    pub fn wants_escalation(&self, embedding: &[f32]) -> bool {
        let esc = lock(&self.escalations);
        let waiting = esc
            .pending
            .as_ref()
            .is_some_and(|p| p.at.elapsed() < ESCALATION_PATIENCE);
        !waiting
            && !esc
                .answered
                .iter()
                .any(|(e, _)| crate::model::clip::dot(e, embedding) >= SAME_SCENE)
    }

    /// Notes frame `seq` (its crop and embedding) as handed to the escalation model.
    pub fn pend_escalation(
        &self,
        seq: u64,
        embedding: &[f32],
        jpeg: Vec<u8>,
        region: Option<[f32; 4]>,
    ) {
        lock(&self.escalations).pending = Some(Pending {
            seq,
            at: Instant::now(),
            embedding: Embedding::from(embedding),
            jpeg,
            region,
        });
    }

    /// The escalation model answered frame `seq` with p(yes) = `p`: the scene's
    /// answer from now on, and a candidate example by `model:<model>` (kept apart:
    /// never trained on). `None` when `seq` was not the frame waiting.
    pub fn answer_escalation(&self, seq: u64, p: f32, model: &str) -> Option<Example> {
        let pending = {
            let mut esc = lock(&self.escalations);
            let pending = esc.pending.take_if(|w| w.seq == seq)?;
            while esc.answered.len() >= RECENT_REVIEWS {
                esc.answered.pop_front();
            }
            esc.answered.push_back((pending.embedding.clone(), p));
            pending
        };
        let state = if p >= 0.5 { "ON" } else { "OFF" };
        let by = format!("model:{model}");
        match self.add_picture(
            state,
            &pending.jpeg,
            &pending.embedding,
            Source::Escalation,
            Some(format!("p(yes) {p:.3}")),
            pending.region,
            &by,
        ) {
            Ok(ex) => Some(ex),
            Err(e) => {
                tracing::warn!(camera = %self.spec.camera, query = %self.spec.query, "escalation's candidate not kept: {e}");
                None
            }
        }
    }

    /// Whether an uncertain frame with this embedding makes a review item now: not
    /// within `every` of the last one, and not the scene of a recent one.
    pub fn admit_review(&self, embedding: &[f32], every: Duration) -> bool {
        let mut gate = lock(&self.review);
        if gate.last.is_some_and(|t| t.elapsed() < every) {
            return false;
        }
        let seen = gate
            .recent
            .iter()
            .any(|e| crate::model::clip::dot(e, embedding) >= SAME_SCENE);
        if seen {
            return false;
        }
        gate.last = Some(Instant::now());
        if gate.recent.len() >= RECENT_REVIEWS {
            gate.recent.pop_front();
        }
        gate.recent.push_back(Arc::from(embedding));
        true
    }

    /// Trains the head on the person-made examples (stored and folder) and publishes it.
    fn retrain(&self, stored: &[Example]) {
        let people: Vec<&Example> = stored
            .iter()
            .chain(&self.folder)
            .filter(|e| e.by_person() && e.embedding.len() == self.dim_of(stored))
            .collect();
        let candidates = stored.iter().filter(|e| !e.by_person()).count();
        let index = |s: &str| self.spec.states.iter().position(|x| x == s);
        let (xs, ys): (Vec<&[f32]>, Vec<usize>) = people
            .iter()
            .filter_map(|e| Some((e.embedding.as_slice(), index(&e.state)?)))
            .unzip();
        let mut counts: BTreeMap<String, usize> =
            self.spec.states.iter().map(|s| (s.clone(), 0)).collect();
        for &y in &ys {
            if let Some(c) = counts.get_mut(&self.spec.states[y]) {
                *c += 1;
            }
        }
        let k = self.spec.states.len();
        let head = Head::train(&xs, &ys, k);
        let accuracy = cross_validate(&xs, &ys, k).map(|(right, n)| right as f32 / n.max(1) as f32);
        let trained = Trained {
            head,
            summary: Arc::new(Summary {
                examples: counts,
                accuracy,
                candidates,
            }),
            examples: xs.len(),
        };
        *lock(&self.trained) = Arc::new(trained);
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The embedding length of the examples (the first one's).
    fn dim_of(&self, stored: &[Example]) -> usize {
        stored
            .iter()
            .chain(&self.folder)
            .map(|e| e.embedding.len())
            .next()
            .unwrap_or(0)
    }
}

/// A new id: the UTC time to the millisecond, then a number unique among `examples`.
fn new_id(examples: &[Example]) -> String {
    let time: String = humantime::format_rfc3339_millis(SystemTime::now())
        .to_string()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '.')
        .collect();
    (0..)
        .map(|n| format!("{time}-{n}"))
        .find(|id| !examples.iter().any(|e| e.id == *id))
        .unwrap_or(time)
}

/// The embedding of a whole image file.
fn embed_file(
    loaded: &Loaded,
    model: &str,
    file: &Path,
    scratch: &mut ClipImage,
) -> Result<Embedding, TeachError> {
    if !file.is_file() {
        return Err(TeachError::Image {
            file: file.into(),
            why: "missing".into(),
        });
    }
    let frame = decode(file)?;
    loaded
        .embed_image(&frame, None, scratch)
        .ok_or_else(|| TeachError::NoEmbedder(model.into()))?
        .map_err(TeachError::from)
}

/// The state `given` names: `ON`/`OFF` (also yes/no, true/false, 1/0) for yes_no, a
/// label (exact, else in any case) for classify.
fn state_of(spec: &LessonSpec, given: &str) -> Option<String> {
    let g = given.trim();
    if spec.yes_no {
        return match g.to_ascii_lowercase().as_str() {
            "on" | "yes" | "true" | "1" => Some("ON".to_string()),
            "off" | "no" | "false" | "0" => Some("OFF".to_string()),
            _ => None,
        };
    }
    spec.states
        .iter()
        .find(|s| *s == g)
        .or_else(|| spec.states.iter().find(|s| s.eq_ignore_ascii_case(g)))
        .cloned()
}

/// The examples of a folder with a sub-folder of images per state; a sub-folder of
/// no state, or an image that cannot be read, is logged and left out.
fn read_folder(
    spec: &LessonSpec,
    dir: &Path,
    loaded: &Loaded,
    identity: &str,
    max: usize,
    scratch: &mut ClipImage,
) -> Vec<Example> {
    let warn = |what: String| {
        tracing::warn!(camera = %spec.camera, query = %spec.query, "examples folder {}: {what}", dir.display());
    };
    let mut out = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        warn("cannot be read".into());
        return out;
    };
    let mut subs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    subs.sort();
    for sub in subs {
        let name = sub
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let Some(state) = state_of(spec, &name) else {
            warn(format!(
                "{name:?} is not a state of the query ({}); left out",
                spec.states.join(", ")
            ));
            continue;
        };
        let Ok(files) = std::fs::read_dir(&sub) else {
            continue;
        };
        let mut files: Vec<PathBuf> = files
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file())
            .collect();
        files.sort();
        for file in files {
            if out.len() >= max {
                warn(format!(
                    "more images than [teach] max_examples = {max}; the rest left out"
                ));
                return out;
            }
            match embed_file(loaded, &spec.model, &file, scratch) {
                Ok(e) => out.push(Example {
                    id: format!(
                        "folder:{name}/{}",
                        file.file_name()
                            .map(|n| n.to_string_lossy())
                            .unwrap_or_default()
                    ),
                    state: state.clone(),
                    time: String::new(),
                    source: Source::Folder,
                    by: "person".into(),
                    media: Some(file.display().to_string()),
                    region: None,
                    embedder: identity.into(),
                    embedding: e.to_vec(),
                }),
                Err(e) => warn(format!("{e}; left out")),
            }
        }
    }
    out
}
