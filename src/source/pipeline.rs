//! Builds one camera's GStreamer pipeline:
//! `uridecodebin (rtspsrc/filesrc/souphttpsrc, any decoder) → [sample gate] →
//! videoconvert → videoflip (honours rotation tags) → RGB → appsink`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;
use gstreamer_app as gst_app;
use gstreamer_video as gst_video;

use super::queue::{FrameSender, SendError};
use super::{CameraConfig, Frame, Transport};
use crate::gate::SampleGate;

/// Shared between the appsink's streaming thread and the supervisor.
pub struct Progress {
    /// Frames delivered over the camera's lifetime (also the next sequence number).
    pub frames: AtomicU64,
    /// Milliseconds since `epoch` at the last frame (watchdog).
    pub last_frame_ms: AtomicU64,
    /// Presentation time of the last frame, in milliseconds.
    pub last_pts_ms: AtomicU64,
    /// Decoded frames the sample gate dropped before colour conversion.
    pub gated: AtomicU64,
    pub epoch: Instant,
    pub stop: AtomicBool,
}

impl Progress {
    pub fn new() -> Self {
        Self {
            frames: AtomicU64::new(0),
            last_frame_ms: AtomicU64::new(0),
            last_pts_ms: AtomicU64::new(0),
            gated: AtomicU64::new(0),
            epoch: Instant::now(),
            stop: AtomicBool::new(false),
        }
    }

    /// Time since the last frame (or since `epoch` before the first).
    pub fn frame_age(&self) -> Duration {
        let last = Duration::from_millis(self.last_frame_ms.load(Ordering::Relaxed));
        self.epoch.elapsed().saturating_sub(last)
    }
}

impl Default for Progress {
    fn default() -> Self {
        Self::new()
    }
}

/// The URI GStreamer is given for a camera URL (plain paths become `file://`).
pub fn uri_of(url: &str) -> Result<String, String> {
    if url.contains("://") {
        return Ok(url.to_string());
    }
    gst::glib::filename_to_uri(url, None)
        .map(|u| u.to_string())
        .map_err(|e| format!("not a usable path: {e}"))
}

/// Builds (but does not start) the pipeline for `cam`, delivering frames to `tx`.
pub fn build(
    cam: &CameraConfig,
    tx: FrameSender,
    progress: Arc<Progress>,
) -> Result<gst::Pipeline, String> {
    let uri = uri_of(&cam.url)?;
    let make = |factory: &str| {
        gst::ElementFactory::make(factory).build().map_err(|_| {
            format!("GStreamer element {factory} is missing (install the GStreamer plugins)")
        })
    };
    let pipeline = gst::Pipeline::with_name(&format!("camera-{}", cam.id));
    let decode = make("uridecodebin")?;
    decode.set_property("uri", &uri);
    decode.set_property(
        "caps",
        gst::Caps::builder("video/x-raw").any_features().build(),
    );
    decode.set_property("expose-all-streams", false);
    let convert = make("videoconvert")?;
    let flip = make("videoflip")?;
    flip.set_property_from_str("video-direction", "auto");
    let convert2 = make("videoconvert")?;
    let caps = gst_video::VideoCapsBuilder::new()
        .format(gst_video::VideoFormat::Rgb)
        .build();
    let sink = gst_app::AppSink::builder()
        .caps(&caps)
        .sync(false)
        .max_buffers(1)
        .build();
    pipeline
        .add_many([&decode, &convert, &flip, &convert2, sink.upcast_ref()])
        .map_err(|e| format!("cannot assemble pipeline: {e}"))?;
    gst::Element::link_many([&convert, &flip, &convert2, sink.upcast_ref()])
        .map_err(|e| format!("cannot link pipeline: {e}"))?;

    // The sample gate runs on decoded frames before any colour conversion, so frames
    // that will not be evaluated cost only their decode.
    let gate = Mutex::new(SampleGate::new(cam.sample_fps));
    let gate_progress = progress.clone();
    if let Some(pad) = convert.static_pad("sink") {
        pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let Some(pts) = info.buffer().and_then(|b| b.pts()) else {
                return gst::PadProbeReturn::Ok;
            };
            let mut gate = gate.lock().unwrap_or_else(|e| e.into_inner());
            if gate.admit(Duration::from_nanos(pts.nseconds())) {
                gst::PadProbeReturn::Ok
            } else {
                gate_progress.gated.fetch_add(1, Ordering::Relaxed);
                // `Handled` lets the bindings consume (drop) the buffer; `Drop` would
                // release it twice with gstreamer-rs 0.25 on GStreamer 1.22.
                gst::PadProbeReturn::Handled
            }
        });
    }

    let (latency, transport) = (cam.latency, cam.transport);
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
    let convert_weak = convert.downgrade();
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
            && let Err(e) = pad.link(&sinkpad)
        {
            tracing::warn!("cannot link decoded video pad: {e:?}");
        }
    });

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
                let pts = buffer.pts().map(|t| Duration::from_nanos(t.nseconds()));
                let mapped = buffer
                    .into_mapped_buffer_readable()
                    .map_err(|_| gst::FlowError::Error)?;
                let seq = progress.frames.load(Ordering::Relaxed);
                let pts = pts.unwrap_or_else(|| progress.epoch.elapsed());
                let frame = Frame::from_gst(
                    seq,
                    pts,
                    vi.width(),
                    vi.height(),
                    vi.stride()[0] as usize,
                    mapped,
                );
                tracing::trace!(seq, ?pts, "frame decoded");
                match tx.send(frame, &progress.stop) {
                    Ok(()) => {
                        progress.frames.fetch_add(1, Ordering::Relaxed);
                        progress.last_frame_ms.store(
                            progress.epoch.elapsed().as_millis() as u64,
                            Ordering::Relaxed,
                        );
                        progress
                            .last_pts_ms
                            .store(pts.as_millis() as u64, Ordering::Relaxed);
                        Ok(gst::FlowSuccess::Ok)
                    }
                    Err(SendError::Closed | SendError::Stopped) => Err(gst::FlowError::Flushing),
                }
            })
            .build(),
    );
    Ok(pipeline)
}
