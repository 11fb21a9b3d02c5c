//! `[models.NAME]` with `family = "embedder"`.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::{Provider, default_providers};

/// An image embedder: one ONNX file with an embedding output, and its
/// `preprocessor_config.json`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderConfig {
    /// The model's folder.
    pub dir: PathBuf,
    /// ONNX file inside `dir` (default: see the module docs).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// The output that holds the embedding, `[N, D]` (or `[N, D, 1, 1]`).
    #[serde(default = "default_output")]
    pub output: String,
    /// The image processor's config inside `dir`.
    #[serde(default = "default_preprocessor")]
    pub preprocessor: PathBuf,
    /// Execution providers, in order of preference.
    #[serde(default = "default_providers")]
    pub providers: Vec<Provider>,
    /// ONNX Runtime intra-op threads (default: the engine's).
    #[serde(default)]
    pub threads: Option<usize>,
}

fn default_output() -> String {
    "embedding".into()
}

fn default_preprocessor() -> PathBuf {
    "preprocessor_config.json".into()
}

impl EmbedderConfig {
    /// Makes `dir` absolute and the files inside it relative to `dir`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let resolve = crate::kit::resolve;
        self.dir = resolve(base, &self.dir);
        self.file = self.file.as_ref().map(|f| resolve(&self.dir, f));
        self.preprocessor = resolve(&self.dir, &self.preprocessor);
    }
}
