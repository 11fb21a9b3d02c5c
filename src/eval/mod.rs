//! The evaluator: what happens to one camera's sampled frame after the gates. The fast
//! queries run on the frame in the camera's own thread ([`CameraWorker`]: embeddings
//! through the batcher, detectors, the standing queries' state machines); the slow
//! queries (generative models, OCR) run on the camera's slow lane ([`slow`]), which
//! takes the newest frame and never holds up the fast path.

pub(crate) mod regions;
mod serve;
pub mod slow;
mod worker;

pub use serve::evaluate_until_closed;
pub use worker::{CameraWorker, WorkerContext};
