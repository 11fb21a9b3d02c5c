//! What the families' calls on an image prefix return alike: [`YesNo`] (the yes and
//! no tokens' logits of one step), [`DecodeTimings`] (how long a greedy answer took)
//! and [`PrefixTimings`] (how long building the prefix took). Each family re-exports
//! them under its own name space.
//!
//! ```no_run
//! # use ocellus::model::smolvlm::{SmolVlm, SmolVlmConfig};
//! # let cfg: SmolVlmConfig = toml::from_str(r#"dir = "/models/smolvlm""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! # let (vlm, s) = SmolVlm::load("vqa", &cfg, env).unwrap();
//! # let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let prefix = vlm.prefix(&s, &frame, None).unwrap();
//! let door: ocellus::model::smolvlm::YesNo = vlm.yes_no(&s, &prefix, "Is the door open?").unwrap();
//! println!("p(open) = {:.2}, prefill {:?}", door.p_yes, prefix.timings.prefill);
//! ```

use std::time::Duration;

use super::error::KvDecoderError;
use crate::model::ModelError;

/// The yes and no tokens' logits at the last prompt position.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YesNo {
    /// `sigmoid(yes_logit - no_logit)`: the softmax over the two tokens.
    pub p_yes: f32,
    pub yes_logit: f32,
    pub no_logit: f32,
}

impl YesNo {
    /// The `yes` and `no` tokens of `logits` (one step's last position), or why
    /// `model` cannot read them there.
    pub(crate) fn of(model: &str, logits: &[f32], yes: u32, no: u32) -> Result<Self, ModelError> {
        let logit = |id: u32| {
            logits
                .get(id as usize)
                .copied()
                .ok_or_else(|| ModelError::run(model, KvDecoderError::TokenOutsideLogits(id)))
        };
        let (yes_logit, no_logit) = (logit(yes)?, logit(no)?);
        Ok(YesNo {
            p_yes: 1.0 / (1.0 + (no_logit - yes_logit).exp()),
            yes_logit,
            no_logit,
        })
    }
}

/// How long an answer took.
#[derive(Debug, Clone, Copy, Default)]
pub struct DecodeTimings {
    /// The decoder run over the question's (or prompt's) suffix, and its tokenising
    /// and embedding on first use.
    pub suffix: Duration,
    /// The greedy steps after it.
    pub steps: Duration,
}

/// How long building a prefix took.
#[derive(Debug, Clone, Copy, Default)]
pub struct PrefixTimings {
    pub preprocess: Duration,
    /// The vision encoder.
    pub vision: Duration,
    /// The decoder run over the prefix tokens.
    pub prefill: Duration,
}

#[cfg(test)]
mod tests {
    use super::YesNo;

    #[test]
    fn p_yes_is_the_softmax_of_the_two_tokens() {
        let even = YesNo::of("m", &[1.0, 1.0], 0, 1).unwrap();
        assert_eq!(even.p_yes, 0.5);
        let yes = YesNo::of("m", &[3.0, -3.0], 0, 1).unwrap();
        assert!(yes.p_yes > 0.99 && yes.yes_logit == 3.0 && yes.no_logit == -3.0);
        let e = YesNo::of("m", &[0.0], 0, 5).unwrap_err();
        assert_eq!(e.to_string(), "model m: token 5 is outside the logits");
    }
}
