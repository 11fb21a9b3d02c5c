//! CLIP image preprocessing, as the Hugging Face `CLIPImageProcessor` does it: resize
//! the shortest edge (bicubic), centre-crop, rescale, normalise, planar RGB.

use std::path::Path;

use serde_json::Value;

use crate::engine::{EngineError, PillowBicubic, Rect, RgbView, Window};
use crate::model::Stages;

/// The numbers of `preprocessor_config.json` that matter.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageSpec {
    pub shortest_edge: u32,
    pub crop: (u32, u32),
    pub rescale: f32,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl ImageSpec {
    /// Reads a Hugging Face `preprocessor_config.json`.
    pub fn from_file(path: &Path) -> Result<Self, String> {
        let v = crate::model::preprocessor::read(path)?;
        let num = |v: &Value| v.as_f64().map(|f| f as u32);
        let shortest_edge = match &v["size"] {
            Value::Object(m) => m.get("shortest_edge").and_then(num),
            other => num(other),
        }
        .ok_or("size.shortest_edge is missing")?;
        let crop = match &v["crop_size"] {
            Value::Object(m) => m
                .get("height")
                .and_then(num)
                .zip(m.get("width").and_then(num)),
            Value::Null => Some((shortest_edge, shortest_edge)),
            other => num(other).map(|s| (s, s)),
        }
        .ok_or("crop_size is malformed")?;
        let triple = |key: &str| -> Result<[f32; 3], String> {
            crate::model::preprocessor::triple(&v, key)?.ok_or(format!("{key} is missing"))
        };
        if v["do_center_crop"] == Value::Bool(false) {
            return Err("do_center_crop = false is not supported".into());
        }
        Ok(Self {
            shortest_edge,
            crop: (crop.1, crop.0),
            rescale: crate::model::preprocessor::rescale(&v) as f32,
            mean: triple("image_mean")?,
            std: triple("image_std")?,
        })
    }
}

/// Reused buffers for one camera: the resizer and its output.
pub struct ClipImage {
    resize: PillowBicubic,
    /// The tensor of [`ClipImage::fill`] (inspection and tests).
    pixels: Vec<f32>,
    /// How long the last call's steps took.
    pub stages: Stages,
}

impl ClipImage {
    pub fn new() -> Self {
        Self {
            resize: PillowBicubic::default(),
            pixels: Vec::new(),
            stages: Stages::default(),
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
        let filled = self.fill_into(src, crop, spec, &mut pixels);
        self.pixels = pixels;
        filled.map(|()| self.pixels.as_slice())
    }

    /// Writes the `[3, H, W]` tensor of `crop` of `src` into `tensor`.
    pub fn fill_into(
        &mut self,
        src: &RgbView<'_>,
        crop: Rect,
        spec: &ImageSpec,
        tensor: &mut Vec<f32>,
    ) -> Result<(), EngineError> {
        let (w, h) = (crop.w.round().max(1.0), crop.h.round().max(1.0));
        // transformers: short side to `shortest_edge`, long side int(edge * long / short).
        let edge = f64::from(spec.shortest_edge);
        let (rw, rh) = if w <= h {
            (edge as u32, (edge * h / w) as u32)
        } else {
            ((edge * w / h) as u32, edge as u32)
        };
        let (cw, ch) = spec.crop;
        let (rw, rh) = (rw.max(cw), rh.max(ch));
        // transformers' centre crop: top = (h - crop_h) // 2, left = (w - crop_w) // 2.
        let window = Window {
            x: (rw - cw) / 2,
            y: (rh - ch) / 2,
            w: cw,
            h: ch,
        };
        let rgb = self.resize.run(src, crop, rw, rh, window)?;
        let plane = (cw * ch) as usize;
        tensor.resize(3 * plane, 0.0);
        let scale: [f32; 3] = std::array::from_fn(|c| spec.rescale / spec.std[c]);
        let shift: [f32; 3] = std::array::from_fn(|c| spec.mean[c] / spec.std[c]);
        for y in 0..ch as usize {
            let row = &rgb[y * cw as usize * 3..][..cw as usize * 3];
            for (x, px) in row.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    tensor[c * plane + y * cw as usize + x] =
                        f32::from(px[c]) * scale[c] - shift[c];
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
