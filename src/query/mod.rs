//! Standing queries: plain-language questions bound to a model and evaluated on every
//! sampled frame — `yes_no` (p(yes) with hysteresis), `count` (objects of a class in a
//! region) and `classify` (one of several labels) — each behind a state machine that
//! turns scores into stable states and state changes into events.
//!
//! ```
//! use ocellus::query::{Answer, Debounce};
//! let mut light = Debounce::new(2); // two frames must agree
//! for score in [0.9, 0.9] {
//!     let proposed = light.propose_yes_no(score, 0.7, 0.5);
//!     if let Some(change) = light.update(proposed) {
//!         assert_eq!(change.to, Answer::YesNo(true));
//!     }
//! }
//! ```

mod answer;
mod config;
mod debounce;
mod report;
mod standing;

pub use answer::Answer;
pub use config::{QueryConfig, QueryKind};
pub use debounce::{Change, Debounce};
pub use report::{FrameReport, Inference, Pooled, ReportPool, rfc3339};
pub use standing::{ChangeOut, Evaluation, FrameOutputs, StandingQuery};
