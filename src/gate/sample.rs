//! Sample-rate cap by presentation time (never by the container's frame-rate field).
//!
//! ```
//! use std::time::Duration;
//! use ocellus::gate::SampleGate;
//! let mut gate = SampleGate::new(2.0); // at most 2 frames a second
//! let admitted = (0..30).filter(|i| gate.admit(Duration::from_millis(i * 100))).count();
//! assert_eq!(admitted, 6); // 3 s of 10 fps video
//! ```

use std::time::Duration;

#[derive(Debug, Clone)]
pub struct SampleGate {
    interval: Duration,
    next: Option<Duration>,
    /// Presentation time of the last frame seen (admitted or not).
    last: Option<Duration>,
    skipped: u64,
}

impl SampleGate {
    /// `fps`: the most frames a second to admit.
    pub fn new(fps: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / fps.max(1e-3)),
            next: None,
            last: None,
            skipped: 0,
        }
    }

    /// True when the frame at `pts` is due. A timestamp that jumps backwards (a file
    /// that restarts, a reconnected stream) re-arms the gate.
    pub fn admit(&mut self, pts: Duration) -> bool {
        let backwards = self.last.is_some_and(|last| pts < last);
        self.last = Some(pts);
        let due = match self.next {
            None => true,
            Some(next) => pts >= next || backwards,
        };
        if due {
            // Schedule on the grid so that jitter does not drift the rate down.
            let base = match self.next {
                Some(next) if pts >= next && pts - next < self.interval => next,
                _ => pts,
            };
            self.next = Some(base + self.interval);
        } else {
            self.skipped += 1;
        }
        due
    }

    pub fn skipped(&self) -> u64 {
        self.skipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jittery_timestamps_keep_the_rate() {
        let mut g = SampleGate::new(1.0);
        // 25 fps with ±5 ms jitter for 10 s: 10 frames admitted.
        let n = (0..250u64)
            .filter(|i| g.admit(Duration::from_millis(i * 40 + (i % 3) * 5)))
            .count();
        assert_eq!(n, 10);
        assert_eq!(g.skipped(), 240);
    }

    #[test]
    fn a_short_repeating_clip_is_sampled_on_every_pass() {
        // A 1 s clip at 10 fps played 4 times, sampled at 2 fps: 2 frames a pass.
        let mut g = SampleGate::new(2.0);
        let n = (0..4)
            .flat_map(|_| 0..10u64)
            .filter(|i| g.admit(Duration::from_millis(i * 100)))
            .count();
        assert_eq!(n, 8);
    }

    #[test]
    fn backwards_jump_rearms() {
        let mut g = SampleGate::new(1.0);
        assert!(g.admit(Duration::from_secs(100)));
        assert!(!g.admit(Duration::from_millis(100_500)));
        assert!(g.admit(Duration::from_secs(0)));
    }
}
