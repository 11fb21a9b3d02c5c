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
mod label;
mod store;

use std::sync::Arc;
use std::time::SystemTime;

use jpeg_encoder::{ColorType, Encoder};

pub use config::SnapshotConfig;

use crate::engine::{I420View, RgbView};
use crate::kit::{Frame, PixelFormat};
use crate::model::Detection;
use store::Folder;

/// One alert's picture.
#[derive(Debug, Clone)]
pub struct Snapshot {
    pub jpeg: Arc<[u8]>,
    /// The file's name in the camera's snapshot folder, when it was written.
    pub file: Option<String>,
}

/// A query's region as a snapshot shows it: outlined and labelled with the query's id.
#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub query: String,
    /// Normalised `[x0, y0, x1, y1]`.
    pub rect: [f32; 4],
}

/// A camera's snapshot maker.
pub struct Snapshotter {
    cfg: SnapshotConfig,
    /// The camera's folder, shared with the snapshot makers of its other threads.
    folder: Option<Arc<Folder>>,
    last: Option<Frame>,
    rgb: Vec<u8>,
}

impl Snapshotter {
    pub fn new(camera: &str, cfg: SnapshotConfig) -> Self {
        let folder = cfg.dir.as_ref().map(|dir| {
            let limits = (cfg.keep, cfg.keep_mb.saturating_mul(1 << 20));
            Arc::new(Folder::new(dir.join(camera), limits))
        });
        Self {
            cfg,
            folder,
            last: None,
            rgb: Vec::new(),
        }
    }

    /// A snapshot maker for another thread of the same camera: same settings, same
    /// folder (one retention limit over every file), buffers of its own.
    pub fn sibling(&self) -> Self {
        Self {
            cfg: self.cfg.clone(),
            folder: self.folder.clone(),
            last: None,
            rgb: Vec::new(),
        }
    }

    /// Keeps a copy of `frame` (its buffer is reused for the next one).
    pub fn keep(&mut self, frame: &Frame) {
        let buf = self
            .last
            .take()
            .and_then(Frame::into_buffer)
            .unwrap_or_default();
        self.last = Some(frame.copy_into(buf));
    }

    /// [`Snapshotter::take_of`] the last kept frame.
    pub fn take(
        &mut self,
        regions: &[Region],
        boxes: &[Detection],
        time: SystemTime,
        query: &str,
    ) -> Result<Snapshot, String> {
        let frame = self.last.take().ok_or("no frame yet")?;
        let shot = self.take_of(&frame, regions, boxes, time, query);
        self.last = Some(frame);
        shot
    }

    /// The JPEG of `frame` with `regions` and `boxes` drawn and labelled (when
    /// `annotate`), written to the snapshot folder as `query`'s when there is one.
    pub fn take_of(
        &mut self,
        frame: &Frame,
        regions: &[Region],
        boxes: &[Detection],
        time: SystemTime,
        query: &str,
    ) -> Result<Snapshot, String> {
        let (w, h) = (frame.width as usize, frame.height as usize);
        to_rgb(frame, &mut self.rgb).map_err(|e| format!("snapshot: {e}"))?;
        if self.cfg.annotate {
            draw::annotate(&mut self.rgb, w, h, regions, boxes);
        }
        let (ew, eh) = (
            u16::try_from(w).map_err(|_| "snapshot: frame too wide for JPEG")?,
            u16::try_from(h).map_err(|_| "snapshot: frame too tall for JPEG")?,
        );
        let mut jpeg = Vec::new();
        Encoder::new(&mut jpeg, self.cfg.quality.clamp(1, 100))
            .encode(&self.rgb, ew, eh, ColorType::Rgb)
            .map_err(|e| format!("snapshot: JPEG: {e}"))?;
        let file = match &self.folder {
            Some(folder) => Some(folder.write(&jpeg, time, query)?),
            None => None,
        };
        Ok(Snapshot {
            jpeg: Arc::from(jpeg),
            file,
        })
    }
}

/// Packs `frame` into RGB rows without padding (I420 converted with its matrix).
fn to_rgb(frame: &Frame, out: &mut Vec<u8>) -> Result<(), String> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    out.clear();
    out.reserve(w * h * 3);
    match frame.format {
        PixelFormat::Rgb => {
            let view = RgbView::of(frame).map_err(|e| e.to_string())?;
            for y in 0..h {
                out.extend_from_slice(view.row_bytes(y as u32));
            }
        }
        PixelFormat::I420(_) => {
            let view = I420View::of(frame)
                .ok_or("not an I420 frame")?
                .map_err(|e| e.to_string())?;
            let m = view.matrix();
            for y in 0..h {
                let (ys, us, vs) = (view.row(0, y), view.row(1, y / 2), view.row(2, y / 2));
                for x in 0..w {
                    let [r, g, b] =
                        m.rgb(f32::from(ys[x]), f32::from(us[x / 2]), f32::from(vs[x / 2]));
                    out.extend_from_slice(&[r as u8, g as u8, b as u8]);
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
