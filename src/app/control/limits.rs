//! The bounds on what a client may ask of the query control surface (MQTT
//! `.../query/<q>/set`, HTTP `PUT /api/queries/<cam>/<q>`) and on what the config
//! file's queries may hold: every one is checked before any work is done, and a
//! refusal says which bound was hit. The numbers are far above what a real camera
//! needs, and small enough that the worst case stays cheap: the Home Assistant device
//! config a camera's queries make stays far under the 4 MiB MQTT packet limit (see
//! [`WORST_DEVICE_CONFIG_BYTES`] and its test), the prompts one change embeds are a
//! few hundred at most, and `queries.json` stays small enough to rewrite on each
//! change.
//!
//! ```
//! use std::time::{Duration, Instant};
//! use ocellus::app::control::limits::ChangeRate;
//! let start = Instant::now();
//! let mut rate = ChangeRate::new(start);
//! for _ in 0..ocellus::app::control::limits::CHANGE_BURST {
//!     assert!(rate.admit(start).is_ok());
//! }
//! assert!(rate.admit(start).is_err()); // the burst is spent
//! assert!(rate.admit(start + Duration::from_secs(1)).is_ok()); // one more per second
//! ```

use std::time::{Duration, Instant};

use crate::query::limits::{
    MAX_NAME_CHARS, MAX_PROMPT_CHARS, MAX_PROMPTS, MAX_QUERIES_PER_CAMERA, MAX_UNIT_CHARS,
};

/// Most bytes of a runtime query spec, checked before it is parsed. The largest spec
/// the field bounds below allow, in ASCII, is about 25 KB (`ask`, three full prompt
/// lists); typical specs are under 500 bytes. One bound for every surface: the MQTT
/// client discards a larger `.../set` message before it reaches the daemon, with the
/// same number.
pub const MAX_SPEC_BYTES: usize = crate::publish::MAX_QUERY_SPEC;

/// Most bytes of `<state_dir>/queries.json`, which each change rewrites whole: it
/// holds about 2,000 typical specs, or a camera full of the largest ASCII specs allowed.
/// A change that would make it larger is refused.
pub const MAX_STATE_FILE_BYTES: usize = 1 << 20;

/// Query changes one camera may take at once (a script setting a camera's queries up
/// one after another) before [`CHANGE_EVERY`] applies.
pub const CHANGE_BURST: u32 = 16;

/// After the burst, one query change per camera per this interval: each may embed
/// prompts, rebuild a slow lane and rewrites `queries.json`.
pub const CHANGE_EVERY: Duration = Duration::from_secs(1);

/// Query changes of one camera waiting while an earlier one is being bound to its
/// model; more are refused (the camera is busy).
pub const MAX_PENDING_CHANGES: usize = 16;

/// Most characters of a refusal's reason (on `.../error` and in an HTTP reply): a
/// parser's message may quote the input, which is at most [`MAX_SPEC_BYTES`].
pub const MAX_REASON_CHARS: usize = 500;

/// The largest Home Assistant device config (one MQTT packet) a camera's queries can
/// make within these bounds, in bytes, rounded up: per query its ids and topics (under 2 KiB
/// with 64-character prefixes and camera and query ids) plus its name, unit and
/// classify options at 4 bytes per character (UTF-8; JSON escapes of `"` and `\` take
/// 2, control characters are refused); computed for real in the test below.
pub const WORST_DEVICE_CONFIG_BYTES: usize = MAX_QUERIES_PER_CAMERA
    * (2048 + 4 * (MAX_NAME_CHARS + MAX_UNIT_CHARS) + MAX_PROMPTS * (4 * MAX_PROMPT_CHARS + 3))
    + 4096;

/// The MQTT packet limit the publisher sets (`publish/connect.rs`).
pub const MQTT_PACKET_LIMIT: usize = 4 << 20;

const _: () = assert!(WORST_DEVICE_CONFIG_BYTES * 4 < MQTT_PACKET_LIMIT);

/// `reason`, cut to [`MAX_REASON_CHARS`] characters on one line.
pub fn short_reason(reason: &str) -> String {
    let line: String = reason
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_REASON_CHARS + 1)
        .collect();
    if line.chars().count() > MAX_REASON_CHARS {
        let mut cut: String = line.chars().take(MAX_REASON_CHARS - 1).collect();
        cut.push('…');
        cut
    } else {
        line
    }
}

/// A token bucket per camera: [`CHANGE_BURST`] changes at once, then one per
/// [`CHANGE_EVERY`].
#[derive(Debug, Clone)]
pub struct ChangeRate {
    tokens: f64,
    at: Instant,
}

impl ChangeRate {
    /// A full bucket at `now`.
    pub fn new(now: Instant) -> Self {
        Self {
            tokens: f64::from(CHANGE_BURST),
            at: now,
        }
    }

    /// Takes one change's token; the error says when the next one is due.
    pub fn admit(&mut self, now: Instant) -> Result<(), Duration> {
        let gained =
            now.saturating_duration_since(self.at).as_secs_f64() / CHANGE_EVERY.as_secs_f64();
        self.tokens = (self.tokens + gained).min(f64::from(CHANGE_BURST));
        self.at = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(CHANGE_EVERY.mul_f64(1.0 - self.tokens))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::within;
    use crate::publish::{Discovery, Topics};
    use crate::query::limits::*;
    use crate::query::{QueryConfig, QueryKind};
    use crate::source::CameraConfig;

    /// The worst device config these bounds allow, built by the discovery code.
    #[test]
    fn the_largest_device_config_is_far_under_the_packet_limit() {
        let long = |n: usize| "𝔘".repeat(n); // 4 bytes in UTF-8
        let id = |i: usize| format!("{i:0>64}");
        let query = |i: usize| QueryConfig {
            id: id(i),
            ask: long(MAX_ASK_CHARS),
            kind: QueryKind::Classify,
            model: "m".into(),
            label: Some(long(MAX_LABEL_CHARS)),
            labels: (0..MAX_PROMPTS).map(|_| long(MAX_PROMPT_CHARS)).collect(),
            yes: (0..MAX_PROMPTS).map(|_| long(MAX_PROMPT_CHARS)).collect(),
            no: (0..MAX_PROMPTS).map(|_| long(MAX_PROMPT_CHARS)).collect(),
            name: Some(long(MAX_NAME_CHARS)),
            unit: Some(long(MAX_UNIT_CHARS)),
            pattern: Some(long(MAX_PATTERN_CHARS)),
            expire_after: Some(MAX_DURATION),
            ..serde_json::from_value(serde_json::json!({
                "id": "q", "ask": "", "kind": "classify", "model": "m"
            }))
            .unwrap()
        };
        let mut cam: CameraConfig = toml::from_str("id = \"c\"\nurl = \"rtsp://h/x\"").unwrap();
        cam.id = "c".repeat(64);
        cam.name = Some(long(MAX_NAME_CHARS));
        cam.queries = (0..MAX_QUERIES_PER_CAMERA).map(query).collect();
        let topics = Topics::new(&"p".repeat(64));
        let d = Discovery::new(&"h".repeat(64), &topics, &[cam], true);
        let size = d.messages()[0].payload.len();
        println!("worst device config: {size} bytes");
        assert!(
            size <= WORST_DEVICE_CONFIG_BYTES,
            "{size} > {WORST_DEVICE_CONFIG_BYTES}"
        );
        assert!(size * 4 < MQTT_PACKET_LIMIT, "{size}");
    }

    #[test]
    fn lengths_are_counted_in_characters() {
        assert!(within("ab", 2));
        assert!(!within("abc", 2));
        assert!(within("éé", 2));
        assert!(!within("ééé", 2));
    }

    #[test]
    fn reasons_are_one_short_line() {
        let r = short_reason(&format!("bad\n{}", "x".repeat(10_000)));
        assert_eq!(r.chars().count(), MAX_REASON_CHARS);
        assert!(r.starts_with("bad x") && r.ends_with('…'), "{r}");
        assert_eq!(short_reason("fine"), "fine");
    }

    #[test]
    fn the_bucket_refills_one_per_interval() {
        let t = Instant::now();
        let mut r = ChangeRate::new(t);
        for _ in 0..CHANGE_BURST {
            r.admit(t).unwrap();
        }
        let wait = r.admit(t).unwrap_err();
        assert!(wait <= CHANGE_EVERY && !wait.is_zero(), "{wait:?}");
        r.admit(t + CHANGE_EVERY).unwrap();
        assert!(r.admit(t + CHANGE_EVERY).is_err());
        // A long pause refills the burst, no more.
        let later = t + CHANGE_EVERY * 1000;
        for _ in 0..CHANGE_BURST {
            r.admit(later).unwrap();
        }
        assert!(r.admit(later).is_err());
    }
}
