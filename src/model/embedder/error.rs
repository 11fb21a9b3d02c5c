//! [`EmbedderError`]: what an embedder's folder, file or output breaks of the
//! contract (the cause of a [`ModelError`](crate::model::ModelError), which names the
//! model and the file).

/// What an embedder's files or outputs break.
#[derive(Debug, thiserror::Error)]
pub enum EmbedderError {
    /// The folder has no `.onnx` file, or several and none says which.
    #[error("{0}")]
    NoFile(String),
    /// The model has no output of the configured name.
    #[error("no output {want:?} (outputs: {found}); set `output` to the embedding's")]
    NoOutput {
        /// The configured output.
        want: String,
        /// The outputs the model has.
        found: String,
    },
    /// The model's input is not an image tensor `[N, 3, H, W]`.
    #[error("input {name} has shape {dims:?}, expected [N, 3, H, W]")]
    InputShape {
        /// The input's name.
        name: String,
        /// Its dimensions.
        dims: Vec<i64>,
    },
    /// The preprocessor makes images of another size than the model takes.
    #[error("the preprocessor gives {gives:?} images, the model takes {takes:?}")]
    ImageSize {
        /// `(width, height)` the preprocessor makes.
        gives: (u32, u32),
        /// `(width, height)` the model takes.
        takes: (i64, i64),
    },
    /// The output came back empty or with zeros only.
    #[error("output {0} is empty")]
    EmptyOutput(String),
}
