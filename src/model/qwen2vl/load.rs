//! Loading a Qwen2-VL / Qwen2.5-VL model: opens the three sessions, checks their inputs
//! and outputs, reads the tokenizer and the Hugging Face configs (either the flat
//! `config.json` of the published checkpoints or the `text_config`/`vision_config` one
//! of newer transformers), and embeds the constant pieces of the chat template once.
//!
//! ```no_run
//! # use ocellus::model::qwen2vl::{Qwen2Vl, Qwen2VlConfig};
//! # let cfg: Qwen2VlConfig = toml::from_str(r#"dir = "/models/qwen2-vl""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! match Qwen2Vl::load("vqa", &cfg, env) {
//!     Ok((vlm, _sessions)) => println!("{:?}, head of {} tokens", vlm.model_type(), vlm.head_ids().len()),
//!     Err(e) => eprintln!("{e}"), // one line naming the model and the file
//! }
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokenizers::Tokenizer;

use super::config::Qwen2VlConfig;
use super::error::Qwen2VlError;
use super::model::{HEAD, MAX_NEW_TOKENS, MAX_SEQUENCE, ModelType, Qwen2Vl, Qwen2VlSessions};
use super::preprocess::{ImageSpec, Qwen2VlImage};
use crate::cache::PromptCache;
use crate::engine::{self, SharedSession};
use crate::model::kv_decoder::{self, DecoderIo, PositionRule, ids_of, names};
use crate::model::{Cancel, ModelError, TokenizerError};

const IMAGE: &str = "<|image_pad|>";
const START: &str = "<|vision_start|>";
const END: &str = "<|vision_end|>";
const IM_END: &str = "<|im_end|>";

impl Qwen2Vl {
    /// Opens the sessions and checks the files against the Qwen2-VL contract; errors
    /// are one line naming the model and the file.
    pub fn load(
        name: &str,
        cfg: &Qwen2VlConfig,
        env: &ort::environment::Environment,
    ) -> Result<(Self, Qwen2VlSessions), ModelError> {
        let err = |file: &Path, e: Qwen2VlError| ModelError::load(name, file, e);
        cfg.check().map_err(|e| err(&cfg.dir, e.into()))?;
        let tokenizer_err = |e| ModelError::load(name, &cfg.tokenizer, TokenizerError::File(e));
        let hf = HfConfig::read(&cfg.config).map_err(|e| err(&cfg.config, e))?;
        let mut spec = ImageSpec::from_file(&cfg.preprocessor)
            .map_err(|e| ModelError::load(name, &cfg.preprocessor, e))?;
        spec.max_pixels = spec.max_pixels.min(cfg.max_pixels).max(spec.min_pixels);
        if let Some(merge) = hf.merge
            && merge != spec.merge
        {
            return Err(err(
                &cfg.preprocessor,
                Qwen2VlError::MergeSize {
                    config: merge,
                    processor: spec.merge,
                },
            ));
        }
        let tokenizer = Tokenizer::from_file(&cfg.tokenizer).map_err(tokenizer_err)?;
        let token = |t: &'static str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| err(&cfg.tokenizer, Qwen2VlError::MissingToken(t)))
        };
        let same = |name: &'static str, t: &'static str, config: Option<u32>| {
            let id = token(t)?;
            match config {
                Some(c) if c != id => Err(err(
                    &cfg.config,
                    Qwen2VlError::TokenId {
                        name,
                        token: t,
                        config: c,
                        tokenizer: id,
                    },
                )),
                _ => Ok(id),
            }
        };
        let image_token_id = same("image_token_id", IMAGE, Some(hf.image_token_id))?;
        same("vision_start_token_id", START, hf.vision_start)?;
        let end_id = same("vision_end_token_id", END, hf.vision_end)?;
        let stop = kv_decoder::stop_ids(name, token(IM_END)?, &cfg.config, &hf.eos)?;
        let single = |text: &str| kv_decoder::one_token(name, &cfg.tokenizer, &tokenizer, text);
        let (yes_id, no_id) = (single(&cfg.yes)?, single(&cfg.no)?);
        let head_ids = tokenizer
            .encode(HEAD, false)
            .map_err(tokenizer_err)?
            .get_ids()
            .to_vec();

        let max_sequence = hf
            .max_positions
            .map_or(MAX_SEQUENCE, |n| n.min(MAX_SEQUENCE));
        let largest = head_ids.len() + spec.max_tokens() + 1;
        if largest + 2 > max_sequence {
            return Err(err(
                &cfg.config,
                Qwen2VlError::NoRoom {
                    tokens: spec.max_tokens(),
                    max_pixels: spec.max_pixels,
                    max_sequence,
                },
            ));
        }

        let open = |file: &PathBuf| engine::open(env, name, file, &cfg.providers, cfg.threads);
        let sessions = Qwen2VlSessions {
            vision: open(&cfg.vision)?,
            embed: open(&cfg.embed)?,
            decoder: open(&cfg.decoder)?,
        };
        let vision_output = check_vision(&sessions.vision).map_err(|e| err(&cfg.vision, e))?;
        kv_decoder::check_embed(&sessions.embed)
            .map_err(|e| ModelError::load(name, &cfg.embed, e))?;
        let io = DecoderIo::check(&sessions.decoder, Some(MROPE))
            .map_err(|e| ModelError::load(name, &cfg.decoder, e))?;

        if cfg.max_tokens > MAX_NEW_TOKENS {
            tracing::debug!(model = %name, "max_tokens {} clamped to {MAX_NEW_TOKENS}", cfg.max_tokens);
        }
        let mut vlm = Self {
            name: name.into(),
            model_type: hf.model_type,
            scratch: Mutex::new(Qwen2VlImage::default()),
            spec,
            tokenizer,
            io,
            vision_output,
            hidden: 0,
            image_token_id,
            head_ids,
            head_embeds: Vec::new(),
            end_id,
            end_embed: Vec::new(),
            yes_id,
            no_id,
            stop,
            suffixes: Arc::default(),
            embed_id: format!("suffix:{}", PromptCache::model_id(&cfg.embed)),
            max_tokens: cfg.max_tokens.min(MAX_NEW_TOKENS),
            max_sequence,
            grounding_failures: crate::kit::metrics::Counter::default(),
        };
        let mut ids = vlm.head_ids.clone();
        ids.push(end_id);
        let embeds = vlm
            .embed(&sessions, &ids, Cancel::never())
            .map_err(|e| ModelError::load(name, &cfg.embed, e))?;
        let hidden = embeds.len() / ids.len();
        vlm.hidden = hidden;
        vlm.end_embed = embeds[embeds.len() - hidden..].to_vec();
        vlm.head_embeds = embeds[..embeds.len() - hidden].to_vec();
        Ok((vlm, sessions))
    }
}

/// The numbers of `config.json` that matter.
struct HfConfig {
    model_type: ModelType,
    image_token_id: u32,
    vision_start: Option<u32>,
    vision_end: Option<u32>,
    merge: Option<u32>,
    eos: Vec<u32>,
    /// The decoder's `max_position_embeddings`.
    max_positions: Option<usize>,
}

impl HfConfig {
    fn read(path: &Path) -> Result<Self, Qwen2VlError> {
        let text = std::fs::read_to_string(path)?;
        let v: Value = serde_json::from_str(&text)?;
        let model_type = match v["model_type"].as_str() {
            Some("qwen2_vl") => ModelType::Qwen2Vl,
            Some("qwen2_5_vl") => ModelType::Qwen25Vl,
            other => return Err(Qwen2VlError::ModelType(other.unwrap_or("").into())),
        };
        // Newer transformers nest the decoder's numbers under text_config.
        let text = |key: &str| {
            let t = &v["text_config"][key];
            if t.is_null() { &v[key] } else { t }
        };
        let id = |key: &str| v[key].as_u64().map(|n| n as u32);
        Ok(Self {
            model_type,
            image_token_id: id("image_token_id").ok_or(Qwen2VlError::Missing("image_token_id"))?,
            vision_start: id("vision_start_token_id"),
            vision_end: id("vision_end_token_id"),
            merge: v["vision_config"]["spatial_merge_size"]
                .as_u64()
                .map(|n| n as u32),
            eos: ids_of(text("eos_token_id")),
            max_positions: text("max_position_embeddings")
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize),
        })
    }
}

fn check_vision(session: &SharedSession) -> Result<String, Qwen2VlError> {
    let s = session.lock();
    let inputs = names(s.inputs());
    if inputs != ["pixel_values", "grid_thw"] {
        return Err(Qwen2VlError::VisionInputs(inputs));
    }
    let outputs = names(s.outputs());
    outputs
        .iter()
        .find(|o| *o == "image_features")
        .or(outputs.first())
        .cloned()
        .ok_or(Qwen2VlError::NoImageFeatures)
}

/// M-RoPE's `position_ids`: `[3, batch, sequence]` (temporal, height, width rows), the
/// first axis 3 or dynamic.
const MROPE: PositionRule = PositionRule {
    shape: "[3, batch, sequence] (M-RoPE)",
    fits: |dims| dims.len() == 3 && (dims[0] <= 0 || dims[0] == 3),
};
