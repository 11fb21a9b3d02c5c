//! [`SmolVlm`]: the model's contract, tokenizer, prompt prefix and caches, and the
//! checks of a question before any ONNX work. Loading is in `load`, the image prefix
//! in `prefix`, the questions on it in `decode`.

use std::sync::{Arc, Mutex};

use tokenizers::Tokenizer;

use super::preprocess::{ImageSpec, SmolVlmImage};
use crate::cache::{Embedding, PromptCache};
use crate::engine::SharedSession;
use crate::model::kv_decoder::{DecoderIo, Limits};
use crate::model::{Cancel, ModelError, RunError, TokenizerError};

/// The three sessions of a SmolVLM model.
#[derive(Clone)]
pub struct SmolVlmSessions {
    pub vision: SharedSession,
    pub embed: SharedSession,
    pub decoder: SharedSession,
}

/// Most tokens a question's suffix (`QUESTION<end_of_utterance>\nAssistant:`) may
/// have; a longer one is refused after tokenising, before any ONNX work. 256 tokens
/// are about 1 KB of English, several times any question a camera asks; the suffix
/// run's attention then stays a few MB (a 40 KB question took 9 GB on the tiny model).
pub const MAX_QUESTION_TOKENS: usize = 256;

/// Longest question (bytes) that is tokenised at all: 64 bytes a token is more than
/// any token of SmolVLM's vocabulary covers, so nothing longer can fit in
/// [`MAX_QUESTION_TOKENS`]; it is refused without running the tokenizer on it.
pub const MAX_QUESTION_BYTES: usize = 64 * MAX_QUESTION_TOKENS;

/// Most tokens one answer may generate, whatever `max_tokens` asks (a larger request
/// is clamped, with a debug line): about 1 KB of text in a published answer, and a
/// bounded cost for a model that never emits its stop token (about 8 s for
/// SmolVLM-256M on a 4-core CPU).
pub const MAX_NEW_TOKENS: usize = 256;

/// Most positions of one sequence (image prefix + question + answer), also never
/// more than the decoder's `max_position_embeddings`: it bounds the KV cache of a
/// call (SmolVLM-256M: 46 KB a position, 47 MB at 1024; 2.2B: 0.4 GB). The largest
/// prefix (about 90 tokens) plus [`MAX_QUESTION_TOKENS`] and [`MAX_NEW_TOKENS`] fits.
pub const MAX_SEQUENCE: usize = 1024;

/// The model's contract, tokenizer, prompt prefix and caches; sessions are held by the
/// caller.
pub struct SmolVlm {
    pub(crate) name: String,
    pub(crate) spec: ImageSpec,
    pub(crate) tokenizer: Tokenizer,
    pub(crate) io: DecoderIo,
    pub(crate) vision_output: String,
    pub(crate) hidden: usize,
    pub(crate) image_token_id: u32,
    /// `<|im_start|>User:` + the global image's tokens, and their embeddings.
    pub(crate) prefix_ids: Vec<u32>,
    pub(crate) prefix_embeds: Vec<f32>,
    pub(crate) yes_id: u32,
    pub(crate) no_id: u32,
    /// Generation stops after any of these.
    pub(crate) stop: Vec<u32>,
    pub(crate) scratch: Mutex<SmolVlmImage>,
    /// The suffix embeddings of questions (shared, bounded; see [`crate::cache`]).
    pub(crate) suffixes: Arc<PromptCache>,
    /// The embedding model's identity, the key of its suffixes in the prompt cache.
    pub(crate) embed_id: String,
    /// Default token cap of an answer (`max_tokens` in the config, at most
    /// [`MAX_NEW_TOKENS`]).
    pub(crate) max_tokens: usize,
    /// [`MAX_SEQUENCE`], or the decoder's `max_position_embeddings` when smaller.
    pub(crate) max_sequence: usize,
}

impl SmolVlm {
    pub fn spec(&self) -> &ImageSpec {
        &self.spec
    }

    /// Token ids of the image prefix (`<|im_start|>User:` + image tokens).
    pub fn prefix_ids(&self) -> &[u32] {
        &self.prefix_ids
    }

    /// Token ids of a question's suffix (`QUESTION<end_of_utterance>\nAssistant:`),
    /// refused when the question is longer than the model takes.
    pub fn suffix_ids(&self, _s: &SmolVlmSessions, question: &str) -> Result<Vec<u32>, ModelError> {
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

    /// Shares `prompts` (bounded, kept across config reloads) for the questions'
    /// suffix embeddings instead of a private cache.
    pub fn with_prompt_cache(mut self, prompts: Arc<PromptCache>) -> Self {
        self.suffixes = prompts;
        self
    }

    /// The suffix ids of `question`, or why the model refuses it: longer than
    /// [`MAX_QUESTION_BYTES`] (not tokenised), more than [`MAX_QUESTION_TOKENS`]
    /// tokens, or no room left in [`SmolVlm::max_sequence`] after the image prefix
    /// for one answer token. No ONNX work is done.
    pub fn check_question(&self, question: &str) -> Result<Vec<u32>, ModelError> {
        let limits = self.limits();
        limits.check_bytes(&self.name, question)?;
        let ids = self.tokenize(&suffix_text(question))?;
        limits.check_tokens(&self.name, ids, self.prefix_ids.len())
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

    /// The answer token cap of a call asking for `asked` after a suffix of `suffix`
    /// tokens: at most [`MAX_NEW_TOKENS`] and what is left of the sequence.
    pub(crate) fn new_tokens(&self, asked: usize, suffix: usize) -> usize {
        self.limits()
            .new_tokens(&self.name, asked, self.prefix_ids.len() + suffix)
    }

    /// The ids of the yes and no tokens.
    pub fn yes_no_ids(&self) -> (u32, u32) {
        (self.yes_id, self.no_id)
    }

    /// The token ids that end an answer.
    pub fn stop_ids(&self) -> &[u32] {
        &self.stop
    }

    /// `ids` as text, special tokens left out.
    pub fn decode_text(&self, ids: &[u32]) -> Result<String, ModelError> {
        self.tokenizer
            .decode(ids, true)
            .map_err(|e| self.run_error(TokenizerError::Text(e)))
    }

    fn tokenize(&self, text: &str) -> Result<Vec<u32>, ModelError> {
        let enc = self
            .tokenizer
            .encode(text, false)
            .map_err(|e| self.run_error(TokenizerError::Text(e)))?;
        Ok(enc.get_ids().to_vec())
    }

    /// The suffix embeddings of `question` (`[tokens, hidden]`), checked, tokenised
    /// and embedded on first use, then from the prompt cache.
    pub(crate) fn suffix(
        &self,
        s: &SmolVlmSessions,
        question: &str,
        cancel: &Cancel,
    ) -> Result<Embedding, ModelError> {
        // Refused before even a cache key is made of it.
        self.limits().check_bytes(&self.name, question)?;
        self.suffixes.get_or_insert(&self.embed_id, question, || {
            let ids = self.check_question(question)?;
            Ok(Embedding::from(self.embed(s, &ids, cancel)?))
        })
    }

    /// Tokens of a suffix's embeddings.
    pub(crate) fn tokens_of(&self, embeds: &[f32]) -> usize {
        embeds.len() / self.hidden.max(1)
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
fn suffix_text(question: &str) -> String {
    format!("{question}<end_of_utterance>\nAssistant:")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::smolvlm::SmolVlmConfig;

    fn load() -> (SmolVlm, SmolVlmSessions) {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/smolvlm_tiny");
        let mut cfg: SmolVlmConfig = toml::from_str(&format!(
            "dir = {dir:?}\nproviders = [\"cpu\"]\nmax_tokens = 100000"
        ))
        .unwrap();
        cfg.resolve_paths("/".as_ref());
        let env = crate::engine::environment(&Default::default()).unwrap();
        SmolVlm::load("smol", &cfg, env).unwrap()
    }

    #[test]
    fn a_runaway_answer_stops_at_the_token_cap() {
        let (vlm, s) = load();
        assert_eq!(
            vlm.max_tokens(),
            MAX_NEW_TOKENS,
            "the config's 100000 is clamped"
        );
        let frame = crate::kit::Frame::from_rgb(64, 64, 192, vec![7; 64 * 64 * 3]);
        let prefix = vlm.prefix(&s, &frame, None).unwrap();
        let got = vlm
            .answer(&s, &prefix, "What is in the picture?", 100_000)
            .unwrap();
        let stopped = got.ids.last().is_some_and(|id| vlm.stop_ids().contains(id));
        assert!(got.tokens == MAX_NEW_TOKENS || stopped, "{}", got.tokens);
        assert!(prefix.len() + got.tokens + 16 <= vlm.max_sequence());
    }

    #[test]
    fn long_questions_are_refused_before_any_onnx_work() {
        let (vlm, s) = load();
        let ok = vlm.check_question("Is the door open?").unwrap();
        assert!(!ok.is_empty() && ok.len() <= MAX_QUESTION_TOKENS);
        let long = "Is the door open? ".repeat(200);
        let e = vlm.check_question(&long).unwrap_err();
        assert!(
            matches!(
                e,
                ModelError::TooLong {
                    limit: MAX_QUESTION_TOKENS,
                    ..
                }
            ),
            "{e}"
        );
        assert!(e.to_string().contains("the question has"), "{e}");
        let huge = "x".repeat(40_000);
        let e = vlm.check_question(&huge).unwrap_err().to_string();
        assert!(e.contains("40000 bytes"), "{e}");
        let frame = crate::kit::Frame::from_rgb(64, 64, 192, vec![7; 64 * 64 * 3]);
        let prefix = vlm.prefix(&s, &frame, None).unwrap();
        assert!(vlm.yes_no(&s, &prefix, &long).is_err());
        assert!(vlm.answer(&s, &prefix, &huge, 4).is_err());
        // Refused questions are never cached.
        assert!(vlm.suffixes.is_empty());
    }

    #[test]
    fn a_raised_cancel_stops_the_answer() {
        let (vlm, s) = load();
        let frame = crate::kit::Frame::from_rgb(64, 64, 192, vec![7; 64 * 64 * 3]);
        let prefix = vlm.prefix(&s, &frame, None).unwrap();
        let cancel = Cancel::new();
        cancel.raise();
        let e = vlm
            .answer_with(&s, &prefix, "What is in the picture?", 64, &cancel)
            .unwrap_err();
        assert!(e.is_cancelled(), "{e}");
        assert!(matches!(
            vlm.prefix_with(&s, &frame, None, &cancel),
            Err(e) if e.is_cancelled()
        ));
    }
}
