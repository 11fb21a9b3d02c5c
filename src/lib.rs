//! ocellus: standing natural-language questions over live camera feeds, answered on
//! MQTT. Stages, in the order a frame meets them: [`source`] (GStreamer) → [`gate`] →
//! [`engine`] + [`model`] (ONNX Runtime) → [`query`] → [`publish`] (MQTT); [`daemon`]
//! wires them together and [`config`] describes them.
//!
//! ```no_run
//! let config = ocellus::app::config::load("pipelines/demo.toml".as_ref()).unwrap();
//! ocellus::app::run(config, Default::default()).unwrap();
//! ```

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
