//! YOLOX letterbox, as the reference demo does it: scale to fit with bilinear
//! interpolation (OpenCV `INTER_LINEAR`), paste top-left on a 114-grey square, BGR
//! planes, values 0..255 (no mean/std) — written straight into the reused input
//! tensor, from RGB or I420 frames.

use crate::engine::{EngineError, I420View, LinearResize, Planes, RgbView};
use crate::kit::Frame;

/// YOLOX's letterbox grey.
const PAD: f32 = 114.0;

#[derive(Debug, Default)]
pub struct Letterbox {
    resize: LinearResize,
}

impl Letterbox {
    pub fn new() -> Self {
        Self::default()
    }

    /// Fills `tensor` (one CHW item of `3 * w * h` values, usually the engine's own
    /// input tensor) for `frame`; returns the scale `r` applied to the frame.
    pub fn fill(
        &mut self,
        frame: &Frame,
        (w, h): (u32, u32),
        tensor: &mut [f32],
    ) -> Result<f32, EngineError> {
        let r = (w as f32 / frame.width as f32).min(h as f32 / frame.height as f32);
        let rw = ((frame.width as f32 * r) as u32).clamp(1, w);
        let rh = ((frame.height as f32 * r) as u32).clamp(1, h);
        let plane = (w * h) as usize;
        if tensor.len() != 3 * plane {
            return Err(EngineError::Resize(format!(
                "a {w}x{h} letterbox needs {} values, the tensor has {}",
                3 * plane,
                tensor.len()
            )));
        }
        let (b, rest) = tensor.split_at_mut(plane);
        let (g, r_plane) = rest.split_at_mut(plane);
        let stride = w as usize;
        // Planes in B, G, R order take source channels 2, 1, 0.
        let planes = Planes {
            planes: [&mut *b, &mut *g, &mut *r_plane],
            stride,
        };
        match I420View::of(frame) {
            Some(view) => self.resize.run_i420(&view?, rw, rh, [2, 1, 0], planes)?,
            None => self
                .resize
                .run(&RgbView::of(frame)?, rw, rh, [2, 1, 0], planes)?,
        }
        for p in [b, g, r_plane] {
            // Right of the picture, then below it.
            for y in 0..rh as usize {
                p[y * stride + rw as usize..(y + 1) * stride].fill(PAD);
            }
            p[rh as usize * stride..].fill(PAD);
        }
        Ok(r)
    }
}
