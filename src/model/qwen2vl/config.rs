//! `[models.NAME]` of `family = "qwen2vl"`: where the Hugging Face ONNX files of a
//! Qwen2-VL or Qwen2.5-VL model are and how to run it.
//!
//! ```
//! use ocellus::model::qwen2vl::Qwen2VlConfig;
//! let mut cfg: Qwen2VlConfig = toml::from_str(r#"dir = "models/qwen2-vl-2b""#).unwrap();
//! cfg.resolve_paths("/var/lib/ocellus".as_ref());
//! assert!(cfg.decoder.ends_with("qwen2-vl-2b/onnx/decoder_model_merged.onnx"));
//! assert!(cfg.check().is_ok());
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::{Provider, default_providers};

/// The default cap on an image's pixels: 1024 merged tokens of 28 x 28 pixels (about
/// 896 x 896), far below Qwen2-VL's published 12.8 M (16384 tokens), which no edge box
/// can prefill per frame.
pub const DEFAULT_MAX_PIXELS: u32 = 1024 * 28 * 28;

/// Qwen2-VL / Qwen2.5-VL in the onnx-community layout (`onnx/vision_encoder.onnx`,
/// `onnx/embed_tokens.onnx`, `onnx/decoder_model_merged.onnx`, `tokenizer.json`,
/// `preprocessor_config.json`, `config.json`, optional `generation_config.json`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Qwen2VlConfig {
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
    /// Most pixels of the resized image (the processor's `max_pixels` when smaller):
    /// it bounds the image tokens of a frame, hence the vision and prefill cost.
    #[serde(default = "default_max_pixels")]
    pub max_pixels: u32,
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
    64
}
fn default_max_pixels() -> u32 {
    DEFAULT_MAX_PIXELS
}
fn default_yes() -> String {
    "Yes".into()
}
fn default_no() -> String {
    "No".into()
}

/// A `[models.NAME]` value of family `qwen2vl` that cannot work.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Qwen2VlConfigError {
    #[error("max_pixels must be at least 784 (one 28 x 28 token)")]
    MaxPixels,
    #[error("max_tokens must be at least 1")]
    MaxTokens,
}

impl Qwen2VlConfig {
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

    /// The values that cannot work, before any file is read.
    pub fn check(&self) -> Result<(), Qwen2VlConfigError> {
        if self.max_pixels < 28 * 28 {
            return Err(Qwen2VlConfigError::MaxPixels);
        }
        if self.max_tokens == 0 {
            return Err(Qwen2VlConfigError::MaxTokens);
        }
        Ok(())
    }
}
