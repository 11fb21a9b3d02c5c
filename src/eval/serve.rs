//! The camera's evaluation loop: each sample from the source's queue through the
//! worker, until the source closes the queue.

use std::time::Duration;

use super::worker::CameraWorker;
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
