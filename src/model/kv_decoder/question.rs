//! The checks of a question (or prompt) before any ONNX work: a byte bound before it
//! is tokenised, a token bound on its suffix and the room left in the sequence after
//! the image prefix for one answer token; and the answer token cap of a call.
//!
//! ```no_run
//! # use ocellus::model::smolvlm::{SmolVlm, SmolVlmConfig};
//! # let cfg: SmolVlmConfig = toml::from_str(r#"dir = "/models/smolvlm""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! # let (vlm, _s) = SmolVlm::load("vqa", &cfg, env).unwrap();
//! assert!(vlm.check_question("Is the door open?").is_ok());
//! let e = vlm.check_question(&"x".repeat(40_000)).unwrap_err();
//! assert!(e.to_string().contains("40000 bytes"));
//! ```

use super::error::KvDecoderError;
use crate::model::ModelError;

/// A family's bounds on a question and its answer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// What the errors call the text: "the question", "the prompt".
    pub(crate) what: &'static str,
    /// Longest text (bytes) that is tokenised at all.
    pub(crate) max_bytes: usize,
    /// Most tokens of the suffix.
    pub(crate) max_tokens: usize,
    /// Most tokens one answer may generate.
    pub(crate) max_new: usize,
    /// Most positions of one sequence.
    pub(crate) max_sequence: usize,
}

impl Limits {
    /// Refuses `text` longer than [`Limits::max_bytes`], before it is tokenised.
    pub(crate) fn check_bytes(&self, model: &str, text: &str) -> Result<(), ModelError> {
        if text.len() > self.max_bytes {
            return Err(ModelError::run(
                model,
                KvDecoderError::TooManyBytes {
                    what: self.what,
                    bytes: text.len(),
                    limit: self.max_bytes,
                },
            ));
        }
        Ok(())
    }

    /// The suffix `ids`, or [`ModelError::TooLong`] when they are more than
    /// [`Limits::max_tokens`] or leave no room after a prefix of `prefix` tokens for
    /// one answer token.
    pub(crate) fn check_tokens(
        &self,
        model: &str,
        ids: Vec<u32>,
        prefix: usize,
    ) -> Result<Vec<u32>, ModelError> {
        let room = self
            .max_sequence
            .saturating_sub(prefix + 1)
            .min(self.max_tokens);
        if ids.len() > room {
            return Err(ModelError::TooLong {
                model: model.into(),
                what: self.what,
                tokens: ids.len(),
                limit: room,
            });
        }
        Ok(ids)
    }

    /// The answer token cap of a call asking for `asked` after `used` positions: at
    /// most [`Limits::max_new`] and what is left of the sequence (at least one).
    pub(crate) fn new_tokens(&self, model: &str, asked: usize, used: usize) -> usize {
        let room = self.max_sequence.saturating_sub(used).max(1);
        let max = asked.min(self.max_new).min(room);
        if max < asked {
            tracing::trace!(
                model = %model,
                asked,
                max,
                "max_tokens clamped (at most {}, and {room} positions left)",
                self.max_new
            );
        }
        max
    }
}
