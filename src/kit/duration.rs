//! Durations in config files: humane strings such as `"2s"`, `"500ms"`, `"1m 30s"`.

use std::time::Duration;

use serde::{Deserialize, Deserializer, Serializer};

/// `deserialize_with` for a `Duration` field.
pub fn de<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
    let s = String::deserialize(d)?;
    humantime::parse_duration(&s)
        .map_err(|e| serde::de::Error::custom(format!("invalid duration {s:?}: {e}")))
}

/// `serialize_with` for a `Duration` field (the humane form `de` reads).
pub fn ser<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&humantime::format_duration(*d))
}

/// `serialize_with` for an optional `Duration` field (`null` when absent).
pub fn ser_opt<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => ser(d, s),
        None => s.serialize_none(),
    }
}

/// `deserialize_with` for an optional `Duration` field (with `#[serde(default)]`).
pub fn de_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
    de(d).map(Some)
}
