//! SmolVLM image preprocessing, as the slow `Idefics3ImageProcessor` does it with
//! `do_image_splitting = False`: the longest edge to `size.longest_edge` (the other
//! edge `int()`-truncated and rounded up to even, both capped at 4096), then the result
//! to a `max_image_size.longest_edge` square, both with Pillow (LANCZOS) on 8-bit RGB;
//! then rescale (in f64, stored as f32) and normalise, planar RGB.
//!
//! ocellus feeds only this global view: one vision-encoder run per frame, which keeps
//! edge boxes cheap. A `do_image_splitting = true` in the config (the published
//! SmolVLM default) is read but not followed; the prompt then carries the global image
//! only, exactly as the processor builds it with splitting off.
//!
//! ```
//! use ocellus::engine::{Rect, RgbView};
//! use ocellus::model::smolvlm::{ImageSpec, SmolVlmImage};
//! let spec = ImageSpec { longest_edge: 128, square: 64, ..ImageSpec::default() };
//! let pixels = vec![255u8; 40 * 30 * 3];
//! let view = RgbView::new(&pixels, 40, 30, 40 * 3).unwrap();
//! let whole = Rect { x: 0.0, y: 0.0, w: 40.0, h: 30.0 };
//! let mut image = SmolVlmImage::new(&spec);
//! let tensor = image.fill(&view, whole, &spec).unwrap();
//! assert_eq!(tensor.len(), 3 * 64 * 64);
//! assert!(tensor.iter().all(|&v| v == 1.0));
//! ```

use std::path::Path;

use serde_json::Value;

use crate::engine::{EngineError, Filter, PillowResize, Rect, RgbView, Window};
use crate::model::preprocessor::{self, PreprocessorError};

/// transformers' `MAX_IMAGE_SIZE` for Idefics3.
const MAX_IMAGE_SIZE: u32 = 4096;

/// What `preprocessor_config.json` asks for that is malformed or not supported.
#[derive(Debug, thiserror::Error)]
pub enum ImageSpecError {
    #[error(transparent)]
    File(#[from] PreprocessorError),
    /// `size.longest_edge` or `max_image_size.longest_edge`.
    #[error("{0}.longest_edge is missing or out of range")]
    Edge(&'static str),
    #[error("do_resize = false is not supported")]
    NoResize,
    #[error("resample {0} is not supported (LANCZOS = 1, BICUBIC = 3)")]
    Resample(Value),
}

/// The numbers of `preprocessor_config.json` that matter.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    /// `size.longest_edge`: the first resize.
    pub longest_edge: u32,
    /// `max_image_size.longest_edge`: the side of the square the encoder sees.
    pub square: u32,
    pub filter: Filter,
    pub rescale: f64,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Default for ImageSpec {
    /// SmolVLM-256M-Instruct's values.
    fn default() -> Self {
        Self {
            longest_edge: 2048,
            square: 512,
            filter: Filter::Lanczos,
            rescale: 1.0 / 255.0,
            mean: [0.5; 3],
            std: [0.5; 3],
        }
    }
}

impl ImageSpec {
    /// Reads a Hugging Face `preprocessor_config.json` of an `Idefics3ImageProcessor`.
    pub fn from_file(path: &Path) -> Result<Self, ImageSpecError> {
        let v = preprocessor::read(path)?;
        let edge = |key: &'static str| {
            v[key]["longest_edge"]
                .as_u64()
                .filter(|&e| e > 0 && e <= u64::from(MAX_IMAGE_SIZE))
                .map(|e| e as u32)
                .ok_or(ImageSpecError::Edge(key))
        };
        let triple = |key: &str| -> Result<[f32; 3], ImageSpecError> {
            Ok(preprocessor::triple(&v, key)?.unwrap_or([0.5; 3]))
        };
        if v["do_resize"] == Value::Bool(false) {
            return Err(ImageSpecError::NoResize);
        }
        let filter = match &v["resample"] {
            Value::Null => Filter::Lanczos,
            r => r
                .as_u64()
                .and_then(Filter::from_pil)
                .ok_or_else(|| ImageSpecError::Resample(r.clone()))?,
        };
        let mut spec = Self {
            longest_edge: edge("size")?,
            square: edge("max_image_size")?,
            filter,
            rescale: preprocessor::rescale(&v),
            mean: triple("image_mean")?,
            std: triple("image_std")?,
        };
        if v["do_rescale"] == Value::Bool(false) {
            spec.rescale = 1.0;
        }
        if v["do_normalize"] == Value::Bool(false) {
            spec.mean = [0.0; 3];
            spec.std = [1.0; 3];
        }
        Ok(spec)
    }

    /// The size (width, height) of the first resize of a `w`x`h` image.
    pub fn first_size(&self, w: u32, h: u32) -> (u32, u32) {
        let (w, h) = rescale_to_max_len(w, h, self.longest_edge);
        scale_below(w, h, MAX_IMAGE_SIZE)
    }
}

/// transformers' `_resize_output_size_rescale_to_max_len` (min_len 1), in (w, h).
fn rescale_to_max_len(w: u32, h: u32, max_len: u32) -> (u32, u32) {
    let aspect = f64::from(w) / f64::from(h);
    let (w, h) = if w >= h {
        let mut h = (f64::from(max_len) / aspect) as u32;
        h += h % 2;
        (max_len, h)
    } else {
        let mut w = (f64::from(max_len) * aspect) as u32;
        w += w % 2;
        (w, max_len)
    };
    (w.max(1), h.max(1))
}

/// transformers' `_resize_output_size_scale_below_upper_bound`, in (w, h).
fn scale_below(w: u32, h: u32, max_len: u32) -> (u32, u32) {
    let aspect = f64::from(w) / f64::from(h);
    let (w, h) = if w >= h && w > max_len {
        (max_len, (f64::from(max_len) / aspect) as u32)
    } else if h > w && h > max_len {
        ((f64::from(max_len) * aspect) as u32, max_len)
    } else {
        (w, h)
    };
    (w.max(1), h.max(1))
}

/// Reused buffers: the two resizers, the intermediate image and the tensor.
pub struct SmolVlmImage {
    first: PillowResize,
    second: PillowResize,
    mid: Vec<u8>,
    pixels: Vec<f32>,
}

impl SmolVlmImage {
    pub fn new(spec: &ImageSpec) -> Self {
        Self {
            first: PillowResize::new(spec.filter),
            second: PillowResize::new(spec.filter),
            mid: Vec::new(),
            pixels: Vec::new(),
        }
    }

    /// The `[3, square, square]` tensor of `crop` of `src`.
    pub fn fill(
        &mut self,
        src: &RgbView<'_>,
        crop: Rect,
        spec: &ImageSpec,
    ) -> Result<&[f32], EngineError> {
        let (w, h) = (
            crop.w.round().max(1.0) as u32,
            crop.h.round().max(1.0) as u32,
        );
        let (rw, rh) = spec.first_size(w, h);
        let all = |w, h| Window { x: 0, y: 0, w, h };
        let mid = self.first.run(src, crop, rw, rh, all(rw, rh))?;
        self.mid.clear();
        self.mid.extend_from_slice(mid);
        let view = RgbView::new(&self.mid, rw, rh, rw as usize * 3)?;
        let whole = Rect {
            x: 0.0,
            y: 0.0,
            w: f64::from(rw),
            h: f64::from(rh),
        };
        let s = spec.square;
        let rgb = self.second.run(&view, whole, s, s, all(s, s))?;
        let plane = (s * s) as usize;
        self.pixels.resize(3 * plane, 0.0);
        // transformers: (f32(px as f64 * rescale) - mean) / std, in f32.
        let table: [[f32; 256]; 3] = std::array::from_fn(|c| {
            std::array::from_fn(|px| {
                ((px as f64 * spec.rescale) as f32 - spec.mean[c]) / spec.std[c]
            })
        });
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                self.pixels[c * plane + i] = table[c][usize::from(px[c])];
            }
        }
        Ok(&self.pixels)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_resize_follows_transformers_rounding() {
        let spec = ImageSpec {
            longest_edge: 128,
            ..ImageSpec::default()
        };
        // 451x300: h = int(128 / (451/300)) = 85 -> even 86.
        assert_eq!(spec.first_size(451, 300), (128, 86));
        assert_eq!(spec.first_size(300, 451), (86, 128));
        assert_eq!(spec.first_size(512, 512), (128, 128));
        let big = ImageSpec {
            longest_edge: 4096,
            ..ImageSpec::default()
        };
        assert_eq!(big.first_size(1000, 10), (4096, 40));
    }
}
