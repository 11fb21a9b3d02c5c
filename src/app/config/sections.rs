//! Deserialises each section and list element on its own, so that one bad camera or
//! model does not hide the problems of the others.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use super::Config;
use crate::app::http::HttpConfig;
use crate::cache::CacheConfig;
use crate::engine::EngineConfig;
use crate::kit::Problem;
use crate::model::ModelConfig;
use crate::publish::MqttConfig;
use crate::snapshot::SnapshotConfig;
use crate::source::{CameraConfig, DecodeConfig};
use crate::teach::TeachConfig;

const SECTIONS: [&str; 9] = [
    "engine",
    "decode",
    "teach",
    "cache",
    "mqtt",
    "http",
    "snapshots",
    "models",
    "cameras",
];

/// `from_env`: the key paths whose value came from the environment (their values are
/// never quoted in a problem).
pub(super) fn build(
    mut table: toml::Table,
    path: &Path,
    base: &Path,
    from_env: &HashSet<String>,
    problems: &mut Vec<Problem>,
) -> Config {
    let problems = &mut Problems {
        list: problems,
        from_env,
    };
    for key in table.keys() {
        if !SECTIONS.contains(&key.as_str()) {
            problems.list.push(Problem::new(
                key.clone(),
                format!("unknown section, expected one of {}", SECTIONS.join(", ")),
            ));
        }
    }
    // A section that cannot be read at all counts as absent (its problems are
    // recorded), so that every other section is still checked.
    let mut engine: EngineConfig = table
        .remove("engine")
        .and_then(|v| element(v, "engine", problems))
        .unwrap_or_default();
    engine.resolve_paths(base);
    let decode: DecodeConfig = table
        .remove("decode")
        .and_then(|v| element(v, "decode", problems))
        .unwrap_or_default();
    let cache: CacheConfig = table
        .remove("cache")
        .and_then(|v| element(v, "cache", problems))
        .unwrap_or_default();
    let mqtt: Option<MqttConfig> = table
        .remove("mqtt")
        .and_then(|v| element(v, "mqtt", problems));
    let mqtt = mqtt.map(|mut m| {
        m.resolve_paths(base);
        m
    });
    let http: Option<HttpConfig> = table
        .remove("http")
        .and_then(|v| element(v, "http", problems));
    let http = http.map(|mut h| {
        h.resolve_paths(base);
        h
    });
    let mut teach: TeachConfig = table
        .remove("teach")
        .and_then(|v| element(v, "teach", problems))
        .unwrap_or_default();
    teach.resolve_paths(base, mqtt.as_ref().and_then(|m| m.state_dir.as_deref()));
    let snapshots: Option<SnapshotConfig> = table
        .remove("snapshots")
        .and_then(|v| element(v, "snapshots", problems));
    let snapshots = snapshots.map(|mut s| {
        s.resolve_paths(base);
        s
    });

    let mut models = BTreeMap::new();
    match table.remove("models") {
        Some(toml::Value::Table(t)) => {
            for (name, v) in t {
                let at = format!("models.{name}");
                if let Some(mut m) = element::<ModelConfig>(v, &at, problems) {
                    m.resolve_paths(base);
                    models.insert(name, m);
                }
            }
        }
        Some(_) => problems
            .list
            .push(Problem::new("models", "must be a table of named models")),
        None => {}
    }

    let mut cameras = Vec::new();
    match table.remove("cameras") {
        Some(toml::Value::Array(list)) => {
            for (i, v) in list.into_iter().enumerate() {
                let at = format!("cameras[{i}]");
                if let Some(mut c) = element::<CameraConfig>(v, &at, problems) {
                    c.resolve_paths(base);
                    cameras.push(c);
                }
            }
        }
        Some(_) => problems.list.push(Problem::new(
            "cameras",
            "must be an array of tables ([[cameras]])",
        )),
        None => {}
    }
    // A camera without a `decoder` of its own takes `[decode] decoder`.
    for c in &mut cameras {
        c.decoder.get_or_insert(decode.decoder);
    }
    Config {
        path: PathBuf::from(path),
        engine,
        decode,
        cache,
        teach,
        mqtt,
        http,
        snapshots,
        models,
        cameras,
    }
}

/// Where problems go, and which values must not be quoted in them.
struct Problems<'a> {
    list: &'a mut Vec<Problem>,
    from_env: &'a HashSet<String>,
}

impl Problems<'_> {
    /// Whether the value at `path`, or one inside it (serde reports some errors at the
    /// enclosing table), came from the environment.
    fn holds_env_value(&self, path: &str) -> bool {
        self.from_env.iter().any(|p| {
            p.strip_prefix(path)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
    }
}

/// What serde's message says before it quotes the value it refused, if it quotes one.
fn quoted_value(message: &str) -> Option<&'static str> {
    [
        "invalid type",
        "invalid value",
        "unknown variant",
        "invalid duration",
    ]
    .into_iter()
    .find(|p| message.starts_with(p))
}

/// Most structural problems (unknown keys, wrong types) recorded in one element
/// before it is given up: each costs one more attempt at deserialising it.
const MAX_PROBLEMS_PER_ELEMENT: usize = 32;

/// Deserialises one element, recording a problem with its full path on failure.
/// A key that is unknown or of the wrong type is recorded, taken out and the element
/// read again (an optional key then takes its default), so that one typo does not
/// hide the element's other problems; the element is given up (`None`) when a
/// required key is missing or bad, or the problem cannot be pinned to one key.
fn element<T: DeserializeOwned>(
    mut value: toml::Value,
    at: &str,
    problems: &mut Problems<'_>,
) -> Option<T> {
    // The key taken out last: if it was required, it now reads as missing, which is
    // the problem already recorded.
    let mut removed: Option<String> = None;
    for _ in 0..MAX_PROBLEMS_PER_ELEMENT {
        let attempt = value.clone();
        let e = match serde_path_to_error::deserialize::<_, T>(attempt) {
            Ok(v) => return Some(v),
            Err(e) => e,
        };
        let segments: Vec<Key> = e.path().iter().filter_map(Key::of).collect();
        let pinned = segments.len() == e.path().iter().count() && !segments.is_empty();
        let inner = e.path().to_string();
        let path = if inner == "." || inner.is_empty() {
            at.to_string()
        } else if inner.starts_with('[') {
            format!("{at}{inner}")
        } else {
            format!("{at}.{inner}")
        };
        // serde's messages may add "in `field`" on further lines: one line each.
        let message = e.into_inner().to_string();
        let first = message
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_string();
        let missing = first.starts_with("missing field");
        if missing
            && let Some(k) = &removed
            && first.starts_with(&format!("missing field `{k}`"))
        {
            return None;
        }
        let first = match quoted_value(&first) {
            Some(what) if problems.holds_env_value(&path) => unquoted(what, &first),
            _ => first,
        };
        problems.list.push(Problem::new(path, first));
        if missing || !pinned || !remove(&mut value, &segments) {
            return None;
        }
        removed = match segments.last() {
            Some(Key::Field(k)) => Some(k.clone()),
            _ => None,
        };
    }
    None
}

/// One step of a path inside an element.
enum Key {
    Field(String),
    Index(usize),
}

impl Key {
    fn of(segment: &serde_path_to_error::Segment) -> Option<Key> {
        match segment {
            serde_path_to_error::Segment::Map { key } => Some(Key::Field(key.clone())),
            serde_path_to_error::Segment::Seq { index } => Some(Key::Index(*index)),
            _ => None,
        }
    }
}

/// Takes the value at `path` out of `value`; false when there is none.
fn remove(value: &mut toml::Value, path: &[Key]) -> bool {
    let Some((last, parents)) = path.split_last() else {
        return false;
    };
    let mut at = value;
    for key in parents {
        let next = match (key, at) {
            (Key::Field(k), toml::Value::Table(t)) => t.get_mut(k),
            (Key::Index(i), toml::Value::Array(a)) => a.get_mut(*i),
            _ => None,
        };
        let Some(next) = next else { return false };
        at = next;
    }
    match (last, at) {
        (Key::Field(k), toml::Value::Table(t)) => t.remove(k).is_some(),
        // An element of a list cannot go without shifting the others' paths.
        _ => false,
    }
}

/// serde's message without the value it quotes, for a value from the environment:
/// `invalid type: string "x", expected usize` → `invalid type (the value from the
/// environment, not shown), expected usize`.
fn unquoted(what: &str, message: &str) -> String {
    let expected = message
        .rfind(", expected ")
        .map(|i| &message[i..])
        .unwrap_or_default();
    format!("{what} (the value from the environment, not shown){expected}")
}
