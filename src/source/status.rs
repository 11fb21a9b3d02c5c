//! A camera's availability as the source reports it to its status callback (and the
//! daemon publishes it).

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
