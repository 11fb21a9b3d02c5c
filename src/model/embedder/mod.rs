//! Image embedders (`family = "embedder"`): any ONNX image model with an embedding
//! output — the ImageNet MobileNetV2 in `../shared/models/mobilenetv2_int8_imagenet`,
//! a CLIP or SigLIP vision tower, a DINOv2 export — read from a folder with the model
//! file and a Hugging Face `preprocessor_config.json` (the same reader the dual
//! encoders use). A frame region becomes one unit-length vector, which taught queries
//! ([`crate::teach`]) score with a probe trained on a few labelled frames.
//!
//! Which file: `file` when set; else the folder's only `.onnx`; else, of several, the
//! one whose name says `u8u8` and `embed` — the MobileNetV2 folder holds three, and
//! its MANIFEST names `-u8u8-embed` the portable default because the int8 (U8S8)
//! kernels saturate on x86 CPUs without VNNI — then any `embed` file.
//!
//! ```no_run
//! use ocellus::model::embedder::{Embedder, EmbedderConfig};
//! use ocellus::model::clip::ClipImage;
//! let cfg: EmbedderConfig = toml::from_str(r#"dir = "../shared/models/mobilenetv2_int8_imagenet""#).unwrap();
//! let env = ocellus::engine::environment(&Default::default()).unwrap();
//! let (model, session) = Embedder::load("look", &cfg, env).unwrap();
//! let engine = model.engine(&session, &Default::default()).unwrap();
//! let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let e = model.embed_image(&mut engine.client(), &frame, None, &mut ClipImage::new()).unwrap();
//! assert_eq!(e.len(), 1280);
//! ```

mod config;
mod error;
mod model;

pub use config::EmbedderConfig;
pub use error::EmbedderError;
pub use model::Embedder;
