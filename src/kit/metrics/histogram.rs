//! A fixed-bucket latency histogram (powers of two from 16 µs to ~9 min), updated
//! with relaxed atomics; quantiles are read back as bucket upper bounds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Bucket `i` holds durations up to `16 µs << i`; the last one everything longer.
const BUCKETS: usize = 26;
const FIRST_US: u64 = 16;

/// Durations counted in power-of-two buckets (16 µs to ~9 min), with their count and
/// sum; shared across threads without a lock.
#[derive(Debug, Default)]
pub struct Histogram {
    buckets: [AtomicU64; BUCKETS],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    /// Counts one duration `d` (microsecond resolution) in its bucket.
    pub fn record(&self, d: Duration) {
        let us = d.as_micros().min(u128::from(u64::MAX)) as u64;
        let i = if us <= FIRST_US {
            0
        } else {
            // ceil(log2(us / FIRST_US))
            (64 - ((us - 1) / FIRST_US).leading_zeros()) as usize
        };
        self.buckets[i.min(BUCKETS - 1)].fetch_add(1, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us.fetch_add(us, Ordering::Relaxed);
    }

    /// How many durations were recorded.
    pub fn count(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }

    /// The total of the recorded durations (microsecond resolution).
    pub fn sum(&self) -> Duration {
        Duration::from_micros(self.sum_us.load(Ordering::Relaxed))
    }

    /// Upper bound of bucket `i`.
    pub fn bound(i: usize) -> Duration {
        Duration::from_micros(FIRST_US << i.min(BUCKETS - 1))
    }

    /// Count of each bucket (cumulative = false).
    pub fn buckets(&self) -> [u64; BUCKETS] {
        std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed))
    }

    /// The upper bound (ms) of the bucket holding quantile `q`; 0 when empty.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        let counts = self.buckets();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return 0.0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::bound(i).as_secs_f64() * 1e3;
            }
        }
        Self::bound(BUCKETS - 1).as_secs_f64() * 1e3
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_bucket_bounds() {
        let h = Histogram::default();
        for ms in [1u64, 2, 3, 4, 100] {
            h.record(Duration::from_millis(ms));
        }
        assert_eq!(h.count(), 5);
        assert_eq!(h.sum(), Duration::from_millis(110));
        // 3 ms falls in (2.048, 4.096] ms.
        assert_eq!(h.quantile_ms(0.5), 4.096);
        assert_eq!(h.quantile_ms(1.0), 131.072);
        assert_eq!(Histogram::default().quantile_ms(0.5), 0.0);
        h.record(Duration::ZERO);
        assert_eq!(h.buckets()[0], 1);
    }
}
