//! End-to-end pipeline benchmark: `cargo bench --bench pipeline`.
//!
//! Prints one JSON object on stdout and writes it to `target/ocellus-bench/pipeline.json`.
//! Progress and the daemon's log go to stderr. Every number carries its unit in its key
//! (`_s`, `_ms`, `_mb`, `_hz`, `_fps`, `_count`, `_per_cpu_s`, `_ratio`).
//!
//! Five scenarios, each measured side by side with its baseline in the same run (the
//! doc comment of each module says what exactly it runs):
//!
//! * `static` (benches/pipeline/still.rs): a still 1080p30 scene; ocellus at
//!   `sample_fps = 2`, with and without `keyframes_only`, against decoding the clip;
//! * `every` (benches/pipeline/every.rs): a moving 720p30 clip with the gates open;
//!   ocellus frames per CPU-second against decoding plus a bare ONNX Runtime loop
//!   (benches/pipeline/raw_ort.rs) and against a plain Python loop
//!   (scripts/bench/python_loop.py, benches/pipeline/python.rs);
//! * `batch` (benches/pipeline/batch.rs): YOLOX-nano's fixed batch of 1 against the
//!   graph with its batch dimension freed, in the bare ONNX Runtime loop at 1, 2, 4
//!   and 8 frames a run and in the daemon with 4 every-frame cameras;
//! * `cameras` (benches/pipeline/cameras.rs): 16 RTSP cameras of 720p from an RTSP
//!   server inside this process for 60 s, full decoding and `keyframes_only`;
//! * `tiles` (benches/pipeline/tiles.rs): the cameras scenario's 16 cameras with
//!   `[http]` on, in one daemon run three phases of 30 s: no tile open, one web tile
//!   per camera polling `live.jpg` as a page does, none again; what watching costs
//!   the daemon (CPU, RSS, evaluation rate, latency, the tile encoder's time).
//!
//! Environment:
//!
//! * `OCELLUS_BENCH_ONLY=static,every,batch,cameras,tiles` — the scenarios to run (default
//!   all, in this order);
//! * `OCELLUS_BENCH_SECONDS` — length of the static and every clips (default 10, at
//!   least 2; the short clip that measures start-up costs is always 1 s);
//! * `OCELLUS_BENCH_CAMERA_SECONDS` (60), `OCELLUS_BENCH_WARMUP_SECONDS` (10),
//!   `OCELLUS_BENCH_CAMERAS` (16) — the cameras scenario (the warm-up and the number
//!   of cameras also the tiles scenario's);
//! * `OCELLUS_BENCH_TILE_SECONDS` (30) — each of the tiles scenario's three phases;
//! * `OCELLUS_BENCH_YOLOX` — extra lines for the daemon's `[models.coco]` (e.g.
//!   `max_batch = 1`) in the static, every, cameras and tiles scenarios;
//! * `OCELLUS_BENCH_PYTHON` — the interpreter that makes the Python venv (python3);
//! * `OCELLUS_BENCH_ROLE=raw-ort` — internal: run the raw ONNX Runtime loop only.
//!
//! CPU time of a child (gst-launch-1.0, ocellus, the raw loop, Python; all their
//! threads) is the growth of this process's `cutime + cstime` in `/proc/self/stat`
//! across reaping it (= `getrusage(RUSAGE_CHILDREN)`). Fixed start-up costs (loading
//! plugins, ONNX Runtime and the model) are separated by running the same thing on a
//! 1 s clip: the `*_marginal_*` numbers are (long − short) / (long_s − 1 s).
//!
//! Clips are made once with `gst-launch-1.0` (x264enc, matroskamux) under
//! `target/ocellus-bench/` and reused; their names carry their settings.
//!
//! The daemon binary: cargo builds the package's binaries for benchmarks and names the
//! result in `CARGO_BIN_EXE_ocellus` (target/release/ocellus under `cargo bench`); when
//! that file is absent at run time, `target/release/ocellus` under the crate, and when
//! that is missing too, `cargo build --release --bin ocellus` is run first. A debug
//! build is never used: its timings would mislead.
//!
//! A scenario (or a part of one) that fails does not stop the others: its error is in
//! the scenario's `errors` object (or in place of the scenario).

// A benchmark crate: its helpers are `pub` for its own modules, and a failed step
// ends the run with a panic that says which.
#![allow(
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

#[path = "pipeline/batch.rs"]
mod batch;
#[path = "pipeline/cameras.rs"]
mod cameras;
#[path = "pipeline/clips.rs"]
mod clips;
#[path = "../tests/it/common/mod.rs"]
mod common;
#[path = "pipeline/daemon.rs"]
mod daemon;
#[path = "pipeline/every.rs"]
mod every;
#[path = "pipeline/measure.rs"]
mod measure;
#[path = "pipeline/python.rs"]
mod python;
#[path = "pipeline/raw_ort.rs"]
mod raw_ort;
#[path = "pipeline/rtsp.rs"]
mod rtsp;
#[path = "pipeline/still.rs"]
mod still;
#[path = "pipeline/tiles.rs"]
mod tiles;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};

use measure::{guarded, marginal, num, tail};

/// The short clip that measures fixed start-up costs.
pub const SHORT_SECONDS: u32 = 1;
/// Longest an ocellus run over a file may take before the benchmark gives up.
pub const FILE_RUN_LIMIT: Duration = Duration::from_secs(600);

const SCENARIOS: [&str; 5] = ["static", "every", "batch", "cameras", "tiles"];

/// What every scenario needs.
pub struct Options {
    pub only: Vec<&'static str>,
    /// Length of the static and every clips.
    pub seconds: u32,
    pub camera_seconds: u32,
    pub warmup_seconds: u32,
    pub cameras: usize,
    /// Each phase of the tiles scenario.
    pub tile_seconds: u32,
    /// `target/ocellus-bench`
    pub dir: PathBuf,
    pub bin: PathBuf,
    pub ticks: f64,
}

fn env_u32(key: &str, default: u32) -> u32 {
    match std::env::var(key) {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v:?} is not a whole number")),
        _ => default,
    }
}

impl Options {
    fn from_env(root: &Path) -> Self {
        let only = match std::env::var("OCELLUS_BENCH_ONLY") {
            Ok(v) if !v.trim().is_empty() => {
                let wanted: Vec<&str> = v
                    .split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .collect();
                for w in &wanted {
                    assert!(
                        SCENARIOS.contains(w),
                        "OCELLUS_BENCH_ONLY: unknown scenario {w:?} (known: {})",
                        SCENARIOS.join(", ")
                    );
                }
                SCENARIOS
                    .into_iter()
                    .filter(|s| wanted.contains(s))
                    .collect()
            }
            _ => SCENARIOS.to_vec(),
        };
        let seconds = env_u32("OCELLUS_BENCH_SECONDS", 10);
        assert!(
            seconds > SHORT_SECONDS,
            "OCELLUS_BENCH_SECONDS must be more than the {SHORT_SECONDS} s short clip"
        );
        let camera_seconds = env_u32("OCELLUS_BENCH_CAMERA_SECONDS", 60);
        let warmup_seconds = env_u32("OCELLUS_BENCH_WARMUP_SECONDS", 10);
        assert!(
            camera_seconds > warmup_seconds,
            "OCELLUS_BENCH_CAMERA_SECONDS must be more than OCELLUS_BENCH_WARMUP_SECONDS"
        );
        let cameras = env_u32("OCELLUS_BENCH_CAMERAS", 16) as usize;
        assert!(cameras > 0, "OCELLUS_BENCH_CAMERAS must be at least 1");
        let tile_seconds = env_u32("OCELLUS_BENCH_TILE_SECONDS", 30);
        assert!(
            tile_seconds > 0,
            "OCELLUS_BENCH_TILE_SECONDS must be at least 1"
        );
        let dir = root.join("target").join("ocellus-bench");
        fs::create_dir_all(&dir).expect("create target/ocellus-bench");
        Options {
            only,
            seconds,
            camera_seconds,
            warmup_seconds,
            cameras,
            tile_seconds,
            bin: ocellus_binary(root),
            ticks: measure::clock_ticks(),
            dir,
        }
    }
}

fn main() {
    if std::env::var("OCELLUS_BENCH_ROLE").is_ok_and(|r| r == raw_ort::ROLE) {
        raw_ort::child_main();
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Options::from_env(root);
    let started = Instant::now();
    let mut report = Map::new();
    report.insert("machine".into(), machine());
    report.insert(
        "options".into(),
        json!({
            "scenarios": o.only,
            "clip_seconds": o.seconds,
            "short_clip_seconds": SHORT_SECONDS,
            "camera_run_seconds": o.camera_seconds,
            "camera_warmup_seconds": o.warmup_seconds,
            "cameras_count": o.cameras,
            "tile_phase_seconds": o.tile_seconds,
            "ocellus_binary": o.bin.display().to_string(),
            "ocellus_binary_modified": fs::metadata(&o.bin).and_then(|m| m.modified()).ok()
                .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
            "started": humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
            "cpu_time_source": "growth of cutime+cstime in /proc/self/stat across reaping the child (= getrusage(RUSAGE_CHILDREN))",
            "clock_ticks_per_s": o.ticks,
        }),
    );
    for name in &o.only {
        eprintln!("bench: ---------------- scenario {name}");
        let t0 = Instant::now();
        let busy0 = measure::machine_busy_s(o.ticks).zip(measure::own_cpu_s(o.ticks));
        let value = guarded(&format!("scenario {name}"), || {
            Ok(match *name {
                "static" => still::run(&o),
                "every" => every::run(&o),
                "batch" => batch::run(&o),
                "cameras" => cameras::run(&o),
                _ => tiles::run(&o),
            })
        });
        let mut value = value.unwrap_or_else(|e| json!({ "error": e }));
        if let Some(m) = value.as_object_mut() {
            let wall_s = t0.elapsed().as_secs_f64();
            m.insert("scenario_wall_s".into(), num(wall_s));
            // Cores other processes kept busy meanwhile: every number above is skewed
            // by them on a 2-core machine.
            let busy1 = measure::machine_busy_s(o.ticks).zip(measure::own_cpu_s(o.ticks));
            m.insert(
                "other_processes_busy_cores".into(),
                measure::opt_num(
                    busy0
                        .zip(busy1)
                        .map(|((m0, s0), (m1, s1))| ((m1 - m0) - (s1 - s0)) / wall_s),
                ),
            );
        }
        report.insert((*name).into(), value);
    }
    report.insert("total_wall_s".into(), num(started.elapsed().as_secs_f64()));
    report.insert("loadavg_1m_5m_15m_at_end".into(), json!(loadavg()));
    let text = serde_json::to_string_pretty(&Value::Object(report)).expect("JSON");
    fs::write(o.dir.join("pipeline.json"), format!("{text}\n")).expect("write pipeline.json");
    println!("{text}");
}

// ------------------------------------------------------------------ shared by scenarios

/// CPU-s per video-s of a long/short pair of runs.
#[derive(Clone, Copy, Debug)]
pub struct Cpu {
    pub per_video_s: f64,
    pub marginal_per_video_s: f64,
}

/// `NAME_cpu_s`, `NAME_short_cpu_s`, `NAME_cpu_s_per_video_s`,
/// `NAME_marginal_cpu_s_per_video_s` and `NAME_startup_cpu_s_estimate` from the CPU
/// seconds of the long (`seconds` s) and the short (1 s) clip.
pub fn insert_cpu(
    out: &mut Map<String, Value>,
    name: &str,
    cpu_s: f64,
    short_cpu_s: f64,
    seconds: u32,
) -> Cpu {
    let (long_s, short_s) = (f64::from(seconds), f64::from(SHORT_SECONDS));
    let cpu = Cpu {
        per_video_s: cpu_s / long_s,
        marginal_per_video_s: marginal(cpu_s, short_cpu_s, long_s, short_s),
    };
    out.insert(format!("{name}_cpu_s"), num(cpu_s));
    out.insert(format!("{name}_short_cpu_s"), num(short_cpu_s));
    out.insert(format!("{name}_cpu_s_per_video_s"), num(cpu.per_video_s));
    out.insert(
        format!("{name}_marginal_cpu_s_per_video_s"),
        num(cpu.marginal_per_video_s),
    );
    out.insert(
        format!("{name}_startup_cpu_s_estimate"),
        num(short_cpu_s - cpu.marginal_per_video_s * short_s),
    );
    cpu
}

/// `Err` with the daemon's output when a run published nothing or failed.
pub fn require_answers(run: &daemon::Run) -> Result<(), String> {
    if run.msgs.is_empty() || !run.exit_ok {
        return Err(format!(
            "ocellus: {} detections messages, exit {}; its output (tail):\n{}",
            run.msgs.len(),
            run.exit,
            tail(&run.output, 3000)
        ));
    }
    Ok(())
}

// ------------------------------------------------------------------ setup

/// The daemon binary (see the top of this file).
fn ocellus_binary(root: &Path) -> PathBuf {
    if let Some(p) = option_env!("CARGO_BIN_EXE_ocellus").map(PathBuf::from)
        && p.is_file()
    {
        return p;
    }
    let release = root.join("target").join("release").join("ocellus");
    if !release.is_file() {
        eprintln!(
            "bench: {} missing; running cargo build --release --bin ocellus",
            release.display()
        );
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let ok = Command::new(cargo)
            .args(["build", "--release", "--bin", "ocellus"])
            .current_dir(root)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            ok && release.is_file(),
            "cargo build --release --bin ocellus failed"
        );
    }
    release
}

fn loadavg() -> Option<String> {
    fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
}

fn machine() -> Value {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name").and_then(|r| r.split_once(':')))
        .map(|(_, v)| v.trim().to_string());
    let first_line = |prog: &str, arg: &str| {
        Command::new(prog).arg(arg).output().ok().and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .next()
                .map(str::to_string)
        })
    };
    let mem_total_mb = fs::read_to_string("/proc/meminfo").ok().and_then(|m| {
        m.lines()
            .find_map(|l| l.strip_prefix("MemTotal:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
            .map(|kb| (kb * 1024.0 / 1e6).round())
    });
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "mem_total_mb": mem_total_mb,
        "kernel": first_line("uname", "-r"),
        // Other work on the machine skews every number here.
        "loadavg_1m_5m_15m_at_start": loadavg(),
        "gstreamer": first_line("gst-launch-1.0", "--version").map(|l| l.replace("gst-launch-1.0 version ", "")),
        "onnxruntime_library": raw_ort_library(),
    })
}

/// The ONNX Runtime library the daemon and the raw loop load (first candidate found).
fn raw_ort_library() -> Option<String> {
    ocellus::engine::candidates(&Default::default())
        .into_iter()
        .find(|p| p.is_file())
        .map(|p| fs::canonicalize(&p).unwrap_or(p).display().to_string())
}
