//! Engine config: where ONNX Runtime lives and the default thread count.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `[engine]` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineConfig {
    /// Path to `libonnxruntime.so`. Default: `$ORT_DYLIB_PATH`, then the project's
    /// `vendor/onnxruntime/lib/libonnxruntime.so`, then the system library.
    #[serde(default)]
    pub onnxruntime: Option<PathBuf>,
    /// Default intra-op threads for every session (a model may override).
    #[serde(default)]
    pub threads: Option<usize>,
}

impl EngineConfig {
    pub fn resolve_paths(&mut self, base: &Path) {
        if let Some(p) = &self.onnxruntime {
            self.onnxruntime = Some(crate::config::resolve(base, p));
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
