//! A camera's availability as the source reports it to its status callback (and the
//! daemon publishes it).

/// A camera's availability, as published on `<prefix>/<cam>/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CameraStatus {
    /// Frames are arriving.
    Online,
    /// The live source failed, ended or stalled; it is restarted after the backoff.
    Reconnecting,
    /// The source ended for good (file finished, unrecoverable error, shutdown).
    Offline,
}

impl CameraStatus {
    /// The status as published: `online`, `reconnecting` or `offline`.
    pub fn as_str(self) -> &'static str {
        match self {
            CameraStatus::Online => "online",
            CameraStatus::Reconnecting => "reconnecting",
            CameraStatus::Offline => "offline",
        }
    }
}
