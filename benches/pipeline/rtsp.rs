//! The benchmark's RTSP mounts (the server is `tests/it/common`'s): TCP only, each
//! serving a clip file (`filesrc ! matroskademux ! h264parse ! rtph264pay`) in real
//! time from its start when a client connects.

use crate::common::{RTSPLowerTrans, RtspMount};
use std::path::Path;

/// The launch line of a mount serving `clip` (H.264 in Matroska). SPS/PPS go with
/// every key frame so that a client can start (or skip to) any of them.
pub fn clip_launch(clip: &Path) -> String {
    format!(
        "( filesrc location={} ! matroskademux ! h264parse config-interval=-1 \
         ! rtph264pay name=pay0 pt=96 config-interval=-1 )",
        clip.display()
    )
}

/// TCP-only mounts `/ID` serving `launch`.
pub fn mounts(ids: &[String], launch: &str) -> Vec<RtspMount> {
    ids.iter()
        .map(|id| RtspMount {
            path: format!("/{id}"),
            launch: launch.to_string(),
            protocols: RTSPLowerTrans::TCP,
        })
        .collect()
}
