//! The first frame of an image or clip, decoded by the camera pipeline itself
//! (uridecodebin → appsink), for tools, tests and benchmarks that need a frame
//! exactly as a camera would deliver it.
//!
//! ```no_run
//! use ocellus::source::{Pixels, first_frame};
//! let frame = first_frame("photo.png".as_ref(), Pixels::Rgb).unwrap();
//! println!("{}x{}", frame.width, frame.height);
//! ```

use std::path::Path;
use std::time::Duration;

use super::{CameraConfig, Retry, WhenFull, frame_queue, spawn};
use crate::kit::shutdown::Shutdown;
use crate::kit::{Frame, Pixels, Sample};

/// How long the pipeline may take to deliver the frame.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Decodes the first frame of `path` in `pixels`; the error names the file.
pub fn first_frame(path: &Path, pixels: Pixels) -> Result<Frame, String> {
    gstreamer::init().map_err(|e| format!("GStreamer: {e}"))?;
    let mut cam: CameraConfig = toml::from_str("id = \"still\"\nurl = \"unused\"")
        .map_err(|e| format!("{}: {e}", path.display()))?;
    cam.url = path.to_string_lossy().into_owned();
    let (tx, rx) = frame_queue(2, WhenFull::Block);
    let handle = spawn(
        cam,
        pixels,
        tx,
        |_| {},
        Shutdown::new(),
        Retry::Never,
        Default::default(),
    );
    let frame = loop {
        match rx.recv_timeout(TIMEOUT) {
            Ok(Some(Sample::Frame(f))) => break Some(f),
            Ok(Some(Sample::Unchanged(_)) | None) => continue,
            Err(_) => break None,
        }
    };
    drop(rx);
    let ended = handle.join();
    frame.ok_or_else(|| format!("{}: no frame ({ended:?})", path.display()))
}
