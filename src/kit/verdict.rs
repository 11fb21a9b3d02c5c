//! Why a sampled frame passed the change gate (or did not): carried by the frame.

/// What the change gate decided for one sampled frame; the number is the change score.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Verdict {
    /// No reference yet (first frame, or time went backwards).
    First,
    /// Changed by more than the threshold (or the gate is off).
    Changed(f32),
    /// Unchanged, but the last encode is older than `max_staleness`.
    Stale(f32),
    /// Unchanged: reuse the last answers.
    Unchanged(f32),
}

impl Verdict {
    /// True when the frame must be encoded.
    pub fn passes(self) -> bool {
        !matches!(self, Verdict::Unchanged(_))
    }

    /// The change score (1 for a first frame).
    pub fn score(self) -> f32 {
        match self {
            Verdict::First => 1.0,
            Verdict::Changed(s) | Verdict::Stale(s) | Verdict::Unchanged(s) => s,
        }
    }
}
