//! Loading a SmolVLM model: opens the three sessions, checks their inputs and
//! outputs, reads the tokenizer and the Hugging Face configs, and embeds the constant
//! prompt prefix once.
//!
//! ```no_run
//! # use ocellus::model::smolvlm::{SmolVlm, SmolVlmConfig};
//! # let cfg: SmolVlmConfig = toml::from_str(r#"dir = "/models/smolvlm""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! match SmolVlm::load("vqa", &cfg, env) {
//!     Ok((vlm, _sessions)) => println!("prefix of {} tokens", vlm.prefix_ids().len()),
//!     Err(e) => eprintln!("{e}"), // one line naming the model and the file
//! }
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokenizers::Tokenizer;

use super::config::SmolVlmConfig;
use super::error::SmolVlmError;
use super::model::{MAX_NEW_TOKENS, MAX_SEQUENCE, SmolVlm, SmolVlmSessions};
use super::preprocess::{ImageSpec, SmolVlmImage};
use crate::cache::PromptCache;
use crate::engine::{self, SharedSession};
use crate::model::kv_decoder::{self, DecoderIo, ids_of, names};
use crate::model::{Cancel, ModelError, TokenizerError};

const IMAGE: &str = "<image>";
const FAKE: &str = "<fake_token_around_image>";
const GLOBAL: &str = "<global-img>";
const END: &str = "<end_of_utterance>";

impl SmolVlm {
    /// Opens the sessions and checks the files against the SmolVLM contract; errors
    /// are one line naming the model and the file.
    pub fn load(
        name: &str,
        cfg: &SmolVlmConfig,
        env: &ort::environment::Environment,
    ) -> Result<(Self, SmolVlmSessions), ModelError> {
        let err = |file: &Path, e: SmolVlmError| ModelError::load(name, file, e);
        let tokenizer_err = |e| ModelError::load(name, &cfg.tokenizer, TokenizerError::File(e));
        let spec = ImageSpec::from_file(&cfg.preprocessor)
            .map_err(|e| ModelError::load(name, &cfg.preprocessor, e))?;
        let tokenizer = Tokenizer::from_file(&cfg.tokenizer).map_err(tokenizer_err)?;
        let hf = HfConfig::read(&cfg.config).map_err(|e| err(&cfg.config, e))?;
        if hf.image_size != spec.square {
            return Err(err(
                &cfg.preprocessor,
                SmolVlmError::ImageSize {
                    square: spec.square,
                    image_size: hf.image_size,
                },
            ));
        }
        let token = |t: &'static str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| err(&cfg.tokenizer, SmolVlmError::MissingToken(t)))
        };
        let image_token_id = token(IMAGE)?;
        if image_token_id != hf.image_token_id {
            return Err(err(
                &cfg.config,
                SmolVlmError::ImageToken {
                    config: hf.image_token_id,
                    tokenizer: image_token_id,
                },
            ));
        }
        for t in [FAKE, GLOBAL] {
            token(t)?;
        }
        let stop = kv_decoder::stop_ids(name, token(END)?, &cfg.config, &hf.eos)?;
        let single = |text: &str| kv_decoder::one_token(name, &cfg.tokenizer, &tokenizer, text);
        let (yes_id, no_id) = (single(&cfg.yes)?, single(&cfg.no)?);

        let open = |file: &PathBuf| engine::open(env, name, file, &cfg.providers, cfg.threads);
        let sessions = SmolVlmSessions {
            vision: open(&cfg.vision)?,
            embed: open(&cfg.embed)?,
            decoder: open(&cfg.decoder)?,
        };
        let vision_output = check_vision(&sessions.vision).map_err(|e| err(&cfg.vision, e))?;
        kv_decoder::check_embed(&sessions.embed)
            .map_err(|e| ModelError::load(name, &cfg.embed, e))?;
        let io = DecoderIo::check(&sessions.decoder, None)
            .map_err(|e| ModelError::load(name, &cfg.decoder, e))?;

        let prefix_text = format!(
            "<|im_start|>User:{FAKE}{GLOBAL}{}{FAKE}",
            IMAGE.repeat(hf.image_seq_len)
        );
        let prefix_ids = tokenizer
            .encode(prefix_text.as_str(), false)
            .map_err(tokenizer_err)?
            .get_ids()
            .to_vec();
        let images = prefix_ids.iter().filter(|&&t| t == image_token_id).count();
        if images != hf.image_seq_len {
            return Err(err(
                &cfg.tokenizer,
                SmolVlmError::PrefixImages {
                    found: images,
                    expected: hf.image_seq_len,
                },
            ));
        }
        let max_sequence = hf
            .max_positions
            .map_or(MAX_SEQUENCE, |n| n.min(MAX_SEQUENCE));
        if prefix_ids.len() + 2 > max_sequence {
            return Err(err(
                &cfg.config,
                SmolVlmError::NoRoom {
                    prefix: prefix_ids.len(),
                    max_sequence,
                },
            ));
        }
        if cfg.max_tokens > MAX_NEW_TOKENS {
            tracing::debug!(
                model = %name,
                "max_tokens {} clamped to {MAX_NEW_TOKENS}",
                cfg.max_tokens
            );
        }
        let mut vlm = Self {
            max_tokens: cfg.max_tokens.min(MAX_NEW_TOKENS),
            max_sequence,
            embed_id: format!("suffix:{}", PromptCache::model_id(&cfg.embed)),
            name: name.into(),
            scratch: Mutex::new(SmolVlmImage::new(&spec)),
            spec,
            tokenizer,
            io,
            vision_output,
            hidden: 0,
            image_token_id,
            prefix_ids,
            prefix_embeds: Vec::new(),
            yes_id,
            no_id,
            stop,
            suffixes: Arc::default(),
        };
        let embeds = vlm
            .embed(&sessions, &vlm.prefix_ids, Cancel::never())
            .map_err(|e| ModelError::load(name, &cfg.embed, e))?;
        vlm.hidden = embeds.len() / vlm.prefix_ids.len().max(1);
        vlm.prefix_embeds = embeds;
        Ok((vlm, sessions))
    }
}

/// The numbers of `config.json` that matter.
struct HfConfig {
    image_token_id: u32,
    image_size: u32,
    image_seq_len: usize,
    eos: Vec<u32>,
    /// The decoder's `text_config.max_position_embeddings`.
    max_positions: Option<usize>,
}

impl HfConfig {
    fn read(path: &Path) -> Result<Self, SmolVlmError> {
        let text = std::fs::read_to_string(path)?;
        let v: Value = serde_json::from_str(&text)?;
        let num = |v: &Value, key: &'static str| {
            v[key]
                .as_u64()
                .filter(|&n| n > 0)
                .ok_or(SmolVlmError::Missing(key))
        };
        let vision = &v["vision_config"];
        let image_size = num(vision, "image_size")?;
        let patch = num(vision, "patch_size")?;
        let scale = v["scale_factor"].as_u64().unwrap_or(2).max(1);
        let side = image_size / patch;
        if image_size % patch != 0 || side % scale != 0 {
            return Err(SmolVlmError::NoTiling {
                image_size,
                patch,
                scale,
            });
        }
        let eos = ids_of(&v["text_config"]["eos_token_id"]);
        Ok(Self {
            image_token_id: num(&v, "image_token_id")? as u32,
            image_size: image_size as u32,
            image_seq_len: ((side / scale) * (side / scale)) as usize,
            eos,
            max_positions: v["text_config"]["max_position_embeddings"]
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize),
        })
    }
}

fn check_vision(session: &SharedSession) -> Result<String, SmolVlmError> {
    let s = session.lock();
    let inputs = names(s.inputs());
    if inputs != ["pixel_values", "pixel_attention_mask"] {
        return Err(SmolVlmError::VisionInputs(inputs));
    }
    let outputs = names(s.outputs());
    outputs
        .iter()
        .find(|o| *o == "image_features")
        .or(outputs.first())
        .cloned()
        .ok_or(SmolVlmError::NoImageFeatures)
}
