//! How a dual encoder's cosine similarities become a query's score.
//!
//! - CLIP and MobileCLIP were trained contrastively: `logit = logit_scale * cos`, and
//!   a softmax over the query's prompts gives probabilities that sum to one. yes_no:
//!   the summed probability of the yes prompts; classify: the best label and its
//!   probability.
//! - SigLIP was trained with a sigmoid per (image, text) pair:
//!   `p = sigmoid(logit_scale * cos + logit_bias)` is the probability that the text
//!   matches the image, on its own. classify: the label with the largest logit, scored
//!   by its own `p`. yes_no: with `l_yes` the largest logit of the yes prompts and
//!   `l_no` that of the no prompts, the score is the probability that the yes side
//!   rather than the no side matches, given that exactly one of them does:
//!   `p_yes (1 - p_no) / (p_yes (1 - p_no) + p_no (1 - p_yes)) = sigmoid(l_yes - l_no)`.
//!   The bias cancels; each side is as good as its best phrasing. With no negative
//!   prompts it is `p_yes`.
//!
//! Everything here works in place on the caller's buffer (the frame path allocates
//! nothing).
//!
//! ```
//! use ocellus::model::clip::Scoring;
//! let siglip = Scoring::Sigmoid { scale: 10.0, bias: -1.0 };
//! let mut logits = [siglip.logit(0.3), siglip.logit(0.1)];
//! assert_eq!(logits, [2.0, 0.0]);
//! let p = siglip.yes_no(&mut logits, 1);
//! assert!((p - 1.0 / (1.0 + (-2.0f32).exp())).abs() < 1e-6);
//! ```

use super::embedding::Embedding;

/// The scoring rule of a dual encoder and its trained numbers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scoring {
    /// CLIP, MobileCLIP: `scale * cos`, softmax over the prompts.
    Softmax { scale: f32 },
    /// SigLIP: `sigmoid(scale * cos + bias)` per prompt.
    Sigmoid { scale: f32, bias: f32 },
}

impl Scoring {
    /// The logit of a cosine similarity.
    #[inline]
    pub fn logit(&self, cos: f32) -> f32 {
        match *self {
            Scoring::Softmax { scale } => scale * cos,
            Scoring::Sigmoid { scale, bias } => scale * cos + bias,
        }
    }

    /// p(yes) from the logits of the yes prompts (`logits[..yes]`) and the no prompts
    /// (the rest); `logits` is overwritten.
    pub fn yes_no(&self, logits: &mut [f32], yes: usize) -> f32 {
        let yes = yes.min(logits.len());
        match self {
            Scoring::Softmax { .. } => {
                softmax_in_place(logits);
                logits[..yes].iter().sum()
            }
            Scoring::Sigmoid { .. } => {
                let best = |l: &[f32]| l.iter().copied().fold(f32::NEG_INFINITY, f32::max);
                let (y, n) = logits.split_at(yes);
                if n.is_empty() {
                    sigmoid(best(y))
                } else {
                    sigmoid(best(y) - best(n))
                }
            }
        }
    }

    /// The best label's index and score; `logits` is overwritten with each label's
    /// probability (softmax over the labels, or each one's sigmoid).
    pub fn classify(&self, logits: &mut [f32]) -> (usize, f32) {
        match self {
            Scoring::Softmax { .. } => softmax_in_place(logits),
            Scoring::Sigmoid { .. } => logits.iter_mut().for_each(|l| *l = sigmoid(*l)),
        }
        logits
            .iter()
            .enumerate()
            .max_by(|a, b| a.1.total_cmp(b.1))
            .map(|(i, p)| (i, *p))
            .unwrap_or((0, 0.0))
    }
}

/// The logistic function.
#[inline]
pub fn sigmoid(x: f32) -> f32 {
    1.0 / (1.0 + (-x).exp())
}

/// `scale * cos(image, prompt)` for unit-length embeddings.
pub fn logits<'a>(
    scale: f32,
    image: &[f32],
    prompts: impl IntoIterator<Item = &'a Embedding>,
) -> Vec<f32> {
    prompts.into_iter().map(|p| scale * dot(image, p)).collect()
}

/// Numerically stable softmax.
pub fn softmax(logits: &[f32]) -> Vec<f32> {
    let mut v = logits.to_vec();
    softmax_in_place(&mut v);
    v
}

/// Dot product with eight independent sums, which the compiler vectorises.
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0f32; 8];
    let (ca, cb) = (a.chunks_exact(8), b.chunks_exact(8));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..8 {
            acc[i] += x[i] * y[i];
        }
    }
    let tail: f32 = ra.iter().zip(rb).map(|(x, y)| x * y).sum();
    acc.iter().sum::<f32>() + tail
}

/// Numerically stable softmax, in place.
pub fn softmax_in_place(v: &mut [f32]) {
    let max = v.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - max).exp();
        sum += *x;
    }
    for x in v.iter_mut() {
        *x /= sum;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_and_softmax_match_the_plain_formulas() {
        let a: Vec<f32> = (0..37).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..37).map(|i| (i as f32 * 0.11).cos()).collect();
        let plain: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - plain).abs() < 1e-5);
        let mut v = [1.0f32, 2.0, 3.0];
        softmax_in_place(&mut v);
        let e: Vec<f32> = [1.0f32, 2.0, 3.0].iter().map(|x| x.exp()).collect();
        let s: f32 = e.iter().sum();
        for (got, want) in v.iter().zip(e.iter().map(|x| x / s)) {
            assert!((got - want).abs() < 1e-6);
        }
    }

    #[test]
    fn clip_sums_the_yes_prompts_of_one_softmax() {
        let clip = Scoring::Softmax { scale: 100.0 };
        let mut l = [clip.logit(0.30), clip.logit(0.29), clip.logit(0.31)];
        let want = softmax(&l);
        assert!((clip.yes_no(&mut l, 2) - (want[0] + want[1])).abs() < 1e-6);
        let mut l = [1.0, 3.0, 2.0];
        let (best, p) = clip.classify(&mut l);
        assert_eq!(best, 1);
        assert!((p - softmax(&[1.0, 3.0, 2.0])[1]).abs() < 1e-6);
    }

    #[test]
    fn siglip_weighs_the_best_yes_against_the_best_no() {
        let s = Scoring::Sigmoid {
            scale: 10.0,
            bias: -3.0,
        };
        // Logits 2 and 0.5 (yes), 1 (no): sigmoid(2 - 1), the posterior of "yes rather
        // than no" for independent detectors of which exactly one fires.
        let mut l = [2.0f32, 0.5, 1.0];
        let p = s.yes_no(&mut l, 2);
        let (py, pn) = (sigmoid(2.0), sigmoid(1.0));
        let posterior = py * (1.0 - pn) / (py * (1.0 - pn) + pn * (1.0 - py));
        assert!((p - sigmoid(1.0)).abs() < 1e-6 && (p - posterior).abs() < 1e-6);
        // The bias cancels.
        let t = Scoring::Sigmoid {
            scale: 10.0,
            bias: 5.0,
        };
        let (mut a, mut b) = ([s.logit(0.3), s.logit(0.1)], [t.logit(0.3), t.logit(0.1)]);
        assert!((s.yes_no(&mut a, 1) - t.yes_no(&mut b, 1)).abs() < 1e-6);
        // No negatives: the yes side's own probability.
        assert_eq!(s.yes_no(&mut [0.0], 1), 0.5);
        // classify: the largest logit, scored by its own sigmoid.
        let mut l = [-2.0f32, 1.5, 0.0];
        assert_eq!(s.classify(&mut l), (1, sigmoid(1.5)));
    }
}
