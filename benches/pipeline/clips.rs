//! The benchmark's H.264 clips, made once with `gst-launch-1.0` (x264enc,
//! matroskamux) under `target/ocellus-bench/` and reused. The file name carries
//! everything that defines a clip, so a change of any setting makes a new file.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};

use crate::common;

/// Longest one `gst-launch-1.0` run making a clip may take (1080p on a small machine
/// takes a while; this only catches a run that hangs, which is then tried again).
const MAKE_CLIP_LIMIT: Duration = Duration::from_secs(600);

/// The light sensor-like noise mixed in when `snow` is on.
const SNOW_ALPHA: f64 = 0.08;

/// What a clip shows and how it is encoded.
#[derive(Clone, Copy, Debug)]
pub struct ClipSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub seconds: u32,
    /// `x264enc key-int-max`: frames from one key frame to the next.
    pub gop_frames: u32,
    pub bitrate_kbps: u32,
    /// A `videotestsrc pattern=ball` moving over the photo.
    pub ball: bool,
    /// `videotestsrc pattern=snow` over everything at `SNOW_ALPHA`.
    pub snow: bool,
}

impl ClipSpec {
    /// The same clip, `seconds` long.
    pub fn with_seconds(self, seconds: u32) -> Self {
        Self { seconds, ..self }
    }

    pub fn frames(&self) -> u64 {
        u64::from(self.fps) * u64::from(self.seconds)
    }

    fn content_tag(&self) -> &'static str {
        match (self.ball, self.snow) {
            (false, false) => "still",
            (true, false) => "ball",
            (false, true) => "still-snow",
            (true, true) => "ball-snow",
        }
    }

    pub fn content(&self) -> String {
        let mut c = "astronaut.png letterboxed (square pixels, black borders)".to_string();
        if self.ball {
            c.push_str(", videotestsrc ball moving over it");
        }
        if self.snow {
            c.push_str(&format!(", videotestsrc snow at alpha {SNOW_ALPHA}"));
        }
        if !self.ball && !self.snow {
            c.push_str(", nothing moves");
        }
        c
    }

    pub fn encoder(&self) -> String {
        format!(
            "x264enc tune=zerolatency speed-preset=veryfast key-int-max={} bitrate={}, h264parse, matroskamux",
            self.gop_frames, self.bitrate_kbps
        )
    }

    /// `DIR/astronaut-TAG-WxHpFPS-gopN-Bk-Ss.mkv`
    pub fn path(&self, dir: &Path) -> PathBuf {
        dir.join(format!(
            "astronaut-{}-{}x{}p{}-gop{}-{}k-{}s.mkv",
            self.content_tag(),
            self.width,
            self.height,
            self.fps,
            self.gop_frames,
            self.bitrate_kbps,
            self.seconds
        ))
    }

    /// The clip as the report describes it (with its real size and bit rate).
    pub fn describe(&self, path: &Path) -> Value {
        let bytes = fs::metadata(path).map(|m| m.len()).ok();
        json!({
            "path": path.display().to_string(),
            "content": self.content(),
            "width_px": self.width,
            "height_px": self.height,
            "fps": self.fps,
            "duration_s": self.seconds,
            "frames_count": self.frames(),
            "gop_frames": self.gop_frames,
            "gop_s": f64::from(self.gop_frames) / f64::from(self.fps),
            "encoder": self.encoder(),
            "bytes": bytes,
            "bitrate_kbps": bytes.map(|b| (b as f64 * 8.0 / 1000.0 / f64::from(self.seconds)).round()),
        })
    }

    /// Makes the clip unless it exists; returns its path.
    pub fn make(&self, dir: &Path) -> PathBuf {
        let out = self.path(dir);
        if out.is_file() {
            eprintln!("bench: reusing {}", out.display());
            return out;
        }
        eprintln!("bench: making {}", out.display());
        let spec = *self;
        common::run_gst_launch(&out, MAKE_CLIP_LIMIT, |tmp| {
            spec.pipeline(tmp)
                .split_whitespace()
                .map(String::from)
                .collect()
        });
        out
    }

    /// The `gst-launch-1.0` pipeline writing the clip to `tmp` (no spaces in paths:
    /// the caller's folders have none).
    fn pipeline(&self, tmp: &Path) -> String {
        let (w, h, fps) = (self.width, self.height, self.fps);
        let frames = self.frames();
        let photo = common::media("astronaut.png");
        let caps =
            |extra: &str| format!("video/x-raw,{extra}width={w},height={h},framerate={fps}/1");
        let still = format!(
            "filesrc location={photo} ! pngdec ! imagefreeze num-buffers={frames} ! videoconvert \
             ! videoscale add-borders=true ! {caps}",
            photo = photo.display(),
            caps = caps("pixel-aspect-ratio=1/1,"),
        );
        let encode = format!(
            "videoconvert ! video/x-raw,format=I420 ! x264enc tune=zerolatency speed-preset=veryfast \
             key-int-max={gop} bitrate={bitrate} ! h264parse ! matroskamux ! filesink location={tmp}",
            gop = self.gop_frames,
            bitrate = self.bitrate_kbps,
            tmp = tmp.display(),
        );
        if !self.ball && !self.snow {
            return format!("{still} ! {encode}");
        }
        let overlay = caps("format=BGRA,");
        let mut p = "compositor name=mix background=black".to_string();
        if self.snow {
            let pad = if self.ball { 2 } else { 1 };
            p.push_str(&format!(" sink_{pad}::alpha={SNOW_ALPHA}"));
        }
        p.push_str(&format!(" ! {encode} {still} ! mix.sink_0"));
        let mut pad = 1;
        if self.ball {
            p.push_str(&format!(
                " videotestsrc pattern=ball num-buffers={frames} background-color=0x00000000 ! {overlay} ! mix.sink_{pad}"
            ));
            pad += 1;
        }
        if self.snow {
            p.push_str(&format!(
                " videotestsrc pattern=snow num-buffers={frames} ! {overlay} ! mix.sink_{pad}"
            ));
        }
        p
    }
}
