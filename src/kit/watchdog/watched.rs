//! The loops being watched: each registered [`Heartbeat`] and how long it may go
//! without a beat, the limit taken from systemd's watchdog period.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::heartbeat::{Beat, Heartbeat, now_ms};

/// How long a loop may go without a beat when systemd sets no watchdog period.
pub const DEFAULT_LIMIT: Duration = Duration::from_secs(60);
/// The shortest limit: every watched loop beats at least once a second.
pub const MIN_LIMIT: Duration = Duration::from_secs(2);

/// The stall limit and the check (and ping) interval for systemd's watchdog `period`
/// (`WatchdogSec=`): the limit is the period but never under [`MIN_LIMIT`] (a shorter
/// one would call an idle loop stalled; detection then takes longer than the period,
/// never falsely), checks every half period. Without systemd: [`DEFAULT_LIMIT`], and
/// a check (for the log) as often.
pub fn timing(period: Option<Duration>) -> (Duration, Duration) {
    match period {
        Some(p) => (p.max(MIN_LIMIT), p / 2),
        None => (DEFAULT_LIMIT, DEFAULT_LIMIT),
    }
}

/// The loops being watched and how long each may go without progress.
#[derive(Debug)]
pub struct Watchdog {
    beats: Mutex<Vec<Arc<Beat>>>,
    limit: Duration,
}

/// A loop that made no progress for longer than the limit.
#[derive(Debug, Clone, PartialEq)]
pub struct Stall {
    /// The name the loop was registered under.
    pub name: String,
    /// How long ago it last beat.
    pub age: Duration,
}

impl std::fmt::Display for Stall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}: no progress for {:.1} s",
            self.name,
            self.age.as_secs_f64()
        )
    }
}

impl Watchdog {
    /// A watchdog that calls a loop stalled after `limit` without a beat (see [`timing`]).
    pub fn new(limit: Duration) -> Arc<Self> {
        Arc::new(Self {
            beats: Mutex::default(),
            limit,
        })
    }

    /// How long a loop may go without a beat before it counts as stalled.
    pub fn limit(&self) -> Duration {
        self.limit
    }

    /// Starts watching a loop named `name` (it counts as having just beaten).
    pub fn register(&self, name: impl Into<String>) -> Heartbeat {
        let beat = Arc::new(Beat {
            name: name.into(),
            last_ms: now_ms().into(),
            retired: false.into(),
        });
        self.lock().push(beat.clone());
        Heartbeat(beat)
    }

    /// The loops that have not beaten within the limit (retired ones are forgotten).
    pub fn stalls(&self) -> Vec<Stall> {
        self.stalls_at(now_ms())
    }

    fn stalls_at(&self, now_ms: u64) -> Vec<Stall> {
        let mut beats = self.lock();
        beats.retain(|b| !b.retired.load(std::sync::atomic::Ordering::Relaxed));
        beats
            .iter()
            .map(|b| (b, b.age(now_ms)))
            .filter(|(_, age)| *age > self.limit)
            .map(|(b, age)| Stall {
                name: b.name.clone(),
                age,
            })
            .collect()
    }

    /// How many loops are watched now.
    pub fn watched(&self) -> usize {
        self.lock()
            .iter()
            .filter(|b| !b.retired.load(std::sync::atomic::Ordering::Relaxed))
            .count()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Arc<Beat>>> {
        self.beats.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loop_is_stalled_once_its_last_beat_is_older_than_the_limit() {
        let w = Watchdog::new(Duration::from_millis(1000));
        let a = w.register("a");
        let b = w.register("b");
        let t0 = now_ms();
        a.0.last_ms.store(t0, std::sync::atomic::Ordering::Relaxed);
        b.0.last_ms.store(t0, std::sync::atomic::Ordering::Relaxed);
        assert!(
            w.stalls_at(t0 + 1000).is_empty(),
            "at the limit is not late"
        );
        b.0.last_ms
            .store(t0 + 900, std::sync::atomic::Ordering::Relaxed);
        let stalls = w.stalls_at(t0 + 1500);
        assert_eq!(
            stalls,
            vec![Stall {
                name: "a".into(),
                age: Duration::from_millis(1500)
            }]
        );
        assert_eq!(stalls[0].to_string(), "a: no progress for 1.5 s");
    }

    #[test]
    fn timing_follows_the_period_with_a_floor() {
        let s = Duration::from_secs;
        assert_eq!(timing(Some(s(60))), (s(60), s(30)));
        assert_eq!(timing(Some(s(1))), (s(2), Duration::from_millis(500)));
        assert_eq!(timing(None), (DEFAULT_LIMIT, DEFAULT_LIMIT));
    }

    #[test]
    fn a_dropped_heartbeat_is_no_longer_watched() {
        let w = Watchdog::new(Duration::from_millis(10));
        let a = w.register("ended camera");
        let _b = w.register("running camera");
        assert_eq!(w.watched(), 2);
        drop(a);
        assert_eq!(w.watched(), 1);
        let later = now_ms() + 1000;
        let names: Vec<String> = w.stalls_at(later).into_iter().map(|s| s.name).collect();
        assert_eq!(names, ["running camera"]);
    }
}
