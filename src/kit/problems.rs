//! Config problems: each names where (a dotted path) and what is wrong; and the
//! checks of text every stage's config uses (ids, lengths, control characters).

use std::fmt;

/// One thing wrong with a config, at a path such as `cameras[0].queries[1].on`.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    /// Where the problem is, as a dotted path (`cameras[0].queries[1].on`); empty for the
    /// config as a whole.
    pub path: String,
    /// What is wrong, as a phrase that follows the path (`must be within 1..100`).
    pub message: String,
}

impl Problem {
    /// A problem with `message` at `path`.
    pub fn new(path: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.path, self.message)
        }
    }
}

/// Whether `s` is at most `max` characters (counted without going past them).
pub fn within(s: &str, max: usize) -> bool {
    s.len() <= max || s.chars().nth(max).is_none()
}

/// Why `text` does not fit: longer than `max` characters, or a control character
/// (a newline or tab allowed in a `multiline` one).
pub fn text_problem(text: &str, max: usize, multiline: bool) -> Option<String> {
    if !within(text, max) {
        return Some(format!("is longer than {max} characters"));
    }
    let allowed = |c: char| multiline && (c == '\n' || c == '\t');
    text.chars()
        .any(|c| c.is_control() && !allowed(c))
        .then(|| "must not contain control characters".to_string())
}

/// `s` quoted for a message, cut after 64 characters.
pub fn shown(s: &str) -> String {
    if within(s, 64) {
        format!("{s:?}")
    } else {
        let head: String = s.chars().take(64).collect();
        format!("{head:?}…")
    }
}

/// Whether `id` is a valid camera or query id: 1-64 characters of A-Z a-z 0-9 _ -.
pub fn id_ok(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}
