//! The first frame of an image or clip, decoded by the camera pipeline itself
//! (uridecodebin → appsink), for tools, tests and benchmarks that need a frame
//! exactly as a camera would deliver it.
//!
//! ```no_run
//! use ocellus::kit::Pixels;
//! use ocellus::source::first_frame;
//! let frame = first_frame("photo.png".as_ref(), Pixels::Rgb).unwrap();
//! println!("{}x{}", frame.width, frame.height);
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use gstreamer::glib;

use super::{CameraConfig, Ended, Retry, WhenFull, frame_queue, spawn};
use crate::kit::shutdown::Shutdown;
use crate::kit::{Frame, Pixels, Sample};

/// How long the pipeline may take to deliver the frame.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The first frame of a still or clip could not be had ([`first_frame`]).
#[derive(Debug, thiserror::Error)]
pub enum StillError {
    /// GStreamer could not be initialised.
    #[error("GStreamer: {0}")]
    Gstreamer(#[source] glib::Error),
    /// The built-in camera config for the still did not parse (a bug, not the file).
    #[error("{}: {source}", path.display())]
    Config {
        /// The file whose frame was asked for.
        path: PathBuf,
        /// The config parser's error.
        #[source]
        source: toml::de::Error,
    },
    /// The pipeline delivered no frame within 20 s, or ended without one.
    #[error("{}: no frame ({ended:?})", path.display())]
    NoFrame {
        /// The file that gave no frame.
        path: PathBuf,
        /// How the camera's source ended.
        ended: Ended,
    },
}

/// Decodes the first frame of `path` in `pixels`; the error names the file.
pub fn first_frame(path: &Path, pixels: Pixels) -> Result<Frame, StillError> {
    frame_at(path, None, pixels)
}

/// Decodes the frame of `path` whose presentation time is nearest `seconds` (the
/// first frame for `None`, the last one for a time past the end).
pub fn frame_at(path: &Path, seconds: Option<f64>, pixels: Pixels) -> Result<Frame, StillError> {
    gstreamer::init().map_err(StillError::Gstreamer)?;
    let mut cam: CameraConfig =
        toml::from_str("id = \"still\"\nurl = \"unused\"").map_err(|source| {
            StillError::Config {
                path: path.into(),
                source,
            }
        })?;
    cam.url = path.to_string_lossy().into_owned();
    cam.realtime = false;
    // Every frame, none judged unchanged.
    cam.sample_fps = 1000.0;
    cam.change_threshold = 0.0;
    let (tx, rx) = frame_queue(2, WhenFull::Block);
    let stop = Shutdown::new();
    let handle = spawn(
        cam,
        pixels,
        tx,
        |_| {},
        stop.clone(),
        Retry::Never,
        Default::default(),
    );
    let want = seconds.map(|s| Duration::from_secs_f64(s.max(0.0)));
    let mut best: Option<Frame> = None;
    let frame = loop {
        match rx.recv_timeout(TIMEOUT) {
            Ok(Some(Sample::Frame(f))) => {
                let Some(want) = want else { break Some(f) };
                if f.pts >= want {
                    // The nearer of this frame and the one before it.
                    let after = f.pts - want;
                    break match best {
                        Some(b) if want - b.pts.min(want) < after => Some(b),
                        _ => Some(f),
                    };
                }
                let buf = best.take().and_then(Frame::into_buffer).unwrap_or_default();
                best = Some(f.copy_into(buf));
            }
            Ok(Some(Sample::Unchanged(_)) | None) => continue,
            Err(_) => break best,
        }
    };
    // The sender holds a receiver too (for `DropOldest`), so dropping ours does not
    // close the queue: stop the source, or it waits for room forever.
    stop.trigger();
    drop(rx);
    let ended = handle.join();
    frame.ok_or_else(|| StillError::NoFrame {
        path: path.into(),
        ended,
    })
}
