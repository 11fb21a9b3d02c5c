//! CTC text line recognition: crops sorted by aspect ratio, batched six at a time at
//! height 48 and the width of the batch's widest line (at least 320), greedy CTC
//! decoding (index 0 is the blank, then the key file's characters, then a space);
//! a line's score is the mean probability of its kept characters.
//!
//! ```ignore
//! let keys = Charset::from_lines("a\nb\n");
//! // classes: blank, 'a', 'b', ' '
//! ```

use super::crop::{Crop, LINE_HEIGHT, line_input};
use crate::engine::{EngineError, LinearResize};

/// Lines per recogniser run (RapidOCR's `rec_batch_num`).
pub(super) const BATCH: usize = 6;
/// The narrowest input width.
const MIN_WIDTH: u32 = 320;

/// The recogniser's output classes: blank, the keys, space.
#[derive(Debug, Clone)]
pub struct Charset {
    chars: Vec<String>,
}

impl Charset {
    /// From the key file's text (or the model's `character` metadata): one
    /// character a line.
    pub fn from_lines(text: &str) -> Self {
        let mut chars = vec![String::new()];
        chars.extend(
            text.split('\n')
                .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string()),
        );
        if chars.last().is_some_and(String::is_empty) && chars.len() > 1 {
            chars.pop();
        }
        chars.push(" ".into());
        Self { chars }
    }

    /// Output classes, blank and space included.
    pub fn len(&self) -> usize {
        self.chars.len()
    }

    pub fn is_empty(&self) -> bool {
        self.chars.len() <= 2
    }

    /// Greedy CTC decoding of one line's `[steps, classes]` probabilities.
    pub fn decode(&self, probs: &[f32], classes: usize) -> (String, f32) {
        let (mut text, mut sum, mut n) = (String::new(), 0f64, 0usize);
        let mut prev = usize::MAX;
        for step in probs.chunks_exact(classes) {
            let (best, p) =
                step.iter().enumerate().fold(
                    (0, f32::MIN),
                    |acc, (i, &v)| if v > acc.1 { (i, v) } else { acc },
                );
            if best != 0 && best != prev {
                if let Some(c) = self.chars.get(best) {
                    text.push_str(c);
                }
                sum += f64::from(p);
                n += 1;
            }
            prev = best;
        }
        (text, if n == 0 { 0.0 } else { (sum / n as f64) as f32 })
    }
}

/// Crop indices in recognition order: by aspect ratio (stable).
pub(super) fn order(crops: &[Crop]) -> Vec<usize> {
    let ratio = |c: &Crop| f64::from(c.width) / f64::from(c.height);
    let mut idx: Vec<usize> = (0..crops.len()).collect();
    idx.sort_by(|&a, &b| ratio(&crops[a]).total_cmp(&ratio(&crops[b])));
    idx
}

/// The input width for a batch: 48 × the widest aspect ratio, at least 320.
pub(super) fn batch_width(crops: &[&Crop]) -> u32 {
    let max = crops
        .iter()
        .map(|c| f64::from(c.width) / f64::from(c.height))
        .fold(f64::from(MIN_WIDTH) / f64::from(LINE_HEIGHT), f64::max);
    (f64::from(LINE_HEIGHT) * max) as u32
}

/// Fills the `[n, 3, 48, width]` input for a batch.
pub(super) fn fill(
    crops: &[&Crop],
    width: u32,
    resize: &mut LinearResize,
    tensor: &mut Vec<f32>,
) -> Result<(), EngineError> {
    let item = (3 * LINE_HEIGHT * width) as usize;
    tensor.clear();
    tensor.resize(item * crops.len(), 0.0);
    for (crop, out) in crops.iter().zip(tensor.chunks_exact_mut(item)) {
        line_input(crop, width, resize, out)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ctc_drops_blanks_and_repeats() {
        let keys = Charset::from_lines("a\nb\n");
        assert_eq!(keys.len(), 4);
        // Steps: a, a, blank, a, b, space → "aab " from kept steps a, a, b, space.
        #[rustfmt::skip]
        let probs = [
            0.1, 0.8, 0.05, 0.05,
            0.1, 0.6, 0.2, 0.1,
            0.9, 0.05, 0.05, 0.0,
            0.1, 0.7, 0.1, 0.1,
            0.0, 0.0, 1.0, 0.0,
            0.0, 0.0, 0.0, 1.0,
        ];
        let (text, score) = keys.decode(&probs, 4);
        assert_eq!(text, "aab ");
        assert!((score - (0.8 + 0.7 + 1.0 + 1.0) / 4.0).abs() < 1e-6);
        let crop = |w, h| Crop {
            width: w,
            height: h,
            rgb: vec![0; (w * h * 3) as usize],
        };
        assert_eq!(batch_width(&[&crop(100, 48)]), 320);
        assert_eq!(batch_width(&[&crop(480, 48), &crop(10, 48)]), 480);
    }
}
