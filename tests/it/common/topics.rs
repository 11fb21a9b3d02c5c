//! The MQTT topics of the daemon's contract.

/// `ocellus/status`: the daemon's availability.
pub fn status_topic() -> String {
    "ocellus/status".into()
}

/// `ocellus/CAM/status`: a camera's availability.
pub fn cam_status(cam: &str) -> String {
    format!("ocellus/{cam}/status")
}

/// `ocellus/CAM/query/Q/state`: a query's retained state.
pub fn state_topic(cam: &str, query: &str) -> String {
    format!("ocellus/{cam}/query/{query}/state")
}

/// `ocellus/CAM/events`: a camera's state changes.
pub fn events_topic(cam: &str) -> String {
    format!("ocellus/{cam}/events")
}

/// `ocellus/CAM/detections`: a camera's detections, one message per evaluated frame.
pub fn detections_topic(cam: &str) -> String {
    format!("ocellus/{cam}/detections")
}
