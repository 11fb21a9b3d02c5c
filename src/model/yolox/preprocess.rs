//! YOLOX letterbox: scale to fit, paste top-left on a 114-grey square, BGR planes,
//! values 0..255 (no mean/std).

use fast_image_resize::FilterType;

use crate::engine::{EngineError, Rect, Resize, RgbView};
use crate::source::Frame;

pub struct Letterbox {
    resize: Resize,
}

impl Letterbox {
    pub fn new() -> Self {
        Self {
            resize: Resize::new(FilterType::Bilinear),
        }
    }

    /// Fills `tensor` (one CHW item, resized once and then reused) for `frame`;
    /// returns the scale `r` applied to the frame.
    pub fn fill(
        &mut self,
        frame: &Frame,
        (w, h): (u32, u32),
        tensor: &mut Vec<f32>,
    ) -> Result<f32, EngineError> {
        let r = (w as f32 / frame.width as f32).min(h as f32 / frame.height as f32);
        let rw = ((frame.width as f32 * r) as u32).clamp(1, w);
        let rh = ((frame.height as f32 * r) as u32).clamp(1, h);
        let view = RgbView::of(frame)?;
        let whole = Rect::of_region(None, frame.width, frame.height);
        let rgb = self.resize.run(&view, whole, rw, rh)?;
        let plane = (w * h) as usize;
        tensor.resize(3 * plane, 0.0);
        let (b, rest) = tensor.split_at_mut(plane);
        let (g, r_plane) = rest.split_at_mut(plane);
        for y in 0..rh as usize {
            let src = &rgb[y * rw as usize * 3..(y + 1) * rw as usize * 3];
            let row = y * w as usize;
            for (x, px) in src.chunks_exact(3).enumerate() {
                r_plane[row + x] = f32::from(px[0]);
                g[row + x] = f32::from(px[1]);
                b[row + x] = f32::from(px[2]);
            }
            // Padding right of the picture.
            for p in [&mut *r_plane, &mut *g, &mut *b] {
                p[row + rw as usize..row + w as usize].fill(PAD);
            }
        }
        // Padding below the picture.
        for p in [r_plane, g, b] {
            p[rh as usize * w as usize..].fill(PAD);
        }
        Ok(r)
    }
}

/// YOLOX's letterbox grey.
const PAD: f32 = 114.0;

impl Default for Letterbox {
    fn default() -> Self {
        Self::new()
    }
}
