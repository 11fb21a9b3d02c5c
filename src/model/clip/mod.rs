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
//! let engine = clip.engine(&sessions, &Default::default()).unwrap();
//! let yes = clip.embed_text(&sessions, "a red machine light").unwrap();
//! let no = clip.embed_text(&sessions, "a green machine light").unwrap();
//! let frame = ocellus::source::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let image = clip.embed_image(&mut engine.client(), &frame, None, &mut ClipImage::new()).unwrap();
//! let p = clip.softmax(&image, &[&yes, &no]);
//! println!("p(red) = {}", p[0]);
//! ```

mod preprocess;

use std::cell::Cell;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use ort::value::TensorRef;
use tokenizers::Tokenizer;

use super::{ClipConfig, ModelError, Stages};
use crate::cache::PromptCache;
use crate::engine::{
    self, BatchClient, BatchSpec, Batcher, EngineConfig, Rect, RgbView, SharedSession,
};
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
    vision_output: String,
    text_ids: String,
    text_mask: Option<String>,
    text_output: String,
    max_tokens: usize,
    prompts: Arc<PromptCache>,
    /// Identity of the text model's file (prompt cache key).
    text_id: String,
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
        let (_vision_input, vision_output) = {
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
            vision_output,
            text_ids,
            text_mask,
            text_output,
            max_tokens,
            prompts: Arc::default(),
            text_id: PromptCache::model_id(&cfg.text),
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

    /// The unit-length embedding of a prompt; each distinct prompt is encoded once
    /// (per text model file, for the life of the prompt cache).
    pub fn embed_text(&self, sessions: &ClipSessions, text: &str) -> Result<Embedding, ModelError> {
        self.prompts
            .get_or_insert(&self.text_id, text, || self.encode_text(sessions, text))
    }

    fn encode_text(&self, sessions: &ClipSessions, text: &str) -> Result<Embedding, ModelError> {
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
        self.first_row(&outputs, &self.text_output)
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
        let t0 = Instant::now();
        // Both closures exist at once: the times go through cells.
        let (t1, t2) = (Cell::new(t0), Cell::new(t0));
        let embedding = engine.infer(
            |input| {
                let _s = tracing::trace_span!("clip.pre", model = %self.name).entered();
                scratch.fill_into(view, crop, &self.spec, input)?;
                t1.set(Instant::now());
                Ok(())
            },
            |out| {
                t2.set(Instant::now());
                if out.is_empty() {
                    return Err(self.run_error(format!("output {} is empty", self.vision_output)));
                }
                Ok(normalise(out))
            },
        )??;
        scratch.stages = Stages {
            preprocess: t1.get() - t0,
            infer: t2.get() - t1.get(),
            postprocess: t2.get().elapsed(),
        };
        Ok(embedding)
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
    prompts.into_iter().map(|p| scale * dot(image, p)).collect()
}

/// Numerically stable softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let mut v = logits.to_vec();
    softmax_in_place(&mut v);
    v
}

/// Dot product with eight independent sums, which the compiler vectorises.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Numerically stable softmax, in place.
pub fn softmax_in_place(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_softmax_match_the_plain_formulas() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-5);
        let mut v = [1.0f32, 2.0, 3.0];
        softmax_in_place(&mut v);
        let e: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|x| x.exp()).collect();
        let s: f32 = e.iter().sum();
        for (got, want) in v.iter().zip(e.iter().map(|x| x / s)) {
            assert!((got - want).abs() < 1e-6);
        }
    }
}
