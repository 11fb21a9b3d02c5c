//! [`Clip`]: loading a dual encoder (its two sessions checked against the model
//! type's contract, the tokenizer set up, the scoring numbers found), and embedding
//! prompts and images with it.

use std::path::Path;
use std::sync::Arc;

use ort::value::TensorRef;
use tokenizers::Tokenizer;

use super::embedding::{Embedding, embed_on, normalise};
use super::error::ClipError;
use super::family;
use super::preprocess::{ClipImage, ImageSpec};
use super::scoring::{Scoring, dot, softmax};
use super::siglip;
use crate::cache::PromptCache;
use crate::engine::{
    self, BatchClient, BatchSpec, Batcher, EngineConfig, Rect, RgbView, SharedSession,
};
use crate::kit::Frame;
use crate::model::{ClipConfig, ClipModelType, ModelError, TokenizerError};

/// CLIP's trained multiplier (exp of its logit_scale, clamped at 100 in training).
const CLIP_LOGIT_SCALE: f32 = 100.0;

/// The two sessions a dual encoder needs.
#[derive(Clone)]
pub struct ClipSessions {
    pub vision: SharedSession,
    pub text: SharedSession,
}

/// How a prompt becomes the text tower's input.
#[derive(Debug, Clone, PartialEq)]
struct TextInput {
    mask: Option<String>,
    output: String,
    /// Longest token sequence (the end token kept last when cut).
    max_tokens: usize,
    /// Every prompt padded to this length (SigLIP; a text model of fixed length).
    pad_to: Option<usize>,
    pad_id: i64,
    /// The mask is 0 on padding (CLIP); SigLIP's is all ones, as it was trained.
    mask_padding: bool,
}

/// The dual encoder's contract, tokenizer and prompt cache; sessions are held by the
/// caller.
pub struct Clip {
    name: String,
    model_type: ClipModelType,
    spec: ImageSpec,
    tokenizer: Tokenizer,
    scoring: Scoring,
    vision_output: String,
    text: TextInput,
    prompts: Arc<PromptCache>,
    /// Identity of the text model's file (prompt cache key).
    text_id: String,
    /// Identity of the vision model's file (what image embeddings depend on).
    vision_id: String,
}

impl Clip {
    pub fn load(
        name: &str,
        cfg: &ClipConfig,
        env: &ort::environment::Environment,
    ) -> Result<(Self, ClipSessions), ModelError> {
        let err = |file: &Path, e: ClipError| ModelError::load(name, file, e);
        let family = family::read(&cfg.config, cfg.model_type)
            .map_err(|e| ModelError::load(name, &cfg.config, e))?;
        let model_type = family.model_type;
        let spec = ImageSpec::from_file(&cfg.preprocessor)
            .map_err(|e| ModelError::load(name, &cfg.preprocessor, e))?;
        let tokenizer_err = |e| ModelError::load(name, &cfg.tokenizer, TokenizerError::File(e));
        let mut tokenizer = Tokenizer::from_file(&cfg.tokenizer).map_err(tokenizer_err)?;
        // Padding and cutting are done here, as the model needs them.
        let tokenizer_pad = tokenizer.get_padding().map(|p| i64::from(p.pad_id));
        tokenizer.with_padding(None);
        tokenizer.with_truncation(None).map_err(tokenizer_err)?;
        let scoring = scoring_of(name, model_type, cfg)?;
        let vision = engine::open(env, name, &cfg.vision, &cfg.providers, cfg.threads)?;
        let text = engine::open(env, name, &cfg.text, &cfg.providers, cfg.threads)?;
        let (preferred_image, preferred_text): (&[&str], &[&str]) = match model_type {
            ClipModelType::Clip => (&["image_embeds"], &["text_embeds"]),
            ClipModelType::Siglip => (&["pooler_output"], &["pooler_output"]),
        };
        let vision_output = {
            let s = vision.lock();
            let input = s
                .inputs()
                .first()
                .ok_or_else(|| err(&cfg.vision, ClipError::NoPixelValues))?;
            let dims = input.dtype().tensor_shape().map(|d| d.to_vec());
            if let (Some(dims), Some((w, h))) = (dims, spec.output_size()) {
                // [batch, 3, height, width]
                if dims.len() == 4
                    && dims[2] > 0
                    && dims[3] > 0
                    && (dims[3], dims[2]) != (i64::from(w), i64::from(h))
                {
                    return Err(err(
                        &cfg.preprocessor,
                        ClipError::ImageSize {
                            gives: (w, h),
                            vision: cfg.vision.clone(),
                            takes: (dims[3], dims[2]),
                        },
                    ));
                }
            }
            pick_output(s.outputs(), preferred_image).map_err(|e| err(&cfg.vision, e))?
        };
        let text_input = {
            let s = text.lock();
            let names: Vec<&str> = s.inputs().iter().map(|i| i.name()).collect();
            let Some(ids) = s.inputs().iter().find(|i| i.name() == "input_ids") else {
                return Err(err(
                    &cfg.text,
                    ClipError::NoInputIds {
                        found: names.iter().map(|n| n.to_string()).collect(),
                    },
                ));
            };
            let fixed = ids
                .dtype()
                .tensor_shape()
                .and_then(|d| d.get(1).copied())
                .filter(|&n| n > 0)
                .map(|n| n as usize);
            let mask = names
                .contains(&"attention_mask")
                .then(|| "attention_mask".to_string());
            let output = pick_output(s.outputs(), preferred_text).map_err(|e| err(&cfg.text, e))?;
            let (default_max, pad_id) = match model_type {
                // SigLIP's text tower: 64 positions, pad </s> (SiglipTextConfig defaults).
                ClipModelType::Siglip => (64, 1),
                ClipModelType::Clip => (77, 0),
            };
            let max_tokens = family.max_positions.unwrap_or(default_max);
            let pad_to = match model_type {
                ClipModelType::Siglip => Some(fixed.unwrap_or(max_tokens)),
                ClipModelType::Clip => fixed,
            };
            TextInput {
                mask,
                output,
                max_tokens: pad_to.map_or(max_tokens, |n| n.min(max_tokens)),
                pad_to,
                pad_id: tokenizer_pad.or(family.pad_id).unwrap_or(pad_id),
                mask_padding: model_type == ClipModelType::Clip,
            }
        };
        tracing::debug!(
            model = %name,
            "{model_type:?}, {scoring:?}, image {:?}, text {text_input:?}",
            spec.resize
        );
        let clip = Self {
            name: name.into(),
            model_type,
            spec,
            tokenizer,
            scoring,
            vision_output,
            text: text_input,
            prompts: Arc::default(),
            text_id: PromptCache::model_id(&cfg.text),
            vision_id: PromptCache::model_id(&cfg.vision),
        };
        Ok((clip, ClipSessions { vision, text }))
    }

    /// Shares `prompts` (kept across config reloads) instead of a private cache.
    pub fn with_prompt_cache(mut self, prompts: Arc<PromptCache>) -> Self {
        self.prompts = prompts;
        self
    }

    /// The engine thread that runs the vision encoder for every camera.
    pub fn engine(
        &self,
        sessions: &ClipSessions,
        cfg: &EngineConfig,
    ) -> Result<Batcher, ModelError> {
        Ok(Batcher::spawn(
            sessions.vision.clone(),
            BatchSpec {
                model: self.name.clone(),
                output: Some(self.vision_output.clone()),
                max_batch: cfg.max_batch,
                max_wait: cfg.max_wait,
            },
        )?)
    }

    /// What this model's image embeddings depend on: its vision file (path, size,
    /// time).
    pub fn image_identity(&self) -> &str {
        &self.vision_id
    }

    pub fn model_type(&self) -> ClipModelType {
        self.model_type
    }

    /// How cosine similarities become scores, with the model's trained numbers.
    pub fn scoring(&self) -> Scoring {
        self.scoring
    }

    pub fn spec(&self) -> &ImageSpec {
        &self.spec
    }

    /// The text model's input ids for `text`: with the tokenizer's start/end tokens,
    /// cut to the context length (the end token kept), padded where the model is.
    pub fn tokenize(&self, text: &str) -> Result<Vec<i64>, ModelError> {
        Ok(self.tokens(text)?.0)
    }

    /// The ids and how many of them are not padding.
    fn tokens(&self, text: &str) -> Result<(Vec<i64>, usize), ModelError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| self.run_error(TokenizerError::Text(e)))?;
        let mut ids: Vec<i64> = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
        let max = self.text.max_tokens;
        if ids.len() > max {
            let end = ids[ids.len() - 1];
            ids.truncate(max);
            ids[max - 1] = end;
        }
        let real = ids.len();
        if let Some(n) = self.text.pad_to {
            ids.resize(n, self.text.pad_id);
        }
        Ok((ids, real))
    }

    /// The unit-length embedding of a prompt; each distinct prompt is encoded once
    /// (per text model file, for the life of the prompt cache).
    pub fn embed_text(&self, sessions: &ClipSessions, text: &str) -> Result<Embedding, ModelError> {
        self.prompts
            .get_or_insert(&self.text_id, text, || self.encode_text(sessions, text))
    }

    fn encode_text(&self, sessions: &ClipSessions, text: &str) -> Result<Embedding, ModelError> {
        let (ids, real) = self.tokens(text)?;
        let mask: Vec<i64> = (0..ids.len())
            .map(|i| i64::from(i < real || !self.text.mask_padding))
            .collect();
        let shape = [1usize, ids.len()];
        let mut session = sessions.text.lock();
        let _s = tracing::trace_span!("clip.text", model = %self.name).entered();
        let ids_t = TensorRef::from_array_view((shape, &ids[..])).map_err(|e| self.run_error(e))?;
        let outputs = match &self.text.mask {
            Some(m) => {
                let mask_t = TensorRef::from_array_view((shape, &mask[..]))
                    .map_err(|e| self.run_error(e))?;
                session.run(ort::inputs!["input_ids" => ids_t, m.as_str() => mask_t])
            }
            None => session.run(ort::inputs!["input_ids" => ids_t]),
        }
        .map_err(|e| self.run_error(e))?;
        self.first_row(&outputs, &self.text.output)
    }

    /// The unit-length embedding of `region` of `frame` (the whole frame for `None`),
    /// run on the model's engine thread (batched with other cameras).
    pub fn embed_image(
        &self,
        engine: &mut BatchClient,
        frame: &Frame,
        region: Option<[f32; 4]>,
        scratch: &mut ClipImage,
    ) -> Result<Embedding, ModelError> {
        let view = RgbView::of(frame)?;
        let crop = Rect::of_region(region, frame.width, frame.height);
        self.embed_view(engine, &view, crop, scratch)
    }

    /// As [`Clip::embed_image`], for any RGB view and pixel rectangle.
    pub fn embed_view(
        &self,
        engine: &mut BatchClient,
        view: &RgbView<'_>,
        crop: Rect,
        scratch: &mut ClipImage,
    ) -> Result<Embedding, ModelError> {
        embed_on(engine, view, crop, &self.spec, scratch, &self.name, |out| {
            out.is_empty()
                .then(|| self.run_error(ClipError::EmptyOutput(self.vision_output.clone())))
        })
    }

    /// The model's logit of each prompt: `logit_scale * cos(image, prompt)`, plus
    /// `logit_bias` for SigLIP.
    pub fn logits(&self, image: &[f32], prompts: &[&Embedding]) -> Vec<f32> {
        prompts
            .iter()
            .map(|p| self.scoring.logit(dot(image, p)))
            .collect()
    }

    /// Softmax over the prompts' logits (CLIP's probabilities).
    pub fn softmax(&self, image: &[f32], prompts: &[&Embedding]) -> Vec<f32> {
        softmax(&self.logits(image, prompts))
    }

    /// Each prompt's probability as the model defines it: the softmax over the
    /// prompts (CLIP), or each prompt's own sigmoid (SigLIP).
    pub fn probabilities(&self, image: &[f32], prompts: &[&Embedding]) -> Vec<f32> {
        let mut l = self.logits(image, prompts);
        self.scoring.classify(&mut l);
        l
    }

    fn first_row(
        &self,
        outputs: &ort::session::SessionOutputs<'_>,
        name: &str,
    ) -> Result<Embedding, ModelError> {
        let value = outputs
            .get(name)
            .ok_or_else(|| self.run_error(ClipError::MissingOutput(name.into())))?;
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| self.run_error(e))?;
        let dim = shape.last().copied().unwrap_or(0) as usize;
        if dim == 0 || data.len() < dim {
            return Err(self.run_error(ClipError::OutputShape {
                name: name.into(),
                shape: shape.to_vec(),
            }));
        }
        Ok(normalise(&data[..dim]))
    }

    fn run_error(&self, e: impl std::error::Error + Send + Sync + 'static) -> ModelError {
        ModelError::run(&self.name, e)
    }
}

/// The scoring rule and its numbers: the config's, else the model's (SigLIP: from
/// the combined export), else CLIP's 100.
fn scoring_of(
    name: &str,
    model_type: ClipModelType,
    cfg: &ClipConfig,
) -> Result<Scoring, ModelError> {
    let scoring = match model_type {
        ClipModelType::Clip => {
            if cfg.logit_bias.is_some() {
                return Err(ModelError::load(name, &cfg.config, ClipError::BiasOnClip));
            }
            Scoring::Softmax {
                scale: cfg.logit_scale.unwrap_or(CLIP_LOGIT_SCALE),
            }
        }
        ClipModelType::Siglip => {
            let (scale, bias) = match (cfg.logit_scale, cfg.logit_bias) {
                (Some(s), Some(b)) => (s, b),
                (s, b) => {
                    if !cfg.combined.is_file() {
                        return Err(ModelError::load(name, &cfg.combined, ClipError::NoCombined));
                    }
                    let (fs, fb) = siglip::logit_params(&cfg.combined)
                        .map_err(|e| ModelError::load(name, &cfg.combined, e))?;
                    (s.unwrap_or(fs), b.unwrap_or(fb))
                }
            };
            Scoring::Sigmoid { scale, bias }
        }
    };
    let (Scoring::Softmax { scale } | Scoring::Sigmoid { scale, .. }) = scoring;
    if !(scale.is_finite() && scale > 0.0) {
        return Err(ModelError::load(
            name,
            &cfg.config,
            ClipError::BadScale(scale),
        ));
    }
    Ok(scoring)
}

/// The output named first in `preferred` that the model has, or its only output.
fn pick_output(
    outputs: &[ort::value::Outlet],
    preferred: &[&'static str],
) -> Result<String, ClipError> {
    if let Some(o) = preferred
        .iter()
        .find_map(|p| outputs.iter().find(|o| o.name() == *p))
    {
        return Ok(o.name().to_string());
    }
    match outputs {
        [only] => Ok(only.name().to_string()),
        _ => Err(ClipError::NoOutput {
            preferred: preferred.to_vec(),
            found: outputs.iter().map(|o| o.name().to_string()).collect(),
        }),
    }
}
