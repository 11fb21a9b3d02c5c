//! Stopping a slow model call early: a [`Cancel`] is raised by whoever owns the call
//! (the camera's slow lane on a query change, a camera stop or SIGTERM) and checked by
//! the model between two steps (each generated token, each text line); an ONNX run in
//! progress under [`Cancel::run`] is terminated by ONNX Runtime at its next graph node.
//! So closing a slow lane returns within one decode step (one node of the vision
//! encoder at worst), whatever `max_tokens` says.
//!
//! Each step also beats the heartbeat the lane hands over ([`Cancel::watch`]), so a
//! long answer that is making progress is not taken for a stall by the watchdog.
//!
//! ```
//! use ocellus::model::Cancel;
//! // ONNX Runtime is loaded once per process, by the engine's environment.
//! ocellus::engine::environment(&Default::default()).unwrap();
//! let cancel = Cancel::new();
//! assert!(cancel.check("vqa").is_ok());
//! cancel.raise();
//! assert_eq!(cancel.check("vqa").unwrap_err().to_string(), "model vqa: cancelled");
//! assert!(Cancel::never().check("vqa").is_ok());
//! ```

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, MutexGuard};

use ort::session::{RunOptions, Session, SessionInputs, SessionOutputs};

use super::error::{ModelError, RunError};
use crate::kit::shutdown::Shutdown;
use crate::kit::watchdog::Heartbeat;

/// The stop signal of one slow lane's model calls (see the module docs). Once raised
/// it stays raised: a lane that closes never runs again.
#[derive(Default)]
pub struct Cancel {
    raised: AtomicBool,
    /// Also raised by this shutdown (a camera's stop), without waiting for the owner.
    shutdown: Option<Shutdown>,
    /// Terminates an ONNX run in progress; `None` when ONNX Runtime could not make
    /// one (the steps are still checked).
    run: Option<RunOptions>,
    /// Beaten at each step.
    heartbeat: Mutex<Option<Heartbeat>>,
}

static NEVER: Cancel = Cancel {
    raised: AtomicBool::new(false),
    shutdown: None,
    run: None,
    heartbeat: Mutex::new(None),
};

impl Cancel {
    /// A signal not yet raised, able to terminate ONNX runs (ONNX Runtime must be
    /// loaded: [`crate::engine::environment`]).
    pub fn new() -> Self {
        Self {
            run: RunOptions::new()
                .map_err(|e| tracing::debug!("no ONNX run options, steps only: {e}"))
                .ok(),
            ..Self::default()
        }
    }

    /// A signal no one raises (calls outside a slow lane).
    pub fn never() -> &'static Cancel {
        &NEVER
    }

    /// Counts `shutdown` as raising this signal too.
    pub fn or_on(mut self, shutdown: Shutdown) -> Self {
        self.shutdown = Some(shutdown);
        self
    }

    /// Stops the calls under this signal: at their next step, and an ONNX run in
    /// progress at its next node.
    pub fn raise(&self) {
        self.raised.store(true, Ordering::Relaxed);
        if let Some(run) = &self.run
            && let Err(e) = run.terminate()
        {
            tracing::debug!("cannot terminate the ONNX run: {e}");
        }
    }

    pub fn is_raised(&self) -> bool {
        self.raised.load(Ordering::Relaxed)
            || self.shutdown.as_ref().is_some_and(|s| s.is_triggered())
    }

    /// Beats `heartbeat` at each step from now on (until [`Cancel::unwatch`]).
    pub fn watch(&self, heartbeat: Option<Heartbeat>) {
        *self.heartbeat() = heartbeat;
    }

    /// Retires the heartbeat given to [`Cancel::watch`].
    pub fn unwatch(&self) {
        drop(self.heartbeat().take());
    }

    /// Between two steps of `model`'s call: notes the progress, and stops the call
    /// when the signal is raised.
    pub fn check(&self, model: &str) -> Result<(), ModelError> {
        self.beat();
        if self.is_raised() {
            return Err(ModelError::Cancelled {
                model: model.into(),
            });
        }
        Ok(())
    }

    /// Notes progress on the watched heartbeat.
    pub fn beat(&self) {
        if let Some(h) = &*self.heartbeat() {
            h.beat();
        }
    }

    /// Runs `session`; a raised signal refuses to start and terminates the run at its
    /// next node.
    pub fn run<'r, 's: 'r, 'i, 'v: 'i, const N: usize>(
        &'r self,
        session: &'s mut Session,
        inputs: impl Into<SessionInputs<'i, 'v, N>>,
    ) -> Result<SessionOutputs<'r>, RunError> {
        if self.is_raised() {
            return Err(RunError::Cancelled);
        }
        let result = match &self.run {
            Some(options) => session.run_with_options(inputs, options),
            None => session.run(inputs),
        };
        match result {
            Ok(outputs) => Ok(outputs),
            Err(_) if self.is_raised() => Err(RunError::Cancelled),
            Err(e) => Err(RunError::Ort(e)),
        }
    }

    fn heartbeat(&self) -> MutexGuard<'_, Option<Heartbeat>> {
        self.heartbeat.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_shutdown_raises_it_and_it_stays_raised() {
        let shutdown = Shutdown::new();
        let cancel = Cancel::default().or_on(shutdown.clone());
        assert!(!cancel.is_raised());
        shutdown.trigger();
        assert!(cancel.check("m").unwrap_err().is_cancelled());
        let own = Cancel::default();
        own.raise();
        assert!(own.is_raised() && own.is_raised());
        assert!(!Cancel::never().is_raised());
    }

    #[test]
    fn each_check_beats_the_watched_heartbeat_until_unwatched() {
        let dog = crate::kit::watchdog::Watchdog::new(std::time::Duration::from_secs(2));
        let cancel = Cancel::default();
        cancel.watch(Some(dog.register("gen")));
        cancel.check("m").unwrap();
        assert!(dog.stalls().is_empty());
        cancel.unwatch();
        assert!(cancel.heartbeat().is_none());
    }
}
