//! Florence-2 image preprocessing, as its `CLIPImageProcessor` does it: the region (cut
//! out at whole pixels) resized to `size` with Pillow's bicubic filter, no crop, then
//! `(x * rescale - mean) / std` with transformers' rounding (rescale in f64, the rest
//! in f32), planar RGB.
//!
//! ```no_run
//! use ocellus::model::florence2::ImageSpec;
//! let spec = ImageSpec::from_file("florence-2-base/preprocessor_config.json".as_ref()).unwrap();
//! assert_eq!(spec.size, (768, 768));
//! ```

use std::path::Path;

use serde_json::Value;

use crate::engine::{EngineError, PillowBicubic, Rect, RgbView, Window};
use crate::kit::Frame;
use crate::model::preprocessor::{self, PreprocessorError};

/// What `preprocessor_config.json` asks for that is malformed or not supported.
#[derive(Debug, thiserror::Error)]
pub enum ImageSpecError {
    #[error(transparent)]
    File(#[from] PreprocessorError),
    #[error("size must be {{height, width}}")]
    Size,
    #[error("only resample = 3 (bicubic) is supported")]
    Resample,
    #[error("a centre crop other than `size` is not supported")]
    Crop,
    #[error("{0} is missing")]
    Missing(&'static str),
}

/// The numbers of `preprocessor_config.json` that matter.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    /// Output (width, height).
    pub size: (u32, u32),
    pub rescale: f64,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl ImageSpec {
    /// Reads a Florence-2 `preprocessor_config.json` (`size` as `{height, width}`).
    pub fn from_file(path: &Path) -> Result<Self, ImageSpecError> {
        let v = preprocessor::read(path)?;
        let num = |v: &Value| v.as_u64().map(|n| n as u32);
        let size = v["size"]["width"]
            .as_u64()
            .map(|n| n as u32)
            .zip(num(&v["size"]["height"]))
            .ok_or(ImageSpecError::Size)?;
        if v["resample"].as_u64().is_some_and(|r| r != 3) {
            return Err(ImageSpecError::Resample);
        }
        if v["do_center_crop"] == Value::Bool(true) {
            let crop = (
                num(&v["crop_size"]["width"]),
                num(&v["crop_size"]["height"]),
            );
            if crop != (Some(size.0), Some(size.1)) {
                return Err(ImageSpecError::Crop);
            }
        }
        let triple = |key: &'static str| -> Result<[f32; 3], ImageSpecError> {
            preprocessor::triple(&v, key)?.ok_or(ImageSpecError::Missing(key))
        };
        Ok(Self {
            size,
            rescale: preprocessor::rescale(&v),
            mean: triple("image_mean")?,
            std: triple("image_std")?,
        })
    }
}

/// The whole-pixel box `[x, y, w, h]` of normalised `region` in a `width`x`height`
/// frame (at least one pixel); the whole frame for `None`.
pub fn pixel_box(region: Option<[f32; 4]>, width: u32, height: u32) -> [u32; 4] {
    let Some([x0, y0, x1, y1]) = region else {
        return [0, 0, width, height];
    };
    let at = |v: f32, n: u32| ((f64::from(v) * f64::from(n)).round().max(0.0) as u32).min(n);
    let (x0, x1) = (at(x0, width), at(x1, width));
    let (y0, y1) = (at(y0, height), at(y1, height));
    let x0 = x0.min(width.saturating_sub(1));
    let y0 = y0.min(height.saturating_sub(1));
    [x0, y0, x1.max(x0 + 1) - x0, y1.max(y0 + 1) - y0]
}

/// Reused resizer and tensor for one model.
#[derive(Default)]
pub(super) struct Preprocessor {
    resize: PillowBicubic,
    pub(crate) pixels: Vec<f32>,
}

impl Preprocessor {
    /// Writes the `[3, H, W]` tensor of `region` of `frame` into `self.pixels`.
    pub(super) fn fill(
        &mut self,
        frame: &Frame,
        region: Option<[f32; 4]>,
        spec: &ImageSpec,
    ) -> Result<(), EngineError> {
        let full = RgbView::of(frame)?;
        let [x, y, w, h] = pixel_box(region, full.width(), full.height());
        // The region as an image of its own (the processor sees the cut-out picture,
        // so the filter does not reach outside it).
        let offset = y as usize * frame.stride + x as usize * 3;
        let data = frame.data().get(offset..).unwrap_or_default();
        let view = RgbView::new(data, w, h, frame.stride)?;
        let (ow, oh) = spec.size;
        let whole = Rect {
            x: 0.0,
            y: 0.0,
            w: f64::from(w),
            h: f64::from(h),
        };
        let window = Window {
            x: 0,
            y: 0,
            w: ow,
            h: oh,
        };
        let rgb = self.resize.run(&view, whole, ow, oh, window)?;
        let plane = (ow * oh) as usize;
        self.pixels.resize(3 * plane, 0.0);
        // transformers: rescale in f64 then to f32; normalise in f32.
        let table: [[f32; 256]; 3] = std::array::from_fn(|c| {
            std::array::from_fn(|v| ((v as f64 * spec.rescale) as f32 - spec.mean[c]) / spec.std[c])
        });
        for (i, px) in rgb.chunks_exact(3).enumerate() {
            for c in 0..3 {
                self.pixels[c * plane + i] = table[c][usize::from(px[c])];
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_snap_to_whole_pixels_inside_the_frame() {
        assert_eq!(pixel_box(None, 640, 480), [0, 0, 640, 480]);
        assert_eq!(
            pixel_box(Some([0.25, 0.125, 0.75, 0.625]), 512, 512),
            [128, 64, 256, 256]
        );
        assert_eq!(
            pixel_box(Some([1.2, 0.5, 1.5, 0.5]), 100, 100),
            [99, 50, 1, 1]
        );
    }
}
