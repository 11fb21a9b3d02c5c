//! Loading a PaliGemma model: opens the three sessions, checks their inputs and
//! outputs, reads the tokenizer and the Hugging Face configs, and embeds the constant
//! image prefix (`<image>` x N + `<bos>`) once.
//!
//! ```no_run
//! # use ocellus::model::paligemma::{PaliGemma, PaliGemmaConfig};
//! # let cfg: PaliGemmaConfig = toml::from_str(r#"dir = "/models/paligemma""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! match PaliGemma::load("pali", &cfg, env) {
//!     Ok((vlm, _sessions)) => println!("prefix of {} tokens", vlm.prefix_ids().len()),
//!     Err(e) => eprintln!("{e}"), // one line naming the model and the file
//! }
//! ```

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokenizers::Tokenizer;

use super::config::PaliGemmaConfig;
use super::error::PaliGemmaError;
use super::model::{MAX_NEW_TOKENS, MAX_SEQUENCE, PaliGemma, PaliGemmaSessions};
use crate::cache::PromptCache;
use crate::engine::{self, SharedSession};
use crate::model::clip::{ClipImage, ImageSpec, Resize};
use crate::model::kv_decoder::{self, DecoderIo, ids_of, names};
use crate::model::{Cancel, ModelError, TokenizerError};

const IMAGE: &str = "<image>";
const BOS: &str = "<bos>";
const EOS: &str = "<eos>";

impl PaliGemma {
    /// Opens the sessions and checks the files against the PaliGemma contract; errors
    /// are one line naming the model and the file.
    pub fn load(
        name: &str,
        cfg: &PaliGemmaConfig,
        env: &ort::environment::Environment,
    ) -> Result<(Self, PaliGemmaSessions), ModelError> {
        let err = |file: &Path, e: PaliGemmaError| ModelError::load(name, file, e);
        let tokenizer_err = |e| ModelError::load(name, &cfg.tokenizer, TokenizerError::File(e));
        // config.json first: a folder of another family is said as such.
        let hf = HfConfig::read(&cfg.config).map_err(|e| err(&cfg.config, e))?;
        let (spec, image_seq) =
            read_spec(&cfg.preprocessor, &hf).map_err(|e| err(&cfg.preprocessor, e))?;
        let tokenizer = Tokenizer::from_file(&cfg.tokenizer).map_err(tokenizer_err)?;
        let token = |t: &'static str| {
            tokenizer
                .token_to_id(t)
                .ok_or_else(|| err(&cfg.tokenizer, PaliGemmaError::MissingToken(t)))
        };
        let image_token_id = token(IMAGE)?;
        if image_token_id != hf.image_token_id {
            return Err(err(
                &cfg.config,
                PaliGemmaError::ImageToken {
                    config: hf.image_token_id,
                    tokenizer: image_token_id,
                },
            ));
        }
        let bos = token(BOS)?;
        let stop = kv_decoder::stop_ids(name, token(EOS)?, &cfg.config, &hf.eos)?;
        let single = |text: &str| kv_decoder::one_token(name, &cfg.tokenizer, &tokenizer, text);
        let (yes_id, no_id) = (single(&cfg.yes)?, single(&cfg.no)?);

        let open = |file: &PathBuf| engine::open(env, name, file, &cfg.providers, cfg.threads);
        let sessions = PaliGemmaSessions {
            vision: open(&cfg.vision)?,
            embed: open(&cfg.embed)?,
            decoder: open(&cfg.decoder)?,
        };
        let vision_output = check_vision(&sessions.vision).map_err(|e| err(&cfg.vision, e))?;
        kv_decoder::check_embed(&sessions.embed)
            .map_err(|e| ModelError::load(name, &cfg.embed, e))?;
        let io = DecoderIo::check(&sessions.decoder, None)
            .map_err(|e| ModelError::load(name, &cfg.decoder, e))?;

        let mut prefix_ids = vec![image_token_id; image_seq];
        prefix_ids.push(bos);
        let max_sequence = hf
            .max_positions
            .map_or(MAX_SEQUENCE, |n| n.min(MAX_SEQUENCE));
        if prefix_ids.len() + 2 > max_sequence {
            return Err(err(
                &cfg.config,
                PaliGemmaError::NoRoom {
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
            scratch: Mutex::new(ClipImage::new()),
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
            lang: cfg.lang.trim().to_string(),
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
    /// `(image_size / patch_size)^2`: the image tokens of one image.
    patches: usize,
    eos: Vec<u32>,
    /// The decoder's `text_config.max_position_embeddings`.
    max_positions: Option<usize>,
}

impl HfConfig {
    fn read(path: &Path) -> Result<Self, PaliGemmaError> {
        let text = std::fs::read_to_string(path)?;
        let v: Value = serde_json::from_str(&text)?;
        let kind = v["model_type"].as_str().unwrap_or_default();
        if kind != "paligemma" {
            return Err(PaliGemmaError::NotPaliGemma(kind.into()));
        }
        let num = |v: &Value, key: &'static str| {
            v[key]
                .as_u64()
                .filter(|&n| n > 0)
                .ok_or(PaliGemmaError::Missing(key))
        };
        let vision = &v["vision_config"];
        let image_size = num(vision, "image_size")?;
        let patch = num(vision, "patch_size")?;
        if image_size % patch != 0 {
            return Err(PaliGemmaError::NoTiling { image_size, patch });
        }
        let side = image_size / patch;
        let image_token_id = num(&v, "image_token_index").or_else(|_| num(&v, "image_token_id"))?;
        let mut eos = ids_of(&v["eos_token_id"]);
        eos.extend(ids_of(&v["text_config"]["eos_token_id"]));
        Ok(Self {
            image_token_id: image_token_id as u32,
            image_size: image_size as u32,
            patches: (side * side) as usize,
            eos,
            max_positions: v["text_config"]["max_position_embeddings"]
                .as_u64()
                .filter(|&n| n > 0)
                .map(|n| n as usize),
        })
    }
}

/// `preprocessor_config.json` (a `SiglipImageProcessor`: a fixed square resize) and
/// the processor's `image_seq_length`, both checked against the vision encoder.
fn read_spec(path: &Path, hf: &HfConfig) -> Result<(ImageSpec, usize), PaliGemmaError> {
    let v =
        crate::model::preprocessor::read(path).map_err(crate::model::clip::ImageSpecError::from)?;
    let spec = ImageSpec::from_json(&v)?;
    let Resize::Exact { width, height } = spec.resize else {
        return Err(PaliGemmaError::NotExact);
    };
    if spec.crop.is_some() {
        return Err(PaliGemmaError::NotExact);
    }
    if width != hf.image_size || height != hf.image_size {
        return Err(PaliGemmaError::ImageSize {
            width,
            height,
            image_size: hf.image_size,
        });
    }
    let image_seq = v["image_seq_length"]
        .as_u64()
        .map_or(hf.patches, |n| n as usize);
    if image_seq != hf.patches {
        return Err(PaliGemmaError::ImageSeq {
            processor: image_seq,
            patches: hf.patches,
        });
    }
    Ok((spec, image_seq))
}

fn check_vision(session: &SharedSession) -> Result<String, PaliGemmaError> {
    let s = session.lock();
    let inputs = names(s.inputs());
    if inputs != ["pixel_values"] {
        return Err(PaliGemmaError::VisionInputs(inputs));
    }
    let outputs = names(s.outputs());
    outputs
        .iter()
        .find(|o| *o == "image_features")
        .or(outputs.first())
        .cloned()
        .ok_or(PaliGemmaError::NoImageFeatures)
}
