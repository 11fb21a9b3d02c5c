//! `[models.NAME]` with `family = "ppocr"`: where the PP-OCR files are and the text
//! detection thresholds (RapidOCR's defaults, except the detector's size limit, which
//! only ever shrinks a frame).
//!
//! ```
//! use ocellus::model::ppocr::PpocrConfig;
//! let mut cfg: PpocrConfig = toml::from_str(r#"dir = "models/ppocrv4""#).unwrap();
//! cfg.resolve_paths("/etc/ocellus".as_ref());
//! assert!(cfg.det.ends_with("models/ppocrv4/ch_PP-OCRv4_det_infer.onnx"));
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::engine::{Provider, default_providers};

/// PP-OCR text reader: DB detector, optional angle classifier, CTC recogniser.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpocrConfig {
    pub dir: PathBuf,
    /// Text detector (DB), relative to `dir`.
    #[serde(default = "default_det")]
    pub det: PathBuf,
    /// Text line recogniser (CTC), relative to `dir`.
    #[serde(default = "default_rec")]
    pub rec: PathBuf,
    /// 0°/180° line classifier, relative to `dir`; `None` (write `cls = false`)
    /// disables it.
    #[serde(default = "default_cls", deserialize_with = "cls_or_false")]
    pub cls: Option<PathBuf>,
    /// The recogniser's characters, one a line; when the file is absent, the rec
    /// model's metadata key `character` is used.
    #[serde(default = "default_keys")]
    pub keys: PathBuf,
    #[serde(default = "default_providers")]
    pub providers: Vec<Provider>,
    #[serde(default)]
    pub threads: Option<usize>,
    /// Longest side of the detector's input; larger frames are shrunk, smaller ones
    /// are never enlarged (both sides are then rounded to multiples of 32).
    #[serde(default = "default_max_side")]
    pub max_side: u32,
    /// Probability above which a pixel of the detector's map is text.
    #[serde(default = "default_det_threshold")]
    pub det_threshold: f32,
    /// Boxes whose mean text probability is below this are dropped.
    #[serde(default = "default_box_threshold")]
    pub box_threshold: f32,
    /// How far a box is grown: area × ratio / perimeter on each side.
    #[serde(default = "default_unclip_ratio")]
    pub unclip_ratio: f32,
    /// Lines whose recognition score is below this are dropped.
    #[serde(default = "default_min_score")]
    pub min_score: f32,
}

fn default_det() -> PathBuf {
    "ch_PP-OCRv4_det_infer.onnx".into()
}
fn default_rec() -> PathBuf {
    "ch_PP-OCRv4_rec_infer.onnx".into()
}
fn default_cls() -> Option<PathBuf> {
    Some("ch_ppocr_mobile_v2.0_cls_infer.onnx".into())
}
fn default_keys() -> PathBuf {
    "ppocrv4_rec_keys.txt".into()
}
fn default_max_side() -> u32 {
    960
}
fn default_det_threshold() -> f32 {
    0.3
}
fn default_box_threshold() -> f32 {
    0.5
}
fn default_unclip_ratio() -> f32 {
    1.6
}
fn default_min_score() -> f32 {
    0.5
}

/// `cls = "file.onnx"` or `cls = false`.
fn cls_or_false<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<PathBuf>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Cls {
        Off(bool),
        File(PathBuf),
    }
    match Cls::deserialize(d)? {
        Cls::File(f) => Ok(Some(f)),
        Cls::Off(false) => Ok(None),
        Cls::Off(true) => Ok(default_cls()),
    }
}

impl PpocrConfig {
    /// Makes `dir` absolute (against `base`) and the files relative to `dir`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let resolve = crate::kit::resolve;
        self.dir = resolve(base, &self.dir);
        for f in [&mut self.det, &mut self.rec, &mut self.keys] {
            *f = resolve(&self.dir, f);
        }
        self.cls = self.cls.as_ref().map(|f| resolve(&self.dir, f));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_and_disabling_the_classifier() {
        let cfg: PpocrConfig = toml::from_str("dir = \"m\"").unwrap();
        assert_eq!(cfg.max_side, 960);
        assert_eq!(cfg.cls, default_cls());
        let off: PpocrConfig = toml::from_str("dir = \"m\"\ncls = false").unwrap();
        assert_eq!(off.cls, None);
        assert!(toml::from_str::<PpocrConfig>("dir = \"m\"\nbogus = 1").is_err());
    }
}
