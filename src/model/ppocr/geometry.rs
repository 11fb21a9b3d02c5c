//! Plane geometry the DB post-processing needs, as OpenCV does it: 8-connected
//! regions of a mask, convex hulls, minimum-area rectangles (rotating calipers) and
//! corner ordering.
//!
//! ```ignore
//! let hull = convex_hull(&[[0.0, 0.0], [4.0, 0.0], [4.0, 2.0], [0.0, 2.0], [2.0, 1.0]]);
//! let (quad, short_side) = min_area_rect(&hull).unwrap();
//! assert_eq!(short_side, 2.0);
//! ```

/// A point `[x, y]`.
pub(super) type Point = [f64; 2];
/// Four corners: top-left, top-right, bottom-right, bottom-left.
pub(super) type Quad = [Point; 4];

/// The outer-border pixels of each 8-connected region of `mask` (`w` x `h`, non-zero
/// = set), at most `max` regions, in raster order of their first pixel.
pub(super) fn regions(mask: &[u8], w: usize, h: usize, max: usize) -> Vec<Vec<Point>> {
    let mut label = vec![false; mask.len()];
    let mut out = Vec::new();
    let mut stack = Vec::new();
    let set = |x: isize, y: isize| {
        x >= 0
            && y >= 0
            && (x as usize) < w
            && (y as usize) < h
            && mask[y as usize * w + x as usize] != 0
    };
    for start in 0..mask.len() {
        if mask[start] == 0 || label[start] {
            continue;
        }
        if out.len() == max {
            break;
        }
        let mut border = Vec::new();
        label[start] = true;
        stack.push(start);
        while let Some(i) = stack.pop() {
            let (x, y) = ((i % w) as isize, (i / w) as isize);
            if !(set(x - 1, y) && set(x + 1, y) && set(x, y - 1) && set(x, y + 1)) {
                border.push([x as f64, y as f64]);
            }
            for dy in -1..=1 {
                for dx in -1..=1 {
                    let (nx, ny) = (x + dx, y + dy);
                    if set(nx, ny) {
                        let j = ny as usize * w + nx as usize;
                        if !label[j] {
                            label[j] = true;
                            stack.push(j);
                        }
                    }
                }
            }
        }
        out.push(border);
    }
    out
}

fn cross(o: Point, a: Point, b: Point) -> f64 {
    (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
}

/// Convex hull (counter-clockwise in image coordinates' math sense), Andrew's
/// monotone chain; collinear points are dropped.
pub(super) fn convex_hull(points: &[Point]) -> Vec<Point> {
    let mut p = points.to_vec();
    p.sort_by(|a, b| a[0].total_cmp(&b[0]).then(a[1].total_cmp(&b[1])));
    p.dedup();
    if p.len() < 3 {
        return p;
    }
    let mut hull: Vec<Point> = Vec::with_capacity(2 * p.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &Point>> = if pass == 0 {
            Box::new(p.iter())
        } else {
            Box::new(p.iter().rev())
        };
        for &q in iter {
            while hull.len() >= start + 2
                && cross(hull[hull.len() - 2], hull[hull.len() - 1], q) <= 0.0
            {
                hull.pop();
            }
            hull.push(q);
        }
        hull.pop();
    }
    hull
}

/// The smallest-area rectangle around a convex hull, its corners ordered as
/// [`order_corners`] does, and its shorter side; `None` for fewer than 3 points.
pub(super) fn min_area_rect(hull: &[Point]) -> Option<(Quad, f64)> {
    if hull.len() < 3 {
        return None;
    }
    let mut best: Option<(f64, Quad, f64)> = None;
    for i in 0..hull.len() {
        let (a, b) = (hull[i], hull[(i + 1) % hull.len()]);
        let len = (b[0] - a[0]).hypot(b[1] - a[1]);
        if len == 0.0 {
            continue;
        }
        let u = [(b[0] - a[0]) / len, (b[1] - a[1]) / len];
        let v = [-u[1], u[0]];
        let (mut u0, mut u1, mut v0, mut v1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
        for p in hull {
            let (du, dv) = (p[0] * u[0] + p[1] * u[1], p[0] * v[0] + p[1] * v[1]);
            u0 = u0.min(du);
            u1 = u1.max(du);
            v0 = v0.min(dv);
            v1 = v1.max(dv);
        }
        let area = (u1 - u0) * (v1 - v0);
        if best.as_ref().is_none_or(|(b, _, _)| area < *b - 1e-9) {
            let at = |s: f64, t: f64| [s * u[0] + t * v[0], s * u[1] + t * v[1]];
            let quad = [at(u0, v0), at(u1, v0), at(u1, v1), at(u0, v1)];
            best = Some((area, quad, (u1 - u0).min(v1 - v0)));
        }
    }
    best.map(|(_, quad, side)| (order_corners(quad), side))
}

/// Orders corners top-left, top-right, bottom-right, bottom-left: the two with the
/// smallest x are the left ones, the upper of each pair comes first (RapidOCR's rule).
pub(super) fn order_corners(mut q: Quad) -> Quad {
    q.sort_by(|a, b| a[0].total_cmp(&b[0]));
    let (tl, bl) = if q[1][1] > q[0][1] {
        (q[0], q[1])
    } else {
        (q[1], q[0])
    };
    let (tr, br) = if q[3][1] > q[2][1] {
        (q[2], q[3])
    } else {
        (q[3], q[2])
    };
    [tl, tr, br, bl]
}

/// Whether `p` lies inside or on the convex quadrilateral `q`.
pub(super) fn inside(q: &Quad, p: Point) -> bool {
    let mut sign = 0.0;
    for i in 0..4 {
        let c = cross(q[i], q[(i + 1) % 4], p);
        if c.abs() < 1e-9 {
            continue;
        }
        if sign == 0.0 {
            sign = c.signum();
        } else if c.signum() != sign {
            return false;
        }
    }
    true
}

/// The vertices of a closed polygon grown by `delta` with round joins, as Clipper's
/// `ClipperOffset` (arc tolerance 0.25) makes them from integer points.
pub(super) fn offset_round(path: &[[i64; 2]], delta: f64) -> Vec<[i64; 2]> {
    let mut src: Vec<[f64; 2]> = Vec::with_capacity(path.len());
    for p in path {
        let p = [p[0] as f64, p[1] as f64];
        if src.last() != Some(&p) {
            src.push(p);
        }
    }
    while src.len() > 1 && src.first() == src.last() {
        src.pop();
    }
    if src.len() < 3 || delta <= 0.0 {
        return path.to_vec();
    }
    // Clipper's orientation: positive area, or the path is reversed.
    let mut area = 0.0;
    let mut j = src.len() - 1;
    for i in 0..src.len() {
        area += (src[j][0] + src[i][0]) * (src[j][1] - src[i][1]);
        j = i;
    }
    if -area * 0.5 < 0.0 {
        src.reverse();
    }
    let n = src.len();
    let normals: Vec<[f64; 2]> = (0..n)
        .map(|j| {
            let (a, b) = (src[j], src[(j + 1) % n]);
            let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
            let f = 1.0 / dx.hypot(dy);
            [dy * f, -dx * f]
        })
        .collect();
    let tol = 0.25f64.min(delta * 0.25);
    let mut steps = std::f64::consts::PI / (1.0 - tol / delta).acos();
    steps = steps.min(delta * std::f64::consts::PI);
    let (sin, cos) = (std::f64::consts::TAU / steps).sin_cos();
    let per_rad = steps / std::f64::consts::TAU;
    let round = |v: f64| {
        if v < 0.0 {
            (v - 0.5) as i64
        } else {
            (v + 0.5) as i64
        }
    };
    let mut out = Vec::new();
    let mut k = n - 1;
    for j in 0..n {
        let (nk, nj, p) = (normals[k], normals[j], src[j]);
        let sin_a = nk[0] * nj[1] - nj[0] * nk[1];
        let at = |nx: f64, ny: f64| [round(p[0] + nx * delta), round(p[1] + ny * delta)];
        if (sin_a * delta).abs() < 1.0 && nk[0] * nj[0] + nk[1] * nj[1] > 0.0 {
            out.push(at(nk[0], nk[1]));
        } else if sin_a * delta < 0.0 {
            out.push(at(nk[0], nk[1]));
            out.push([round(p[0]), round(p[1])]);
            out.push(at(nj[0], nj[1]));
        } else {
            let sin_a = sin_a.clamp(-1.0, 1.0);
            let a = sin_a.atan2(nk[0] * nj[0] + nk[1] * nj[1]);
            let n_steps = (round(per_rad * a.abs()) as usize).max(1);
            let (mut x, mut y) = (nk[0], nk[1]);
            for _ in 0..n_steps {
                out.push(at(x, y));
                let x2 = x;
                x = x * cos - sin * y;
                y = x2 * sin + y * cos;
            }
            out.push(at(nj[0], nj[1]));
        }
        k = j;
    }
    out
}

pub(super) fn dist(a: Point, b: Point) -> f64 {
    (a[0] - b[0]).hypot(a[1] - b[1])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotated_rectangle_is_recovered() {
        // A 2x1 grid of pixels rotated by 30°: the rectangle's sides come back.
        let (c, s) = (30f64.to_radians().cos(), 30f64.to_radians().sin());
        let pts: Vec<Point> = [
            [0.0, 0.0],
            [20.0, 0.0],
            [20.0, 10.0],
            [0.0, 10.0],
            [7.0, 3.0],
        ]
        .iter()
        .map(|p| [50.0 + p[0] * c - p[1] * s, 50.0 + p[0] * s + p[1] * c])
        .collect();
        let hull = convex_hull(&pts);
        assert_eq!(hull.len(), 4);
        let (q, short) = min_area_rect(&hull).unwrap();
        assert!((short - 10.0).abs() < 1e-9);
        assert!((dist(q[0], q[1]) - 20.0).abs() < 1e-9);
        assert!(q[0][0] < q[1][0] && q[3][1] > q[0][1]);
    }

    #[test]
    fn regions_are_eight_connected_and_report_their_border() {
        #[rustfmt::skip]
        let mask = [
            1, 1, 1, 0, 0,
            1, 1, 1, 0, 0,
            1, 1, 1, 0, 0,
            0, 0, 0, 1, 0,
            0, 0, 0, 0, 1,
        ];
        let r = regions(&mask, 5, 5, 10);
        assert_eq!(r.len(), 1);
        // Every pixel but the block's centre is on the border.
        assert_eq!(r[0].len(), 10);
        assert!(inside(
            &[[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]],
            [2.0, 1.0]
        ));
        // pyclipper on [[0.9,0.9],[10.9,0.9],[10.9,5.9],[0.9,5.9]] grown by 2 gives these
        // vertices (after its union, which drops collinear ones): same hull.
        let hull = |v: &[[i64; 2]]| {
            let p: Vec<Point> = v.iter().map(|p| [p[0] as f64, p[1] as f64]).collect();
            convex_hull(&p)
        };
        let o = offset_round(&[[0, 0], [10, 0], [10, 5], [0, 5]], 2.0);
        let want = [
            [12, -1],
            [12, 5],
            [11, 7],
            [0, 7],
            [-2, 6],
            [-2, 0],
            [-1, -2],
            [10, -2],
        ];
        assert_eq!(hull(&o), hull(&want));
        assert!(!inside(
            &[[0.0, 0.0], [2.0, 0.0], [2.0, 2.0], [0.0, 2.0]],
            [2.1, 1.0]
        ));
    }
}
