//! What the decoder-only VLM families (SmolVLM, PaliGemma, Qwen2-VL) share: an
//! embedding session and a decoder with a KV cache, run the same way whatever the
//! vision encoder before them. Each family keeps its prompts, its image prefix and
//! its position ids; this folder holds the rest.
//!
//! Files: `io` (the decoder's IO contract and its check at load), `embed` (the
//! embedding session's contract and one run), `step` (one decoder run on top of a KV
//! cache), `greedy` (the greedy loop around it, argmax), `answer` (the yes/no of a step
//! and the timings a call returns),
//! `question` (the bounds of a question before any ONNX work), `hf` (token ids, stop
//! tokens and yes/no tokens of a Hugging Face folder), `image` (image features over
//! the image tokens' embeddings), `error` (what those break).
//!
//! ```no_run
//! # use ocellus::model::qwen2vl::{Qwen2Vl, Qwen2VlConfig};
//! # let cfg: Qwen2VlConfig = toml::from_str(r#"dir = "/models/qwen2-vl""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! // Every family's load checks its sessions here, and every answer decodes here.
//! let (vlm, s) = Qwen2Vl::load("vqa", &cfg, env).unwrap();
//! let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let prefix = vlm.prefix(&s, &frame, None).unwrap();
//! let answer = vlm.answer(&s, &prefix, "What is in the picture?", 16).unwrap();
//! println!("{}", answer.text);
//! ```

mod answer;
mod embed;
mod error;
mod greedy;
mod hf;
mod image;
mod io;
mod question;
mod step;

pub use answer::{DecodeTimings, PrefixTimings, YesNo};
pub(crate) use embed::{check_embed, embed};
pub(crate) use error::KvDecoderError;
pub(crate) use greedy::greedy;
pub(crate) use hf::{ids_of, one_token, stop_ids};
pub(crate) use image::merge_image;
pub(crate) use io::{DecoderIo, PositionRule, names};
pub(crate) use question::Limits;
pub(crate) use step::{Positions, Step, StepInput};
