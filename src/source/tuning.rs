//! What a camera's evaluator may change in its running source when its queries change
//! at runtime: the regions the change gate watches (a change also lets the next
//! sampled frame through, so new queries answer at once) and the pixel format the
//! appsink delivers (a change rebuilds the pipeline; a file starts over).
//!
//! ```
//! use ocellus::kit::Pixels;
//! use ocellus::source::Tuning;
//! let t = Tuning::new(vec![None], Pixels::I420);
//! let seen = t.generation();
//! t.retune(vec![Some([0.0, 0.0, 0.5, 0.5])], Pixels::Rgb);
//! assert_ne!(t.generation(), seen);
//! assert!(t.take_rebuild());
//! assert_eq!(t.pixels(), Pixels::Rgb);
//! ```

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::kit::Pixels;

/// Shared by a camera's evaluator (writes) and its source (reads).
#[derive(Debug)]
pub struct Tuning {
    regions: Mutex<Vec<Option<[f32; 4]>>>,
    pixels: Mutex<Pixels>,
    /// Bumped by every retune; the gates rebuild when theirs differs.
    generation: AtomicU64,
    rebuild: AtomicBool,
}

impl Tuning {
    /// Tuning with the queries' gate `regions` (normalised `[x0, y0, x1, y1]`, `None`
    /// for the whole frame) and the `pixels` the appsink delivers; generation 0.
    pub fn new(regions: Vec<Option<[f32; 4]>>, pixels: Pixels) -> Self {
        Self {
            regions: Mutex::new(regions),
            pixels: Mutex::new(pixels),
            generation: AtomicU64::new(0),
            rebuild: AtomicBool::new(false),
        }
    }

    /// New query regions and pixel format; the next sampled frame passes the gate.
    pub fn retune(&self, regions: Vec<Option<[f32; 4]>>, pixels: Pixels) {
        *self.regions.lock().unwrap_or_else(|e| e.into_inner()) = regions;
        let mut current = self.pixels.lock().unwrap_or_else(|e| e.into_inner());
        if *current != pixels {
            *current = pixels;
            self.rebuild.store(true, Ordering::Release);
        }
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// Lets the next sampled frame through the change gate, nothing else changed (a
    /// viewer opened the camera's live picture and there is none yet).
    pub fn refresh(&self) {
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    /// The query regions the change gate watches (normalised `[x0, y0, x1, y1]`, `None`
    /// for the whole frame).
    pub fn regions(&self) -> Vec<Option<[f32; 4]>> {
        self.regions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The pixel format the appsink should deliver.
    pub fn pixels(&self) -> Pixels {
        *self.pixels.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How many retunes there have been; a gate compares it with the one it was built at.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Whether the pipeline must be rebuilt for a new pixel format (asked once).
    pub fn take_rebuild(&self) -> bool {
        self.rebuild.swap(false, Ordering::AcqRel)
    }
}
