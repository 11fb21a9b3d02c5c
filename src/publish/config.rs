//! MQTT config: broker URL, identity, credentials and TLS files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::kit::Problem;

/// `[mqtt]` section. Secrets come from `password_file` or `${ENV}`; never logged.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttConfig {
    /// `mqtt://host:port` or `mqtts://host:port` (TLS). User name and password go in
    /// their own keys: a URL that holds them is refused (see [`MqttConfig::url_problem`]).
    pub url: String,
    /// Default `<prefix>-<hostname>`: unique per box and prefix, as the broker
    /// disconnects a client when another connects with the same id.
    #[serde(default)]
    pub client_id: Option<String>,
    /// Topic prefix (default `ocellus`).
    #[serde(default = "default_prefix")]
    pub prefix: String,
    /// User name for the broker; needed when a password is set.
    #[serde(default)]
    pub username: Option<String>,
    /// Password for the broker, usually as `${ENV}` (takes precedence over
    /// `password_file`); never logged.
    #[serde(default)]
    pub password: Option<String>,
    /// File holding the broker password (trailing newline ignored).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// CA bundle for `mqtts://` (default: the system roots).
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate (PEM) for TLS client authentication; used with `key_file`.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    /// Private key (PEM) of `cert_file`.
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(
        default = "default_keep_alive",
        deserialize_with = "crate::kit::duration::de"
    )]
    /// MQTT keep-alive interval (default 30 s).
    pub keep_alive: Duration,
    /// Publish `<cam>/detections` for every evaluated frame.
    #[serde(default = "yes")]
    pub detections: bool,
    /// Folder for the outbox journal: messages produced during a broker outage are
    /// also written there, so a restart during the outage loses none (default: the
    /// outbox lives in memory only).
    #[serde(default)]
    pub state_dir: Option<PathBuf>,
    /// Messages the outbox keeps queued while the broker is unreachable; beyond, the
    /// overflow policy drops (see `publish::OVERFLOW_POLICY`).
    #[serde(default = "default_outbox_capacity")]
    pub outbox_capacity: usize,
    /// Largest MQTT packet the daemon publishes, in bytes (topic and headers
    /// included): a message that would be larger is refused where it is made, logged
    /// and counted, and everything else still goes out. Set it to the broker's own
    /// limit where the broker has one (MQTT 3.1.1 cannot announce it). Default
    /// 4 MiB (`publish::DEFAULT_MAX_PACKET`).
    #[serde(default = "default_max_packet_size")]
    pub max_packet_size: usize,
    /// Byte cap of the outbox journal in `state_dir`: beyond it the journal keeps the
    /// newest messages (drop-oldest; the ones left out stay in memory), counted in
    /// `ocellus_mqtt_journal_dropped_total`. Default 64 MiB
    /// (`publish::DEFAULT_JOURNAL_MAX_BYTES`).
    #[serde(default = "default_journal_max_bytes")]
    pub journal_max_bytes: u64,
    /// Home Assistant MQTT discovery (one device per camera); `false` turns it off.
    #[serde(default = "yes")]
    pub discovery: bool,
    /// Home Assistant's discovery prefix (its birth message is `<prefix>/status`).
    #[serde(default = "default_discovery_prefix")]
    pub discovery_prefix: String,
}

impl std::fmt::Debug for MqttConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttConfig")
            .field("url", &crate::source::redact(&self.url))
            .field("client_id", &self.client_id)
            .field("prefix", &self.prefix)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("password_file", &self.password_file)
            .field("ca_file", &self.ca_file)
            .field("outbox_capacity", &self.outbox_capacity)
            .field("max_packet_size", &self.max_packet_size)
            .field("journal_max_bytes", &self.journal_max_bytes)
            .finish_non_exhaustive()
    }
}

fn default_prefix() -> String {
    "ocellus".into()
}
fn default_keep_alive() -> Duration {
    Duration::from_secs(30)
}
/// Default `outbox_capacity`: hours of events, minutes of a busy camera's states.
pub(super) const DEFAULT_OUTBOX_CAPACITY: usize = 20_000;

fn default_outbox_capacity() -> usize {
    DEFAULT_OUTBOX_CAPACITY
}
fn default_max_packet_size() -> usize {
    super::limits::DEFAULT_MAX_PACKET
}
fn default_journal_max_bytes() -> u64 {
    super::journal::DEFAULT_MAX_BYTES
}
fn default_discovery_prefix() -> String {
    "homeassistant".into()
}
fn yes() -> bool {
    true
}

impl MqttConfig {
    /// Why `url` is not a broker URL the daemon takes, in words that never quote it:
    /// credentials (`user:password@`) belong in `username` and `password_file` (the
    /// client would not send them, and the URL is logged), and a path or query means
    /// nothing to MQTT. `None` for `mqtt[s]://host[:port]` (the scheme itself is checked
    /// with the rest of the config).
    pub fn url_problem(url: &str) -> Option<&'static str> {
        let rest = url.split_once("://").map_or(url, |(_, r)| r);
        // `@` has no other use in a broker URL; a password may hold `/` or `?`.
        if rest.contains('@') {
            return Some(
                "holds a user name or password (user:password@host): put them in mqtt.username and \
                 mqtt.password_file (or mqtt.password = \"${VAR}\") instead",
            );
        }
        let after = &rest[rest.find(['/', '?', '#']).unwrap_or(rest.len())..];
        if !(after.is_empty() || after == "/") {
            return Some(
                "must be mqtt://host[:port] or mqtts://host[:port], without a path or query",
            );
        }
        None
    }

    /// The problems of this section that need no other section (see
    /// `config::validate` for the rest).
    pub fn problems(&self) -> Vec<crate::kit::Problem> {
        Self::url_problem(&self.url)
            .map(|why| crate::kit::Problem::new("mqtt.url", why))
            .into_iter()
            .collect()
    }

    /// The MQTT client id: `client_id`, else `<prefix>-<hostname>`.
    pub fn client_id(&self) -> String {
        self.client_id.clone().unwrap_or_else(|| {
            let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .unwrap_or_else(|| "localhost".into());
            format!("{}-{host}", super::Topics::new(&self.prefix).node())
        })
    }

    /// A config for `url` with every other field at its default.
    pub fn from_url(url: &str) -> Self {
        Self {
            url: url.to_string(),
            client_id: None,
            prefix: default_prefix(),
            username: None,
            password: None,
            password_file: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            keep_alive: default_keep_alive(),
            detections: true,
            state_dir: None,
            outbox_capacity: DEFAULT_OUTBOX_CAPACITY,
            max_packet_size: default_max_packet_size(),
            journal_max_bytes: default_journal_max_bytes(),
            discovery: true,
            discovery_prefix: default_discovery_prefix(),
        }
    }

    /// What is wrong with the size limits, as `(field, why)`.
    pub fn limit_problems(&self) -> Vec<(&'static str, String)> {
        use super::limits::{MIN_MAX_PACKET, MQTT_MAX_REMAINING};
        let mut out = Vec::new();
        if !(MIN_MAX_PACKET..=MQTT_MAX_REMAINING).contains(&self.max_packet_size) {
            out.push((
                "max_packet_size",
                format!("must be between {MIN_MAX_PACKET} and {MQTT_MAX_REMAINING} bytes"),
            ));
        }
        if self.journal_max_bytes < 2 * self.max_packet_size as u64 {
            out.push((
                "journal_max_bytes",
                format!(
                    "must be at least twice max_packet_size ({} bytes), so the largest message fits",
                    2 * self.max_packet_size as u64
                ),
            ));
        }
        out
    }

    /// Makes relative file paths (`state_dir`, `password_file`, `ca_file`, `cert_file`,
    /// `key_file`) absolute, anchored at the config file's folder `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        for p in [
            &mut self.state_dir,
            &mut self.password_file,
            &mut self.ca_file,
            &mut self.cert_file,
            &mut self.key_file,
        ]
        .into_iter()
        .flatten()
        {
            *p = crate::kit::resolve(base, p);
        }
    }
}

impl MqttConfig {
    /// The problems of `[mqtt]` that need no other section, pushed to `problems`.
    pub fn check(&self, problems: &mut Vec<Problem>) {
        let at = "mqtt";
        if !(self.url.starts_with("mqtt://") || self.url.starts_with("mqtts://")) {
            problems.push(Problem::new(
                format!("{at}.url"),
                format!(
                    "{:?} must start with mqtt:// or mqtts://",
                    crate::source::redact(&self.url)
                ),
            ));
        }
        if self.password.is_some() && self.password_file.is_some() {
            problems.push(Problem::new(
                format!("{at}.password_file"),
                "give either password or password_file, not both",
            ));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            problems.push(Problem::new(
                format!("{at}.cert_file"),
                "cert_file and key_file go together",
            ));
        }
        if !topic_safe(&self.prefix) {
            problems.push(Problem::new(
                format!("{at}.prefix"),
                "must be non-empty and free of '+', '#' and spaces",
            ));
        }
        if self.outbox_capacity == 0 {
            problems.push(Problem::new(
                format!("{at}.outbox_capacity"),
                "must be at least 1",
            ));
        }
        for (field, why) in self.limit_problems() {
            problems.push(Problem::new(format!("{at}.{field}"), why));
        }
    }
}

fn topic_safe(s: &str) -> bool {
    !s.is_empty() && !s.contains(['+', '#', ' '])
}

#[cfg(test)]
mod tests {
    use super::MqttConfig;

    #[test]
    fn size_limits_are_checked() {
        let mut c = MqttConfig::from_url("mqtt://b");
        assert!(c.limit_problems().is_empty());
        c.max_packet_size = 100;
        assert_eq!(c.limit_problems()[0].0, "max_packet_size");
        c.max_packet_size = 1 << 20;
        c.journal_max_bytes = 1 << 20;
        let problems = c.limit_problems();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].0, "journal_max_bytes");
        assert!(problems[0].1.contains("2097152"), "{}", problems[0].1);
    }
}
