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

use std::time::Instant;

use ort::session::Session;
use ort::value::DynValue;

use super::model::{SmolVlm, SmolVlmSessions};
use super::prefix::ImagePrefix;
use crate::model::kv_decoder::{self, DecodeTimings, Positions, Step, StepInput, YesNo};
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
        YesNo::of(&self.name, &step.logits, self.yes_id, self.no_id)
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
        let t1 = Instant::now();
        let limits = (max_tokens, &self.stop[..]);
        let past = prefix.len() + suffix_len;
        let ids = kv_decoder::greedy(&self.name, step, past, limits, cancel, |next, kv, past| {
            let _s = tracing::trace_span!("smolvlm.step", model = %self.name).entered();
            let embeds = self.embed(s, &[next], cancel)?;
            let mut session = s.decoder.lock();
            self.run_decoder(&mut session, &embeds, kv, past, true, cancel)
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

    /// `inputs_embeds` (`[n, hidden]`, flattened) of `ids`.
    pub(crate) fn embed(
        &self,
        s: &SmolVlmSessions,
        ids: &[u32],
        cancel: &Cancel,
    ) -> Result<Vec<f32>, ModelError> {
        kv_decoder::embed(&self.name, &s.embed, ids, cancel)
    }

    /// One decoder run over `embeds` after `past_len` cached tokens (`past` empty: a
    /// zero-length cache), at positions `past_len, past_len + 1, ...`. The last
    /// position's logits are kept when `logits` is set.
    pub(crate) fn run_decoder(
        &self,
        session: &mut Session,
        embeds: &[f32],
        past: &[DynValue],
        past_len: usize,
        logits: bool,
        cancel: &Cancel,
    ) -> Result<Step, ModelError> {
        let input = StepInput {
            embeds,
            hidden: self.hidden,
            past,
            past_len,
            positions: Positions::Counting(past_len),
            logits,
        };
        self.io.run(&self.name, session, input, cancel)
    }
}
