//! The circuit breaker of a served model: after `failures` failed calls in a row the
//! model is unavailable for a cooldown, during which calls fail at once without
//! reaching the server (no pile-up of timeouts, no alert storm); then one call at a
//! time probes it. A probe that succeeds closes the breaker; one that fails opens it
//! again for twice as long, up to 16 times the cooldown.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ocellus::model::remote::{Breaker, Admit};
//! let mut b = Breaker::new(2, Duration::from_secs(30));
//! let t0 = Instant::now();
//! assert_eq!(b.admit(t0), Admit::Call);
//! b.failed(t0, "HTTP 500".into());
//! b.failed(t0, "HTTP 500".into());
//! assert!(!b.available());
//! assert!(matches!(b.admit(t0), Admit::Refuse { .. }));
//! assert_eq!(b.admit(t0 + Duration::from_secs(31)), Admit::Probe);
//! b.succeeded();
//! assert!(b.available());
//! ```

use std::time::{Duration, Instant};

/// What the breaker lets a call do now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Admit {
    /// The model is available: call.
    Call,
    /// The cooldown is over: this call probes the model (others are refused until it ends).
    Probe,
    /// Unavailable: fail at once.
    Refuse {
        /// Failed calls in a row.
        failures: u32,
        /// Until the next probe.
        retry_in: Duration,
        /// The last failure.
        last: String,
    },
}

/// The breaker's state.
#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    cooldown: Duration,
    failures: u32,
    /// While open: until when, and the current cooldown.
    open: Option<(Instant, Duration)>,
    probing: bool,
    last: String,
}

impl Breaker {
    /// A closed breaker that opens after `threshold` failures in a row for `cooldown`.
    pub fn new(threshold: u32, cooldown: Duration) -> Self {
        Self {
            threshold: threshold.max(1),
            cooldown,
            failures: 0,
            open: None,
            probing: false,
            last: String::new(),
        }
    }

    /// Whether the model counts as available (closed, or a probe may be made).
    pub fn available(&self) -> bool {
        self.open.is_none()
    }

    /// Whether a call may go out at `now`.
    pub fn admit(&mut self, now: Instant) -> Admit {
        let Some((until, _)) = self.open else {
            return Admit::Call;
        };
        if now >= until && !self.probing {
            self.probing = true;
            return Admit::Probe;
        }
        Admit::Refuse {
            failures: self.failures,
            retry_in: until.saturating_duration_since(now),
            last: self.last.clone(),
        }
    }

    /// A call (or probe) succeeded: closes the breaker.
    pub fn succeeded(&mut self) {
        self.failures = 0;
        self.open = None;
        self.probing = false;
    }

    /// A call (or probe) failed at `now` with `why`; true when this opened the breaker
    /// (the model just became unavailable).
    pub fn failed(&mut self, now: Instant, why: String) -> bool {
        self.failures = self.failures.saturating_add(1);
        self.last = why;
        let was_open = self.open.is_some();
        if was_open && self.probing {
            let next = self
                .open
                .map_or(self.cooldown, |(_, d)| (d * 2).min(self.cooldown * 16));
            self.open = Some((now + next, next));
        } else if !was_open && self.failures >= self.threshold {
            self.open = Some((now + self.cooldown, self.cooldown));
        }
        self.probing = false;
        !was_open && self.open.is_some()
    }

    /// A probe ended without a verdict (cancelled, over budget): another may go.
    pub fn abandoned(&mut self) {
        self.probing = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failed_probes_double_the_cooldown_up_to_sixteen_times() {
        let cd = Duration::from_secs(10);
        let mut b = Breaker::new(1, cd);
        let mut now = Instant::now();
        assert!(b.failed(now, "x".into()), "the first failure opens it");
        let mut waits = Vec::new();
        for _ in 0..7 {
            let Admit::Refuse { retry_in, .. } = b.admit(now) else {
                panic!("open breaker admitted a call")
            };
            waits.push(retry_in.as_secs());
            now += retry_in;
            assert_eq!(b.admit(now), Admit::Probe);
            assert!(
                matches!(b.admit(now), Admit::Refuse { .. }),
                "one probe at a time"
            );
            assert!(!b.failed(now, "still down".into()), "already unavailable");
        }
        assert_eq!(waits, [10, 20, 40, 80, 160, 160, 160]);
        b.succeeded();
        assert_eq!(b.admit(now), Admit::Call);
    }

    #[test]
    fn successes_between_failures_keep_it_closed() {
        let mut b = Breaker::new(3, Duration::from_secs(1));
        let now = Instant::now();
        for _ in 0..10 {
            b.failed(now, "x".into());
            b.failed(now, "x".into());
            b.succeeded();
        }
        assert!(b.available());
    }
}
