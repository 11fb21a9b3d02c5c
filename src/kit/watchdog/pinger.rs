//! The pinger: checks every heartbeat each half watchdog period and sends systemd
//! `WATCHDOG=1` only while none is stalled, logging each stall once.

use std::sync::Arc;
use std::time::Duration;

use super::notify::Notifier;
use super::watched::{Stall, Watchdog};
use crate::kit::shutdown::Shutdown;

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
    use std::sync::Mutex;

    use super::*;
    use crate::kit::watchdog::NotifyAddr;

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
