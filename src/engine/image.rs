//! Borrowed views of decoded RGB frames (strided rows read in place) and pixel
//! rectangles of regions.

use super::EngineError;
use crate::kit::{Frame, PixelFormat};

/// A borrowed RGB image whose rows are `stride` bytes apart.
pub struct RgbView<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
    stride: usize,
}

impl<'a> RgbView<'a> {
    /// Fails when `data` is too short for `height` rows of `stride` bytes.
    pub fn new(
        data: &'a [u8],
        width: u32,
        height: u32,
        stride: usize,
    ) -> Result<Self, EngineError> {
        let need = (height as usize).saturating_sub(1) * stride + width as usize * 3;
        if stride < width as usize * 3 || data.len() < need {
            return Err(EngineError::Resize(format!(
                "{width}x{height} RGB with stride {stride} needs {need} bytes, got {}",
                data.len()
            )));
        }
        Ok(Self {
            data,
            width,
            height,
            stride,
        })
    }

    /// The view of an RGB frame (an I420 frame is refused).
    pub fn of(frame: &'a Frame) -> Result<Self, EngineError> {
        if frame.format != PixelFormat::Rgb {
            return Err(EngineError::Resize(
                "this model needs RGB frames, the camera delivers I420".into(),
            ));
        }
        Self::new(frame.data(), frame.width, frame.height, frame.stride)
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    /// Row `y` as packed RGB bytes, without padding.
    pub fn row_bytes(&self, y: u32) -> &'a [u8] {
        let start = y as usize * self.stride;
        &self.data[start..start + self.width as usize * 3]
    }
}

/// A rectangle in source pixels (fractional edges allowed).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rect {
    pub x: f64,
    pub y: f64,
    pub w: f64,
    pub h: f64,
}

impl Rect {
    /// The pixel rectangle of normalised `[x0, y0, x1, y1]` in a `width`x`height` image;
    /// the whole image for `None`.
    pub fn of_region(region: Option<[f32; 4]>, width: u32, height: u32) -> Rect {
        let [x0, y0, x1, y1] = region.unwrap_or([0.0, 0.0, 1.0, 1.0]).map(f64::from);
        let (w, h) = (f64::from(width), f64::from(height));
        Rect {
            x: x0 * w,
            y: y0 * h,
            w: ((x1 - x0) * w).max(1.0),
            h: ((y1 - y0) * h).max(1.0),
        }
    }
}
