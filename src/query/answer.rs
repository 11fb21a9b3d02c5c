//! A query's answer, as published on `<cam>/query/<q>/state`.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq)]
/// A query's answer on a frame, by kind: ON/OFF, a count, a label, a text.
pub enum Answer {
    /// yes_no: `ON` / `OFF`.
    YesNo(bool),
    /// count: a number.
    Count(u32),
    /// classify: a label.
    Label(Arc<str>),
    /// caption, read, answer: text.
    Text(Arc<str>),
    /// read with a `pattern`: the number it matched.
    Number(f64),
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::YesNo(true) => f.write_str("ON"),
            Answer::YesNo(false) => f.write_str("OFF"),
            Answer::Count(n) => write!(f, "{n}"),
            Answer::Label(l) | Answer::Text(l) => f.write_str(l),
            Answer::Number(n) => write!(f, "{n}"),
        }
    }
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Answer::Count(n) => s.serialize_u32(*n),
            Answer::Number(n) => s.serialize_f64(*n),
            other => s.collect_str(other),
        }
    }
}
