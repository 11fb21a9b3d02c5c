//! Teaching a standing query from labelled frames: a person says "this frame is
//! ON" (or "is `green`") from the command line, MQTT or HTTP; the query's [`Lesson`]
//! stores the region's crop and embedding, trains a small probe ([`Head`]) on
//! every example in a few milliseconds, and the camera's evaluator answers with it
//! from the next frame on. An embedder model answers from examples alone; on a
//! CLIP/SigLIP model the prompts stay the prior and the examples move the answer
//! (see `query::standing`). Frames the query is unsure about become review items
//! ([`ReviewItem`]) for a person to label.
//!
//! Files: `head` (the probe and its cross-validation), `example` and `store` (one
//! JSON and one JPEG per example), `lesson` (a query's examples and head),
//! `lessons` (all of them, each camera's last frame and review items; labels
//! from MQTT and HTTP land there), `label` (a label message), `crop`
//! (region to JPEG and back), `review`, `config` (`[teach]`), `error`.
//!
//! ```
//! use ocellus::teach::{Head, cross_validate};
//! let (a, b, c, d) = ([1.0f32, 0.1], [0.9f32, 0.2], [0.1f32, 1.0], [0.2f32, 0.9]);
//! let xs = [&a[..], &b[..], &c[..], &d[..]];
//! let head = Head::train(&xs, &[0, 0, 1, 1], 2).unwrap();
//! assert_eq!(head.predict(&[0.95, 0.1]), 0);
//! assert_eq!(cross_validate(&xs, &[0, 0, 1, 1], 2), Some((4, 4)));
//! ```

mod config;
mod crop;
mod error;
mod example;
mod head;
mod label;
mod lesson;
mod lessons;
mod review;
mod store;

pub use config::{MAX_EXAMPLES, TeachConfig};
pub use crop::{MAX_SIDE, crop_jpeg, decode};
pub use error::TeachError;
pub use example::{Example, Source};
pub use head::{Head, argmax, cross_validate};
pub use label::{Label, MAX_LABEL_BYTES};
pub use lesson::{Lesson, LessonSpec, Summary, Trained};
pub use lessons::{FrameSlot, Lessons};
pub use review::ReviewItem;
pub use store::Store;
