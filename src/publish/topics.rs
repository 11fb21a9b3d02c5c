//! Topic names of the MQTT contract (see DESIGN.md).

/// Topic builder for one prefix.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// Daemon availability (`online` / `offline`, last will).
    pub fn status(&self) -> String {
        format!("{}/status", self.prefix)
    }

    pub fn camera_status(&self, cam: &str) -> String {
        format!("{}/{cam}/status", self.prefix)
    }

    pub fn state(&self, cam: &str, query: &str) -> String {
        format!("{}/{cam}/query/{query}/state", self.prefix)
    }

    pub fn attributes(&self, cam: &str, query: &str) -> String {
        format!("{}/{cam}/query/{query}/attributes", self.prefix)
    }

    pub fn events(&self, cam: &str) -> String {
        format!("{}/{cam}/events", self.prefix)
    }

    pub fn detections(&self, cam: &str) -> String {
        format!("{}/{cam}/detections", self.prefix)
    }

    /// Latest caption (retained).
    pub fn caption(&self, cam: &str) -> String {
        format!("{}/{cam}/caption", self.prefix)
    }

    /// JPEG of the frame behind the last alert (retained).
    pub fn snapshot(&self, cam: &str) -> String {
        format!("{}/{cam}/snapshot", self.prefix)
    }
}

/// Whether `topic` is a camera's events topic (`<prefix>/<cam>/events`; no other topic
/// of the contract ends so), for counting events.
pub fn is_events(topic: &str) -> bool {
    topic.ends_with("/events")
}
