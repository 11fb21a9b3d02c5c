//! CLIP-style dual encoder (Hugging Face ONNX layout: `onnx/vision_model.onnx`,
//! `onnx/text_model.onnx`, `tokenizer.json`, `preprocessor_config.json`). Images and
//! prompts are embedded separately and compared by cosine similarity times
//! `logit_scale`; a softmax over a query's prompts gives p(yes) or the label.
//!
//! ```no_run
//! use ocellus::model::{ClipConfig, clip::{Clip, ClipImage}};
//! let cfg: ClipConfig = toml::from_str(r#"dir = "models/clip-vit-b32""#).unwrap();
//! let env = ocellus::engine::environment(&Default::default()).unwrap();
//! let (clip, sessions) = Clip::load("scene", &cfg, env).unwrap();
//! let yes = clip.embed_text(&sessions, "a red machine light").unwrap();
//! let no = clip.embed_text(&sessions, "a green machine light").unwrap();
//! let frame = ocellus::source::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let image = clip.embed_image(&sessions, &frame, None, &mut ClipImage::new()).unwrap();
//! let p = clip.softmax(&image, &[&yes, &no]);
//! println!("p(red) = {}", p[0]);
//! ```

mod preprocess;

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use ort::value::TensorRef;
use tokenizers::Tokenizer;

use super::{ClipConfig, ModelError};
use crate::engine::{self, Rect, RgbView, SharedSession};
use crate::source::Frame;

pub use preprocess::{ClipImage, ImageSpec};

/// A unit-length embedding.
pub type Embedding = Arc<[f32]>;

/// The two sessions a dual encoder needs.
#[derive(Clone)]
pub struct ClipSessions {
    pub vision: SharedSession,
    pub text: SharedSession,
}

/// The dual encoder's contract, tokenizer and prompt cache; sessions are held by the
/// caller.
pub struct Clip {
    name: String,
    spec: ImageSpec,
    tokenizer: Tokenizer,
    logit_scale: f32,
    vision_input: String,
    vision_output: String,
    text_ids: String,
    text_mask: Option<String>,
    text_output: String,
    max_tokens: usize,
    prompts: Mutex<HashMap<String, Embedding>>,
}

impl Clip {
    pub fn load(
        name: &str,
        cfg: &ClipConfig,
        env: &ort::environment::Environment,
    ) -> Result<(Self, ClipSessions), ModelError> {
        let err = |file: &PathBuf, cause: String| ModelError::Load {
            model: name.into(),
            file: file.clone(),
            cause,
        };
        let spec =
            ImageSpec::from_file(&cfg.preprocessor).map_err(|e| err(&cfg.preprocessor, e))?;
        let tokenizer =
            Tokenizer::from_file(&cfg.tokenizer).map_err(|e| err(&cfg.tokenizer, e.to_string()))?;
        let vision = engine::open(env, name, &cfg.vision, &cfg.providers, cfg.threads)?;
        let text = engine::open(env, name, &cfg.text, &cfg.providers, cfg.threads)?;
        let (vision_input, vision_output) = {
            let s = vision.lock();
            let input = s.inputs().first().map(|i| i.name().to_string());
            let output = pick_output(s.outputs(), "image_embeds");
            input.zip(output).ok_or_else(|| {
                err(
                    &cfg.vision,
                    "expected input pixel_values and output image_embeds".into(),
                )
            })?
        };
        let (text_ids, text_mask, text_output, max_tokens) = {
            let s = text.lock();
            let names: Vec<&str> = s.inputs().iter().map(|i| i.name()).collect();
            if !names.contains(&"input_ids") {
                return Err(err(
                    &cfg.text,
                    format!("expected an input_ids input, found {names:?}"),
                ));
            }
            let mask = names
                .contains(&"attention_mask")
                .then(|| "attention_mask".to_string());
            let output = pick_output(s.outputs(), "text_embeds")
                .ok_or_else(|| err(&cfg.text, "expected a text_embeds output".into()))?;
            ("input_ids".to_string(), mask, output, 77)
        };
        let clip = Self {
            name: name.into(),
            spec,
            tokenizer,
            logit_scale: cfg.logit_scale,
            vision_input,
            vision_output,
            text_ids,
            text_mask,
            text_output,
            max_tokens,
            prompts: Mutex::new(HashMap::new()),
        };
        Ok((clip, ClipSessions { vision, text }))
    }

    pub fn logit_scale(&self) -> f32 {
        self.logit_scale
    }

    pub fn spec(&self) -> &ImageSpec {
        &self.spec
    }

    /// Token ids of `text` (with start/end tokens, cut to the context length).
    pub fn tokenize(&self, text: &str) -> Result<Vec<i64>, ModelError> {
        let enc = self
            .tokenizer
            .encode(text, true)
            .map_err(|e| self.run_error(format!("tokenizer: {e}")))?;
        let mut ids: Vec<i64> = enc.get_ids().iter().map(|&i| i64::from(i)).collect();
        if ids.len() > self.max_tokens {
            let end = ids[ids.len() - 1];
            ids.truncate(self.max_tokens);
            ids[self.max_tokens - 1] = end;
        }
        Ok(ids)
    }

    /// The unit-length embedding of a prompt; each distinct prompt is encoded once.
    pub fn embed_text(&self, sessions: &ClipSessions, text: &str) -> Result<Embedding, ModelError> {
        if let Some(e) = self.cache().get(text) {
            return Ok(e.clone());
        }
        let ids = self.tokenize(text)?;
        let mask = vec![1i64; ids.len()];
        let shape = [1usize, ids.len()];
        let mut session = sessions.text.lock();
        let _s = tracing::trace_span!("clip.text", model = %self.name).entered();
        let ids_t = TensorRef::from_array_view((shape, &ids[..])).map_err(|e| self.run_error(e))?;
        let outputs = match &self.text_mask {
            Some(m) => {
                let mask_t = TensorRef::from_array_view((shape, &mask[..]))
                    .map_err(|e| self.run_error(e))?;
                session.run(ort::inputs![self.text_ids.as_str() => ids_t, m.as_str() => mask_t])
            }
            None => session.run(ort::inputs![self.text_ids.as_str() => ids_t]),
        }
        .map_err(|e| self.run_error(e))?;
        let embedding = self.first_row(&outputs, &self.text_output)?;
        self.cache().insert(text.to_string(), embedding.clone());
        Ok(embedding)
    }

    /// The unit-length embedding of `region` of `frame` (the whole frame for `None`).
    pub fn embed_image(
        &self,
        sessions: &ClipSessions,
        frame: &Frame,
        region: Option<[f32; 4]>,
        scratch: &mut ClipImage,
    ) -> Result<Embedding, ModelError> {
        let view = RgbView::of(frame)?;
        let crop = Rect::of_region(region, frame.width, frame.height);
        self.embed_view(sessions, &view, crop, scratch)
    }

    /// As [`Clip::embed_image`], for any RGB view and pixel rectangle.
    pub fn embed_view(
        &self,
        sessions: &ClipSessions,
        view: &RgbView<'_>,
        crop: Rect,
        scratch: &mut ClipImage,
    ) -> Result<Embedding, ModelError> {
        let pixels = {
            let _s = tracing::trace_span!("clip.pre", model = %self.name).entered();
            scratch.fill(view, crop, &self.spec)?
        };
        let (cw, ch) = self.spec.crop;
        let shape = [1usize, 3, ch as usize, cw as usize];
        let mut session = sessions.vision.lock();
        let _s = tracing::trace_span!("clip.vision", model = %self.name).entered();
        let input = TensorRef::from_array_view((shape, pixels)).map_err(|e| self.run_error(e))?;
        let outputs = session
            .run(ort::inputs![self.vision_input.as_str() => input])
            .map_err(|e| self.run_error(e))?;
        self.first_row(&outputs, &self.vision_output)
    }

    /// `logit_scale * cos(image, prompt)` for each prompt.
    pub fn logits(&self, image: &[f32], prompts: &[&Embedding]) -> Vec<f32> {
        logits(self.logit_scale, image, prompts.iter().copied())
    }

    /// Softmax over the prompts' logits.
    pub fn softmax(&self, image: &[f32], prompts: &[&Embedding]) -> Vec<f32> {
        softmax(&self.logits(image, prompts))
    }

    fn first_row(
        &self,
        outputs: &ort::session::SessionOutputs<'_>,
        name: &str,
    ) -> Result<Embedding, ModelError> {
        let value = outputs
            .get(name)
            .ok_or_else(|| self.run_error(format!("no output {name}")))?;
        let (shape, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| self.run_error(e))?;
        let dim = shape.last().copied().unwrap_or(0) as usize;
        if dim == 0 || data.len() < dim {
            return Err(self.run_error(format!("output {name} has shape {shape:?}")));
        }
        Ok(normalise(&data[..dim]))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<String, Embedding>> {
        self.prompts.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn run_error(&self, e: impl std::fmt::Display) -> ModelError {
        ModelError::Run {
            model: self.name.clone(),
            cause: e.to_string(),
        }
    }
}

fn pick_output(outputs: &[ort::value::Outlet], preferred: &str) -> Option<String> {
    outputs
        .iter()
        .find(|o| o.name() == preferred)
        .or_else(|| outputs.first())
        .map(|o| o.name().to_string())
}

fn normalise(v: &[f32]) -> Embedding {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(|x| x / norm).collect()
}

/// `scale * cos(image, prompt)` for unit-length embeddings.
pub fn logits<'a>(
    scale: f32,
    image: &[f32],
    prompts: impl IntoIterator<Item = &'a Embedding>,
) -> Vec<f32> {
    prompts
        .into_iter()
        .map(|p| scale * image.iter().zip(p.iter()).map(|(a, b)| a * b).sum::<f32>())
        .collect()
}

/// Numerically stable softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let exps: Vec<f32> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f32 = exps.iter().sum();
    exps.iter().map(|e| e / sum).collect()
}
