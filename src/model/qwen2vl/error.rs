//! [`Qwen2VlError`]: what a Qwen2-VL model's files, sessions, questions or outputs
//! break of the contract (the cause of a [`ModelError`](crate::model::ModelError), which
//! names the model and, at load, the file).

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
    #[error("{text:?} must be one token, it is {ids:?}")]
    NotOneToken { text: String, ids: Vec<u32> },
    #[error("spatial_merge_size {config} differs from the processor's merge_size {processor}")]
    MergeSize { config: u32, processor: u32 },
    #[error("expected inputs pixel_values, grid_thw, found {0:?}")]
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
    #[error("position_ids must be [3, batch, sequence] (M-RoPE), is {0:?}")]
    PositionShape(Vec<i64>),
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
    #[error(
        "an image of {tokens} tokens (max_pixels {max_pixels}) leaves no room in a sequence of {max_sequence}; lower max_pixels"
    )]
    NoRoom {
        tokens: usize,
        max_pixels: u32,
        max_sequence: usize,
    },
    #[error("the question is {bytes} bytes, more than the {limit} it may have")]
    QuestionTooLong { bytes: usize, limit: usize },
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
    /// The answer to a detect or ground prompt is not Qwen's JSON of `bbox_2d` boxes.
    #[error("the grounding answer is not JSON of bbox_2d boxes ({why}): {text:?}")]
    Grounding { why: String, text: String },
}
