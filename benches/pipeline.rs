//! End-to-end pipeline benchmark: `cargo bench --bench pipeline`.
//!
//! Prints one JSON object on stdout and writes it to `target/ocellus-bench/pipeline.json`.
//! Progress and the daemon's log go to stderr. Every number carries its unit in its key.
//!
//! What it measures, on a 1080p30 H.264 clip (astronaut photo, a moving ball and light
//! sensor-like noise so that frames differ and the stream has a camera-like ~4 Mbit/s),
//! made once with `gst-launch-1.0` under `target/ocellus-bench/` and reused:
//!
//! 1. decode only, with `gst-launch-1.0 filesrc ! decodebin [! videoconvert !
//!    video/x-raw,format=RGB] ! fakesink sync=false` (median of 3 runs each);
//! 2. `ocellus run` end to end with the real YOLOX-nano (CPU, 2 threads) and one
//!    person yes/no query, with every frame evaluated (`sample_fps = 1000`) and at the
//!    realistic `sample_fps = 2`, publishing to a private mosquitto; a subscriber here
//!    takes frame→MQTT latency = receive wall time − the payload's `time` (the wall
//!    time at which the frame left the decoder).
//!
//! CPU time of a child (gst-launch-1.0 or ocellus, all its threads) is the growth of
//! this process's `cutime + cstime` in `/proc/self/stat` across waiting for it: the
//! kernel adds a child's user and system time there when it is reaped, which is what
//! `getrusage(RUSAGE_CHILDREN)` reports. Fixed start-up costs (loading plugins, ONNX
//! Runtime and the model) are separated by running the same thing on a 1 s clip: the
//! `*_marginal_*` numbers are (long − short) / (10 s − 1 s).
//!
//! The daemon binary: cargo builds the package's binaries for benchmarks and names the
//! result in `CARGO_BIN_EXE_ocellus` (target/release/ocellus under `cargo bench`); when
//! that file is absent at run time, `target/release/ocellus` under the crate, and when
//! that is missing too, `cargo build --release --bin ocellus` is run first. A debug
//! build is never used: its timings would mislead.

#[path = "../tests/common/mod.rs"]
mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};

use common::{Daemon, Mosquitto, MqttCollector, Msg};

const WIDTH: u32 = 1920;
const HEIGHT: u32 = 1080;
const FPS: u32 = 30;
const SECONDS: u32 = 10;
/// The short clip that measures fixed start-up costs.
const SHORT_SECONDS: u32 = 1;
const BITRATE_KBPS: u32 = 4000;
const KEY_INT_MAX: u32 = 60;
const DECODE_RUNS: usize = 3;
const CAMERA: &str = "bench";
/// Longest an ocellus run may take before the benchmark gives up.
const RUN_LIMIT: Duration = Duration::from_secs(600);
/// Longest one `gst-launch-1.0` run making a clip may take (1080p on a small machine
/// takes a while; this only catches a run that hangs, which is then tried again).
const MAKE_CLIP_LIMIT: Duration = Duration::from_secs(600);

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("target").join("ocellus-bench");
    fs::create_dir_all(&dir).expect("create target/ocellus-bench");
    let bin = ocellus_binary(root);
    let ticks = clock_ticks();
    let machine = machine();

    let clip = dir.join(format!(
        "astronaut-ball-noise-{WIDTH}x{HEIGHT}p{FPS}-{SECONDS}s.mkv"
    ));
    let short = dir.join(format!(
        "astronaut-ball-noise-{WIDTH}x{HEIGHT}p{FPS}-{SHORT_SECONDS}s.mkv"
    ));
    make_clip_if_missing(&clip, SECONDS);
    make_clip_if_missing(&short, SHORT_SECONDS);
    let info = common::probe_clip(&clip);
    assert_eq!(
        (info.width, info.height, info.frames),
        (WIDTH, HEIGHT, u64::from(FPS * SECONDS)),
        "unexpected clip {}",
        clip.display()
    );
    let video_s = f64::from(SECONDS);
    let clip_bytes = fs::metadata(&clip).expect("clip size").len();

    // ---------------------------------------------------------- decode only
    let mut out = Map::new();
    for (name, rgb) in [("decode_only", true), ("decode_only_no_convert", false)] {
        let long = median_run(|| decode_only(&clip, rgb, ticks));
        let brief = median_run(|| decode_only(&short, rgb, ticks));
        let frames = f64::from(FPS * SECONDS);
        out.insert(format!("{name}_wall_s"), num(long.wall_s));
        out.insert(format!("{name}_fps"), num(frames / long.wall_s));
        insert_cpu(&mut out, name, long.cpu_s, brief.cpu_s);
    }

    // ---------------------------------------------------------- end to end
    let broker = Mosquitto::start();
    let every = e2e(&bin, &dir, &broker, &clip, 1000.0, ticks);
    let every_short = e2e(&bin, &dir, &broker, &short, 1000.0, ticks);
    let slow = e2e(&bin, &dir, &broker, &clip, 2.0, ticks);
    let slow_short = e2e(&bin, &dir, &broker, &short, 2.0, ticks);
    drop(broker);

    for (name, run, short_run) in [
        ("e2e_every_frame", &every, &every_short),
        ("e2e_2hz", &slow, &slow_short),
    ] {
        out.insert(format!("{name}_sample_fps"), num(run.sample_fps));
        out.insert(format!("{name}_exit_ok"), json!(run.exit_ok));
        out.insert(format!("{name}_frames_evaluated"), json!(run.messages));
        out.insert(format!("{name}_person_frames"), json!(run.person_frames));
        out.insert(format!("{name}_wall_s"), num(run.wall_s));
        out.insert(format!("{name}_first_to_last_message_s"), num(run.span_s));
        out.insert(format!("{name}_fps"), num(run.fps));
        out.insert(format!("{name}_latency_ms_p50"), num(run.latency_ms_p50));
        out.insert(format!("{name}_latency_ms_p99"), num(run.latency_ms_p99));
        out.insert(format!("{name}_latency_ms_max"), num(run.latency_ms_max));
        insert_cpu(&mut out, name, run.cpu_s, short_run.cpu_s);
        out.insert(
            format!("{name}_startup_cpu_s_estimate"),
            num(short_run.cpu_s - marginal(run.cpu_s, short_run.cpu_s) * f64::from(SHORT_SECONDS)),
        );
    }
    let decode = out["decode_only_cpu_s_per_video_s"]
        .as_f64()
        .unwrap_or(f64::NAN);
    let decode_marginal = out["decode_only_marginal_cpu_s_per_video_s"]
        .as_f64()
        .unwrap_or(f64::NAN);
    out.insert(
        "e2e_2hz_cpu_ratio_vs_decode".into(),
        num(slow.cpu_s / video_s / decode),
    );
    out.insert(
        "e2e_2hz_marginal_cpu_ratio_vs_decode".into(),
        num(marginal(slow.cpu_s, slow_short.cpu_s) / decode_marginal),
    );
    out.insert(
        "e2e_every_frame_cpu_ratio_vs_decode".into(),
        num(every.cpu_s / video_s / decode),
    );

    let mut report = Map::new();
    report.insert("machine".into(), machine);
    report.insert(
        "clip".into(),
        json!({
            "path": clip.display().to_string(),
            "content": "astronaut.png letterboxed, videotestsrc ball, snow at alpha 0.08",
            "width_px": WIDTH, "height_px": HEIGHT, "fps": FPS,
            "duration_s": SECONDS, "frames": info.frames,
            "bytes": clip_bytes,
            "bitrate_kbps": (clip_bytes as f64 * 8.0 / 1000.0 / video_s).round(),
            "encoder": format!("x264enc tune=zerolatency speed-preset=veryfast key-int-max={KEY_INT_MAX} bitrate={BITRATE_KBPS}, matroska"),
            "short_clip_duration_s": SHORT_SECONDS,
        }),
    );
    report.insert(
        "setup".into(),
        json!({
            "ocellus_binary": bin.display().to_string(),
            "model": "yolox_nano_coco (416x416), providers [cpu], threads 2",
            "query": "person yes_no on the whole frame",
            "decode_only_runs_median_of": DECODE_RUNS,
            "cpu_time_source": "growth of cutime+cstime in /proc/self/stat across reaping the child (= getrusage(RUSAGE_CHILDREN))",
            "clock_ticks_per_s": ticks,
            "latency": "receive wall time at the subscriber - payload time (RFC 3339, ms resolution, stamped when the frame left the decoder); files are decoded as fast as the evaluator takes frames (queue of 2, back-pressure), so every-frame latency includes the wait in that queue",
        }),
    );
    report.insert("results".into(), Value::Object(out));
    let text = serde_json::to_string_pretty(&Value::Object(report)).expect("JSON");
    fs::write(dir.join("pipeline.json"), format!("{text}\n")).expect("write pipeline.json");
    println!("{text}");
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

/// Kernel clock ticks a second (the unit of /proc/*/stat times).
fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

/// User + system seconds of this process's reaped children (`cutime + cstime`).
fn children_cpu_s(ticks: f64) -> f64 {
    let stat = fs::read_to_string("/proc/self/stat").expect("read /proc/self/stat");
    // Fields after the command name in parentheses start at field 3 (state);
    // cutime and cstime are fields 16 and 17.
    let rest = &stat[stat.rfind(')').expect("stat format") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    let t = |i: usize| f[i - 3].parse::<f64>().expect("stat field");
    (t(16) + t(17)) / ticks
}

/// Makes `[photo + moving ball + light noise]` as 1080p H.264 unless it exists.
fn make_clip_if_missing(out: &Path, seconds: u32) {
    if out.is_file() {
        eprintln!("bench: reusing {}", out.display());
        return;
    }
    eprintln!("bench: making {}", out.display());
    let frames = FPS * seconds;
    let photo = common::media("astronaut.png");
    let caps =
        |extra: &str| format!("video/x-raw,{extra}width={WIDTH},height={HEIGHT},framerate={FPS}/1");
    let pipeline = |tmp: &Path| {
        format!(
            "compositor name=mix background=black sink_2::alpha=0.08 ! videoconvert ! video/x-raw,format=I420 \
         ! x264enc tune=zerolatency speed-preset=veryfast key-int-max={KEY_INT_MAX} bitrate={BITRATE_KBPS} \
         ! h264parse ! matroskamux ! filesink location={tmp} \
         filesrc location={photo} ! pngdec ! imagefreeze num-buffers={frames} ! videoconvert \
         ! videoscale add-borders=true ! {still} ! mix.sink_0 \
         videotestsrc pattern=ball num-buffers={frames} background-color=0x00000000 ! {overlay} ! mix.sink_1 \
         videotestsrc pattern=snow num-buffers={frames} ! {overlay} ! mix.sink_2",
            tmp = tmp.display(),
            photo = photo.display(),
            still = caps("pixel-aspect-ratio=1/1,"),
            overlay = caps("format=BGRA,"),
        )
    };
    common::run_gst_launch(out, MAKE_CLIP_LIMIT, |tmp| {
        pipeline(tmp).split_whitespace().map(String::from).collect()
    });
}

// ------------------------------------------------------------------ decode only

struct Usage {
    wall_s: f64,
    cpu_s: f64,
}

fn median_run(mut run: impl FnMut() -> Usage) -> Usage {
    let mut runs: Vec<Usage> = (0..DECODE_RUNS).map(|_| run()).collect();
    runs.sort_by(|a, b| a.wall_s.total_cmp(&b.wall_s));
    runs.swap_remove(DECODE_RUNS / 2)
}

fn decode_only(clip: &Path, rgb: bool, ticks: f64) -> Usage {
    let mut args = vec![
        "-q".to_string(),
        "filesrc".into(),
        format!("location={}", clip.display()),
        "!".into(),
        "decodebin".into(),
        "!".into(),
    ];
    if rgb {
        args.extend(["videoconvert", "!", "video/x-raw,format=RGB", "!"].map(String::from));
    }
    args.extend(["fakesink", "sync=false"].map(String::from));
    let cpu0 = children_cpu_s(ticks);
    let t0 = Instant::now();
    let status = Command::new("gst-launch-1.0")
        .args(&args)
        .stdout(Stdio::null())
        .status()
        .expect("run gst-launch-1.0");
    let wall_s = t0.elapsed().as_secs_f64();
    let cpu_s = children_cpu_s(ticks) - cpu0;
    assert!(
        status.success(),
        "gst-launch-1.0 {} failed: {status}",
        args.join(" ")
    );
    eprintln!(
        "bench: decode {} rgb={rgb}: {wall_s:.2} s wall, {cpu_s:.2} s CPU",
        clip.display()
    );
    Usage { wall_s, cpu_s }
}

// ------------------------------------------------------------------ end to end

struct E2e {
    sample_fps: f64,
    exit_ok: bool,
    messages: usize,
    person_frames: usize,
    wall_s: f64,
    span_s: f64,
    fps: f64,
    latency_ms_p50: f64,
    latency_ms_p99: f64,
    latency_ms_max: f64,
    cpu_s: f64,
}

fn config(clip: &Path, sample_fps: f64) -> String {
    format!(
        r#"{model}
[[cameras]]
id = "{CAMERA}"
url = {clip}
sample_fps = {sample_fps}

{query}"#,
        model = common::yolox_model(&common::yolox_dir(), "threads = 2"),
        clip = common::toml_path(clip),
        query = common::person_query(""),
    )
}

/// Runs `ocellus run` over the clip until it exits by itself.
fn e2e(
    bin: &Path,
    dir: &Path,
    broker: &Mosquitto,
    clip: &Path,
    sample_fps: f64,
    ticks: f64,
) -> E2e {
    let cfg = dir.join(format!("e2e-{sample_fps}.toml"));
    fs::write(&cfg, config(clip, sample_fps)).expect("write config");
    let topic = format!("ocellus/{CAMERA}/detections");
    let collector = MqttCollector::with_filter(&broker.url(), &topic);
    // Instants of received messages become wall times through this pair.
    let (inst0, wall0) = (Instant::now(), SystemTime::now());

    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg("-c")
        .arg(&cfg)
        .arg("--mqtt-url")
        .arg(broker.url())
        .env("OCELLUS_MODELS", common::models_dir());
    let cpu0 = children_cpu_s(ticks);
    let t0 = Instant::now();
    let mut daemon = Daemon::spawn("ocellus", cmd);
    let status: Option<ExitStatus> = daemon.wait_exit(RUN_LIMIT);
    let wall_s = t0.elapsed().as_secs_f64();
    let status = status.unwrap_or_else(|| {
        daemon.kill_hard();
        panic!(
            "ocellus did not finish {} within {RUN_LIMIT:?}",
            clip.display()
        )
    });
    let cpu_s = children_cpu_s(ticks) - cpu0;

    // The daemon hands everything to the broker before it exits; let it arrive.
    let mut seen = 0;
    common::wait_until(Duration::from_secs(3), || {
        let n = collector.messages().len();
        let settled = n == seen && n > 0;
        seen = n;
        if !settled {
            std::thread::sleep(Duration::from_millis(200));
        }
        settled
    });
    let msgs: Vec<Msg> = collector.messages();
    assert!(
        !msgs.is_empty(),
        "no detections from ocellus on {}; its output:\n{}",
        clip.display(),
        daemon.output()
    );
    let mut latencies: Vec<f64> = msgs
        .iter()
        .map(|m| {
            let v = m.json();
            let sent = humantime::parse_rfc3339(v["time"].as_str().expect("time in payload"))
                .expect("RFC 3339 time");
            let received = wall0 + (m.at - inst0);
            match received.duration_since(sent) {
                Ok(d) => d.as_secs_f64() * 1e3,
                Err(e) => -e.duration().as_secs_f64() * 1e3,
            }
        })
        .collect();
    latencies.sort_by(f64::total_cmp);
    let person_frames = msgs
        .iter()
        .filter(|m| {
            m.json()["detections"]
                .as_array()
                .is_some_and(|d| d.iter().any(|d| d["label"] == "person"))
        })
        .count();
    let span_s = (msgs[msgs.len() - 1].at - msgs[0].at).as_secs_f64();
    let run = E2e {
        sample_fps,
        exit_ok: status.success(),
        messages: msgs.len(),
        person_frames,
        wall_s,
        span_s,
        fps: if span_s > 0.0 {
            (msgs.len() - 1) as f64 / span_s
        } else {
            f64::NAN
        },
        latency_ms_p50: percentile(&latencies, 50.0),
        latency_ms_p99: percentile(&latencies, 99.0),
        latency_ms_max: latencies[latencies.len() - 1],
        cpu_s,
    };
    eprintln!(
        "bench: ocellus {} at sample_fps {sample_fps}: {} messages, {wall_s:.2} s wall, {cpu_s:.2} s CPU, exit {status}",
        clip.display(),
        run.messages
    );
    run
}

// ------------------------------------------------------------------ helpers

/// Nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// `NAME_cpu_s`, `NAME_cpu_s_per_video_s` and `NAME_marginal_cpu_s_per_video_s`
/// from the CPU seconds of the long and the short clip.
fn insert_cpu(out: &mut Map<String, Value>, name: &str, cpu_s: f64, short_cpu_s: f64) {
    out.insert(format!("{name}_cpu_s"), num(cpu_s));
    out.insert(
        format!("{name}_cpu_s_per_video_s"),
        num(cpu_s / f64::from(SECONDS)),
    );
    out.insert(
        format!("{name}_marginal_cpu_s_per_video_s"),
        num(marginal(cpu_s, short_cpu_s)),
    );
}

/// CPU seconds per video second once fixed costs are taken out.
fn marginal(long_cpu_s: f64, short_cpu_s: f64) -> f64 {
    (long_cpu_s - short_cpu_s) / f64::from(SECONDS - SHORT_SECONDS)
}

/// A number rounded to 4 significant decimals (JSON has no NaN: null then).
fn num(v: f64) -> Value {
    if v.is_finite() {
        json!((v * 1e4).round() / 1e4)
    } else {
        Value::Null
    }
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
    json!({
        "nproc": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu_model": model,
        "kernel": first_line("uname", "-r"),
        // Other work on the machine skews every number here.
        "loadavg_1m_5m_15m_at_start": fs::read_to_string("/proc/loadavg")
            .ok()
            .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")),
        "gstreamer": first_line("gst-launch-1.0", "--version").map(|l| l.replace("gst-launch-1.0 version ", "")),
    })
}
