//! `[models.NAME]` with `family = "florence2"`: where a Florence-2 model folder's files
//! are (Hugging Face ONNX layout, as onnx-community publishes it) and how to run it.
//!
//! ```
//! use ocellus::model::florence2::Florence2Config;
//! let mut cfg: Florence2Config = toml::from_str(r#"dir = "florence-2-base-ft""#).unwrap();
//! cfg.resolve_paths("/var/lib/ocellus/models".as_ref());
//! assert!(cfg.decoder.ends_with("florence-2-base-ft/onnx/decoder_model_merged.onnx"));
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::{Provider, default_providers};

/// Florence-2 (DaViT vision tower + BART encoder/decoder) in the Hugging Face ONNX layout.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Florence2Config {
    pub dir: PathBuf,
    /// `pixel_values` → `image_features`.
    #[serde(default = "default_vision")]
    pub vision: PathBuf,
    /// `input_ids` → `inputs_embeds`.
    #[serde(default = "default_embed")]
    pub embed: PathBuf,
    /// `inputs_embeds`, `attention_mask` → `last_hidden_state`.
    #[serde(default = "default_encoder")]
    pub encoder: PathBuf,
    /// The merged decoder (`use_cache_branch` selects the with-past graph).
    #[serde(default = "default_decoder")]
    pub decoder: PathBuf,
    #[serde(default = "default_tokenizer")]
    pub tokenizer: PathBuf,
    #[serde(default = "default_preprocessor")]
    pub preprocessor: PathBuf,
    /// Optional: without it the real Florence-2 generation settings are used.
    #[serde(default = "default_generation")]
    pub generation: PathBuf,
    /// Optional `config.json`: its `text_config.max_position_embeddings` bounds the
    /// encoder's input (image + prompt tokens) and the generated sequence.
    #[serde(default = "default_config")]
    pub config: PathBuf,
    #[serde(default = "default_providers")]
    pub providers: Vec<Provider>,
    #[serde(default)]
    pub threads: Option<usize>,
    /// Most tokens one answer may generate (at most
    /// [`MAX_NEW_TOKENS`](super::MAX_NEW_TOKENS); a larger value is clamped).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
}

fn default_vision() -> PathBuf {
    "onnx/vision_encoder.onnx".into()
}
fn default_embed() -> PathBuf {
    "onnx/embed_tokens.onnx".into()
}
fn default_encoder() -> PathBuf {
    "onnx/encoder_model.onnx".into()
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
fn default_generation() -> PathBuf {
    "generation_config.json".into()
}
fn default_config() -> PathBuf {
    "config.json".into()
}
fn default_max_tokens() -> usize {
    64
}

impl Florence2Config {
    /// Makes `dir` absolute (relative to `base`) and the files relative to `dir`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let resolve = crate::kit::resolve;
        self.dir = resolve(base, &self.dir);
        for f in [
            &mut self.vision,
            &mut self.embed,
            &mut self.encoder,
            &mut self.decoder,
            &mut self.tokenizer,
            &mut self.preprocessor,
            &mut self.generation,
            &mut self.config,
        ] {
            *f = resolve(&self.dir, f);
        }
    }
}
