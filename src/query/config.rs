//! Query config: one standing question per `[[cameras.queries]]` table.

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
}

impl QueryKind {
    pub fn name(self) -> &'static str {
        match self {
            QueryKind::YesNo => "yes_no",
            QueryKind::Count => "count",
            QueryKind::Classify => "classify",
        }
    }
}

/// `[[cameras.queries]]`.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct QueryConfig {
    pub id: String,
    /// The question in plain language (also the default positive prompt).
    pub ask: String,
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
    /// Detections below this score are not counted (yolox).
    #[serde(default)]
    pub min_score: Option<f32>,
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
