//! Camera config: where frames come from and how often to look at them.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use std::collections::HashSet;

use crate::kit::{Problem, id_ok, shown, text_problem};
use crate::query::QueryConfig;
use crate::query::limits::{MAX_NAME_CHARS, MAX_QUERIES_PER_CAMERA};

/// RTSP lower transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    /// UDP first, TCP when UDP fails (rtspsrc's default).
    #[default]
    Auto,
    /// RTSP over TCP only (interleaved in the RTSP connection; through NAT and firewalls).
    Tcp,
    /// RTSP over UDP only.
    Udp,
}

/// `[[cameras]]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraConfig {
    /// Camera id (1-64 characters of A-Z a-z 0-9 _ -), unique; names its MQTT topics.
    pub id: String,
    /// Home Assistant device name (default: the id).
    #[serde(default)]
    pub name: Option<String>,
    /// `rtsp://`, `rtspt://` (RTSP over TCP), `http(s)://`, `file://` or a plain path.
    pub url: String,
    /// RTSP lower transport (default: auto); ignored for other sources.
    #[serde(default)]
    pub transport: Transport,
    /// At most this many frames a second are evaluated (by presentation time).
    #[serde(default = "default_sample_fps")]
    pub sample_fps: f64,
    /// A sampled frame whose luma thumbnail differs from the last encoded one by less
    /// than this (0..1, the largest cell change inside any query region) reuses the
    /// last answers instead of running the models. 0 turns the change gate off.
    #[serde(default = "default_change_threshold")]
    pub change_threshold: f32,
    /// An unchanged scene is re-encoded at least this often (by presentation time).
    #[serde(
        default = "default_max_staleness",
        deserialize_with = "crate::kit::duration::de"
    )]
    pub max_staleness: Duration,
    /// Decode key frames only: delta frames are dropped before the decoder (for low
    /// sample rates; a frame every GOP).
    #[serde(default)]
    pub keyframes_only: bool,
    /// Threads of the video decoder (FFmpeg decoders' `max-threads`); 0 lets the
    /// decoder choose (one per core). 1 saves a thread per camera (16 cameras on 2
    /// cores: 121 → 105 threads), not memory (peak RSS within 3 MB with
    /// `keyframes_only`; with full decoding the load decides, not this).
    #[serde(default)]
    pub decoder_threads: u32,
    /// Which video decoder to plug in: auto (GStreamer's ranks), software, nvidia,
    /// vaapi or v4l2 (see [`super::DecoderChoice`]). `None` in the file takes
    /// `[decode] decoder`, filled in when the config is loaded.
    #[serde(default)]
    pub decoder: Option<super::DecoderChoice>,
    /// Frames buffered between decoder and evaluator.
    #[serde(default = "default_queue")]
    pub queue: usize,
    /// Play a file again from the start when it ends (its presentation time goes on;
    /// a still image is then a still camera, shown again once per `max_staleness`).
    #[serde(default)]
    pub repeat: bool,
    /// Play a file at its own pace, as the camera that recorded it would have sent it
    /// (`false`: as fast as it decodes). Live sources pace themselves; `ocellus ask`
    /// always plays as fast as it can.
    #[serde(default = "default_realtime")]
    pub realtime: bool,
    /// A live source that yields no frame for this long is restarted.
    #[serde(
        default = "default_frame_timeout",
        deserialize_with = "crate::kit::duration::de"
    )]
    pub frame_timeout: Duration,
    /// Cap of the exponential reconnect backoff.
    #[serde(
        default = "default_reconnect_max",
        deserialize_with = "crate::kit::duration::de"
    )]
    pub reconnect_max: Duration,
    /// Frames larger than this many pixels (width × height) are refused when the
    /// decoder announces their size, before it allocates them (default 7680×4320, 8K
    /// UHD: see [`MAX_PIXELS`]).
    #[serde(default = "default_max_pixels")]
    pub max_pixels: u64,
    /// RTSP jitter-buffer latency.
    #[serde(
        default = "default_latency",
        deserialize_with = "crate::kit::duration::de"
    )]
    pub latency: Duration,
    /// The questions asked of this camera's frames (`[[cameras.queries]]`).
    #[serde(default)]
    pub queries: Vec<QueryConfig>,
}

/// The default frame-size bound: 7680×4320 (8K UHD, 33.2 Mpx), the largest frame any
/// camera or video standard delivers; one RGB frame of it is 100 MB. Without a bound a
/// 275 KB PNG of 16000×16000 pixels made `ask` take 0.94 GB, a 1 MB one of
/// 32000×32000 3.6 GB. A larger still (a 48 Mpx phone photo) needs `max_pixels`.
pub const MAX_PIXELS: u64 = 7680 * 4320;

fn default_max_pixels() -> u64 {
    MAX_PIXELS
}
fn default_sample_fps() -> f64 {
    2.0
}
fn default_change_threshold() -> f32 {
    0.02
}
fn default_realtime() -> bool {
    true
}

fn default_max_staleness() -> Duration {
    Duration::from_secs(30)
}
fn default_queue() -> usize {
    1
}
fn default_frame_timeout() -> Duration {
    Duration::from_secs(10)
}
fn default_reconnect_max() -> Duration {
    Duration::from_secs(30)
}
fn default_latency() -> Duration {
    Duration::from_millis(200)
}

/// The kinds of source a URL can name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// A local file (`file://` or a plain path); played once, or again with `repeat`.
    File,
    /// A live RTSP stream (`rtsp://`, `rtspt://`, `rtsps://`, `rtspu://`).
    Rtsp,
    /// A live HTTP(S) stream (`http://`, `https://`).
    Http,
}

impl CameraConfig {
    /// Plain relative paths become absolute, anchored at the config file's folder.
    pub fn resolve_paths(&mut self, base: &Path) {
        if !self.url.contains("://") && !self.url.is_empty() {
            self.url = crate::kit::resolve(base, Path::new(&self.url))
                .to_string_lossy()
                .into_owned();
        }
        for q in &mut self.queries {
            if let Some(dir) = &q.examples {
                q.examples = Some(crate::kit::resolve(base, dir));
            }
        }
    }

    /// What kind of source the URL names, `None` for an unsupported scheme.
    pub fn kind(&self) -> Option<SourceKind> {
        match self.url.split_once("://").map(|(s, _)| s) {
            None | Some("file") => Some(SourceKind::File),
            Some("rtsp" | "rtspt" | "rtsps" | "rtspu") => Some(SourceKind::Rtsp),
            Some("http" | "https") => Some(SourceKind::Http),
            Some(_) => None,
        }
    }

    /// Live sources drop their oldest frame when the evaluator lags; files wait.
    pub fn is_live(&self) -> bool {
        matches!(self.kind(), Some(SourceKind::Rtsp | SourceKind::Http))
    }
}

/// The smallest `max_pixels` a camera may set: QVGA, below any camera made today.
const MIN_MAX_PIXELS: u64 = 320 * 240;

impl CameraConfig {
    /// The problems of camera `at` (`cameras[i]`) that need no other section: its
    /// source and gate settings, and its queries' count and ids (each query's own
    /// fields are checked by [`crate::query::check`] against the models).
    pub fn check(&self, at: &str, problems: &mut Vec<Problem>) {
        if self.kind().is_none() {
            problems.push(Problem::new(
                format!("{at}.url"),
                format!(
                    "{:?}: unsupported scheme (use rtsp, rtspt, http, https, file or a path)",
                    super::redact(&self.url)
                ),
            ));
        }
        if !(self.sample_fps > 0.0 && self.sample_fps.is_finite()) {
            problems.push(Problem::new(
                format!("{at}.sample_fps"),
                "must be greater than 0",
            ));
        }
        if self.max_pixels < MIN_MAX_PIXELS {
            problems.push(Problem::new(
                format!("{at}.max_pixels"),
                format!(
                    "must be at least {MIN_MAX_PIXELS} (a 320x240 frame); it refuses larger frames"
                ),
            ));
        }
        if !(0.0..=1.0).contains(&self.change_threshold) {
            problems.push(Problem::new(
                format!("{at}.change_threshold"),
                "must be between 0 and 1 (0 turns the change gate off)",
            ));
        }
        if self.max_staleness.is_zero() {
            problems.push(Problem::new(
                format!("{at}.max_staleness"),
                "must be greater than 0",
            ));
        }
        if self.queue == 0 {
            problems.push(Problem::new(format!("{at}.queue"), "must be at least 1"));
        }
        if let Some(name) = &self.name
            && let Some(e) = text_problem(name, MAX_NAME_CHARS, false)
        {
            problems.push(Problem::new(format!("{at}.name"), e));
        }
        if self.queries.len() > MAX_QUERIES_PER_CAMERA {
            problems.push(Problem::new(
                format!("{at}.queries"),
                format!(
                    "{} queries; a camera runs at most {MAX_QUERIES_PER_CAMERA}",
                    self.queries.len()
                ),
            ));
        }
        let mut qids = HashSet::new();
        for (j, q) in self.queries.iter().enumerate() {
            let qat = format!("{at}.queries[{j}]");
            if !id_ok(&q.id) {
                problems.push(Problem::new(
                    format!("{qat}.id"),
                    format!(
                        "{} must be 1-64 characters of A-Z a-z 0-9 _ -",
                        shown(&q.id)
                    ),
                ));
            } else if !qids.insert(q.id.as_str()) {
                problems.push(Problem::new(
                    format!("{qat}.id"),
                    format!(
                        "{:?} is used by another query of camera {:?}",
                        q.id, self.id
                    ),
                ));
            }
        }
    }
}
