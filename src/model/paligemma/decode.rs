//! Prompts on an image prefix: one decoder run over the prompt's suffix on top of the
//! prefix's KV cache (never mutating it), then the yes/no logits or greedy decoding
//! with the KV cache; a detect or segment answer's `<locYYYY>` tokens become boxes.
//!
//! ```no_run
//! # use ocellus::model::paligemma::{PaliGemma, PaliGemmaConfig, Task};
//! # let cfg: PaliGemmaConfig = toml::from_str(r#"dir = "/models/paligemma""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! # let (vlm, s) = PaliGemma::load("pali", &cfg, env).unwrap();
//! # let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let prefix = vlm.prefix(&s, &frame, None).unwrap();
//! let person = vlm.yes_no(&s, &prefix, "Is there a person in the image?").unwrap();
//! let caption = vlm.run(&s, &prefix, &Task::Caption, 32).unwrap();
//! let cats = vlm.run(&s, &prefix, &Task::Detect(vec!["cat".into()]), 32).unwrap();
//! println!("{} {:?} {:?}", person.p_yes, caption.text, cats.boxes);
//! ```

use std::borrow::Cow;
use std::time::{Duration, Instant};

use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorRef};

use super::error::PaliGemmaError;
use super::model::{PaliGemma, PaliGemmaSessions};
use super::prefix::ImagePrefix;
use super::tasks::{Task, boxes};
use crate::model::florence2::Found;
use crate::model::{Cancel, ModelError};

/// The yes and no tokens' logits at the last prompt position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YesNo {
    /// `sigmoid(yes_logit - no_logit)`: the softmax over the two tokens.
    pub p_yes: f32,
    pub yes_logit: f32,
    pub no_logit: f32,
}

/// How long an answer took.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeTimings {
    /// The decoder run over the prompt suffix (and its tokenising and embedding on
    /// first use).
    pub suffix: Duration,
    /// The greedy steps after it.
    pub steps: Duration,
}

/// A greedy answer.
#[derive(Debug, Clone)]
pub struct Generated {
    /// Generated token ids; the stop token, when reached, is the last.
    pub ids: Vec<u32>,
    /// The ids as text, special tokens left out (location tokens stay).
    pub text: String,
    /// The boxes of a detect or segment task, normalised in the image the encoder saw
    /// (empty for the other tasks).
    pub boxes: Vec<Found>,
    pub tokens: usize,
    pub timings: DecodeTimings,
}

/// One decoder run's last-position logits and KV cache.
pub(crate) struct Step {
    pub logits: Vec<f32>,
    pub kv: Vec<DynValue>,
}

impl PaliGemma {
    /// Compares the yes and no tokens' logits after `answer LANG QUESTION` on `prefix`.
    pub fn yes_no(
        &self,
        s: &PaliGemmaSessions,
        prefix: &ImagePrefix,
        question: &str,
    ) -> Result<YesNo, ModelError> {
        self.yes_no_with(s, prefix, question, Cancel::never())
    }

    /// [`PaliGemma::yes_no`], stopped early by `cancel`.
    pub fn yes_no_with(
        &self,
        s: &PaliGemmaSessions,
        prefix: &ImagePrefix,
        question: &str,
        cancel: &Cancel,
    ) -> Result<YesNo, ModelError> {
        let task = Task::Answer(question.into());
        let suffix = self.suffix(s, &task, cancel)?;
        cancel.check(&self.name)?;
        let step = {
            let _s = tracing::trace_span!("paligemma.suffix", model = %self.name).entered();
            let mut session = s.decoder.lock();
            self.run_decoder(
                &mut session,
                &suffix,
                &prefix.kv,
                prefix.len(),
                true,
                cancel,
            )?
        };
        let _s = tracing::trace_span!("paligemma.post", model = %self.name).entered();
        let logit = |id: u32| {
            step.logits
                .get(id as usize)
                .copied()
                .ok_or_else(|| self.run_error(PaliGemmaError::TokenOutsideLogits(id)))
        };
        let (yes_logit, no_logit) = (logit(self.yes_id)?, logit(self.no_id)?);
        Ok(YesNo {
            p_yes: 1.0 / (1.0 + (no_logit - yes_logit).exp()),
            yes_logit,
            no_logit,
        })
    }

    /// Greedy answer to `task` on `prefix`: at most `max_tokens` tokens (clamped to
    /// [`MAX_NEW_TOKENS`](super::MAX_NEW_TOKENS) and the room left in
    /// [`PaliGemma::max_sequence`]), ending at a stop token (`<eos>` or the generation
    /// config's eos).
    pub fn run(
        &self,
        s: &PaliGemmaSessions,
        prefix: &ImagePrefix,
        task: &Task,
        max_tokens: usize,
    ) -> Result<Generated, ModelError> {
        self.run_with(s, prefix, task, max_tokens, Cancel::never())
    }

    /// [`PaliGemma::run`], checking `cancel` before each token (and terminating a
    /// decoder run in progress when it is raised).
    pub fn run_with(
        &self,
        s: &PaliGemmaSessions,
        prefix: &ImagePrefix,
        task: &Task,
        max_tokens: usize,
        cancel: &Cancel,
    ) -> Result<Generated, ModelError> {
        let t0 = Instant::now();
        let suffix = self.suffix(s, task, cancel)?;
        let suffix_len = self.tokens_of(&suffix);
        let max_tokens = self.new_tokens(max_tokens, suffix_len);
        cancel.check(&self.name)?;
        let mut step = {
            let _s = tracing::trace_span!("paligemma.suffix", model = %self.name).entered();
            let mut session = s.decoder.lock();
            self.run_decoder(
                &mut session,
                &suffix,
                &prefix.kv,
                prefix.len(),
                true,
                cancel,
            )?
        };
        let t1 = Instant::now();
        let mut past = prefix.len() + suffix_len;
        let mut ids = Vec::new();
        while ids.len() < max_tokens {
            let next =
                argmax(&step.logits).ok_or_else(|| self.run_error(PaliGemmaError::NoLogits))?;
            ids.push(next);
            if self.stop.contains(&next) || ids.len() == max_tokens {
                break;
            }
            cancel.check(&self.name)?;
            let _s = tracing::trace_span!("paligemma.step", model = %self.name).entered();
            let embeds = self.embed(s, &[next], cancel)?;
            let mut session = s.decoder.lock();
            step = self.run_decoder(&mut session, &embeds, &step.kv, past, true, cancel)?;
            past += 1;
        }
        let steps = t1.elapsed();
        let _s = tracing::trace_span!("paligemma.post", model = %self.name).entered();
        let text = self.decode_text(&ids)?;
        Ok(Generated {
            boxes: if task.gives_boxes() {
                boxes(&text)
            } else {
                Vec::new()
            },
            text,
            tokens: ids.len(),
            ids,
            timings: DecodeTimings {
                suffix: t1 - t0,
                steps,
            },
        })
    }

    /// `inputs_embeds` (`[n, hidden]`, flattened) of `ids`.
    pub(crate) fn embed(
        &self,
        s: &PaliGemmaSessions,
        ids: &[u32],
        cancel: &Cancel,
    ) -> Result<Vec<f32>, ModelError> {
        let ids: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        let t = TensorRef::from_array_view(([1usize, ids.len()], &ids[..]))
            .map_err(|e| self.run_error(e))?;
        let mut session = s.embed.lock();
        let outputs = cancel
            .run(&mut session, ort::inputs!["input_ids" => t])
            .map_err(|e| self.run_failed(e))?;
        let value = outputs
            .get("inputs_embeds")
            .ok_or_else(|| self.run_error(PaliGemmaError::MissingOutput("inputs_embeds".into())))?;
        let (_, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| self.run_error(e))?;
        if data.is_empty() || data.len() % ids.len().max(1) != 0 {
            return Err(self.run_error(PaliGemmaError::EmbedsCount {
                values: data.len(),
                tokens: ids.len(),
            }));
        }
        Ok(data.to_vec())
    }

    /// One decoder run over `embeds` after `past_len` cached tokens (`past` empty: a
    /// zero-length cache). Positions are 1-indexed, as transformers' PaliGemma numbers
    /// them. The last position's logits are kept when `logits` is set.
    pub(crate) fn run_decoder(
        &self,
        session: &mut Session,
        embeds: &[f32],
        past: &[DynValue],
        past_len: usize,
        logits: bool,
        cancel: &Cancel,
    ) -> Result<Step, ModelError> {
        let e = |e: ort::Error| self.run_error(e);
        let d = self.hidden.max(1);
        let n = embeds.len() / d;
        let mask = vec![1i64; past_len + n];
        let positions: Vec<i64> = (past_len + 1..=past_len + n).map(|p| p as i64).collect();
        let cache = &self.io.cache;
        let mut inputs: Vec<(Cow<'_, str>, SessionInputValue<'_>)> =
            Vec::with_capacity(3 + cache.len());
        inputs.push((
            "inputs_embeds".into(),
            TensorRef::from_array_view(([1usize, n, d], embeds))
                .map_err(e)?
                .into(),
        ));
        inputs.push((
            "attention_mask".into(),
            TensorRef::from_array_view(([1usize, past_len + n], &mask[..]))
                .map_err(e)?
                .into(),
        ));
        inputs.push((
            "position_ids".into(),
            TensorRef::from_array_view(([1usize, n], &positions[..]))
                .map_err(e)?
                .into(),
        ));
        if past.is_empty() {
            let shape = [1usize, self.io.kv_heads, 0, self.io.head_dim];
            for (name, _) in cache {
                let empty = Tensor::<f32>::from_array((shape, Vec::new())).map_err(e)?;
                inputs.push((name.as_str().into(), empty.into()));
            }
        } else if past.len() == cache.len() {
            for ((name, _), value) in cache.iter().zip(past) {
                inputs.push((name.as_str().into(), value.into()));
            }
        } else {
            return Err(self.run_error(PaliGemmaError::CacheLen {
                given: past.len(),
                takes: cache.len(),
            }));
        }
        let mut outputs = cancel
            .run(session, inputs)
            .map_err(|e| self.run_failed(e))?;
        let mut last = Vec::new();
        if logits {
            let value = outputs
                .get("logits")
                .ok_or_else(|| self.run_error(PaliGemmaError::MissingOutput("logits".into())))?;
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(e)?;
            let vocab = shape.last().copied().unwrap_or(0).max(0) as usize;
            if vocab == 0 || data.len() < vocab {
                return Err(self.run_error(PaliGemmaError::LogitsShape(shape.to_vec())));
            }
            last = data[data.len() - vocab..].to_vec();
        }
        let mut kv = Vec::with_capacity(cache.len());
        for (_, present) in cache {
            kv.push(
                outputs.remove(present).ok_or_else(|| {
                    self.run_error(PaliGemmaError::MissingOutput(present.clone()))
                })?,
            );
        }
        Ok(Step { logits: last, kv })
    }
}

/// Index of the first largest value (numpy's and torch's argmax).
fn argmax(v: &[f32]) -> Option<u32> {
    let mut best: Option<(usize, f32)> = None;
    for (i, &x) in v.iter().enumerate() {
        if best.is_none_or(|(_, b)| x > b) {
            best = Some((i, x));
        }
    }
    best.map(|(i, _)| i as u32)
}

#[cfg(test)]
mod tests {
    use super::argmax;

    #[test]
    fn argmax_takes_the_first_of_equal_maxima() {
        assert_eq!(argmax(&[0.0, 2.0, 1.0, 2.0]), Some(1));
        assert_eq!(argmax(&[]), None);
    }
}
