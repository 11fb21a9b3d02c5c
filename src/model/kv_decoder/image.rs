//! The image in the prefix's embeddings: the vision encoder's features written, row
//! by row, over the embeddings of the image tokens (SmolVLM's and PaliGemma's
//! prefixes, whose image tokens stand in the constant prefix ids; Qwen2-VL's image
//! size varies, so it appends its features instead).
//!
//! ```no_run
//! # use ocellus::model::paligemma::{PaliGemma, PaliGemmaConfig};
//! # let cfg: PaliGemmaConfig = toml::from_str(r#"dir = "/models/paligemma""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! # let (vlm, s) = PaliGemma::load("pali", &cfg, env).unwrap();
//! let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let prefix = vlm.prefix(&s, &frame, None).unwrap();
//! assert_eq!(prefix.len(), vlm.prefix_ids().len());
//! ```

use super::error::KvDecoderError;
use crate::model::ModelError;

/// Writes `features` (`[image tokens, hidden]`), row by row, over the rows of
/// `embeds` (`[ids, hidden]`) at the `image` tokens of `ids`.
pub(crate) fn merge_image(
    model: &str,
    embeds: &mut [f32],
    features: &[f32],
    ids: &[u32],
    image: u32,
    hidden: usize,
) -> Result<(), ModelError> {
    let d = hidden;
    let slots = ids
        .iter()
        .enumerate()
        .filter(|&(_, &t)| t == image)
        .map(|(i, _)| i);
    let count = slots.clone().count();
    if features.len() != count * d {
        return Err(ModelError::run(
            model,
            KvDecoderError::FeaturesCount {
                values: features.len(),
                tokens: count,
                hidden: d,
            },
        ));
    }
    for (row, slot) in features.chunks_exact(d).zip(slots) {
        embeds[slot * d..(slot + 1) * d].copy_from_slice(row);
    }
    Ok(())
}
