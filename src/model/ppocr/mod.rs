//! PP-OCR text reading (PaddleOCR's PP-OCRv4 ONNX files as RapidOCR ships them): DB
//! text detection, upright crops of the rotated boxes, an optional 0°/180°
//! classifier and CTC recognition, with RapidOCR's pre- and post-processing. Reads
//! the text lines of a frame, or of a region of it, top to bottom then left to right.
//!
//! ```no_run
//! use ocellus::model::ppocr::{Ppocr, PpocrConfig};
//! let mut cfg: PpocrConfig = toml::from_str(r#"dir = "../shared/models/ppocrv4_rapidocr""#).unwrap();
//! cfg.resolve_paths(std::path::Path::new("."));
//! let env = ocellus::engine::environment(&Default::default()).unwrap();
//! let (ocr, sessions) = Ppocr::load("panel", &cfg, env).unwrap();
//! let frame = ocellus::kit::Frame::from_rgb(640, 200, 640 * 3, vec![255; 640 * 200 * 3]);
//! let reading = ocr.read(&sessions, &frame, Some([0.0, 0.5, 1.0, 1.0])).unwrap();
//! println!("{}", reading.text());
//! ```
//!
//! Files: `model` ([`Ppocr`]: loading, reading), `detect` (DB text detection),
//! `geometry` (hulls and minimum-area rectangles), `crop` (upright crops of the rotated boxes),
//! `classify` (the 0°/180° classifier), `recognize` (CTC recognition and the
//! characters), `config`, `error` (what the files or outputs break).

mod classify;
mod config;
mod crop;
mod detect;
mod error;
mod geometry;
mod model;
mod recognize;

pub use config::PpocrConfig;
pub use crop::Crop;
pub use detect::DetParams;
pub use error::PpocrError;
pub use model::{Ppocr, PpocrSessions, Reading, RunTimes, TextLine};
pub use recognize::Charset;
