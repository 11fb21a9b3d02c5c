//! Live tiles: each camera's [`LiveFrame`] and the one encoder thread that turns its
//! copied frames into small JPEGs (the long side at most `tile_side`), off every
//! evaluator's path. A tile's picture is encoded only after its camera copied a
//! frame, and a camera copies only while someone watches it (a page's tile asked for
//! a picture within the last seconds, a one-shot `ask`): with no page open, nothing
//! is copied or encoded.
//!
//! ```
//! use ocellus::app::http::WebConfig;
//! use ocellus::app::web::Tiles;
//! let tiles = Tiles::start(&WebConfig::default());
//! let door = tiles.tile("door");
//! assert!(door.picture().is_none()); // nothing watched, nothing encoded
//! assert!(std::sync::Arc::ptr_eq(&door, &tiles.tile("door")));
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant, SystemTime};

use crossbeam_channel::{Receiver, Sender};
use jpeg_encoder::{ColorType, Encoder};
use tokio::sync::watch;

use crate::app::http::WebConfig;
use crate::engine::{I420View, RgbView};
use crate::kit::metrics::Counter;
use crate::kit::{Frame, LiveFrame, PixelFormat, RateLimit};

/// Cameras whose frames wait for the encoder, at most (see [`crate::kit::LIVE_OVERFLOW_POLICY`]).
const QUEUE: usize = 64;

/// A camera no one has watched this long keeps no frame buffer (its last picture, a
/// small JPEG, stays).
const IDLE: Duration = Duration::from_secs(10);

/// One encoded live picture.
#[derive(Debug, Clone)]
pub struct Picture {
    /// The JPEG.
    pub jpeg: Arc<[u8]>,
    /// The camera's frame sequence number.
    pub seq: u64,
    /// When the frame was decoded.
    pub time: SystemTime,
    /// The JPEG's size.
    pub width: u32,
    /// The JPEG's size.
    pub height: u32,
}

/// One camera's live tile: its frame slot and its latest picture.
pub struct Tile {
    /// What the camera's evaluator copies frames into.
    pub frame: Arc<LiveFrame>,
    picture: watch::Sender<Option<Picture>>,
}

impl Tile {
    /// The latest picture, if any.
    pub fn picture(&self) -> Option<Picture> {
        self.picture.borrow().clone()
    }

    /// Tells of each new picture.
    pub fn pictures(&self) -> watch::Receiver<Option<Picture>> {
        self.picture.subscribe()
    }
}

/// Every camera's tile and the encoder behind them.
pub struct Tiles {
    tiles: Mutex<HashMap<String, Arc<Tile>>>,
    ready: Sender<Arc<str>>,
    /// Pictures encoded.
    pub encoded: Counter,
    /// Time spent encoding, in microseconds.
    pub encode_us: Counter,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Tiles {
    /// The tiles of `cfg`, with their encoder thread (it ends when they are dropped).
    pub fn start(cfg: &WebConfig) -> Arc<Self> {
        let (ready, queued) = crossbeam_channel::bounded(QUEUE);
        let tiles = Arc::new(Self {
            tiles: Mutex::default(),
            ready,
            encoded: Counter::default(),
            encode_us: Counter::default(),
        });
        let (weak, side, quality) = (Arc::downgrade(&tiles), cfg.tile_side, cfg.tile_quality);
        let every = cfg.tile_every();
        let spawned = std::thread::Builder::new()
            .name("live-tiles".into())
            .spawn(move || encode_loop(&weak, &queued, every, side, quality));
        if let Err(e) = spawned {
            tracing::error!("web: cannot start the live tiles' encoder: {e}; tiles stay blank");
        }
        tiles
    }

    /// `camera`'s tile (made on first use, kept across restarts of the camera).
    pub fn tile(&self, camera: &str) -> Arc<Tile> {
        lock(&self.tiles)
            .entry(camera.to_string())
            .or_insert_with(|| {
                Arc::new(Tile {
                    frame: Arc::new(LiveFrame::new(Arc::from(camera), self.ready.clone())),
                    picture: watch::Sender::new(None),
                })
            })
            .clone()
    }

    /// Frees the frame buffers of cameras no one has watched for [`IDLE`].
    fn release_idle(&self) {
        for tile in lock(&self.tiles).values() {
            tile.frame.release_if_idle(IDLE);
        }
    }

    /// Tiles watched now, and frames the encoder's queue dropped.
    pub fn counts(&self) -> (usize, u64) {
        let tiles = lock(&self.tiles);
        (
            tiles.values().filter(|t| t.frame.watched()).count(),
            tiles.values().map(|t| t.frame.dropped.get()).sum(),
        )
    }
}

/// Encodes each camera whose frame is queued, at most once per `every` a camera (one
/// that comes early waits, its slot keeping the newest frame), until the tiles go.
fn encode_loop(
    tiles: &Weak<Tiles>,
    queued: &Receiver<Arc<str>>,
    every: Duration,
    side: u32,
    quality: u8,
) {
    let mut pixels = Vec::new();
    let warned = RateLimit::new();
    let mut last: HashMap<Arc<str>, Instant> = HashMap::new();
    let mut later: Vec<(Instant, Arc<str>)> = Vec::new();
    let mut swept = Instant::now();
    loop {
        let now = Instant::now();
        let wait = later
            .iter()
            .map(|(at, _)| at.saturating_duration_since(now))
            .min()
            .unwrap_or(Duration::from_secs(1));
        match queued.recv_timeout(wait) {
            Ok(camera) => later.push((now, camera)),
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => {
                if tiles.strong_count() == 0 {
                    return;
                }
            }
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => return,
        }
        let now = Instant::now();
        if now.duration_since(swept) >= Duration::from_secs(1) {
            swept = now;
            match tiles.upgrade() {
                Some(tiles) => tiles.release_idle(),
                None => return,
            }
        }
        let mut i = 0;
        while i < later.len() {
            let camera = later[i].1.clone();
            let due = last.get(&camera).map_or(now, |t| *t + every);
            if due > now {
                later[i].0 = due;
                i += 1;
                continue;
            }
            later.swap_remove(i);
            let Some(tiles) = tiles.upgrade() else { return };
            last.insert(camera.clone(), now);
            encode_one(&tiles, &camera, side, quality, &mut pixels, &warned);
        }
    }
}

fn encode_one(
    tiles: &Tiles,
    camera: &str,
    side: u32,
    quality: u8,
    pixels: &mut Vec<u8>,
    warned: &RateLimit,
) {
    let tile = tiles.tile(camera);
    let started = Instant::now();
    let shot = tile
        .frame
        .take(|f| (scale_down(f, side, pixels), f.seq, f.captured));
    let Some((size, seq, time)) = shot else {
        return;
    };
    let Some((w, h)) = size else {
        if let Some(s) = warned.allow() {
            tracing::warn!(camera = %camera, "web: a live frame of this camera has a layout the tile encoder cannot read{s}");
        }
        return;
    };
    let mut jpeg = Vec::with_capacity(pixels.len() / 8);
    if let Err(e) = Encoder::new(&mut jpeg, quality).encode(pixels, w, h, ColorType::Rgb) {
        if let Some(s) = warned.allow() {
            tracing::warn!(camera = %camera, "web: live tile JPEG: {e}{s}");
        }
        return;
    }
    tiles.encoded.inc();
    tiles.encode_us.add(started.elapsed().as_micros() as u64);
    tile.picture.send_replace(Some(Picture {
        jpeg: Arc::from(jpeg),
        seq,
        time,
        width: u32::from(w),
        height: u32::from(h),
    }));
}

/// The JPEG of `frame`, its long side at most `side` (a one-shot answer's picture).
pub fn jpeg_of(frame: &Frame, side: u32, quality: u8) -> Option<Vec<u8>> {
    let mut rgb = Vec::new();
    let (w, h) = scale_down(frame, side, &mut rgb)?;
    let mut jpeg = Vec::new();
    Encoder::new(&mut jpeg, quality)
        .encode(&rgb, w, h, ColorType::Rgb)
        .ok()?;
    Some(jpeg)
}

/// Packs `frame`, scaled down (nearest pixel) so its long side is at most `side`,
/// into `out` as RGB rows; its size, or `None` for a layout it cannot read.
fn scale_down(frame: &Frame, side: u32, out: &mut Vec<u8>) -> Option<(u16, u16)> {
    let (fw, fh) = (frame.width, frame.height);
    if fw == 0 || fh == 0 {
        return None;
    }
    let scale = (f64::from(side) / f64::from(fw.max(fh))).min(1.0);
    let ow = ((f64::from(fw) * scale).round() as u32).clamp(1, u32::from(u16::MAX));
    let oh = ((f64::from(fh) * scale).round() as u32).clamp(1, u32::from(u16::MAX));
    let xs = |ox: u32| (((f64::from(ox) + 0.5) / scale) as u32).min(fw - 1) as usize;
    let ys = |oy: u32| (((f64::from(oy) + 0.5) / scale) as u32).min(fh - 1) as usize;
    out.clear();
    out.reserve((ow * oh * 3) as usize);
    // The engine's views check each layout against the buffer once.
    match frame.format {
        PixelFormat::Rgb => {
            let view = RgbView::of(frame).ok()?;
            for oy in 0..oh {
                let row = view.row_bytes(ys(oy) as u32);
                for ox in 0..ow {
                    let x = xs(ox) * 3;
                    out.extend_from_slice(&row[x..x + 3]);
                }
            }
        }
        PixelFormat::I420(_) => {
            let view = I420View::of(frame)?.ok()?;
            let m = view.matrix();
            for oy in 0..oh {
                let y = ys(oy);
                let (ys_, us, vs) = (view.row(0, y), view.row(1, y / 2), view.row(2, y / 2));
                for ox in 0..ow {
                    let x = xs(ox);
                    let rgb = m.rgb(
                        f32::from(ys_[x]),
                        f32::from(us[x / 2]),
                        f32::from(vs[x / 2]),
                    );
                    out.extend(rgb.map(|c| c.round() as u8));
                }
            }
        }
    }
    Some((ow as u16, oh as u16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_are_scaled_to_the_long_side_keeping_their_colour() {
        let (w, h) = (1280u32, 720u32);
        let mut data = vec![0u8; (w * h * 3) as usize];
        for px in data.chunks_exact_mut(3) {
            px.copy_from_slice(&[200, 30, 90]);
        }
        let frame = Frame::from_rgb(w, h, (w * 3) as usize, data);
        let mut out = Vec::new();
        assert_eq!(scale_down(&frame, 640, &mut out), Some((640, 360)));
        assert_eq!(out.len(), 640 * 360 * 3);
        assert_eq!(&out[..3], &[200, 30, 90]);
        let small = Frame::from_rgb(4, 2, 12, vec![9; 24]);
        assert_eq!(
            scale_down(&small, 640, &mut out),
            Some((4, 2)),
            "never scaled up"
        );
    }

    #[test]
    fn a_watched_camera_gets_a_picture_and_an_unwatched_one_none() {
        let tiles = Tiles::start(&WebConfig::default());
        let (door, yard) = (tiles.tile("door"), tiles.tile("yard"));
        let frame = Frame::from_rgb(64, 32, 192, vec![128; 64 * 32 * 3]);
        yard.frame.offer(&frame);
        door.frame.lease(Duration::from_secs(60));
        door.frame.offer(&frame);
        let mut rx = door.pictures();
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while rx.borrow_and_update().is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let p = door.picture().expect("a picture of the watched camera");
        assert_eq!((p.width, p.height), (64, 32));
        assert_eq!(&p.jpeg[..2], &[0xFF, 0xD8], "a JPEG");
        assert!(yard.picture().is_none(), "no one watches the yard");
        assert_eq!(tiles.counts().0, 1);
    }
}
