//! A camera's snapshot maker: keeps a copy of the last frame with pixels, and turns a
//! frame into the JPEG of an alert (annotated when `annotate`), written to the
//! camera's folder when there is one.

use std::sync::Arc;
use std::time::SystemTime;

use jpeg_encoder::{ColorType, Encoder};

use super::config::SnapshotConfig;
use super::draw;
use super::error::SnapshotError;
use super::region::Region;
use super::store::Folder;
use crate::engine::{I420View, RgbView};
use crate::kit::{Frame, PixelFormat};
use crate::model::Detection;

/// One alert's picture.
#[derive(Debug, Clone)]
pub struct Snapshot {
    /// The JPEG's bytes (RGB at `quality`, annotated when `annotate`); cheap to clone.
    pub jpeg: Arc<[u8]>,
    /// The file's name in the camera's snapshot folder, when it was written.
    pub file: Option<String>,
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
    /// A snapshot maker for `camera` with `cfg`; its folder is `cfg.dir/<camera>` when
    /// `dir` is set (created at the first write).
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
    ) -> Result<Snapshot, SnapshotError> {
        let frame = self.last.take().ok_or(SnapshotError::NoFrame)?;
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
    ) -> Result<Snapshot, SnapshotError> {
        let (w, h) = (frame.width as usize, frame.height as usize);
        to_rgb(frame, &mut self.rgb)?;
        if self.cfg.annotate {
            draw::annotate(&mut self.rgb, w, h, regions, boxes);
        }
        let (ew, eh) = (
            u16::try_from(w).map_err(|_| SnapshotError::TooWide)?,
            u16::try_from(h).map_err(|_| SnapshotError::TooTall)?,
        );
        let mut jpeg = Vec::new();
        Encoder::new(&mut jpeg, self.cfg.quality.clamp(1, 100))
            .encode(&self.rgb, ew, eh, ColorType::Rgb)
            .map_err(SnapshotError::Jpeg)?;
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

/// Packs `frame` into RGB rows without padding (I420 converted with its matrix):
/// for a snapshot, and for a model that needs RGB when the camera delivers I420.
pub fn to_rgb(frame: &Frame, out: &mut Vec<u8>) -> Result<(), SnapshotError> {
    let (w, h) = (frame.width as usize, frame.height as usize);
    out.clear();
    out.reserve(w * h * 3);
    match frame.format {
        PixelFormat::Rgb => {
            let view = RgbView::of(frame)?;
            for y in 0..h {
                out.extend_from_slice(view.row_bytes(y as u32));
            }
        }
        PixelFormat::I420(_) => {
            let view = I420View::of(frame).ok_or(SnapshotError::NotI420)??;
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
