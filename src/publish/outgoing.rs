//! What the daemon hands the publisher: camera statuses, frame reports, query and
//! camera changes, refusals.

use std::sync::Arc;

use crate::query::Pooled;
use crate::source::CameraStatus;

/// What the daemon hands the publisher.
#[derive(Debug)]
pub enum Outgoing {
    /// A camera's availability changed; published retained on `<prefix>/<cam>/status`.
    Camera {
        /// Id of the camera.
        camera: Arc<str>,
        /// Its new availability.
        status: CameraStatus,
    },
    /// A served model's availability changed (its circuit breaker opened or closed);
    /// published retained on `<prefix>/models/<model>/status`.
    Model {
        /// The model's name.
        model: Arc<str>,
        /// Whether it answers calls.
        available: bool,
    },
    /// A served model went away with a reload: its retained status is cleared.
    ModelRemoved {
        /// The model's name.
        model: Arc<str>,
    },
    /// A frame's report, returned to its camera's pool once published.
    Frame(Pooled),
    /// A camera's queries after a runtime change, sent by its evaluator after its last
    /// report under the old ones: Home Assistant's device config follows them, and
    /// the retained state of each removed query is cleared.
    Queries {
        /// The camera with its new queries.
        camera: Box<crate::source::CameraConfig>,
        /// Ids of the queries that were removed.
        removed: Vec<String>,
    },
    /// The cameras after a reload: Home Assistant's devices follow (a removed
    /// camera's device goes), and a removed camera's retained topics are cleared.
    Cameras {
        /// Every camera after the reload.
        cameras: Vec<crate::source::CameraConfig>,
        /// The cameras the reload removed.
        removed: Vec<crate::source::CameraConfig>,
    },
    /// A runtime query spec was refused; published on `.../query/<q>/error`.
    Rejected {
        /// Camera id, as the command named it.
        camera: String,
        /// Query id, as the command named it.
        query: String,
        /// Why the spec was refused (one line).
        reason: String,
    },
}
