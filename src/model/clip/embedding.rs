//! [`Embedding`]: a dual encoder's unit-length vector of an image or a prompt.

use std::cell::Cell;
use std::sync::Arc;
use std::time::Instant;

use super::preprocess::{ClipImage, ImageSpec};
use crate::engine::{BatchClient, Rect, RgbView};
use crate::model::{ModelError, StepTimes};

/// A unit-length embedding.
pub type Embedding = Arc<[f32]>;

/// `v` scaled to unit length.
pub fn normalise(v: &[f32]) -> Embedding {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter().map(|x| x / norm).collect()
}

/// The unit-length embedding of `crop` of `view` from an image model on `engine`
/// (batched with other cameras): preprocessed by `spec` into the engine's input
/// tensor, the output normalised; `empty` says why an output cannot be an embedding.
/// The steps' times go to `scratch.stages`, each under a TRACE span naming `model`.
/// CLIP/SigLIP's vision tower and the embedder family share it.
pub fn embed_on(
    engine: &mut BatchClient,
    view: &RgbView<'_>,
    crop: Rect,
    spec: &ImageSpec,
    scratch: &mut ClipImage,
    model: &str,
    empty: impl Fn(&[f32]) -> Option<ModelError>,
) -> Result<Embedding, ModelError> {
    let t0 = Instant::now();
    // Both closures exist at once: the times go through cells.
    let (t1, t2) = (Cell::new(t0), Cell::new(t0));
    let embedding = engine.infer(
        |input| {
            let _s = tracing::trace_span!("embed.pre", model = %model).entered();
            scratch.fill_into(view, crop, spec, input)?;
            t1.set(Instant::now());
            Ok(())
        },
        |out| {
            t2.set(Instant::now());
            let _s = tracing::trace_span!("embed.post", model = %model).entered();
            match empty(out) {
                Some(e) => Err(e),
                None => Ok(normalise(out)),
            }
        },
    )??;
    scratch.stages = StepTimes {
        preprocess: t1.get() - t0,
        infer: t2.get() - t1.get(),
        postprocess: t2.get().elapsed(),
    };
    Ok(embedding)
}
