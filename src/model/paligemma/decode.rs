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

use std::time::Instant;

use ort::session::Session;
use ort::value::DynValue;

use super::model::{PaliGemma, PaliGemmaSessions};
use super::prefix::ImagePrefix;
use super::tasks::{Task, boxes};
use crate::model::florence2::Found;
use crate::model::kv_decoder::{self, DecodeTimings, Positions, Step, StepInput, YesNo};
use crate::model::{Cancel, ModelError};

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
        YesNo::of(&self.name, &step.logits, self.yes_id, self.no_id)
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
        let t1 = Instant::now();
        let limits = (max_tokens, &self.stop[..]);
        let past = prefix.len() + suffix_len;
        let ids = kv_decoder::greedy(&self.name, step, past, limits, cancel, |next, kv, past| {
            let _s = tracing::trace_span!("paligemma.step", model = %self.name).entered();
            let embeds = self.embed(s, &[next], cancel)?;
            let mut session = s.decoder.lock();
            self.run_decoder(&mut session, &embeds, kv, past, true, cancel)
        })?;
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
        kv_decoder::embed(&self.name, &s.embed, ids, cancel)
    }

    /// One decoder run over `embeds` after `past_len` cached tokens (`past` empty: a
    /// zero-length cache). Positions are 1-indexed, as transformers' PaliGemma numbers
    /// them (SmolVLM's count from 0, so the two stay apart). The last position's
    /// logits are kept when `logits` is set.
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
            positions: Positions::Counting(past_len + 1),
            logits,
        };
        self.io.run(&self.name, session, input, cancel)
    }
}
