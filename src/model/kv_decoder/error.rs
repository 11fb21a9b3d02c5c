//! [`KvDecoderError`]: what a decoder-only VLM's embedding or decoder session, or one
//! of their runs, breaks of the contract the families share (the cause of a
//! [`ModelError`](crate::model::ModelError), which names the model and, at load, the
//! file). The messages are the ones each family gave before the contract was shared.
//!
//! ```no_run
//! # use ocellus::model::smolvlm::{SmolVlm, SmolVlmConfig};
//! # let cfg: SmolVlmConfig = toml::from_str(r#"dir = "/models/smolvlm""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! // A decoder without present.N.key outputs is refused at load, naming the file:
//! // "model vqa: .../decoder_model_merged.onnx: expected past_key_values.0.key and
//! // present.0.key for every layer".
//! if let Err(e) = SmolVlm::load("vqa", &cfg, env) {
//!     eprintln!("{e}");
//! }
//! ```

#[derive(Debug, thiserror::Error)]
pub(crate) enum KvDecoderError {
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
    /// `position_ids` of another shape than the family's (Qwen's M-RoPE).
    #[error("position_ids must be {shape}, is {dims:?}")]
    PositionShape { shape: &'static str, dims: Vec<i64> },
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
    /// A question or prompt refused before it is tokenised.
    #[error("{what} is {bytes} bytes, more than the {limit} it may have")]
    TooManyBytes {
        what: &'static str,
        bytes: usize,
        limit: usize,
    },
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
    #[error("{text:?} must be one token, it is {ids:?}")]
    NotOneToken { text: String, ids: Vec<u32> },
    #[error("the vision encoder gave {values} values, expected {tokens} image tokens x {hidden}")]
    FeaturesCount {
        values: usize,
        tokens: usize,
        hidden: usize,
    },
}
