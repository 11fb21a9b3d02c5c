//! One query's outcome on one frame, as every lane reports it: score, debounced
//! state and the state change, if any.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use super::{Answer, QueryKind, StateChange};

/// One query's outcome on one frame.
#[derive(Debug, Clone, Serialize)]
pub struct Evaluation {
    pub id: Arc<str>,
    pub kind: QueryKind,
    pub model: Arc<str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub region: Option<[f32; 4]>,
    pub score: f32,
    /// Current (debounced) state; `None` until `min_frames` agree.
    pub state: Option<Answer>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub change: Option<ChangeOut>,
    #[serde(skip)]
    pub since: Option<SystemTime>,
    /// The query's `expire_after`: its state is re-sent often enough for consumers
    /// (Home Assistant) to expire it when the camera stops producing frames.
    #[serde(skip)]
    pub expire_after: Option<Duration>,
}

#[derive(Debug, Clone, Serialize)]
pub struct ChangeOut {
    pub from: Option<Answer>,
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
