//! ocellus: standing natural-language questions over live camera feeds, answered on
//! MQTT. Stages, in the order a frame meets them: [`source`] (GStreamer) → [`gate`] →
//! [`engine`] + [`model`] (ONNX Runtime) → [`query`] → [`publish`] (MQTT); [`daemon`]
//! wires them together and [`config`] describes them.
//!
//! ```no_run
//! let config = ocellus::config::load("pipelines/demo.toml".as_ref()).unwrap();
//! ocellus::daemon::run(config, Default::default()).unwrap();
//! ```

pub mod api;
pub mod cache;
pub mod config;
pub mod control;
pub mod daemon;
pub mod engine;
pub mod gate;
pub mod hub;
pub mod metrics;
pub mod model;
pub mod publish;
pub mod query;
pub mod shutdown;
pub mod snapshot;
pub mod source;
pub mod watchdog;
