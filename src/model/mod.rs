//! Models: one folder per family, each with its own config and IO contract. A model
//! never owns its ONNX sessions: [`Registry::load`] opens them through the engine and
//! hands them to the model at each call.
//!
//! Each loaded model's image path runs on its own engine thread ([`Batcher`]), which
//! batches frames across cameras.
//!
//! Files: `registry` (the loaded models of a config), `config` (`[models.NAME]`),
//! `error` (what can go wrong, as one line), `cancel` (stopping a slow call early),
//! `detection` and `step_times` (what a call returns besides its answer), `folder`
//! (a model folder's default files), `preprocessor` (Hugging Face's
//! `preprocessor_config.json`), `kv_decoder` (what the decoder-only VLM families
//! share: the decoder's IO contract, one cached step, the greedy loop); the families
//! below them.
//!
//! ```no_run
//! let config = ocellus::app::config::load("pipelines/demo.toml".as_ref()).unwrap();
//! let env = ocellus::engine::environment(&config.engine).unwrap();
//! let prompts = std::sync::Arc::new(ocellus::cache::PromptCache::default());
//! let models = ocellus::model::Registry::load(&config.models, &config.engine, env, &prompts);
//! for (name, why) in models.failed() { eprintln!("{name}: {why}") }
//! ```
//!
//! [`Batcher`]: crate::engine::Batcher

mod cancel;
pub mod clip;
mod config;
mod detection;
pub mod embedder;
mod error;
pub mod florence2;
mod folder;
mod kv_decoder;
pub mod paligemma;
pub mod ppocr;
pub mod preprocessor;
pub mod qwen2vl;
mod registry;
pub mod remote;
pub mod smolvlm;
mod step_times;
pub mod yolox;

pub use cancel::Cancel;
pub use config::{ClipConfig, ClipModelType, ModelConfig, YoloxConfig};
pub use detection::Detection;
pub use error::{Cause, ModelError, RunError, TokenizerError};
pub use folder::{FolderError, single_file};
pub use registry::{Loaded, Registry};
pub use step_times::StepTimes;
