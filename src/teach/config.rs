//! `[teach]`: where labelled examples are kept and how many.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::kit::Problem;

/// The most examples `[teach] max_examples` may allow per query: training holds an
/// n × n matrix of them (2000: 16 MB) and takes about a second at this size.
pub const MAX_EXAMPLES: usize = 2000;

/// `[teach]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TeachConfig {
    /// Folder of the examples, one sub-folder per camera and query (default:
    /// `<[mqtt] state_dir>/examples`, else `.ocellus/examples` beside the config).
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Most examples one query keeps (a label beyond it is refused).
    #[serde(default = "default_max_examples")]
    pub max_examples: usize,
    /// Review items kept per camera for the HTTP API (the oldest go first).
    #[serde(default = "default_review_keep")]
    pub review_keep: usize,
    /// Least time between two review items of one query.
    #[serde(
        default = "default_review_every",
        deserialize_with = "crate::kit::duration::de"
    )]
    pub review_every: Duration,
}

impl Default for TeachConfig {
    fn default() -> Self {
        Self {
            dir: None,
            max_examples: default_max_examples(),
            review_keep: default_review_keep(),
            review_every: default_review_every(),
        }
    }
}

fn default_max_examples() -> usize {
    500
}
fn default_review_keep() -> usize {
    50
}
fn default_review_every() -> Duration {
    Duration::from_secs(10)
}

impl TeachConfig {
    /// Makes `dir` absolute, or sets the default: `state_dir/examples`, else
    /// `base/.ocellus/examples`.
    pub fn resolve_paths(&mut self, base: &Path, state_dir: Option<&Path>) {
        self.dir = Some(match (&self.dir, state_dir) {
            (Some(d), _) => crate::kit::resolve(base, d),
            (None, Some(s)) => s.join("examples"),
            (None, None) => base.join(".ocellus").join("examples"),
        });
    }

    /// The problems of `[teach]`.
    pub fn check(&self, problems: &mut Vec<Problem>) {
        if self.max_examples == 0 || self.max_examples > MAX_EXAMPLES {
            problems.push(Problem::new(
                "teach.max_examples",
                format!("must be between 1 and {MAX_EXAMPLES} (training holds an n × n matrix)"),
            ));
        }
        if self.review_keep > 10_000 {
            problems.push(Problem::new("teach.review_keep", "must be at most 10000"));
        }
    }
}
