//! Standing queries: plain-language questions bound to a model — evaluated on every
//! sampled frame: `yes_no` (p(yes) with hysteresis), `count` (objects of a class in a
//! region) and `classify` (one of several labels); or, for slow models, at their own
//! cadence ([`slow`]): `caption`, `detect`, `read`, `ground`, `answer` and smolvlm
//! `yes_no` — each behind a state machine that turns scores into stable states and
//! state changes into events.
//!
//! ```
//! use ocellus::query::{Answer, Debounce};
//! let mut light = Debounce::new(2); // two frames must agree
//! for score in [0.9, 0.9] {
//!     let proposed = light.propose_yes_no(score, 0.7, 0.5);
//!     if let Some(change) = light.update(proposed, std::time::Duration::ZERO) {
//!         assert_eq!(change.to, Answer::YesNo(true));
//!     }
//! }
//! ```

mod answer;
pub mod check;
mod config;
mod debounce;
mod error;
mod evaluation;
pub mod limits;
mod report;
pub mod slow;
mod standing;
pub mod support;
mod taught;
mod tracker;

pub use answer::Answer;
pub use config::{Detail, QueryConfig, QueryKind};
pub use debounce::{Debounce, StateChange, Timing};
pub use error::BindError;
pub use evaluation::{ChangeOut, Evaluation, event_id};
pub use report::{Caption, FrameReport, Inference, Pooled, ReportPool, rfc3339};
pub use slow::SlowQuery;
pub use standing::{FrameOutputs, StandingQuery};
pub use taught::lesson_spec;
