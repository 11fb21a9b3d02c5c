//! The decoder's ONNX IO contract, checked once at load: `inputs_embeds`,
//! `attention_mask`, `position_ids` and `past_key_values.{i}.key/value` in,
//! `logits` and `present.{i}.key/value` out, no `use_cache_branch`; the KV heads and
//! head size are read from the first cache input's shape.
//!
//! ```no_run
//! # use ocellus::model::paligemma::{PaliGemma, PaliGemmaConfig};
//! # let cfg: PaliGemmaConfig = toml::from_str(r#"dir = "/models/paligemma""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! // Loading checks the decoder against this contract before any frame is seen.
//! let (vlm, _sessions) = PaliGemma::load("pali", &cfg, env).unwrap();
//! println!("prefix of {} tokens", vlm.prefix_ids().len());
//! ```

use super::error::KvDecoderError;
use crate::engine::SharedSession;

/// Input and output names and sizes of the decoder, checked at load.
#[derive(Debug, Clone)]
pub(crate) struct DecoderIo {
    /// `(past_key_values.{i}.key|value, present.{i}.key|value)`, layer by layer.
    pub(crate) cache: Vec<(String, String)>,
    pub(crate) kv_heads: usize,
    pub(crate) head_dim: usize,
}

/// A family's rule for the shape of `position_ids` (Qwen's M-RoPE `[3, batch, seq]`);
/// families without one take any shape.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PositionRule {
    /// The shape, as the error says it.
    pub(crate) shape: &'static str,
    /// True for the dims (`-1` or `0` for a dynamic axis) of a fitting input.
    pub(crate) fits: fn(&[i64]) -> bool,
}

/// The names of `list`.
pub(crate) fn names(list: &[ort::value::Outlet]) -> Vec<String> {
    list.iter().map(|o| o.name().to_string()).collect()
}

impl DecoderIo {
    /// Checks the decoder session against the contract (and `positions`, when the
    /// family has a rule for them, right after the logits output, as it always was).
    pub(crate) fn check(
        session: &SharedSession,
        positions: Option<PositionRule>,
    ) -> Result<Self, KvDecoderError> {
        let s = session.lock();
        let (inputs, outputs) = (names(s.inputs()), names(s.outputs()));
        for want in ["inputs_embeds", "attention_mask", "position_ids"] {
            if !inputs.iter().any(|i| i == want) {
                return Err(KvDecoderError::DecoderInput {
                    want,
                    found: inputs,
                });
            }
        }
        if inputs.iter().any(|i| i == "use_cache_branch") {
            return Err(KvDecoderError::CacheBranch);
        }
        if !outputs.iter().any(|o| o == "logits") {
            return Err(KvDecoderError::NoLogitsOutput(outputs));
        }
        let dims_of = |name: &str| {
            s.inputs()
                .iter()
                .find(|i| i.name() == name)
                .and_then(|i| i.dtype().tensor_shape().map(|d| d.to_vec()))
                .unwrap_or_default()
        };
        if let Some(rule) = positions {
            let dims = dims_of("position_ids");
            if !(rule.fits)(&dims) {
                return Err(KvDecoderError::PositionShape {
                    shape: rule.shape,
                    dims,
                });
            }
        }
        let mut cache = Vec::new();
        for layer in 0.. {
            let pair = |kind: &str| {
                (
                    format!("past_key_values.{layer}.{kind}"),
                    format!("present.{layer}.{kind}"),
                )
            };
            let (key, value) = (pair("key"), pair("value"));
            if !inputs.contains(&key.0) {
                break;
            }
            for (past, present) in [&key, &value] {
                if !inputs.contains(past) || !outputs.contains(present) {
                    return Err(KvDecoderError::LayerCache {
                        past: past.clone(),
                        present: present.clone(),
                    });
                }
            }
            cache.push(key);
            cache.push(value);
        }
        let extra = inputs.len() - 3 - cache.len();
        if cache.is_empty() || extra != 0 {
            return Err(KvDecoderError::DecoderInputs(inputs));
        }
        let dims = dims_of(&cache[0].0);
        if let [_, kv_heads, _, head_dim] = dims[..]
            && kv_heads > 0
            && head_dim > 0
        {
            return Ok(DecoderIo {
                cache,
                kv_heads: kv_heads as usize,
                head_dim: head_dim as usize,
            });
        }
        Err(KvDecoderError::CacheShape {
            input: cache[0].0.clone(),
            dims,
        })
    }
}
