//! [`Label`]: what a person says of a frame over MQTT or HTTP — a state, and which
//! picture it is of (the camera's current frame, or a review item).
//!
//! ```
//! use ocellus::teach::Label;
//! let l = Label::parse(br#"{"state": "ON", "review": "r-1"}"#).unwrap();
//! assert_eq!((l.state.as_str(), l.review.as_deref()), ("ON", Some("r-1")));
//! assert_eq!(Label::parse(b"off").unwrap().state, "off");
//! assert!(Label::parse(br#"{"state": "ON", "colour": 1}"#).is_err());
//! ```

use serde::Deserialize;

use super::error::TeachError;

/// The most bytes a label message may have.
pub const MAX_LABEL_BYTES: usize = 1024;

/// A person's label: `{"state": "ON"}` (the camera's current frame),
/// `{"state": "OFF", "review": "<id>"}` (a review item's picture), `{"state": "OFF",
/// "event": "<cam>/<q>/<ms>"}` (the frame behind an alert), or the state
/// alone as plain text (`ON`, what a Home Assistant button sends).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Label {
    /// The state the picture shows (one of the query's).
    pub state: String,
    /// The review item the label is of; the current frame when absent.
    #[serde(default)]
    pub review: Option<String>,
    /// The event (`<cam>/<q>/<unix ms>`, as the events topic gave it) whose frame
    /// the label is of: "that alert was wrong".
    #[serde(default)]
    pub event: Option<String>,
}

impl Label {
    /// Parses a label message: a JSON object, or a bare state.
    pub fn parse(payload: &[u8]) -> Result<Self, TeachError> {
        if payload.len() > MAX_LABEL_BYTES {
            return Err(TeachError::Label(format!(
                "{} bytes, over the limit of {MAX_LABEL_BYTES}",
                payload.len()
            )));
        }
        let text = std::str::from_utf8(payload)
            .map_err(|_| TeachError::Label("not UTF-8".into()))?
            .trim();
        if text.starts_with('{') {
            let label: Self =
                serde_json::from_str(text).map_err(|e| TeachError::Label(e.to_string()))?;
            if label.review.is_some() && label.event.is_some() {
                return Err(TeachError::Label(
                    "name a review item or an event, not both".into(),
                ));
            }
            return Ok(label);
        }
        let bare = !text.is_empty()
            && text
                .chars()
                .all(|c| c.is_alphanumeric() || "_-. ".contains(c));
        if !bare {
            return Err(TeachError::Label(
                "expected {\"state\": \"...\"} or a state name".into(),
            ));
        }
        Ok(Self {
            state: text.to_string(),
            review: None,
            event: None,
        })
    }
}
