//! [`SmolVlmError`]: what a SmolVLM model's files, sessions, questions or outputs break
//! of the contract (the cause of a [`ModelError`](crate::model::ModelError), which
//! names the model and, at load, the file).

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
    #[error("{text:?} must be one token, it is {ids:?}")]
    NotOneToken { text: String, ids: Vec<u32> },
    #[error("expected inputs pixel_values, pixel_attention_mask, found {0:?}")]
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
    #[error("the prompt prefix has {found} image tokens, expected {expected}")]
    PrefixImages { found: usize, expected: usize },
    #[error("the image prefix of {prefix} tokens leaves no room in a sequence of {max_sequence}")]
    NoRoom { prefix: usize, max_sequence: usize },
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
}
