//! Planar YUV 4:2:0 (I420) frames as decoders produce them, and their conversion to
//! RGB. Detectors read I420 directly: the letterbox samples Y, U and V at the model's
//! resolution and converts only those pixels, instead of converting the whole frame
//! to RGB first.

use super::EngineError;

use crate::kit::{I420Layout, YuvMatrix};

/// A borrowed I420 image.
#[derive(Debug, Clone, Copy)]
pub struct I420View<'a> {
    data: &'a [u8],
    width: u32,
    height: u32,
    layout: I420Layout,
}

impl<'a> I420View<'a> {
    /// Fails when a plane does not fit in `data`.
    pub fn new(
        data: &'a [u8],
        width: u32,
        height: u32,
        layout: I420Layout,
    ) -> Result<Self, EngineError> {
        let (cw, ch) = (width.div_ceil(2) as usize, height.div_ceil(2) as usize);
        let sizes = [(width as usize, height as usize), (cw, ch), (cw, ch)];
        for (p, (w, h)) in sizes.iter().enumerate() {
            let need = layout.offsets[p] + h.saturating_sub(1) * layout.strides[p] + w;
            if layout.strides[p] < *w || data.len() < need {
                return Err(EngineError::Resize(format!(
                    "I420 {width}x{height}: plane {p} needs {need} bytes (stride {}), buffer has {}",
                    layout.strides[p],
                    data.len()
                )));
            }
        }
        Ok(Self {
            data,
            width,
            height,
            layout,
        })
    }

    /// The view of an I420 frame (`None` for RGB).
    pub fn of(frame: &'a crate::kit::Frame) -> Option<Result<Self, EngineError>> {
        match frame.format {
            crate::kit::PixelFormat::I420(layout) => {
                Some(Self::new(frame.data(), frame.width, frame.height, layout))
            }
            crate::kit::PixelFormat::Rgb => None,
        }
    }

    pub fn width(&self) -> u32 {
        self.width
    }

    pub fn height(&self) -> u32 {
        self.height
    }

    pub fn matrix(&self) -> &YuvMatrix {
        &self.layout.matrix
    }

    /// Row `y` of plane `p` (0 Y, 1 U, 2 V).
    #[inline]
    pub fn row(&self, p: usize, y: usize) -> &'a [u8] {
        let start = self.layout.offsets[p] + y * self.layout.strides[p];
        &self.data[start..]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grey_stays_grey_and_primaries_come_back() {
        for m in [YuvMatrix::bt601(false), YuvMatrix::bt709(false)] {
            let [r, g, b] = m.rgb(126.0, 128.0, 128.0);
            assert!((r - g).abs() < 1e-3 && (g - b).abs() < 1e-3 && (r - 128.0).abs() < 1.0);
            assert_eq!(m.rgb(16.0, 128.0, 128.0), [0.0, 0.0, 0.0]);
            assert_eq!(
                m.rgb(235.0, 128.0, 128.0).map(f32::round),
                [255.0, 255.0, 255.0]
            );
        }
        // BT.709 limited-range pure red: Y 63, U 102, V 240.
        let [r, g, b] = YuvMatrix::bt709(false).rgb(63.0, 102.0, 240.0);
        assert!(r > 250.0 && g < 5.0 && b < 5.0, "{r} {g} {b}");
    }
}
