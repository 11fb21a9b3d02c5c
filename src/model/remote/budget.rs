//! The hourly call budget of a served model (`max_calls_per_hour`): a sliding window
//! of the last hour's calls, shared by every camera. A call beyond it is not made.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ocellus::model::remote::Budget;
//! let mut b = Budget::new(Some(2));
//! let t0 = Instant::now();
//! assert!(b.take(t0).is_ok() && b.take(t0).is_ok());
//! assert_eq!(b.take(t0), Err(Duration::from_secs(3600)));
//! assert!(b.take(t0 + Duration::from_secs(3600)).is_ok());
//! ```

use std::collections::VecDeque;
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

/// Calls of the last hour, against the limit.
#[derive(Debug)]
pub struct Budget {
    limit: Option<u32>,
    calls: VecDeque<Instant>,
}

impl Budget {
    /// A budget of `limit` calls an hour; `None` is no limit.
    pub fn new(limit: Option<u32>) -> Self {
        Self {
            limit,
            calls: VecDeque::new(),
        }
    }

    /// The limit, if any.
    pub fn limit(&self) -> Option<u32> {
        self.limit
    }

    /// Takes one call at `now`, or says how long until one is free.
    pub fn take(&mut self, now: Instant) -> Result<(), Duration> {
        let Some(limit) = self.limit else {
            return Ok(());
        };
        while self
            .calls
            .front()
            .is_some_and(|t| now.saturating_duration_since(*t) >= HOUR)
        {
            self.calls.pop_front();
        }
        if self.calls.len() >= limit as usize {
            let oldest = self.calls.front().copied().unwrap_or(now);
            return Err(HOUR.saturating_sub(now.saturating_duration_since(oldest)));
        }
        self.calls.push_back(now);
        Ok(())
    }

    /// Calls counted in the last hour (as of the last `take`).
    pub fn used(&self) -> usize {
        self.calls.len()
    }
}
