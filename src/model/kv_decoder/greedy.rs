//! Greedy decoding on the KV cache: the first largest logit is the next token, until
//! a stop token or the token cap; each further token is one cached decoder step the
//! family runs (its embedding, positions and trace span).
//!
//! ```no_run
//! # use ocellus::model::smolvlm::{SmolVlm, SmolVlmConfig};
//! # let cfg: SmolVlmConfig = toml::from_str(r#"dir = "/models/smolvlm""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! # let (vlm, s) = SmolVlm::load("vqa", &cfg, env).unwrap();
//! # let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let prefix = vlm.prefix(&s, &frame, None).unwrap();
//! let answer = vlm.answer(&s, &prefix, "What is in the picture?", 32).unwrap();
//! assert!(answer.tokens <= 32);
//! println!("{:?}", answer.text);
//! ```

use ort::value::DynValue;

use super::error::KvDecoderError;
use super::step::Step;
use crate::model::{Cancel, ModelError};

/// Greedy ids after `first` (the step over the prompt, `past` positions in): at most
/// `max_tokens`, ending at (and keeping) a token of `stop`. `cancel` is checked
/// before each further step; `next(token, kv, past)` runs it on the cache `kv` of
/// `past` positions.
pub(crate) fn greedy(
    model: &str,
    first: Step,
    past: usize,
    (max_tokens, stop): (usize, &[u32]),
    cancel: &Cancel,
    mut next: impl FnMut(u32, &[DynValue], usize) -> Result<Step, ModelError>,
) -> Result<Vec<u32>, ModelError> {
    let mut step = first;
    let mut past = past;
    let mut ids = Vec::new();
    while ids.len() < max_tokens {
        let token =
            argmax(&step.logits).ok_or_else(|| ModelError::run(model, KvDecoderError::NoLogits))?;
        ids.push(token);
        if stop.contains(&token) || ids.len() == max_tokens {
            break;
        }
        cancel.check(model)?;
        step = next(token, &step.kv, past)?;
        past += 1;
    }
    Ok(ids)
}

/// Index of the first largest value (numpy's and torch's argmax).
pub(crate) fn argmax(v: &[f32]) -> Option<u32> {
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
