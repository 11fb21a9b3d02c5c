//! Florence-2: one prompt-driven vision-language model for captions, object detection,
//! OCR and phrase grounding, in the Hugging Face ONNX layout that onnx-community
//! publishes (`onnx/vision_encoder.onnx`, `onnx/embed_tokens.onnx`,
//! `onnx/encoder_model.onnx`, `onnx/decoder_model_merged.onnx`, `tokenizer.json`,
//! `preprocessor_config.json`, `generation_config.json`).
//!
//! An image is encoded once ([`Florence2::encode`]); each task then runs the text
//! encoder on `[image features; prompt embeddings]` and decodes greedily with the KV
//! cache ([`Florence2::run`]). Prompt embeddings are computed once per task and kept
//! in the (bounded, shared) [`PromptCache`].
//!
//! Bounds: a task prompt (a grounding phrase is the only free text) has at most
//! [`MAX_PROMPT_TOKENS`] tokens and, with the image's tokens, fits the encoder's
//! `max_position_embeddings`; an answer has at most [`MAX_NEW_TOKENS`] tokens and
//! never more than the decoder's positions. A [`Cancel`] stops [`Florence2::run_with`]
//! between two tokens.
//!
//! Files: `model` ([`Florence2`]: loading, encoding, the task run), `decode` (greedy
//! decoding and `generation_config.json`), `preprocess` (images), `tasks` (prompts
//! and the parsing of answers), `config`, `error` (what the sessions or outputs
//! break).
//!
//! ```no_run
//! use ocellus::model::florence2::{Florence2, Florence2Config, Task, TaskOutput};
//! let mut cfg: Florence2Config = toml::from_str(r#"dir = "models/florence-2-base-ft""#).unwrap();
//! cfg.resolve_paths(".".as_ref());
//! let env = ocellus::engine::environment(&Default::default()).unwrap();
//! let (model, sessions) = Florence2::load("vlm", &cfg, env).unwrap();
//! let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let image = model.encode(&sessions, &frame, None).unwrap();
//! let found = model.run(&sessions, &image, &Task::Detect, cfg.max_tokens).unwrap();
//! if let TaskOutput::Boxes(boxes) = &found.output {
//!     for b in boxes { println!("{} at {:?}", b.label, b.bbox) }
//! }
//! ```
//!
//! [`PromptCache`]: crate::cache::PromptCache
//! [`Cancel`]: crate::model::Cancel

mod config;
mod decode;
mod error;
mod model;
mod preprocess;
mod tasks;

pub use config::Florence2Config;
pub use decode::{DecoderIo, DecoderIoError, GenerationError, GenerationSpec};
pub use error::Florence2Error;
pub use model::{
    Florence2, Florence2Sessions, Generated, ImageFeatures, MAX_NEW_TOKENS, MAX_PROMPT_BYTES,
    MAX_PROMPT_TOKENS,
};
pub use preprocess::{ImageSpec, ImageSpecError, pixel_box};
pub use tasks::{Found, Task, TaskOutput, clean_up_tokenization};
