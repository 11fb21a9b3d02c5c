//! Sample-rate cap by presentation time (never by the container's frame-rate field).
//!
//! A timestamp that jumps backwards (a file that restarts, a stream that resets its
//! clock) is a discontinuity: it re-arms the gate when the stream has played at least
//! one interval forward since the last jump. Timestamps that keep going backwards
//! cannot re-arm it on every frame: such jumps fall back to arrival time, at most one
//! frame per interval.
//!
//! ```
//! use std::time::Duration;
//! use ocellus::gate::SampleGate;
//! let mut gate = SampleGate::new(2.0); // at most 2 frames a second
//! let admitted = (0..30).filter(|i| gate.admit(Duration::from_millis(i * 100))).count();
//! assert_eq!(admitted, 6); // 3 s of 10 fps video
//! ```

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct SampleGate {
    interval: Duration,
    next: Option<Duration>,
    /// Presentation time of the last frame seen (admitted or not).
    last: Option<Duration>,
    /// Presentation time at the last backwards jump (or of the first frame): how far
    /// the stream has played forward since is `last - since`.
    since: Option<Duration>,
    /// Arrival time of the last admitted frame.
    admitted_at: Option<Instant>,
    skipped: u64,
}

impl SampleGate {
    /// `fps`: the most frames a second to admit.
    pub fn new(fps: f64) -> Self {
        Self {
            interval: Duration::from_secs_f64(1.0 / fps.max(1e-3)),
            next: None,
            last: None,
            since: None,
            admitted_at: None,
            skipped: 0,
        }
    }

    /// True when the frame at `pts`, arriving now, is due.
    pub fn admit(&mut self, pts: Duration) -> bool {
        self.admit_at(pts, Instant::now())
    }

    /// True when the frame at `pts`, arriving at `arrival`, is due. A backwards jump
    /// re-arms the gate when the stream played at least one interval since the last
    /// jump, or when one interval of arrival time passed since the last admitted
    /// frame; otherwise it only moves the reference (the next frame one interval on).
    pub fn admit_at(&mut self, pts: Duration, arrival: Instant) -> bool {
        let backwards = self.last.is_some_and(|last| pts < last);
        let due = if backwards {
            let played = match (self.since, self.last) {
                (Some(since), Some(last)) => last.saturating_sub(since),
                _ => Duration::MAX,
            };
            let waited = self
                .admitted_at
                .is_none_or(|t| arrival.saturating_duration_since(t) >= self.interval);
            self.since = Some(pts);
            played >= self.interval || waited
        } else {
            self.next.is_none_or(|next| pts >= next)
        };
        self.since.get_or_insert(pts);
        self.last = Some(pts);
        if due {
            // Schedule on the grid so that jitter does not drift the rate down.
            let base = match self.next {
                Some(next) if !backwards && pts >= next && pts - next < self.interval => next,
                _ => pts,
            };
            self.next = Some(base + self.interval);
            self.admitted_at = Some(arrival);
        } else {
            if backwards {
                self.next = Some(pts + self.interval);
            }
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
        assert!(g.admit(Duration::from_secs(101)));
        assert!(g.admit(Duration::from_secs(0)));
        assert!(!g.admit(Duration::from_millis(500)));
        assert!(g.admit(Duration::from_secs(1)));
    }

    /// Timestamps that go backwards on every frame (a broken or hostile camera): at
    /// 25 frames a second of arrival for 10 s, a 2 fps gate admits about 20 frames,
    /// not all 250 (each backwards jump used to re-arm the gate).
    #[test]
    fn timestamps_that_keep_going_backwards_fall_back_to_arrival_time() {
        let mut g = SampleGate::new(2.0);
        let t0 = Instant::now();
        let n = (0..250u64)
            .filter(|i| {
                let pts = Duration::from_secs(1000) - Duration::from_millis(i * 7);
                g.admit_at(pts, t0 + Duration::from_millis(i * 40))
            })
            .count();
        assert!((19..=21).contains(&n), "{n} of 250 frames admitted");
    }

    /// A stream that jumps back a little after each short run (saw-tooth
    /// timestamps) cannot beat the cap either.
    #[test]
    fn saw_tooth_timestamps_keep_the_rate() {
        let mut g = SampleGate::new(1.0);
        let t0 = Instant::now();
        // 25 fps arrival for 10 s; pts advances 40 ms but falls back 200 ms every
        // 4th frame.
        let n = (0..250u64)
            .filter(|i| {
                let pts = Duration::from_secs(100) + Duration::from_millis((i % 4) * 40)
                    - Duration::from_millis((i / 4) * 10);
                g.admit_at(pts, t0 + Duration::from_millis(i * 40))
            })
            .count();
        assert!(n <= 11, "{n} of 250 frames admitted");
    }
}
