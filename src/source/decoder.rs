//! Which video decoder a camera's pipeline plugs in: `decoder = "auto" | "software" |
//! "nvidia" | "vaapi" | "v4l2"` (`[decode]` for every camera, `[[cameras]]` for one).
//!
//! The choice is made per pipeline, on the camera's own `uridecodebin`, never by
//! changing GStreamer's global ranks (cameras may want different decoders):
//!
//! - `autoplug-sort` reorders the factories decodebin is about to try for a stream:
//!   the wanted kind's decoders first (those of rank none too, which decodebin leaves
//!   out on its own), software ones after them, other hardware ones never; for
//!   `software`, hardware ones never. Parsers and demuxers keep their places. When no
//!   decoder of the wanted kind is installed for the stream's codec, the camera falls
//!   back to software there and then.
//! - `autoplug-select` notes the hardware decoders decodebin tries: a software one
//!   asked for after them means they could not start (decodebin moves on to the next
//!   factory), i.e. a fallback.
//! - A hardware decoder's output is negotiated against what ocellus's converter takes
//!   (system memory), not left to pick device memory it cannot read; one whose output
//!   is device memory only (Jetson's `nvv4l2decoder`, NVMM) is bridged by
//!   `nvvidconv` (or `nvvideoconvert`) when one is installed.
//! - An error from the pipeline after a hardware decoder was tried and before the
//!   first frame (negotiation, a decoder that failed on the stream) is noted, and the
//!   supervisor rebuilds the pipeline in software ([`fall_back_after_failure`]).
//!
//! `auto` leaves decodebin's choice alone (GStreamer's ranks). Whatever the choice,
//! the decoder the pipeline ends up with is logged once per camera and shown on
//! `/metrics` ([`crate::kit::metrics::DecoderMetrics`]). A fallback is one warning
//! line and one count; the camera then stays on software until it restarts.

use std::sync::{Arc, Mutex};

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

use super::decoder_choice::{DecoderKind, classify};
use super::{CameraConfig, DecoderChoice};
use crate::kit::metrics::{CameraMetrics, DecoderMetrics};

/// Whether `factory` makes a video (or image) decoder.
fn is_decoder(factory: &gst::ElementFactory) -> bool {
    let klass = factory.klass();
    klass.contains("Decoder") && (klass.contains("Video") || klass.contains("Image"))
}

fn kind_of(factory: &gst::ElementFactory) -> DecoderKind {
    classify(factory.name().as_str(), factory.klass())
}

/// Where a factory goes when decodebin's list for one stream is rearranged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// Not a decoder (parser, demuxer, ...): stays where it is.
    Other,
    /// A decoder of the wanted kind: first.
    Wanted,
    /// A software decoder: after the wanted ones (the fallback).
    Software,
    /// A decoder the choice refuses.
    Refused,
}

/// decodebin's list for one stream, rearranged: the wanted decoders, then the software
/// ones (when `software` is true), in the slot of the first decoder of the list; every
/// other factory in its place. `None` when the list holds no decoder (nothing to do).
fn arrange<T>(list: Vec<T>, place: impl Fn(&T) -> Place, software: bool) -> Option<Vec<T>> {
    let places: Vec<Place> = list.iter().map(&place).collect();
    let first = places.iter().position(|p| *p != Place::Other)?;
    let mut wanted = Vec::new();
    let mut soft = Vec::new();
    let mut others = Vec::new();
    for (item, p) in list.into_iter().zip(places) {
        match p {
            Place::Other => others.push(item),
            Place::Wanted => wanted.push(item),
            Place::Software if software => soft.push(item),
            Place::Software | Place::Refused => {}
        }
    }
    // The non-decoders before the first decoder (all of the list before it) stay
    // before the decoders.
    let mut out: Vec<T> = Vec::new();
    let mut others = others.into_iter();
    out.extend(others.by_ref().take(first));
    out.extend(wanted);
    out.extend(soft);
    out.extend(others);
    Some(out)
}

/// What one pipeline build noted about its hardware decoders.
#[derive(Debug, Default)]
struct Tries {
    /// The hardware decoder decodebin last tried, and the pad it was for.
    last: Option<(String, glib::WeakRef<gst::Pad>)>,
}

/// What a pipeline's decoder hooks share.
struct Hooks {
    camera: String,
    url: String,
    wanted: DecoderChoice,
    metrics: Arc<CameraMetrics>,
    /// Tells the pipeline that its decoded video stream is linked (by the NVMM bridge).
    linked: Box<dyn Fn() + Send + Sync>,
    tries: Mutex<Tries>,
}

impl Hooks {
    fn decoder(&self) -> &DecoderMetrics {
        &self.metrics.decoder
    }

    /// The choice in force now: software once the camera fell back.
    fn choice(&self) -> DecoderChoice {
        if self.decoder().software_only() {
            DecoderChoice::Software
        } else {
            self.wanted
        }
    }

    /// The first fallback of the camera: one warning line and one count.
    fn fall_back(&self, why: &str) {
        if self.decoder().fall_back() {
            let why = super::redact_in(why, &self.url);
            tracing::warn!(
                camera = %self.camera,
                "camera {}: decoder = {:?}: {why}; decoding in software instead",
                self.camera,
                self.wanted.as_str()
            );
        }
    }
}

/// Installs the decoder choice on a camera's pipeline: `decode` is its uridecodebin,
/// `convert` the first element after the decoder, `metrics` the camera's (its decoder
/// state among them), `linked` called when the NVMM bridge links the decoded video.
/// Call before the decoded pad is linked (the bridge links it first).
pub(super) fn install(
    pipeline: &gst::Pipeline,
    decode: &gst::Element,
    convert: &gst::Element,
    cam: &CameraConfig,
    metrics: &Arc<CameraMetrics>,
    linked: impl Fn() + Send + Sync + 'static,
) {
    let hooks = Arc::new(Hooks {
        camera: cam.id.clone(),
        url: cam.url.clone(),
        wanted: cam.decoder.unwrap_or_default(),
        metrics: metrics.clone(),
        linked: Box::new(linked),
        tries: Mutex::new(Tries::default()),
    });
    // A failure noted by an earlier pipeline is that pipeline's.
    let _ = hooks.decoder().take_failure();
    note_decoder(decode, convert, pipeline, hooks.clone());
    negotiate_system_memory(pipeline, convert);
    if hooks.choice() == DecoderChoice::Auto {
        return;
    }
    sort_factories(decode, hooks.clone());
    if hooks.choice().is_hardware() {
        note_tries(decode, hooks.clone());
        note_failures(pipeline, hooks);
    }
}

/// After a pipeline failed before its first frame: when its hardware decoder was the
/// cause (noted in `decoder` when the error was posted), falls back to software (one
/// warning, one count) and says so, for the caller to rebuild the pipeline at once.
pub(super) fn fall_back_after_failure(cam: &CameraConfig, decoder: &DecoderMetrics) -> bool {
    let Some(why) = decoder.take_failure() else {
        return false;
    };
    if decoder.fall_back() {
        let why = super::redact_in(&why, &cam.url);
        tracing::warn!(
            camera = %cam.id,
            "camera {}: decoder = {:?}: {why}; decoding in software instead",
            cam.id,
            cam.decoder.unwrap_or_default().as_str()
        );
    }
    true
}

/// The wanted decoders first, software ones after them, others never (see the module
/// doc); a codec no decoder of the wanted kind takes falls back to software.
fn sort_factories(decode: &gst::Element, hooks: Arc<Hooks>) {
    decode.connect("autoplug-sort", false, move |args| {
        let caps = args.get(2).and_then(|v| v.get::<gst::Caps>().ok());
        let list = args.get(3).and_then(|v| v.get::<glib::ValueArray>().ok());
        let sorted = match (caps, list) {
            (Some(caps), Some(list)) => sorted(&hooks, &caps, &list),
            _ => None,
        };
        Some(sorted.to_value())
    });
}

/// decodebin's `list` for `caps`, rearranged for the camera's choice; `None` to leave
/// it as it is.
fn sorted(hooks: &Hooks, caps: &gst::Caps, list: &glib::ValueArray) -> Option<glib::ValueArray> {
    let factories: Vec<gst::ElementFactory> = list
        .iter()
        .filter_map(|v| v.get::<gst::ElementFactory>().ok())
        .collect();
    if !factories.iter().any(is_decoder) {
        return None;
    }
    let choice = hooks.choice();
    let place = |f: &gst::ElementFactory| {
        if !is_decoder(f) {
            Place::Other
        } else if choice.is_hardware() && choice.accepts(f.name().as_str(), kind_of(f)) {
            Place::Wanted
        } else if kind_of(f) == DecoderKind::Software {
            Place::Software
        } else {
            Place::Refused
        }
    };
    let mut factories = factories;
    if choice.is_hardware() {
        // decodebin offers only decoders of rank marginal and up; a wanted one of
        // rank none (not autoplugged by default) is offered here too.
        let fixed = caps.is_fixed();
        let extra = gst::ElementFactory::factories_with_type(
            gst::ElementFactoryType::DECODER,
            gst::Rank::NONE,
        )
        .into_iter()
        .filter(|f| {
            f.rank() < gst::Rank::MARGINAL
                && choice.accepts(f.name().as_str(), kind_of(f))
                && is_decoder(f)
                && if fixed {
                    f.can_sink_all_caps(caps)
                } else {
                    f.can_sink_any_caps(caps)
                }
        });
        let mut extra: Vec<_> = extra.collect();
        extra.sort_by_key(|f| std::cmp::Reverse(f.rank()));
        // After the list's own wanted decoders (`arrange` keeps the order).
        factories.extend(extra);
    }
    let mut software = true;
    if choice.is_hardware() && !factories.iter().any(|f| place(f) == Place::Wanted) {
        let name = caps
            .structure(0)
            .map(|s| s.name().to_string())
            .unwrap_or_default();
        let parser = factories.iter().any(|f| f.klass().contains("Parser"));
        if !codec_has_wanted(choice, caps) {
            hooks.fall_back(&format!(
                "no {} decoder for {name} is installed",
                choice.as_str()
            ));
        } else if parser && !parsed(caps) {
            // A wanted decoder may take the stream once it is parsed: the parser
            // goes first, without a software decoder beside it.
            software = false;
        } else {
            hooks.fall_back(&format!(
                "no installed {} decoder takes this {name} stream",
                choice.as_str()
            ));
        }
    }
    let arranged = arrange(factories, place, software)?;
    Some(glib::ValueArray::new(arranged))
}

/// Whether any installed decoder of `choice`'s kind takes some of `caps` (the codec,
/// whatever its stream format or profile).
fn codec_has_wanted(choice: DecoderChoice, caps: &gst::Caps) -> bool {
    gst::ElementFactory::factories_with_type(gst::ElementFactoryType::DECODER, gst::Rank::NONE)
        .into_iter()
        .any(|f| {
            is_decoder(&f)
                && choice.accepts(f.name().as_str(), kind_of(&f))
                && f.can_sink_any_caps(caps)
        })
}

/// Whether a parser has been through the stream (`parsed = true` in its caps).
fn parsed(caps: &gst::Caps) -> bool {
    caps.structure(0)
        .and_then(|s| s.get::<bool>("parsed").ok())
        .unwrap_or(false)
}

/// Notes the hardware decoders decodebin tries; a software decoder tried after one
/// for the same stream means the hardware one could not start.
fn note_tries(decode: &gst::Element, hooks: Arc<Hooks>) {
    decode.connect("autoplug-select", false, move |args| {
        let pad = args.get(1).and_then(|v| v.get::<gst::Pad>().ok());
        if let Some(pad) = pad
            && let Some(f) = args
                .get(3)
                .and_then(|v| v.get::<gst::ElementFactory>().ok())
            && is_decoder(&f)
        {
            let mut tries = hooks.tries.lock().unwrap_or_else(|e| e.into_inner());
            if kind_of(&f) != DecoderKind::Software {
                tries.last = Some((f.name().to_string(), pad.downgrade()));
            } else if let Some((hw, for_pad)) = &tries.last
                && for_pad.upgrade().as_ref() == Some(&pad)
            {
                let why = format!("{hw} could not start");
                drop(tries);
                hooks.fall_back(&why);
            }
        }
        select_result("try")
    });
}

/// The `GstAutoplugSelectResult` of `nick` (`try`, `expose`, `skip`).
fn select_result(nick: &str) -> Option<glib::Value> {
    glib::Type::from_name("GstAutoplugSelectResult")
        .and_then(glib::EnumClass::with_type)
        .and_then(|r| r.to_value_by_nick(nick))
}

/// Notes an error the pipeline posts after a hardware decoder was tried (before the
/// camera fell back), unless a source element posted it (the network, the file): the
/// supervisor then falls back if no frame came ([`fall_back_after_failure`]).
fn note_failures(pipeline: &gst::Pipeline, hooks: Arc<Hooks>) {
    let Some(bus) = pipeline.bus() else {
        return;
    };
    bus.set_sync_handler(move |_, msg| {
        if let gst::MessageView::Error(err) = msg.view()
            && !hooks.decoder().software_only()
            && !posted_by_source(msg)
        {
            let tried = hooks
                .tries
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .last
                .as_ref()
                .map(|(name, _)| name.clone());
            if let Some(hw) = tried {
                let mut line = err.error().to_string();
                if let Some(debug) = err.debug()
                    && let Some(last) = debug.lines().last()
                {
                    let detail = last.rsplit("):").next().unwrap_or(last).trim();
                    if !detail.is_empty() && !detail.starts_with("/Gst") {
                        line = format!("{line} ({detail})");
                    }
                }
                hooks
                    .decoder()
                    .failed(format!("{hw} failed before the first frame: {line}"));
            }
        }
        gst::BusSyncReply::Pass
    });
}

/// Whether a source element (rtspsrc, souphttpsrc, filesrc, ...) posted `msg`.
fn posted_by_source(msg: &gst::Message) -> bool {
    msg.src()
        .and_then(|s| s.downcast_ref::<gst::Element>())
        .and_then(|e| e.factory())
        .is_some_and(|f| f.klass().split('/').any(|k| k == "Source"))
}

/// A hardware decoder, whatever the choice, negotiates its output against what
/// `convert` takes (system memory) rather than device memory ocellus cannot read:
/// its caps queries are answered by `convert` before decodebin exposes its pad (and
/// after, the same). A decoder with device-memory output only is left alone when a
/// bridge to system memory is installed ([`bridge_device_memory`]).
fn negotiate_system_memory(pipeline: &gst::Pipeline, convert: &gst::Element) {
    let Some(sink) = convert.static_pad("sink") else {
        return;
    };
    let sink = sink.downgrade();
    pipeline.connect_deep_element_added(move |_, _, element| {
        let Some(factory) = element.factory() else {
            return;
        };
        if !is_decoder(&factory) || kind_of(&factory) == DecoderKind::Software {
            return;
        }
        // Inside a decoder bin (vaapidecodebin): the bin's output is what counts.
        let in_decoder_bin = element
            .parent()
            .and_then(|p| p.downcast::<gst::Element>().ok())
            .and_then(|p| p.factory())
            .is_some_and(|f| is_decoder(&f));
        if in_decoder_bin {
            return;
        }
        if device_memory_only(&factory) && bridge_factory().is_some() {
            return;
        }
        let Some(src) = element.static_pad("src") else {
            return;
        };
        let sink = sink.clone();
        src.add_probe(gst::PadProbeType::QUERY_DOWNSTREAM, move |_, info| {
            let Some(query) = info.query_mut() else {
                return gst::PadProbeReturn::Ok;
            };
            if !matches!(
                query.view(),
                gst::QueryView::Caps(_) | gst::QueryView::AcceptCaps(_)
            ) {
                return gst::PadProbeReturn::Ok;
            }
            match sink.upgrade() {
                Some(sink) if sink.query(query) => gst::PadProbeReturn::Handled,
                _ => gst::PadProbeReturn::Ok,
            }
        });
    });
}

/// The caps feature of NVIDIA's (Jetson, DeepStream) device memory.
const NVMM: &str = "memory:NVMM";

/// Whether every output of `factory` is in device memory (NVMM).
fn device_memory_only(factory: &gst::ElementFactory) -> bool {
    let mut srcs = factory
        .static_pad_templates()
        .into_iter()
        .filter(|t| t.direction() == gst::PadDirection::Src)
        .peekable();
    srcs.peek().is_some()
        && srcs.all(|t| {
            let caps = t.caps();
            !caps.is_empty() && caps.iter_with_features().all(|(_, f)| f.contains(NVMM))
        })
}

/// The installed converter from NVMM to system memory: Jetson's `nvvidconv`, else
/// DeepStream's `nvvideoconvert`.
fn bridge_factory() -> Option<gst::ElementFactory> {
    ["nvvidconv", "nvvideoconvert"]
        .into_iter()
        .find_map(gst::ElementFactory::find)
}

/// Notes (and logs, once per camera) the decoder behind each decoded pad, and bridges
/// a pad in NVMM device memory to `convert` through [`bridge_factory`].
fn note_decoder(
    decode: &gst::Element,
    convert: &gst::Element,
    pipeline: &gst::Pipeline,
    hooks: Arc<Hooks>,
) {
    let convert = convert.downgrade();
    let pipeline = pipeline.downgrade();
    decode.connect_pad_added(move |_, pad| {
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let video = caps
            .structure(0)
            .is_some_and(|s| s.name().starts_with("video/") || s.name().starts_with("image/"));
        if !video {
            return;
        }
        if let Some(element) = element_behind(pad)
            && let Some(factory) = element.factory()
            && is_decoder(&factory)
        {
            used(&hooks, &factory);
        }
        let nvmm = caps.features(0).is_some_and(|f| f.contains(NVMM));
        if let (true, Some(convert), Some(pipeline)) = (nvmm, convert.upgrade(), pipeline.upgrade())
        {
            bridge_device_memory(&pipeline, pad, &convert, &hooks);
        }
    });
}

/// Records the decoder a pipeline plugged; logs it when it is new for the camera. A
/// decoder the choice does not take (GStreamer found no other way) is a fallback.
fn used(hooks: &Hooks, factory: &gst::ElementFactory) {
    let name = factory.name();
    let kind = kind_of(factory);
    if hooks
        .decoder()
        .used(&name, kind.as_str(), hooks.wanted.as_str())
    {
        tracing::info!(
            camera = %hooks.camera,
            "camera {}: decoding with {name} ({})",
            hooks.camera,
            kind.as_str()
        );
    }
    let choice = hooks.choice();
    if choice.is_hardware() && !choice.accepts(&name, kind) {
        hooks.fall_back(&format!("GStreamer plugged {name} ({})", kind.as_str()));
    }
}

/// The element that produces what `pad` (a ghost pad of uridecodebin) carries: the
/// first decoder on the way in through the ghost pads (a decoder bin such as
/// `vaapidecodebin` rather than what is inside it), else the innermost element.
fn element_behind(pad: &gst::Pad) -> Option<gst::Element> {
    let mut pad = pad.clone();
    for _ in 0..8 {
        let parent = pad.parent_element();
        if let Some(parent) = &parent
            && parent.factory().is_some_and(|f| is_decoder(&f))
        {
            return Some(parent.clone());
        }
        match pad.downcast_ref::<gst::GhostPad>() {
            Some(ghost) => pad = ghost.target()?,
            None => return parent,
        }
    }
    None
}

/// Links `pad` (NVMM device memory) to `convert` through a new converter to system
/// memory; without one the pad is left for the ordinary link (which fails, and the
/// camera falls back to software).
fn bridge_device_memory(
    pipeline: &gst::Pipeline,
    pad: &gst::Pad,
    convert: &gst::Element,
    hooks: &Hooks,
) {
    let Some(factory) = bridge_factory() else {
        return;
    };
    let Some(sink) = convert.static_pad("sink").filter(|s| !s.is_linked()) else {
        return;
    };
    let Ok(bridge) = factory.create().build() else {
        return;
    };
    if pipeline.add(&bridge).is_err() {
        return;
    }
    let _ = bridge.sync_state_with_parent();
    let linked = bridge
        .static_pad("sink")
        .is_some_and(|b| pad.link(&b).is_ok())
        && bridge
            .static_pad("src")
            .is_some_and(|b| b.link(&sink).is_ok());
    if linked {
        (hooks.linked)();
        tracing::debug!(
            camera = %hooks.camera,
            "camera {}: NVMM output converted to system memory by {}",
            hooks.camera,
            bridge.name()
        );
    } else {
        // Left for the ordinary link, which fails (and the camera falls back).
        if let Some(b) = bridge.static_pad("sink") {
            let _ = pad.unlink(&b);
        }
        let _ = bridge.set_state(gst::State::Null);
        let _ = pipeline.remove(&bridge);
        tracing::debug!(
            camera = %hooks.camera,
            "camera {}: cannot bridge NVMM output with {}",
            hooks.camera,
            factory.name()
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn place_of(name: &&str) -> Place {
        match *name {
            "h264parse" | "capsfilter" => Place::Other,
            n if n.starts_with("nv") => Place::Wanted,
            n if n.starts_with("av") || n.starts_with("open") => Place::Software,
            _ => Place::Refused,
        }
    }

    #[test]
    fn wanted_decoders_go_first_and_others_keep_their_places() {
        let list = vec![
            "h264parse",
            "avdec_h264",
            "vah264dec",
            "nvh264dec",
            "openh264dec",
            "capsfilter",
        ];
        assert_eq!(
            arrange(list.clone(), place_of, true).unwrap(),
            [
                "h264parse",
                "nvh264dec",
                "avdec_h264",
                "openh264dec",
                "capsfilter"
            ]
        );
        // Without the software fallback (a parser must go first).
        assert_eq!(
            arrange(list, place_of, false).unwrap(),
            ["h264parse", "nvh264dec", "capsfilter"]
        );
        // A decoder ranked above the parser: the decoders take its slot.
        assert_eq!(
            arrange(vec!["avdec_h264", "h264parse", "nvh264dec"], place_of, true).unwrap(),
            ["nvh264dec", "avdec_h264", "h264parse"]
        );
        // No decoder in the list: left alone.
        assert_eq!(arrange(vec!["h264parse"], place_of, true), None);
        // Refused decoders only: none is left.
        assert_eq!(
            arrange(vec!["vah264dec", "h264parse"], place_of, true).unwrap(),
            ["h264parse"]
        );
    }
}
