//! [`Embedding`]: a dual encoder's unit-length vector of an image or a prompt.

use std::sync::Arc;

/// A unit-length embedding.
pub type Embedding = Arc<[f32]>;

/// `v` scaled to unit length.
pub fn normalise(v: &[f32]) -> Embedding {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(|x| x / norm).collect()
}
