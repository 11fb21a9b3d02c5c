//! YOLOX output decoding (grids of strides 8/16/32) and class-wise NMS.

use std::sync::Arc;

use crate::model::Detection;

/// (x, y, stride) per output row: 52x52, 26x26, 13x13 for a 416 input, row-major.
pub(super) fn grid(w: u32, h: u32) -> Vec<(f32, f32, f32)> {
    let mut g = Vec::new();
    for stride in [8u32, 16, 32] {
        for y in 0..h / stride {
            for x in 0..w / stride {
                g.push((x as f32, y as f32, stride as f32));
            }
        }
    }
    g
}

/// Every (box, class) whose `objectness * class probability` reaches `threshold`,
/// with boxes normalised to the frame.
pub(super) fn candidates(
    rows: &[f32],
    grid: &[(f32, f32, f32)],
    labels: &[Arc<str>],
    threshold: f32,
    scale: f32,
    (fw, fh): (u32, u32),
    out: &mut Vec<Detection>,
) {
    out.clear();
    let cols = 5 + labels.len();
    for (row, &(gx, gy, stride)) in rows.chunks_exact(cols).zip(grid) {
        let objectness = row[4];
        if objectness < threshold {
            continue;
        }
        let cx = (row[0] + gx) * stride / scale;
        let cy = (row[1] + gy) * stride / scale;
        let bw = row[2].exp() * stride / scale;
        let bh = row[3].exp() * stride / scale;
        let bbox = [
            ((cx - bw / 2.0) / fw as f32).clamp(0.0, 1.0),
            ((cy - bh / 2.0) / fh as f32).clamp(0.0, 1.0),
            ((cx + bw / 2.0) / fw as f32).clamp(0.0, 1.0),
            ((cy + bh / 2.0) / fh as f32).clamp(0.0, 1.0),
        ];
        for (class, &p) in row[5..].iter().enumerate() {
            let score = objectness * p;
            if score >= threshold {
                out.push(Detection {
                    class,
                    label: labels[class].clone(),
                    score,
                    bbox,
                    model: None,
                });
            }
        }
    }
}

/// Class-wise non-maximum suppression; `candidates` is sorted in place, survivors go
/// to `out` best first.
pub fn nms(candidates: &mut [Detection], iou_threshold: f32, out: &mut Vec<Detection>) {
    candidates.sort_by(|a, b| b.score.total_cmp(&a.score));
    out.clear();
    for c in candidates.iter() {
        if out
            .iter()
            .all(|k| k.class != c.class || iou(&k.bbox, &c.bbox) <= iou_threshold)
        {
            out.push(c.clone());
        }
    }
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let ix = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let iy = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = ix * iy;
    let union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter;
    if union <= 0.0 { 0.0 } else { inter / union }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn det(class: usize, score: f32, bbox: [f32; 4]) -> Detection {
        Detection {
            class,
            label: Arc::from(format!("c{class}")),
            score,
            bbox,
            model: None,
        }
    }

    #[test]
    fn grid_matches_the_yolox_nano_layout() {
        assert_eq!(grid(416, 416).len(), 3549);
        assert_eq!(grid(416, 416)[52], (0.0, 1.0, 8.0));
    }

    #[test]
    fn nms_suppresses_overlaps_of_the_same_class_only() {
        let mut c = vec![
            det(0, 0.5, [0.0, 0.0, 0.5, 0.5]),
            det(0, 0.9, [0.01, 0.0, 0.5, 0.5]),
            det(1, 0.8, [0.0, 0.0, 0.5, 0.5]),
            det(0, 0.7, [0.6, 0.6, 0.9, 0.9]),
        ];
        let mut out = Vec::new();
        nms(&mut c, 0.45, &mut out);
        let kept: Vec<(usize, f32)> = out.iter().map(|d| (d.class, d.score)).collect();
        assert_eq!(kept, vec![(0, 0.9), (1, 0.8), (0, 0.7)]);
    }
}
