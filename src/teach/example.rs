//! [`Example`]: one labelled picture of a query — the state it shows, where it came
//! from, who labelled it, and its embedding under a named embedder.

use serde::{Deserialize, Serialize};

/// Where an example came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// `ocellus teach`.
    Cli,
    /// `<prefix>/<cam>/query/<q>/label`.
    Mqtt,
    /// `POST /api/cameras/<cam>/queries/<q>/examples`.
    Http,
    /// The query's `examples` folder (read-only, shipped with the config).
    Folder,
    /// The query's `escalate` model, while its answer was uncertain (a candidate:
    /// not trained on).
    Escalation,
}

/// One labelled picture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Example {
    /// Unique within the query: `<UTC time>-<n>` (sorts by time).
    pub id: String,
    /// The state it shows (`ON`/`OFF`, or a classify label).
    pub state: String,
    /// When it was labelled (RFC 3339).
    pub time: String,
    /// Where it came from.
    pub source: Source,
    /// Who labelled it: `person`, or `model:<name>` for a model-made candidate
    /// (kept apart: never trained on until a person confirms it).
    pub by: String,
    /// What the picture was: a file and time, the camera's frame, a review item.
    #[serde(default)]
    pub media: Option<String>,
    /// The query's region when it was cut (normalised `[x0, y0, x1, y1]`).
    #[serde(default)]
    pub region: Option<[f32; 4]>,
    /// The embedder the embedding is from ([`Embedder::identity`](crate::model::embedder::Embedder::identity)).
    pub embedder: String,
    /// The unit-length embedding of the crop.
    pub embedding: Vec<f32>,
}

impl Example {
    /// Labelled by a person (the examples a head trains on).
    pub fn by_person(&self) -> bool {
        self.by == "person"
    }
}
