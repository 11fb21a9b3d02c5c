//! What a clip holds: its frames decoded and counted (`probe_clip`), its duration
//! (`discover_duration`).

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::lock;

/// What decoding a whole clip shows.
#[derive(Clone, Debug)]
pub struct ClipInfo {
    pub frames: u64,
    pub width: u32,
    pub height: u32,
    pub first_pts: Option<Duration>,
    pub last_pts: Option<Duration>,
}

/// Decodes the whole clip (as fast as possible) and counts its frames.
pub fn probe_clip(path: &Path) -> ClipInfo {
    use gstreamer as gst;
    use gstreamer::prelude::*;

    gst::init().expect("gst::init");
    let pipeline =
        gst::parse::launch("filesrc name=src ! decodebin ! fakesink name=sink sync=false")
            .expect("probe pipeline")
            .downcast::<gst::Pipeline>()
            .expect("a pipeline");
    pipeline
        .by_name("src")
        .unwrap()
        .set_property("location", path.to_str().expect("utf-8 path"));
    let sink_pad = pipeline
        .by_name("sink")
        .unwrap()
        .static_pad("sink")
        .unwrap();
    #[derive(Default)]
    struct Seen {
        frames: u64,
        first: Option<Duration>,
        last: Option<Duration>,
    }
    let seen = Arc::new(Mutex::new(Seen::default()));
    let probe_seen = Arc::clone(&seen);
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        if let Some(buf) = info.buffer() {
            let mut s = lock(&probe_seen);
            s.frames += 1;
            if let Some(pts) = buf.pts() {
                let d = Duration::from_nanos(pts.nseconds());
                s.first.get_or_insert(d);
                s.last = Some(d);
            }
        }
        gst::PadProbeReturn::Ok
    });
    pipeline
        .set_state(gst::State::Playing)
        .expect("play probe pipeline");
    let bus = pipeline.bus().unwrap();
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_seconds(120),
        &[gst::MessageType::Eos, gst::MessageType::Error],
    );
    let (width, height) = sink_pad
        .current_caps()
        .and_then(|c| {
            let s = c.structure(0)?;
            Some((s.get::<i32>("width").ok()?, s.get::<i32>("height").ok()?))
        })
        .map(|(w, h)| (w as u32, h as u32))
        .unwrap_or((0, 0));
    let _ = pipeline.set_state(gst::State::Null);
    match msg.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Eos(_)) => {}
        Some(gst::MessageView::Error(e)) => {
            panic!(
                "decoding {} failed: {} ({:?})",
                path.display(),
                e.error(),
                e.debug()
            )
        }
        _ => panic!("decoding {} did not finish within 120 s", path.display()),
    }
    let s = lock(&seen);
    ClipInfo {
        frames: s.frames,
        width,
        height,
        first_pts: s.first,
        last_pts: s.last,
    }
}

/// The duration `gst-discoverer-1.0` reports for a media file.
pub fn discover_duration(path: &Path) -> Duration {
    let out = Command::new("gst-discoverer-1.0")
        .arg(path)
        .output()
        .unwrap_or_else(|e| {
            panic!("cannot run gst-discoverer-1.0 ({e}); run deploy/setup.sh (gstreamer1.0-plugins-base-apps)")
        });
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find_map(|l| l.trim().strip_prefix("Duration:"))
        .unwrap_or_else(|| panic!("no Duration in gst-discoverer-1.0 output:\n{text}"));
    // H:MM:SS.nnnnnnnnn
    let mut parts = line.trim().split(':');
    let (h, m, s) = (
        parts.next().and_then(|v| v.parse::<f64>().ok()),
        parts.next().and_then(|v| v.parse::<f64>().ok()),
        parts.next().and_then(|v| v.parse::<f64>().ok()),
    );
    match (h, m, s) {
        (Some(h), Some(m), Some(s)) => Duration::from_secs_f64(h * 3600.0 + m * 60.0 + s),
        _ => panic!("cannot parse gst-discoverer-1.0 duration {line:?}"),
    }
}
