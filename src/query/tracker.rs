//! What every standing query keeps between evaluations: its names, its state
//! machine and when its state last changed — and how a proposed answer becomes the
//! query's [`Evaluation`].

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::{Answer, ChangeOut, Debounce, Evaluation, QueryConfig, Timing};

pub(super) struct Tracker {
    pub id: Arc<str>,
    pub model: Arc<str>,
    debounce: Debounce,
    since: Option<SystemTime>,
}

impl Tracker {
    pub(super) fn new(config: &QueryConfig) -> Self {
        Self {
            id: Arc::from(config.id.as_str()),
            model: Arc::from(config.model.as_str()),
            debounce: Debounce::with_timing(
                config.min_frames,
                Timing {
                    min_duration: config.min_duration,
                    off_delay: config.off_delay,
                    cooldown: config.cooldown,
                },
            ),
            since: None,
        }
    }

    /// The yes/no a score proposes (hysteresis between `on` and `off`).
    pub(super) fn propose_yes_no(&self, score: f32, cfg: &QueryConfig) -> Answer {
        self.debounce.propose_yes_no(score, cfg.on, cfg.off)
    }

    /// Feeds `proposed` (frame at stream time `pts`) to the state machine; the
    /// evaluation carries the current state and the change, if this made one.
    pub(super) fn settle(
        &mut self,
        cfg: &QueryConfig,
        score: f32,
        proposed: Answer,
        (now, pts): (SystemTime, Duration),
    ) -> Evaluation {
        let change = self.debounce.update(proposed, pts);
        if change.is_some() {
            self.since = Some(now);
        }
        Evaluation {
            id: self.id.clone(),
            kind: cfg.kind,
            model: self.model.clone(),
            region: cfg.region,
            score,
            state: self.debounce.state().cloned(),
            confidence: None,
            score_from: None,
            taught: None,
            change: change.map(ChangeOut::from),
            since: self.since,
            expire_after: cfg.expire_after,
        }
    }

    /// An evaluation with no answer (a taught query without an example of each
    /// state): no state, no change, the state machine untouched.
    pub(super) fn unknown(&self, cfg: &QueryConfig, now: SystemTime) -> Evaluation {
        let _ = now;
        Evaluation {
            id: self.id.clone(),
            kind: cfg.kind,
            model: self.model.clone(),
            region: cfg.region,
            score: 0.0,
            state: None,
            confidence: None,
            score_from: None,
            taught: None,
            change: None,
            since: None,
            expire_after: cfg.expire_after,
        }
    }
}
