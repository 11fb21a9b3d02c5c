//! [`SmolVlmError`]: what a SmolVLM model's files, sessions, questions or outputs break
//! of the contract (the cause of a [`ModelError`](crate::model::ModelError), which
//! names the model and, at load, the file).
//!
//! What the embedding session, the decoder and its runs break of the contract the
//! decoder-only families share is `KvDecoderError`, in `model::kv_decoder`.

#[derive(Debug, thiserror::Error)]
pub enum SmolVlmError {
    /// `config.json` cannot be read.
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("image_size {image_size}, patch_size {patch}, scale_factor {scale} do not tile")]
    NoTiling {
        image_size: u64,
        patch: u64,
        scale: u64,
    },
    #[error(
        "max_image_size.longest_edge {square} differs from the vision encoder's image_size {image_size}"
    )]
    ImageSize { square: u32, image_size: u32 },
    #[error("token {0} is missing")]
    MissingToken(&'static str),
    #[error("image_token_id {config} is not the tokenizer's <image> ({tokenizer})")]
    ImageToken { config: u32, tokenizer: u32 },
    #[error("expected inputs pixel_values, pixel_attention_mask, found {0:?}")]
    VisionInputs(Vec<String>),
    #[error("expected an image_features output")]
    NoImageFeatures,
    #[error("the prompt prefix has {found} image tokens, expected {expected}")]
    PrefixImages { found: usize, expected: usize },
    #[error("the image prefix of {prefix} tokens leaves no room in a sequence of {max_sequence}")]
    NoRoom { prefix: usize, max_sequence: usize },
    #[error("no output {0}")]
    MissingOutput(String),
}
