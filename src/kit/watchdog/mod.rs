//! Watchdog: tells systemd the daemon is alive only while its loops make progress.
//! Every loop that must keep moving — each camera's evaluator and slow lane,
//! the supervisor, the MQTT publisher — holds a [`Heartbeat`] and beats it each time
//! round (an idle loop still wakes every few hundred milliseconds). Every half
//! watchdog period [`serve`] checks them: when each beat within the limit it sends
//! `WATCHDOG=1`; when one did not (an encoder stuck in a model, a publisher or
//! supervisor that stopped turning) it sends nothing, logs the culprit once, and
//! systemd restarts the daemon when `WatchdogSec=` runs out. The pinger runs on the
//! async runtime, so a runtime that stopped turning stops the pings too. A broken
//! *camera* is not a stall: its evaluator keeps waking up while the source reconnects.
//! Without systemd the same checks feed `/healthz`.
//!
//! ```
//! use std::time::Duration;
//! use ocellus::kit::watchdog::Watchdog;
//! let watchdog = Watchdog::new(Duration::from_secs(60));
//! let evaluator = watchdog.register("camera door: evaluator");
//! evaluator.beat();
//! assert!(watchdog.stalls().is_empty());
//! ```

mod heartbeat;
mod notify;

use std::sync::{Arc, Mutex};
use std::time::Duration;

pub use heartbeat::Heartbeat;
use heartbeat::{Beat, now_ms};
pub use notify::{Notifier, NotifyAddr};

use crate::kit::shutdown::Shutdown;

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
    pub name: String,
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
    pub fn new(limit: Duration) -> Arc<Self> {
        Arc::new(Self {
            beats: Mutex::default(),
            limit,
        })
    }

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

/// What one check decided.
#[derive(Debug, PartialEq)]
pub enum Verdict {
    /// Everything moved: ping.
    Alive,
    /// These loops are stuck: do not ping.
    Stalled(Vec<Stall>),
}

/// Checks the heartbeats every `every` and pings `notifier` (when there is one)
/// while nothing is stalled, until `shutdown`; logs each stall once when it starts and
/// once when progress resumes.
pub async fn serve(
    watchdog: Arc<Watchdog>,
    notifier: Option<Arc<Notifier>>,
    every: Duration,
    shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut stalled: Vec<String> = Vec::new();
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = shutdown.wait() => return,
        }
        match check(&watchdog) {
            Verdict::Alive => {
                if !stalled.is_empty() {
                    tracing::warn!("watchdog: progress again ({})", stalled.join(", "));
                    stalled.clear();
                }
                // Pings only where systemd armed a watchdog (WatchdogSec=).
                if let Some(n) = notifier.as_ref().filter(|n| n.watchdog().is_some()) {
                    n.send("WATCHDOG=1");
                }
            }
            Verdict::Stalled(stalls) => {
                for s in &stalls {
                    if !stalled.contains(&s.name) {
                        tracing::error!(
                            "watchdog: {s} (limit {:.0} s); {}",
                            watchdog.limit().as_secs_f64(),
                            if notifier.as_ref().is_some_and(|n| n.watchdog().is_some()) {
                                "not pinging systemd, which restarts the daemon"
                            } else {
                                "reported on /healthz"
                            }
                        );
                        stalled.push(s.name.clone());
                    }
                }
                stalled.retain(|n| stalls.iter().any(|s| s.name == *n));
                if let Some(n) = &notifier {
                    let names: Vec<&str> = stalls.iter().map(|s| s.name.as_str()).collect();
                    n.send(&format!("STATUS=stalled: {}", names.join(", ")));
                }
            }
        }
    }
}

/// One check of every heartbeat.
pub fn check(watchdog: &Watchdog) -> Verdict {
    let stalls = watchdog.stalls();
    if stalls.is_empty() {
        Verdict::Alive
    } else {
        Verdict::Stalled(stalls)
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

    /// The pinger against a fake notify socket: pings while a real thread beats,
    /// stops while that thread is blocked (as on a stuck model), pings again once it
    /// moves on.
    #[test]
    fn pings_stop_while_a_loop_is_blocked_and_resume_after() {
        use std::os::unix::net::UnixDatagram;
        use std::sync::atomic::{AtomicBool, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        socket
            .set_read_timeout(Some(Duration::from_millis(50)))
            .unwrap();
        let watchdog = Watchdog::new(Duration::from_millis(300));
        let notifier = Notifier::at(NotifyAddr::Path(path), Some(Duration::from_millis(600)));
        let notifier = Arc::new(notifier.unwrap());

        // A worker loop that beats every 20 ms unless the test holds its lock.
        let gate = Arc::new(Mutex::new(()));
        let stop = Arc::new(AtomicBool::new(false));
        let hb = watchdog.register("camera door: evaluator");
        let worker = {
            let (gate, stop) = (gate.clone(), stop.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    drop(gate.lock().unwrap());
                    hb.beat();
                    std::thread::sleep(Duration::from_millis(20));
                }
            })
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let shutdown = Shutdown::new();
        let pinger = {
            let (w, n, s) = (watchdog.clone(), notifier.clone(), shutdown.clone());
            std::thread::spawn(move || {
                rt.block_on(serve(w, Some(n), Duration::from_millis(50), s));
            })
        };
        let mut buf = [0u8; 256];
        let mut collect = |for_ms: u64| {
            let until = std::time::Instant::now() + Duration::from_millis(for_ms);
            let mut got = Vec::new();
            while std::time::Instant::now() < until {
                if let Ok(n) = socket.recv(&mut buf) {
                    got.push(String::from_utf8_lossy(&buf[..n]).into_owned());
                }
            }
            got
        };
        let pings = |got: &[String]| got.iter().filter(|m| *m == "WATCHDOG=1").count();

        let before = collect(500);
        assert!(pings(&before) >= 5, "pings while beating: {before:?}");

        let held = gate.lock().unwrap();
        // The beats stop now; after the 300 ms limit no ping may come.
        let _grace = collect(400);
        let during = collect(600);
        assert_eq!(pings(&during), 0, "pinged while stalled: {during:?}");
        assert!(
            during
                .iter()
                .any(|m| m == "STATUS=stalled: camera door: evaluator"),
            "{during:?}"
        );
        drop(held);

        let after = collect(500);
        assert!(pings(&after) >= 5, "pings after recovery: {after:?}");

        stop.store(true, Ordering::Relaxed);
        worker.join().unwrap();
        shutdown.trigger();
        pinger.join().unwrap();
    }
}
