//! What one served model's client did: calls, retries, failures by cause, calls the
//! budget or the circuit breaker refused, call times, and whether the model is
//! available now.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use super::counter::Counter;
use super::histogram::Histogram;

/// What one served model's client did.
#[derive(Debug)]
pub struct RemoteMetrics {
    /// HTTP requests sent (retries included).
    pub requests: Counter,
    /// Calls that got an answer.
    pub answered: Counter,
    /// Calls that failed after their retries (timeouts, HTTP errors, malformed replies).
    pub failures: Counter,
    /// Requests that ran out of time.
    pub timeouts: Counter,
    /// Replies unlike the dialect's documented shape, or JSON outside its schema.
    pub malformed: Counter,
    /// Requests retried (429, 5xx, timeout, refused connection).
    pub retries: Counter,
    /// Calls not made: the hourly budget was spent.
    pub over_budget: Counter,
    /// Calls not made: the circuit breaker had the model marked unavailable.
    pub refused: Counter,
    /// One call, retries and waits included.
    pub call: Histogram,
    available: AtomicBool,
    budget_used: AtomicU64,
}

impl Default for RemoteMetrics {
    fn default() -> Self {
        Self {
            requests: Counter::default(),
            answered: Counter::default(),
            failures: Counter::default(),
            timeouts: Counter::default(),
            malformed: Counter::default(),
            retries: Counter::default(),
            over_budget: Counter::default(),
            refused: Counter::default(),
            call: Histogram::default(),
            available: AtomicBool::new(true),
            budget_used: AtomicU64::new(0),
        }
    }
}

impl RemoteMetrics {
    /// Whether the circuit breaker lets calls through.
    pub fn available(&self) -> bool {
        self.available.load(Ordering::Relaxed)
    }

    /// Records whether the model is available.
    pub fn set_available(&self, yes: bool) {
        self.available.store(yes, Ordering::Relaxed);
    }

    /// Requests counted against `max_calls_per_hour` in the last hour.
    pub fn budget_used(&self) -> u64 {
        self.budget_used.load(Ordering::Relaxed)
    }

    /// Records the requests of the last hour.
    pub fn set_budget_used(&self, n: u64) {
        self.budget_used.store(n, Ordering::Relaxed);
    }

    /// One log line of the counters.
    pub fn summary(&self) -> String {
        format!(
            "{} requests, {} answered, {} failed ({} timeouts, {} malformed), {} retried, {} over budget, {} refused while unavailable; call p50 {:.0} ms",
            self.requests.get(),
            self.answered.get(),
            self.failures.get(),
            self.timeouts.get(),
            self.malformed.get(),
            self.retries.get(),
            self.over_budget.get(),
            self.refused.get(),
            self.call.quantile_ms(0.5),
        )
    }
}
