//! Topic names of the MQTT contract (see DESIGN.md).

/// Topic builder for one prefix.
#[derive(Debug, Clone)]
pub struct Topics {
    prefix: String,
}

impl Topics {
    /// Topics under `prefix` (trailing `/`s dropped).
    pub fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.trim_end_matches('/').to_string(),
        }
    }

    /// The prefix as one Home Assistant id part: `ocellus` by default, other
    /// prefixes with each character outside `[A-Za-z0-9_-]` made `_`, so that two
    /// daemons with their own prefixes on one broker never share a device.
    pub fn node(&self) -> String {
        self.prefix
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .collect()
    }

    /// Home Assistant's device id of camera `cam` (`ocellus_<cam>` by default).
    pub fn device_id(&self, cam: &str) -> String {
        format!("{}_{cam}", self.node())
    }

    /// Daemon availability (`online` / `offline`, last will).
    pub fn status(&self) -> String {
        format!("{}/status", self.prefix)
    }

    /// A served model's availability (`online` / `offline`, retained): `offline` while
    /// its circuit breaker has it marked unavailable.
    pub fn model_status(&self, model: &str) -> String {
        format!("{}/models/{model}/status", self.prefix)
    }

    /// Camera availability (`online` / `reconnecting` / `offline`, retained).
    pub fn camera_status(&self, cam: &str) -> String {
        format!("{}/{cam}/status", self.prefix)
    }

    /// Query `query`'s state (the answer, retained).
    pub fn state(&self, cam: &str, query: &str) -> String {
        format!("{}/{cam}/query/{query}/state", self.prefix)
    }

    /// Query `query`'s attributes (score, since, model, region..., JSON, retained).
    pub fn attributes(&self, cam: &str, query: &str) -> String {
        format!("{}/{cam}/query/{query}/attributes", self.prefix)
    }

    /// State changes of the camera's queries (JSON events, QoS 1, not retained).
    pub fn events(&self, cam: &str) -> String {
        format!("{}/{cam}/events", self.prefix)
    }

    /// Every evaluated frame's detections (JSON, QoS 0, when `mqtt.detections`).
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

    /// Where runtime query specs arrive (`<prefix>/<cam>/query/<q>/set`).
    pub fn query_set_filter(&self) -> String {
        format!("{}/+/query/+/set", self.prefix)
    }

    /// The camera and query of a `.../query/<q>/set` topic.
    pub fn parse_query_set<'a>(&self, topic: &'a str) -> Option<(&'a str, &'a str)> {
        self.parse_query_topic(topic, "/set")
    }

    /// Where labels of taught queries arrive (`<prefix>/<cam>/query/<q>/label`).
    pub fn query_label_filter(&self) -> String {
        format!("{}/+/query/+/label", self.prefix)
    }

    /// Where a taught query's labels go (`<prefix>/<cam>/query/<q>/label`).
    pub fn query_label(&self, cam: &str, query: &str) -> String {
        format!("{}/{cam}/query/{query}/label", self.prefix)
    }

    /// The camera and query of a `.../query/<q>/label` topic.
    pub fn parse_query_label<'a>(&self, topic: &'a str) -> Option<(&'a str, &'a str)> {
        self.parse_query_topic(topic, "/label")
    }

    /// A camera's review items (`<prefix>/<cam>/review`: JSON events, not retained).
    pub fn review(&self, cam: &str) -> String {
        format!("{}/{cam}/review", self.prefix)
    }

    /// The picture of a camera's latest review item (`<prefix>/<cam>/review/image`).
    pub fn review_image(&self, cam: &str) -> String {
        format!("{}/{cam}/review/image", self.prefix)
    }

    fn parse_query_topic<'a>(&self, topic: &'a str, suffix: &str) -> Option<(&'a str, &'a str)> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')?;
        let rest = rest.strip_suffix(suffix)?;
        let (cam, query) = rest.split_once("/query/")?;
        (!cam.is_empty() && !query.is_empty() && !cam.contains('/') && !query.contains('/'))
            .then_some((cam, query))
    }

    /// Why a runtime query spec was rejected.
    pub fn query_error(&self, cam: &str, query: &str) -> String {
        format!("{}/{cam}/query/{query}/error", self.prefix)
    }
}

/// Whether `topic` is a camera's events topic (`<prefix>/<cam>/events`; no other topic
/// of the contract ends so), for counting events.
pub(super) fn is_events(topic: &str) -> bool {
    topic.ends_with("/events")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_label_topics_parse() {
        let t = Topics::new("site/ocellus");
        assert_eq!(
            t.parse_query_label("site/ocellus/door/query/open/label"),
            Some(("door", "open"))
        );
        assert_eq!(
            t.parse_query_label("site/ocellus/door/query/open/set"),
            None
        );
        assert_eq!(
            t.parse_query_set("site/ocellus/door/query/open/label"),
            None
        );
        assert_eq!(
            t.parse_query_label("site/ocellus/a/b/query/open/label"),
            None
        );
    }

    #[test]
    fn query_set_topics_parse() {
        let t = Topics::new("site/ocellus");
        assert_eq!(
            t.parse_query_set("site/ocellus/door/query/cup/set"),
            Some(("door", "cup"))
        );
        for bad in [
            "site/ocellus/door/query/cup/state",
            "site/ocellus/door/query//set",
            "site/ocellus/a/b/query/cup/set",
            "other/door/query/cup/set",
        ] {
            assert_eq!(t.parse_query_set(bad), None, "{bad}");
        }
    }

    #[test]
    fn device_ids_carry_the_prefix_as_one_id_part() {
        assert_eq!(Topics::new("ocellus").device_id("door"), "ocellus_door");
        assert_eq!(Topics::new("site-a/").device_id("door"), "site-a_door");
        assert_eq!(Topics::new("plant/line 3").node(), "plant_line_3");
    }
}
