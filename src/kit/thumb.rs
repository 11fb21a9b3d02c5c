//! A tiny luma thumbnail of a frame: the frame's fingerprint for the change gate and
//! the embedding cache. Fixed size, computed in place from a decoded plane (no
//! allocation), by averaging an evenly spaced sample of each cell's pixels.

/// Thumbnail columns.
pub const GRID_W: usize = 32;
/// Thumbnail rows.
pub const GRID_H: usize = 18;
/// Samples per cell side (at most; fewer when a cell is smaller).
const SAMPLES: usize = 8;

/// Mean luma of each of the `GRID_W` x `GRID_H` cells of a frame.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Thumb {
    cells: [u8; GRID_W * GRID_H],
}

impl std::fmt::Debug for Thumb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mean = self.cells.iter().map(|&c| u32::from(c)).sum::<u32>() / self.cells.len() as u32;
        write!(f, "Thumb({GRID_W}x{GRID_H}, mean {mean})")
    }
}

/// One 8-bit channel of an image: `width` x `height` samples, rows `stride` bytes
/// apart, samples `step` bytes apart starting at `offset` (the Y plane of I420/NV12:
/// step 1; YUY2: step 2; packed RGB's green: offset 1, step 3).
#[derive(Debug, Clone, Copy)]
pub struct Plane<'a> {
    /// The image's bytes.
    pub data: &'a [u8],
    /// Samples per row.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// Bytes from the start of one row to the next.
    pub stride: usize,
    /// Byte offset of the first sample in each row.
    pub offset: usize,
    /// Bytes from one sample to the next within a row (>= 1).
    pub step: usize,
}

impl Plane<'_> {
    fn fits(&self) -> bool {
        self.width > 0
            && self.height > 0
            && self.step > 0
            && self.stride > self.offset + (self.width - 1) * self.step
            && self.data.len()
                > (self.height - 1) * self.stride + self.offset + (self.width - 1) * self.step
    }
}

impl Thumb {
    /// A uniform thumbnail (tests).
    pub fn filled(value: u8) -> Self {
        Self {
            cells: [value; GRID_W * GRID_H],
        }
    }

    /// The thumbnail of `plane`; `None` when the plane is empty or shorter than its
    /// geometry says.
    pub fn of(plane: &Plane<'_>) -> Option<Self> {
        if !plane.fits() {
            return None;
        }
        let mut cells = [0u8; GRID_W * GRID_H];
        for gy in 0..GRID_H {
            let (y0, y1) = span(gy, GRID_H, plane.height);
            let ny = (y1 - y0).min(SAMPLES);
            for gx in 0..GRID_W {
                let (x0, x1) = span(gx, GRID_W, plane.width);
                let nx = (x1 - x0).min(SAMPLES);
                let mut sum = 0u32;
                for sy in 0..ny {
                    let y = y0 + (2 * sy + 1) * (y1 - y0) / (2 * ny);
                    let row = &plane.data[y * plane.stride + plane.offset..];
                    for sx in 0..nx {
                        let x = x0 + (2 * sx + 1) * (x1 - x0) / (2 * nx);
                        sum += u32::from(row[x * plane.step]);
                    }
                }
                let n = (nx * ny).max(1) as u32;
                cells[gy * GRID_W + gx] = ((sum + n / 2) / n) as u8;
            }
        }
        Some(Self { cells })
    }

    /// The largest change of any cell inside `area`, as a fraction of full scale.
    pub fn change(&self, other: &Thumb, area: &Cells) -> f32 {
        let mut max = 0u8;
        for gy in area.y0..area.y1 {
            let a = &self.cells[gy * GRID_W + area.x0..gy * GRID_W + area.x1];
            let b = &other.cells[gy * GRID_W + area.x0..gy * GRID_W + area.x1];
            for (x, y) in a.iter().zip(b) {
                max = max.max(x.abs_diff(*y));
            }
        }
        f32::from(max) / 255.0
    }
}

/// Pixel span `[start, end)` of cell `i` of `n` over `len` pixels (never empty when
/// `len >= 1`).
fn span(i: usize, n: usize, len: usize) -> (usize, usize) {
    let start = i * len / n;
    let end = ((i + 1) * len / n).max(start + 1).min(len.max(1));
    (start.min(end - 1), end)
}

/// The thumbnail cells a normalised region covers (any overlap counts).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cells {
    x0: usize,
    y0: usize,
    x1: usize,
    y1: usize,
}

impl Cells {
    /// Every cell of the thumbnail (the whole frame).
    pub const ALL: Cells = Cells {
        x0: 0,
        y0: 0,
        x1: GRID_W,
        y1: GRID_H,
    };

    /// Cells overlapping normalised `[x0, y0, x1, y1]`; all of them for `None`.
    pub fn of_region(region: Option<[f32; 4]>) -> Self {
        let Some([x0, y0, x1, y1]) = region else {
            return Self::ALL;
        };
        let lo = |v: f32, n: usize| ((v.clamp(0.0, 1.0) * n as f32).floor() as usize).min(n - 1);
        let hi = |v: f32, n: usize, l: usize| {
            ((v.clamp(0.0, 1.0) * n as f32).ceil() as usize).clamp(l + 1, n)
        };
        let (cx0, cy0) = (lo(x0, GRID_W), lo(y0, GRID_H));
        Self {
            x0: cx0,
            y0: cy0,
            x1: hi(x1, GRID_W, cx0),
            y1: hi(y1, GRID_H, cy0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plane(data: &[u8], w: usize, h: usize) -> Plane<'_> {
        Plane {
            data,
            width: w,
            height: h,
            stride: w,
            offset: 0,
            step: 1,
        }
    }

    #[test]
    fn a_uniform_plane_gives_a_uniform_thumbnail() {
        let data = vec![77u8; 640 * 360];
        assert_eq!(Thumb::of(&plane(&data, 640, 360)), Some(Thumb::filled(77)));
        // Smaller than the grid: cells repeat pixels, nothing panics.
        let tiny = vec![9u8; 5 * 3];
        assert_eq!(Thumb::of(&plane(&tiny, 5, 3)), Some(Thumb::filled(9)));
        assert_eq!(Thumb::of(&plane(&tiny[1..], 5, 3)), None);
    }

    #[test]
    fn a_small_change_shows_only_in_its_region() {
        let (w, h) = (1280, 720);
        let mut data = vec![50u8; w * h];
        let before = Thumb::of(&plane(&data, w, h)).unwrap();
        // A 40x40 "light" near the top right turns bright.
        for y in 40..80 {
            for x in 1000..1040 {
                data[y * w + x] = 250;
            }
        }
        let after = Thumb::of(&plane(&data, w, h)).unwrap();
        let light = Cells::of_region(Some([0.75, 0.0, 0.85, 0.2]));
        let elsewhere = Cells::of_region(Some([0.0, 0.5, 0.5, 1.0]));
        assert!(
            before.change(&after, &light) > 0.1,
            "{}",
            before.change(&after, &light)
        );
        assert!(before.change(&after, &Cells::ALL) > 0.1);
        assert_eq!(before.change(&after, &elsewhere), 0.0);
    }

    #[test]
    fn interleaved_samples_read_their_channel() {
        // YUY2-like: Y at even bytes, chroma 128 at odd bytes.
        let (w, h) = (64, 36);
        let mut data = vec![128u8; w * 2 * h];
        for px in data.chunks_exact_mut(2) {
            px[0] = 200;
        }
        let p = Plane {
            data: &data,
            width: w,
            height: h,
            stride: w * 2,
            offset: 0,
            step: 2,
        };
        assert_eq!(Thumb::of(&p), Some(Thumb::filled(200)));
    }

    #[test]
    fn regions_map_to_cells() {
        assert_eq!(Cells::of_region(None), Cells::ALL);
        assert_eq!(Cells::of_region(Some([0.0, 0.0, 1.0, 1.0])), Cells::ALL);
        let c = Cells::of_region(Some([0.5, 0.5, 0.5, 0.5]));
        assert_eq!((c.x1 - c.x0, c.y1 - c.y0), (1, 1));
    }
}
