//! YOLOX COCO detector: letterbox to the model's square input (BGR, 0..255, pad 114),
//! decode the strided grid outputs, class-wise NMS; boxes come back normalised to the
//! frame.
//!
//! ```no_run
//! use ocellus::model::yolox::{Yolox, YoloxScratch};
//! use ocellus::model::YoloxConfig;
//! let cfg: YoloxConfig = toml::from_str(r#"dir = "../shared/models/yolox_nano_coco""#).unwrap();
//! let env = ocellus::engine::environment(&Default::default()).unwrap();
//! let (model, session) = Yolox::load("people", &cfg, env, &Default::default()).unwrap();
//! let engine = model.engine(session).unwrap();
//! let frame = ocellus::kit::Frame::from_rgb(640, 480, 640 * 3, vec![0; 640 * 480 * 3]);
//! let mut scratch = YoloxScratch::default();
//! let mut found = Vec::new();
//! model.detect(&mut engine.client(), &frame, &mut scratch, &mut found).unwrap();
//! ```
//!
//! Files: `model` ([`Yolox`]: loading, detecting), `preprocess` (the letterbox),
//! `decode` (the grids and NMS), `error` (what the file or its output breaks).

mod decode;
mod error;
mod model;
mod preprocess;

pub use decode::nms;
pub use error::YoloxError;
pub use model::{Yolox, YoloxScratch};
pub use preprocess::Letterbox;
