//! Greedy decoding with the merged decoder's KV cache, and the generation rules of
//! `generation_config.json` that apply to greedy search (forced BOS/EOS, no repeated
//! n-grams, end token).
//!
//! The first step runs the graph without past (`use_cache_branch = false`, zero-length
//! past tensors) and returns the self- and cross-attention caches; later steps feed one
//! token with `use_cache_branch = true`, the self-attention cache of the step before and
//! the cross-attention cache of the first step (the with-past graph returns empty
//! placeholders for it, as optimum's merge makes them).
//!
//! ```
//! use ocellus::model::florence2::GenerationSpec;
//! let spec = GenerationSpec::default();
//! let mut scores = vec![0.0f32, 1.0, 3.0, 2.0];
//! // The second token is forced to <s> (id 0).
//! assert_eq!(spec.pick(&[2], 20, &mut scores), 0);
//! ```

use std::path::Path;

use ort::memory::Allocator;
use ort::session::Session;
use ort::value::{DynValue, Tensor, TensorRef, ValueType};
use serde_json::Value;

use crate::model::{Cancel, RunError};

/// Why a decoding step failed.
#[derive(Debug, thiserror::Error)]
pub(super) enum StepError {
    /// An ONNX run failed or was cancelled.
    #[error(transparent)]
    Run(#[from] RunError),
    /// A tensor could not be made or read.
    #[error(transparent)]
    Tensor(#[from] ort::Error),
    #[error("no output {0}")]
    MissingOutput(String),
    #[error("no logits output")]
    NoLogits,
    #[error("logits have shape {0:?}")]
    LogitsShape(Vec<i64>),
}

/// Why `generation_config.json` could not be read.
#[derive(Debug, thiserror::Error)]
pub enum GenerationError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
}

/// What the decoder's inputs and outputs lack of a merged Florence-2 / BART decoder.
#[derive(Debug, thiserror::Error)]
pub enum DecoderIoError {
    #[error("expected a merged decoder with input {need}, found {found:?}")]
    NotMerged {
        need: &'static str,
        found: Vec<String>,
    },
    #[error("expected a logits output, found {0:?}")]
    NoLogits(Vec<String>),
    #[error("input {input} has no output {present}")]
    NoPresent { input: String, present: String },
    #[error("past_key_values.* inputs need static [batch, heads, seq, head_dim]")]
    CacheShape,
    #[error("no past_key_values.* inputs")]
    NoCache,
}

/// The generation settings greedy search honours.
#[derive(Debug, Clone, PartialEq)]
pub struct GenerationSpec {
    pub decoder_start: u32,
    pub forced_bos: Option<u32>,
    pub forced_eos: Option<u32>,
    pub eos: Vec<u32>,
    pub no_repeat_ngram: usize,
}

impl Default for GenerationSpec {
    /// microsoft/Florence-2's settings (beam search aside).
    fn default() -> Self {
        Self {
            decoder_start: 2,
            forced_bos: Some(0),
            forced_eos: Some(2),
            eos: vec![2],
            no_repeat_ngram: 3,
        }
    }
}

impl GenerationSpec {
    /// Reads `generation_config.json`; a missing file gives the defaults.
    pub fn from_file(path: &Path) -> Result<Self, GenerationError> {
        if !path.exists() {
            return Ok(Self::default());
        }
        let text = std::fs::read_to_string(path)?;
        let v: Value = serde_json::from_str(&text)?;
        let id = |k: &str| v[k].as_u64().map(|n| n as u32);
        let d = Self::default();
        let eos = match &v["eos_token_id"] {
            Value::Array(a) => a
                .iter()
                .filter_map(|x| x.as_u64().map(|n| n as u32))
                .collect(),
            Value::Number(n) => n.as_u64().map(|n| vec![n as u32]).unwrap_or(d.eos),
            _ => d.eos,
        };
        Ok(Self {
            decoder_start: id("decoder_start_token_id").unwrap_or(d.decoder_start),
            forced_bos: id("forced_bos_token_id"),
            forced_eos: id("forced_eos_token_id"),
            eos,
            no_repeat_ngram: v["no_repeat_ngram_size"].as_u64().unwrap_or(0) as usize,
        })
    }

    /// The next token after `seq` (which starts with the decoder start token) when at
    /// most `max_new` tokens may follow it; `scores` are the step's logits (changed).
    pub fn pick(&self, seq: &[u32], max_new: usize, scores: &mut [f32]) -> u32 {
        let force = |scores: &mut [f32], id: u32| {
            if (id as usize) < scores.len() {
                scores.fill(f32::NEG_INFINITY);
                scores[id as usize] = 0.0;
            }
        };
        let n = self.no_repeat_ngram;
        if n > 0 && seq.len() + 1 >= n {
            let prefix = &seq[seq.len() + 1 - n..];
            for w in seq.windows(n) {
                if &w[..n - 1] == prefix
                    && let Some(s) = scores.get_mut(w[n - 1] as usize)
                {
                    *s = f32::NEG_INFINITY;
                }
            }
        }
        if seq.len() == 1
            && let Some(id) = self.forced_bos
        {
            force(scores, id);
        }
        if seq.len() == max_new
            && let Some(id) = self.forced_eos
        {
            force(scores, id);
        }
        argmax(scores)
    }
}

/// The first index of the largest value (as `torch.argmax`).
fn argmax(v: &[f32]) -> u32 {
    let mut best = 0;
    for (i, &x) in v.iter().enumerate() {
        if x > v[best] {
            best = i;
        }
    }
    best as u32
}

/// The merged decoder's IO: cache names and shapes, read from the graph.
#[derive(Debug, Clone)]
pub struct DecoderIo {
    /// `(past input, present output)` per cache tensor, in graph order.
    pub caches: Vec<(String, String)>,
    pub heads: usize,
    pub head_dim: usize,
}

impl DecoderIo {
    /// Checks the inputs and outputs of a merged Florence-2 / BART decoder.
    pub fn of(session: &Session) -> Result<Self, DecoderIoError> {
        let owned = |l: &[&str]| l.iter().map(|n| n.to_string()).collect();
        let inputs: Vec<&str> = session.inputs().iter().map(|i| i.name()).collect();
        for need in [
            "encoder_attention_mask",
            "encoder_hidden_states",
            "inputs_embeds",
            "use_cache_branch",
        ] {
            if !inputs.contains(&need) {
                return Err(DecoderIoError::NotMerged {
                    need,
                    found: owned(&inputs),
                });
            }
        }
        let outputs: Vec<&str> = session.outputs().iter().map(|o| o.name()).collect();
        if !outputs.contains(&"logits") {
            return Err(DecoderIoError::NoLogits(owned(&outputs)));
        }
        let mut caches = Vec::new();
        let mut dims = None;
        for input in session.inputs() {
            let Some(rest) = input.name().strip_prefix("past_key_values.") else {
                continue;
            };
            let present = format!("present.{rest}");
            if !outputs.contains(&present.as_str()) {
                return Err(DecoderIoError::NoPresent {
                    input: input.name().into(),
                    present,
                });
            }
            if let ValueType::Tensor { shape, .. } = input.dtype()
                && shape.len() == 4
                && shape[1] > 0
                && shape[3] > 0
            {
                dims = Some((shape[1] as usize, shape[3] as usize));
            }
            caches.push((input.name().to_string(), present));
        }
        let (heads, head_dim) = dims.ok_or(DecoderIoError::CacheShape)?;
        if caches.is_empty() {
            return Err(DecoderIoError::NoCache);
        }
        Ok(Self {
            caches,
            heads,
            head_dim,
        })
    }

    fn is_cross(name: &str) -> bool {
        name.contains(".encoder.")
    }
}

/// What one greedy run needs besides the sessions.
pub(super) struct Greedy<'a> {
    pub spec: &'a GenerationSpec,
    pub io: &'a DecoderIo,
    pub max_new: usize,
}

impl Greedy<'_> {
    /// Generates from the encoder output `encoder` (`[1, len, dim]`); `embed` turns one
    /// token id into its `[1, 1, dim]` embedding. Returns the ids, decoder start first.
    /// `cancel` is checked before each step (a raised one ends the call with
    /// [`RunError::Cancelled`]).
    pub(super) fn run(
        &self,
        decoder: &mut Session,
        encoder: &DynValue,
        len: usize,
        cancel: &Cancel,
        mut embed: impl FnMut(u32) -> Result<DynValue, StepError>,
    ) -> Result<Vec<u32>, StepError> {
        let ones = vec![1i64; len];
        let empty: DynValue = Tensor::<f32>::new(
            &Allocator::default(),
            [1usize, self.io.heads, 0, self.io.head_dim],
        )?
        .into_dyn();
        let mut past: Vec<Option<DynValue>> = self.io.caches.iter().map(|_| None).collect();
        let mut seq = vec![self.spec.decoder_start];
        while seq.len() <= self.max_new {
            cancel.beat();
            if cancel.is_raised() {
                return Err(RunError::Cancelled.into());
            }
            let step = seq.len() - 1;
            let _s = tracing::trace_span!("florence2.step", step).entered();
            let token = embed(seq[step])?;
            let branch = [step > 0];
            let branch = TensorRef::from_array_view(([1usize], &branch[..]))?;
            let mask = TensorRef::from_array_view(([1usize, len], &ones[..]))?;
            let mut inputs: Vec<(&str, ort::session::SessionInputValue<'_>)> = vec![
                ("encoder_attention_mask", mask.into()),
                ("encoder_hidden_states", encoder.into()),
                ("inputs_embeds", (&token).into()),
                ("use_cache_branch", branch.into()),
            ];
            for ((name, _), value) in self.io.caches.iter().zip(&past) {
                inputs.push((name.as_str(), value.as_ref().unwrap_or(&empty).into()));
            }
            let mut outputs = cancel.run(decoder, inputs)?;
            let next = {
                let logits = outputs.get("logits").ok_or(StepError::NoLogits)?;
                let (shape, data) = logits.try_extract_tensor::<f32>()?;
                let vocab = shape.last().copied().unwrap_or(0) as usize;
                if vocab == 0 || data.len() < vocab {
                    return Err(StepError::LogitsShape(shape.to_vec()));
                }
                let mut scores = data[data.len() - vocab..].to_vec();
                self.spec.pick(&seq, self.max_new, &mut scores)
            };
            for ((_, present), slot) in self.io.caches.iter().zip(past.iter_mut()) {
                // The with-past graph's cross-attention outputs are placeholders.
                if step > 0 && DecoderIo::is_cross(present) {
                    continue;
                }
                *slot = Some(
                    outputs
                        .remove(present)
                        .ok_or_else(|| StepError::MissingOutput(present.clone()))?,
                );
            }
            seq.push(next);
            if self.spec.eos.contains(&next) {
                break;
            }
        }
        Ok(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_repeat_ngram_bans_the_completing_token() {
        let spec = GenerationSpec {
            forced_bos: None,
            forced_eos: None,
            ..GenerationSpec::default()
        };
        // "5 6" was followed by 7: after "... 5 6" token 7 is banned.
        let seq = [2, 5, 6, 7, 5, 6];
        let mut scores = vec![0.0; 10];
        scores[7] = 9.0;
        scores[8] = 1.0;
        assert_eq!(spec.pick(&seq, 20, &mut scores), 8);
    }

    #[test]
    fn forced_tokens_win_over_everything() {
        let spec = GenerationSpec::default();
        let mut scores = vec![5.0, 0.0, -1.0, 9.0];
        assert_eq!(spec.pick(&[2, 0, 3], 3, &mut scores), 2);
        let mut scores = vec![1.0, 0.0, 2.0, 2.0];
        assert_eq!(
            spec.pick(&[2, 0, 1], 20, &mut scores),
            2,
            "first of equal maxima"
        );
    }
}
