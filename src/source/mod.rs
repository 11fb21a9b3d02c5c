//! Source: one GStreamer pipeline per camera (RTSP over UDP or TCP, HTTP, files),
//! decoded to RGB frames that travel over a bounded queue — drop-oldest for live
//! sources, back-pressure for files. Live sources reconnect with capped exponential
//! backoff and a frame-age watchdog; status changes are reported to a callback.
//!
//! ```no_run
//! use ocellus::source::{self, CameraConfig, Retry, WhenFull};
//! use ocellus::shutdown::Shutdown;
//! gstreamer::init().unwrap();
//! let cam: CameraConfig = toml::from_str(r#"id = "demo"
//! url = "/tmp/clip.mkv""#).unwrap();
//! let (tx, rx) = source::frame_queue(cam.queue, WhenFull::Block);
//! let metrics = std::sync::Arc::default();
//! let handle = source::spawn(cam, source::Pixels::I420, tx, |status| println!("{status:?}"), Shutdown::new(), Retry::Never, metrics);
//! while let Ok(sample) = rx.recv_timeout(std::time::Duration::from_secs(5)) {
//!     if let Some(sample) = sample { println!("{sample:?}") }
//! }
//! println!("{:?}", handle.join());
//! ```

mod config;
mod diagnose;
mod frame;
mod pipeline;
mod queue;
mod still;
mod supervisor;
mod tuning;

pub use config::{CameraConfig, MAX_PIXELS, SourceKind, Transport};
pub use frame::{Frame, PixelFormat, Pixels, Sample, Unchanged};
pub use pipeline::Progress;
pub use queue::{
    Closed, FrameReceiver, FrameSender, SendError, WhenFull, frame_queue, frame_queue_counting,
};
pub use still::first_frame;
pub use supervisor::{Ended, Retry, SourceHandle, spawn};
pub use tuning::Tuning;

/// A camera's availability, as published on `<prefix>/<cam>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraStatus {
    Online,
    Reconnecting,
    Offline,
}

impl CameraStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            CameraStatus::Online => "online",
            CameraStatus::Reconnecting => "reconnecting",
            CameraStatus::Offline => "offline",
        }
    }
}

/// Hides the password of `scheme://user:password@host/...` for logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}{path}")
        }
        None => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn redact_hides_passwords_only() {
        assert_eq!(
            super::redact("rtsp://admin:hunter2@10.0.0.2:554/stream"),
            "rtsp://admin:***@10.0.0.2:554/stream"
        );
        assert_eq!(super::redact("rtsp://10.0.0.2/s"), "rtsp://10.0.0.2/s");
        assert_eq!(super::redact("/tmp/a.mkv"), "/tmp/a.mkv");
    }
}
