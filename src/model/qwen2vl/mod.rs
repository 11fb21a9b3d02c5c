//! Qwen2-VL and Qwen2.5-VL (a ViT with 2D rotary positions and a 2 x 2 patch merger,
//! Qwen2 decoder with M-RoPE) answering questions about a frame, in the onnx-community
//! ONNX layout of `onnx-community/Qwen2-VL-2B-Instruct` (`onnx/vision_encoder.onnx`
//! taking `pixel_values` and `grid_thw`, `onnx/embed_tokens.onnx`,
//! `onnx/decoder_model_merged.onnx` taking `position_ids` of shape `[3, batch, seq]`,
//! `tokenizer.json`, `preprocessor_config.json`, `config.json`,
//! `generation_config.json`). Both model types run the same path; they differ inside
//! the vision encoder only.
//!
//! Encode once, ask many: [`Qwen2Vl::prefix`] smart-resizes a frame to the processor's
//! pixel bounds (capped by `max_pixels`), cuts it into patches, runs the vision encoder
//! and ONE decoder pass over the chat template up to the image's `<|vision_end|>`, and
//! keeps that pass's KV cache and the image's `rope_delta` as an [`ImagePrefix`]. Each
//! question is then one decoder pass over `QUESTION<|im_end|>\n<|im_start|>assistant\n`
//! on top of the prefix (never mutated): [`Qwen2Vl::yes_no`] compares the logits of the
//! yes and no tokens, [`Qwen2Vl::answer`] decodes greedily with the KV cache, and
//! [`Qwen2Vl::locate_with`] parses a grounding answer's JSON boxes.
//!
//! Files: `model` ([`Qwen2Vl`], the checks of a question, the decoder run), `load`,
//! `prefix` (the image prefix and its M-RoPE positions), `decode` (the questions on
//! it), `ground` (grounding prompts and JSON boxes), `preprocess` (smart resize and
//! patches), `config`, `error`.
//!
//! ```no_run
//! use ocellus::model::qwen2vl::{Qwen2Vl, Qwen2VlConfig};
//! let mut cfg: Qwen2VlConfig = toml::from_str(r#"dir = "models/qwen2-vl-2b-instruct""#).unwrap();
//! cfg.resolve_paths(std::path::Path::new("/var/lib/ocellus"));
//! let env = ocellus::engine::environment(&Default::default()).unwrap();
//! let (vlm, sessions) = Qwen2Vl::load("vqa", &cfg, env).unwrap();
//! let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let prefix = vlm.prefix(&sessions, &frame, None).unwrap();
//! let door = vlm.yes_no(&sessions, &prefix, "Is the door open?").unwrap();
//! let what = vlm.answer(&sessions, &prefix, "What is in the picture?", 16).unwrap();
//! println!("p(open) = {:.2}; {}", door.p_yes, what.text);
//! ```

mod config;
mod decode;
mod error;
mod ground;
mod load;
mod model;
mod prefix;
mod preprocess;

pub use crate::model::kv_decoder::{DecodeTimings, PrefixTimings, YesNo};
pub use config::{DEFAULT_MAX_PIXELS, Qwen2VlConfig, Qwen2VlConfigError};
pub use decode::Generated;
pub use error::Qwen2VlError;
pub use ground::{CAPTION_PROMPT, READ_PROMPT, detect_prompt, ground_prompt, parse_boxes};
pub use model::{
    MAX_NEW_TOKENS, MAX_QUESTION_BYTES, MAX_QUESTION_TOKENS, MAX_SEQUENCE, ModelType, Qwen2Vl,
    Qwen2VlSessions,
};
pub use prefix::{ImagePrefix, PixelValues, mrope_prefix_positions};
pub use preprocess::{
    ImageSpec, ImageSpecError, PatchError, Patches, Qwen2VlImage, ResizeError, smart_resize,
};
