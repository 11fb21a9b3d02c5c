//! Dual encoders — CLIP, SigLIP, MobileCLIP — in the Hugging Face ONNX layout
//! (`onnx/vision_model.onnx`, `onnx/text_model.onnx`, `tokenizer.json`,
//! `preprocessor_config.json`, `config.json`; SigLIP also `onnx/model.onnx`). Images
//! and prompts are embedded separately and compared by cosine similarity; how that
//! becomes a query's score is the model's [`Scoring`] (softmax for CLIP and
//! MobileCLIP, a sigmoid per prompt for SigLIP; the rules and why are there).
//!
//! What differs between them, and where it is read from:
//!
//! | | CLIP / MobileCLIP | SigLIP |
//! |---|---|---|
//! | which | `config.json` `model_type` (`"clip"`; no file: CLIP) | `"siglip"` |
//! | image (`preprocessor_config.json`) | shortest edge, centre crop, bicubic (MobileCLIP's reference transforms: bilinear, no normalisation) | `size.height` × `size.width`, no crop, `resample` (2: bilinear), mean = std = 0.5 |
//! | text input | unpadded, cut to 77 tokens (padded only for a fixed-length model) | padded to 64 (`max_position_embeddings`) with the pad token, no mask |
//! | outputs | `image_embeds`, `text_embeds` | `pooler_output` of each tower |
//! | scoring | `logit_scale` × cos (config, default 100), softmax | `sigmoid(logit_scale × cos + logit_bias)`, both read from `onnx/model.onnx` (or config) |
//!
//! Files: `dual_encoder` ([`Clip`]: loading, the text input and the output names
//! taken from the sessions, embedding), `embedding`, `preprocess` (images), `scoring`
//! (logits to scores), `family` (config.json), `siglip` and `onnx_graph` (SigLIP's
//! scalars in the combined export), `error` (what the files or outputs break).
//!
//! ```no_run
//! use ocellus::model::{ClipConfig, clip::{Clip, ClipImage}};
//! let cfg: ClipConfig = toml::from_str(r#"dir = "models/clip-vit-b32""#).unwrap();
//! let env = ocellus::engine::environment(&Default::default()).unwrap();
//! let (clip, sessions) = Clip::load("scene", &cfg, env).unwrap();
//! let engine = clip.engine(&sessions, &Default::default()).unwrap();
//! let yes = clip.embed_text(&sessions, "a red machine light").unwrap();
//! let no = clip.embed_text(&sessions, "a green machine light").unwrap();
//! let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let image = clip.embed_image(&mut engine.client(), &frame, None, &mut ClipImage::new()).unwrap();
//! let mut logits = clip.logits(&image, &[&yes, &no]);
//! println!("p(red) = {}", clip.scoring().yes_no(&mut logits, 1));
//! ```

mod dual_encoder;
mod embedding;
mod error;
mod family;
mod onnx_graph;
mod preprocess;
mod scoring;
mod siglip;

pub use dual_encoder::{Clip, ClipSessions};
pub use embedding::{Embedding, embed_on, normalise};
pub use error::ClipError;
pub use family::FamilyError;
pub use onnx_graph::GraphError;
pub use preprocess::{ClipImage, ImageSpec, ImageSpecError, Resize};
pub use scoring::{Scoring, dot, logits, sigmoid, softmax, softmax_in_place};
pub use siglip::{LogitParamsError, ParamsNotFound};
