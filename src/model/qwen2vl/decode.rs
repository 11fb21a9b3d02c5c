//! Questions on an image prefix: one decoder run over the question's suffix on top of
//! the prefix's KV cache (never mutating it) at positions `index + rope_delta`, then the
//! yes/no logits or greedy decoding with the KV cache.
//!
//! ```no_run
//! # use ocellus::model::qwen2vl::{Qwen2Vl, Qwen2VlConfig};
//! # let cfg: Qwen2VlConfig = toml::from_str(r#"dir = "/models/qwen2-vl""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! # let (vlm, s) = Qwen2Vl::load("vqa", &cfg, env).unwrap();
//! # let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let prefix = vlm.prefix(&s, &frame, None).unwrap();
//! let person = vlm.yes_no(&s, &prefix, "Is there a person in the image?").unwrap();
//! let answer = vlm.answer(&s, &prefix, "What is in the picture?", 32).unwrap();
//! println!("{} {:?}", person.p_yes, answer.text);
//! ```

use std::time::Instant;

use super::model::{Qwen2Vl, Qwen2VlSessions, text_positions};
use super::prefix::ImagePrefix;
use crate::model::kv_decoder::{self, DecodeTimings, Step, YesNo};
use crate::model::{Cancel, ModelError};

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

impl Qwen2Vl {
    /// Compares the yes and no tokens' logits after `question` on `prefix`.
    pub fn yes_no(
        &self,
        s: &Qwen2VlSessions,
        prefix: &ImagePrefix,
        question: &str,
    ) -> Result<YesNo, ModelError> {
        self.yes_no_with(s, prefix, question, Cancel::never())
    }

    /// [`Qwen2Vl::yes_no`], stopped early by `cancel`.
    pub fn yes_no_with(
        &self,
        s: &Qwen2VlSessions,
        prefix: &ImagePrefix,
        question: &str,
        cancel: &Cancel,
    ) -> Result<YesNo, ModelError> {
        let step = self.run_suffix(s, prefix, question, cancel)?.0;
        let _s = tracing::trace_span!("qwen2vl.post", model = %self.name).entered();
        YesNo::of(&self.name, &step.logits, self.yes_id, self.no_id)
    }

    /// Greedy answer to `question` on `prefix`: at most `max_tokens` tokens (clamped to
    /// [`MAX_NEW_TOKENS`](super::MAX_NEW_TOKENS) and the room left in
    /// [`Qwen2Vl::max_sequence`]), ending at a stop token (`<|im_end|>` or the
    /// generation config's eos).
    pub fn answer(
        &self,
        s: &Qwen2VlSessions,
        prefix: &ImagePrefix,
        question: &str,
        max_tokens: usize,
    ) -> Result<Generated, ModelError> {
        self.answer_with(s, prefix, question, max_tokens, Cancel::never())
    }

    /// [`Qwen2Vl::answer`], checking `cancel` before each token (and terminating a
    /// decoder run in progress when it is raised).
    pub fn answer_with(
        &self,
        s: &Qwen2VlSessions,
        prefix: &ImagePrefix,
        question: &str,
        max_tokens: usize,
        cancel: &Cancel,
    ) -> Result<Generated, ModelError> {
        let t0 = Instant::now();
        let (step, suffix_len) = self.run_suffix(s, prefix, question, cancel)?;
        let t1 = Instant::now();
        let past = prefix.len() + suffix_len;
        let max_tokens = self.new_tokens(max_tokens, past);
        let limits = (max_tokens, &self.stop[..]);
        let ids = kv_decoder::greedy(&self.name, step, past, limits, cancel, |next, kv, past| {
            let _s = tracing::trace_span!("qwen2vl.step", model = %self.name).entered();
            let embeds = self.embed(s, &[next], cancel)?;
            // M-RoPE: one text token, the same position in the three rows.
            let positions = text_positions(past, 1, prefix.rope_delta);
            let mut session = s.decoder.lock();
            self.run_decoder(&mut session, &embeds, kv, past, &positions, true, cancel)
        })?;
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

    /// The decoder run over `question`'s suffix on `prefix`; its step and length.
    fn run_suffix(
        &self,
        s: &Qwen2VlSessions,
        prefix: &ImagePrefix,
        question: &str,
        cancel: &Cancel,
    ) -> Result<(Step, usize), ModelError> {
        let suffix = self.suffix(s, question, cancel)?;
        let n = self.tokens_of(&suffix);
        cancel.check(&self.name)?;
        let _s = tracing::trace_span!("qwen2vl.suffix", model = %self.name).entered();
        let positions = text_positions(prefix.len(), n, prefix.rope_delta);
        let mut session = s.decoder.lock();
        let step = self.run_decoder(
            &mut session,
            &suffix,
            &prefix.kv,
            prefix.len(),
            &positions,
            true,
            cancel,
        )?;
        Ok((step, n))
    }
}
