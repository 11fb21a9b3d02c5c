//! ocellus: standing natural-language questions over live camera feeds, answered on
//! MQTT.
//!
//! ```no_run
//! let config = ocellus::app::config::load("pipelines/demo.toml".as_ref()).unwrap();
//! ocellus::app::run(config, Default::default()).unwrap();
//! ```
//!
//! # Layout
//!
//! Four layers, lowest first; a file imports only from its own layer or below, and no
//! files import each other in a circle (`tests/it/layers.rs` checks both):
//!
//! - [`kit`]: the types every stage shares: [`kit::Frame`], [`kit::Sample`], the
//!   thumbnail and verdict of the gates, config helpers, shutdown, metrics, watchdog.
//! - stages, one folder each, with its config and that config's checks:
//!   [`source`] (GStreamer), [`gate`], [`engine`] (ONNX Runtime), [`model`] (one folder
//!   per family), [`cache`], [`query`], [`snapshot`], [`publish`] (MQTT), [`hub`]
//!   (`ocellus models`).
//! - [`eval`]: the per-frame evaluator and the slow lane for generative models.
//! - [`app`]: the aggregate config, the control surface (MQTT and HTTP), the runtime
//!   status, the supervisor; `main.rs` is the CLI.
//!
//! # The path of a frame
//!
//! `source/pipeline.rs` (the appsink's probe runs the gates of `gate/`) →
//! `source/queue.rs` (bounded, drop-oldest) → `eval/serve.rs` → `eval/worker.rs`
//! (embeddings through `engine/batch.rs` into `model/`) → `query/standing.rs`
//! (scores, hysteresis) → `app/camera.rs` (the reporter) → `publish/mqtt.rs`. See
//! `ARCHITECTURE.md` for each step and the MQTT contract.

pub mod app;
pub mod cache;
pub mod engine;
pub mod eval;
pub mod gate;
pub mod hub;
pub mod kit;
pub mod model;
pub mod publish;
pub mod query;
pub mod snapshot;
pub mod source;
pub mod teach;
