//! A snapshot's annotations drawn into a packed RGB picture: the outlines of the
//! query regions and detection boxes, then their labels.

use super::Region;
use super::label::{self, Style};
use crate::model::Detection;

/// Region outline colour (yellow) and detection box colour (red); labels are written
/// in black on the yellow and in white on the red.
pub(super) const REGION: [u8; 3] = [255, 210, 0];
pub(super) const BOX: [u8; 3] = [230, 30, 30];
pub(super) const REGION_TEXT: [u8; 3] = [0, 0, 0];
pub(super) const BOX_TEXT: [u8; 3] = [255, 255, 255];

/// Draws the outline of normalised `[x0, y0, x1, y1]` in `rgb` (packed rows of
/// `w` pixels), `thick` pixels wide, in `color`.
pub(super) fn rectangle(
    rgb: &mut [u8],
    w: usize,
    h: usize,
    rect: [f32; 4],
    thick: usize,
    color: [u8; 3],
) {
    if w == 0 || h == 0 {
        return;
    }
    let px = |v: f32, n: usize| ((v.clamp(0.0, 1.0) * n as f32) as usize).min(n - 1);
    let (x0, x1) = (px(rect[0], w), px(rect[2], w));
    let (y0, y1) = (px(rect[1], h), px(rect[3], h));
    let (x0, x1) = (x0.min(x1), x0.max(x1));
    let (y0, y1) = (y0.min(y1), y0.max(y1));
    let mut put = |x: usize, y: usize| {
        let i = (y * w + x) * 3;
        if let Some(p) = rgb.get_mut(i..i + 3) {
            p.copy_from_slice(&color);
        }
    };
    for t in 0..thick {
        for x in x0..=x1 {
            put(x, (y0 + t).min(y1));
            put(x, y1.saturating_sub(t).max(y0));
        }
        for y in y0..=y1 {
            put((x0 + t).min(x1), y);
            put(x1.saturating_sub(t).max(x0), y);
        }
    }
}

/// Outlines `regions` and `boxes` in `rgb` (packed rows of `w` pixels), then labels
/// them (last, so that no outline crosses a label).
pub(super) fn annotate(
    rgb: &mut [u8],
    w: usize,
    h: usize,
    regions: &[Region],
    boxes: &[Detection],
) {
    let thick = (w.max(h) / 320).max(1);
    for r in regions {
        rectangle(rgb, w, h, r.rect, thick, REGION);
    }
    for b in boxes {
        rectangle(rgb, w, h, b.bbox, thick, BOX);
    }
    let scale = label::scale_for(h);
    let on_region = Style {
        scale,
        text: REGION_TEXT,
        background: REGION,
    };
    let on_box = Style {
        scale,
        text: BOX_TEXT,
        background: BOX,
    };
    for r in regions {
        label::label(rgb, w, h, r.rect, format_args!("{}", r.query), &on_region);
    }
    for b in boxes {
        // Florence-2's boxes have no score (NaN).
        if b.score.is_finite() {
            let text = format_args!("{} {:.2}", b.label, b.score);
            label::label(rgb, w, h, b.bbox, text, &on_box);
        } else {
            label::label(rgb, w, h, b.bbox, format_args!("{}", b.label), &on_box);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outline_only() {
        let (w, h) = (10, 10);
        let mut rgb = vec![0u8; w * h * 3];
        rectangle(&mut rgb, w, h, [0.2, 0.2, 0.8, 0.8], 1, [255, 0, 0]);
        let red = |x: usize, y: usize| rgb[(y * w + x) * 3] == 255;
        assert!(red(2, 2) && red(8, 8) && red(5, 2) && red(2, 5));
        assert!(!red(5, 5) && !red(0, 0) && !red(9, 9));
    }
}
