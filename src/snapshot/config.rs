//! `[snapshots]`: JPEGs of the frames behind alerts.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::kit::Problem;

/// `[snapshots]` section: where alert JPEGs go, how many are kept, their quality and
/// whether they are annotated.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct SnapshotConfig {
    /// Folder the JPEGs are also written to (one subfolder per camera); without it
    /// snapshots go to MQTT only.
    #[serde(default)]
    pub dir: Option<PathBuf>,
    /// Files kept per camera (the oldest go first).
    #[serde(default = "default_keep")]
    pub keep: usize,
    /// Megabytes kept per camera.
    #[serde(default = "default_keep_mb")]
    pub keep_mb: u64,
    /// JPEG quality, 1..100.
    #[serde(default = "default_quality")]
    pub quality: u8,
    /// Draw the query regions and the detections on the picture.
    #[serde(default = "yes")]
    pub annotate: bool,
}

fn default_keep() -> usize {
    100
}
fn default_keep_mb() -> u64 {
    100
}
fn default_quality() -> u8 {
    80
}
fn yes() -> bool {
    true
}

impl SnapshotConfig {
    /// Makes a relative `dir` absolute, anchored at the config file's folder `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        self.dir = self.dir.as_ref().map(|d| crate::kit::resolve(base, d));
    }
}

impl SnapshotConfig {
    /// The problems of `[snapshots]`, pushed to `problems`.
    pub fn check(&self, problems: &mut Vec<Problem>) {
        if !(1..=100).contains(&self.quality) {
            problems.push(Problem::new("snapshots.quality", "must be within 1..100"));
        }
        if self.keep == 0 {
            problems.push(Problem::new("snapshots.keep", "must be at least 1"));
        }
    }
}
