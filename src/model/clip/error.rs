//! [`ClipError`]: what a dual encoder's files or outputs break of the contract (the
//! cause of a [`ModelError`](crate::model::ModelError), which names the model and
//! the file).

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum ClipError {
    #[error("expected a pixel_values input, found none")]
    NoPixelValues,
    /// The preprocessor's image size is not the vision model's fixed input.
    #[error(
        "gives {}x{} images, but {} takes {}x{}",
        gives.0, gives.1, vision.display(), takes.0, takes.1
    )]
    ImageSize {
        gives: (u32, u32),
        vision: PathBuf,
        takes: (i64, i64),
    },
    #[error("expected an input_ids input, found {found:?}")]
    NoInputIds { found: Vec<String> },
    /// None of the outputs the model type names, and more than one output.
    #[error("expected an output named {}, found {found:?}", preferred.join(" or "))]
    NoOutput {
        preferred: Vec<&'static str>,
        found: Vec<String>,
    },
    #[error(
        "logit_bias is set, but this is a CLIP model, which has none \
         (set model_type = \"siglip\" if it is SigLIP)"
    )]
    BiasOnClip,
    #[error(
        "not found; SigLIP's logit_scale and logit_bias are only in the combined export: \
         add it, or set logit_scale (exp of the trained value) and logit_bias in the \
         model's config"
    )]
    NoCombined,
    #[error("logit_scale {0} must be a positive number")]
    BadScale(f32),
    #[error("output {0} is empty")]
    EmptyOutput(String),
    #[error("no output {0}")]
    MissingOutput(String),
    #[error("output {name} has shape {shape:?}")]
    OutputShape { name: String, shape: Vec<i64> },
}
