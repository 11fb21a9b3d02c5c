//! Scenario "cameras": many live cameras on one small machine.
//!
//! 16 cameras (`OCELLUS_BENCH_CAMERAS`) of 720p30 H.264 (photo + moving ball, 1 s
//! GOP) served by a real RTSP server inside this process, each mount streaming the
//! same clip file in real time from its start when the daemon connects. One daemon
//! watches them all (`transport = "tcp"`, `sample_fps = 1`, the person yes/no query,
//! YOLOX-nano on the CPU with 2 threads) for `OCELLUS_BENCH_CAMERA_SECONDS` (60),
//! then gets SIGTERM. Measured over the window after `OCELLUS_BENCH_WARMUP_SECONDS`
//! (10) from the start: frame→MQTT latency, per-camera evaluation rate, the daemon's
//! CPU; over the whole run: peak RSS and the exit counters. Twice: full decoding and
//! `keyframes_only = true` on every camera, and that with `decoder_threads = 1`.

use std::path::Path;
use std::time::Duration;

use serde_json::{Map, Value, json};

use crate::clips::ClipSpec;
use crate::common::Mosquitto;
use crate::common::RtspServer;
use crate::daemon::{self, Until, exit_counters};
use crate::measure::{guarded, median, num, opt_num, percentile, tail};
use crate::rtsp::{clip_launch, mounts};
use crate::{Options, require_answers};

/// The clip outlasts the run by this much (connection and start-up time).
const CLIP_SLACK_S: u32 = 30;
const TARGET_P99_MS: f64 = 2000.0;
const TARGET_RATE_HZ: f64 = 0.8;
const TARGET_RSS_MB: f64 = 300.0;

pub fn spec(run_seconds: u32) -> ClipSpec {
    ClipSpec {
        width: 1280,
        height: 720,
        fps: 30,
        seconds: run_seconds + CLIP_SLACK_S,
        gop_frames: 30,
        bitrate_kbps: 2500,
        ball: true,
        snow: false,
    }
}

pub fn run(o: &Options) -> Value {
    let spec = spec(o.camera_seconds);
    let clip = spec.make(&o.dir);
    let mut r = Map::new();
    let mut errors = Map::new();
    match guarded("cameras: mosquitto", || Ok(Mosquitto::start())) {
        Ok(broker) => {
            for (name, extra) in [
                ("full", ""),
                ("keyframes_only", "keyframes_only = true\n"),
                (
                    "keyframes_only_one_decoder_thread",
                    "keyframes_only = true\ndecoder_threads = 1\n",
                ),
            ] {
                match guarded(&format!("cameras: {name}"), || {
                    one(o, &broker, &clip, name, extra)
                }) {
                    Ok(v) => {
                        r.insert(name.into(), v);
                    }
                    Err(e) => {
                        errors.insert(name.into(), json!(e));
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
            "cameras_count": o.cameras,
            "server": "gst-rtsp-server in the benchmark process on 127.0.0.1, TCP only, one mount per camera: \
                       ( filesrc ! matroskademux ! h264parse config-interval=-1 ! rtph264pay config-interval=-1 ), \
                       the clip in real time from its start when the daemon connects",
            "camera": "rtsp://127.0.0.1:PORT/camN, transport = \"tcp\", sample_fps = 1, person yes/no query; \
                       keyframes_only: the same plus keyframes_only = true; \
                       keyframes_only_one_decoder_thread: also decoder_threads = 1",
            "model": "YOLOX-nano on the CPU, threads = 2 ([engine] and model)",
            "run_s": o.camera_seconds,
            "warmup_s": o.warmup_seconds,
            "latency": "receive wall time at the subscriber - payload time (stamped when the frame left the decoder), \
                        messages received inside the window",
            "rate": "messages on ocellus/camN/detections inside the window / window seconds, per camera",
            "cpu_s_per_wall_s": "whole run (start-up and shutdown included): growth of cutime+cstime across reaping / wall; \
                        window_cpu_s_per_wall_s: the daemon's utime+stime (/proc/PID/stat) over the window; \
                        bench_process_window_cpu_s_per_wall_s: this process (RTSP server, subscriber) over the window, \
                        which competes for the same cores",
            "peak_rss_mb": "largest VmRSS of /proc/PID/status, read every 500 ms; peak_vmhwm_mb: largest VmHWM read",
            "rss_breakdown_mb": "at the window's end (rss_end_mb: VmRSS then): Rss of /proc/PID/smaps by mapping: \
                        heap_brk the main malloc arena, malloc_arenas the other threads' arenas (64 MiB-aligned, \
                        before the ---p rest of their reservation), stacks (above a ---p guard), anon_other every \
                        other anonymous mapping (malloc's mmaps of large blocks, frame buffers among them, ONNX \
                        Runtime's arena), onnxruntime / gstreamer_and_codecs (libgst*, GStreamer plugins, libav*, \
                        liborc, ...) / ocellus_binary / other_libs the files' pages; threads_count and \
                        threads_by_name_count (digit runs as #) from /proc/PID/task",
            "exit_counters": "per-camera line the daemon logs at exit, `camera ID: N decoded, N sampled, N unchanged, \
                        N encoded, N cache hits, N dropped`, summed over cameras (dropped_frames_count null when absent)",
            "targets": format!("latency_ms_p99 <= {TARGET_P99_MS}, every camera >= {TARGET_RATE_HZ} Hz, \
                        peak_rss_mb <= {TARGET_RSS_MB} (reported, not asserted)"),
        },
        "results": r,
        "errors": errors,
    })
}

fn one(
    o: &Options,
    broker: &Mosquitto,
    clip: &Path,
    name: &str,
    extra: &str,
) -> Result<Value, String> {
    let ids: Vec<String> = (0..o.cameras).map(|i| format!("cam{i}")).collect();
    let launch = clip_launch(clip);
    let mut server = RtspServer::start_on_free_port(mounts(&ids, &launch))?;
    let cams: Vec<String> = ids
        .iter()
        .map(|id| {
            daemon::camera(
                id,
                &server.url("rtsp", &format!("/{id}")),
                &format!("transport = \"tcp\"\nsample_fps = 1.0\n{extra}"),
            )
        })
        .collect();
    eprintln!(
        "bench: cameras {name}: {} cameras for {} s (warm-up {} s)",
        ids.len(),
        o.camera_seconds,
        o.warmup_seconds
    );
    let run = daemon::run(
        &o.bin,
        &o.dir.join(format!("cameras-{name}.toml")),
        &daemon::config(&cams),
        broker,
        Until::For {
            total: Duration::from_secs(u64::from(o.camera_seconds)),
            warmup: Duration::from_secs(u64::from(o.warmup_seconds)),
        },
        o.ticks,
    );
    server.stop();
    require_answers(&run)?;
    let w = run
        .window()
        .ok_or_else(|| format!("the daemon ended before the warm-up was over: {}", run.exit))?;
    let window_s = w.seconds();

    let rates = run.rates_hz(&ids, w);
    let lat = run.latencies_ms(|m| w.contains(m.at));
    let p99 = percentile(&lat, 99.0);
    let min_rate = rates.iter().copied().fold(f64::INFINITY, f64::min);
    let counters = exit_counters(&run.output, &ids);

    let mut m = Map::new();
    m.insert("cameras_count".into(), json!(ids.len()));
    m.insert("exit_ok".into(), json!(run.exit_ok));
    m.insert("exit".into(), json!(run.exit));
    m.insert("run_wall_s".into(), num(run.wall_s));
    m.insert("window_s".into(), num(window_s));
    m.insert(
        "first_message_after_start_s".into(),
        opt_num(run.first_message_s()),
    );
    m.insert("messages_total_count".into(), json!(run.msgs.len()));
    m.insert(
        "messages_in_window_count".into(),
        json!(run.msgs.iter().filter(|x| w.contains(x.at)).count()),
    );
    m.insert("person_frames_count".into(), json!(run.person_frames()));
    m.insert("latency_ms_p50".into(), num(percentile(&lat, 50.0)));
    m.insert("latency_ms_p99".into(), num(p99));
    m.insert(
        "latency_ms_max".into(),
        num(lat.last().copied().unwrap_or(f64::NAN)),
    );
    m.insert("latency_samples_count".into(), json!(lat.len()));
    m.insert("per_camera_rate_hz_min".into(), num(min_rate));
    m.insert("per_camera_rate_hz_median".into(), num(median(&rates)));
    m.insert(
        "per_camera_rate_hz_max".into(),
        num(rates.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
    );
    m.insert(
        "per_camera_rate_hz".into(),
        Value::Array(rates.iter().map(|r| num(*r)).collect()),
    );
    m.insert(
        "cameras_below_target_rate_count".into(),
        json!(rates.iter().filter(|r| **r < TARGET_RATE_HZ).count()),
    );
    counters.insert(&mut m, "daemon", ids.len());
    m.insert("peak_rss_mb".into(), opt_num(run.peak_rss_mb));
    m.insert("peak_vmhwm_mb".into(), opt_num(run.peak_hwm_mb));
    m.insert("rss_end_mb".into(), opt_num(w.rss_end_mb));
    if let Some(b) = &w.memory_end {
        b.insert(&mut m);
    }
    m.insert("cpu_s".into(), num(run.cpu_s));
    m.insert("cpu_s_per_wall_s".into(), num(run.cpu_s / run.wall_s));
    m.insert(
        "window_cpu_s_per_wall_s".into(),
        opt_num(w.daemon_cpu_s.map(|c| c / window_s)),
    );
    m.insert(
        "bench_process_window_cpu_s_per_wall_s".into(),
        opt_num(w.bench_cpu_s.map(|c| c / window_s)),
    );
    m.insert("target_latency_p99_met".into(), json!(p99 <= TARGET_P99_MS));
    m.insert("target_rate_met".into(), json!(min_rate >= TARGET_RATE_HZ));
    m.insert(
        "target_rss_met".into(),
        json!(run.peak_rss_mb.is_some_and(|r| r <= TARGET_RSS_MB)),
    );
    if !run.exit_ok {
        m.insert("daemon_output_tail".into(), json!(tail(&run.output, 3000)));
    }
    Ok(Value::Object(m))
}
