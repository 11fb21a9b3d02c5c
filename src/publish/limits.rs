//! Size bounds of what the publisher takes in and puts out (the warnings about what
//! they refuse are rate-limited with [`crate::kit::RateLimit`]).
//!
//! Incoming: rumqttc reads every packet whole before anything can look at it, and a
//! packet over its own incoming limit is a decode error that ends the connection
//! (after which the broker re-sends a retained one at the next subscribe: a reconnect
//! loop). So the client is given the largest size the protocol can express
//! ([`MQTT_MAX_REMAINING`]): no packet can end the session, and the daemon applies its
//! own, smaller limit per kind of topic ([`Incoming`]) as soon as the packet comes out
//! of the client, discarding an oversized one with a counted, rate-limited warning.
//! The memory a giant packet takes is transient: it is freed as soon as it is
//! discarded; rumqttc may hold up to 10 packets it has read at once, so the bound is
//! the broker's own limit (mosquitto's `max_packet_size`, by default the protocol's
//! 256 MiB) times 10 — set a broker limit where that matters. What passes waits in
//! the publisher's channel (256 events), each within its topic's limit here: at most
//! `max_packet_size` for a device config, 64 KiB otherwise.
//!
//! Outgoing: nothing is queued that would make a packet over `mqtt.max_packet_size`
//! (MQTT 3.1.1 has no way for a broker to announce its limit, so the operator sets
//! it to the broker's); see `Outbox`.

use super::Topics;

/// The largest "remaining length" the MQTT 3.1.1 fixed header can encode (four bytes
/// of seven bits): no broker can send a packet larger than this, so an incoming limit
/// of this size means rumqttc never refuses a packet and never ends the session.
pub const MQTT_MAX_REMAINING: usize = 268_435_455;

/// Default `mqtt.max_packet_size`: a snapshot JPEG of a 4K frame fits (about 1-2
/// MB at the default quality) with room to spare, and a device config of Home
/// Assistant is a few KB. A broker with a lower limit needs this set to its own
/// (mosquitto has none by default: the protocol's 256 MiB).
pub const DEFAULT_MAX_PACKET: usize = 4 << 20;

/// The smallest `mqtt.max_packet_size` allowed: a device config of Home Assistant
/// with a few queries must still fit.
pub(super) const MIN_MAX_PACKET: usize = 4 << 10;

/// Largest incoming query spec on `<prefix>/<cam>/query/<q>/set`: a spec is a few
/// hundred bytes of JSON; 64 KiB leaves room for long prompt lists and still keeps a
/// flood of specs cheap to refuse.
pub const MAX_QUERY_SPEC: usize = 64 << 10;

/// Largest Home Assistant birth message on `<discovery>/status` (`online` or
/// `offline`).
pub(super) const MAX_BIRTH: usize = 64;

/// Bytes of the packet that publishes `payload_len` bytes on `topic` at QoS 1:
/// fixed header (1 byte and 1-4 of remaining length), topic length and topic,
/// packet id, payload (what rumqttc compares to its outgoing limit).
pub(super) fn packet_size(topic: &str, payload_len: usize) -> usize {
    let remaining = 2 + topic.len() + 2 + payload_len;
    let len_len = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + len_len + remaining
}

/// The daemon's limit on incoming payloads, per kind of topic it subscribes to.
pub(super) struct Incoming {
    topics: Topics,
    birth: Option<String>,
    configs: Option<String>,
    max_packet: usize,
}

impl Incoming {
    /// `discovery_prefix`: Home Assistant's, when discovery is on; `max_packet`: the
    /// largest packet the daemon would ever publish (a device config of its own is
    /// never larger, so a larger one on the config topics is not ours).
    pub(super) fn new(topics: &Topics, discovery_prefix: Option<&str>, max_packet: usize) -> Self {
        let prefix = discovery_prefix.map(|p| p.trim_end_matches('/').to_string());
        Self {
            topics: topics.clone(),
            birth: prefix.as_ref().map(|p| format!("{p}/status")),
            configs: prefix.map(|p| format!("{p}/device/")),
            max_packet,
        }
    }

    /// What kind of message `topic` carries and the most payload bytes the daemon
    /// takes on it.
    pub(super) fn limit(&self, topic: &str) -> (&'static str, usize) {
        if self.topics.parse_query_set(topic).is_some() {
            ("query spec", MAX_QUERY_SPEC)
        } else if self.topics.parse_query_label(topic).is_some() {
            ("label", crate::teach::MAX_LABEL_BYTES)
        } else if self.birth.as_deref() == Some(topic) {
            ("Home Assistant birth message", MAX_BIRTH)
        } else if self
            .configs
            .as_deref()
            .is_some_and(|p| topic.starts_with(p))
        {
            ("Home Assistant device config", self.max_packet)
        } else {
            ("message", MAX_QUERY_SPEC)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_size_matches_rumqttc() {
        for (topic, len) in [("a", 0), ("ocellus/cam/snapshot", 200_000), ("t", 5 << 20)] {
            let mut p = rumqttc::Publish::new(topic, rumqttc::QoS::AtLeastOnce, vec![0; len]);
            p.pkid = 1;
            assert_eq!(packet_size(topic, len), p.size(), "{topic} {len}");
        }
    }

    #[test]
    fn limits_follow_the_topic_kind() {
        let l = Incoming::new(&Topics::new("ocellus"), Some("homeassistant"), 1000);
        assert_eq!(l.limit("ocellus/door/query/q/set").1, MAX_QUERY_SPEC);
        assert_eq!(l.limit("homeassistant/status").1, MAX_BIRTH);
        assert_eq!(l.limit("homeassistant/device/zzz/config").1, 1000);
        let off = Incoming::new(&Topics::new("ocellus"), None, 1000);
        assert_eq!(
            off.limit("homeassistant/device/zzz/config").1,
            MAX_QUERY_SPEC
        );
    }
}
