//! Rectangles drawn into a packed RGB picture (regions and boxes of a snapshot).

/// Draws the outline of normalised `[x0, y0, x1, y1]` in `rgb` (packed rows of
/// `w` pixels), `thick` pixels wide, in `color`.
pub fn rectangle(rgb: &mut [u8], w: usize, h: usize, rect: [f32; 4], thick: usize, color: [u8; 3]) {
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
