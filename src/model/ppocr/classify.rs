//! The 0°/180° text line classifier: each crop at 48 x 192 (aspect kept, zero
//! padded); a crop is turned when the model says 180° with probability above 0.9
//! (RapidOCR's `cls_thresh`).
//!
//! ```ignore
//! let flip = flips(&[0.02, 0.98], 1); // [true]
//! ```

use super::crop::{Crop, LINE_HEIGHT, line_input};
use crate::engine::{EngineError, LinearResize};

/// The classifier's input width.
pub(super) const WIDTH: u32 = 192;
/// Probability of 180° above which a line is turned.
pub(super) const FLIP_SCORE: f32 = 0.9;

/// Fills the `[n, 3, 48, 192]` input for `crops`.
pub(super) fn fill(
    crops: &[Crop],
    resize: &mut LinearResize,
    tensor: &mut Vec<f32>,
) -> Result<(), EngineError> {
    let item = (3 * LINE_HEIGHT * WIDTH) as usize;
    tensor.clear();
    tensor.resize(item * crops.len(), 0.0);
    for (crop, out) in crops.iter().zip(tensor.chunks_exact_mut(item)) {
        line_input(crop, WIDTH, resize, out)?;
    }
    Ok(())
}

/// Which of `n` lines are upside down, from the `[n, 2]` output (0°, 180°).
pub(super) fn flips(out: &[f32], n: usize) -> Vec<bool> {
    out.chunks_exact(2)
        .take(n)
        .map(|p| p[1] > p[0] && p[1] > FLIP_SCORE)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_confident_180_flips() {
        assert_eq!(
            flips(&[0.02, 0.98, 0.15, 0.85, 0.9, 0.1], 3),
            [true, false, false]
        );
    }
}
