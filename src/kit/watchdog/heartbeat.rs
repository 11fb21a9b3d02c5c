//! Heartbeats: each thread or task that must keep moving holds a [`Heartbeat`] and
//! beats it every time round its loop; the [`Watchdog`](super::Watchdog) reads when
//! each last beat. Dropping a heartbeat retires it (a camera that ended is not stuck).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// Milliseconds since the first heartbeat of the process (a monotonic clock).
pub(crate) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_millis() as u64
}

/// One watched loop, as the watchdog sees it.
#[derive(Debug)]
pub(crate) struct Beat {
    pub name: String,
    pub last_ms: AtomicU64,
    pub retired: AtomicBool,
}

impl Beat {
    /// How long ago it last beat, at `now_ms`.
    pub(crate) fn age(&self, now_ms: u64) -> Duration {
        Duration::from_millis(now_ms.saturating_sub(self.last_ms.load(Ordering::Relaxed)))
    }
}

/// The handle a watched loop beats; dropping it stops the watching.
#[derive(Debug)]
pub struct Heartbeat(pub(crate) Arc<Beat>);

impl Heartbeat {
    /// Notes that the loop made progress now.
    pub fn beat(&self) {
        self.0.last_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// The name the loop was registered under (shown when it stalls).
    pub fn name(&self) -> &str {
        &self.0.name
    }
}

impl Drop for Heartbeat {
    fn drop(&mut self) {
        self.0.retired.store(true, Ordering::Relaxed);
    }
}
