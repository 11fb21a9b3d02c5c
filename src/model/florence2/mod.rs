//! Florence-2: one prompt-driven vision-language model for captions, object detection,
//! OCR and phrase grounding, in the Hugging Face ONNX layout that onnx-community
//! publishes (`onnx/vision_encoder.onnx`, `onnx/embed_tokens.onnx`,
//! `onnx/encoder_model.onnx`, `onnx/decoder_model_merged.onnx`, `tokenizer.json`,
//! `preprocessor_config.json`, `generation_config.json`).
//!
//! An image is encoded once ([`Florence2::encode`]); each task then runs the text
//! encoder on `[image features; prompt embeddings]` and decodes greedily with the KV
//! cache ([`Florence2::run`]). Prompt embeddings are computed once per task and kept.
//!
//! ```no_run
//! use ocellus::model::florence2::{Florence2, Florence2Config, Task, TaskOutput};
//! let mut cfg: Florence2Config = toml::from_str(r#"dir = "models/florence-2-base-ft""#).unwrap();
//! cfg.resolve_paths(".".as_ref());
//! let env = ocellus::engine::environment(&Default::default()).unwrap();
//! let (model, sessions) = Florence2::load("vlm", &cfg, env).unwrap();
//! let frame = ocellus::source::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let image = model.encode(&sessions, &frame, None).unwrap();
//! let found = model.run(&sessions, &image, &Task::Detect, cfg.max_tokens).unwrap();
//! if let TaskOutput::Boxes(boxes) = &found.output {
//!     for b in boxes { println!("{} at {:?}", b.label, b.bbox) }
//! }
//! ```

mod config;
mod decode;
mod preprocess;
mod tasks;

use std::collections::HashMap;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ort::value::{DynValue, Tensor, TensorRef};
use tokenizers::Tokenizer;

use super::{ModelError, Stages};
use crate::engine::{self, SharedSession};
use crate::source::Frame;

pub use config::Florence2Config;
pub use decode::{DecoderIo, GenerationSpec};
pub use preprocess::{ImageSpec, pixel_box};
pub use tasks::{Found, Task, TaskOutput, clean_up_tokenization};

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
    pub stages: Stages,
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

/// A prompt's token embeddings, `[len, dim]`.
struct PromptEmbeds {
    data: Arc<[f32]>,
    len: usize,
}

/// Florence-2's IO contract, tokenizer, preprocessing and prompt cache; the sessions
/// are held by the caller.
pub struct Florence2 {
    name: String,
    spec: ImageSpec,
    generation: GenerationSpec,
    tokenizer: Tokenizer,
    io: DecoderIo,
    pre: Mutex<preprocess::Preprocessor>,
    prompts: Mutex<HashMap<String, Arc<PromptEmbeds>>>,
    /// Default token cap (`max_tokens` in the config).
    max_tokens: usize,
}

impl Florence2 {
    /// Opens the four sessions and checks their inputs and outputs.
    pub fn load(
        name: &str,
        cfg: &Florence2Config,
        env: &ort::environment::Environment,
    ) -> Result<(Self, Florence2Sessions), ModelError> {
        let err = |file: &Path, cause: String| ModelError::Load {
            model: name.into(),
            file: file.to_path_buf(),
            cause,
        };
        let spec =
            ImageSpec::from_file(&cfg.preprocessor).map_err(|e| err(&cfg.preprocessor, e))?;
        let generation =
            GenerationSpec::from_file(&cfg.generation).map_err(|e| err(&cfg.generation, e))?;
        let tokenizer =
            Tokenizer::from_file(&cfg.tokenizer).map_err(|e| err(&cfg.tokenizer, e.to_string()))?;
        let open = |file: &Path| engine::open(env, name, file, &cfg.providers, cfg.threads);
        let sessions = Florence2Sessions {
            vision: open(&cfg.vision)?,
            embed: open(&cfg.embed)?,
            encoder: open(&cfg.encoder)?,
            decoder: open(&cfg.decoder)?,
        };
        let check = |s: &SharedSession, file: &Path, inputs: &[&str], output: &str| {
            let s = s.lock();
            let names: Vec<&str> = s.inputs().iter().map(|i| i.name()).collect();
            let outs: Vec<&str> = s.outputs().iter().map(|o| o.name()).collect();
            if inputs.iter().all(|i| names.contains(i)) && outs.contains(&output) {
                Ok(())
            } else {
                Err(err(
                    file,
                    format!(
                        "expected inputs {inputs:?} and output {output}, found {names:?} -> {outs:?}"
                    ),
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
        let io = DecoderIo::of(&sessions.decoder.lock()).map_err(|e| err(&cfg.decoder, e))?;
        let model = Self {
            name: name.into(),
            spec,
            generation,
            tokenizer,
            io,
            pre: Mutex::default(),
            prompts: Mutex::default(),
            max_tokens: cfg.max_tokens,
        };
        Ok((model, sessions))
    }

    pub fn spec(&self) -> &ImageSpec {
        &self.spec
    }

    /// The configured token cap.
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    pub fn generation(&self) -> &GenerationSpec {
        &self.generation
    }

    /// The encoder's prompt ids of `task`: `<s>`, the prompt's tokens, `</s>`.
    pub fn prompt_ids(&self, task: &Task) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .tokenizer
            .encode(task.prompt(), true)
            .map_err(|e| self.run_error(format!("tokenizer: {e}")))?;
        Ok(enc.get_ids().to_vec())
    }

    /// How many prompts have their embeddings cached.
    pub fn cached_prompts(&self) -> usize {
        self.prompts.lock().map(|p| p.len()).unwrap_or(0)
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
            let outputs = session
                .run(ort::inputs!["pixel_values" => input])
                .map_err(|e| self.run_error(e))?;
            let (shape, data) = outputs["image_features"]
                .try_extract_tensor::<f32>()
                .map_err(|e| self.run_error(e))?;
            if shape.len() != 3 || shape[0] != 1 {
                return Err(self.run_error(format!("image_features has shape {shape:?}")));
            }
            (data.to_vec(), shape[1] as usize, shape[2] as usize)
        };
        let t2 = Instant::now();
        Ok(ImageFeatures {
            features,
            tokens,
            dim,
            stages: Stages {
                preprocess: t1 - t0,
                infer: t2 - t1,
                postprocess: Duration::ZERO,
            },
        })
    }

    /// Answers `task` about an encoded image, generating at most `max_tokens` tokens.
    pub fn run(
        &self,
        s: &Florence2Sessions,
        image: &ImageFeatures,
        task: &Task,
        max_tokens: usize,
    ) -> Result<Generated, ModelError> {
        let t0 = Instant::now();
        let prompt = self.prompt_embeds(s, task)?;
        let dim = image.dim;
        if prompt.data.len() != prompt.len * dim {
            return Err(self.run_error(format!(
                "prompt embeddings of width {} do not match image features of width {dim}",
                prompt.data.len() / prompt.len.max(1)
            )));
        }
        let len = image.tokens + prompt.len;
        let hidden = {
            let _s = tracing::trace_span!("florence2.encoder", model = %self.name).entered();
            let mut x = Vec::with_capacity(len * dim);
            x.extend_from_slice(&image.features);
            x.extend_from_slice(&prompt.data);
            let mask = vec![1i64; len];
            let x = TensorRef::from_array_view(([1usize, len, dim], &x[..]))
                .map_err(|e| self.run_error(e))?;
            let mask = TensorRef::from_array_view(([1usize, len], &mask[..]))
                .map_err(|e| self.run_error(e))?;
            let mut session = s.encoder.lock();
            let mut outputs = session
                .run(ort::inputs!["inputs_embeds" => x, "attention_mask" => mask])
                .map_err(|e| self.run_error(e))?;
            outputs
                .remove("last_hidden_state")
                .ok_or_else(|| self.run_error("no output last_hidden_state"))?
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
                .run(&mut decoder, &hidden, len, |id| self.embed_token(s, id))
                .map_err(|e| self.run_error(e))?
        };
        let t2 = Instant::now();
        let _s = tracing::trace_span!("florence2.post", model = %self.name).entered();
        let text = self
            .tokenizer
            .decode(&ids, false)
            .map_err(|e| self.run_error(format!("tokenizer: {e}")))?;
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

    /// The prompt's token embeddings, from the cache or the embedding graph.
    fn prompt_embeds(
        &self,
        s: &Florence2Sessions,
        task: &Task,
    ) -> Result<Arc<PromptEmbeds>, ModelError> {
        let prompt = task.prompt();
        if let Some(hit) = self
            .prompts
            .lock()
            .ok()
            .and_then(|p| p.get(&prompt).cloned())
        {
            return Ok(hit);
        }
        let _s = tracing::trace_span!("florence2.prompt", model = %self.name).entered();
        let ids: Vec<i64> = self.prompt_ids(task)?.into_iter().map(i64::from).collect();
        let value = self.embed_ids(s, &ids).map_err(|e| self.run_error(e))?;
        let (_, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| self.run_error(e))?;
        let embeds = Arc::new(PromptEmbeds {
            data: data.into(),
            len: ids.len(),
        });
        if let Ok(mut p) = self.prompts.lock() {
            p.insert(prompt, embeds.clone());
        }
        Ok(embeds)
    }

    fn embed_token(&self, s: &Florence2Sessions, id: u32) -> Result<DynValue, String> {
        self.embed_ids(s, &[i64::from(id)])
    }

    /// `[1, len, dim]` embeddings of `ids`.
    fn embed_ids(&self, s: &Florence2Sessions, ids: &[i64]) -> Result<DynValue, String> {
        let e = |e: ort::Error| e.to_string();
        let input = Tensor::from_array(([1usize, ids.len()], ids.to_vec())).map_err(e)?;
        let mut session = s.embed.lock();
        let mut outputs = session.run(ort::inputs!["input_ids" => input]).map_err(e)?;
        outputs
            .remove("inputs_embeds")
            .ok_or_else(|| "no output inputs_embeds".to_string())
    }

    fn run_error(&self, e: impl std::fmt::Display) -> ModelError {
        ModelError::Run {
            model: self.name.clone(),
            cause: e.to_string(),
        }
    }
}
