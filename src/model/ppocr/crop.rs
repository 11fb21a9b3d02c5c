//! Upright crops of rotated text boxes: a perspective warp of the box onto a
//! `width` x `height` rectangle (sides from the box's longer opposite edges),
//! bicubic (OpenCV's `INTER_CUBIC`) with replicated borders; crops at least 1.5 times taller than wide are
//! turned 90° counter-clockwise, as RapidOCR does.
//!
//! ```ignore
//! let crop = Crop::warp(&view, &[[10., 5.], [90., 5.], [90., 25.], [10., 25.]]);
//! assert_eq!((crop.width, crop.height), (80, 20));
//! ```

use super::geometry::{Quad, dist};
use crate::engine::{EngineError, LinearResize, Planes, RgbView};

/// A packed RGB image owned by the pipeline.
#[derive(Debug, Clone, Default)]
pub struct Crop {
    pub width: u32,
    pub height: u32,
    pub rgb: Vec<u8>,
}

impl Crop {
    /// The upright crop of `quad` (corners top-left, top-right, bottom-right,
    /// bottom-left, in `view` pixels); `None` when it is empty or degenerate.
    pub fn warp(view: &RgbView<'_>, quad: &Quad) -> Option<Crop> {
        let w = dist(quad[0], quad[1]).max(dist(quad[2], quad[3])) as u32;
        let h = dist(quad[0], quad[3]).max(dist(quad[1], quad[2])) as u32;
        if w == 0 || h == 0 {
            return None;
        }
        let (fw, fh) = (f64::from(w), f64::from(h));
        let m = homography(&[[0.0, 0.0], [fw, 0.0], [fw, fh], [0.0, fh]], quad)?;
        let mut rgb = vec![0u8; (w * h * 3) as usize];
        let (sw, sh) = (i64::from(view.width()), i64::from(view.height()));
        for v in 0..h {
            for u in 0..w {
                let (x, y) = (f64::from(u), f64::from(v));
                let z = m[6] * x + m[7] * y + 1.0;
                // Source position, on OpenCV's 1/32-pixel grid.
                let fx = ((m[0] * x + m[1] * y + m[2]) / z * SUB).round() as i64;
                let fy = ((m[3] * x + m[4] * y + m[5]) / z * SUB).round() as i64;
                let (ix, iy) = (fx.div_euclid(SUB as i64), fy.div_euclid(SUB as i64));
                let wx = cubic(fx.rem_euclid(SUB as i64) as f32 / SUB as f32);
                let wy = cubic(fy.rem_euclid(SUB as i64) as f32 / SUB as f32);
                let mut acc = [0f32; 3];
                for (j, wyj) in wy.iter().enumerate() {
                    let row = view.row_bytes((iy + j as i64 - 1).clamp(0, sh - 1) as u32);
                    let mut line = [0f32; 3];
                    for (i, wxi) in wx.iter().enumerate() {
                        let px = (ix + i as i64 - 1).clamp(0, sw - 1) as usize * 3;
                        for c in 0..3 {
                            line[c] += wxi * f32::from(row[px + c]);
                        }
                    }
                    for c in 0..3 {
                        acc[c] += wyj * line[c];
                    }
                }
                let out = &mut rgb[((v * w + u) * 3) as usize..][..3];
                for (o, a) in out.iter_mut().zip(acc) {
                    *o = a.round().clamp(0.0, 255.0) as u8;
                }
            }
        }
        let crop = Crop {
            width: w,
            height: h,
            rgb,
        };
        Some(if fh / fw >= 1.5 { crop.rot90() } else { crop })
    }

    pub fn view(&self) -> Option<RgbView<'_>> {
        RgbView::new(&self.rgb, self.width, self.height, self.width as usize * 3).ok()
    }

    /// Turned 90° counter-clockwise (NumPy's `rot90`).
    pub fn rot90(&self) -> Crop {
        let (w, h) = (self.width as usize, self.height as usize);
        let mut rgb = vec![0u8; w * h * 3];
        // New pixel (x, y) of the h-wide, w-tall result is old pixel (w-1-y, x).
        for y in 0..w {
            for x in 0..h {
                let src = (x * w + (w - 1 - y)) * 3;
                rgb[(y * h + x) * 3..][..3].copy_from_slice(&self.rgb[src..src + 3]);
            }
        }
        Crop {
            width: self.height,
            height: self.width,
            rgb,
        }
    }

    /// Turned 180°.
    pub fn rot180(&mut self) {
        let px: Vec<[u8; 3]> = self
            .rgb
            .chunks_exact(3)
            .rev()
            .map(|p| [p[0], p[1], p[2]])
            .collect();
        self.rgb = px.concat();
    }
}

/// Height of the classifier's and the recogniser's inputs.
pub(super) const LINE_HEIGHT: u32 = 48;

/// Writes `crop` as one normalised BGR item (CHW, `LINE_HEIGHT` x `width`) into
/// `out`: resized to height 48 keeping its aspect ratio (at most `width` wide),
/// the rest of each row zero (RapidOCR's `resize_norm_img`).
pub(super) fn line_input(
    crop: &Crop,
    width: u32,
    resize: &mut LinearResize,
    out: &mut [f32],
) -> Result<(), EngineError> {
    let view = crop
        .view()
        .ok_or_else(|| EngineError::Resize("empty text crop".into()))?;
    let ratio = f64::from(crop.width) / f64::from(crop.height);
    let rw = ((f64::from(LINE_HEIGHT) * ratio).ceil() as u32).clamp(1, width);
    let plane = (LINE_HEIGHT * width) as usize;
    out.fill(0.0);
    let (b, rest) = out.split_at_mut(plane);
    let (g, r) = rest.split_at_mut(plane);
    resize.run(
        &view,
        rw,
        LINE_HEIGHT,
        [2, 1, 0],
        Planes {
            planes: [&mut *b, &mut *g, &mut r[..plane]],
            stride: width as usize,
        },
    )?;
    for p in [b, g, &mut r[..plane]] {
        for row in p.chunks_exact_mut(width as usize) {
            super::detect::normalise(&mut row[..rw as usize]);
        }
    }
    Ok(())
}

/// Sub-pixel steps of OpenCV's interpolation tables.
const SUB: f64 = 32.0;

/// OpenCV's bicubic weights (a = −0.75) of the taps at −1, 0, 1, 2 for offset `t`.
fn cubic(t: f32) -> [f32; 4] {
    const A: f32 = -0.75;
    let w0 = ((A * (t + 1.0) - 5.0 * A) * (t + 1.0) + 8.0 * A) * (t + 1.0) - 4.0 * A;
    let w1 = ((A + 2.0) * t - (A + 3.0)) * t * t + 1.0;
    let u = 1.0 - t;
    let w2 = ((A + 2.0) * u - (A + 3.0)) * u * u + 1.0;
    [w0, w1, w2, 1.0 - w0 - w1 - w2]
}

/// The 3x3 projective map (last entry 1) taking each `from` point to its `to` point.
fn homography(from: &Quad, to: &Quad) -> Option<[f64; 8]> {
    let mut a = [[0f64; 9]; 8];
    for i in 0..4 {
        let ([x, y], [u, v]) = (from[i], to[i]);
        a[2 * i] = [x, y, 1.0, 0.0, 0.0, 0.0, -x * u, -y * u, u];
        a[2 * i + 1] = [0.0, 0.0, 0.0, x, y, 1.0, -x * v, -y * v, v];
    }
    // Gaussian elimination with partial pivoting.
    for col in 0..8 {
        let pivot = (col..8).max_by(|&r, &s| a[r][col].abs().total_cmp(&a[s][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        let row = a[col];
        for (r, other) in a.iter_mut().enumerate() {
            if r != col {
                let f = other[col] / row[col];
                for (x, y) in other.iter_mut().zip(row).skip(col) {
                    *x -= f * y;
                }
            }
        }
    }
    let mut m = [0f64; 8];
    for (i, x) in m.iter_mut().enumerate() {
        *x = a[i][8] / a[i][i];
    }
    Some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_aligned_box_is_copied_and_tall_crops_turn() {
        // 6x4 image whose pixel (x, y) is [x, y, 7].
        let (w, h) = (6u32, 4u32);
        let data: Vec<u8> = (0..h)
            .flat_map(|y| (0..w).flat_map(move |x| [x as u8, y as u8, 7]))
            .collect();
        let view = RgbView::new(&data, w, h, w as usize * 3).unwrap();
        let c = Crop::warp(&view, &[[1.0, 1.0], [4.0, 1.0], [4.0, 3.0], [1.0, 3.0]]).unwrap();
        assert_eq!((c.width, c.height), (3, 2));
        assert_eq!(&c.rgb[..6], &[1, 1, 7, 2, 1, 7]);
        assert_eq!(&c.rgb[9..12], &[1, 2, 7]);
        let tall = Crop::warp(&view, &[[1.0, 0.0], [3.0, 0.0], [3.0, 3.0], [1.0, 3.0]]).unwrap();
        // 2 wide, 3 tall → turned: 3 wide, 2 tall; its top-left is the old top-right.
        assert_eq!((tall.width, tall.height), (3, 2));
        assert_eq!(&tall.rgb[..3], &[2, 0, 7]);
        let mut r = c.clone();
        r.rot180();
        assert_eq!(&r.rgb[..3], &c.rgb[c.rgb.len() - 3..]);
    }
}
