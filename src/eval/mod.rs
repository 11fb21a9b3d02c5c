//! The evaluator: what happens to one camera's sampled frame after the gates. The fast
//! queries run on the frame in the camera's own thread ([`CameraWorker`]: embeddings
//! through the batcher, detectors, the standing queries' state machines); the slow
//! queries (generative models, OCR) run on the camera's slow lane ([`slow`]), which
//! takes the newest frame and never holds up the fast path.

pub mod slow;
mod worker;

use std::time::Duration;

pub use worker::{CameraWorker, WorkerContext};

use crate::kit::watchdog::Heartbeat;
use crate::query::{Pooled, ReportPool};
use crate::source::FrameReceiver;

/// Evaluates every sample the source delivers (the gates already ran in the
/// pipeline) until it closes the queue, beating `heartbeat` each time round (at least
/// every 250 ms while it waits); returns how many were reported.
pub fn evaluate_until_closed(
    worker: &mut CameraWorker,
    frames: &FrameReceiver,
    pool: &ReportPool,
    mut emit: impl FnMut(Pooled),
    mut between: impl FnMut(&mut CameraWorker),
    heartbeat: Option<&Heartbeat>,
) -> u64 {
    let mut evaluated = 0;
    while let Ok(next) = frames.recv_timeout(Duration::from_millis(250)) {
        if let Some(h) = heartbeat {
            h.beat();
        }
        between(worker);
        let Some(sample) = next else { continue };
        let mut report = pool.take();
        if worker.evaluate(&sample, &mut report) {
            // The frame's buffer goes back to GStreamer before the report is sent.
            drop(sample);
            emit(report);
            evaluated += 1;
        }
    }
    evaluated
}
