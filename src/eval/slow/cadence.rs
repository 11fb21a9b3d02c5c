//! When a slow query runs: at least every `every` of stream time, and also on a
//! scene change (the gate's verdict) once `min_interval` has passed since its last
//! run. Stream time (pts) makes a file play out the same way at any speed; a pts
//! that goes backwards (a reconnect) makes the query due.

use std::time::Duration;

use crate::kit::Verdict;
use crate::query::QueryConfig;

/// When one slow query is due, and the stream time it last ran.
#[derive(Debug, Clone)]
pub struct Cadence {
    every: Duration,
    on_change: bool,
    min_interval: Duration,
    last: Option<Duration>,
}

impl Cadence {
    /// The cadence of query `q` (`every`, `on_change`, `min_interval` capped at
    /// `every`); due at the first frame.
    pub fn of(q: &QueryConfig) -> Self {
        Self {
            every: q.every,
            on_change: q.on_change,
            min_interval: q.min_interval.min(q.every),
            last: None,
        }
    }

    /// Never due by itself: an escalation runs when its fast query hands it a frame.
    pub fn never() -> Self {
        Self {
            every: Duration::MAX,
            on_change: false,
            min_interval: Duration::MAX,
            last: Some(Duration::ZERO),
        }
    }

    /// True when the query should run on a frame at `pts` that the gate judged
    /// `verdict`.
    pub fn due(&self, pts: Duration, verdict: Verdict) -> bool {
        let Some(last) = self.last else { return true };
        let Some(since) = pts.checked_sub(last) else {
            return true;
        };
        since >= self.every
            || (self.on_change
                && matches!(verdict, Verdict::Changed(_) | Verdict::First)
                && since >= self.min_interval)
    }

    /// The query was handed a frame at `pts`.
    pub fn ran(&mut self, pts: Duration) {
        self.last = Some(pts);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cadence(on_change: bool) -> Cadence {
        let q: QueryConfig = toml::from_str(&format!(
            "id = 'c'\nask = 'x'\nkind = 'caption'\nmodel = 'm'\nevery = '30s'\nmin_interval = '5s'\non_change = {on_change}"
        ))
        .unwrap();
        Cadence::of(&q)
    }

    #[test]
    fn runs_every_period_and_on_change_after_the_minimum_interval() {
        let s = Duration::from_secs;
        let mut c = cadence(true);
        assert!(c.due(s(0), Verdict::Stale(0.0)));
        c.ran(s(0));
        assert!(!c.due(s(3), Verdict::Changed(0.5)), "within min_interval");
        assert!(c.due(s(6), Verdict::Changed(0.5)), "scene change");
        assert!(
            !c.due(s(6), Verdict::Stale(0.0)),
            "no change, period not over"
        );
        assert!(c.due(s(30), Verdict::Stale(0.0)), "period over");
        c.ran(s(30));
        assert!(c.due(s(1), Verdict::Stale(0.0)), "pts went backwards");
        let mut quiet = cadence(false);
        quiet.ran(s(0));
        assert!(!quiet.due(s(10), Verdict::Changed(0.9)));
        assert!(quiet.due(s(31), Verdict::Stale(0.0)));
    }
}
