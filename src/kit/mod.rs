//! Kit: the types every stage shares and nothing else. A frame as it travels
//! ([`Frame`], [`Sample`], the pixel layouts), its luma thumbnail ([`Thumb`]), the
//! gate's [`Verdict`], the live picture people watch ([`LiveFrame`]); config helpers (durations, paths, [`Problem`]); and the
//! daemon's plumbing (shutdown signal, metrics counters, watchdog heartbeats,
//! rate-limited warnings).
//! Kit imports nothing from the crate outside itself.

mod command;
pub mod duration;
mod frame;
mod live;
pub mod metrics;
mod paths;
mod problems;
pub mod ratelimit;
pub mod shutdown;
mod thumb;
mod verdict;
pub mod watchdog;
mod yuv;

pub use command::{LabelCommand, QueryCommand};
pub use frame::{Frame, PixelFormat, Pixels, Sample, Unchanged};
pub use live::{LIVE_OVERFLOW_POLICY, LiveFrame};
pub use paths::resolve;
pub use problems::{Problem, id_ok, shown, text_problem, within};
pub use ratelimit::{RateLimit, RateLimits};
pub use thumb::{Cells, GRID_H, GRID_W, Plane, Thumb};
pub use verdict::Verdict;
pub use yuv::{I420Layout, YuvMatrix};
