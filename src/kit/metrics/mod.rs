//! Metrics: lock-free counters and latency histograms per camera and per model, and
//! the MQTT publisher's queue gauges and counters (`PublisherMetrics`), updated on the
//! hot path without allocation, read by the once-a-minute log summary (and by the
//! HTTP `/metrics` endpoint later).
//!
//! ```
//! use std::time::Duration;
//! use ocellus::kit::metrics::CameraMetrics;
//! let m = CameraMetrics::default();
//! m.decoded.add(30);
//! m.latency.record(Duration::from_millis(40));
//! assert_eq!(m.decoded.get(), 30);
//! println!("{}", m.summary());
//! ```

mod camera;
mod counter;
mod decoder;
mod histogram;
mod model;
mod publisher;
mod remote;

pub use camera::CameraMetrics;
pub use counter::Counter;
pub use decoder::{ChosenDecoder, DecoderMetrics};
pub use histogram::Histogram;
pub use model::ModelMetrics;
pub use publisher::PublisherMetrics;
pub use remote::RemoteMetrics;
