//! Dual-encoder image preprocessing, as the Hugging Face image processors do it with
//! Pillow (the "slow" processors), driven by `preprocessor_config.json`:
//!
//! - `CLIPImageProcessor` (CLIP, and MobileCLIP's exports): resize the shortest edge,
//!   centre-crop, rescale, normalise (MobileCLIP: `do_normalize = false`);
//! - `SiglipImageProcessor`: resize to `size.height` × `size.width`, no crop, rescale,
//!   normalise (mean = std = 0.5).
//!
//! The resize is Pillow's (`resample`: 1 Lanczos, 2 bilinear, 3 bicubic) and the
//! per-channel arithmetic is the processors' own: `f32(byte as f64 * rescale_factor)`,
//! then `(x - mean) / std` in f32. Both are exact, so the tensor matches the
//! processor's `pixel_values` bit for bit; the arithmetic is a table per channel.
//!
//! ```
//! use ocellus::model::clip::{ImageSpec, Resize};
//! let dir = tempfile::tempdir().unwrap();
//! let path = dir.path().join("preprocessor_config.json");
//! std::fs::write(&path, r#"{"image_processor_type": "SiglipImageProcessor",
//!     "size": {"height": 224, "width": 224}, "resample": 2,
//!     "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}"#).unwrap();
//! let spec = ImageSpec::from_file(&path).unwrap();
//! assert_eq!(spec.resize, Resize::Exact { width: 224, height: 224 });
//! assert_eq!(spec.crop, None);
//! assert_eq!(spec.value(0, 255), 1.0);
//! ```

use std::path::Path;

use serde_json::Value;

use crate::engine::{EngineError, Filter, PillowResize, Rect, RgbView, Window};
use crate::model::StepTimes;
use crate::model::preprocessor::{self, PreprocessorError};

/// CLIPImageProcessor's defaults (OPENAI_CLIP_MEAN / OPENAI_CLIP_STD), as the JSON
/// numbers (f64) that become f32.
const CLIP_MEAN: [f64; 3] = [0.481_454_66, 0.457_827_5, 0.408_210_73];
const CLIP_STD: [f64; 3] = [0.268_629_54, 0.261_302_58, 0.275_777_11];
/// SiglipImageProcessor's defaults (IMAGENET_STANDARD_MEAN / _STD).
const HALF: [f32; 3] = [0.5; 3];

/// What `preprocessor_config.json` asks for that is malformed or not supported.
#[derive(Debug, thiserror::Error)]
pub enum ImageSpecError {
    #[error(transparent)]
    File(#[from] PreprocessorError),
    #[error("do_resize = false is not supported")]
    NoResize,
    /// `size.shortest_edge`, `size.width`, `size.height`, `size` or `crop_size` is
    /// not a positive number.
    #[error("{0} is malformed")]
    Malformed(&'static str),
    #[error("size needs shortest_edge, or height and width")]
    SizeKeys,
    #[error("crop_size needs height and width")]
    CropKeys,
    #[error("resample {0} is not supported (1 lanczos, 2 bilinear, 3 bicubic)")]
    Resample(Value),
    #[error("image_std has a zero")]
    ZeroStd,
}

/// How the image is resized before any crop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resize {
    /// `size: {"shortest_edge": n}` (or a plain number): the short side to `n`, the
    /// long side `int(n * long / short)`, as transformers computes it.
    ShortestEdge(u32),
    /// `size: {"height": h, "width": w}`: exactly `w` × `h`, aspect ratio not kept.
    Exact { width: u32, height: u32 },
}

/// What `preprocessor_config.json` asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    pub resize: Resize,
    /// Centre crop `(width, height)` after the resize; `None` without one.
    pub crop: Option<(u32, u32)>,
    pub filter: Filter,
    /// `rescale_factor` (1 with `do_rescale = false`).
    pub rescale: f64,
    /// `(image_mean, image_std)`; `None` with `do_normalize = false`.
    pub normalize: Option<([f32; 3], [f32; 3])>,
    table: PixelTable,
}

/// The value of each byte per channel.
#[derive(Clone, PartialEq)]
struct PixelTable(Box<[[f32; 256]; 3]>);

impl std::fmt::Debug for PixelTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("PixelTable")
    }
}

impl ImageSpec {
    /// A spec with the processors' arithmetic table for these numbers.
    pub fn new(
        resize: Resize,
        crop: Option<(u32, u32)>,
        filter: Filter,
        rescale: f64,
        normalize: Option<([f32; 3], [f32; 3])>,
    ) -> Self {
        let mut table = Box::new([[0f32; 256]; 3]);
        for (c, row) in table.iter_mut().enumerate() {
            for (byte, v) in row.iter_mut().enumerate() {
                // BaseImageProcessor.rescale: float64 product, cast to float32;
                // normalize: float32 mean and std, (x - mean) / std.
                let x = (byte as f64 * rescale) as f32;
                *v = match normalize {
                    Some((mean, std)) => (x - mean[c]) / std[c],
                    None => x,
                };
            }
        }
        Self {
            resize,
            crop,
            filter,
            rescale,
            normalize,
            table: PixelTable(table),
        }
    }

    /// Reads a Hugging Face `preprocessor_config.json`. Keys it does not set take the
    /// defaults of the processor class it names (`image_processor_type`), CLIP's when
    /// it names none.
    pub fn from_file(path: &Path) -> Result<Self, ImageSpecError> {
        Self::from_json(&preprocessor::read(path)?)
    }

    pub fn from_json(v: &Value) -> Result<Self, ImageSpecError> {
        let class = v["image_processor_type"]
            .as_str()
            .or_else(|| v["feature_extractor_type"].as_str())
            .unwrap_or("CLIPImageProcessor");
        let siglip = class.starts_with("Siglip");
        use ImageSpecError::Malformed;
        let num = |v: &Value| {
            v.as_u64()
                .filter(|&n| n > 0)
                .and_then(|n| u32::try_from(n).ok())
        };
        if v["do_resize"] == Value::Bool(false) {
            return Err(ImageSpecError::NoResize);
        }
        let resize = match &v["size"] {
            Value::Null if siglip => Resize::Exact {
                width: 224,
                height: 224,
            },
            Value::Null => Resize::ShortestEdge(224),
            Value::Object(m) => match (m.get("shortest_edge"), m.get("height"), m.get("width")) {
                (Some(e), _, _) => {
                    Resize::ShortestEdge(num(e).ok_or(Malformed("size.shortest_edge"))?)
                }
                (None, Some(h), Some(w)) => Resize::Exact {
                    width: num(w).ok_or(Malformed("size.width"))?,
                    height: num(h).ok_or(Malformed("size.height"))?,
                },
                _ => return Err(ImageSpecError::SizeKeys),
            },
            other => Resize::ShortestEdge(num(other).ok_or(Malformed("size"))?),
        };
        // SiglipImageProcessor has no crop step; CLIPImageProcessor crops by default.
        let do_crop = !siglip && v["do_center_crop"] != Value::Bool(false);
        let crop = if !do_crop {
            None
        } else {
            Some(match &v["crop_size"] {
                Value::Object(m) => m
                    .get("width")
                    .and_then(num)
                    .zip(m.get("height").and_then(num))
                    .ok_or(ImageSpecError::CropKeys)?,
                Value::Null => match resize {
                    Resize::ShortestEdge(e) => (e, e),
                    Resize::Exact { width, height } => (width, height),
                },
                other => num(other).map(|s| (s, s)).ok_or(Malformed("crop_size"))?,
            })
        };
        let filter = match &v["resample"] {
            Value::Null => Filter::Bicubic,
            r => r
                .as_u64()
                .and_then(Filter::from_pil)
                .ok_or_else(|| ImageSpecError::Resample(r.clone()))?,
        };
        let rescale = if v["do_rescale"] == Value::Bool(false) {
            1.0
        } else {
            preprocessor::rescale(v)
        };
        let normalize = if v["do_normalize"] == Value::Bool(false) {
            None
        } else {
            let triple = |key: &str, default: [f32; 3]| {
                preprocessor::triple(v, key).map(|t| t.unwrap_or(default))
            };
            let (mean, std) = if siglip {
                (HALF, HALF)
            } else {
                (CLIP_MEAN.map(|x| x as f32), CLIP_STD.map(|x| x as f32))
            };
            let std = triple("image_std", std)?;
            if std.contains(&0.0) {
                return Err(ImageSpecError::ZeroStd);
            }
            Some((triple("image_mean", mean)?, std))
        };
        Ok(Self::new(resize, crop, filter, rescale, normalize))
    }

    /// The tensor value of `byte` in channel `c` (0 red, 1 green, 2 blue).
    pub fn value(&self, c: usize, byte: u8) -> f32 {
        self.table.0[c][usize::from(byte)]
    }

    /// `(width, height)` of every tensor, when that does not depend on the image.
    pub fn output_size(&self) -> Option<(u32, u32)> {
        match (self.crop, self.resize) {
            (Some(c), _) => Some(c),
            (None, Resize::Exact { width, height }) => Some((width, height)),
            (None, Resize::ShortestEdge(_)) => None,
        }
    }

    /// `(width, height)` of the resized image for a `w` × `h` source, and the window
    /// of it that becomes the tensor.
    pub fn geometry(&self, w: f64, h: f64) -> ((u32, u32), Window) {
        let (rw, rh) = match self.resize {
            Resize::Exact { width, height } => (width, height),
            Resize::ShortestEdge(edge) => {
                // transformers: short side to `edge`, long side int(edge * long / short).
                let edge = f64::from(edge);
                if w <= h {
                    (edge as u32, (edge * h / w) as u32)
                } else {
                    ((edge * w / h) as u32, edge as u32)
                }
            }
        };
        let Some((cw, ch)) = self.crop else {
            return (
                (rw, rh),
                Window {
                    x: 0,
                    y: 0,
                    w: rw,
                    h: rh,
                },
            );
        };
        let (rw, rh) = (rw.max(cw), rh.max(ch));
        // transformers' centre crop: top = (h - crop_h) // 2, left = (w - crop_w) // 2.
        let window = Window {
            x: (rw - cw) / 2,
            y: (rh - ch) / 2,
            w: cw,
            h: ch,
        };
        ((rw, rh), window)
    }
}

/// Reused buffers for one camera: the resizer and its output.
pub struct ClipImage {
    resize: PillowResize,
    /// The tensor of [`ClipImage::fill`] (inspection and tests).
    pixels: Vec<f32>,
    /// How long the last call's steps took.
    pub stages: StepTimes,
}

impl ClipImage {
    pub fn new() -> Self {
        Self {
            resize: PillowResize::new(Filter::Bicubic),
            pixels: Vec::new(),
            stages: StepTimes::default(),
        }
    }

    /// The `[3, H, W]` tensor of `crop` of `src`.
    pub fn fill(
        &mut self,
        src: &RgbView<'_>,
        crop: Rect,
        spec: &ImageSpec,
    ) -> Result<&[f32], EngineError> {
        let mut pixels = std::mem::take(&mut self.pixels);
        let (w, h) = (crop.w.round().max(1.0), crop.h.round().max(1.0));
        let (_, window) = spec.geometry(w, h);
        pixels.resize(3 * window.w as usize * window.h as usize, 0.0);
        let filled = self.fill_into(src, crop, spec, &mut pixels);
        self.pixels = pixels;
        filled.map(|()| self.pixels.as_slice())
    }

    /// Writes the `[3, H, W]` tensor of `crop` of `src` into `tensor` (exactly that
    /// size: usually the engine's own input tensor).
    pub fn fill_into(
        &mut self,
        src: &RgbView<'_>,
        crop: Rect,
        spec: &ImageSpec,
        tensor: &mut [f32],
    ) -> Result<(), EngineError> {
        let (w, h) = (crop.w.round().max(1.0), crop.h.round().max(1.0));
        let ((rw, rh), window) = spec.geometry(w, h);
        self.resize.set_filter(spec.filter);
        let rgb = self.resize.run(src, crop, rw, rh, window)?;
        let (cw, ch) = (window.w as usize, window.h as usize);
        let plane = cw * ch;
        if tensor.len() != 3 * plane {
            return Err(EngineError::Resize(format!(
                "a {cw}x{ch} image needs {} values, the tensor has {}",
                3 * plane,
                tensor.len()
            )));
        }
        let table = &spec.table.0;
        for y in 0..ch {
            let row = &rgb[y * cw * 3..][..cw * 3];
            for (x, px) in row.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    tensor[c * plane + y * cw + x] = table[c][usize::from(px[c])];
                }
            }
        }
        Ok(())
    }
}

impl Default for ClipImage {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn spec(v: Value) -> ImageSpec {
        ImageSpec::from_json(&v).unwrap()
    }

    #[test]
    fn clip_siglip_and_mobileclip_forms() {
        // openai/clip-vit-base-patch32
        let clip = spec(
            json!({"crop_size": {"height": 224, "width": 224}, "do_center_crop": true,
            "image_mean": [0.48145466, 0.4578275, 0.40821073], "image_processor_type": "CLIPImageProcessor",
            "image_std": [0.26862954, 0.26130258, 0.27577711], "resample": 3,
            "rescale_factor": 0.00392156862745098, "size": {"shortest_edge": 224}}),
        );
        assert_eq!(clip.resize, Resize::ShortestEdge(224));
        assert_eq!(
            (clip.crop, clip.filter),
            (Some((224, 224)), Filter::Bicubic)
        );
        assert_eq!(
            clip.normalize,
            Some((CLIP_MEAN.map(|x| x as f32), CLIP_STD.map(|x| x as f32)))
        );
        assert_eq!(
            clip.geometry(451.0, 300.0),
            (
                (336, 224),
                Window {
                    x: 56,
                    y: 0,
                    w: 224,
                    h: 224
                }
            )
        );
        // SigLIP: exact size, no crop even where a crop is named, bilinear.
        let siglip = spec(
            json!({"image_processor_type": "SiglipImageProcessor", "do_center_crop": true,
            "crop_size": 200, "size": {"height": 224, "width": 224}, "resample": 2,
            "image_mean": [0.5, 0.5, 0.5], "image_std": [0.5, 0.5, 0.5]}),
        );
        assert_eq!((siglip.crop, siglip.filter), (None, Filter::Bilinear));
        assert_eq!(
            siglip.geometry(451.0, 300.0),
            (
                (224, 224),
                Window {
                    x: 0,
                    y: 0,
                    w: 224,
                    h: 224
                }
            )
        );
        assert_eq!((siglip.value(0, 0), siglip.value(1, 255)), (-1.0, 1.0));
        // MobileCLIP's form: plain numbers, no normalisation.
        let mobile = spec(
            json!({"crop_size": 256, "do_center_crop": true, "do_normalize": false,
            "feature_extractor_type": "CLIPFeatureExtractor", "resample": 2, "size": 256}),
        );
        assert_eq!(
            (mobile.resize, mobile.crop),
            (Resize::ShortestEdge(256), Some((256, 256)))
        );
        assert_eq!((mobile.normalize, mobile.filter), (None, Filter::Bilinear));
        assert_eq!(mobile.value(2, 255), 1.0);
        assert_eq!(mobile.value(0, 51), (51.0f64 / 255.0) as f32);
        // Class defaults where keys are missing.
        let bare = spec(json!({"image_processor_type": "SiglipImageProcessor"}));
        assert_eq!(
            bare.resize,
            Resize::Exact {
                width: 224,
                height: 224
            }
        );
        assert_eq!(
            (bare.filter, bare.normalize),
            (Filter::Bicubic, Some((HALF, HALF)))
        );
        let no_rescale = spec(json!({"do_rescale": false, "do_normalize": false}));
        assert_eq!(no_rescale.value(0, 200), 200.0);
    }

    #[test]
    fn the_table_is_the_processors_arithmetic() {
        let s = spec(json!({"image_mean": [0.48145466, 0.4578275, 0.40821073],
            "image_std": [0.26862954, 0.26130258, 0.27577711], "rescale_factor": 0.00392156862745098}));
        for byte in 0..=255u8 {
            let x = (f64::from(byte) * 0.003_921_568_627_450_98) as f32;
            assert_eq!(
                s.value(1, byte),
                (x - 0.457_827_5f32) / (0.261_302_58f64 as f32)
            );
        }
    }

    #[test]
    fn unsupported_forms_say_what_is_wrong() {
        let err = |v: Value| ImageSpec::from_json(&v).unwrap_err().to_string();
        assert_eq!(
            err(json!({"do_resize": false})),
            "do_resize = false is not supported"
        );
        assert_eq!(
            err(json!({"size": {"longest_edge": 3}})),
            "size needs shortest_edge, or height and width"
        );
        assert_eq!(
            err(json!({"resample": 0})),
            "resample 0 is not supported (1 lanczos, 2 bilinear, 3 bicubic)"
        );
        assert_eq!(
            err(json!({"image_std": [0.5, 0.0, 0.5]})),
            "image_std has a zero"
        );
    }
}
