//! Query config: one standing question per `[[cameras.queries]]` table.

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// What kind of answer a query gives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryKind {
    /// ON / OFF from a probability with hysteresis.
    YesNo,
    /// A number of detected objects.
    Count,
    /// One label out of a list.
    Classify,
    /// A description of the picture (florence2, smolvlm).
    Caption,
    /// Objects found by name, with boxes (florence2).
    Detect,
    /// Text read off the picture (ppocr, florence2); a number with `pattern`.
    Read,
    /// Boxes of the phrase `ask` (florence2 phrase grounding).
    Ground,
    /// A free-form answer to `ask` (smolvlm).
    Answer,
}

impl QueryKind {
    /// The kind as written in the config (`yes_no`, `count`, ...).
    pub fn name(self) -> &'static str {
        match self {
            QueryKind::YesNo => "yes_no",
            QueryKind::Count => "count",
            QueryKind::Classify => "classify",
            QueryKind::Caption => "caption",
            QueryKind::Detect => "detect",
            QueryKind::Read => "read",
            QueryKind::Ground => "ground",
            QueryKind::Answer => "answer",
        }
    }
}

/// How much a `caption` query says (florence2 tasks `<CAPTION>`,
/// `<DETAILED_CAPTION>`, `<MORE_DETAILED_CAPTION>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Detail {
    #[default]
    /// One sentence (`<CAPTION>`).
    Brief,
    /// A paragraph (`<DETAILED_CAPTION>`).
    Detailed,
    /// Several paragraphs (`<MORE_DETAILED_CAPTION>`).
    MoreDetailed,
}

/// `[[cameras.queries]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    /// The query's id: unique within its camera, part of its MQTT topics (1-64 of A-Z a-z 0-9 _ -).
    pub id: String,
    /// The question in plain language (also the default positive prompt).
    pub ask: String,
    /// What kind of answer the query gives.
    pub kind: QueryKind,
    /// Name of a `[models.NAME]` table.
    pub model: String,
    /// Detector class the query is about (yolox).
    #[serde(default)]
    pub label: Option<String>,
    /// Candidate labels (classify).
    #[serde(default)]
    pub labels: Vec<String>,
    /// Positive prompts (clip yes_no; default: `ask`).
    #[serde(default)]
    pub yes: Vec<String>,
    /// Negative prompts (clip yes_no).
    #[serde(default)]
    pub no: Vec<String>,
    /// Normalised `[x0, y0, x1, y1]` region of interest.
    #[serde(default)]
    pub region: Option<[f32; 4]>,
    /// Score at or above which the answer turns ON.
    #[serde(default = "default_on")]
    pub on: f32,
    /// Score at or below which the answer turns OFF.
    #[serde(default = "default_off")]
    pub off: f32,
    /// Consecutive evaluated frames that must agree before the state changes.
    #[serde(default = "default_min_frames")]
    pub min_frames: u32,
    /// A new answer must hold this long (stream time) before the state changes.
    #[serde(
        default,
        deserialize_with = "crate::kit::duration::de",
        serialize_with = "crate::kit::duration::ser"
    )]
    pub min_duration: Duration,
    /// yes_no: OFF must hold this long before an ON state turns OFF.
    #[serde(
        default,
        deserialize_with = "crate::kit::duration::de",
        serialize_with = "crate::kit::duration::ser"
    )]
    pub off_delay: Duration,
    /// After a state change, the state holds at least this long (no alert storm).
    #[serde(
        default,
        deserialize_with = "crate::kit::duration::de",
        serialize_with = "crate::kit::duration::ser"
    )]
    pub cooldown: Duration,
    /// The state becomes unavailable (in Home Assistant) when the camera has produced
    /// no frame for this long; the state is re-sent while frames flow.
    #[serde(
        default,
        deserialize_with = "crate::kit::duration::de_opt",
        serialize_with = "crate::kit::duration::ser_opt",
        skip_serializing_if = "Option::is_none"
    )]
    pub expire_after: Option<Duration>,
    /// Detections below this score are not counted (yolox).
    #[serde(default)]
    pub min_score: Option<f32>,
    /// Slow models (florence2, smolvlm, ppocr): run at least this often.
    #[serde(
        default = "default_every",
        deserialize_with = "crate::kit::duration::de",
        serialize_with = "crate::kit::duration::ser"
    )]
    pub every: Duration,
    /// Slow models: also run when the gate sees the scene change, at most once per
    /// `min_interval`.
    #[serde(default = "default_on_change")]
    pub on_change: bool,
    #[serde(
        default = "default_min_interval",
        deserialize_with = "crate::kit::duration::de",
        serialize_with = "crate::kit::duration::ser"
    )]
    /// Least time between two published states of the query (0: every evaluated frame).
    pub min_interval: Duration,
    /// read: a regular expression whose first match (its first group when it has
    /// one) becomes the state, as a number when it parses as one.
    #[serde(default)]
    pub pattern: Option<String>,
    /// SlowQueries kinds: most tokens to generate (default: the model's).
    #[serde(default)]
    pub max_tokens: Option<usize>,
    /// caption: brief, detailed or more_detailed (florence2).
    #[serde(default)]
    pub detail: Detail,
    /// Home Assistant entity name (default: the id).
    #[serde(default)]
    pub name: Option<String>,
    /// Unit of a numeric state (count, detect, ground, read with `pattern`), e.g. "bar".
    #[serde(default)]
    pub unit: Option<String>,
    /// Taught queries (yes_no, classify on clip or embedder models): a folder with a
    /// sub-folder of labelled images per state (`ON`/`OFF`, or the labels), shipped
    /// with the config; used beside the labels given at runtime.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub examples: Option<std::path::PathBuf>,
    /// A frame whose answer has a confidence below this becomes a review item on
    /// `<cam>/review` (queries on clip or embedder models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_below: Option<f32>,
    /// A slower, stronger model (smolvlm) asked the same question while the answer
    /// is uncertain (confidence under `review_below`): its answer is used for that
    /// scene and kept as a candidate label (marked as the model's, not trained on).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalate: Option<String>,
}

impl QueryConfig {
    /// The query its `escalate` model answers: the same question on that model,
    /// without the fast query's teaching and escalation fields.
    pub fn escalation(&self) -> Option<QueryConfig> {
        let model = self.escalate.clone()?;
        let mut q = self.clone();
        q.model = model;
        q.escalate = None;
        q.review_below = None;
        q.examples = None;
        Some(q)
    }
}

fn default_on() -> f32 {
    0.6
}
fn default_off() -> f32 {
    0.4
}
fn default_min_frames() -> u32 {
    1
}
fn default_every() -> Duration {
    Duration::from_secs(30)
}
fn default_on_change() -> bool {
    true
}
fn default_min_interval() -> Duration {
    Duration::from_secs(2)
}
