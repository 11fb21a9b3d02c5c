//! YUV colorimetry and the plane layout of an I420 frame: what a decoder says about
//! its output, shared by the source that receives it and the engine that reads it.

/// YUV → RGB conversion of one colorimetry (ITU-R matrix and range).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct YuvMatrix {
    y_scale: f32,
    y_offset: f32,
    c_scale: f32,
    r_v: f32,
    g_u: f32,
    g_v: f32,
    b_u: f32,
}

impl YuvMatrix {
    /// Matrix with luma weights `kr`, `kb`; `full_range` for 0..255 luma, else 16..235.
    pub fn new(kr: f32, kb: f32, full_range: bool) -> Self {
        let kg = 1.0 - kr - kb;
        let (y_scale, y_offset, c_scale) = if full_range {
            (1.0, 0.0, 1.0)
        } else {
            (255.0 / 219.0, 16.0, 255.0 / 224.0)
        };
        Self {
            y_scale,
            y_offset,
            c_scale,
            r_v: 2.0 * (1.0 - kr),
            g_u: 2.0 * kb * (1.0 - kb) / kg,
            g_v: 2.0 * kr * (1.0 - kr) / kg,
            b_u: 2.0 * (1.0 - kb),
        }
    }

    /// ITU-R BT.601 (SD video).
    pub fn bt601(full_range: bool) -> Self {
        Self::new(0.299, 0.114, full_range)
    }

    /// ITU-R BT.709 (HD video).
    pub fn bt709(full_range: bool) -> Self {
        Self::new(0.2126, 0.0722, full_range)
    }

    /// ITU-R BT.2020.
    pub fn bt2020(full_range: bool) -> Self {
        Self::new(0.2627, 0.0593, full_range)
    }

    /// RGB (0..255, clamped) of one sample.
    #[inline]
    pub fn rgb(&self, y: f32, u: f32, v: f32) -> [f32; 3] {
        let y = (y - self.y_offset) * self.y_scale;
        let (u, v) = ((u - 128.0) * self.c_scale, (v - 128.0) * self.c_scale);
        [
            (y + self.r_v * v).clamp(0.0, 255.0),
            (y - self.g_u * u - self.g_v * v).clamp(0.0, 255.0),
            (y + self.b_u * u).clamp(0.0, 255.0),
        ]
    }
}

/// Where the three planes of an I420 frame are inside its buffer.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct I420Layout {
    /// Byte offset of the Y, U and V planes.
    pub offsets: [usize; 3],
    /// Row stride of the Y, U and V planes.
    pub strides: [usize; 3],
    /// The YUV → RGB conversion of the frame's colorimetry.
    pub matrix: YuvMatrix,
}
