//! [`Florence2`]: loading the four sessions (checked against the layout's inputs and
//! outputs), encoding an image, and answering a task about it (the text encoder, then
//! greedy decoding).

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ort::value::{DynValue, Tensor, TensorRef};
use tokenizers::Tokenizer;

use super::config::Florence2Config;
use super::decode::{self, DecoderIo, GenerationSpec, StepError};
use super::error::Florence2Error;
use super::preprocess::{self, ImageSpec};
use super::tasks::{Task, TaskOutput, clean_up_tokenization};
use crate::cache::{Embedding, PromptCache};
use crate::engine::{self, SharedSession};
use crate::kit::Frame;
use crate::model::{Cancel, ModelError, RunError, StepTimes, TokenizerError};

/// The four sessions of a Florence-2 model.
#[derive(Clone)]
pub struct Florence2Sessions {
    pub vision: SharedSession,
    pub embed: SharedSession,
    pub encoder: SharedSession,
    pub decoder: SharedSession,
}

/// The vision tower's output for one image (or region).
#[derive(Debug, Clone)]
pub struct ImageFeatures {
    /// `[tokens, dim]`, row-major.
    pub features: Vec<f32>,
    pub tokens: usize,
    pub dim: usize,
    /// Preprocessing and vision-encoder time.
    pub stages: StepTimes,
}

/// One task's answer.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Token ids as `generate()` returns them: the decoder start token first.
    pub ids: Vec<u32>,
    /// The ids decoded with their special tokens (`batch_decode(...,
    /// skip_special_tokens=False)`).
    pub text: String,
    pub output: TaskOutput,
    /// Prompt embedding (on a cache miss) and text encoder.
    pub encode: Duration,
    /// The greedy decoding loop.
    pub decode: Duration,
    /// Tokens generated (without the decoder start token).
    pub tokens: usize,
}

/// Most tokens of a task prompt (with `<s>` and `</s>`): the fixed prompts have
/// about 12, a grounding phrase adds its own; 256 is a paragraph, and keeps the
/// encoder's input well inside Florence-2's 1024 positions (577 go to the image).
pub const MAX_PROMPT_TOKENS: usize = 256;

/// Longest grounding phrase (bytes) tokenised at all: no token covers 64 bytes, so
/// nothing longer fits in [`MAX_PROMPT_TOKENS`].
pub const MAX_PROMPT_BYTES: usize = 64 * MAX_PROMPT_TOKENS;

/// Most tokens one answer may generate, whatever `max_tokens` asks (clamped, with a
/// debug line): Florence-2's decoder has 1024 positions, and a detection of a busy
/// scene needs hundreds (4 location tokens and a label per box).
pub const MAX_NEW_TOKENS: usize = 1023;

/// Florence-2's IO contract, tokenizer, preprocessing and prompt cache; the sessions
/// are held by the caller.
pub struct Florence2 {
    name: String,
    spec: ImageSpec,
    generation: GenerationSpec,
    tokenizer: Tokenizer,
    io: DecoderIo,
    pre: Mutex<preprocess::Preprocessor>,
    /// Task prompt embeddings (`[len, dim]`), keyed by `embed_id` and the prompt.
    prompts: Arc<PromptCache>,
    embed_id: String,
    /// Default token cap (`max_tokens` in the config, at most [`MAX_NEW_TOKENS`]).
    max_tokens: usize,
    /// `text_config.max_position_embeddings` of `config.json`, when given.
    max_positions: Option<usize>,
}

impl Florence2 {
    /// Opens the four sessions and checks their inputs and outputs.
    pub fn load(
        name: &str,
        cfg: &Florence2Config,
        env: &ort::environment::Environment,
    ) -> Result<(Self, Florence2Sessions), ModelError> {
        let spec = ImageSpec::from_file(&cfg.preprocessor)
            .map_err(|e| ModelError::load(name, &cfg.preprocessor, e))?;
        let generation = GenerationSpec::from_file(&cfg.generation)
            .map_err(|e| ModelError::load(name, &cfg.generation, e))?;
        let tokenizer = Tokenizer::from_file(&cfg.tokenizer)
            .map_err(|e| ModelError::load(name, &cfg.tokenizer, TokenizerError::File(e)))?;
        let open = |file: &Path| engine::open(env, name, file, &cfg.providers, cfg.threads);
        let sessions = Florence2Sessions {
            vision: open(&cfg.vision)?,
            embed: open(&cfg.embed)?,
            encoder: open(&cfg.encoder)?,
            decoder: open(&cfg.decoder)?,
        };
        let check =
            |s: &SharedSession, file: &Path, inputs: &[&'static str], output: &'static str| {
                let s = s.lock();
                let names: Vec<&str> = s.inputs().iter().map(|i| i.name()).collect();
                let outs: Vec<&str> = s.outputs().iter().map(|o| o.name()).collect();
                if inputs.iter().all(|i| names.contains(i)) && outs.contains(&output) {
                    Ok(())
                } else {
                    let owned = |l: Vec<&str>| l.into_iter().map(String::from).collect();
                    Err(ModelError::load(
                        name,
                        file,
                        Florence2Error::Io {
                            inputs: inputs.to_vec(),
                            output,
                            found: owned(names),
                            found_outputs: owned(outs),
                        },
                    ))
                }
            };
        check(
            &sessions.vision,
            &cfg.vision,
            &["pixel_values"],
            "image_features",
        )?;
        check(&sessions.embed, &cfg.embed, &["input_ids"], "inputs_embeds")?;
        check(
            &sessions.encoder,
            &cfg.encoder,
            &["inputs_embeds", "attention_mask"],
            "last_hidden_state",
        )?;
        let io = DecoderIo::of(&sessions.decoder.lock())
            .map_err(|e| ModelError::load(name, &cfg.decoder, e))?;
        let max_positions =
            max_positions(&cfg.config).map_err(|e| ModelError::load(name, &cfg.config, e))?;
        let cap = max_positions.map_or(MAX_NEW_TOKENS, |n| n.saturating_sub(1).min(MAX_NEW_TOKENS));
        if cfg.max_tokens > cap {
            tracing::debug!(
                model = %name,
                "max_tokens {} clamped to {cap}",
                cfg.max_tokens
            );
        }
        let model = Self {
            name: name.into(),
            spec,
            generation,
            tokenizer,
            io,
            pre: Mutex::default(),
            prompts: Arc::default(),
            embed_id: format!("task:{}", PromptCache::model_id(&cfg.embed)),
            max_tokens: cfg.max_tokens.min(cap).max(1),
            max_positions,
        };
        Ok((model, sessions))
    }

    pub fn spec(&self) -> &ImageSpec {
        &self.spec
    }

    /// The configured token cap (at most [`MAX_NEW_TOKENS`]).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Shares `prompts` (bounded, kept across config reloads) instead of a private
    /// cache.
    pub fn with_prompt_cache(mut self, prompts: Arc<PromptCache>) -> Self {
        self.prompts = prompts;
        self
    }

    /// The prompt ids of `task`, or why the model refuses it: a grounding phrase over
    /// [`MAX_PROMPT_BYTES`] (not tokenised), or more than [`MAX_PROMPT_TOKENS`] tokens.
    /// No ONNX work is done.
    pub fn check_task(&self, task: &Task) -> Result<Vec<u32>, ModelError> {
        if let Task::Ground(phrase) = task
            && phrase.len() > MAX_PROMPT_BYTES
        {
            return Err(self.run_error(Florence2Error::PhraseTooLong {
                bytes: phrase.len(),
                limit: MAX_PROMPT_BYTES,
            }));
        }
        let ids = self.prompt_ids(task)?;
        if ids.len() > MAX_PROMPT_TOKENS {
            return Err(ModelError::TooLong {
                model: self.name.clone(),
                what: "the task prompt",
                tokens: ids.len(),
                limit: MAX_PROMPT_TOKENS,
            });
        }
        Ok(ids)
    }

    /// The token cap of a call asking for `asked`: at most [`MAX_NEW_TOKENS`] and the
    /// decoder's positions.
    fn new_tokens(&self, asked: usize) -> usize {
        let cap = self
            .max_positions
            .map_or(MAX_NEW_TOKENS, |n| n.saturating_sub(1).min(MAX_NEW_TOKENS))
            .max(1);
        if asked > cap {
            tracing::trace!(model = %self.name, asked, max = cap, "max_tokens clamped");
        }
        asked.min(cap)
    }

    pub fn generation(&self) -> &GenerationSpec {
        &self.generation
    }

    /// The encoder's prompt ids of `task`: `<s>`, the prompt's tokens, `</s>`.
    pub fn prompt_ids(&self, task: &Task) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .tokenizer
            .encode(task.prompt(), true)
            .map_err(|e| self.run_error(TokenizerError::Text(e)))?;
        Ok(enc.get_ids().to_vec())
    }

    /// How many of this model's prompts have their embeddings cached.
    pub fn cached_prompts(&self) -> usize {
        self.prompts.count(&self.embed_id)
    }

    /// The `[3, H, W]` pixel tensor of `region` of `frame` (normalised `[x0, y0, x1,
    /// y1]`, cut out at whole pixels; the whole frame for `None`).
    pub fn pixel_values(
        &self,
        frame: &Frame,
        region: Option<[f32; 4]>,
    ) -> Result<Vec<f32>, ModelError> {
        let mut pre = self.pre.lock().unwrap_or_else(|e| e.into_inner());
        pre.fill(frame, region, &self.spec)?;
        Ok(pre.pixels.clone())
    }

    /// Runs the vision tower on `region` of `frame` (the whole frame for `None`).
    pub fn encode(
        &self,
        s: &Florence2Sessions,
        frame: &Frame,
        region: Option<[f32; 4]>,
    ) -> Result<ImageFeatures, ModelError> {
        self.encode_with(s, frame, region, Cancel::never())
    }

    /// [`Florence2::encode`], its ONNX run terminated when `cancel` is raised.
    pub fn encode_with(
        &self,
        s: &Florence2Sessions,
        frame: &Frame,
        region: Option<[f32; 4]>,
        cancel: &Cancel,
    ) -> Result<ImageFeatures, ModelError> {
        let t0 = Instant::now();
        let mut pre = self.pre.lock().unwrap_or_else(|e| e.into_inner());
        {
            let _s = tracing::trace_span!("florence2.pre", model = %self.name).entered();
            pre.fill(frame, region, &self.spec)?;
        }
        let t1 = Instant::now();
        let (w, h) = self.spec.size;
        let (features, tokens, dim) = {
            let _s = tracing::trace_span!("florence2.vision", model = %self.name).entered();
            let input =
                TensorRef::from_array_view(([1usize, 3, h as usize, w as usize], &pre.pixels[..]))
                    .map_err(|e| self.run_error(e))?;
            let mut session = s.vision.lock();
            let outputs = cancel
                .run(&mut session, ort::inputs!["pixel_values" => input])
                .map_err(|e| self.run_failed(e))?;
            let (shape, data) = outputs["image_features"]
                .try_extract_tensor::<f32>()
                .map_err(|e| self.run_error(e))?;
            if shape.len() != 3 || shape[0] != 1 {
                return Err(self.run_error(Florence2Error::FeaturesShape(shape.to_vec())));
            }
            (data.to_vec(), shape[1] as usize, shape[2] as usize)
        };
        let t2 = Instant::now();
        Ok(ImageFeatures {
            features,
            tokens,
            dim,
            stages: StepTimes {
                preprocess: t1 - t0,
                infer: t2 - t1,
                postprocess: Duration::ZERO,
            },
        })
    }

    /// Answers `task` about an encoded image, generating at most `max_tokens` tokens
    /// (clamped to [`MAX_NEW_TOKENS`] and the decoder's positions).
    pub fn run(
        &self,
        s: &Florence2Sessions,
        image: &ImageFeatures,
        task: &Task,
        max_tokens: usize,
    ) -> Result<Generated, ModelError> {
        self.run_with(s, image, task, max_tokens, Cancel::never())
    }

    /// [`Florence2::run`], checking `cancel` before each token (and terminating an
    /// ONNX run in progress when it is raised).
    pub fn run_with(
        &self,
        s: &Florence2Sessions,
        image: &ImageFeatures,
        task: &Task,
        max_tokens: usize,
        cancel: &Cancel,
    ) -> Result<Generated, ModelError> {
        let t0 = Instant::now();
        let max_tokens = self.new_tokens(max_tokens);
        let prompt = self.prompt_embeds(s, task, image.tokens, cancel)?;
        let dim = image.dim.max(1);
        if prompt.len() % dim != 0 {
            return Err(self.run_error(Florence2Error::PromptWidth {
                values: prompt.len(),
                dim,
            }));
        }
        let prompt_len = prompt.len() / dim;
        let len = image.tokens + prompt_len;
        self.check_positions(len)?;
        cancel.check(&self.name)?;
        let hidden = {
            let _s = tracing::trace_span!("florence2.encoder", model = %self.name).entered();
            let mut x = Vec::with_capacity(len * dim);
            x.extend_from_slice(&image.features);
            x.extend_from_slice(&prompt);
            let mask = vec![1i64; len];
            let x = TensorRef::from_array_view(([1usize, len, dim], &x[..]))
                .map_err(|e| self.run_error(e))?;
            let mask = TensorRef::from_array_view(([1usize, len], &mask[..]))
                .map_err(|e| self.run_error(e))?;
            let mut session = s.encoder.lock();
            let mut outputs = cancel
                .run(
                    &mut session,
                    ort::inputs!["inputs_embeds" => x, "attention_mask" => mask],
                )
                .map_err(|e| self.run_failed(e))?;
            outputs
                .remove("last_hidden_state")
                .ok_or_else(|| self.run_error(Florence2Error::MissingOutput("last_hidden_state")))?
        };
        let t1 = Instant::now();
        let ids = {
            let _s = tracing::trace_span!("florence2.decode", model = %self.name).entered();
            let greedy = decode::Greedy {
                spec: &self.generation,
                io: &self.io,
                max_new: max_tokens,
            };
            let mut decoder = s.decoder.lock();
            greedy
                .run(&mut decoder, &hidden, len, cancel, |id| {
                    self.embed_token(s, id, cancel)
                })
                .map_err(|e| self.step_failed(e))?
        };
        let t2 = Instant::now();
        let _s = tracing::trace_span!("florence2.post", model = %self.name).entered();
        let text = self
            .tokenizer
            .decode(&ids, false)
            .map_err(|e| self.run_error(TokenizerError::Text(e)))?;
        let text = clean_up_tokenization(&text);
        let output = task.parse(&text);
        tracing::trace!(model = %self.name, tokens = ids.len() - 1, "florence2 {}", task.token());
        Ok(Generated {
            tokens: ids.len() - 1,
            ids,
            text,
            output,
            encode: t1 - t0,
            decode: t2 - t1,
        })
    }

    /// The prompt's token embeddings (`[len, dim]`), from the cache or (checked, on
    /// a miss) the embedding graph.
    fn prompt_embeds(
        &self,
        s: &Florence2Sessions,
        task: &Task,
        image_tokens: usize,
        cancel: &Cancel,
    ) -> Result<Embedding, ModelError> {
        if let Task::Ground(phrase) = task
            && phrase.len() > MAX_PROMPT_BYTES
        {
            // Refused before even a cache key is made of it.
            self.check_task(task)?;
        }
        self.prompts
            .get_or_insert(&self.embed_id, &task.prompt(), || {
                let _s = tracing::trace_span!("florence2.prompt", model = %self.name).entered();
                let ids: Vec<i64> = self.check_task(task)?.into_iter().map(i64::from).collect();
                self.check_positions(image_tokens + ids.len())?;
                let value = self
                    .embed_ids(s, &ids, cancel)
                    .map_err(|e| self.step_failed(e))?;
                let (_, data) = value
                    .try_extract_tensor::<f32>()
                    .map_err(|e| self.run_error(e))?;
                Ok(Embedding::from(data))
            })
    }

    fn embed_token(
        &self,
        s: &Florence2Sessions,
        id: u32,
        cancel: &Cancel,
    ) -> Result<DynValue, StepError> {
        self.embed_ids(s, &[i64::from(id)], cancel)
    }

    /// `[1, len, dim]` embeddings of `ids`.
    fn embed_ids(
        &self,
        s: &Florence2Sessions,
        ids: &[i64],
        cancel: &Cancel,
    ) -> Result<DynValue, StepError> {
        let input = Tensor::from_array(([1usize, ids.len()], ids.to_vec()))?;
        let mut session = s.embed.lock();
        let mut outputs = cancel.run(&mut session, ort::inputs!["input_ids" => input])?;
        outputs
            .remove("inputs_embeds")
            .ok_or_else(|| StepError::MissingOutput("inputs_embeds".into()))
    }

    /// Refuses an encoder input longer than the model's positions.
    fn check_positions(&self, len: usize) -> Result<(), ModelError> {
        match self.max_positions {
            Some(limit) if len > limit => Err(ModelError::TooLong {
                model: self.name.clone(),
                what: "the encoder input (image and prompt)",
                tokens: len,
                limit,
            }),
            _ => Ok(()),
        }
    }

    fn step_failed(&self, e: StepError) -> ModelError {
        match e {
            StepError::Run(e) => self.run_failed(e),
            other => self.run_error(other),
        }
    }

    fn run_failed(&self, e: RunError) -> ModelError {
        ModelError::of_run(&self.name, e)
    }

    fn run_error(&self, e: impl std::error::Error + Send + Sync + 'static) -> ModelError {
        ModelError::run(&self.name, e)
    }
}

/// `text_config.max_position_embeddings` of an optional `config.json`.
fn max_positions(path: &Path) -> Result<Option<usize>, serde_json::Error> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(None);
    };
    let v: serde_json::Value = serde_json::from_str(&text)?;
    Ok(v["text_config"]["max_position_embeddings"]
        .as_u64()
        .filter(|&n| n > 1)
        .map(|n| n as usize))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load() -> (Florence2, Florence2Sessions) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/florence2_tiny");
        let mut cfg: Florence2Config = toml::from_str(&format!(
            "dir = {dir:?}\nproviders = [\"cpu\"]\nmax_tokens = 100000"
        ))
        .unwrap();
        cfg.resolve_paths("/".as_ref());
        let env = crate::engine::environment(&Default::default()).unwrap();
        Florence2::load("f2", &cfg, env).unwrap()
    }

    #[test]
    fn answers_stop_within_the_decoders_positions_and_long_phrases_are_refused() {
        let (model, s) = load();
        // The fixture's decoder has 128 positions.
        assert_eq!(model.max_tokens(), 127, "the config's 100000 is clamped");
        let frame = Frame::from_rgb(64, 64, 192, vec![7; 64 * 64 * 3]);
        let image = model.encode(&s, &frame, None).unwrap();
        let got = model.run(&s, &image, &Task::Caption, 100_000).unwrap();
        assert!(got.tokens <= 127, "{}", got.tokens);
        let long = Task::Ground("a person at the door ".repeat(80));
        let e = model.check_task(&long).unwrap_err();
        assert!(matches!(e, ModelError::TooLong { .. }), "{e}");
        assert!(model.run(&s, &image, &long, 4).is_err());
        let huge = Task::Ground("x".repeat(MAX_PROMPT_BYTES + 1));
        assert!(
            model
                .check_task(&huge)
                .unwrap_err()
                .to_string()
                .contains("bytes")
        );
        assert_eq!(model.cached_prompts(), 1, "only the caption's prompt");
        let cancel = Cancel::new();
        cancel.raise();
        let e = model
            .run_with(&s, &image, &Task::Caption, 8, &cancel)
            .unwrap_err();
        assert!(e.is_cancelled(), "{e}");
    }
}
