//! One query's outcome on one frame, as every lane reports it: score, debounced
//! state and the state change, if any.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{Answer, QueryKind, StateChange};

/// One query's outcome on one frame.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    /// The query's id.
    pub id: Arc<str>,
    /// The query's kind.
    pub kind: QueryKind,
    /// The model that answered.
    pub model: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The query's region, normalised `[x0, y0, x1, y1]`; `None` for the whole frame.
    pub region: Option<[f32; 4]>,
    /// The raw score behind the answer (probability, best match, count), 0..1 where it is one.
    pub score: f32,
    /// Current (debounced) state; `None` until `min_frames` agree (or, for a query
    /// taught from examples alone, until every state has one).
    pub state: Option<Answer>,
    /// The probability of the answer this frame points to (yes_no, classify).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub confidence: Option<f32>,
    /// How a served model's p(yes) was obtained (`logprobs` or `json`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub score_from: Option<&'static str>,
    /// A taught query's examples per state and accuracy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub taught: Option<Arc<crate::teach::Summary>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    /// The state change this frame made, if any.
    pub change: Option<ChangeOut>,
    #[serde(skip)]
    /// Since when the state holds.
    pub since: Option<SystemTime>,
    /// The query's `expire_after`: its state is re-sent often enough for consumers
    /// (Home Assistant) to expire it when the camera stops producing frames.
    #[serde(skip)]
    pub expire_after: Option<Duration>,
}

#[derive(Debug, Clone, Serialize)]
/// A state change as it is published on `<cam>/events`.
pub struct ChangeOut {
    /// The state before; `None` for the first state.
    pub from: Option<Answer>,
    /// The state now.
    pub to: Answer,
}

impl From<StateChange> for ChangeOut {
    fn from(c: StateChange) -> Self {
        Self {
            from: c.from,
            to: c.to,
        }
    }
}

/// The id of the event a state change of `query` on `camera` at `time` raises
/// (`<camera>/<query>/<unix ms>`): the events topic carries it, and a label may name
/// it to say what the frame behind the alert really showed.
pub fn event_id(camera: &str, query: &str, time: SystemTime) -> String {
    let ms = time
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis())
        .unwrap_or(0);
    format!("{camera}/{query}/{ms}")
}
