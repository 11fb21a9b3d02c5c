//! Source: one GStreamer pipeline per camera (RTSP over UDP or TCP, HTTP, files),
//! decoded to RGB frames that travel over a bounded queue — drop-oldest for live
//! sources, back-pressure for files. Live sources reconnect with capped exponential
//! backoff and a frame-age watchdog; status changes are reported to a callback. A
//! camera's URL, and any message that quotes it, is redacted before it is logged
//! ([`redact`], [`redact_in`]).
//!
//! ```no_run
//! use ocellus::source::{self, CameraConfig, Retry, WhenFull};
//! use ocellus::kit::shutdown::Shutdown;
//! gstreamer::init().unwrap();
//! let cam: CameraConfig = toml::from_str(r#"id = "demo"
//! url = "/tmp/clip.mkv""#).unwrap();
//! let (tx, rx) = source::frame_queue(cam.queue, WhenFull::Block);
//! let metrics = std::sync::Arc::default();
//! let handle = source::spawn(cam, ocellus::kit::Pixels::I420, tx, |status| println!("{status:?}"), Shutdown::new(), Retry::Never, metrics);
//! while let Ok(sample) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
//!     if let Some(sample) = sample { println!("{sample:?}") }
//! }
//! println!("{:?}", handle.join());
//! ```

mod config;
mod decoder;
mod decoder_choice;
mod diagnose;
mod error;
mod pipeline;
mod queue;
mod redact;
mod status;
mod still;
mod supervisor;
mod tuning;

pub use config::{CameraConfig, MAX_PIXELS, SourceKind, Transport};
pub use decoder_choice::{DecodeConfig, DecoderChoice};
pub use error::PipelineError;
pub use pipeline::Progress;
pub use queue::{
    Closed, FrameReceiver, FrameSender, SendError, WhenFull, frame_queue, frame_queue_counting,
};
pub use redact::{redact, redact_in};
pub use status::CameraStatus;
pub use still::{StillError, first_frame, frame_at};
pub use supervisor::{Ended, Retry, SourceHandle, spawn};
pub use tuning::Tuning;
