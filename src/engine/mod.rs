//! Engine: ONNX Runtime (loaded dynamically), sessions opened with the configured
//! execution-provider preference (TensorRT → CUDA → CPU, with one log line saying
//! which was used and why others were skipped), engine threads that batch frames
//! across cameras, and image resizing straight into reused input tensors.
//!
//! ```no_run
//! use ocellus::engine::{self, EngineConfig, Provider};
//! let env = engine::environment(&EngineConfig::default()).unwrap();
//! let session = engine::open(env, "people", "model.onnx".as_ref(), &[Provider::Cuda, Provider::Cpu], Some(2)).unwrap();
//! println!("running on {}", session.provider.name());
//! ```

mod batch;
mod config;
mod error;
mod free_batch;
mod image;
mod job;
mod linear;
mod pillow;
mod runtime;
mod session;
mod yuv;

pub use batch::{BatchClient, BatchSpec, Batcher};
pub use config::{EngineConfig, Provider, default_providers};
pub use error::{BatchError, EngineError, RunError};
pub use free_batch::{FreeBatchError, free_batch};
pub use image::{Rect, RgbView};
pub use job::Job;
pub use linear::{LinearResize, Planes};
pub use pillow::{Filter, PillowBicubic, PillowResize, Window};
pub use runtime::{candidates, environment};
pub use session::{SharedSession, chosen_providers, first_available, open, open_bytes};
pub use yuv::I420View;
