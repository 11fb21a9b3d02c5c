//! What the daemon hands the publisher: camera statuses, frame reports, query and
//! camera changes, refusals.

use std::sync::Arc;

use crate::query::Pooled;
use crate::source::CameraStatus;

/// What the daemon hands the publisher.
#[derive(Debug)]
pub enum Outgoing {
    Camera {
        camera: Arc<str>,
        status: CameraStatus,
    },
    /// A frame's report, returned to its camera's pool once published.
    Frame(Pooled),
    /// A camera's queries after a runtime change, sent by its evaluator after its last
    /// report under the old ones: Home Assistant's device config follows them, and
    /// the retained state of each removed query is cleared.
    Queries {
        camera: Box<crate::source::CameraConfig>,
        removed: Vec<String>,
    },
    /// The cameras after a reload: Home Assistant's devices follow (a removed
    /// camera's device goes), and a removed camera's retained topics are cleared.
    Cameras {
        cameras: Vec<crate::source::CameraConfig>,
        removed: Vec<crate::source::CameraConfig>,
    },
    /// A runtime query spec was refused; published on `.../query/<q>/error`.
    Rejected {
        camera: String,
        query: String,
        reason: String,
    },
}
