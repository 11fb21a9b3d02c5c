//! Questions on an image prefix: one decoder run over the question's suffix on top of
//! the prefix's KV cache (never mutating it), then the yes/no logits or greedy decoding
//! with the KV cache.
//!
//! ```no_run
//! # use ocellus::model::smolvlm::{SmolVlm, SmolVlmConfig};
//! # let cfg: SmolVlmConfig = toml::from_str(r#"dir = "/models/smolvlm""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! # let (vlm, s) = SmolVlm::load("vqa", &cfg, env).unwrap();
//! # let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let prefix = vlm.prefix(&s, &frame, None).unwrap();
//! let person = vlm.yes_no(&s, &prefix, "Is there a person in the image?").unwrap();
//! let cat = vlm.yes_no(&s, &prefix, "Is there a cat?").unwrap();
//! let answer = vlm.answer(&s, &prefix, "What is in the picture?", 32).unwrap();
//! println!("{} {} {:?}", person.p_yes, cat.p_yes, answer.text);
//! ```

use std::borrow::Cow;
use std::time::{Duration, Instant};

use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorRef};

use super::error::SmolVlmError;
use super::model::{SmolVlm, SmolVlmSessions};
use super::prefix::ImagePrefix;
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
    /// The decoder run over the question suffix (and its tokenising and embedding on
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
    /// The ids as text, special tokens left out.
    pub text: String,
    pub tokens: usize,
    pub timings: DecodeTimings,
}

/// One decoder run's last-position logits and KV cache.
pub(crate) struct Step {
    pub logits: Vec<f32>,
    pub kv: Vec<DynValue>,
}

impl SmolVlm {
    /// Compares the yes and no tokens' logits after `question` on `prefix`.
    pub fn yes_no(
        &self,
        s: &SmolVlmSessions,
        prefix: &ImagePrefix,
        question: &str,
    ) -> Result<YesNo, ModelError> {
        self.yes_no_with(s, prefix, question, Cancel::never())
    }

    /// [`SmolVlm::yes_no`], stopped early by `cancel`.
    pub fn yes_no_with(
        &self,
        s: &SmolVlmSessions,
        prefix: &ImagePrefix,
        question: &str,
        cancel: &Cancel,
    ) -> Result<YesNo, ModelError> {
        let suffix = self.suffix(s, question, cancel)?;
        cancel.check(&self.name)?;
        let step = {
            let _s = tracing::trace_span!("smolvlm.suffix", model = %self.name).entered();
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
        let _s = tracing::trace_span!("smolvlm.post", model = %self.name).entered();
        let logit = |id: u32| {
            step.logits
                .get(id as usize)
                .copied()
                .ok_or_else(|| self.run_error(SmolVlmError::TokenOutsideLogits(id)))
        };
        let (yes_logit, no_logit) = (logit(self.yes_id)?, logit(self.no_id)?);
        Ok(YesNo {
            p_yes: 1.0 / (1.0 + (no_logit - yes_logit).exp()),
            yes_logit,
            no_logit,
        })
    }

    /// Greedy answer to `question` on `prefix`: at most `max_tokens` tokens (clamped
    /// to [`MAX_NEW_TOKENS`](super::MAX_NEW_TOKENS) and the room left in [`SmolVlm::max_sequence`]),
    /// ending at a stop token (`<end_of_utterance>` or the generation config's eos).
    pub fn answer(
        &self,
        s: &SmolVlmSessions,
        prefix: &ImagePrefix,
        question: &str,
        max_tokens: usize,
    ) -> Result<Generated, ModelError> {
        self.answer_with(s, prefix, question, max_tokens, Cancel::never())
    }

    /// [`SmolVlm::answer`], checking `cancel` before each token (and terminating a
    /// decoder run in progress when it is raised).
    pub fn answer_with(
        &self,
        s: &SmolVlmSessions,
        prefix: &ImagePrefix,
        question: &str,
        max_tokens: usize,
        cancel: &Cancel,
    ) -> Result<Generated, ModelError> {
        let t0 = Instant::now();
        let suffix = self.suffix(s, question, cancel)?;
        let suffix_len = self.tokens_of(&suffix);
        let max_tokens = self.new_tokens(max_tokens, suffix_len);
        cancel.check(&self.name)?;
        let mut step = {
            let _s = tracing::trace_span!("smolvlm.suffix", model = %self.name).entered();
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
                argmax(&step.logits).ok_or_else(|| self.run_error(SmolVlmError::NoLogits))?;
            ids.push(next);
            if self.stop.contains(&next) || ids.len() == max_tokens {
                break;
            }
            cancel.check(&self.name)?;
            let _s = tracing::trace_span!("smolvlm.step", model = %self.name).entered();
            let embeds = self.embed(s, &[next], cancel)?;
            let mut session = s.decoder.lock();
            step = self.run_decoder(&mut session, &embeds, &step.kv, past, true, cancel)?;
            past += 1;
        }
        let steps = t1.elapsed();
        Ok(Generated {
            text: self.decode_text(&ids)?,
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
        s: &SmolVlmSessions,
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
            .ok_or_else(|| self.run_error(SmolVlmError::MissingOutput("inputs_embeds".into())))?;
        let (_, data) = value
            .try_extract_tensor::<f32>()
            .map_err(|e| self.run_error(e))?;
        if data.is_empty() || data.len() % ids.len().max(1) != 0 {
            return Err(self.run_error(SmolVlmError::EmbedsCount {
                values: data.len(),
                tokens: ids.len(),
            }));
        }
        Ok(data.to_vec())
    }

    /// One decoder run over `embeds` after `past_len` cached tokens (`past` empty: a
    /// zero-length cache). The last position's logits are kept when `logits` is set.
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
        let positions: Vec<i64> = (past_len..past_len + n).map(|p| p as i64).collect();
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
            return Err(self.run_error(SmolVlmError::CacheLen {
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
                .ok_or_else(|| self.run_error(SmolVlmError::MissingOutput("logits".into())))?;
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(e)?;
            let vocab = shape.last().copied().unwrap_or(0).max(0) as usize;
            if vocab == 0 || data.len() < vocab {
                return Err(self.run_error(SmolVlmError::LogitsShape(shape.to_vec())));
            }
            last = data[data.len() - vocab..].to_vec();
        }
        let mut kv = Vec::with_capacity(cache.len());
        for (_, present) in cache {
            kv.push(
                outputs
                    .remove(present)
                    .ok_or_else(|| self.run_error(SmolVlmError::MissingOutput(present.clone())))?,
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
