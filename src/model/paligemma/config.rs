//! `[models.NAME]` of `family = "paligemma"`: where the Hugging Face ONNX files of a
//! PaliGemma (2) model are and how to run it.
//!
//! ```
//! use ocellus::model::paligemma::PaliGemmaConfig;
//! let mut cfg: PaliGemmaConfig = toml::from_str(r#"dir = "models/paligemma2-3b-pt-224""#).unwrap();
//! cfg.resolve_paths("/var/lib/ocellus".as_ref());
//! assert!(cfg.decoder.ends_with("paligemma2-3b-pt-224/onnx/decoder_model_merged.onnx"));
//! assert_eq!(cfg.lang, "en");
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::{Provider, default_providers};

/// PaliGemma in the onnx-community layout (`onnx/vision_encoder.onnx`,
/// `onnx/embed_tokens.onnx`, `onnx/decoder_model_merged.onnx`, `tokenizer.json`,
/// `preprocessor_config.json`, `config.json`, optional `generation_config.json`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaliGemmaConfig {
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
    /// The language of the task prompts (`caption en`, `answer en ...`).
    #[serde(default = "default_lang")]
    pub lang: String,
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
fn default_lang() -> String {
    "en".into()
}
fn default_yes() -> String {
    "yes".into()
}
fn default_no() -> String {
    "no".into()
}

impl PaliGemmaConfig {
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

    /// What is wrong with the values (not the files): an empty or spaced `lang`.
    pub fn problem(&self) -> Option<&'static str> {
        let lang = self.lang.trim();
        if lang.is_empty() || lang.contains(char::is_whitespace) || lang.len() > 16 {
            return Some("lang must be one short language code, e.g. \"en\"");
        }
        None
    }
}
