//! Snapshots: the JPEG of the frame behind an alert, optionally annotated with the
//! query regions (yellow, each labelled with its query's id) and the detections (red,
//! each labelled with its label and score), published retained on `<cam>/snapshot`
//! and written to `[snapshots] dir`/`<cam>/` under a retention limit (files and bytes
//! per camera). The camera's evaluator keeps a copy of its last frame with pixels (a
//! buffer reused frame after frame) so that an alert decided on a frame the gate held
//! back still gets the picture it is about; its slow lane pictures the frame
//! it answered, with a [`Snapshotter::sibling`] that shares the camera's folder.
//!
//! ```
//! use ocellus::snapshot::{Region, SnapshotConfig, Snapshotter};
//! let cfg: SnapshotConfig = toml::from_str("quality = 70").unwrap();
//! let mut shots = Snapshotter::new("door", cfg);
//! let frame = ocellus::kit::Frame::from_rgb(64, 48, 64 * 3, vec![90; 64 * 48 * 3]);
//! shots.keep(&frame);
//! let door = Region { query: "person".into(), rect: [0.1, 0.1, 0.5, 0.5] };
//! let shot = shots.take(&[door], &[], std::time::SystemTime::now(), "person").unwrap();
//! assert_eq!(&shot.jpeg[..2], &[0xFF, 0xD8]);
//! ```

mod config;
mod draw;
mod error;
mod label;
mod region;
mod snapshotter;
mod store;

pub use config::SnapshotConfig;
pub use error::SnapshotError;
pub use region::Region;
pub use snapshotter::{Snapshot, Snapshotter, to_rgb};
