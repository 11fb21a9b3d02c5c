//! One decoder run on top of a KV cache: `inputs_embeds` after `past_len` cached
//! tokens (empty past tensors of `[1, kv_heads, 0, head_dim]` on the first run), an
//! all-ones attention mask over past and new tokens, the family's position ids, the
//! `past_key_values` in and the `present` out, and the last position's logits.
//!
//! ```no_run
//! # use ocellus::model::smolvlm::{SmolVlm, SmolVlmConfig};
//! # let cfg: SmolVlmConfig = toml::from_str(r#"dir = "/models/smolvlm""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! # let (vlm, s) = SmolVlm::load("vqa", &cfg, env).unwrap();
//! # let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! // One step over the image prefix (no past), one over the question on top of it.
//! let prefix = vlm.prefix(&s, &frame, None).unwrap();
//! let door = vlm.yes_no(&s, &prefix, "Is the door open?").unwrap();
//! println!("p(open) = {:.2}", door.p_yes);
//! ```

use std::borrow::Cow;

use ort::session::{Session, SessionInputValue};
use ort::value::{DynValue, Tensor, TensorRef};

use super::error::KvDecoderError;
use super::io::DecoderIo;
use crate::model::{Cancel, ModelError};

/// One decoder run's last-position logits and KV cache.
pub(crate) struct Step {
    pub(crate) logits: Vec<f32>,
    pub(crate) kv: Vec<DynValue>,
}

/// The `position_ids` of one run of `n` tokens.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Positions<'a> {
    /// `[1, n]`: `first, first + 1, ...` (SmolVLM counts from the past length,
    /// PaliGemma from one more: transformers numbers its positions from 1).
    Counting(usize),
    /// Given ids in a tensor of `shape` (Qwen's M-RoPE `[3, 1, n]`).
    Given { ids: &'a [i64], shape: &'a [usize] },
}

/// What one decoder run takes besides the session.
pub(crate) struct StepInput<'a> {
    /// `[n, hidden]`, flattened.
    pub(crate) embeds: &'a [f32],
    pub(crate) hidden: usize,
    /// The cache of the tokens before (empty: a zero-length cache).
    pub(crate) past: &'a [DynValue],
    pub(crate) past_len: usize,
    pub(crate) positions: Positions<'a>,
    /// Keep the last position's logits (a prefix run needs only the cache).
    pub(crate) logits: bool,
}

impl DecoderIo {
    /// One decoder run of `model` over `input`; its errors name `model`.
    pub(crate) fn run(
        &self,
        model: &str,
        session: &mut Session,
        input: StepInput<'_>,
        cancel: &Cancel,
    ) -> Result<Step, ModelError> {
        let StepInput {
            embeds,
            hidden,
            past,
            past_len,
            positions,
            logits,
        } = input;
        let e = |e: ort::Error| ModelError::run(model, e);
        let d = hidden.max(1);
        let n = embeds.len() / d;
        let mask = vec![1i64; past_len + n];
        let counted: Vec<i64>;
        let flat = [1usize, n];
        let (ids, shape): (&[i64], &[usize]) = match positions {
            Positions::Counting(first) => {
                counted = (first..first + n).map(|p| p as i64).collect();
                (&counted, &flat)
            }
            Positions::Given { ids, shape } => (ids, shape),
        };
        let cache = &self.cache;
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
            TensorRef::from_array_view((shape, ids)).map_err(e)?.into(),
        ));
        if past.is_empty() {
            let shape = [1usize, self.kv_heads, 0, self.head_dim];
            for (name, _) in cache {
                let empty = Tensor::<f32>::from_array((shape, Vec::new())).map_err(e)?;
                inputs.push((name.as_str().into(), empty.into()));
            }
        } else if past.len() == cache.len() {
            for ((name, _), value) in cache.iter().zip(past) {
                inputs.push((name.as_str().into(), value.into()));
            }
        } else {
            return Err(ModelError::run(
                model,
                KvDecoderError::CacheLen {
                    given: past.len(),
                    takes: cache.len(),
                },
            ));
        }
        let mut outputs = cancel
            .run(session, inputs)
            .map_err(|e| ModelError::of_run(model, e))?;
        let mut last = Vec::new();
        if logits {
            let value = outputs.get("logits").ok_or_else(|| {
                ModelError::run(model, KvDecoderError::MissingOutput("logits".into()))
            })?;
            let (shape, data) = value.try_extract_tensor::<f32>().map_err(e)?;
            let vocab = shape.last().copied().unwrap_or(0).max(0) as usize;
            if vocab == 0 || data.len() < vocab {
                return Err(ModelError::run(
                    model,
                    KvDecoderError::LogitsShape(shape.to_vec()),
                ));
            }
            last = data[data.len() - vocab..].to_vec();
        }
        let mut kv = Vec::with_capacity(cache.len());
        for (_, present) in cache {
            kv.push(outputs.remove(present).ok_or_else(|| {
                ModelError::run(model, KvDecoderError::MissingOutput(present.clone()))
            })?);
        }
        Ok(Step { logits: last, kv })
    }
}
