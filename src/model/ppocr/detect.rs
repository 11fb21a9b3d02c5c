//! DB text detection: the detector's input (shrunk so the longest side is at most
//! `max_side`, both sides rounded to multiples of 32, BGR, `(x/255 − 0.5)/0.5`) and
//! the post-processing of its probability map into text boxes, as RapidOCR does it:
//! threshold, 2x2 dilation, 8-connected regions, minimum-area rectangle, mean
//! probability inside it, unclip by `area × ratio / perimeter`, back to image pixels.
//!
//! ```ignore
//! let (w, h) = input_size(640, 200, 960); // (640, 192)
//! ```

use super::geometry::{self, Point, Quad};
use crate::engine::{EngineError, LinearResize, Planes, RgbView};

/// The detector's thresholds.
#[derive(Debug, Clone, Copy)]
pub struct DetParams {
    pub threshold: f32,
    pub box_threshold: f32,
    pub unclip_ratio: f32,
}

/// Regions considered per image at most (RapidOCR's `max_candidates`).
const MAX_CANDIDATES: usize = 1000;
/// Boxes with a shorter side below this (map pixels) are dropped.
const MIN_SIZE: f64 = 3.0;

/// The detector's input size for a `w` x `h` image.
pub(super) fn input_size(w: u32, h: u32, max_side: u32) -> (u32, u32) {
    let long = w.max(h);
    let ratio = if long > max_side {
        f64::from(max_side) / f64::from(long)
    } else {
        1.0
    };
    let side = |s: u32| {
        let r = (f64::from(s) * ratio).floor();
        (((r / 32.0).round() * 32.0) as u32).max(32)
    };
    (side(w), side(h))
}

/// Writes the normalised BGR input for `view` at `size` into `tensor` (CHW).
pub(super) fn fill(
    view: &RgbView<'_>,
    (w, h): (u32, u32),
    resize: &mut LinearResize,
    tensor: &mut Vec<f32>,
) -> Result<(), EngineError> {
    let plane = (w * h) as usize;
    tensor.clear();
    tensor.resize(3 * plane, 0.0);
    let (b, rest) = tensor.split_at_mut(plane);
    let (g, r) = rest.split_at_mut(plane);
    resize.run(
        view,
        w,
        h,
        [2, 1, 0],
        Planes {
            planes: [b, g, r],
            stride: w as usize,
        },
    )?;
    normalise(tensor);
    Ok(())
}

/// `(x/255 − 0.5)/0.5`, in place.
pub(super) fn normalise(v: &mut [f32]) {
    for x in v {
        *x = *x / 127.5 - 1.0;
    }
}

/// Text boxes of the probability map `prob` (`pw` x `ph`) in pixels of the
/// `src_w` x `src_h` image, corners ordered, in reading order.
pub(super) fn boxes(
    prob: &[f32],
    (pw, ph): (usize, usize),
    (src_w, src_h): (u32, u32),
    p: &DetParams,
) -> Vec<Quad> {
    let mut mask = vec![0u8; pw * ph];
    // Threshold, then dilate with a 2x2 kernel anchored at its bottom-right cell.
    for y in 0..ph {
        for x in 0..pw {
            let on = |xx: usize, yy: usize| prob[yy * pw + xx] > p.threshold;
            let mut v = on(x, y);
            if x > 0 {
                v |= on(x - 1, y);
            }
            if y > 0 {
                v |= on(x, y - 1) || (x > 0 && on(x - 1, y - 1));
            }
            mask[y * pw + x] = u8::from(v);
        }
    }
    let (sw, sh) = (f64::from(src_w), f64::from(src_h));
    let mut out = Vec::new();
    for border in geometry::regions(&mask, pw, ph, MAX_CANDIDATES) {
        let hull = geometry::convex_hull(&border);
        let Some((quad, short)) = geometry::min_area_rect(&hull) else {
            continue;
        };
        if short < MIN_SIZE {
            continue;
        }
        if mean_inside(prob, pw, ph, &quad) < f64::from(p.box_threshold) {
            continue;
        }
        let Some((grown, short)) = unclip(&quad, f64::from(p.unclip_ratio)) else {
            continue;
        };
        if short < MIN_SIZE + 2.0 {
            continue;
        }
        let scaled = grown.map(|[x, y]| {
            [
                (x / pw as f64 * sw).round_ties_even().clamp(0.0, sw),
                (y / ph as f64 * sh).round_ties_even().clamp(0.0, sh),
            ]
        });
        // RapidOCR's filter: reorder, clip to the image, drop slivers.
        let q = geometry::order_corners(scaled).map(|[x, y]| {
            [
                x.clamp(0.0, sw - 1.0).trunc(),
                y.clamp(0.0, sh - 1.0).trunc(),
            ]
        });
        if geometry::dist(q[0], q[1]) < 4.0 || geometry::dist(q[0], q[3]) < 4.0 {
            continue;
        }
        out.push(q);
    }
    sort_reading_order(&mut out);
    out
}

/// Mean of `prob` over the pixels inside `quad` (corners truncated to integers, as
/// OpenCV's `fillPoly` gets them), within its bounding box.
fn mean_inside(prob: &[f32], w: usize, h: usize, quad: &Quad) -> f64 {
    let q = quad.map(|[x, y]| [x.trunc(), y.trunc()]);
    let lim = |v: f64, n: usize| (v.max(0.0) as usize).min(n - 1);
    let x0 = lim(
        quad.iter().map(|p| p[0]).fold(f64::MAX, f64::min).floor(),
        w,
    );
    let x1 = lim(quad.iter().map(|p| p[0]).fold(f64::MIN, f64::max).ceil(), w);
    let y0 = lim(
        quad.iter().map(|p| p[1]).fold(f64::MAX, f64::min).floor(),
        h,
    );
    let y1 = lim(quad.iter().map(|p| p[1]).fold(f64::MIN, f64::max).ceil(), h);
    // OpenCV's fillPoly: the inside plus the rasterised edges.
    let bw = x1 - x0 + 1;
    let mut mask = vec![false; bw * (y1 - y0 + 1)];
    let mut mark = |x: f64, y: f64| {
        let (x, y) = (x.round_ties_even() as isize, y.round_ties_even() as isize);
        if x >= x0 as isize && x <= x1 as isize && y >= y0 as isize && y <= y1 as isize {
            mask[(y as usize - y0) * bw + (x as usize - x0)] = true;
        }
    };
    for i in 0..4 {
        let (a, b) = (q[i], q[(i + 1) % 4]);
        let steps = (b[0] - a[0]).abs().max((b[1] - a[1]).abs()).max(1.0) as usize;
        for k in 0..=steps {
            let t = k as f64 / steps as f64;
            mark(a[0] + (b[0] - a[0]) * t, a[1] + (b[1] - a[1]) * t);
        }
    }
    for y in y0..=y1 {
        for x in x0..=x1 {
            if geometry::inside(&q, [x as f64, y as f64]) {
                mark(x as f64, y as f64);
            }
        }
    }
    let (mut sum, mut n) = (0.0f64, 0usize);
    for (i, _) in mask.iter().enumerate().filter(|(_, m)| **m) {
        let (x, y) = (x0 + i % bw, y0 + i / bw);
        sum += f64::from(prob[y * w + x]);
        n += 1;
    }
    if n == 0 { 0.0 } else { sum / n as f64 }
}

/// Grows a rectangle by `area × ratio / perimeter` as RapidOCR does: its corners
/// truncated to integers, offset with round joins (Clipper), and the minimum-area
/// rectangle of the result.
fn unclip(quad: &Quad, ratio: f64) -> Option<(Quad, f64)> {
    let (w, h) = (
        geometry::dist(quad[0], quad[1]),
        geometry::dist(quad[0], quad[3]),
    );
    let perimeter = 2.0 * (w + h);
    if perimeter == 0.0 {
        return None;
    }
    // Shapely's area and length of the (float) rectangle.
    let area = 0.5
        * (0..4)
            .map(|i| {
                let (a, b) = (quad[i], quad[(i + 1) % 4]);
                a[0] * b[1] - b[0] * a[1]
            })
            .sum::<f64>()
            .abs();
    let length: f64 = (0..4)
        .map(|i| geometry::dist(quad[i], quad[(i + 1) % 4]))
        .sum();
    let d = area * ratio / length;
    let ints: Vec<[i64; 2]> = quad.iter().map(|p| [p[0] as i64, p[1] as i64]).collect();
    let grown: Vec<Point> = geometry::offset_round(&ints, d)
        .iter()
        .map(|p| [p[0] as f64, p[1] as f64])
        .collect();
    geometry::min_area_rect(&geometry::convex_hull(&grown))
}

/// Top to bottom by the top-left corner, then left to right within 10 pixels of
/// height (RapidOCR's `sorted_boxes`).
pub(super) fn sort_reading_order(boxes: &mut [Quad]) {
    boxes.sort_by(|a, b| {
        a[0][1]
            .total_cmp(&b[0][1])
            .then(a[0][0].total_cmp(&b[0][0]))
    });
    for i in 0..boxes.len().saturating_sub(1) {
        for j in (0..=i).rev() {
            if (boxes[j + 1][0][1] - boxes[j][0][1]).abs() < 10.0
                && boxes[j + 1][0][0] < boxes[j][0][0]
            {
                boxes.swap(j, j + 1);
            } else {
                break;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_is_shrunk_to_max_side_and_rounded_to_32() {
        assert_eq!(input_size(640, 200, 960), (640, 192));
        assert_eq!(input_size(1920, 1080, 960), (960, 544));
        assert_eq!(input_size(10, 10, 960), (32, 32));
    }

    #[test]
    fn a_rectangle_of_text_becomes_a_grown_box() {
        // 100x40 map with text probability 0.9 on x 20..=79, y 10..=19.
        let (w, h) = (100, 40);
        let mut prob = vec![0.0f32; w * h];
        for y in 10..20 {
            for x in 20..80 {
                prob[y * w + x] = 0.9;
            }
        }
        let p = DetParams {
            threshold: 0.3,
            box_threshold: 0.5,
            unclip_ratio: 1.6,
        };
        let b = boxes(&prob, (w, h), (200, 80), &p);
        assert_eq!(b.len(), 1);
        // Dilated region x 20..=80, y 10..=20 (60x10); d = 600*1.6/140 ≈ 6.86.
        let q = b[0];
        assert!((q[0][0] - 2.0 * (20.0 - 6.86)).abs() <= 2.0, "{q:?}");
        assert!((q[2][1] - 2.0 * (20.0 + 6.86)).abs() <= 2.0, "{q:?}");
    }
}
