//! PaliGemma and PaliGemma 2 (SigLIP vision encoder, linear projector, Gemma / Gemma 2
//! decoder) answering task prompts about a frame, in the onnx-community ONNX layout
//! (`onnx/vision_encoder.onnx`, `onnx/embed_tokens.onnx`,
//! `onnx/decoder_model_merged.onnx`, `tokenizer.json`, `preprocessor_config.json`,
//! `config.json`, `generation_config.json`; e.g. onnx-community/paligemma2-3b-pt-224).
//!
//! Encode once, ask many: [`PaliGemma::prefix`] resizes a frame (or region) to the
//! encoder's square as the `SiglipImageProcessor` does (Pillow bicubic, no crop),
//! runs the vision encoder and ONE decoder pass over `<image>` x N + `<bos>`, and
//! keeps that pass's KV cache as an [`ImagePrefix`]. Each prompt is then one decoder
//! pass over `PROMPT\n` (the processor's prompt: [`Task`]) on top of the prefix (which
//! is never mutated): [`PaliGemma::yes_no`] compares the logits of the `yes` and `no`
//! tokens after `answer en QUESTION`, [`PaliGemma::run`] decodes greedily with the KV
//! cache and, for `detect` and `segment`, turns `<locYYYY>` tokens into boxes.
//!
//! Attention. transformers' PaliGemma attends fully over the whole prompt (image and
//! text, its prefix-LM) and causally after it. The published decoder takes a 2-D
//! `attention_mask`, which can only say which positions exist, not that earlier ones
//! see later ones: ocellus runs it as the Gemma decoder's causal attention over every
//! token, as transformers.js feeds that export (the published files themselves could
//! not be fetched here to confirm what their graph does). Causal attention is also
//! what makes the image prefix independent of the question, hence reusable. Parity is exact against transformers given that same
//! causal mask (scripts/fixtures/make_tiny_paligemma.py records it, and the prefix-LM
//! values beside it for the record). Positions are 1-indexed as in transformers; RoPE
//! sees only position differences, so the 0-indexed positions transformers.js feeds
//! give the same logits (the generator checks it: 4.8e-6 on the tiny model).
//!
//! Files: `model` ([`PaliGemma`] and the checks of a prompt), `load`, `prefix` (the
//! image prefix), `decode` (the prompts on it), `tasks` (prompts and boxes),
//! `config`, `error`.
//!
//! ```no_run
//! use ocellus::model::paligemma::{PaliGemma, PaliGemmaConfig, Task};
//! let mut cfg: PaliGemmaConfig = toml::from_str(r#"dir = "models/paligemma2-3b-pt-224""#).unwrap();
//! cfg.resolve_paths(std::path::Path::new("/var/lib/ocellus"));
//! let env = ocellus::engine::environment(&Default::default()).unwrap();
//! let (vlm, sessions) = PaliGemma::load("pali", &cfg, env).unwrap();
//! let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let prefix = vlm.prefix(&sessions, &frame, None).unwrap();
//! let door = vlm.yes_no(&sessions, &prefix, "Is the door open?").unwrap();
//! let caption = vlm.run(&sessions, &prefix, &Task::Caption, 16).unwrap();
//! let found = vlm.run(&sessions, &prefix, &Task::Detect(vec!["person".into()]), 32).unwrap();
//! println!("p(open) = {:.2}; {}; {} people", door.p_yes, caption.text, found.boxes.len());
//! ```

mod config;
mod decode;
mod error;
mod load;
mod model;
mod prefix;
mod tasks;

pub use crate::model::kv_decoder::{DecodeTimings, PrefixTimings, YesNo};
pub use config::PaliGemmaConfig;
pub use decode::Generated;
pub use error::PaliGemmaError;
pub use model::{
    MAX_NEW_TOKENS, MAX_QUESTION_BYTES, MAX_QUESTION_TOKENS, MAX_SEQUENCE, PaliGemma,
    PaliGemmaSessions,
};
pub use prefix::ImagePrefix;
pub use tasks::{Task, boxes};
