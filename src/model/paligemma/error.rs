//! [`PaliGemmaError`]: what a PaliGemma model's files, sessions, prompts or outputs
//! break of the contract (the cause of a [`ModelError`](crate::model::ModelError),
//! which names the model and, at load, the file).

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
    #[error("{text:?} must be one token, it is {ids:?}")]
    NotOneToken { text: String, ids: Vec<u32> },
    #[error("expected a pixel_values input, found {0:?}")]
    VisionInputs(Vec<String>),
    #[error("expected an image_features output")]
    NoImageFeatures,
    #[error("expected input_ids -> inputs_embeds, found {inputs:?} -> {outputs:?}")]
    EmbedIo {
        inputs: Vec<String>,
        outputs: Vec<String>,
    },
    #[error("expected an input {want}, found {found:?}")]
    DecoderInput {
        want: &'static str,
        found: Vec<String>,
    },
    #[error("decoders with a use_cache_branch input are not supported")]
    CacheBranch,
    #[error("expected a logits output, found {0:?}")]
    NoLogitsOutput(Vec<String>),
    #[error("expected {past} and {present} for every layer")]
    LayerCache { past: String, present: String },
    #[error(
        "expected inputs_embeds, attention_mask, position_ids and past_key_values.N.key/value, found {0:?}"
    )]
    DecoderInputs(Vec<String>),
    #[error("{input} must be [batch, kv_heads, past, head_dim] with fixed heads, is {dims:?}")]
    CacheShape { input: String, dims: Vec<i64> },
    #[error("the image prefix of {prefix} tokens leaves no room in a sequence of {max_sequence}")]
    NoRoom { prefix: usize, max_sequence: usize },
    #[error("the prompt is {bytes} bytes, more than the {limit} it may have")]
    PromptTooLong { bytes: usize, limit: usize },
    #[error("a detect prompt needs at least one object name")]
    NoObjects,
    #[error("token {0} is outside the logits")]
    TokenOutsideLogits(u32),
    #[error("the decoder gave no logits")]
    NoLogits,
    #[error("no output {0}")]
    MissingOutput(String),
    #[error("inputs_embeds has {values} values for {tokens} tokens")]
    EmbedsCount { values: usize, tokens: usize },
    #[error("a KV cache of {given} tensors, the decoder takes {takes}")]
    CacheLen { given: usize, takes: usize },
    #[error("logits have shape {0:?}")]
    LogitsShape(Vec<i64>),
    #[error("the vision encoder gave {values} values, expected {tokens} image tokens x {hidden}")]
    FeaturesCount {
        values: usize,
        tokens: usize,
        hidden: usize,
    },
}
