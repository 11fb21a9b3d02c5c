//! Crop-and-resize of RGB frames with fast_image_resize (SIMD), reading strided rows
//! in place and writing into a buffer that is reused from frame to frame.

use fast_image_resize::images::TypedImage;
use fast_image_resize::pixels::U8x3;
use fast_image_resize::{FilterType, ImageView, ResizeAlg, ResizeOptions, Resizer};

use super::EngineError;
use crate::source::Frame;

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

    pub fn of(frame: &'a Frame) -> Result<Self, EngineError> {
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

    fn row(&self, y: u32) -> &'a [U8x3] {
        let bytes = self.row_bytes(y);
        // SAFETY: U8x3 is #[repr(C)] around [u8; 3] (size 3, align 1), so any 3*n
        // bytes are n valid pixels.
        unsafe { std::slice::from_raw_parts(bytes.as_ptr().cast::<U8x3>(), self.width as usize) }
    }
}

// SAFETY: every row yielded is exactly `width` pixels long.
unsafe impl ImageView for RgbView<'_> {
    type Pixel = U8x3;

    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    fn iter_rows(&self, start_row: u32) -> impl Iterator<Item = &[U8x3]> {
        (start_row..self.height).map(|y| self.row(y))
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

/// Reusable resizer: the output buffer is reallocated only when its size changes.
pub struct Resize {
    resizer: Resizer,
    out: TypedImage<'static, U8x3>,
    filter: FilterType,
}

impl Resize {
    pub fn new(filter: FilterType) -> Self {
        Self {
            resizer: Resizer::new(),
            out: TypedImage::new(1, 1),
            filter,
        }
    }

    /// Resizes `crop` of `src` to `width`x`height`; returns packed RGB bytes.
    pub fn run(
        &mut self,
        src: &RgbView<'_>,
        crop: Rect,
        width: u32,
        height: u32,
    ) -> Result<&[u8], EngineError> {
        if self.out.width() != width || self.out.height() != height {
            self.out = TypedImage::new(width, height);
        }
        let options = ResizeOptions::new()
            .resize_alg(ResizeAlg::Convolution(self.filter))
            .crop(crop.x, crop.y, crop.w, crop.h);
        self.resizer
            .resize_typed(src, &mut self.out, &options)
            .map_err(|e| EngineError::Resize(e.to_string()))?;
        let pixels = self.out.pixels();
        // SAFETY: U8x3 is #[repr(C)] around [u8; 3]; the slice covers exactly the pixels.
        Ok(unsafe { std::slice::from_raw_parts(pixels.as_ptr().cast::<u8>(), pixels.len() * 3) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_rows_resize_like_packed_rows() {
        // 5x3 image, stride 16 (padding bytes set to 255 must not leak into the result).
        let (w, h, stride) = (5u32, 3u32, 16usize);
        let mut padded = vec![255u8; stride * h as usize];
        let mut packed = Vec::new();
        for y in 0..h {
            for x in 0..w {
                let px = [(x * 40) as u8, (y * 60) as u8, ((x + y) * 20) as u8];
                padded[y as usize * stride + x as usize * 3..][..3].copy_from_slice(&px);
                packed.extend_from_slice(&px);
            }
        }
        let whole = Rect::of_region(None, w, h);
        let mut a = Resize::new(FilterType::Bilinear);
        let mut b = Resize::new(FilterType::Bilinear);
        let ra = a
            .run(&RgbView::new(&padded, w, h, stride).unwrap(), whole, 3, 2)
            .unwrap()
            .to_vec();
        let rb = b
            .run(
                &RgbView::new(&packed, w, h, w as usize * 3).unwrap(),
                whole,
                3,
                2,
            )
            .unwrap()
            .to_vec();
        assert_eq!(ra, rb);
        assert!(RgbView::new(&packed[1..], w, h, w as usize * 3).is_err());
    }
}
