//! SmolVLM (Idefics3: SigLIP-like vision encoder, pixel-shuffle connector, Llama
//! decoder) answering questions about a frame, in the onnx-community ONNX layout
//! (`onnx/vision_encoder.onnx`, `onnx/embed_tokens.onnx`,
//! `onnx/decoder_model_merged.onnx`, `tokenizer.json`, `preprocessor_config.json`,
//! `config.json`, `generation_config.json`).
//!
//! Encode once, ask many: [`SmolVlm::prefix`] preprocesses a frame, runs the vision
//! encoder and ONE decoder pass over `<|im_start|>User:` + the image tokens, and keeps
//! that pass's KV cache as an [`ImagePrefix`]. Each question is then one decoder pass
//! over `QUESTION<end_of_utterance>\nAssistant:` on top of the prefix (which is never
//! mutated): [`SmolVlm::yes_no`] compares the logits of the yes and no tokens,
//! [`SmolVlm::answer`] decodes greedily with the KV cache.
//!
//! ```no_run
//! use ocellus::model::smolvlm::{SmolVlm, SmolVlmConfig};
//! let mut cfg: SmolVlmConfig = toml::from_str(r#"dir = "models/smolvlm-256m""#).unwrap();
//! cfg.resolve_paths(std::path::Path::new("/var/lib/ocellus"));
//! let env = ocellus::engine::environment(&Default::default()).unwrap();
//! let (vlm, sessions) = SmolVlm::load("vqa", &cfg, env).unwrap();
//! let frame = ocellus::source::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let prefix = vlm.prefix(&sessions, &frame, None).unwrap();
//! let door = vlm.yes_no(&sessions, &prefix, "Is the door open?").unwrap();
//! let what = vlm.answer(&sessions, &prefix, "What is in the picture?", 16).unwrap();
//! println!("p(open) = {:.2}; {}", door.p_yes, what.text);
//! ```

mod config;
mod decode;
mod load;
mod prefix;
mod preprocess;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokenizers::Tokenizer;

use super::ModelError;
use crate::engine::SharedSession;

pub use config::SmolVlmConfig;
pub use decode::{DecodeTimings, Generated, YesNo};
pub use prefix::{ImagePrefix, PrefixTimings};
pub use preprocess::{ImageSpec, SmolVlmImage};

/// The three sessions of a SmolVLM model.
#[derive(Clone)]
pub struct SmolVlmSessions {
    pub vision: SharedSession,
    pub embed: SharedSession,
    pub decoder: SharedSession,
}

/// Input and output names and sizes of the decoder, checked at load.
#[derive(Debug, Clone)]
struct DecoderIo {
    /// `(past_key_values.{i}.key|value, present.{i}.key|value)`, layer by layer.
    cache: Vec<(String, String)>,
    kv_heads: usize,
    head_dim: usize,
}

/// Token ids and embeddings of one question's suffix.
struct Suffix {
    ids: Vec<u32>,
    embeds: Vec<f32>,
}

/// Distinct questions whose suffix embeddings are kept (standing queries are few).
const MAX_CACHED_SUFFIXES: usize = 256;

/// The model's contract, tokenizer, prompt prefix and caches; sessions are held by the
/// caller.
pub struct SmolVlm {
    name: String,
    spec: ImageSpec,
    tokenizer: Tokenizer,
    io: DecoderIo,
    vision_output: String,
    hidden: usize,
    image_token_id: u32,
    /// `<|im_start|>User:` + the global image's tokens, and their embeddings.
    prefix_ids: Vec<u32>,
    prefix_embeds: Vec<f32>,
    yes_id: u32,
    no_id: u32,
    /// Generation stops after any of these.
    stop: Vec<u32>,
    scratch: Mutex<SmolVlmImage>,
    suffixes: Mutex<HashMap<String, Arc<Suffix>>>,
    /// Default token cap of an answer (`max_tokens` in the config).
    max_tokens: usize,
}

impl SmolVlm {
    pub fn spec(&self) -> &ImageSpec {
        &self.spec
    }

    /// Token ids of the image prefix (`<|im_start|>User:` + image tokens).
    pub fn prefix_ids(&self) -> &[u32] {
        &self.prefix_ids
    }

    /// Token ids of a question's suffix (`QUESTION<end_of_utterance>\nAssistant:`).
    pub fn suffix_ids(&self, s: &SmolVlmSessions, question: &str) -> Result<Vec<u32>, ModelError> {
        Ok(self.suffix(s, question)?.ids.clone())
    }

    /// The configured token cap of an answer.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// The ids of the yes and no tokens.
    pub fn yes_no_ids(&self) -> (u32, u32) {
        (self.yes_id, self.no_id)
    }

    /// The token ids that end an answer.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop
    }

    /// `ids` as text, special tokens left out.
    pub fn decode_text(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| self.run_error(format!("tokenizer: {e}")))
    }

    fn tokenize(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| self.run_error(format!("tokenizer: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The cached suffix of `question` (tokenised and embedded on first use).
    fn suffix(&self, s: &SmolVlmSessions, question: &str) -> Result<Arc<Suffix>, ModelError> {
        let cache = || self.suffixes.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(hit) = cache().get(question) {
            return Ok(hit.clone());
        }
        let ids = self.tokenize(&format!("{question}<end_of_utterance>\nAssistant:"))?;
        let embeds = self.embed(s, &ids)?;
        let suffix = Arc::new(Suffix { ids, embeds });
        let mut cache = cache();
        if cache.len() >= MAX_CACHED_SUFFIXES {
            cache.clear();
        }
        cache.insert(question.to_string(), suffix.clone());
        Ok(suffix)
    }

    fn run_error(&self, e: impl std::fmt::Display) -> ModelError {
        ModelError::Run {
            model: self.name.clone(),
            cause: e.to_string(),
        }
    }
}
