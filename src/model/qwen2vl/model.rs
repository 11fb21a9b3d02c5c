//! [`Qwen2Vl`]: the model's contract, tokenizer, chat-template pieces and caches, and
//! the checks of a question before any ONNX work; the embedding and decoder runs every
//! step shares. Loading is in `load`, the image prefix in `prefix`, the questions on it
//! in `decode`, the grounding prompts and their JSON in `ground`.

use std::sync::{Arc, Mutex};

use ort::session::Session;
use ort::value::DynValue;
use tokenizers::Tokenizer;

use super::preprocess::{ImageSpec, Qwen2VlImage};
use crate::cache::{Embedding, PromptCache};
use crate::engine::SharedSession;
use crate::model::kv_decoder::{self, DecoderIo, Limits, Positions, Step, StepInput};
use crate::model::{Cancel, ModelError, RunError, TokenizerError};

/// The three sessions of a Qwen2-VL model.
#[derive(Clone)]
pub struct Qwen2VlSessions {
    pub vision: SharedSession,
    pub embed: SharedSession,
    pub decoder: SharedSession,
}

/// Which of the two model types the folder holds (`model_type` of `config.json`).
/// They differ inside the vision encoder only (Qwen2.5-VL's window attention, RMSNorm,
/// gated MLP); the IO contract ocellus runs is the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ModelType {
    Qwen2Vl,
    Qwen25Vl,
}

/// Most tokens a question's suffix (`QUESTION<|im_end|>\n<|im_start|>assistant\n`) may
/// have; a longer one is refused after tokenising, before any ONNX work (about 1 KB of
/// English, several times any question a camera asks).
pub const MAX_QUESTION_TOKENS: usize = 256;

/// Longest question (bytes) that is tokenised at all: 64 bytes a token is more than any
/// token of Qwen2's vocabulary covers, so nothing longer fits in [`MAX_QUESTION_TOKENS`].
pub const MAX_QUESTION_BYTES: usize = 64 * MAX_QUESTION_TOKENS;

/// Most tokens one answer may generate, whatever `max_tokens` asks (a larger request is
/// clamped): a bounded cost for a model that never emits its stop token.
pub const MAX_NEW_TOKENS: usize = 256;

/// Most positions of one sequence (system prompt + image + question + answer), also
/// never more than the decoder's `max_position_embeddings`: it bounds the KV cache of a
/// call (Qwen2-VL-2B: 28 layers x 2 KV heads x 128 x 2 x f32 = 57 KB a position, 117 MB
/// at 2048). The default `max_pixels` (1024 image tokens) plus [`MAX_QUESTION_TOKENS`]
/// and [`MAX_NEW_TOKENS`] fits.
pub const MAX_SEQUENCE: usize = 2048;

/// The chat template's text before the image: the default system prompt and the user's
/// turn up to `<|vision_start|>`.
pub(crate) const HEAD: &str = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n<|vision_start|>";

/// The model's contract, tokenizer, prompt pieces and caches; sessions are held by the
/// caller.
pub struct Qwen2Vl {
    pub(crate) name: String,
    pub(crate) model_type: ModelType,
    pub(crate) spec: ImageSpec,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) io: DecoderIo,
    pub(crate) vision_output: String,
    pub(crate) hidden: usize,
    pub(crate) image_token_id: u32,
    /// [`HEAD`]'s ids and their embeddings.
    pub(crate) head_ids: Vec<u32>,
    pub(crate) head_embeds: Vec<f32>,
    /// `<|vision_end|>` and its embedding.
    pub(crate) end_id: u32,
    pub(crate) end_embed: Vec<f32>,
    pub(crate) yes_id: u32,
    pub(crate) no_id: u32,
    /// Generation stops after any of these.
    pub(crate) stop: Vec<u32>,
    pub(crate) scratch: Mutex<Qwen2VlImage>,
    /// The suffix embeddings of questions (shared, bounded; see [`crate::cache`]).
    pub(crate) suffixes: Arc<PromptCache>,
    /// The embedding model's identity, the key of its suffixes in the prompt cache.
    pub(crate) embed_id: String,
    pub(crate) max_tokens: usize,
    pub(crate) max_sequence: usize,
    /// Grounding answers that were not Qwen's JSON of boxes.
    pub(crate) grounding_failures: crate::kit::metrics::Counter,
}

impl Qwen2Vl {
    pub fn spec(&self) -> &ImageSpec {
        &self.spec
    }

    pub fn model_type(&self) -> ModelType {
        self.model_type
    }

    /// Token ids of the prompt before the image (system prompt, user turn,
    /// `<|vision_start|>`).
    pub fn head_ids(&self) -> &[u32] {
        &self.head_ids
    }

    /// The image prefix of an image with `tokens` image tokens: [`Qwen2Vl::head_ids`],
    /// `<|image_pad|>` x `tokens`, `<|vision_end|>`.
    pub fn prefix_ids(&self, tokens: usize) -> Vec<u32> {
        let mut ids = self.head_ids.clone();
        ids.extend(std::iter::repeat_n(self.image_token_id, tokens));
        ids.push(self.end_id);
        ids
    }

    /// Token ids of a question's suffix, refused when the question is longer than the
    /// model takes.
    pub fn suffix_ids(&self, question: &str) -> Result<Vec<u32>, ModelError> {
        self.check_question(question)
    }

    /// The configured token cap of an answer (at most [`MAX_NEW_TOKENS`]).
    pub fn max_tokens(&self) -> usize {
        self.max_tokens
    }

    /// Most positions of one call's sequence (the KV cache bound).
    pub fn max_sequence(&self) -> usize {
        self.max_sequence
    }

    /// The ids of the yes and no tokens.
    pub fn yes_no_ids(&self) -> (u32, u32) {
        (self.yes_id, self.no_id)
    }

    /// The token ids that end an answer.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop
    }

    /// Grounding answers so far that were not Qwen's JSON of boxes.
    /// The counter of grounding answers that were not JSON (shared: the metrics
    /// endpoint reads it without holding the model).
    pub fn grounding_counter(&self) -> &crate::kit::metrics::Counter {
        &self.grounding_failures
    }

    pub fn grounding_failures(&self) -> u64 {
        self.grounding_failures.get()
    }

    /// Shares `prompts` (bounded, kept across config reloads) for the questions'
    /// suffix embeddings instead of a private cache.
    pub fn with_prompt_cache(mut self, prompts: Arc<PromptCache>) -> Self {
        self.suffixes = prompts;
        self
    }

    /// The suffix ids of `question`, or why the model refuses it: longer than
    /// [`MAX_QUESTION_BYTES`] (not tokenised), more than [`MAX_QUESTION_TOKENS`]
    /// tokens, or no room left after the largest image prefix for one answer token.
    /// No ONNX work is done.
    pub fn check_question(&self, question: &str) -> Result<Vec<u32>, ModelError> {
        let limits = self.limits();
        limits.check_bytes(&self.name, question)?;
        let ids = self.tokenize(&suffix_text(question))?;
        limits.check_tokens(&self.name, ids, self.largest_prefix())
    }

    /// Tokens of the image prefix of the largest image `max_pixels` allows.
    pub(crate) fn largest_prefix(&self) -> usize {
        self.head_ids.len() + self.spec.max_tokens() + 1
    }

    /// The bounds of a question and its answer.
    fn limits(&self) -> Limits {
        Limits {
            what: "the question",
            max_bytes: MAX_QUESTION_BYTES,
            max_tokens: MAX_QUESTION_TOKENS,
            max_new: MAX_NEW_TOKENS,
            max_sequence: self.max_sequence,
        }
    }

    /// The answer token cap of a call asking for `asked` after `used` positions.
    pub(crate) fn new_tokens(&self, asked: usize, used: usize) -> usize {
        self.limits().new_tokens(&self.name, asked, used)
    }

    /// `ids` as text, special tokens left out.
    pub fn decode_text(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| self.run_error(TokenizerError::Text(e)))
    }

    pub(crate) fn tokenize(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| self.run_error(TokenizerError::Text(e)))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The suffix embeddings of `question` (`[tokens, hidden]`), checked, tokenised and
    /// embedded on first use, then from the prompt cache.
    pub(crate) fn suffix(
        &self,
        s: &Qwen2VlSessions,
        question: &str,
        cancel: &Cancel,
    ) -> Result<Embedding, ModelError> {
        self.limits().check_bytes(&self.name, question)?;
        self.suffixes.get_or_insert(&self.embed_id, question, || {
            let ids = self.check_question(question)?;
            Ok(Embedding::from(self.embed(s, &ids, cancel)?))
        })
    }

    /// Tokens of a run of embeddings.
    pub(crate) fn tokens_of(&self, embeds: &[f32]) -> usize {
        embeds.len() / self.hidden.max(1)
    }

    /// `inputs_embeds` (`[n, hidden]`, flattened) of `ids`.
    pub(crate) fn embed(
        &self,
        s: &Qwen2VlSessions,
        ids: &[u32],
        cancel: &Cancel,
    ) -> Result<Vec<f32>, ModelError> {
        kv_decoder::embed(&self.name, &s.embed, ids, cancel)
    }

    /// One decoder run over `embeds` after `past_len` cached tokens (`past` empty: a
    /// zero-length cache), at the M-RoPE `positions` (`[3, n]`: temporal, height and
    /// width rows, given to the decoder as `[3, 1, n]`). The last position's logits
    /// are kept when `logits` is set.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_decoder(
        &self,
        session: &mut Session,
        embeds: &[f32],
        past: &[DynValue],
        past_len: usize,
        positions: &[i64],
        logits: bool,
        cancel: &Cancel,
    ) -> Result<Step, ModelError> {
        let n = self.tokens_of(embeds);
        let input = StepInput {
            embeds,
            hidden: self.hidden,
            past,
            past_len,
            positions: Positions::Given {
                ids: positions,
                shape: &[3, 1, n],
            },
            logits,
        };
        self.io.run(&self.name, session, input, cancel)
    }

    pub(crate) fn run_failed(&self, e: RunError) -> ModelError {
        ModelError::of_run(&self.name, e)
    }

    pub(crate) fn run_error(
        &self,
        e: impl std::error::Error + Send + Sync + 'static,
    ) -> ModelError {
        ModelError::run(&self.name, e)
    }
}

/// The text after the image prefix: the question, the end of the user's turn and the
/// assistant's.
pub(crate) fn suffix_text(question: &str) -> String {
    format!("{question}<|im_end|>\n<|im_start|>assistant\n")
}

/// Text positions `from..from + n` shifted by `delta`, the same in the three M-RoPE
/// rows (`[3, n]`, flattened): every position after the image.
pub(crate) fn text_positions(from: usize, n: usize, delta: i64) -> Vec<i64> {
    let row: Vec<i64> = (from..from + n).map(|p| p as i64 + delta).collect();
    row.repeat(3)
}
