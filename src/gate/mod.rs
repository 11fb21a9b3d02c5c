//! Gate: decides which decoded frames reach the models. It runs inside the camera's
//! pipeline on the decoder's own output, before colour conversion:
//!
//! 1. [`SampleGate`] caps the rate by presentation time (`sample_fps`); frames over
//!    the cap are dropped and counted.
//! 2. [`ChangeGate`] compares a tiny luma [`Thumb`] of each sampled frame with the
//!    thumbnail of the last frame that was encoded, inside each query region. A frame
//!    whose largest cell change stays below `change_threshold` is *unchanged*: it is
//!    not converted nor encoded, and the camera's last answers are republished with
//!    its own frame time. `max_staleness` forces a re-encode of an unchanged scene.
//!
//! ```
//! use std::time::Duration;
//! use ocellus::gate::ChangeGate;
//! use ocellus::kit::{Thumb, Verdict};
//! let mut gate = ChangeGate::new(0.02, Duration::from_secs(30), [None]);
//! let still = Thumb::filled(80);
//! assert!(gate.judge(Some(&still), Duration::ZERO).passes()); // the first frame
//! assert!(!gate.judge(Some(&still), Duration::from_secs(1)).passes());
//! assert!(gate.judge(Some(&Thumb::filled(120)), Duration::from_secs(2)).passes());
//! assert_eq!(gate.judge(Some(&Thumb::filled(120)), Duration::from_secs(40)), Verdict::Stale(0.0));
//! ```

mod sample;

use std::time::Duration;

use crate::kit::{Cells, Thumb, Verdict};
pub use sample::SampleGate;

/// Change gate of one camera (see the module docs).
#[derive(Debug, Clone)]
pub struct ChangeGate {
    threshold: f32,
    max_staleness: Duration,
    /// Thumbnail cells of each distinct query region.
    areas: Vec<Cells>,
    /// Thumbnail and presentation time of the last frame that passed.
    reference: Option<(Thumb, Duration)>,
}

impl ChangeGate {
    /// `threshold` 0 lets every frame pass. `regions`: the camera's query regions
    /// (`None` = whole frame); with no regions at all the whole frame is watched.
    pub fn new(
        threshold: f32,
        max_staleness: Duration,
        regions: impl IntoIterator<Item = Option<[f32; 4]>>,
    ) -> Self {
        let mut areas: Vec<Cells> = Vec::new();
        for r in regions {
            let cells = Cells::of_region(r);
            if !areas.contains(&cells) {
                areas.push(cells);
            }
        }
        if areas.is_empty() {
            areas.push(Cells::ALL);
        }
        Self {
            threshold,
            max_staleness,
            areas,
            reference: None,
        }
    }

    /// Judges the frame at `pts` with thumbnail `thumb` (`None`: a format the gate
    /// cannot read, which always passes).
    pub fn judge(&mut self, thumb: Option<&Thumb>, pts: Duration) -> Verdict {
        let Some(thumb) = thumb else {
            return Verdict::Changed(1.0);
        };
        let verdict = match &self.reference {
            Some((_, at)) if pts < *at => Verdict::First,
            None => Verdict::First,
            Some((reference, at)) => {
                let score = self
                    .areas
                    .iter()
                    .map(|a| thumb.change(reference, a))
                    .fold(0.0, f32::max);
                if self.threshold <= 0.0 || score >= self.threshold {
                    Verdict::Changed(score)
                } else if pts - *at >= self.max_staleness {
                    Verdict::Stale(score)
                } else {
                    Verdict::Unchanged(score)
                }
            }
        };
        if verdict.passes() {
            self.reference = Some((*thumb, pts));
        }
        verdict
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kit::{GRID_H, GRID_W, Plane};

    #[test]
    fn a_still_scene_is_encoded_once_per_max_staleness() {
        let mut g = ChangeGate::new(0.02, Duration::from_secs(5), [None]);
        let still = Thumb::filled(100);
        // 2 samples a second for 20 s: encoded at 0, 5, 10 and 15 s.
        let passed: Vec<u64> = (0..40u64)
            .filter(|i| {
                g.judge(Some(&still), Duration::from_millis(i * 500))
                    .passes()
            })
            .map(|i| i * 500)
            .collect();
        assert_eq!(passed, vec![0, 5000, 10000, 15000]);
    }

    #[test]
    fn a_change_outside_every_region_is_ignored() {
        let mut g = ChangeGate::new(
            0.02,
            Duration::from_secs(30),
            [Some([0.0, 0.0, 0.25, 0.25])],
        );
        let t = |v: u8, at: usize| {
            let mut cells = [100u8; GRID_W * GRID_H];
            cells[at] = v;
            thumb_of(cells)
        };
        assert_eq!(g.judge(Some(&t(100, 0)), Duration::ZERO), Verdict::First);
        // Bottom-right cell changes: outside the region.
        let far = GRID_W * GRID_H - 1;
        assert!(!g.judge(Some(&t(200, far)), Duration::from_secs(1)).passes());
        // Top-left cell changes: inside.
        assert!(g.judge(Some(&t(200, 0)), Duration::from_secs(2)).passes());
    }

    #[test]
    fn threshold_zero_and_unreadable_frames_always_pass() {
        let mut g = ChangeGate::new(0.0, Duration::from_secs(30), []);
        let still = Thumb::filled(1);
        assert!((0..5).all(|i| g.judge(Some(&still), Duration::from_secs(i)).passes()));
        let mut g = ChangeGate::new(0.5, Duration::from_secs(30), []);
        assert!((0..5).all(|i| g.judge(None, Duration::from_secs(i)).passes()));
    }

    #[test]
    fn time_going_backwards_rearms() {
        let mut g = ChangeGate::new(0.02, Duration::from_secs(30), []);
        let still = Thumb::filled(1);
        g.judge(Some(&still), Duration::from_secs(10));
        assert_eq!(
            g.judge(Some(&still), Duration::from_secs(1)),
            Verdict::First
        );
    }

    fn thumb_of(cells: [u8; GRID_W * GRID_H]) -> Thumb {
        let p = Plane {
            data: &cells,
            width: GRID_W,
            height: GRID_H,
            stride: GRID_W,
            offset: 0,
            step: 1,
        };
        Thumb::of(&p).unwrap()
    }
}
