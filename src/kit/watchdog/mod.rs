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
mod pinger;
mod watched;

pub use heartbeat::Heartbeat;
pub use notify::{Notifier, NotifyAddr};
pub use pinger::{Verdict, check, serve};
pub use watched::{DEFAULT_LIMIT, MIN_LIMIT, Stall, Watchdog, timing};
