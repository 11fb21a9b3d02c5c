//! A query's answer, as published on `<cam>/query/<q>/state`.

use std::fmt;
use std::sync::Arc;

use serde::{Serialize, Serializer};

#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// yes_no: `ON` / `OFF`.
    YesNo(bool),
    /// count: a number.
    Count(u32),
    /// classify: a label.
    Label(Arc<str>),
}

impl fmt::Display for Answer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Answer::YesNo(true) => f.write_str("ON"),
            Answer::YesNo(false) => f.write_str("OFF"),
            Answer::Count(n) => write!(f, "{n}"),
            Answer::Label(l) => f.write_str(l),
        }
    }
}

impl Serialize for Answer {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Answer::Count(n) => s.serialize_u32(*n),
            other => s.collect_str(other),
        }
    }
}
