//! [`Florence2Error`]: what a Florence-2 model's sessions, prompts or outputs break of
//! the contract (the cause of a [`ModelError`](crate::model::ModelError), which names
//! the model and, at load, the file).

#[derive(Debug, thiserror::Error)]
pub enum Florence2Error {
    /// A session without the inputs and the output the layout has.
    #[error("expected inputs {inputs:?} and output {output}, found {found:?} -> {found_outputs:?}")]
    Io {
        inputs: Vec<&'static str>,
        output: &'static str,
        found: Vec<String>,
        found_outputs: Vec<String>,
    },
    #[error("the phrase is {bytes} bytes, more than the {limit} it may have")]
    PhraseTooLong { bytes: usize, limit: usize },
    #[error("image_features has shape {0:?}")]
    FeaturesShape(Vec<i64>),
    #[error("prompt embeddings of {values} values do not match image features of width {dim}")]
    PromptWidth { values: usize, dim: usize },
    #[error("no output {0}")]
    MissingOutput(&'static str),
}
