//! `[models.NAME]` of `family = "smolvlm"`: where the Hugging Face ONNX files of a
//! SmolVLM (Idefics3) model are and how to run it.
//!
//! ```
//! use ocellus::model::smolvlm::SmolVlmConfig;
//! let mut cfg: SmolVlmConfig = toml::from_str(r#"dir = "models/smolvlm-256m""#).unwrap();
//! cfg.resolve_paths("/var/lib/ocellus".as_ref());
//! assert!(cfg.decoder.ends_with("smolvlm-256m/onnx/decoder_model_merged.onnx"));
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::{Provider, default_providers};

/// SmolVLM in the onnx-community layout (`onnx/vision_encoder.onnx`,
/// `onnx/embed_tokens.onnx`, `onnx/decoder_model_merged.onnx`, `tokenizer.json`,
/// `preprocessor_config.json`, `config.json`, optional `generation_config.json`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmolVlmConfig {
    pub dir: PathBuf,
    #[serde(default = "default_vision")]
    pub vision: PathBuf,
    #[serde(default = "default_embed")]
    pub embed: PathBuf,
    #[serde(default = "default_decoder")]
    pub decoder: PathBuf,
    #[serde(default = "default_tokenizer")]
    pub tokenizer: PathBuf,
    #[serde(default = "default_preprocessor")]
    pub preprocessor: PathBuf,
    #[serde(default = "default_config")]
    pub config: PathBuf,
    #[serde(default = "default_providers")]
    pub providers: Vec<Provider>,
    #[serde(default)]
    pub threads: Option<usize>,
    /// Most tokens a generated answer may have.
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// The token whose logit stands for "yes" (must be one token).
    #[serde(default = "default_yes")]
    pub yes: String,
    /// The token whose logit stands for "no" (must be one token).
    #[serde(default = "default_no")]
    pub no: String,
}

fn default_vision() -> PathBuf {
    "onnx/vision_encoder.onnx".into()
}
fn default_embed() -> PathBuf {
    "onnx/embed_tokens.onnx".into()
}
fn default_decoder() -> PathBuf {
    "onnx/decoder_model_merged.onnx".into()
}
fn default_tokenizer() -> PathBuf {
    "tokenizer.json".into()
}
fn default_preprocessor() -> PathBuf {
    "preprocessor_config.json".into()
}
fn default_config() -> PathBuf {
    "config.json".into()
}
fn default_max_tokens() -> usize {
    32
}
fn default_yes() -> String {
    " Yes".into()
}
fn default_no() -> String {
    " No".into()
}

impl SmolVlmConfig {
    /// Makes `dir` absolute (relative to `base`) and the files relative to `dir`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let resolve = crate::kit::resolve;
        self.dir = resolve(base, &self.dir);
        for f in [
            &mut self.vision,
            &mut self.embed,
            &mut self.decoder,
            &mut self.tokenizer,
            &mut self.preprocessor,
            &mut self.config,
        ] {
            *f = resolve(&self.dir, f);
        }
    }
}
