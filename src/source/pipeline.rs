//! Builds one camera's GStreamer pipeline:
//! `uridecodebin (rtspsrc/filesrc/souphttpsrc, [key frames only] → any decoder) →
//! [sample gate → change gate] → videoconvert → videoflip (honours rotation tags) →
//! RGB → appsink`. The gates run on the decoder's own output, so a frame they hold
//! back costs its decode and (when sampled) a luma thumbnail, nothing more. A stream
//! whose frames are over the camera's `max_pixels` is refused when its size is first
//! known (a parser's caps, else the decoder's output caps), before a frame of that
//! size is allocated.
//!
//! A build reads the camera's config once ([`Settings`]: the URI, pixel format,
//! limits, decoder and gate settings), apart from what changes while the pipeline runs
//! ([`Progress`], shared with the supervisor, and the gates' state); it assembles the
//! elements, then installs the gate probe, the size refusals, the decoder and source
//! setup, the link of the decoded video pad and the appsink's frame delivery.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;
use gstreamer_video::prelude::*;

use super::error::PipelineError;
use super::queue::{FrameSender, SendError};
use super::{CameraConfig, Transport, Tuning};
use crate::gate::{ChangeGate, SampleGate};
use crate::kit::metrics::CameraMetrics;
use crate::kit::{Frame, PixelFormat, Pixels, Sample, Unchanged};
use crate::kit::{I420Layout, YuvMatrix};
use crate::kit::{Plane, RateLimits, Thumb, Verdict};

/// Shared between the appsink's streaming thread and the supervisor.
pub struct Progress {
    /// Frames delivered over the camera's lifetime (also the next sequence number).
    pub frames: AtomicU64,
    /// Milliseconds since `epoch` at the last frame (watchdog).
    pub last_frame_ms: AtomicU64,
    /// Presentation time of the last frame, in milliseconds.
    pub last_pts_ms: AtomicU64,
    /// Added to every frame's presentation time: where this play of a repeating file
    /// starts on the camera's timeline (presentation time never restarts at 0).
    pts_offset_ns: AtomicU64,
    /// The gap between the last two frames' presentation times, in milliseconds.
    gap_ms: AtomicU64,
    /// The file's duration as the last play reported it, in milliseconds (0: unknown).
    pub duration_ms: AtomicU64,
    /// Counters of the camera's frames (decoded, sampled, unchanged, ...).
    pub metrics: Arc<CameraMetrics>,
    /// When the camera's source started: the zero of `last_frame_ms` (and the stand-in
    /// timestamp of a frame without one).
    pub epoch: Instant,
    /// Set to stop the appsink thread's sends (a full queue no longer blocks it) while the
    /// pipeline is torn down; cleared when a play starts.
    pub stop: AtomicBool,
    /// What the evaluator changed at runtime (gate regions, pixel format).
    pub tuning: Tuning,
    /// Why the pipeline refused its input (a frame over `max_pixels`), to report in
    /// place of GStreamer's "not negotiated".
    refused: Mutex<Option<String>>,
    /// Streams of the source that were not decoded (audio, subtitles).
    skipped: Mutex<Vec<String>>,
    /// Whether the current pipeline linked a decoded video stream.
    pub video_linked: AtomicBool,
}

impl Progress {
    /// Progress of a camera that has delivered no frame yet, counting into `metrics`,
    /// with `tuning` as the evaluator first set it.
    pub fn new(metrics: Arc<CameraMetrics>, tuning: Tuning) -> Self {
        Self {
            tuning,
            frames: AtomicU64::new(0),
            last_frame_ms: AtomicU64::new(0),
            last_pts_ms: AtomicU64::new(0),
            pts_offset_ns: AtomicU64::new(0),
            gap_ms: AtomicU64::new(0),
            duration_ms: AtomicU64::new(0),
            metrics,
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
            refused: Mutex::new(None),
            skipped: Mutex::new(Vec::new()),
            video_linked: AtomicBool::new(false),
        }
    }

    /// Streams that were not decoded (audio, subtitles), by caps name.
    pub fn skipped_streams(&self) -> Vec<String> {
        self.skipped
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    fn skipped(&self, name: &str) {
        let mut list = self.skipped.lock().unwrap_or_else(|e| e.into_inner());
        // A handful at most: a file has few streams.
        if list.len() < 8 && !list.iter().any(|n| n == name) {
            list.push(name.to_string());
        }
    }

    /// Why the pipeline refused its input, if it did (taken once).
    pub fn take_refusal(&self) -> Option<String> {
        self.refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn refuse(&self, why: String) {
        let mut slot = self.refused.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(why);
    }

    /// Counts a delivered sample: the next sequence number, the watchdog's clock, the
    /// last presentation time.
    fn delivered(&self, pts: Duration) {
        self.frames.fetch_add(1, Ordering::Relaxed);
        self.last_frame_ms
            .store(self.epoch.elapsed().as_millis() as u64, Ordering::Relaxed);
        let ms = pts.as_millis() as u64;
        let before = self.last_pts_ms.swap(ms, Ordering::Relaxed);
        if ms > before {
            self.gap_ms.store(ms - before, Ordering::Relaxed);
        }
    }

    /// A buffer's presentation time on the camera's timeline (see `pts_offset_ns`).
    pub(super) fn pts(&self, buffer_pts: Duration) -> Duration {
        buffer_pts + Duration::from_nanos(self.pts_offset_ns.load(Ordering::Relaxed))
    }

    /// Where the camera's timeline stands: the next play of a repeating file starts
    /// here, `pause` after its last frame (a still image's wait; zero for a clip).
    pub(super) fn continue_timeline(&self, pause: Duration) {
        let start = Duration::from_nanos(self.pts_offset_ns.load(Ordering::Relaxed));
        let last = Duration::from_millis(self.last_pts_ms.load(Ordering::Relaxed));
        let gap = Duration::from_millis(self.gap_ms.load(Ordering::Relaxed).max(1));
        let duration = Duration::from_millis(self.duration_ms.load(Ordering::Relaxed));
        // The file's own length when it reaches past its last frame, else one frame gap.
        let next = if !duration.is_zero() && start + duration > last {
            start + duration
        } else {
            last + gap
        };
        self.pts_offset_ns
            .store((next + pause).as_nanos() as u64, Ordering::Relaxed);
    }

    /// Time since the last frame (or since `epoch` before the first).
    pub fn frame_age(&self) -> Duration {
        let last = Duration::from_millis(self.last_frame_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

/// The URI GStreamer is given for a camera URL (plain paths become `file://`).
pub(super) fn uri_of(url: &str) -> Result<String, PipelineError> {
    if url.contains("://") {
        return Ok(url.to_string());
    }
    gst::glib::filename_to_uri(url, None)
        .map(|u| u.to_string())
        .map_err(PipelineError::Uri)
}

/// What one build of a camera's pipeline is made from, read from its config (and the
/// pixel format its tuning asks for) once per build; the runtime state lives in
/// [`Progress`] and [`Gates`].
struct Settings {
    /// The pipeline's name, `camera-<id>`.
    name: String,
    uri: String,
    pixels: Pixels,
    max_pixels: u64,
    /// RTSP jitter-buffer latency and lower transport (for `rtspsrc`).
    latency: Duration,
    transport: Transport,
    decoder: DecoderSettings,
    gates: GateSettings,
    /// The appsink waits for each frame's time (a file played in real time).
    realtime: bool,
}

/// How the video decoder uridecodebin plugs in is set up.
struct DecoderSettings {
    camera: String,
    keyframes_only: bool,
    threads: u32,
}

/// The sample and change gates' settings.
struct GateSettings {
    sample_fps: f64,
    threshold: f32,
    max_staleness: Duration,
}

impl Settings {
    fn of(cam: &CameraConfig, pixels: Pixels) -> Result<Self, PipelineError> {
        Ok(Self {
            name: format!("camera-{}", cam.id),
            uri: uri_of(&cam.url)?,
            pixels,
            max_pixels: cam.max_pixels,
            latency: cam.latency,
            transport: cam.transport,
            decoder: DecoderSettings {
                camera: cam.id.clone(),
                keyframes_only: cam.keyframes_only,
                threads: cam.decoder_threads,
            },
            gates: GateSettings {
                sample_fps: cam.sample_fps,
                threshold: cam.change_threshold,
                max_staleness: cam.max_staleness,
            },
            realtime: cam.realtime && !cam.is_live(),
        })
    }
}

/// The elements of a camera's pipeline that its callbacks attach to.
struct Elements {
    pipeline: gst::Pipeline,
    decode: gst::Element,
    /// The first element after the decoder: the gates probe its sink pad.
    convert: gst::Element,
    sink: gst_app::AppSink,
}

/// Builds (but does not start) the pipeline for `cam`, delivering frames in the
/// pixels of `progress.tuning` to `tx`.
pub(super) fn build(
    cam: &CameraConfig,
    tx: FrameSender,
    progress: Arc<Progress>,
) -> Result<gst::Pipeline, PipelineError> {
    let settings = Settings::of(cam, progress.tuning.pixels())?;
    honour_jpeg_orientation();
    let parts = assemble(&settings)?;
    // The gates run on decoded frames before any colour conversion, so frames that
    // will not be encoded cost only their decode (and a thumbnail when sampled).
    let gates = Arc::new(Mutex::new(Gates::new(settings.gates, &progress.tuning)));
    install_gates(&parts.convert, gates.clone(), progress.clone(), tx.clone());
    refuse_large_streams(&parts.decode, settings.max_pixels, progress.clone());
    decode_cmyk_jpegs(&parts.decode);
    if let Some(pad) = parts.convert.static_pad("sink") {
        refuse_large_frames(&pad, settings.max_pixels, progress.clone());
    }
    configure_decoder(&parts.pipeline, settings.decoder);
    configure_source(&parts.decode, settings.latency, settings.transport);
    // The camera's `decoder` choice (src/source/decoder.rs), before the video link.
    let p = progress.clone();
    let linked = move || p.video_linked.store(true, Ordering::Relaxed);
    super::decoder::install(
        &parts.pipeline,
        &parts.decode,
        &parts.convert,
        cam,
        &progress.metrics,
        linked,
    );
    link_video(&parts.decode, &parts.convert, progress.clone(), &cam.id);
    deliver_frames(&parts.sink, gates, progress, tx);
    Ok(parts.pipeline)
}

/// `uridecodebin → videoconvert → videoflip → videoconvert → appsink`, added and
/// linked (the decoder's pad is linked when it appears: [`link_video`]).
fn assemble(settings: &Settings) -> Result<Elements, PipelineError> {
    let make = |factory: &'static str| {
        gst::ElementFactory::make(factory)
            .build()
            .map_err(|source| PipelineError::MissingElement { factory, source })
    };
    let pipeline = gst::Pipeline::with_name(&settings.name);
    let decode = make("uridecodebin")?;
    decode.set_property("uri", &settings.uri);
    decode.set_property(
        "caps",
        gst::Caps::builder("video/x-raw").any_features().build(),
    );
    decode.set_property("expose-all-streams", false);
    let convert = make("videoconvert")?;
    let flip = make("videoflip")?;
    flip.set_property_from_str("video-direction", "auto");
    pass_upright_frames(&flip);
    let convert2 = make("videoconvert")?;
    let caps = gst_video::VideoCapsBuilder::new()
        .format(match settings.pixels {
            Pixels::Rgb => gst_video::VideoFormat::Rgb,
            Pixels::I420 => gst_video::VideoFormat::I420,
        })
        .build();
    let sink = gst_app::AppSink::builder()
        .caps(&caps)
        .sync(settings.realtime)
        .max_buffers(1)
        .build();
    pipeline
        .add_many([&decode, &convert, &flip, &convert2, sink.upcast_ref()])
        .map_err(PipelineError::Assemble)?;
    gst::Element::link_many([&convert, &flip, &convert2, sink.upcast_ref()])
        .map_err(PipelineError::Link)?;
    Ok(Elements {
        pipeline,
        decode,
        convert,
        sink,
    })
}

/// Lets `videoflip` hand frames on untouched while it has no rotation to apply.
/// GStreamer 1.22's videoflip starts in its identity method without passthrough, so it
/// copied every frame the gates let through into a pool of its own: two frames held
/// per camera (16 × 720p cameras: 45 MB of 320 MB, found with heaptrack). A rotation
/// tag still takes effect: each change of method sets passthrough again (on for
/// identity, off otherwise).
fn pass_upright_frames(flip: &gst::Element) {
    if let Some(t) = flip.downcast_ref::<gst_video::gst_base::BaseTransform>() {
        t.set_passthrough(true);
    }
}

/// The gate probe on `convert`'s sink pad: a frame over the sample rate is dropped,
/// an unchanged one is dropped and announced to the evaluator as
/// [`Sample::Unchanged`], one that passes goes on to conversion (its thumbnail and
/// verdict kept in `gates` for the appsink).
fn install_gates(
    convert: &gst::Element,
    gates: Arc<Mutex<Gates>>,
    progress: Arc<Progress>,
    tx: FrameSender,
) {
    let Some(pad) = convert.static_pad("sink") else {
        return;
    };
    pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(buffer) = info.buffer() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(pts) = buffer.pts() else {
            return gst::PadProbeReturn::Ok;
        };
        let pts = progress.pts(Duration::from_nanos(pts.nseconds()));
        let mut gates = gates.lock().unwrap_or_else(|e| e.into_inner());
        match gates.judge(pad, buffer, pts, &progress) {
            Some(verdict) if verdict.passes() => gst::PadProbeReturn::Ok,
            verdict => {
                drop(gates);
                if let Some(Verdict::Unchanged(score)) = verdict {
                    let unchanged = Unchanged {
                        seq: progress.frames.load(Ordering::Relaxed),
                        pts,
                        captured: std::time::SystemTime::now(),
                        decoded_at: Instant::now(),
                        score,
                    };
                    tracing::trace!(seq = unchanged.seq, ?pts, score, "frame unchanged");
                    if tx
                        .send(Sample::Unchanged(unchanged), &progress.stop)
                        .is_ok()
                    {
                        progress.delivered(pts);
                    }
                }
                // `Handled` lets the bindings consume (drop) the buffer; `Drop`
                // would release it twice with gstreamer-rs 0.25 on GStreamer 1.22.
                gst::PadProbeReturn::Handled
            }
        }
    });
}

/// Sets the RTSP source's jitter-buffer latency and lower transport when
/// uridecodebin creates it (other sources have no such properties).
fn configure_source(decode: &gst::Element, latency: Duration, transport: Transport) {
    decode.connect("source-setup", false, move |args| {
        if let Some(src) = args.get(1).and_then(|v| v.get::<gst::Element>().ok())
            && src.find_property("latency").is_some()
            && src.find_property("protocols").is_some()
        {
            src.set_property("latency", latency.as_millis() as u32);
            match transport {
                Transport::Tcp => src.set_property_from_str("protocols", "tcp"),
                Transport::Udp => src.set_property_from_str("protocols", "udp"),
                Transport::Auto => {}
            }
        }
        None
    });
}

/// Links the first decoded video pad uridecodebin exposes to `convert`, and notes in
/// `progress` whether one was linked (for "no video stream").
fn link_video(
    decode: &gst::Element,
    convert: &gst::Element,
    progress: Arc<Progress>,
    camera: &str,
) {
    let convert_weak = convert.downgrade();
    progress.video_linked.store(false, Ordering::Relaxed);
    let camera = camera.to_string();
    decode.connect_pad_added(move |_, pad| {
        let Some(convert) = convert_weak.upgrade() else {
            return;
        };
        let is_video = pad
            .current_caps()
            .or_else(|| Some(pad.query_caps(None)))
            .and_then(|c| c.structure(0).map(|s| s.name().starts_with("video/")))
            .unwrap_or(false);
        if let Some(sinkpad) = convert.static_pad("sink")
            && is_video
            && !sinkpad.is_linked()
        {
            match pad.link(&sinkpad) {
                Ok(_) => progress.video_linked.store(true, Ordering::Relaxed),
                Err(e) => {
                    static FAILED: RateLimits = RateLimits::new();
                    if let Some(s) = FAILED.allow(&camera) {
                        tracing::warn!(
                            camera = %camera,
                            suppressed = s.count(),
                            "cannot link decoded video pad: {e:?}{s}"
                        );
                    }
                }
            }
        }
    });
}

/// The appsink's callback: each converted frame, with the thumbnail and verdict the
/// gates kept for it, goes to `tx` (waiting or dropping as the queue's policy says).
fn deliver_frames(
    sink: &gst_app::AppSink,
    gates: Arc<Mutex<Gates>>,
    progress: Arc<Progress>,
    tx: FrameSender,
) {
    let mut info: Option<(gst::Caps, gst_video::VideoInfo)> = None;
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let caps = sample.caps().ok_or(gst::FlowError::NotNegotiated)?;
                if info.as_ref().is_none_or(|(c, _)| c != caps) {
                    let vi = gst_video::VideoInfo::from_caps(caps)
                        .map_err(|_| gst::FlowError::NotNegotiated)?;
                    info = Some((caps.to_owned(), vi));
                }
                let Some((_, vi)) = info.as_ref() else {
                    return Err(gst::FlowError::NotNegotiated);
                };
                let buffer = sample.buffer_owned().ok_or(gst::FlowError::Error)?;
                let pts = buffer
                    .pts()
                    .map(|t| progress.pts(Duration::from_nanos(t.nseconds())));
                let (format, stride) = layout(vi, &buffer);
                let mapped = buffer
                    .into_mapped_buffer_readable()
                    .map_err(|_| gst::FlowError::Error)?;
                let seq = progress.frames.load(Ordering::Relaxed);
                let pts = pts.unwrap_or_else(|| progress.epoch.elapsed());
                let mut frame =
                    Frame::from_gst(seq, pts, (vi.width(), vi.height()), stride, format, mapped);
                let passed = gates.lock().unwrap_or_else(|e| e.into_inner()).take(pts);
                (frame.thumb, frame.verdict) = passed;
                tracing::trace!(seq, ?pts, verdict = ?frame.verdict, "frame decoded");
                match tx.send(Sample::Frame(frame), &progress.stop) {
                    Ok(()) => {
                        progress.delivered(pts);
                        Ok(gst::FlowSuccess::Ok)
                    }
                    Err(SendError::Closed | SendError::Stopped) => Err(gst::FlowError::Flushing),
                }
            })
            .build(),
    );
}

/// The two gates of one camera and what they decided about the frame in flight.
struct Gates {
    settings: GateSettings,
    sample: SampleGate,
    change: ChangeGate,
    /// Caps of the decoder output and their parsed info (re-read only on change).
    info: Option<(gst::Caps, gst_video::VideoInfo)>,
    /// Thumbnail and verdict of the frame that passed, for the appsink to attach
    /// (conversion runs on the same streaming thread, so at most one is in flight).
    passed: Option<(Duration, Option<Thumb>, Verdict)>,
    /// The tuning generation the change gate was built for.
    generation: u64,
}

impl Gates {
    fn new(settings: GateSettings, tuning: &Tuning) -> Self {
        Self {
            sample: SampleGate::new(settings.sample_fps),
            change: ChangeGate::new(settings.threshold, settings.max_staleness, tuning.regions()),
            settings,
            info: None,
            passed: None,
            generation: tuning.generation(),
        }
    }

    /// `None`: over the sample rate. Otherwise the change gate's verdict.
    fn judge(
        &mut self,
        pad: &gst::Pad,
        buffer: &gst::BufferRef,
        pts: Duration,
        progress: &Progress,
    ) -> Option<Verdict> {
        let metrics = &progress.metrics;
        metrics.decoded.inc();
        if !self.sample.admit(pts) {
            return None;
        }
        metrics.sampled.inc();
        let generation = progress.tuning.generation();
        if generation != self.generation {
            // The queries changed: watch their regions, and let this frame through.
            self.generation = generation;
            self.change = ChangeGate::new(
                self.settings.threshold,
                self.settings.max_staleness,
                progress.tuning.regions(),
            );
        }
        let thumb = self.thumbnail(pad, buffer);
        let verdict = self.change.judge(thumb.as_ref(), pts);
        if verdict.passes() {
            self.passed = Some((pts, thumb, verdict));
        } else {
            metrics.unchanged.inc();
        }
        Some(verdict)
    }

    /// What the gate decided for the frame at `pts` now reaching the appsink.
    fn take(&mut self, pts: Duration) -> (Option<Thumb>, Verdict) {
        match self.passed.take() {
            Some((at, thumb, verdict)) if at == pts => (thumb, verdict),
            _ => (None, Verdict::Changed(1.0)),
        }
    }

    /// The luma thumbnail of a decoded buffer (the Y plane; green for RGB formats).
    fn thumbnail(&mut self, pad: &gst::Pad, buffer: &gst::BufferRef) -> Option<Thumb> {
        let caps = pad.current_caps()?;
        if self
            .info
            .as_ref()
            .is_none_or(|(c, _)| c.as_ptr() != caps.as_ptr())
        {
            let info = gst_video::VideoInfo::from_caps(&caps).ok()?;
            self.info = Some((caps, info));
        }
        let (_, info) = self.info.as_ref()?;
        let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buffer, info).ok()?;
        let format = frame.format_info();
        let comp = if format.is_rgb() { 1 } else { 0 };
        let depth = *format.depth().get(comp as usize)?;
        // 16-bit samples: read the high byte (little-endian formats only).
        let high_byte = match depth {
            8 => 0,
            9..=16 if format.is_le() => 1,
            _ => return None,
        };
        let data = frame.comp_data(comp).ok()?;
        let plane = Plane {
            data,
            width: frame.comp_width(comp) as usize,
            height: frame.comp_height(comp) as usize,
            stride: usize::try_from(frame.comp_stride(comp)).ok()?,
            // `comp_data` starts at the component's first sample already.
            offset: high_byte,
            step: usize::try_from(frame.comp_pstride(comp)).ok()?,
        };
        Thumb::of(&plane)
    }
}

/// Refuses a stream whose parsed caps (a parser's or demuxer's output, before any
/// decoder is plugged) name a frame of more than `max_pixels`: uridecodebin asks
/// `autoplug-continue` for every new pad, and the answer "stop" there plus an error
/// on the bus ends the pipeline before a decoder exists. GStreamer 1.22's pngdec, for
/// one, allocates and fills its output frame even when negotiation fails, so the
/// check must come before it.
fn refuse_large_streams(decode: &gst::Element, max_pixels: u64, progress: Arc<Progress>) {
    decode.connect("autoplug-continue", false, move |args| {
        let bin = args.first().and_then(|v| v.get::<gst::Element>().ok());
        let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
        let name = caps
            .as_ref()
            .and_then(|c| c.structure(0).map(|s| s.name().to_string()))
            .unwrap_or_default();
        // Audio and subtitle streams are never decoded: only noted, for "no video
        // stream". (Containers that typefinding names `audio/…` may hold video:
        // they go on to their demuxer.)
        let side_stream = (name.starts_with("audio/")
            && !AUDIO_CONTAINERS.contains(&name.as_str()))
            || name.starts_with("subtitle/")
            || name == "text/x-raw";
        if side_stream {
            progress.skipped(&name);
            return Some(false.to_value());
        }
        let refusal = if NOT_MEDIA.contains(&name.as_str()) {
            Some(format!("not media: the source is {name}"))
        } else {
            caps.as_ref()
                .and_then(|c| frame_size(c))
                .and_then(|size| over_limit(size, max_pixels, "before decoding"))
        };
        let Some(why) = refusal else {
            return Some(true.to_value());
        };
        progress.refuse(why.clone());
        if let Some(bin) = bin {
            let _ = bin.post_message(
                gst::message::Error::builder(gst::StreamError::Format, &why)
                    .src(&bin)
                    .build(),
            );
        }
        Some(false.to_value())
    });
}

/// Lets decodebin plug `jpegparse` (rank none by default) in front of `jpegdec`:
/// it reads a JPEG's EXIF orientation as an `image-orientation` tag, which
/// `videoflip` then applies, so stills show upright as browsers show them; and it
/// states the frame size before the decoder runs. Once per process.
fn honour_jpeg_orientation() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if let Some(parser) = gst::ElementFactory::find("jpegparse")
            && parser.rank() < gst::Rank::SECONDARY
        {
            parser.set_rank(gst::Rank::SECONDARY);
        }
    });
}

/// CMYK (and YCCK) JPEGs, which GStreamer's `jpegdec` cannot decode (libjpeg has
/// no CMYK to RGB conversion), go to FFmpeg's `avdec_mjpeg`, which converts them
/// (Adobe's inverted CMYK too): uridecodebin's `autoplug-select` skips `jpegdec`
/// for them. `jpegparse` states the colour space in its caps.
fn decode_cmyk_jpegs(decode: &gst::Element) {
    decode.connect("autoplug-select", false, move |args| {
        let cmyk = args
            .get(2)
            .and_then(|v| v.get::<gst::Caps>().ok())
            .and_then(|c| {
                let s = c.structure(0)?;
                let space = s.get::<&str>("colorspace").ok()?;
                Some(s.name() == "image/jpeg" && matches!(space, "CMYK" | "YCCK"))
            })
            .unwrap_or(false);
        let jpegdec = args
            .get(3)
            .and_then(|v| v.get::<gst::ElementFactory>().ok())
            .is_some_and(|f| f.name() == "jpegdec");
        gst::glib::Type::from_name("GstAutoplugSelectResult")
            .and_then(gst::glib::EnumClass::with_type)
            .and_then(|r| r.to_value_by_nick(if cmyk && jpegdec { "skip" } else { "try" }))
    });
}

/// What typefinding calls documents (a web server's error or login page, a text
/// file): refused as not media instead of "missing a plug-in".
const NOT_MEDIA: [&str; 5] = [
    "text/html",
    "text/plain",
    "application/xml",
    "text/uri-list",
    "application/json",
];

/// Typefinders' names for containers that may hold video despite the `audio/`.
const AUDIO_CONTAINERS: [&str; 4] = ["audio/ogg", "audio/x-matroska", "audio/webm", "audio/x-m4a"];

/// The refusal of a `width`×`height` frame over `max_pixels`, if it is.
fn over_limit((width, height): (u32, u32), max_pixels: u64, when: &str) -> Option<String> {
    let pixels = u64::from(width) * u64::from(height);
    (pixels > max_pixels).then(|| {
        format!(
            "frame {width}x{height} ({pixels} pixels) is over the limit of {max_pixels} \
             pixels (the camera's max_pixels); refused {when}"
        )
    })
}

/// Refuses decoded frames of more than `max_pixels` at `pad` (the first element after
/// the decoder): the decoder asks whether its output caps are accepted before it
/// allocates a frame of that size, and a refusal there fails its negotiation (no
/// frame buffer is allocated, the pipeline posts "not negotiated"). The reason, with
/// the size, is kept in `progress` for the supervisor's error line.
fn refuse_large_frames(pad: &gst::Pad, max_pixels: u64, progress: Arc<Progress>) {
    pad.add_probe(gst::PadProbeType::QUERY_DOWNSTREAM, move |_, info| {
        let Some(query) = info.query_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let gst::QueryViewMut::AcceptCaps(accept) = query.view_mut() else {
            return gst::PadProbeReturn::Ok;
        };
        let Some(why) = frame_size(accept.caps())
            .and_then(|s| over_limit(s, max_pixels, "at the decoder's output"))
        else {
            return gst::PadProbeReturn::Ok;
        };
        progress.refuse(why);
        accept.set_result(false);
        gst::PadProbeReturn::Handled
    });
}

/// Width and height of fixed video caps.
fn frame_size(caps: &gst::CapsRef) -> Option<(u32, u32)> {
    let s = caps.structure(0)?;
    let width = s.get::<i32>("width").ok()?;
    let height = s.get::<i32>("height").ok()?;
    Some((u32::try_from(width).ok()?, u32::try_from(height).ok()?))
}

/// Configures the video decoder uridecodebin plugs in: its thread count
/// (`decoder_threads`) and, with `keyframes_only`, a probe at its sink that drops
/// buffers flagged as delta units, so only key frames are decoded.
fn configure_decoder(pipeline: &gst::Pipeline, settings: DecoderSettings) {
    let DecoderSettings {
        camera,
        keyframes_only,
        threads,
    } = settings;
    if !keyframes_only && threads == 0 {
        return;
    }
    pipeline.connect_deep_element_added(move |_, _, element| {
        let is_video_decoder = element.factory().is_some_and(|f| {
            let klass = f.klass();
            klass.contains("Decoder") && klass.contains("Video")
        });
        if !is_video_decoder {
            return;
        }
        if threads > 0 && element.find_property("max-threads").is_some() {
            element.set_property("max-threads", threads as i32);
        }
        if !keyframes_only {
            return;
        }
        let Some(pad) = element.static_pad("sink") else {
            return;
        };
        tracing::debug!(
            camera = %camera,
            "key frames only: dropping delta units before {}",
            element.name()
        );
        pad.add_probe(gst::PadProbeType::BUFFER, |_, info| match info.buffer() {
            Some(b) if b.flags().contains(gst::BufferFlags::DELTA_UNIT) => {
                gst::PadProbeReturn::Handled
            }
            _ => gst::PadProbeReturn::Ok,
        });
    });
}

/// The layout of a delivered buffer (its video meta's offsets and strides when it
/// has one, else the caps' default) and the row stride of its first plane.
fn layout(vi: &gst_video::VideoInfo, buffer: &gst::BufferRef) -> (PixelFormat, usize) {
    let (offsets, strides): ([usize; 3], [usize; 3]) = match buffer.meta::<gst_video::VideoMeta>() {
        Some(m) if m.n_planes() as usize >= vi.n_planes() as usize => (
            std::array::from_fn(|i| m.offset().get(i).copied().unwrap_or(0)),
            std::array::from_fn(|i| m.stride().get(i).map(|&s| s.max(0) as usize).unwrap_or(0)),
        ),
        _ => (
            std::array::from_fn(|i| vi.offset().get(i).copied().unwrap_or(0)),
            std::array::from_fn(|i| vi.stride().get(i).map(|&s| s.max(0) as usize).unwrap_or(0)),
        ),
    };
    if vi.format() != gst_video::VideoFormat::I420 {
        return (PixelFormat::Rgb, strides[0]);
    }
    let c = vi.colorimetry();
    let full = c.range() == gst_video::VideoColorRange::Range0_255;
    let matrix = match c.matrix() {
        gst_video::VideoColorMatrix::Bt601 => YuvMatrix::bt601(full),
        gst_video::VideoColorMatrix::Bt2020 => YuvMatrix::bt2020(full),
        gst_video::VideoColorMatrix::Bt709 => YuvMatrix::bt709(full),
        // Unknown: GStreamer's own default, BT.709 for HD and BT.601 for SD.
        _ if vi.height() >= 720 => YuvMatrix::bt709(full),
        _ => YuvMatrix::bt601(full),
    };
    let layout = I420Layout {
        offsets,
        strides,
        matrix,
    };
    (PixelFormat::I420(layout), strides[0])
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `videotestsrc` (one 64×32 I420 frame) `[! taginject tags=TAGS] ! videoflip`
    /// (as [`assemble`] sets it up) `! appsink`: the frame's size at the sink, and
    /// whether the sink got the very buffer that entered videoflip (no copy).
    fn through_flip(tags: Option<&str>) -> ((u32, u32), bool) {
        gst::init().unwrap();
        let make = |f: &str| gst::ElementFactory::make(f).build().unwrap();
        let src = make("videotestsrc");
        src.set_property("num-buffers", 1);
        let caps = make("capsfilter");
        caps.set_property(
            "caps",
            gst_video::VideoCapsBuilder::new()
                .format(gst_video::VideoFormat::I420)
                .width(64)
                .height(32)
                .build(),
        );
        let flip = make("videoflip");
        flip.set_property_from_str("video-direction", "auto");
        pass_upright_frames(&flip);
        let sink = gst_app::AppSink::builder().build();
        let mut chain = vec![src, caps];
        if let Some(t) = tags {
            let inject = make("taginject");
            inject.set_property("tags", t);
            chain.push(inject);
        }
        chain.push(flip.clone());
        chain.push(sink.clone().upcast());
        let pipeline = gst::Pipeline::new();
        pipeline.add_many(&chain).unwrap();
        gst::Element::link_many(&chain).unwrap();
        let entered = Arc::new(Mutex::new(None));
        let e = entered.clone();
        flip.static_pad("sink")
            .unwrap()
            .add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(b) = info.buffer() {
                    *e.lock().unwrap() = Some(b.as_ptr() as usize);
                }
                gst::PadProbeReturn::Ok
            });
        pipeline.set_state(gst::State::Playing).unwrap();
        let sample = sink.pull_sample().unwrap();
        pipeline.set_state(gst::State::Null).unwrap();
        let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
        let same = *entered.lock().unwrap() == Some(sample.buffer().unwrap().as_ptr() as usize);
        ((info.width(), info.height()), same)
    }

    #[test]
    fn upright_frames_pass_videoflip_without_a_copy() {
        assert_eq!(through_flip(None), ((64, 32), true));
    }

    #[test]
    fn a_rotation_tag_still_rotates() {
        assert_eq!(
            through_flip(Some("image-orientation=rotate-90")),
            ((32, 64), false)
        );
    }
}
