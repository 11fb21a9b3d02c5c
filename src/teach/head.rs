//! The probe a taught query answers with: multinomial logistic regression with an L2
//! penalty on L2-normalised embeddings, centred on the examples' mean, trained by
//! full-batch gradient descent (Nesterov) from the nearest-centroid solution.
//!
//! Training works in the span of the examples: with `W = A·Z` (`Z` the centred
//! examples) the logits on the examples are `A·G` with `G = Z·Zᵀ`, so each step costs
//! `k·n²` instead of `k·n·d` — 200 examples of 1280 numbers train in a few
//! milliseconds. The steps, their number and their order are fixed: the same
//! examples give the same head, bit for bit. At the end the head is folded into one
//! matrix and bias, so answering a frame is `k` dot products and a softmax.
//!
//! ```
//! use ocellus::teach::Head;
//! let on = [1.0f32, 0.0, 0.0];
//! let off = [0.0f32, 1.0, 0.0];
//! let head = Head::train(&[&on[..], &off[..]], &[0, 1], 2).unwrap();
//! let mut p = [0.0f32; 2];
//! head.probs(&[0.9, 0.1, 0.0], &mut p);
//! assert!(p[0] > 0.5 && (p[0] + p[1] - 1.0).abs() < 1e-5);
//! ```

/// L2 penalty on the weights (per example, as in the mean loss).
const LAMBDA: f32 = 1e-2;
/// Gradient steps; enough for the loss to settle on a few hundred examples.
const STEPS: usize = 200;
/// Cross-validation uses leave-one-out up to this many examples, 5 folds beyond.
const LOO_UP_TO: usize = 40;

/// A trained probe: `softmax(W·x + b)` over the query's states.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    k: usize,
    dim: usize,
    /// `k × dim`, row-major.
    w: Vec<f32>,
    /// With the centring folded in.
    b: Vec<f32>,
}

impl Head {
    /// Trains on `xs` (all of one length) labelled `ys` (each below `k`); `None`
    /// when a state has no example or the lengths differ.
    pub fn train(xs: &[&[f32]], ys: &[usize], k: usize) -> Option<Self> {
        let n = xs.len();
        let dim = xs.first()?.len();
        if n != ys.len() || k < 2 || dim == 0 || xs.iter().any(|x| x.len() != dim) {
            return None;
        }
        let mut counts = vec![0usize; k];
        for &y in ys {
            *counts.get_mut(y)? += 1;
        }
        if counts.contains(&0) {
            return None;
        }
        // Centre on the mean.
        let mut mean = vec![0f32; dim];
        for x in xs {
            for (m, v) in mean.iter_mut().zip(x.iter()) {
                *m += v;
            }
        }
        mean.iter_mut().for_each(|m| *m /= n as f32);
        let z: Vec<Vec<f32>> = xs
            .iter()
            .map(|x| x.iter().zip(&mean).map(|(v, m)| v - m).collect())
            .collect();
        let mut g = vec![0f32; n * n];
        for i in 0..n {
            for j in i..n {
                let d = dot(&z[i], &z[j]);
                g[i * n + j] = d;
                g[j * n + i] = d;
            }
        }
        let max_sq = (0..n).map(|i| g[i * n + i]).fold(0f32, f32::max);
        // Step sizes from the loss's curvature: at most ½·‖z‖² along the weights and
        // ½ along the biases; the Hessian is within twice its diagonal blocks, so
        // each block's step is 1 / (2 · its bound). A bias step sized by the
        // weights' bound overshoots when the examples lie close together.
        let step_a = 1.0 / (max_sq + LAMBDA);
        let step_b = 1.0;
        // Nearest centroid to start: row c is the mean of state c's centred examples,
        // scaled so that the centroids' logits differ by about 4.
        let mut a = vec![0f32; k * n];
        let spread = centroid_spread(&g, ys, &counts, n).max(1e-6);
        for (i, &y) in ys.iter().enumerate() {
            a[y * n + i] = 4.0 / spread / counts[y] as f32;
        }
        let mut b = vec![0f32; k];
        let (mut a_prev, mut b_prev) = (a.clone(), b.clone());
        let mut logits = vec![0f32; k * n];
        let mut look_a = a.clone();
        let mut look_b = b.clone();
        let mut grad = vec![0f32; k * n];
        for t in 0..STEPS {
            // Nesterov look-ahead point.
            let mom = t as f32 / (t as f32 + 3.0);
            for i in 0..k * n {
                look_a[i] = a[i] + mom * (a[i] - a_prev[i]);
            }
            for c in 0..k {
                look_b[c] = b[c] + mom * (b[c] - b_prev[c]);
            }
            // logits[c][j] = sum_i A[c][i] G[i][j] + b[c]
            for c in 0..k {
                let row = &look_a[c * n..(c + 1) * n];
                let out = &mut logits[c * n..(c + 1) * n];
                out.iter_mut().for_each(|o| *o = look_b[c]);
                for (i, &ai) in row.iter().enumerate() {
                    if ai != 0.0 {
                        let gi = &g[i * n..(i + 1) * n];
                        for (o, &gij) in out.iter_mut().zip(gi) {
                            *o += ai * gij;
                        }
                    }
                }
            }
            // Softmax per example; grad = (P - Y) / n + λ A.
            let mut gb = vec![0f32; k];
            for j in 0..n {
                let mx = (0..k).map(|c| logits[c * n + j]).fold(f32::MIN, f32::max);
                let mut sum = 0f32;
                for c in 0..k {
                    let e = (logits[c * n + j] - mx).exp();
                    logits[c * n + j] = e;
                    sum += e;
                }
                for c in 0..k {
                    let p = logits[c * n + j] / sum;
                    let r = (p - f32::from(u8::from(ys[j] == c))) / n as f32;
                    grad[c * n + j] = r + LAMBDA * look_a[c * n + j];
                    gb[c] += r;
                }
            }
            a_prev.copy_from_slice(&a);
            b_prev.copy_from_slice(&b);
            for i in 0..k * n {
                a[i] = look_a[i] - step_a * grad[i];
            }
            for c in 0..k {
                b[c] = look_b[c] - step_b * gb[c];
            }
        }
        // W = A·Z; b' = b - W·mean.
        let mut w = vec![0f32; k * dim];
        for c in 0..k {
            let row = &mut w[c * dim..(c + 1) * dim];
            for (i, zi) in z.iter().enumerate() {
                let ai = a[c * n + i];
                for (r, v) in row.iter_mut().zip(zi) {
                    *r += ai * v;
                }
            }
            b[c] -= dot(row, &mean);
        }
        Some(Self { k, dim, w, b })
    }

    /// The number of states.
    pub fn states(&self) -> usize {
        self.k
    }

    /// The embedding length it takes.
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// Each state's probability for `x` into `out` (length [`Head::states`]); all
    /// equal when `x` has another length.
    pub fn probs(&self, x: &[f32], out: &mut [f32]) {
        if x.len() != self.dim {
            let even = 1.0 / out.len().max(1) as f32;
            out.iter_mut().for_each(|p| *p = even);
            return;
        }
        for (c, o) in out.iter_mut().enumerate().take(self.k) {
            *o = dot(&self.w[c * self.dim..(c + 1) * self.dim], x) + self.b[c];
        }
        softmax(&mut out[..self.k]);
    }

    /// The state of highest probability for `x`.
    pub fn predict(&self, x: &[f32]) -> usize {
        let mut p = vec![0f32; self.k];
        self.probs(x, &mut p);
        argmax(&p)
    }
}

/// How often a head trained without each example gets it right: leave-one-out up
/// to 40 examples, else 5 folds (example `i` in fold `i mod 5`); `None` while a
/// state has fewer than 2 examples.
pub fn cross_validate(xs: &[&[f32]], ys: &[usize], k: usize) -> Option<(usize, usize)> {
    let n = xs.len();
    let mut counts = vec![0usize; k];
    for &y in ys {
        *counts.get_mut(y)? += 1;
    }
    if counts.iter().any(|&c| c < 2) {
        return None;
    }
    let folds = if n <= LOO_UP_TO { n } else { 5 };
    let mut correct = 0;
    for f in 0..folds {
        let (train, test): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| i % folds != f);
        let txs: Vec<&[f32]> = train.iter().map(|&i| xs[i]).collect();
        let tys: Vec<usize> = train.iter().map(|&i| ys[i]).collect();
        let Some(head) = Head::train(&txs, &tys, k) else {
            // A fold that lost a state's every example: count its tests as wrong.
            continue;
        };
        correct += test
            .iter()
            .filter(|&&i| head.predict(xs[i]) == ys[i])
            .count();
    }
    Some((correct, n))
}

/// The mean distance between the states' centroids (in the Gram matrix's terms).
fn centroid_spread(g: &[f32], ys: &[usize], counts: &[usize], n: usize) -> f32 {
    let k = counts.len();
    // <c_a, c_b> = sum over pairs / (n_a n_b)
    let mut cc = vec![0f32; k * k];
    for i in 0..n {
        for j in 0..n {
            cc[ys[i] * k + ys[j]] += g[i * n + j];
        }
    }
    for a in 0..k {
        for b in 0..k {
            cc[a * k + b] /= (counts[a] * counts[b]) as f32;
        }
    }
    let mut sum = 0f32;
    let mut pairs = 0;
    for a in 0..k {
        for b in a + 1..k {
            sum += (cc[a * k + a] + cc[b * k + b] - 2.0 * cc[a * k + b]).max(0.0);
            pairs += 1;
        }
    }
    if pairs == 0 { 0.0 } else { sum / pairs as f32 }
}

/// The index of the largest value (the first of equals).
pub fn argmax(p: &[f32]) -> usize {
    let mut best = 0;
    for (i, v) in p.iter().enumerate() {
        if *v > p[best] {
            best = i;
        }
    }
    best
}

use crate::model::clip::dot;

fn softmax(v: &mut [f32]) {
    let mx = v.iter().copied().fold(f32::MIN, f32::max);
    let mut sum = 0.0;
    for x in v.iter_mut() {
        *x = (*x - mx).exp();
        sum += *x;
    }
    v.iter_mut().for_each(|x| *x /= sum);
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Unit vectors near `centre` (deterministic jitter).
    fn cluster(centre: &[f32], n: usize, seed: u32) -> Vec<Vec<f32>> {
        (0..n)
            .map(|i| {
                let mut v: Vec<f32> = centre
                    .iter()
                    .enumerate()
                    .map(|(j, c)| {
                        let h = (seed.wrapping_mul(2654435761)
                            ^ (i as u32 * 7919 + j as u32 * 104729))
                            % 1000;
                        c + (h as f32 / 1000.0 - 0.5) * 0.3
                    })
                    .collect();
                let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
                v.iter_mut().for_each(|x| *x /= norm);
                v
            })
            .collect()
    }

    #[test]
    fn separates_two_clusters_and_is_deterministic() {
        let a = cluster(&[1.0, 0.2, 0.1, 0.0], 5, 1);
        let b = cluster(&[0.1, 1.0, 0.2, 0.1], 5, 2);
        let xs: Vec<&[f32]> = a.iter().chain(&b).map(|v| v.as_slice()).collect();
        let ys: Vec<usize> = (0..10).map(|i| usize::from(i >= 5)).collect();
        let head = Head::train(&xs, &ys, 2).unwrap();
        for (x, y) in xs.iter().zip(&ys) {
            assert_eq!(head.predict(x), *y);
        }
        assert_eq!(Head::train(&xs, &ys, 2).unwrap(), head);
        assert_eq!(cross_validate(&xs, &ys, 2), Some((10, 10)));
        let mut p = [0f32; 2];
        head.probs(&a[0], &mut p);
        assert!(p[0] > 0.8, "{p:?}");
    }

    #[test]
    fn needs_an_example_of_every_state() {
        let x = [1.0f32, 0.0];
        assert!(Head::train(&[&x[..]], &[0], 2).is_none());
        assert!(Head::train(&[&x[..], &x[..]], &[0, 2], 2).is_none());
        assert_eq!(cross_validate(&[&x[..], &x[..]], &[0, 1], 2), None);
    }

    #[test]
    fn three_states() {
        let a = cluster(&[1.0, 0.0, 0.0], 3, 3);
        let b = cluster(&[0.0, 1.0, 0.0], 3, 4);
        let c = cluster(&[0.0, 0.0, 1.0], 3, 5);
        let xs: Vec<&[f32]> = a.iter().chain(&b).chain(&c).map(|v| v.as_slice()).collect();
        let ys: Vec<usize> = (0..9).map(|i| i / 3).collect();
        let head = Head::train(&xs, &ys, 3).unwrap();
        assert_eq!(head.predict(&[0.0, 0.1, 0.99]), 2);
    }

    #[test]
    fn examples_close_together_are_still_told_apart() {
        // Two unit vectors at cosine 0.94 (what a tiny or a frozen embedder gives for
        // two scenes of one camera): each gets its own state, however many copies.
        let unit = |v: [f32; 3]| {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.map(|x| x / n)
        };
        let (on, off) = (unit([1.0, 0.18, 0.0]), unit([1.0, -0.18, 0.0]));
        for copies in [1, 4, 60] {
            let xs: Vec<&[f32]> = (0..copies).flat_map(|_| [&on[..], &off[..]]).collect();
            let ys: Vec<usize> = (0..copies).flat_map(|_| [0, 1]).collect();
            let head = Head::train(&xs, &ys, 2).unwrap();
            let mut p = [0f32; 2];
            head.probs(&on, &mut p);
            assert!(p[0] > 0.7, "{copies} copies: ON gives {p:?}");
            head.probs(&off, &mut p);
            assert!(p[1] > 0.7, "{copies} copies: OFF gives {p:?}");
        }
        // Many examples near one centre per state: held-out ones are right too.
        let a = cluster(&[1.0, 0.3, 0.3, 0.3], 100, 7);
        let b = cluster(&[0.3, 1.0, 0.3, 0.3], 100, 8);
        let xs: Vec<&[f32]> = a
            .iter()
            .zip(&b)
            .flat_map(|(x, y)| [x.as_slice(), y.as_slice()])
            .collect();
        let ys: Vec<usize> = (0..200).map(|i| i % 2).collect();
        let (right, n) = cross_validate(&xs, &ys, 2).unwrap();
        assert!(right >= n * 95 / 100, "{right} of {n}");
    }
}
