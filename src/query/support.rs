//! Which model family answers which kind of query, and where it runs: the one table
//! of family × kind. Config checks refuse a pair it lacks; the per-frame queries
//! ([`StandingQuery`](super::StandingQuery)) bind the [`Lane::Frame`] pairs and the
//! slow lane's ([`SlowQuery`](super::SlowQuery)) the [`Lane::Slow`] ones.
//!
//! ```
//! use ocellus::query::{QueryKind, support::{Lane, lane}};
//! assert_eq!(lane("clip", QueryKind::YesNo), Some(Lane::Frame));
//! assert_eq!(lane("florence2", QueryKind::Caption), Some(Lane::Slow));
//! assert_eq!(lane("yolox", QueryKind::Caption), None);
//! assert_eq!(lane("ollama", QueryKind::Classify), Some(Lane::Slow));
//! ```

use super::QueryKind;
use crate::model::Loaded;

/// Where a query runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// On every frame that passes the gates, in the camera's evaluator.
    Frame,
    /// On the camera's slow lane, newest frame first, at the query's own cadence.
    Slow,
}

/// The lane on which a model of `family` answers `kind` queries; `None` when it
/// cannot answer them.
pub fn lane(family: &str, kind: QueryKind) -> Option<Lane> {
    use QueryKind::*;
    match (family, kind) {
        ("yolox", YesNo | Count) | ("clip" | "embedder", YesNo | Classify) => Some(Lane::Frame),
        ("florence2", Caption | Detect | Read | Ground)
        | ("smolvlm", YesNo | Answer | Caption)
        | ("ppocr", Read)
        | ("paligemma", YesNo | Answer | Caption | Read | Detect | Ground)
        | ("qwen2vl", YesNo | Answer | Caption | Read | Detect | Ground)
        | ("openai" | "ollama", YesNo | Classify | Caption | Answer | Read | Detect | Ground) => {
            Some(Lane::Slow)
        }
        _ => None,
    }
}

/// The family of a loaded model, as [`lane`] names it.
pub fn family(loaded: &Loaded) -> &'static str {
    match loaded {
        Loaded::Yolox { .. } => "yolox",
        Loaded::Clip { .. } => "clip",
        Loaded::Florence2 { .. } => "florence2",
        Loaded::Smolvlm { .. } => "smolvlm",
        Loaded::Ppocr { .. } => "ppocr",
        Loaded::Embedder { .. } => "embedder",
        Loaded::Remote { model } => model.family(),
        Loaded::Paligemma { .. } => "paligemma",
        Loaded::Qwen2vl { .. } => "qwen2vl",
    }
}
