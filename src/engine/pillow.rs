//! Pillow-exact resampling (`Image.resize(size, BILINEAR | BICUBIC | LANCZOS)` on 8-bit
//! RGB).
//!
//! CLIP-family (CLIP, SigLIP, MobileCLIP) and Idefics3 (SmolVLM) models were trained on
//! images resized by Pillow,
//! and the Hugging Face processors still resize with it, so their input must match
//! Pillow bit for bit: fast_image_resize rounds its coefficients to 15 bits where Pillow keeps
//! 22, which moves pixels by up to 5 levels. This follows Pillow's
//! `libImaging/Resample.c`: coefficients normalised in f64 and fixed to 22 bits, a
//! horizontal pass over the rows the vertical pass needs (rounded to u8), then the
//! vertical pass. Only the requested output window is computed (a centre crop costs
//! the crop, not the whole resized image); coefficient tables are reused while the
//! geometry stays the same.
//!
//! ```
//! use ocellus::engine::{Filter, PillowResize, Rect, RgbView, Window};
//! let pixels = vec![128u8; 8 * 6 * 3];
//! let src = RgbView::new(&pixels, 8, 6, 8 * 3).unwrap();
//! let mut lanczos = PillowResize::new(Filter::Lanczos);
//! let whole = Rect { x: 0.0, y: 0.0, w: 8.0, h: 6.0 };
//! let out = lanczos.run(&src, whole, 4, 4, Window { x: 0, y: 0, w: 4, h: 4 }).unwrap();
//! assert_eq!(out, &[128u8; 4 * 4 * 3][..]);
//! ```

use super::{EngineError, Rect, RgbView};

const PRECISION_BITS: u32 = 32 - 8 - 2;

/// Pillow's resampling filters (`libImaging/Resample.c`) that ocellus uses. Pillow
/// resizes with all three by the same support-based convolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Filter {
    /// `Image.BILINEAR` (triangle, support 1).
    Bilinear,
    /// `Image.BICUBIC` (a = -0.5, support 2).
    Bicubic,
    /// `Image.LANCZOS` (sinc windowed by sinc, support 3).
    Lanczos,
}

impl Filter {
    /// Pillow's `Resampling` number (`resample` in a Hugging Face processor config).
    pub fn from_pil(resample: u64) -> Option<Self> {
        match resample {
            1 => Some(Filter::Lanczos),
            2 => Some(Filter::Bilinear),
            3 => Some(Filter::Bicubic),
            _ => None,
        }
    }

    fn support(self) -> f64 {
        match self {
            Filter::Bilinear => 1.0,
            Filter::Bicubic => 2.0,
            Filter::Lanczos => 3.0,
        }
    }

    fn weight(self, x: f64) -> f64 {
        match self {
            Filter::Bilinear => bilinear(x),
            Filter::Bicubic => bicubic(x),
            Filter::Lanczos => lanczos(x),
        }
    }
}

fn sinc(x: f64) -> f64 {
    if x == 0.0 {
        return 1.0;
    }
    let x = x * std::f64::consts::PI;
    x.sin() / x
}

fn lanczos(x: f64) -> f64 {
    if (-3.0..3.0).contains(&x) {
        sinc(x) * sinc(x / 3.0)
    } else {
        0.0
    }
}

fn bilinear(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

fn bicubic(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        (((x - 5.0) * x + 8.0) * x - 4.0) * A
    } else {
        0.0
    }
}

/// Per output index: first source index and fixed-point weights.
#[derive(Debug, Default, PartialEq)]
struct Coeffs {
    key: Option<(Filter, u32, u64, u64, u32)>,
    bounds: Vec<(usize, usize)>,
    ksize: usize,
    weights: Vec<i32>,
    /// One output's weights before normalisation (reused).
    k: Vec<f64>,
}

impl Coeffs {
    /// Pillow's `precompute_coeffs` + `normalize_coeffs_8bpc` for `in_size` source
    /// pixels, source span `in0..in1`, `out_size` outputs.
    fn prepare(&mut self, filter: Filter, in_size: u32, in0: f64, in1: f64, out_size: u32) {
        let key = Some((filter, in_size, in0.to_bits(), in1.to_bits(), out_size));
        if self.key == key && !self.bounds.is_empty() {
            return;
        }
        let scale = (in1 - in0) / f64::from(out_size);
        let filterscale = scale.max(1.0);
        let support = filter.support() * filterscale;
        let ksize = support.ceil() as usize * 2 + 1;
        self.bounds.clear();
        self.weights.clear();
        self.weights.resize(out_size as usize * ksize, 0);
        let k = &mut self.k;
        k.clear();
        k.resize(ksize, 0.0);
        for xx in 0..out_size as usize {
            let center = in0 + (xx as f64 + 0.5) * scale;
            let ss = 1.0 / filterscale;
            let xmin = ((center - support + 0.5) as i64).max(0) as usize;
            let xmax = ((center + support + 0.5) as i64).min(i64::from(in_size)) as usize;
            let n = xmax.saturating_sub(xmin).min(ksize);
            let mut ww = 0.0;
            for (x, kx) in k.iter_mut().enumerate().take(n) {
                let w = filter.weight((x as f64 + xmin as f64 - center + 0.5) * ss);
                *kx = w;
                ww += w;
            }
            let row = &mut self.weights[xx * ksize..(xx + 1) * ksize];
            for x in 0..n {
                let w = if ww != 0.0 { k[x] / ww } else { k[x] };
                let fixed = w * f64::from(1u32 << PRECISION_BITS);
                row[x] = if w < 0.0 {
                    (fixed - 0.5) as i32
                } else {
                    (fixed + 0.5) as i32
                };
            }
            self.bounds.push((xmin, n));
        }
        self.ksize = ksize;
        self.key = key;
    }

    fn get(&self, i: usize) -> (usize, &[i32]) {
        let (start, n) = self.bounds[i];
        (start, &self.weights[i * self.ksize..i * self.ksize + n])
    }
}

#[inline]
fn clip8(v: i32) -> u8 {
    (v >> PRECISION_BITS).clamp(0, 255) as u8
}

/// Reusable Pillow-bicubic resizer for RGB (CLIP's preprocessing).
#[derive(Default)]
pub struct PillowBicubic(PillowResize);

impl PillowBicubic {
    /// Resizes `crop` of `src` to `out_w`x`out_h` and returns the packed RGB pixels of
    /// `window` of that result.
    pub fn run(
        &mut self,
        src: &RgbView<'_>,
        crop: Rect,
        out_w: u32,
        out_h: u32,
        window: Window,
    ) -> Result<&[u8], EngineError> {
        self.0.run(src, crop, out_w, out_h, window)
    }
}

/// Reusable Pillow resizer for RGB with one filter.
pub struct PillowResize {
    filter: Filter,
    horizontal: Coeffs,
    vertical: Coeffs,
    temp: Vec<u8>,
    out: Vec<u8>,
}

/// Which part of the resized image to produce: `x`, `y`, `w`, `h` in output pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window {
    pub x: u32,
    pub y: u32,
    pub w: u32,
    pub h: u32,
}

impl Default for PillowResize {
    fn default() -> Self {
        Self::new(Filter::Bicubic)
    }
}

impl PillowResize {
    pub fn new(filter: Filter) -> Self {
        Self {
            filter,
            horizontal: Coeffs::default(),
            vertical: Coeffs::default(),
            temp: Vec::new(),
            out: Vec::new(),
        }
    }

    pub fn filter(&self) -> Filter {
        self.filter
    }

    /// Switches the filter; the coefficient tables follow at the next run.
    pub fn set_filter(&mut self, filter: Filter) {
        self.filter = filter;
    }

    /// Resizes `crop` of `src` to `out_w`x`out_h` and returns the packed RGB pixels of
    /// `window` of that result.
    pub fn run(
        &mut self,
        src: &RgbView<'_>,
        crop: Rect,
        out_w: u32,
        out_h: u32,
        window: Window,
    ) -> Result<&[u8], EngineError> {
        if out_w == 0 || out_h == 0 || window.x + window.w > out_w || window.y + window.h > out_h {
            return Err(EngineError::Resize(format!(
                "window {window:?} outside {out_w}x{out_h}"
            )));
        }
        let (w, h) = (src.width(), src.height());
        self.horizontal
            .prepare(self.filter, w, crop.x, crop.x + crop.w, out_w);
        self.vertical
            .prepare(self.filter, h, crop.y, crop.y + crop.h, out_h);
        // Source rows the window's vertical pass reads.
        let rows = (window.y..window.y + window.h).map(|y| self.vertical.get(y as usize));
        let first = rows.clone().map(|(s, _)| s).min().unwrap_or(0);
        let last = rows.map(|(s, k)| s + k.len()).max().unwrap_or(first);
        let tw = window.w as usize;
        // Horizontal pass (Pillow skips it when the width and box are unchanged).
        let need_h = out_w != w || crop.x != 0.0 || crop.w != f64::from(w);
        self.temp.resize((last - first) * tw * 3, 0);
        for (ty, sy) in (first..last).enumerate() {
            let srow = src.row_bytes(sy as u32);
            let trow = &mut self.temp[ty * tw * 3..(ty + 1) * tw * 3];
            if !need_h {
                trow.copy_from_slice(
                    &srow[window.x as usize * 3..(window.x + window.w) as usize * 3],
                );
                continue;
            }
            for (tx, px) in trow.chunks_exact_mut(3).enumerate() {
                let (start, k) = self.horizontal.get(window.x as usize + tx);
                let mut ss = [1i32 << (PRECISION_BITS - 1); 3];
                for (i, &kw) in k.iter().enumerate() {
                    let p = &srow[(start + i) * 3..(start + i) * 3 + 3];
                    ss[0] += i32::from(p[0]) * kw;
                    ss[1] += i32::from(p[1]) * kw;
                    ss[2] += i32::from(p[2]) * kw;
                }
                px.copy_from_slice(&ss.map(clip8));
            }
        }
        // Vertical pass.
        let need_v = out_h != h || crop.y != 0.0 || crop.h != f64::from(h);
        self.out.resize(tw * window.h as usize * 3, 0);
        for oy in 0..window.h as usize {
            let orow = &mut self.out[oy * tw * 3..(oy + 1) * tw * 3];
            let (start, k) = self.vertical.get(window.y as usize + oy);
            if !need_v {
                orow.copy_from_slice(&self.temp[(start - first) * tw * 3..][..tw * 3]);
                continue;
            }
            for (x, px) in orow.chunks_exact_mut(3).enumerate() {
                let mut ss = [1i32 << (PRECISION_BITS - 1); 3];
                for (i, &kw) in k.iter().enumerate() {
                    let p = &self.temp[((start - first + i) * tw + x) * 3..][..3];
                    ss[0] += i32::from(p[0]) * kw;
                    ss[1] += i32::from(p[1]) * kw;
                    ss[2] += i32::from(p[2]) * kw;
                }
                px.copy_from_slice(&ss.map(clip8));
            }
        }
        Ok(&self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 7x5 RGB pattern (the values Pillow 13 was given for the expectations below).
    fn pattern() -> Vec<u8> {
        let mut px = Vec::new();
        for y in 0..5u32 {
            for x in 0..7u32 {
                px.push(((x * 37 + y * 11) % 256) as u8);
                px.push(((x * x * 9 + y * 50) % 256) as u8);
                px.push(((255 + 512 - x * 30 - y * 20) % 256) as u8);
            }
        }
        px
    }

    fn resize(filter: Filter, crop: Rect, w: u32, h: u32) -> Vec<u8> {
        let px = pattern();
        let src = RgbView::new(&px, 7, 5, 21).unwrap();
        let window = Window { x: 0, y: 0, w, h };
        PillowResize::new(filter)
            .run(&src, crop, w, h, window)
            .unwrap()
            .to_vec()
    }

    fn lanczos(crop: Rect, w: u32, h: u32) -> Vec<u8> {
        resize(Filter::Lanczos, crop, w, h)
    }

    const WHOLE: Rect = Rect {
        x: 0.0,
        y: 0.0,
        w: 7.0,
        h: 5.0,
    };

    #[test]
    fn bilinear_matches_pillow() {
        // Image.fromarray(pattern).resize((3, 4), Image.BILINEAR, reducing_gap=None)
        assert_eq!(
            resize(Filter::Bilinear, WHOLE, 3, 4),
            [
                35, 25, 224, 114, 98, 160, 193, 137, 96, 48, 83, 201, 127, 145, 137, 206, 113, 73,
                60, 141, 177, 139, 168, 113, 218, 139, 49, 73, 200, 154, 152, 123, 90, 163, 106,
                94
            ]
        );
        // .resize((4, 3), Image.BILINEAR, box=(1.5, 0.5, 6.0, 4.5))
        let boxed = Rect {
            x: 1.5,
            y: 0.5,
            w: 4.5,
            h: 4.0,
        };
        assert_eq!(
            resize(Filter::Bilinear, boxed, 4, 3),
            [
                64, 54, 197, 105, 95, 163, 146, 158, 131, 188, 112, 96, 79, 124, 169, 120, 165,
                135, 161, 196, 103, 203, 93, 68, 94, 194, 141, 135, 169, 107, 176, 80, 75, 214,
                127, 45
            ]
        );
        // .resize((9, 6), Image.BILINEAR): upscaling, support 1
        assert_eq!(
            resize(Filter::Bilinear, WHOLE, 9, 6),
            [
                0, 0, 255, 25, 6, 235, 53, 21, 212, 82, 46, 188, 111, 81, 165, 140, 130, 142, 169,
                189, 118, 197, 173, 95, 222, 68, 75, 8, 38, 240, 33, 44, 220, 61, 59, 197, 90, 84,
                173, 119, 119, 150, 148, 168, 127, 177, 120, 103, 205, 82, 80, 230, 106, 60, 17,
                79, 223, 42, 85, 203, 70, 100, 180, 99, 125, 156, 128, 160, 133, 157, 209, 110,
                186, 126, 86, 214, 81, 63, 239, 147, 43, 27, 121, 207, 52, 127, 187, 80, 142, 164,
                109, 167, 140, 138, 202, 117, 167, 168, 94, 196, 120, 70, 224, 123, 47, 249, 189,
                27, 36, 163, 190, 61, 169, 170, 89, 184, 147, 118, 194, 123, 147, 180, 100, 176,
                79, 77, 205, 96, 53, 212, 143, 51, 194, 167, 74, 44, 200, 175, 69, 206, 155, 97,
                221, 132, 126, 189, 108, 155, 25, 85, 184, 74, 62, 213, 133, 38, 156, 117, 100, 10,
                12, 251
            ]
        );
    }

    #[test]
    fn one_resizer_switches_filters() {
        let px = pattern();
        let src = RgbView::new(&px, 7, 5, 21).unwrap();
        let window = Window {
            x: 0,
            y: 0,
            w: 3,
            h: 4,
        };
        let mut r = PillowResize::new(Filter::Lanczos);
        let first = r.run(&src, WHOLE, 3, 4, window).unwrap().to_vec();
        r.set_filter(Filter::Bilinear);
        let second = r.run(&src, WHOLE, 3, 4, window).unwrap().to_vec();
        assert_eq!(first, lanczos(WHOLE, 3, 4));
        assert_eq!(second, resize(Filter::Bilinear, WHOLE, 3, 4));
    }

    #[test]
    fn lanczos_matches_pillow() {
        // Image.fromarray(pattern).resize((3, 4), Image.LANCZOS)
        let whole = Rect {
            x: 0.0,
            y: 0.0,
            w: 7.0,
            h: 5.0,
        };
        assert_eq!(
            lanczos(whole, 3, 4),
            [
                25, 8, 233, 112, 98, 162, 199, 140, 91, 39, 70, 209, 126, 154, 138, 212, 110, 68,
                53, 147, 183, 139, 172, 113, 233, 147, 35, 63, 213, 161, 166, 119, 75, 159, 91, 98
            ]
        );
        // .resize((4, 3), Image.LANCZOS, box=(1.5, 0.5, 6.0, 4.5))
        let boxed = Rect {
            x: 1.5,
            y: 0.5,
            w: 4.5,
            h: 4.0,
        };
        assert_eq!(
            lanczos(boxed, 4, 3),
            [
                66, 51, 195, 105, 86, 164, 146, 170, 130, 191, 113, 94, 82, 119, 166, 121, 185,
                135, 162, 227, 101, 208, 64, 64, 98, 203, 137, 137, 177, 106, 179, 62, 71, 218,
                133, 40
            ]
        );
    }
}
