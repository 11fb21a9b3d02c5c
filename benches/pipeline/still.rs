//! Scenario "static": what watching a scene where nothing happens costs, against
//! just decoding it.
//!
//! A 1080p30 H.264 clip of a still photo (2 s GOP, ~4 Mbit/s). `ocellus` with the
//! person yes/no query at `sample_fps = 2` and the gates at their defaults, then the
//! same with `keyframes_only = true`; against `gst-launch-1.0 filesrc ! decodebin !
//! fakesink` (every frame) and a key-frames-only decode (`identity
//! drop-buffer-flags=delta-unit` before `avdec_h264`).

use serde_json::{Map, Value, json};

use crate::clips::ClipSpec;
use crate::common::Mosquitto;
use crate::daemon::{self, exit_counters};
use crate::measure::{
    DECODE_RUNS, Usage, decode_only, element_has_property, gst_launch, guarded, median_run, num,
};
use crate::{Options, SHORT_SECONDS, insert_cpu};

const CAMERA: &str = "bench";

pub fn spec(seconds: u32) -> ClipSpec {
    ClipSpec {
        width: 1920,
        height: 1080,
        fps: 30,
        seconds,
        gop_frames: 60,
        bitrate_kbps: 4000,
        ball: false,
        snow: false,
    }
}

/// `matroskademux ! h264parse ! identity drop-buffer-flags=delta-unit ! avdec_h264`.
fn decode_keyframes(clip: &std::path::Path, o: &Options) -> Result<Usage, String> {
    let args: Vec<String> = [
        "filesrc".to_string(),
        format!("location={}", clip.display()),
    ]
    .into_iter()
    .chain(
        "! matroskademux ! h264parse ! identity drop-buffer-flags=delta-unit ! avdec_h264 ! fakesink sync=false"
            .split_whitespace()
            .map(String::from),
    )
    .collect();
    let u = median_run(|| gst_launch(&args, o.ticks))?;
    eprintln!(
        "bench: decode key frames {}: {:.2} s wall, {:.2} s CPU (median of {DECODE_RUNS})",
        clip.display(),
        u.wall_s,
        u.cpu_s
    );
    Ok(u)
}

pub fn run(o: &Options) -> Value {
    let spec = spec(o.seconds);
    let short_spec = spec.with_seconds(SHORT_SECONDS);
    let clip = spec.make(&o.dir);
    let short = short_spec.make(&o.dir);
    let mut r = Map::new();
    let mut errors = Map::new();

    // ------------------------------------------------------------ decode only
    let decode = guarded("static: decode only", || {
        Ok((decode_only(&clip, o.ticks)?, decode_only(&short, o.ticks)?))
    });
    let decode = match decode {
        Ok((l, s)) => {
            r.insert("decode_only_wall_s".into(), num(l.wall_s));
            Some(insert_cpu(
                &mut r,
                "decode_only",
                l.cpu_s,
                s.cpu_s,
                o.seconds,
            ))
        }
        Err(e) => {
            errors.insert("decode_only".into(), json!(e));
            None
        }
    };
    let keyframes = if element_has_property("identity", "drop-buffer-flags") {
        match guarded("static: key-frame decode", || {
            Ok((decode_keyframes(&clip, o)?, decode_keyframes(&short, o)?))
        }) {
            Ok((l, s)) => {
                r.insert("decode_keyframes_only_wall_s".into(), num(l.wall_s));
                Some(insert_cpu(
                    &mut r,
                    "decode_keyframes_only",
                    l.cpu_s,
                    s.cpu_s,
                    o.seconds,
                ))
            }
            Err(e) => {
                errors.insert("decode_keyframes_only".into(), json!(e));
                None
            }
        }
    } else {
        errors.insert(
            "decode_keyframes_only".into(),
            json!("skipped: gst-inspect-1.0 identity lists no drop-buffer-flags property"),
        );
        None
    };

    // ------------------------------------------------------------ ocellus
    let broker = match guarded("static: mosquitto", || Ok(Mosquitto::start())) {
        Ok(b) => b,
        Err(e) => {
            errors.insert("mosquitto".into(), json!(e));
            return report(&spec, &clip, &short_spec, &short, r, errors);
        }
    };
    for (name, extra) in [
        ("ocellus_2hz", "sample_fps = 2.0\n"),
        (
            "ocellus_2hz_keyframes_only",
            "sample_fps = 2.0\nkeyframes_only = true\n",
        ),
    ] {
        let runs = guarded(&format!("static: {name}"), || {
            let one = |path: &std::path::Path, tag: &str| {
                let file = format!("static-{name}{tag}.toml");
                daemon::run_clip(o, &broker, CAMERA, path, extra, &file)
            };
            Ok((one(&clip, "")?, one(&short, "-short")?))
        });
        let (long, brief) = match runs {
            Ok(v) => v,
            Err(e) => {
                errors.insert(name.into(), json!(e));
                continue;
            }
        };
        long.insert_common(&mut r, name);
        r.insert(
            format!("{name}_short_frames_evaluated_count"),
            json!(brief.msgs.len()),
        );
        let cpu = insert_cpu(&mut r, name, long.cpu_s, brief.cpu_s, o.seconds);
        exit_counters(&long.output, &[CAMERA.to_string()]).insert(&mut r, name, 1);
        for (vs, base) in [("decode", decode), ("decode_keyframes_only", keyframes)] {
            if let Some(base) = base {
                r.insert(
                    format!("{name}_cpu_ratio_vs_{vs}"),
                    num(cpu.per_video_s / base.per_video_s),
                );
                r.insert(
                    format!("{name}_marginal_cpu_ratio_vs_{vs}"),
                    num(cpu.marginal_per_video_s / base.marginal_per_video_s),
                );
            }
        }
    }
    report(&spec, &clip, &short_spec, &short, r, errors)
}

fn report(
    spec: &ClipSpec,
    clip: &std::path::Path,
    short_spec: &ClipSpec,
    short: &std::path::Path,
    results: Map<String, Value>,
    errors: Map<String, Value>,
) -> Value {
    json!({
        "clip": spec.describe(clip),
        "short_clip": short_spec.describe(short),
        "setup": {
            "ocellus": "one camera on the clip file, person yes/no query, YOLOX-nano (CPU, 2 threads); \
                        ocellus_2hz: sample_fps = 2, change gate and staleness at their defaults; \
                        ocellus_2hz_keyframes_only: the same with keyframes_only = true. \
                        The file is decoded as fast as the daemon takes frames and the daemon exits at its end.",
            "decode_only": "gst-launch-1.0 filesrc ! decodebin ! fakesink sync=false",
            "decode_keyframes_only": "gst-launch-1.0 filesrc ! matroskademux ! h264parse ! identity drop-buffer-flags=delta-unit ! avdec_h264 ! fakesink sync=false",
            "decode_runs_median_of": DECODE_RUNS,
            "ratios": "NAME_cpu_ratio_vs_BASE = CPU-s per video-s of NAME / that of BASE (whole runs); \
                       NAME_marginal_cpu_ratio_vs_BASE = the same with start-up costs taken out \
                       ((long - short) / (long_s - short_s))",
            "target": "ocellus_2hz_cpu_ratio_vs_decode <= 1.2 (reported, not asserted)",
        },
        "results": results,
        "errors": errors,
    })
}
