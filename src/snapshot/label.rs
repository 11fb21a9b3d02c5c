//! Text labels drawn into a packed RGB picture (a detection's label and score on its
//! box, a query's id on its region): the public-domain 8×8 bitmap font of `font8x8`
//! (ASCII; anything else shows as `?`), scaled by a whole number, on a filled
//! background. The text is formatted straight into the pixels: nothing is allocated.

use std::fmt::{self, Write};

use font8x8::legacy::BASIC_LEGACY;

/// A glyph is 8×8 font pixels; the background reaches one font pixel beyond the text.
const GLYPH: usize = 8;
const PAD: usize = 1;

/// How a label looks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Style {
    /// Image pixels per font pixel.
    pub scale: usize,
    pub text: [u8; 3],
    pub background: [u8; 3],
}

impl Style {
    /// Width and height in pixels of a label of `chars` characters.
    pub(super) fn size(&self, chars: usize) -> (usize, usize) {
        (
            (chars * GLYPH + 2 * PAD) * self.scale,
            (GLYPH + 2 * PAD) * self.scale,
        )
    }
}

/// The font scale for a picture `h` pixels tall: 2 from 720 lines up, else 1.
pub(super) fn scale_for(h: usize) -> usize {
    if h >= 720 { 2 } else { 1 }
}

/// Draws `text` at the top-left corner of normalised `rect` in `rgb` (packed rows of
/// `w` pixels): just above the corner when there is room, else just below it, and
/// moved left as far as needed to end inside the picture. What does not fit is cut
/// off at the picture's edge.
pub(super) fn label(
    rgb: &mut [u8],
    w: usize,
    h: usize,
    rect: [f32; 4],
    text: fmt::Arguments,
    style: &Style,
) {
    if w == 0 || h == 0 {
        return;
    }
    let mut count = Count(0);
    // Counting never fails (the writer accepts everything).
    let _ = count.write_fmt(text);
    let (lw, lh) = style.size(count.0);
    let px = |v: f32, n: usize| ((v.clamp(0.0, 1.0) * n as f32) as usize).min(n - 1);
    let (x0, y0) = (px(rect[0].min(rect[2]), w), px(rect[1].min(rect[3]), h));
    let x = x0.min(w.saturating_sub(lw));
    let y = if y0 >= lh { y0 - lh } else { y0 };
    let mut canvas = Canvas { rgb, w, h };
    for row in y..(y + lh).min(h) {
        canvas.span(x, (x + lw).min(w), row, style.background);
    }
    let _ = Pen {
        canvas,
        x: x + PAD * style.scale,
        y: y + PAD * style.scale,
        style,
    }
    .write_fmt(text);
}

/// Counts the characters written to it.
struct Count(usize);

impl Write for Count {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 += s.chars().count();
        Ok(())
    }
}

/// Packed RGB pixels; writes outside are dropped.
struct Canvas<'a> {
    rgb: &'a mut [u8],
    w: usize,
    h: usize,
}

impl Canvas<'_> {
    /// Paints pixels `x0..x1` of row `y`.
    fn span(&mut self, x0: usize, x1: usize, y: usize, color: [u8; 3]) {
        if y >= self.h || x0 >= x1.min(self.w) {
            return;
        }
        let row = y * self.w;
        let Some(px) = self.rgb.get_mut((row + x0) * 3..(row + x1.min(self.w)) * 3) else {
            return;
        };
        for p in px.chunks_exact_mut(3) {
            p.copy_from_slice(&color);
        }
    }
}

/// Draws each character written to it and moves right.
struct Pen<'a, 'b> {
    canvas: Canvas<'a>,
    x: usize,
    y: usize,
    style: &'b Style,
}

impl Write for Pen<'_, '_> {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let k = self.style.scale;
        for c in s.chars() {
            let code = if c.is_ascii() && !c.is_ascii_control() {
                c as usize
            } else {
                usize::from(b'?')
            };
            let glyph = BASIC_LEGACY[code];
            for (gy, bits) in glyph.iter().enumerate() {
                // Bit 0 is the glyph's leftmost pixel.
                for gx in 0..GLYPH {
                    if bits & (1 << gx) == 0 {
                        continue;
                    }
                    let x = self.x + gx * k;
                    for dy in 0..k {
                        self.canvas
                            .span(x, x + k, self.y + gy * k + dy, self.style.text);
                    }
                }
            }
            self.x += GLYPH * k;
            if self.x >= self.canvas.w {
                break;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WHITE: [u8; 3] = [255, 255, 255];
    const RED: [u8; 3] = [230, 30, 30];

    fn style(scale: usize) -> Style {
        Style {
            scale,
            text: WHITE,
            background: RED,
        }
    }

    fn at(rgb: &[u8], w: usize, x: usize, y: usize) -> [u8; 3] {
        let i = (y * w + x) * 3;
        [rgb[i], rgb[i + 1], rgb[i + 2]]
    }

    /// The glyph pixels of `c` drawn at scale `k` with its top-left at (x, y) are the
    /// text colour, the others of its cell the background.
    fn assert_glyph(rgb: &[u8], w: usize, (x, y): (usize, usize), c: u8, k: usize) {
        let glyph = BASIC_LEGACY[usize::from(c)];
        for gy in 0..8 * k {
            for gx in 0..8 * k {
                let on = glyph[gy / k] & (1 << (gx / k)) != 0;
                let want = if on { WHITE } else { RED };
                assert_eq!(
                    at(rgb, w, x + gx, y + gy),
                    want,
                    "{:?} pixel ({gx}, {gy})",
                    c as char
                );
            }
        }
    }

    #[test]
    fn a_label_sits_above_its_box_with_its_glyphs_in_the_text_colour() {
        let (w, h) = (100, 60);
        let mut rgb = vec![0u8; w * h * 3];
        // Box from (20, 30): the label (10 px tall) goes above, from (20, 20).
        label(
            &mut rgb,
            w,
            h,
            [0.2, 0.5, 0.9, 0.9],
            format_args!("A{}", 7),
            &style(1),
        );
        assert_glyph(&rgb, w, (21, 21), b'A', 1);
        assert_glyph(&rgb, w, (29, 21), b'7', 1);
        // The padding is background; just outside the label nothing changed.
        assert_eq!(at(&rgb, w, 20, 20), RED);
        assert_eq!(at(&rgb, w, 37, 29), RED);
        assert_eq!(at(&rgb, w, 38, 25), [0, 0, 0]);
        assert_eq!(at(&rgb, w, 19, 25), [0, 0, 0]);
        assert_eq!(at(&rgb, w, 25, 19), [0, 0, 0]);
        assert_eq!(at(&rgb, w, 25, 30), [0, 0, 0]);
    }

    #[test]
    fn at_the_top_and_right_edges_the_label_moves_inside() {
        let (w, h) = (100, 60);
        let mut rgb = vec![0u8; w * h * 3];
        // A box at the top right: the 2-character label (36 x 20 at scale 2) goes
        // below the corner and is pushed left to end at the right edge.
        label(
            &mut rgb,
            w,
            h,
            [0.9, 0.0, 1.0, 0.5],
            format_args!("ok"),
            &style(2),
        );
        assert_glyph(&rgb, w, (66, 2), b'o', 2);
        assert_glyph(&rgb, w, (82, 2), b'k', 2);
        assert_eq!(at(&rgb, w, 99, 0), RED);
        assert_eq!(at(&rgb, w, 64, 19), RED);
        assert_eq!(at(&rgb, w, 63, 10), [0, 0, 0]);
        assert_eq!(at(&rgb, w, 70, 20), [0, 0, 0]);
    }

    #[test]
    fn text_wider_or_taller_than_the_picture_is_cut_off() {
        for (w, h) in [(1, 1), (5, 3), (30, 7), (7, 30)] {
            let mut rgb = vec![0u8; w * h * 3];
            for rect in [
                [0.0, 0.0, 1.0, 1.0],
                [1.0, 1.0, 1.0, 1.0],
                [0.5, 0.9, 0.1, 0.2],
            ] {
                label(
                    &mut rgb,
                    w,
                    h,
                    rect,
                    format_args!("person {:.2}", 0.87),
                    &style(2),
                );
            }
            assert_eq!(at(&rgb, w, 0, 0), RED, "{w}x{h}");
        }
        label(&mut [], 0, 0, [0.0; 4], format_args!("x"), &style(1));
    }

    #[test]
    fn characters_outside_ascii_show_as_a_question_mark() {
        let (w, h) = (20, 12);
        let mut rgb = vec![0u8; w * h * 3];
        label(&mut rgb, w, h, [0.0; 4], format_args!("é"), &style(1));
        assert_glyph(&rgb, w, (1, 1), b'?', 1);
    }

    #[test]
    fn the_font_is_doubled_from_720_lines() {
        assert_eq!(scale_for(360), 1);
        assert_eq!(scale_for(719), 1);
        assert_eq!(scale_for(720), 2);
        assert_eq!(scale_for(1080), 2);
    }
}
