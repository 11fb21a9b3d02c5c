//! Scenario "batch": does a dynamic-batch YOLOX-nano raise frames per CPU-second when
//! several cameras share one CPU?
//!
//! The shared export has a fixed batch of 1. With `[models.coco] max_batch` over 1
//! the daemon frees it in memory at load (`ocellus::engine::free_batch`: the graph's
//! batch dimension made symbolic, its reshapes' leading 1 made 0) and batches up to
//! that many cameras' frames a run.
//! Measured in one run, side by side:
//!
//! * the bare ONNX Runtime loop (`raw_ort`, same session options) over
//!   `RAW_FRAMES` frames: the file as it is, then the freed graph at 1, 2, 4 and 8
//!   frames a run; marginal frames per CPU-second from a long and a short run each
//!   (start-up out);
//! * the daemon with `CAMERAS` file cameras on the moving 720p30 clip of scenario
//!   "every" (gates open, every frame evaluated, as fast as they decode), once with
//!   `[models.coco] max_batch = 1` (the default: the file as it is, one frame a run)
//!   and once with `max_batch = 4` (freed): frames evaluated per CPU-second of the
//!   whole process, the mean batch the engine ran, latency, peak RSS.

use serde_json::{Map, Value, json};

use crate::common::{self, Mosquitto};
use crate::daemon::{self, Until};
use crate::measure::{guarded, marginal, num, percentile};
use crate::{Options, every, raw_ort};

const RAW_FRAMES: usize = 240;
const RAW_SHORT_FRAMES: usize = 48;
const CAMERAS: usize = 4;

pub fn run(o: &Options) -> Value {
    let mut r = Map::new();
    let mut errors = Map::new();
    let model = raw_ort::model_file();
    let threads = daemon::threads();

    // ------------------------------------------------------------ raw loop
    let mut fixed_fpcs = None;
    for (name, batch) in [
        ("fixed", None),
        ("freed_batch_1", Some(1)),
        ("freed_batch_2", Some(2)),
        ("freed_batch_4", Some(4)),
        ("freed_batch_8", Some(8)),
    ] {
        match guarded(&format!("batch: raw {name}"), || {
            let (long, _) = raw_ort::run_batched(RAW_FRAMES, batch, threads, &model, o.ticks)?;
            let (short, _) =
                raw_ort::run_batched(RAW_SHORT_FRAMES, batch, threads, &model, o.ticks)?;
            Ok(marginal(
                RAW_FRAMES as f64,
                RAW_SHORT_FRAMES as f64,
                long.cpu_s,
                short.cpu_s,
            ))
        }) {
            Ok(fpcs) => {
                r.insert(format!("raw_{name}_marginal_frames_per_cpu_s"), num(fpcs));
                match fixed_fpcs {
                    None => fixed_fpcs = Some(fpcs),
                    Some(f) => {
                        r.insert(format!("raw_{name}_vs_fixed_ratio"), num(fpcs / f));
                    }
                }
            }
            Err(e) => {
                errors.insert(format!("raw_{name}"), json!(e));
            }
        }
    }

    // ------------------------------------------------------------ daemon
    let spec = every::spec(o.seconds);
    let clip = spec.make(&o.dir);
    let mut fixed_daemon = None;
    match guarded("batch: mosquitto", || Ok(Mosquitto::start())) {
        Ok(broker) => {
            for (name, extra) in [("fixed", "max_batch = 1"), ("freed", "max_batch = 4")] {
                let run = guarded(&format!("batch: daemon {name}"), || {
                    let cameras: Vec<String> = (0..CAMERAS)
                        .map(|i| {
                            daemon::camera(
                                &format!("cam{i}"),
                                &clip.to_string_lossy(),
                                "sample_fps = 1000.0\nchange_threshold = 0.0\n",
                            )
                        })
                        .collect();
                    let n = threads;
                    let config = format!(
                        "[engine]\nthreads = {n}\n\n{}{}",
                        common::yolox_model(
                            &common::yolox_dir(),
                            &format!("threads = {n}\n{extra}")
                        ),
                        cameras.concat()
                    );
                    let run = daemon::run(
                        &o.bin,
                        &o.dir.join(format!("batch-{name}.toml")),
                        &config,
                        &broker,
                        Until::Exit(crate::FILE_RUN_LIMIT),
                        o.ticks,
                    );
                    crate::require_answers(&run)?;
                    Ok(run)
                });
                match run {
                    Ok(run) => {
                        let frames = run.msgs.len() as f64;
                        let fpcs = frames / run.cpu_s;
                        let lat = run.latencies_ms(|_| true);
                        r.insert(format!("daemon_{name}_frames_count"), json!(run.msgs.len()));
                        r.insert(format!("daemon_{name}_cpu_s"), num(run.cpu_s));
                        r.insert(format!("daemon_{name}_wall_s"), num(run.wall_s));
                        r.insert(format!("daemon_{name}_frames_per_cpu_s"), num(fpcs));
                        r.insert(
                            format!("daemon_{name}_mean_batch"),
                            num(mean_batch(&run.output).unwrap_or(f64::NAN)),
                        );
                        r.insert(
                            format!("daemon_{name}_latency_ms_p50"),
                            num(percentile(&lat, 50.0)),
                        );
                        r.insert(
                            format!("daemon_{name}_latency_ms_p99"),
                            num(percentile(&lat, 99.0)),
                        );
                        r.insert(format!("daemon_{name}_peak_rss_mb"), json!(run.peak_rss_mb));
                        match fixed_daemon {
                            None => fixed_daemon = Some(fpcs),
                            Some(f) => {
                                r.insert(format!("daemon_{name}_vs_fixed_ratio"), num(fpcs / f));
                            }
                        }
                    }
                    Err(e) => {
                        errors.insert(format!("daemon_{name}"), json!(e));
                    }
                }
            }
        }
        Err(e) => {
            errors.insert("mosquitto".into(), json!(e));
        }
    }

    json!({
        "clip": spec.describe(&clip),
        "setup": {
            "raw": format!("raw_ort loop ({threads} intra-op threads, CPU) over {RAW_FRAMES} and {RAW_SHORT_FRAMES} frames: \
                    the file as it is, then the graph freed by ocellus::engine::free_batch at B frames a run; \
                    marginal = ({RAW_FRAMES} - {RAW_SHORT_FRAMES}) / (CPU long - CPU short)"),
            "daemon": format!("{CAMERAS} file cameras on the clip (realtime = false, sample_fps = 1000, change_threshold = 0), \
                    person query on YOLOX-nano ({threads} threads): max_batch = 1 (the default, the file as it is) vs \
                    max_batch = 4 (freed); frames = detections messages, CPU = the whole process; \
                    mean batch from the engine's exit line"),
        },
        "results": r,
        "errors": errors,
    })
}

/// The mean batch of the `coco` engine's last metrics line (`... (mean batch 2.31) ...`).
fn mean_batch(output: &str) -> Option<f64> {
    output.lines().rev().find_map(|l| {
        let rest = &l[l.find("mean batch ")? + "mean batch ".len()..];
        rest.split(')').next()?.trim().parse().ok()
    })
}
