//! SmolVLM (Idefics3: SigLIP-like vision encoder, pixel-shuffle connector, Llama
//! decoder) answering questions about a frame, in the onnx-community ONNX layout
//! (`onnx/vision_encoder.onnx`, `onnx/embed_tokens.onnx`,
//! `onnx/decoder_model_merged.onnx`, `tokenizer.json`, `preprocessor_config.json`,
//! `config.json`, `generation_config.json`).
//!
//! Encode once, ask many: [`SmolVlm::prefix`] preprocesses a frame, runs the vision
//! encoder and ONE decoder pass over `<|im_start|>User:` + the image tokens, and keeps
//! that pass's KV cache as an [`ImagePrefix`]. Each question is then one decoder pass
//! over `QUESTION<end_of_utterance>\nAssistant:` on top of the prefix (which is never
//! mutated): [`SmolVlm::yes_no`] compares the logits of the yes and no tokens,
//! [`SmolVlm::answer`] decodes greedily with the KV cache.
//!
//! Files: `model` ([`SmolVlm`] and the checks of a question), `load`, `prefix` (the
//! image prefix), `decode` (the questions on it), `preprocess` (images), `config`,
//! `error` (what the files, sessions, questions or outputs break).
//!
//! ```no_run
//! use ocellus::model::smolvlm::{SmolVlm, SmolVlmConfig};
//! let mut cfg: SmolVlmConfig = toml::from_str(r#"dir = "models/smolvlm-256m""#).unwrap();
//! cfg.resolve_paths(std::path::Path::new("/var/lib/ocellus"));
//! let env = ocellus::engine::environment(&Default::default()).unwrap();
//! let (vlm, sessions) = SmolVlm::load("vqa", &cfg, env).unwrap();
//! let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let prefix = vlm.prefix(&sessions, &frame, None).unwrap();
//! let door = vlm.yes_no(&sessions, &prefix, "Is the door open?").unwrap();
//! let what = vlm.answer(&sessions, &prefix, "What is in the picture?", 16).unwrap();
//! println!("p(open) = {:.2}; {}", door.p_yes, what.text);
//! ```

mod config;
mod decode;
mod error;
mod load;
mod model;
mod prefix;
mod preprocess;

pub use crate::model::kv_decoder::{DecodeTimings, PrefixTimings, YesNo};
pub use config::SmolVlmConfig;
pub use decode::Generated;
pub use error::SmolVlmError;
pub use model::{
    MAX_NEW_TOKENS, MAX_QUESTION_BYTES, MAX_QUESTION_TOKENS, MAX_SEQUENCE, SmolVlm, SmolVlmSessions,
};
pub use prefix::ImagePrefix;
pub use preprocess::{ImageSpec, ImageSpecError, SmolVlmImage};
