//! Engine config: where ONNX Runtime lives, the default thread count and batching.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::kit::Problem;

/// `[engine]` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Path to `libonnxruntime.so`. Default: `$ORT_DYLIB_PATH`, then the project's
    /// `vendor/onnxruntime/lib/libonnxruntime.so`, then the system library.
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// Default intra-op threads for every session (a model may override).
    #[serde(default)]
    pub threads: Option<usize>,
    /// Most frames (from any cameras) one inference run takes; models with a fixed
    /// batch dimension run one at a time.
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// Longest a frame waits for others to fill a batch.
    #[serde(
        default = "default_max_wait",
        deserialize_with = "crate::kit::duration::de"
    )]
    pub max_wait: Duration,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            onnxruntime: None,
            threads: None,
            max_batch: default_max_batch(),
            max_wait: default_max_wait(),
        }
    }
}

fn default_max_batch() -> usize {
    8
}
fn default_max_wait() -> Duration {
    Duration::from_millis(5)
}

impl EngineConfig {
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = &self.onnxruntime {
            self.onnxruntime = Some(crate::kit::resolve(base, p));
        }
    }
}

/// An execution provider, in the order the user prefers them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Tensorrt,
    Cuda,
    Cpu,
}

impl Provider {
    pub fn name(self) -> &'static str {
        match self {
            Provider::Tensorrt => "tensorrt",
            Provider::Cuda => "cuda",
            Provider::Cpu => "cpu",
        }
    }
}

/// The default preference: fastest first, CPU always last.
pub fn default_providers() -> Vec<Provider> {
    vec![Provider::Tensorrt, Provider::Cuda, Provider::Cpu]
}

impl EngineConfig {
    /// The problems of `[engine]`, pushed to `problems`.
    pub fn check(&self, problems: &mut Vec<Problem>) {
        if self.threads == Some(0) {
            problems.push(Problem::new("engine.threads", "must be at least 1"));
        }
        if self.max_batch == 0 {
            problems.push(Problem::new("engine.max_batch", "must be at least 1"));
        }
    }
}
