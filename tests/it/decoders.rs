//! The `decoder` setting through the real daemon (real GStreamer, clips made from
//! ../shared/media): `software` and `auto` decode with FFmpeg's avdec_h264 and say
//! so in the log and on `/metrics`; `nvidia` and `vaapi` on a machine without such
//! decoders fall back to software with one warning each, frames still flow and the
//! fallback is counted; decoders that claim to be hardware ones and fail (at start,
//! on their first buffer) fall back the same way.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::*;
use gstreamer as gst;
use gstreamer::prelude::*;

const WAIT: Duration = Duration::from_secs(60);

/// A daemon with `[http]` and one repeating file camera per `(id, decoder)`.
fn start(dir: &Path, cameras: &[(&str, &str)]) -> (Daemon, u16) {
    let clip = media_clip(
        dir,
        "clip.mkv",
        &[("astronaut.png", 1.0), ("coffee.png", 1.0)],
    );
    let port = free_port();
    let mut toml = format!("[http]\nlisten = \"127.0.0.1:{port}\"\n\n");
    for (id, decoder) in cameras {
        toml.push_str(&format!(
            "[[cameras]]\nrealtime = false\nid = \"{id}\"\nurl = {}\nrepeat = true\ndecoder = \"{decoder}\"\n\n",
            toml_path(&clip)
        ));
    }
    let cfg = write_config(dir, &toml);
    (Daemon::start(&cfg, &[]), port)
}

/// `/metrics`, parsed as Prometheus text.
fn scrape(port: u16) -> Option<prometheus_parse::Scrape> {
    let r = http(port, "GET", "/metrics", None, b"")?;
    if r.status != 200 {
        return None;
    }
    let lines = r
        .text()
        .lines()
        .map(|l| Ok(l.to_string()))
        .collect::<Vec<_>>();
    prometheus_parse::Scrape::parse(lines.into_iter()).ok()
}

/// The labels of camera `id`'s `ocellus_camera_decoder_info` sample, once it has one
/// and the camera has decoded `frames` frames.
fn decoder_info(port: u16, id: &str, frames: f64) -> Vec<(String, String)> {
    let mut labels = Vec::new();
    let found = wait_until(WAIT, || {
        let Some(s) = scrape(port) else {
            return false;
        };
        let decoded = metric_value(&s, "ocellus_camera_decoded_frames_total", &[("camera", id)])
            .unwrap_or(0.0);
        let info = s.samples.iter().find(|x| {
            x.metric == "ocellus_camera_decoder_info" && x.labels.get("camera") == Some(id)
        });
        if let (true, Some(info)) = (decoded >= frames, info) {
            let mut l: Vec<(String, String)> = ["camera", "decoder", "kind", "wanted"]
                .iter()
                .map(|k| (k.to_string(), info.labels.get(k).unwrap_or("").to_string()))
                .collect();
            l.sort();
            labels = l;
            true
        } else {
            false
        }
    });
    assert!(
        found,
        "camera {id}: no decoder on /metrics after {frames} frames"
    );
    labels
}

fn labels(id: &str, decoder: &str, kind: &str, wanted: &str) -> Vec<(String, String)> {
    let mut l: Vec<(String, String)> = [
        ("camera", id),
        ("decoder", decoder),
        ("kind", kind),
        ("wanted", wanted),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    l.sort();
    l
}

/// Whether GStreamer here has a decoder whose factory name starts with one of `prefixes`.
fn has_decoder(prefixes: &[&str]) -> bool {
    gst::init().unwrap();
    gst::ElementFactory::factories_with_type(gst::ElementFactoryType::DECODER, gst::Rank::NONE)
        .into_iter()
        .any(|f| {
            let name = f.name();
            prefixes.iter().any(|p| name.starts_with(p))
                && name.ends_with("dec")
                && !name.contains("fake")
        })
}

#[test]
fn software_and_auto_decode_with_avdec_and_say_so() {
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, port) = start(dir.path(), &[("sw", "software"), ("plain", "auto")]);
    assert_eq!(
        decoder_info(port, "sw", 25.0),
        labels("sw", "avdec_h264", "software", "software")
    );
    assert_eq!(
        decoder_info(port, "plain", 25.0),
        labels("plain", "avdec_h264", "software", "auto")
    );
    let s = scrape(port).unwrap();
    for id in ["sw", "plain"] {
        assert_eq!(
            metric_value(
                &s,
                "ocellus_camera_decoder_fallbacks_total",
                &[("camera", id)]
            ),
            Some(0.0),
            "{id}"
        );
    }
    daemon.stop();
    let log = strip_ansi(&daemon.output());
    for id in ["sw", "plain"] {
        let lines: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("camera {id}: decoding with")))
            .collect();
        // Once per camera, though a repeating file rebuilds its pipeline each time.
        assert_eq!(lines.len(), 1, "{lines:#?}");
        assert!(
            lines[0].contains("decoding with avdec_h264 (software)"),
            "{}",
            lines[0]
        );
        assert!(lines[0].contains(&format!("camera={id}")), "{}", lines[0]);
    }
    assert!(log_lines(&log, "WARN").is_empty(), "{log}");
    assert_no_panic("the daemon's log", &log);
    assert_no_critical("the daemon's log", &log);
}

#[test]
fn missing_hardware_decoders_fall_back_to_software_once() {
    let mut cameras = Vec::new();
    if !has_decoder(&["nv"]) {
        cameras.push(("gpu", "nvidia"));
    }
    if !has_decoder(&["va"]) {
        cameras.push(("intel", "vaapi"));
    }
    if cameras.is_empty() {
        eprintln!("skipped: this machine has NVIDIA and VA-API decoders");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let (mut daemon, port) = start(dir.path(), &cameras);
    for (id, wanted) in &cameras {
        // Frames flow, from the software decoder.
        assert_eq!(
            decoder_info(port, id, 25.0),
            labels(id, "avdec_h264", "software", wanted)
        );
    }
    // Past the clip's end (two seconds at ten frames a second), so the pipeline was
    // built again at least once: still one fallback.
    for (id, _) in &cameras {
        decoder_info(port, id, 45.0);
    }
    let s = scrape(port).unwrap();
    for (id, _) in &cameras {
        assert_eq!(
            metric_value(
                &s,
                "ocellus_camera_decoder_fallbacks_total",
                &[("camera", id)]
            ),
            Some(1.0),
            "{id}"
        );
        assert_eq!(
            metric_value(&s, "ocellus_camera_up", &[("camera", id)]),
            Some(1.0),
            "{id}"
        );
    }
    daemon.stop();
    let log = strip_ansi(&daemon.output());
    let warnings = log_lines(&log, "WARN");
    assert_eq!(warnings.len(), cameras.len(), "{warnings:#?}");
    for (id, wanted) in &cameras {
        let mine: Vec<&&str> = warnings
            .iter()
            .filter(|l| l.contains(&format!("camera={id}")))
            .collect();
        assert_eq!(mine.len(), 1, "{warnings:#?}");
        let want = format!(
            "camera {id}: decoder = \"{wanted}\": no {wanted} decoder for video/x-h264 is \
             installed; decoding in software instead"
        );
        assert!(mine[0].contains(&want), "{}\nwanted: {want}", mine[0]);
        let used: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(&format!("camera {id}: decoding with")))
            .collect();
        assert_eq!(used.len(), 1, "{used:#?}");
        assert!(used[0].contains("avdec_h264 (software)"), "{}", used[0]);
    }
    assert_no_panic("the daemon's log", &log);
    assert_no_critical("the daemon's log", &log);
}

/// Decoders that claim to be hardware ones and fail, registered (rank none, as some
/// hardware decoders are) in a process of the test's own: `v4l2fakeh264dec` cannot
/// start (its state change to READY fails), `nvfakeh264dec` starts and then errors on
/// its first buffer. Counts of their attempts show they were really tried.
mod fake {
    use std::sync::LazyLock;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use gstreamer as gst;
    use gstreamer::glib;
    use gstreamer::prelude::*;
    use gstreamer::subclass::prelude::*;

    /// Times `v4l2fakeh264dec` was asked to start, and `nvfakeh264dec` got a buffer.
    pub static STARTS: AtomicUsize = AtomicUsize::new(0);
    pub static BUFFERS: AtomicUsize = AtomicUsize::new(0);

    pub const FAILS_TO_START: &str = "v4l2fakeh264dec";
    pub const FAILS_ON_DATA: &str = "nvfakeh264dec";

    /// Sink and source pad templates of an H.264 decoder.
    fn templates() -> Vec<gst::PadTemplate> {
        let sink: gst::Caps =
            "video/x-h264, stream-format=(string){ avc, byte-stream }, alignment=(string)au"
                .parse()
                .unwrap();
        let src = gst::Caps::builder("video/x-raw").build();
        vec![
            gst::PadTemplate::new(
                "sink",
                gst::PadDirection::Sink,
                gst::PadPresence::Always,
                &sink,
            )
            .unwrap(),
            gst::PadTemplate::new(
                "src",
                gst::PadDirection::Src,
                gst::PadPresence::Always,
                &src,
            )
            .unwrap(),
        ]
    }

    fn metadata() -> gst::subclass::ElementMetadata {
        gst::subclass::ElementMetadata::new(
            "Fake hardware H.264 decoder",
            "Codec/Decoder/Video/Hardware",
            "Fails, for ocellus's tests",
            "ocellus",
        )
    }

    /// A pad from `element`'s template `name`; a sink pad's buffers get `chain`, its
    /// caps are swallowed (a decoder's output caps are its own).
    fn pad(
        element: &gst::Element,
        name: &str,
        chain: impl Fn() -> Result<gst::FlowSuccess, gst::FlowError> + Send + Sync + 'static,
    ) -> gst::Pad {
        let template = element.pad_template(name).unwrap();
        gst::Pad::builder_from_template(&template)
            .chain_function(move |_, _, _| chain())
            .event_function(|pad, parent, event| match event.view() {
                gst::EventView::Caps(_) => true,
                _ => gst::Pad::event_default(pad, parent, event),
            })
            .build()
    }

    /// Defines a fake decoder type `$name` (module `$imp`) whose NULL to READY change
    /// runs `$start` and whose buffers run `$chain` (given the element).
    macro_rules! fake_decoder {
        ($name:ident, $imp:ident, $type_name:literal, $start:expr, $chain:expr) => {
            glib::wrapper! {
                pub struct $name(ObjectSubclass<$imp::$name>) @extends gst::Element, gst::Object;
            }

            mod $imp {
                use super::*;

                #[derive(Default)]
                pub struct $name;

                #[glib::object_subclass]
                impl ObjectSubclass for $name {
                    const NAME: &'static str = $type_name;
                    type Type = super::$name;
                    type ParentType = gst::Element;
                }

                impl ObjectImpl for $name {
                    fn constructed(&self) {
                        self.parent_constructed();
                        let element: gst::Element = self.obj().clone().upcast();
                        let weak = element.downgrade();
                        let sink = pad(&element, "sink", move || {
                            let chain: fn(&gst::Element) -> _ = $chain;
                            match weak.upgrade() {
                                Some(e) => chain(&e),
                                None => Err(gst::FlowError::Flushing),
                            }
                        });
                        element.add_pad(&sink).unwrap();
                        element
                            .add_pad(&pad(&element, "src", || Ok(gst::FlowSuccess::Ok)))
                            .unwrap();
                    }
                }

                impl GstObjectImpl for $name {}

                impl ElementImpl for $name {
                    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
                        static META: LazyLock<gst::subclass::ElementMetadata> =
                            LazyLock::new(super::metadata);
                        Some(&*META)
                    }

                    fn pad_templates() -> &'static [gst::PadTemplate] {
                        static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> =
                            LazyLock::new(super::templates);
                        TEMPLATES.as_ref()
                    }

                    fn change_state(
                        &self,
                        transition: gst::StateChange,
                    ) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
                        if transition == gst::StateChange::NullToReady {
                            let start: fn() -> Result<(), gst::StateChangeError> = $start;
                            start()?;
                        }
                        self.parent_change_state(transition)
                    }
                }
            }
        };
    }

    fake_decoder!(
        FailsToStart,
        fails_to_start,
        "OcellusTestFailsToStart",
        || {
            STARTS.fetch_add(1, Ordering::SeqCst);
            Err(gst::StateChangeError)
        },
        |_| Err(gst::FlowError::Error)
    );

    fake_decoder!(
        FailsOnData,
        fails_on_data,
        "OcellusTestFailsOnData",
        || Ok(()),
        |element| {
            BUFFERS.fetch_add(1, Ordering::SeqCst);
            gst::element_error!(
                element,
                gst::StreamError::Decode,
                ("fake hardware decoder failed")
            );
            Err(gst::FlowError::Error)
        }
    );

    pub fn register() {
        gst::init().unwrap();
        let rank = gst::Rank::NONE;
        gst::Element::register(None, FAILS_TO_START, rank, FailsToStart::static_type()).unwrap();
        gst::Element::register(None, FAILS_ON_DATA, rank, FailsOnData::static_type()).unwrap();
    }
}

/// Set in the process the fake decoders are registered in.
const ALONE_ENV: &str = "OCELLUS_FAKE_DECODERS_ALONE";

/// Plays `clip` once as camera `id` with `decoder`; the frames it delivered.
fn play(id: &str, decoder: &str, clip: &Path) -> (usize, std::sync::Arc<CameraMetrics>) {
    let cam: CameraConfig = toml::from_str(&format!(
        "id = \"{id}\"\nurl = {}\ndecoder = \"{decoder}\"",
        toml_path(clip)
    ))
    .unwrap();
    let (tx, rx) = source::frame_queue(2, WhenFull::Block);
    let metrics = std::sync::Arc::new(CameraMetrics::default());
    let handle = source::spawn(
        cam,
        Pixels::I420,
        tx,
        |_| {},
        Shutdown::new(),
        source::Retry::Never,
        metrics.clone(),
    );
    let mut frames = 0;
    let deadline = std::time::Instant::now() + WAIT;
    while std::time::Instant::now() < deadline {
        match rx.recv_timeout(Duration::from_secs(1)) {
            Ok(Some(Sample::Frame(_))) => frames += 1,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    let ended = handle.join();
    assert!(
        matches!(ended, source::Ended::Finished { .. }),
        "camera {id}: {ended:?}"
    );
    (frames, metrics)
}

use ocellus::kit::metrics::CameraMetrics;
use ocellus::kit::shutdown::Shutdown;
use ocellus::kit::{Pixels, Sample};
use ocellus::source::{self, CameraConfig, WhenFull};
use std::sync::atomic::Ordering;

#[test]
fn hardware_decoders_that_fail_fall_back_to_software_once() {
    if std::env::var_os(ALONE_ENV).is_none() {
        let out = rerun_this_test(
            module_path!(),
            "hardware_decoders_that_fail_fall_back_to_software_once",
        )
        .arg("--nocapture")
        .env(ALONE_ENV, "1")
        .output()
        .unwrap();
        let stdout = strip_ansi(&String::from_utf8_lossy(&out.stdout));
        let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
        assert!(out.status.success(), "alone: {}\n{text}", out.status);
        assert!(
            stdout.contains("test result: ok. 1 passed"),
            "the test did not run alone:\n{text}"
        );
        let warnings: Vec<&str> = stdout.lines().filter(|l| l.contains(" WARN ")).collect();
        assert_eq!(warnings.len(), 2, "{text}");
        let expect = [
            "camera start: decoder = \"v4l2\": v4l2fakeh264dec could not start; decoding in \
             software instead",
            "camera data: decoder = \"nvidia\": nvfakeh264dec failed before the first frame: \
             fake hardware decoder failed; decoding in software instead",
        ];
        for e in expect {
            assert!(
                warnings.iter().any(|w| w.contains(e)),
                "missing {e:?} in\n{text}"
            );
        }
        return;
    }
    // Alone: the fake decoders are registered for this process only; the log goes to
    // stdout for the parent to read.
    tracing_subscriber::fmt()
        .with_writer(std::io::stdout)
        .with_ansi(false)
        .init();
    fake::register();
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(dir.path(), "clip.mkv", &[("astronaut.png", 1.0)]);
    for (id, decoder, tried) in [
        ("start", "v4l2", &fake::STARTS),
        ("data", "nvidia", &fake::BUFFERS),
    ] {
        let before = tried.load(Ordering::SeqCst);
        let (frames, metrics) = play(id, decoder, &clip);
        assert!(
            tried.load(Ordering::SeqCst) > before,
            "{id}: the fake was not tried"
        );
        assert!(frames > 0, "{id}: no frame");
        // Every frame of the clip decoded (the gates then sample two a second).
        assert_eq!(metrics.decoded.get(), 10, "{id}");
        let chosen = metrics.decoder.chosen().unwrap();
        assert_eq!(
            (chosen.factory.as_str(), chosen.kind, chosen.wanted),
            ("avdec_h264", "software", decoder),
            "{id}"
        );
        assert_eq!(metrics.decoder.fallbacks.get(), 1, "{id}");
    }
}
