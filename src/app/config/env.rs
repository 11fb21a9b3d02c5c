//! `${VAR}` and `${VAR:-default}` expansion from the process environment.
//!
//! Expansion runs on the string values of the parsed TOML, never on its text: a value
//! may hold any character (`"`, `\`, a newline, `"\nkey = 1`) and reaches the config
//! exactly as the environment holds it, without changing the file's structure. A
//! problem names the variable and the key (`mqtt.password: environment variable
//! MQTT_PW is not set`), never the value. `${` that starts no well-formed reference
//! (no closing `}`) is kept as written; nothing expands twice.

use std::collections::HashSet;

use super::Problem;

/// Expands every string value of `table`, recording an unset variable (without a
/// default) as a problem at the value's key path. Returns the key paths whose value
/// came (at least partly) from the environment, so that later messages about those
/// values do not quote them.
pub(super) fn expand_table(
    table: &mut toml::Table,
    problems: &mut Vec<Problem>,
) -> HashSet<String> {
    let mut expanded = HashSet::new();
    for (key, value) in table.iter_mut() {
        expand_value(value, key, problems, &mut expanded);
    }
    expanded
}

fn expand_value(
    value: &mut toml::Value,
    at: &str,
    problems: &mut Vec<Problem>,
    expanded: &mut HashSet<String>,
) {
    match value {
        toml::Value::String(s) if s.contains("${") => {
            *s = expand(s, at, problems);
            expanded.insert(at.to_string());
        }
        toml::Value::Array(list) => {
            for (i, v) in list.iter_mut().enumerate() {
                expand_value(v, &format!("{at}[{i}]"), problems, expanded);
            }
        }
        toml::Value::Table(t) => {
            for (k, v) in t.iter_mut() {
                expand_value(v, &format!("{at}.{k}"), problems, expanded);
            }
        }
        _ => {}
    }
}

/// Expands every `${...}` in the string `text` found at key path `at`; an unset
/// variable without a default is a problem and expands to the empty string. A set but
/// empty variable takes the default when there is one.
pub(super) fn expand(text: &str, at: &str, problems: &mut Vec<Problem>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let Some(end) = after.find('}') else {
            out.push_str(&rest[start..]);
            return out;
        };
        let inner = &after[..end];
        let (name, default) = match inner.split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (inner, None),
        };
        if !is_name(name) {
            problems.push(Problem::new(
                at,
                format!(
                    "${{{}}} is not a variable name (letters, digits and _)",
                    quoted_name(name)
                ),
            ));
        } else {
            match (std::env::var(name), default) {
                (Ok(v), Some(d)) if v.is_empty() => out.push_str(d),
                (Ok(v), _) => out.push_str(&v),
                (Err(std::env::VarError::NotPresent), Some(d)) => out.push_str(d),
                (Err(std::env::VarError::NotPresent), None) => problems.push(Problem::new(
                    at,
                    format!("environment variable {name} is not set"),
                )),
                (Err(std::env::VarError::NotUnicode(_)), _) => problems.push(Problem::new(
                    at,
                    format!("environment variable {name} is not valid UTF-8"),
                )),
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}

/// At most 40 characters of a malformed name, control characters escaped, so the
/// problem stays one short line.
fn quoted_name(name: &str) -> String {
    let mut out: String = name
        .chars()
        .take(40)
        .flat_map(char::escape_default)
        .collect();
    if name.chars().nth(40).is_some() {
        out.push('…');
    }
    out
}

fn is_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}
