//! [`Qwen2VlError`]: what a Qwen2-VL model's files, sessions, questions or outputs
//! break of the contract (the cause of a [`ModelError`](crate::model::ModelError), which
//! names the model and, at load, the file).
//!
//! What the embedding session, the decoder and its runs break of the contract the
//! decoder-only families share is `KvDecoderError`, in `model::kv_decoder`.

#[derive(Debug, thiserror::Error)]
pub enum Qwen2VlError {
    /// `config.json` cannot be read.
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("{0} is missing")]
    Missing(&'static str),
    #[error("model_type {0:?} is not qwen2_vl or qwen2_5_vl (is this folder of another family?)")]
    ModelType(String),
    #[error(transparent)]
    Config(#[from] super::config::Qwen2VlConfigError),
    #[error("token {0} is missing")]
    MissingToken(&'static str),
    #[error("{name} {config} in config.json is not the tokenizer's {token} ({tokenizer})")]
    TokenId {
        name: &'static str,
        token: &'static str,
        config: u32,
        tokenizer: u32,
    },
    #[error("spatial_merge_size {config} differs from the processor's merge_size {processor}")]
    MergeSize { config: u32, processor: u32 },
    #[error("expected inputs pixel_values, grid_thw, found {0:?}")]
    VisionInputs(Vec<String>),
    #[error("expected an image_features output")]
    NoImageFeatures,
    #[error(
        "an image of {tokens} tokens (max_pixels {max_pixels}) leaves no room in a sequence of {max_sequence}; lower max_pixels"
    )]
    NoRoom {
        tokens: usize,
        max_pixels: u32,
        max_sequence: usize,
    },
    #[error("no output {0}")]
    MissingOutput(String),
    /// The answer to a detect or ground prompt is not Qwen's JSON of `bbox_2d` boxes.
    #[error("the grounding answer is not JSON of bbox_2d boxes ({why}): {text:?}")]
    Grounding { why: String, text: String },
}
