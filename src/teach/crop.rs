//! The picture of an example: the query's region of a frame, as a small JPEG (its
//! long side at most [`MAX_SIDE`] pixels), and back.

use std::path::Path;

use jpeg_encoder::{ColorType, Encoder};

use super::error::TeachError;
use crate::engine::{Rect, RgbView};
use crate::kit::{Frame, Pixels};

/// The longest side of a stored crop: enough for any embedder's 224–384 input.
pub const MAX_SIDE: u32 = 448;
const QUALITY: u8 = 90;

/// The JPEG of `region` of `frame` (an RGB frame), scaled down (nearest pixel) to at
/// most [`MAX_SIDE`] a side.
pub fn crop_jpeg(frame: &Frame, region: Option<[f32; 4]>) -> Result<Vec<u8>, TeachError> {
    let view = RgbView::of(frame).map_err(|e| TeachError::Frame(e.to_string()))?;
    let r = Rect::of_region(region, frame.width, frame.height);
    let (x0, y0) = (r.x.max(0.0) as u32, r.y.max(0.0) as u32);
    let w = (r.w as u32).clamp(1, frame.width.saturating_sub(x0).max(1));
    let h = (r.h as u32).clamp(1, frame.height.saturating_sub(y0).max(1));
    let scale = (f64::from(MAX_SIDE) / f64::from(w.max(h))).min(1.0);
    let (ow, oh) = (
        ((f64::from(w) * scale) as u32).max(1),
        ((f64::from(h) * scale) as u32).max(1),
    );
    let mut rgb = Vec::with_capacity((ow * oh * 3) as usize);
    for oy in 0..oh {
        let sy = y0 + ((f64::from(oy) + 0.5) / scale) as u32;
        let row = view.row_bytes(sy.min(frame.height - 1));
        for ox in 0..ow {
            let sx = (x0 + ((f64::from(ox) + 0.5) / scale) as u32).min(frame.width - 1) as usize;
            rgb.extend_from_slice(&row[sx * 3..sx * 3 + 3]);
        }
    }
    let mut jpeg = Vec::new();
    let (ew, eh) = (
        u16::try_from(ow).map_err(|_| TeachError::Frame("crop too wide".into()))?,
        u16::try_from(oh).map_err(|_| TeachError::Frame("crop too tall".into()))?,
    );
    Encoder::new(&mut jpeg, QUALITY)
        .encode(&rgb, ew, eh, ColorType::Rgb)
        .map_err(|e| TeachError::Frame(format!("JPEG: {e}")))?;
    Ok(jpeg)
}

/// The RGB frame of an image file (decoded by the camera pipeline itself).
pub fn decode(path: &Path) -> Result<Frame, TeachError> {
    let path = std::env::current_dir().unwrap_or_default().join(path);
    Ok(crate::source::first_frame(&path, Pixels::Rgb)?)
}
