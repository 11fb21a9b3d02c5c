//! Bilinear resizing as OpenCV's `INTER_LINEAR` does it (2x2 taps per output pixel,
//! no antialiasing: the resize detectors such as YOLOX are trained with), written
//! straight into the planes of a float input tensor, from RGB or from I420 (then
//! only the output pixels are converted to RGB). Source positions and weights are
//! tabulated once per geometry, so a stream of same-sized frames allocates nothing.

use super::{EngineError, I420View, RgbView};

/// One output coordinate: the two source indices and the weight of the second.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Tap {
    a: usize,
    b: usize,
    t: f32,
}

fn taps(in_size: u32, out_size: u32, out: &mut Vec<Tap>) {
    out.clear();
    let scale = f64::from(in_size) / f64::from(out_size);
    let last = in_size.saturating_sub(1) as usize;
    for i in 0..out_size {
        let s = ((f64::from(i) + 0.5) * scale - 0.5).max(0.0);
        let a = (s.floor() as usize).min(last);
        let b = (a + 1).min(last);
        out.push(Tap {
            a,
            b,
            t: (s - a as f64).clamp(0.0, 1.0) as f32,
        });
    }
}

/// Reusable bilinear resizer into planar tensors.
#[derive(Debug, Default)]
pub struct LinearResize {
    key: (u32, u32, u32, u32, bool),
    xs: Vec<Tap>,
    ys: Vec<Tap>,
    /// Chroma taps (I420: half the luma size).
    cxs: Vec<Tap>,
    cys: Vec<Tap>,
    /// Vertically blended source rows (Y, U, V) of the output row being made.
    rows: [Vec<f32>; 3],
    /// Those rows sampled at the output columns (Y, U, V).
    samples: [Vec<f32>; 3],
    /// The chroma taps `rows[1..]` hold (consecutive output rows often share them).
    chroma_row: Option<(usize, usize, u32)>,
}

/// Where the resized pixels go: three planes (in the channel order the model wants)
/// whose rows are `stride` values apart; pixel values are `scale * v + offset[c]`.
pub struct Planes<'a> {
    pub planes: [&'a mut [f32]; 3],
    pub stride: usize,
}

fn check(out_w: u32, out_h: u32, dst: &Planes<'_>) -> Result<(), EngineError> {
    let need = (out_h as usize).saturating_sub(1) * dst.stride + out_w as usize;
    if out_w == 0
        || out_h == 0
        || (out_w as usize) > dst.stride
        || dst.planes.iter().any(|p| p.len() < need)
    {
        return Err(EngineError::Resize(format!(
            "{out_w}x{out_h} does not fit planes of stride {}",
            dst.stride
        )));
    }
    Ok(())
}

/// `out[x]` = `a[x]` blended towards `b[x]` by `t`: whole source rows, contiguous,
/// which the compiler vectorises.
#[inline]
fn vertical(a: &[u8], b: &[u8], t: f32, out: &mut [f32]) {
    for ((o, &a), &b) in out.iter_mut().zip(a).zip(b) {
        *o = lerp(a, b, t);
    }
}

/// The blended row `row` sampled at tap `t`.
#[inline]
fn sample(row: &[f32], t: &Tap) -> f32 {
    let a = row[t.a];
    a + (row[t.b] - a) * t.t
}

#[inline]
fn lerp(a: u8, b: u8, t: f32) -> f32 {
    f32::from(a) + (f32::from(b) - f32::from(a)) * t
}

/// Row `y` (its first `n` values) of each of the three planes.
fn rows_mut<'p>(
    planes: &'p mut [&mut [f32]; 3],
    stride: usize,
    y: usize,
    n: usize,
) -> [&'p mut [f32]; 3] {
    let start = y * stride;
    let [p0, p1, p2] = planes;
    [
        &mut p0[start..start + n],
        &mut p1[start..start + n],
        &mut p2[start..start + n],
    ]
}

impl LinearResize {
    /// Makes the tap tables for a `w` x `h` source and `out_w` x `out_h` output
    /// (and, for I420, the half-size chroma tables), unless they are current.
    fn prepare(&mut self, (w, h): (u32, u32), (out_w, out_h): (u32, u32), i420: bool) {
        let key = (w, h, out_w, out_h, i420);
        if self.key == key && !self.xs.is_empty() {
            return;
        }
        taps(w, out_w, &mut self.xs);
        taps(h, out_h, &mut self.ys);
        if i420 {
            taps(w.div_ceil(2), out_w, &mut self.cxs);
            taps(h.div_ceil(2), out_h, &mut self.cys);
        }
        self.key = key;
    }

    /// As [`LinearResize::run`] from an I420 frame: Y, U and V are interpolated at
    /// each output pixel and converted with the frame's matrix. Per output row, the
    /// two source rows of each plane are blended first (contiguous, vectorised),
    /// then sampled once at each output column.
    pub fn run_i420(
        &mut self,
        src: &I420View<'_>,
        out_w: u32,
        out_h: u32,
        order: [usize; 3],
        mut dst: Planes<'_>,
    ) -> Result<(), EngineError> {
        check(out_w, out_h, &dst)?;
        self.prepare((src.width(), src.height()), (out_w, out_h), true);
        let m = *src.matrix();
        let n = out_w as usize;
        let (w, cw) = (src.width() as usize, src.width().div_ceil(2) as usize);
        let [yrow, urow, vrow] = &mut self.rows;
        let [ys, us, vs] = &mut self.samples;
        yrow.resize(w, 0.0);
        urow.resize(cw, 0.0);
        vrow.resize(cw, 0.0);
        for s in [&mut *ys, &mut *us, &mut *vs] {
            s.resize(n, 0.0);
        }
        self.chroma_row = None;
        // Which output plane takes R, G and B.
        let plane_of = |c: usize| order.iter().position(|&o| o == c).unwrap_or(c);
        let (ri, gi, bi) = (plane_of(0), plane_of(1), plane_of(2));
        for (y, (ty, cy)) in self.ys.iter().zip(&self.cys).enumerate() {
            vertical(&src.row(0, ty.a)[..w], &src.row(0, ty.b)[..w], ty.t, yrow);
            let chroma = (cy.a, cy.b, cy.t.to_bits());
            if self.chroma_row != Some(chroma) {
                vertical(&src.row(1, cy.a)[..cw], &src.row(1, cy.b)[..cw], cy.t, urow);
                vertical(&src.row(2, cy.a)[..cw], &src.row(2, cy.b)[..cw], cy.t, vrow);
                for ((u, v), cx) in us.iter_mut().zip(vs.iter_mut()).zip(&self.cxs) {
                    *u = sample(urow, cx);
                    *v = sample(vrow, cx);
                }
                self.chroma_row = Some(chroma);
            }
            for (o, tx) in ys.iter_mut().zip(&self.xs) {
                *o = sample(yrow, tx);
            }
            // The conversion over contiguous rows (vectorised), each channel into
            // its plane.
            let mut rows = rows_mut(&mut dst.planes, dst.stride, y, n).map(Some);
            let (Some(r), Some(g), Some(b)) = (rows[ri].take(), rows[gi].take(), rows[bi].take())
            else {
                return Err(EngineError::Resize(format!(
                    "channel order {order:?} is not a permutation"
                )));
            };
            let pixels = r.iter_mut().zip(g.iter_mut()).zip(b.iter_mut());
            for (((r, g), b), ((&y, &u), &v)) in pixels.zip(ys.iter().zip(us.iter()).zip(vs.iter()))
            {
                [*r, *g, *b] = m.rgb(y, u, v);
            }
        }
        Ok(())
    }

    /// Resizes all of `src` to `out_w` x `out_h` into the top-left corner of `dst`;
    /// `order[c]` is the source channel (0 R, 1 G, 2 B) of plane `c`.
    pub fn run(
        &mut self,
        src: &RgbView<'_>,
        out_w: u32,
        out_h: u32,
        order: [usize; 3],
        mut dst: Planes<'_>,
    ) -> Result<(), EngineError> {
        check(out_w, out_h, &dst)?;
        self.prepare((src.width(), src.height()), (out_w, out_h), false);
        for (y, ty) in self.ys.iter().enumerate() {
            let (ra, rb) = (src.row_bytes(ty.a as u32), src.row_bytes(ty.b as u32));
            let [o0, o1, o2] = rows_mut(&mut dst.planes, dst.stride, y, out_w as usize);
            for (x, tx) in self.xs.iter().enumerate() {
                let (ia, ib) = (tx.a * 3, tx.b * 3);
                let px = |c: usize| {
                    let top = lerp(ra[ia + c], ra[ib + c], tx.t);
                    top + (lerp(rb[ia + c], rb[ib + c], tx.t) - top) * ty.t
                };
                o0[x] = px(order[0]);
                o1[x] = px(order[1]);
                o2[x] = px(order[2]);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::{I420Layout, YuvMatrix};

    #[test]
    fn i420_resizes_like_rgb_converted_first() {
        // A smooth 64x36 RGB picture and its BT.709 limited-range I420 encoding.
        let (w, h) = (64usize, 36usize);
        let rgb_at = |x: f32, y: f32| [40.0 + x * 3.0, 60.0 + y * 4.0, 200.0 - x - y];
        let (kr, kb) = (0.2126f32, 0.0722f32);
        let yuv = |[r, g, b]: [f32; 3]| {
            let y = kr * r + (1.0 - kr - kb) * g + kb * b;
            let u = (b - y) / (2.0 * (1.0 - kb));
            let v = (r - y) / (2.0 * (1.0 - kr));
            [
                16.0 + y * 219.0 / 255.0,
                128.0 + u * 224.0 / 255.0,
                128.0 + v * 224.0 / 255.0,
            ]
        };
        let (cw, ch) = (w / 2, h / 2);
        let mut data = vec![0u8; w * h + 2 * cw * ch];
        let mut rgb = vec![0u8; w * h * 3];
        for y in 0..h {
            for x in 0..w {
                let p = rgb_at(x as f32, y as f32);
                data[y * w + x] = yuv(p)[0].round() as u8;
                rgb[(y * w + x) * 3..][..3].copy_from_slice(&p.map(|v| v as u8));
            }
        }
        for y in 0..ch {
            for x in 0..cw {
                // Chroma of the 2x2 block's centre.
                let p = rgb_at(2.0 * x as f32 + 0.5, 2.0 * y as f32 + 0.5);
                let c = yuv(p);
                data[w * h + y * cw + x] = c[1].round() as u8;
                data[w * h + cw * ch + y * cw + x] = c[2].round() as u8;
            }
        }
        let layout = I420Layout {
            offsets: [0, w * h, w * h + cw * ch],
            strides: [w, cw, cw],
            matrix: YuvMatrix::bt709(false),
        };
        let i420 = I420View::new(&data, w as u32, h as u32, layout).unwrap();
        let rgbv = RgbView::new(&rgb, w as u32, h as u32, w * 3).unwrap();
        let run = |f: &mut dyn FnMut(Planes<'_>)| {
            let mut planes = vec![vec![0f32; 16 * 9]; 3];
            let [a, b, c] = &mut planes[..] else {
                unreachable!()
            };
            f(Planes {
                planes: [a, b, c],
                stride: 16,
            });
            planes
        };
        let mut r = LinearResize::default();
        let from_yuv = run(&mut |p| r.run_i420(&i420, 16, 9, [0, 1, 2], p).unwrap());
        let from_rgb = run(&mut |p| r.run(&rgbv, 16, 9, [0, 1, 2], p).unwrap());
        let d = from_yuv
            .iter()
            .flatten()
            .zip(from_rgb.iter().flatten())
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        // Rounding to 8 bits in YUV moves a sample by up to about 2 levels of RGB.
        assert!(d < 2.5, "I420 and RGB paths differ by {d} levels");
    }

    #[test]
    fn halving_averages_pixel_pairs_and_identity_copies() {
        // 4x2 RGB, each pixel's R = x * 10, G = y * 100, B = 7.
        let (w, h) = (4u32, 2u32);
        let mut data = Vec::new();
        for y in 0..h {
            for x in 0..w {
                data.extend_from_slice(&[(x * 10) as u8, (y * 100) as u8, 7]);
            }
        }
        let view = RgbView::new(&data, w, h, 12).unwrap();
        let mut r = LinearResize::default();
        let (mut a, mut b, mut c) = (vec![0f32; 2], vec![0f32; 2], vec![0f32; 2]);
        let planes = Planes {
            planes: [&mut a, &mut b, &mut c],
            stride: 2,
        };
        // 4x2 -> 2x1, planes in BGR order.
        r.run(&view, 2, 1, [2, 1, 0], planes).unwrap();
        assert_eq!(c, vec![5.0, 25.0]); // R: mean of x = 0,1 and x = 2,3
        assert_eq!(b, vec![50.0, 50.0]); // G: mean of the two rows
        assert_eq!(a, vec![7.0, 7.0]);
        // Same size: an exact copy.
        let (mut a, mut b, mut c) = (vec![0f32; 8], vec![0f32; 8], vec![0f32; 8]);
        let planes = Planes {
            planes: [&mut a, &mut b, &mut c],
            stride: 4,
        };
        r.run(&view, 4, 2, [0, 1, 2], planes).unwrap();
        assert_eq!(a, vec![0.0, 10.0, 20.0, 30.0, 0.0, 10.0, 20.0, 30.0]);
    }

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
        let resize = |view: &RgbView<'_>| {
            let mut planes = vec![vec![0f32; 6]; 3];
            let [a, b, c] = &mut planes[..] else {
                unreachable!()
            };
            LinearResize::default()
                .run(
                    view,
                    3,
                    2,
                    [0, 1, 2],
                    Planes {
                        planes: [a, b, c],
                        stride: 3,
                    },
                )
                .unwrap();
            planes
        };
        assert_eq!(
            resize(&RgbView::new(&padded, w, h, stride).unwrap()),
            resize(&RgbView::new(&packed, w, h, w as usize * 3).unwrap())
        );
        assert!(RgbView::new(&packed[1..], w, h, w as usize * 3).is_err());
    }
}
