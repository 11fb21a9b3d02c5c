//! `${VAR}` and `${VAR:-default}` expansion from the process environment.

use super::Problem;

/// Expands every `${...}` in `text`; an unset variable without a default is a problem
/// (reported with its line) and expands to the empty string.
pub fn expand(text: &str, problems: &mut Vec<Problem>) -> String {
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
        match (std::env::var(name), default) {
            (Ok(v), _) if !v.is_empty() || default.is_none() => out.push_str(&v),
            (_, Some(d)) => out.push_str(d),
            (Err(_), None) => {
                let line = text[..text.len() - rest.len() + start]
                    .lines()
                    .count()
                    .max(1);
                problems.push(Problem::new(
                    format!("line {line}"),
                    format!("environment variable {name} is not set"),
                ));
            }
            (Ok(v), None) => out.push_str(&v),
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    out
}
