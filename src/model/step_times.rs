//! [`StepTimes`]: how long each step of one model call took, for the camera's metrics.

use std::time::Duration;

/// How long one model call's steps took.
#[derive(Debug, Clone, Copy, Default)]
pub struct StepTimes {
    pub preprocess: Duration,
    /// Waiting for the engine thread and the (batched) run.
    pub infer: Duration,
    pub postprocess: Duration,
}
