//! Qwen2-VL image preprocessing, as the slow `Qwen2VLImageProcessor` does it:
//! [`smart_resize`] to multiples of `patch_size * merge_size` within
//! `[min_pixels, max_pixels]`, one Pillow resize (BICUBIC) on 8-bit RGB, rescale (in
//! f64, stored as f32) and normalise, the frame repeated `temporal_patch_size` times,
//! then cut into flattened patches in the merger's order: merged block by block
//! (raster), the `merge x merge` patches of a block in raster order, each patch
//! `[channel, time, row, column]`. The vision encoder takes these rows with the grid
//! `[t = 1, rows, columns]` of patches.
//!
//! ```
//! use ocellus::engine::{Rect, RgbView};
//! use ocellus::model::qwen2vl::{ImageSpec, Qwen2VlImage};
//! let spec = ImageSpec::default();
//! let pixels = vec![255u8; 60 * 40 * 3];
//! let view = RgbView::new(&pixels, 60, 40, 60 * 3).unwrap();
//! let whole = Rect { x: 0.0, y: 0.0, w: 60.0, h: 40.0 };
//! let mut image = Qwen2VlImage::default();
//! let patches = image.fill(&view, whole, &spec).unwrap();
//! // 60 x 40 rounds to 56 x 28, under min_pixels (3136): scaled up to 84 x 56.
//! assert_eq!(patches.resized, (84, 56));
//! assert_eq!(patches.grid, [1, 4, 6]); // patches of 14 px
//! assert_eq!(patches.pixels.len(), 24 * 3 * 2 * 14 * 14);
//! ```

use std::path::Path;

use serde_json::Value;

use crate::engine::{EngineError, Filter, PillowResize, Rect, RgbView, Window};
use crate::model::preprocessor::{self, PreprocessorError};

/// What `preprocessor_config.json` asks for that is malformed or not supported.
#[derive(Debug, thiserror::Error)]
pub enum ImageSpecError {
    #[error(transparent)]
    File(#[from] PreprocessorError),
    #[error("{0} is missing or out of range")]
    Number(&'static str),
    #[error("min_pixels {min} is above max_pixels {max}")]
    Pixels { min: u32, max: u32 },
    #[error("do_resize = false is not supported")]
    NoResize,
    #[error("resample {0} is not supported (BICUBIC = 3, BILINEAR = 2, LANCZOS = 1)")]
    Resample(Value),
}

/// Why an image cannot be resized the processor's way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ResizeError {
    #[error("absolute aspect ratio must be smaller than 200, got {w} x {h}")]
    Aspect { w: u32, h: u32 },
}

/// The numbers of `preprocessor_config.json` that matter.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    pub patch: u32,
    pub merge: u32,
    pub temporal: u32,
    pub min_pixels: u32,
    pub max_pixels: u32,
    pub filter: Filter,
    pub rescale: f64,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for ImageSpec {
    /// Qwen2-VL-2B-Instruct's values, with max_pixels at ocellus' default cap.
    fn default() -> Self {
        Self {
            patch: 14,
            merge: 2,
            temporal: 2,
            min_pixels: 56 * 56,
            max_pixels: super::config::DEFAULT_MAX_PIXELS,
            filter: Filter::Bicubic,
            rescale: 1.0 / 255.0,
            mean: [0.481_454_66, 0.457_827_5, 0.408_210_73],
            std: [0.268_629_54, 0.261_302_6, 0.275_777_1],
        }
    }
}

impl ImageSpec {
    /// Reads a Hugging Face `preprocessor_config.json` of a `Qwen2VLImageProcessor`
    /// (`size.shortest_edge`/`longest_edge` or `min_pixels`/`max_pixels`, the way
    /// transformers reads them: `size` first).
    pub fn from_file(path: &Path) -> Result<Self, ImageSpecError> {
        let v = preprocessor::read(path)?;
        let num = |key: &'static str, default: u64| {
            match &v[key] {
                Value::Null => Some(default),
                x => x.as_u64(),
            }
            .filter(|&n| n > 0 && n <= u64::from(u32::MAX))
            .map(|n| n as u32)
            .ok_or(ImageSpecError::Number(key))
        };
        let pixels =
            |size_key: &str, key: &'static str, default: u64| match v["size"][size_key].as_u64() {
                Some(n) if n > 0 && n <= u64::from(u32::MAX) => Ok(n as u32),
                Some(_) => Err(ImageSpecError::Number(key)),
                None => num(key, default),
            };
        if v["do_resize"] == Value::Bool(false) {
            return Err(ImageSpecError::NoResize);
        }
        let filter = match &v["resample"] {
            Value::Null => Filter::Bicubic,
            r => r
                .as_u64()
                .and_then(Filter::from_pil)
                .ok_or_else(|| ImageSpecError::Resample(r.clone()))?,
        };
        let triple = |key: &str, default: [f32; 3]| -> Result<[f32; 3], ImageSpecError> {
            Ok(preprocessor::triple(&v, key)?.unwrap_or(default))
        };
        let d = Self::default();
        let mut spec = Self {
            patch: num("patch_size", 14)?,
            merge: num("merge_size", 2)?,
            temporal: num("temporal_patch_size", 2)?,
            min_pixels: pixels("shortest_edge", "min_pixels", 56 * 56)?,
            max_pixels: pixels("longest_edge", "max_pixels", 28 * 28 * 1280)?,
            filter,
            rescale: preprocessor::rescale(&v),
            mean: triple("image_mean", d.mean)?,
            std: triple("image_std", d.std)?,
        };
        if spec.min_pixels > spec.max_pixels {
            return Err(ImageSpecError::Pixels {
                min: spec.min_pixels,
                max: spec.max_pixels,
            });
        }
        if v["do_rescale"] == Value::Bool(false) {
            spec.rescale = 1.0;
        }
        if v["do_normalize"] == Value::Bool(false) {
            spec.mean = [0.0; 3];
            spec.std = [1.0; 3];
        }
        Ok(spec)
    }

    /// The side of a merged token in pixels (`patch * merge`, 28 for Qwen2-VL).
    pub fn factor(&self) -> u32 {
        self.patch * self.merge
    }

    /// Most image tokens (after the merger) an image may have.
    pub fn max_tokens(&self) -> usize {
        let f = u64::from(self.factor());
        (u64::from(self.max_pixels) / (f * f)).max(1) as usize
    }

    /// The resized `(width, height)` of a `w`x`h` image.
    pub fn resized(&self, w: u32, h: u32) -> Result<(u32, u32), ResizeError> {
        let (rh, rw) = smart_resize(h, w, self.factor(), self.min_pixels, self.max_pixels)?;
        Ok((rw, rh))
    }
}

/// transformers' `smart_resize(height, width, factor, min_pixels, max_pixels)`:
/// `(height, width)`, both multiples of `factor`, their product within the bounds
/// (Python's `round` rounds half to even).
pub fn smart_resize(
    height: u32,
    width: u32,
    factor: u32,
    min_pixels: u32,
    max_pixels: u32,
) -> Result<(u32, u32), ResizeError> {
    let (h, w, f) = (f64::from(height), f64::from(width), f64::from(factor));
    if h.max(w) / h.min(w).max(1.0) > 200.0 {
        return Err(ResizeError::Aspect {
            w: width,
            h: height,
        });
    }
    let mut h_bar = (h / f).round_ties_even() * f;
    let mut w_bar = (w / f).round_ties_even() * f;
    if h_bar * w_bar > f64::from(max_pixels) {
        let beta = (h * w / f64::from(max_pixels)).sqrt();
        h_bar = f.max((h / beta / f).floor() * f);
        w_bar = f.max((w / beta / f).floor() * f);
    } else if h_bar * w_bar < f64::from(min_pixels) {
        let beta = (f64::from(min_pixels) / (h * w)).sqrt();
        h_bar = (h * beta / f).ceil() * f;
        w_bar = (w * beta / f).ceil() * f;
    }
    Ok((h_bar as u32, w_bar as u32))
}

/// One image's patches for the vision encoder.
pub struct Patches<'a> {
    /// `[patches, 3 * temporal * patch * patch]`, flattened.
    pub pixels: &'a [f32],
    /// `[t, rows, columns]` of patches.
    pub grid: [i64; 3],
    /// The resized `(width, height)` in pixels: what Qwen's boxes are in.
    pub resized: (u32, u32),
}

/// Reused buffers: the resizer, the normalised planes and the patches.
pub struct Qwen2VlImage {
    resize: PillowResize,
    planes: Vec<f32>,
    patches: Vec<f32>,
}

impl Default for Qwen2VlImage {
    fn default() -> Self {
        Self {
            resize: PillowResize::new(Filter::Bicubic),
            planes: Vec::new(),
            patches: Vec::new(),
        }
    }
}

/// Why an image could not be made into patches.
#[derive(Debug, thiserror::Error)]
pub enum PatchError {
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error(transparent)]
    Resize(#[from] ResizeError),
}

impl Qwen2VlImage {
    /// The patches of `crop` of `src`.
    pub fn fill(
        &mut self,
        src: &RgbView<'_>,
        crop: Rect,
        spec: &ImageSpec,
    ) -> Result<Patches<'_>, PatchError> {
        let (w, h) = (
            crop.w.round().max(1.0) as u32,
            crop.h.round().max(1.0) as u32,
        );
        let (rw, rh) = spec.resized(w, h)?;
        if self.resize.filter() != spec.filter {
            self.resize = PillowResize::new(spec.filter);
        }
        let all = Window {
            x: 0,
            y: 0,
            w: rw,
            h: rh,
        };
        let rgb = self.resize.run(src, crop, rw, rh, all)?;
        let plane = (rw * rh) as usize;
        self.planes.resize(3 * plane, 0.0);
        // transformers: (f32(px as f64 * rescale) - mean) / std, in f32.
        let table: [[f32; 256]; 3] = std::array::from_fn(|c| {
            std::array::from_fn(|px| {
                ((px as f64 * spec.rescale) as f32 - spec.mean[c]) / spec.std[c]
            })
        });
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                self.planes[c * plane + i] = table[c][usize::from(px[c])];
            }
        }
        let (p, m, t) = (
            spec.patch as usize,
            spec.merge as usize,
            spec.temporal as usize,
        );
        let (gh, gw) = (rh as usize / p, rw as usize / p);
        let row_len = 3 * t * p * p;
        self.patches.clear();
        self.patches.reserve(gh * gw * row_len);
        for bh in 0..gh / m {
            for bw in 0..gw / m {
                for mh in 0..m {
                    for mw in 0..m {
                        let (py, px) = ((bh * m + mh) * p, (bw * m + mw) * p);
                        for c in 0..3 {
                            for _ in 0..t {
                                for y in 0..p {
                                    let start = c * plane + (py + y) * rw as usize + px;
                                    self.patches
                                        .extend_from_slice(&self.planes[start..start + p]);
                                }
                            }
                        }
                    }
                }
            }
        }
        Ok(Patches {
            pixels: &self.patches,
            grid: [1, gh as i64, gw as i64],
            resized: (rw, rh),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smart_resize_rounds_half_to_even_and_keeps_the_bounds() {
        // 42 / 28 = 1.5 -> 2, 70 / 28 = 2.5 -> 2 (Python's round).
        assert_eq!(smart_resize(42, 70, 28, 784, 1 << 30), Ok((56, 56)));
        assert_eq!(smart_resize(512, 512, 28, 1568, 7056), Ok((84, 84)));
        assert_eq!(smart_resize(300, 451, 28, 1568, 7056), Ok((56, 84)));
        // Too small: scaled up to min_pixels.
        assert_eq!(smart_resize(29, 29, 28, 3136, 1 << 30), Ok((56, 56)));
        assert!(smart_resize(3000, 10, 28, 3136, 1 << 30).is_err());
    }
}
