//! Scenario "every": with the gates open, how close does the daemon come to what
//! decoding plus bare inference cost, and how does it compare with the plain Python
//! loop most people would write?
//!
//! A moving 720p30 H.264 clip (photo, ball, light snow). `ocellus` at
//! `sample_fps = 1000`, `change_threshold = 0` (every decoded frame is encoded), with
//! YOLOX-nano on the CPU, `OCELLUS_BENCH_THREADS` intra-op threads (default 2) for
//! ocellus, the raw loop and the Python loop alike. Frames = messages on `ocellus/bench/detections`.
//! The limit in the same run: decode-only CPU plus a raw ONNX Runtime loop of the
//! same session over as many tensors (see `raw_ort`). The alternative:
//! `scripts/bench/python_loop.py` over the same clip.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::clips::ClipSpec;
use crate::common::Mosquitto;
use crate::daemon::{self, Run, exit_counters};
use crate::measure::{DECODE_RUNS, EVERY_RUNS, decode_only, guarded, marginal, median_by, num};
use crate::{Options, SHORT_SECONDS, insert_cpu, python, raw_ort};

const CAMERA: &str = "bench";

pub fn spec(seconds: u32) -> ClipSpec {
    ClipSpec {
        width: 1280,
        height: 720,
        fps: 30,
        seconds,
        gop_frames: 60,
        bitrate_kbps: 2500,
        ball: true,
        snow: true,
    }
}

/// Long and short runs of one thing.
struct Pair<T> {
    long: T,
    short: T,
}

pub fn run(o: &Options) -> Value {
    let spec = spec(o.seconds);
    let short_spec = spec.with_seconds(SHORT_SECONDS);
    let clip = spec.make(&o.dir);
    let short = short_spec.make(&o.dir);
    let mut r = Map::new();
    let mut errors = Map::new();

    // ------------------------------------------------------------ decode only
    let decode = match guarded("every: decode only", || {
        Ok(Pair {
            long: decode_only(&clip, o.ticks)?,
            short: decode_only(&short, o.ticks)?,
        })
    }) {
        Ok(p) => {
            r.insert("decode_only_wall_s".into(), num(p.long.wall_s));
            insert_cpu(
                &mut r,
                "decode_only",
                p.long.cpu_s,
                p.short.cpu_s,
                o.seconds,
            );
            Some(p)
        }
        Err(e) => {
            errors.insert("decode_only".into(), json!(e));
            None
        }
    };

    // ------------------------------------------------------------ ocellus
    let ocellus = match guarded("every: ocellus", || {
        let broker = Mosquitto::start();
        let one = |path: &Path, tag: &str| {
            let extra = "sample_fps = 1000.0\nchange_threshold = 0.0\n";
            median_by(
                EVERY_RUNS,
                || daemon::run_clip(o, &broker, CAMERA, path, extra, &format!("every{tag}.toml")),
                |r| r.cpu_s,
            )
        };
        Ok(Pair {
            long: one(&clip, "")?,
            short: one(&short, "-short")?,
        })
    }) {
        Ok(p) => Some(p),
        Err(e) => {
            errors.insert("ocellus".into(), json!(e));
            None
        }
    };
    // The number of frames every contender processes: what the daemon evaluated, or
    // every frame of the clip when it failed.
    let frames = Pair {
        long: ocellus
            .as_ref()
            .map_or(spec.frames() as usize, |p| p.long.msgs.len()),
        short: ocellus
            .as_ref()
            .map_or(short_spec.frames() as usize, |p| p.short.msgs.len()),
    };
    let n = |v: usize| v as f64;
    let mut ocellus_fpcs = None;
    if let Some(p) = &ocellus {
        insert_ocellus(&mut r, p, o);
        let total = n(frames.long) / p.long.cpu_s;
        let marg = marginal(n(frames.long), n(frames.short), p.long.cpu_s, p.short.cpu_s);
        r.insert("ocellus_frames_per_cpu_s".into(), num(total));
        r.insert("ocellus_marginal_frames_per_cpu_s".into(), num(marg));
        ocellus_fpcs = Some((total, marg));
    }

    // ------------------------------------------------------------ raw ORT
    let model = raw_ort::model_file();
    let raw = match guarded("every: raw ONNX Runtime loop", || {
        let raw = |n: usize| {
            median_by(
                EVERY_RUNS,
                || raw_ort::run(n, daemon::threads(), &model, o.ticks),
                |(u, _)| u.cpu_s,
            )
        };
        let (long, report) = raw(frames.long)?;
        let (short, _) = raw(frames.short)?;
        let (one, _) = raw_ort::run(1, daemon::threads(), &model, o.ticks)?;
        Ok((Pair { long, short }, one, report))
    }) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.insert("raw_ort".into(), json!(e));
            None
        }
    };
    if let Some((p, one, report)) = &raw {
        let per_frame = marginal(p.long.cpu_s, p.short.cpu_s, n(frames.long), n(frames.short));
        // Start-up = the 1-frame run less its one inference.
        let startup = one.cpu_s - per_frame;
        let net = p.long.cpu_s - startup;
        r.insert("raw_ort_frames_count".into(), json!(frames.long));
        r.insert("raw_ort_short_frames_count".into(), json!(frames.short));
        r.insert("raw_ort_wall_s".into(), num(p.long.wall_s));
        r.insert("raw_ort_cpu_s".into(), num(p.long.cpu_s));
        r.insert("raw_ort_short_cpu_s".into(), num(p.short.cpu_s));
        r.insert("raw_ort_one_frame_cpu_s".into(), num(one.cpu_s));
        r.insert("raw_ort_startup_cpu_s_estimate".into(), num(startup));
        r.insert("raw_ort_cpu_s_without_startup".into(), num(net));
        r.insert(
            "raw_ort_marginal_cpu_ms_per_frame".into(),
            num(per_frame * 1e3),
        );
        r.insert(
            "raw_ort_loop_wall_ms_per_frame".into(),
            num(report["loop_wall_s"].as_f64().unwrap_or(f64::NAN) * 1e3 / n(frames.long)),
        );
        if let Some(d) = &decode {
            let limit = n(frames.long) / (d.long.cpu_s + net);
            let limit_marginal = (n(frames.long) - n(frames.short))
                / ((d.long.cpu_s - d.short.cpu_s) + (p.long.cpu_s - p.short.cpu_s));
            r.insert("limit_frames_per_cpu_s".into(), num(limit));
            r.insert(
                "limit_marginal_frames_per_cpu_s".into(),
                num(limit_marginal),
            );
            if let Some((total, marg)) = ocellus_fpcs {
                r.insert("ocellus_vs_limit_ratio".into(), num(total / limit));
                r.insert(
                    "ocellus_vs_limit_marginal_ratio".into(),
                    num(marg / limit_marginal),
                );
            }
        }
    }

    // ------------------------------------------------------------ Python
    let py = guarded("every: python loop", || {
        let python = python::ensure_env(&o.dir, o.ticks)?;
        let (long, report) = python::run(&python, &clip, &model, daemon::threads(), o.ticks)?;
        let (short, short_report) =
            python::run(&python, &short, &model, daemon::threads(), o.ticks)?;
        Ok((Pair { long, short }, report, short_report))
    });
    let mut python_versions = Value::Null;
    match py {
        Ok((p, report, short_report)) => {
            let count = |v: &Value| v["frames"].as_u64().unwrap_or(0);
            let (nl, ns) = (count(&report), count(&short_report));
            let (fl, fs) = (nl as f64, ns as f64);
            let total = fl / p.long.cpu_s;
            let marg = marginal(fl, fs, p.long.cpu_s, p.short.cpu_s);
            r.insert("python_frames_count".into(), json!(nl));
            r.insert("python_short_frames_count".into(), json!(ns));
            r.insert(
                "python_person_frames_count".into(),
                report["person_frames"].clone(),
            );
            r.insert("python_wall_s".into(), num(p.long.wall_s));
            r.insert("python_cpu_s".into(), num(p.long.cpu_s));
            r.insert("python_short_cpu_s".into(), num(p.short.cpu_s));
            r.insert("python_frames_per_cpu_s".into(), num(total));
            r.insert("python_marginal_frames_per_cpu_s".into(), num(marg));
            if let Some((o_total, o_marg)) = ocellus_fpcs {
                r.insert("ocellus_vs_python_ratio".into(), num(o_total / total));
                r.insert(
                    "ocellus_vs_python_marginal_ratio".into(),
                    num(o_marg / marg),
                );
            }
            python_versions = json!({
                "python": report["python"], "numpy": report["numpy"],
                "opencv": report["opencv"], "onnxruntime": report["onnxruntime"],
                "providers": report["providers"],
            });
        }
        Err(e) => {
            r.insert("python_frames_per_cpu_s".into(), Value::Null);
            r.insert("python_error".into(), json!(e.clone()));
            errors.insert("python".into(), json!(e));
        }
    }

    json!({
        "clip": spec.describe(&clip),
        "short_clip": short_spec.describe(&short),
        "setup": {
            "ocellus": "one camera on the clip file, person yes/no query, sample_fps = 1000, change_threshold = 0 \
                        (every decoded frame is encoded), YOLOX-nano on the CPU. Frames = messages \
                        on ocellus/bench/detections (one per evaluated frame).",
            "intra_op_threads": daemon::threads(),
            "decode_only": format!("gst-launch-1.0 filesrc ! decodebin ! fakesink sync=false (median of {DECODE_RUNS})"),
            "raw_ort": "the benchmark binary re-run with OCELLUS_BENCH_ROLE=raw-ort OCELLUS_BENCH_FRAMES=N: \
                        ocellus::engine::environment + ocellus::engine::open (Level3, intra_op_threads, CPU) of the \
                        same model, one preprocessed 1x3x416x416 tensor run N times; runs of N (= ocellus frames), \
                        N short (= ocellus frames of the 1 s clip) and 1 frame",
            "limit_frames_per_cpu_s": "N / (decode_only_cpu_s + raw_ort_cpu_s_without_startup), where the raw loop's \
                        start-up = its 1-frame run less one inference",
            "limit_marginal_frames_per_cpu_s": "(N - N short) / ((decode long - decode short) + (raw_ort N - raw_ort N short))",
            "ocellus_frames_per_cpu_s": "N / ocellus CPU-s (whole run); marginal: (N - N short) / (CPU long - CPU short)",
            "python": format!("scripts/bench/python_loop.py: cv2.VideoCapture decode, NumPy YOLOX letterbox, onnxruntime \
                        InferenceSession (intra_op_num_threads = intra_op_threads, ORT_ENABLE_ALL, CPU), person test on the raw output; \
                        venv under target/ocellus-bench/pyenv with {}", python::PINS.join(" ")),
            "python_versions": python_versions,
            "runs": format!("ocellus and the raw loop: the run with the median CPU of {EVERY_RUNS} (long and short each)"),
            "target": "ocellus_vs_limit_ratio >= 0.95 (reported, not asserted)",
        },
        "results": r,
        "errors": errors,
    })
}

fn insert_ocellus(r: &mut Map<String, Value>, p: &Pair<Run>, o: &Options) {
    let name = "ocellus";
    p.long.insert_common(r, name);
    r.insert(
        "ocellus_short_frames_evaluated_count".into(),
        json!(p.short.msgs.len()),
    );
    r.insert(
        "ocellus_wall_fps".into(),
        num(p.long.msgs.len() as f64 / p.long.wall_s),
    );
    insert_cpu(r, name, p.long.cpu_s, p.short.cpu_s, o.seconds);
    exit_counters(&p.long.output, &[CAMERA.to_string()]).insert(r, name, 1);
}
