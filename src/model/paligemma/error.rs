//! [`PaliGemmaError`]: what a PaliGemma model's files, sessions, prompts or outputs
//! break of the contract (the cause of a [`ModelError`](crate::model::ModelError),
//! which names the model and, at load, the file).
//!
//! What the embedding session, the decoder and its runs break of the contract the
//! decoder-only families share is `KvDecoderError`, in `model::kv_decoder`.

use crate::model::clip::ImageSpecError;

#[derive(Debug, thiserror::Error)]
pub enum PaliGemmaError {
    /// `config.json` cannot be read.
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Image(#[from] ImageSpecError),
    /// A model folder of another family (`config.json`'s `model_type`).
    #[error("model_type is {0:?}: not a paligemma model (expected \"paligemma\")")]
    NotPaliGemma(String),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("image_size {image_size} is not a multiple of patch_size {patch}")]
    NoTiling { image_size: u64, patch: u64 },
    #[error(
        "the image processor resizes to {width}x{height}, the vision encoder takes {image_size}x{image_size}"
    )]
    ImageSize {
        width: u32,
        height: u32,
        image_size: u32,
    },
    #[error("the image processor must resize to a fixed size.height x size.width")]
    NotExact,
    #[error("image_seq_length {processor} differs from the vision encoder's {patches} patches")]
    ImageSeq { processor: usize, patches: usize },
    #[error("token {0} is missing")]
    MissingToken(&'static str),
    #[error("image_token_index {config} is not the tokenizer's <image> ({tokenizer})")]
    ImageToken { config: u32, tokenizer: u32 },
    #[error("expected a pixel_values input, found {0:?}")]
    VisionInputs(Vec<String>),
    #[error("expected an image_features output")]
    NoImageFeatures,
    #[error("the image prefix of {prefix} tokens leaves no room in a sequence of {max_sequence}")]
    NoRoom { prefix: usize, max_sequence: usize },
    #[error("a detect prompt needs at least one object name")]
    NoObjects,
    #[error("no output {0}")]
    MissingOutput(String),
}
