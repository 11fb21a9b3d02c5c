//! Bilinear resizing as OpenCV's `INTER_LINEAR` does it (2x2 taps per output pixel,
//! no antialiasing: the resize detectors such as YOLOX are trained with), written
//! straight into the planes of a float input tensor. Source positions and weights are
//! tabulated once per geometry, so a stream of same-sized frames allocates nothing.

use super::{EngineError, RgbView};

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
    key: (u32, u32, u32, u32),
    xs: Vec<Tap>,
    ys: Vec<Tap>,
}

/// Where the resized pixels go: three planes (in the channel order the model wants)
/// whose rows are `stride` values apart; pixel values are `scale * v + offset[c]`.
pub struct Planes<'a> {
    pub planes: [&'a mut [f32]; 3],
    pub stride: usize,
}

impl LinearResize {
    /// Resizes all of `src` to `out_w` x `out_h` into the top-left corner of `dst`;
    /// `order[c]` is the source channel (0 R, 1 G, 2 B) of plane `c`.
    pub fn run(
        &mut self,
        src: &RgbView<'_>,
        out_w: u32,
        out_h: u32,
        order: [usize; 3],
        dst: Planes<'_>,
    ) -> Result<(), EngineError> {
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
        let key = (src.width(), src.height(), out_w, out_h);
        if self.key != key || self.xs.is_empty() {
            taps(src.width(), out_w, &mut self.xs);
            taps(src.height(), out_h, &mut self.ys);
            self.key = key;
        }
        let [p0, p1, p2] = dst.planes;
        for (y, ty) in self.ys.iter().enumerate() {
            let (ra, rb) = (src.row_bytes(ty.a as u32), src.row_bytes(ty.b as u32));
            let row = y * dst.stride;
            let (o0, o1, o2) = (
                &mut p0[row..row + out_w as usize],
                &mut p1[row..row + out_w as usize],
                &mut p2[row..row + out_w as usize],
            );
            for (x, tx) in self.xs.iter().enumerate() {
                let (ia, ib) = (tx.a * 3, tx.b * 3);
                let px = |c: usize| {
                    let top = f32::from(ra[ia + c])
                        + (f32::from(ra[ib + c]) - f32::from(ra[ia + c])) * tx.t;
                    let bottom = f32::from(rb[ia + c])
                        + (f32::from(rb[ib + c]) - f32::from(rb[ia + c])) * tx.t;
                    top + (bottom - top) * ty.t
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
}
