//! Runs of the `ocellus` daemon: the config, the run itself (until it exits by itself
//! or for a fixed time, then SIGTERM), what it published on `ocellus/+/detections`,
//! its CPU time and memory, and the per-camera counters it logs at exit.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};

use crate::common::{self, Daemon, Mosquitto, MqttCollector, Msg};
use crate::measure::{children_cpu_s, num, opt_num, percentile, process_cpu_s, rss_mb};

/// `[[cameras]]` `ID` at `url` (any TOML-ready URL) with the person query and the
/// camera settings in `extra` (TOML lines).
pub fn camera(id: &str, url: &str, extra: &str) -> String {
    format!(
        "[[cameras]]\nid = {id}\nurl = {url}\n{extra}\n\n{query}",
        id = common::toml_str(id),
        url = common::toml_str(url),
        query = common::person_query(""),
    )
}

/// Intra-op threads of every ONNX Runtime session in the benchmark (ocellus, the raw
/// loop, the Python loop): `OCELLUS_BENCH_THREADS`, default 2.
pub fn threads() -> usize {
    std::env::var("OCELLUS_BENCH_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(2)
}

/// The YOLOX-nano model on the CPU with `threads()` threads, then the cameras.
pub fn config(cameras: &[String]) -> String {
    let n = threads();
    format!(
        "[engine]\nthreads = {n}\n\n{}{}",
        common::yolox_model(&common::yolox_dir(), &format!("threads = {n}")),
        cameras.concat()
    )
}

/// The one file camera `camera` of the file-clip scenarios: `clip` with the camera
/// settings in `extra`, run until the daemon exits at the clip's end (config written
/// to `config_file` under the bench folder); an error when it published no answers.
pub fn run_clip(
    o: &crate::Options,
    broker: &Mosquitto,
    camera_id: &str,
    clip: &Path,
    extra: &str,
    config_file: &str,
) -> Result<Run, String> {
    let cam = camera(camera_id, &clip.to_string_lossy(), extra);
    let run = run(
        &o.bin,
        &o.dir.join(config_file),
        &config(&[cam]),
        broker,
        Until::Exit(crate::FILE_RUN_LIMIT),
        o.ticks,
    );
    crate::require_answers(&run)?;
    Ok(run)
}

/// How long a run lasts.
pub enum Until {
    /// Until the daemon exits by itself (its files ended); killed after the limit.
    Exit(Duration),
    /// SIGTERM after `total`; the measuring window is `[warmup, total]` from the start.
    For { total: Duration, warmup: Duration },
}

/// The measuring window of an `Until::For` run.
pub struct Window {
    pub start: Instant,
    pub end: Instant,
    /// The daemon's own CPU seconds (all threads) inside the window.
    pub daemon_cpu_s: Option<f64>,
    /// This process's CPU seconds inside the window (RTSP server, MQTT subscriber).
    pub bench_cpu_s: Option<f64>,
}

impl Window {
    pub fn seconds(&self) -> f64 {
        (self.end - self.start).as_secs_f64()
    }

    pub fn contains(&self, at: Instant) -> bool {
        at >= self.start && at <= self.end
    }
}

/// One finished daemon run.
pub struct Run {
    pub exit_ok: bool,
    pub exit: String,
    pub wall_s: f64,
    /// CPU seconds of the whole run (start-up and shutdown included).
    pub cpu_s: f64,
    /// Every message on `ocellus/+/detections`, in arrival order.
    pub msgs: Vec<Msg>,
    pub started: Instant,
    started_wall: SystemTime,
    pub peak_rss_mb: Option<f64>,
    pub peak_hwm_mb: Option<f64>,
    pub window: Option<Window>,
    pub output: String,
}

/// Longest the daemon may take to exit after SIGTERM.
const STOP_LIMIT: Duration = Duration::from_secs(30);
/// How often the daemon's memory is read.
const RSS_EVERY: Duration = Duration::from_millis(500);
/// How often the daemon's memory is read in a run over a file.
const FILE_RSS_EVERY: Duration = Duration::from_millis(100);

/// Runs `ocellus run -c CFG --mqtt-url BROKER` (`config_text` written to `cfg`).
pub fn run(
    bin: &Path,
    cfg: &Path,
    config_text: &str,
    broker: &Mosquitto,
    until: Until,
    ticks: f64,
) -> Run {
    fs::write(cfg, config_text).expect("write config");
    let collector = MqttCollector::with_filter(&broker.url(), "ocellus/+/detections");
    let mut cmd = Command::new(bin);
    cmd.arg("run")
        .arg("-c")
        .arg(cfg)
        .arg("--mqtt-url")
        .arg(broker.url())
        .env("OCELLUS_MODELS", common::models_dir());
    let cpu0 = children_cpu_s(ticks);
    let (started, started_wall) = (Instant::now(), SystemTime::now());
    let mut daemon = Daemon::spawn("ocellus", cmd);
    let pid = daemon.pid();
    let pid_s = pid.to_string();
    let (mut peak_rss, mut peak_hwm) = (None::<f64>, None::<f64>);
    // The first read comes one period after the start (before that the child may not
    // have exec'd yet); files are read more often, as their runs are short.
    let every = match until {
        Until::Exit(_) => FILE_RSS_EVERY,
        Until::For { .. } => RSS_EVERY,
    };
    let mut sample_rss = |at: &mut Instant| {
        if at.elapsed() >= every {
            *at = Instant::now();
            if let Some((rss, hwm)) = rss_mb(pid) {
                peak_rss = Some(peak_rss.map_or(rss, |p: f64| p.max(rss)));
                peak_hwm = Some(peak_hwm.map_or(hwm, |p: f64| p.max(hwm)));
            }
        }
    };
    let mut last_rss = started;
    let mut window = None;
    let mut problem = None;
    let status: Option<ExitStatus> = match until {
        Until::Exit(limit) => loop {
            sample_rss(&mut last_rss);
            if let Some(s) = daemon.try_status() {
                break Some(s);
            }
            if started.elapsed() >= limit {
                problem = Some(format!("did not finish within {limit:?}; killed"));
                break Some(daemon.kill_hard());
            }
            thread::sleep(Duration::from_millis(20));
        },
        Until::For { total, warmup } => {
            let mut start = None;
            let exited = loop {
                sample_rss(&mut last_rss);
                if let Some(s) = daemon.try_status() {
                    break Some(s);
                }
                let t = started.elapsed();
                if start.is_none() && t >= warmup {
                    start = Some((
                        Instant::now(),
                        process_cpu_s(&pid_s, ticks),
                        process_cpu_s("self", ticks),
                    ));
                }
                if t >= total {
                    break None;
                }
                thread::sleep(Duration::from_millis(20));
            };
            let end = (
                Instant::now(),
                process_cpu_s(&pid_s, ticks),
                process_cpu_s("self", ticks),
            );
            if let Some((s, d0, b0)) = start {
                window = Some(Window {
                    start: s,
                    end: end.0,
                    daemon_cpu_s: d0.zip(end.1).map(|(a, b)| b - a),
                    bench_cpu_s: b0.zip(end.2).map(|(a, b)| b - a),
                });
            }
            match exited {
                Some(s) => {
                    problem = Some(format!(
                        "exited by itself after {:.1} s",
                        started.elapsed().as_secs_f64()
                    ));
                    Some(s)
                }
                None => {
                    daemon.signal("TERM");
                    match daemon.wait_exit(STOP_LIMIT) {
                        Some(s) => Some(s),
                        None => {
                            problem = Some(format!(
                                "did not exit within {STOP_LIMIT:?} of SIGTERM; killed"
                            ));
                            Some(daemon.kill_hard())
                        }
                    }
                }
            }
        }
    };
    let wall_s = started.elapsed().as_secs_f64();
    let cpu_s = children_cpu_s(ticks) - cpu0;

    // The daemon hands everything to the broker before it exits; let it arrive.
    let mut seen = usize::MAX;
    common::wait_until(Duration::from_secs(3), || {
        let n = collector.messages().len();
        let settled = n == seen;
        seen = n;
        if !settled {
            thread::sleep(Duration::from_millis(200));
        }
        settled
    });
    let msgs = collector.messages();
    let status_text = status.map_or("unknown".into(), |s| s.to_string());
    let exit_ok = problem.is_none() && status.is_some_and(|s| s.success());
    let exit = match problem {
        Some(p) => format!("{p} ({status_text})"),
        None => status_text,
    };
    eprintln!(
        "bench: ocellus {}: {} detections messages, {wall_s:.2} s wall, {cpu_s:.2} s CPU, {exit}",
        cfg.display(),
        msgs.len()
    );
    Run {
        exit_ok,
        exit,
        wall_s,
        cpu_s,
        msgs,
        started,
        started_wall,
        peak_rss_mb: peak_rss,
        peak_hwm_mb: peak_hwm,
        window,
        output: daemon.output(),
    }
}

impl Run {
    /// Frame→MQTT latency of each message `keep` accepts, in ms, sorted: receive
    /// wall time − the payload's `time` (the wall time at which the frame left the
    /// decoder).
    pub fn latencies_ms(&self, keep: impl Fn(&Msg) -> bool) -> Vec<f64> {
        let mut l: Vec<f64> = self
            .msgs
            .iter()
            .filter(|m| keep(m))
            .filter_map(|m| {
                let v = m.json();
                let sent = humantime::parse_rfc3339(v["time"].as_str()?).ok()?;
                let received = self.started_wall + (m.at - self.started);
                Some(match received.duration_since(sent) {
                    Ok(d) => d.as_secs_f64() * 1e3,
                    Err(e) => -e.duration().as_secs_f64() * 1e3,
                })
            })
            .collect();
        l.sort_by(f64::total_cmp);
        l
    }

    /// Messages whose detections include a person.
    pub fn person_frames(&self) -> usize {
        self.msgs
            .iter()
            .filter(|m| {
                m.json()["detections"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|d| d["label"] == "person"))
            })
            .count()
    }

    /// Seconds from the start to the first message.
    pub fn first_message_s(&self) -> Option<f64> {
        self.msgs
            .first()
            .map(|m| (m.at - self.started).as_secs_f64())
    }

    /// The common numbers of a run, keys prefixed with `name_`.
    pub fn insert_common(&self, out: &mut Map<String, Value>, name: &str) {
        let lat = self.latencies_ms(|_| true);
        out.insert(format!("{name}_exit_ok"), json!(self.exit_ok));
        if !self.exit_ok {
            out.insert(format!("{name}_exit"), json!(self.exit));
        }
        out.insert(format!("{name}_wall_s"), num(self.wall_s));
        out.insert(format!("{name}_cpu_s"), num(self.cpu_s));
        out.insert(
            format!("{name}_frames_evaluated_count"),
            json!(self.msgs.len()),
        );
        out.insert(
            format!("{name}_person_frames_count"),
            json!(self.person_frames()),
        );
        out.insert(
            format!("{name}_first_message_after_start_s"),
            opt_num(self.first_message_s()),
        );
        out.insert(
            format!("{name}_latency_ms_p50"),
            num(percentile(&lat, 50.0)),
        );
        out.insert(
            format!("{name}_latency_ms_p99"),
            num(percentile(&lat, 99.0)),
        );
        out.insert(format!("{name}_peak_rss_mb"), opt_num(self.peak_rss_mb));
        out.insert(format!("{name}_peak_vmhwm_mb"), opt_num(self.peak_hwm_mb));
    }
}

/// The counters the daemon logs for every camera at exit, summed over cameras.
pub struct ExitCounters {
    /// How many of the cameras logged a counters line.
    pub lines: usize,
    /// `LABEL_count` (spaces as underscores) → sum over cameras.
    pub sums: BTreeMap<String, u64>,
    /// Whether the lines have the expected fields (decoded, sampled, unchanged,
    /// encoded, cache hits, dropped).
    pub expected_format: bool,
}

/// The fields of the expected line
/// `camera {id}: {decoded} decoded, {sampled} sampled, {unchanged} unchanged,
/// {encoded} encoded, {cache_hits} cache hits, {dropped} dropped`.
const EXPECTED: [&str; 6] = [
    "decoded",
    "sampled",
    "unchanged",
    "encoded",
    "cache hits",
    "dropped",
];

/// `N label, N label, ...` (up to a `;`) → the pairs, or `None` if any part is not.
fn counters_of(text: &str) -> Option<Vec<(String, u64)>> {
    let text = text.split(';').next()?.trim();
    let pairs = text
        .split(", ")
        .map(|part| {
            let (n, label) = part.trim().split_once(' ')?;
            Some((label.trim().to_string(), n.parse().ok()?))
        })
        .collect::<Option<Vec<_>>>()?;
    (!pairs.is_empty()).then_some(pairs)
}

/// Finds, for each camera, the last line `camera {id}: N label, N label, ...` in the
/// daemon's output (the exit line comes last) and sums the fields over cameras.
pub fn exit_counters(output: &str, cameras: &[String]) -> ExitCounters {
    let mut sums = BTreeMap::new();
    let mut lines = 0;
    let mut expected_format = true;
    for id in cameras {
        let marker = format!("camera {id}: ");
        let found = output.lines().rev().find_map(|l| {
            let rest = &l[l.find(&marker)? + marker.len()..];
            counters_of(rest)
        });
        let Some(pairs) = found else { continue };
        lines += 1;
        let labels: Vec<&str> = pairs.iter().map(|(l, _)| l.as_str()).collect();
        expected_format &= labels == EXPECTED;
        for (label, n) in pairs {
            *sums
                .entry(format!("{}_count", label.replace(' ', "_")))
                .or_insert(0) += n;
        }
    }
    ExitCounters {
        lines,
        sums,
        expected_format: expected_format && lines > 0,
    }
}

impl ExitCounters {
    /// `{name}_exit_counters`: the sums and how many cameras logged the line;
    /// `{name}_dropped_frames_count`: null unless every camera logged the expected
    /// line.
    pub fn insert(&self, out: &mut Map<String, Value>, name: &str, cameras: usize) {
        let mut m = Map::new();
        m.insert("cameras_with_line_count".into(), json!(self.lines));
        m.insert("expected_format".into(), json!(self.expected_format));
        for (k, v) in &self.sums {
            m.insert(k.clone(), json!(v));
        }
        out.insert(format!("{name}_exit_counters"), Value::Object(m));
        let complete = self.expected_format && self.lines == cameras;
        out.insert(
            format!("{name}_dropped_frames_count"),
            if complete {
                json!(self.sums.get("dropped_count").copied().unwrap_or(0))
            } else {
                Value::Null
            },
        );
    }
}
