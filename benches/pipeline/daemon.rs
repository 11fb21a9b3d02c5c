//! Runs of the `ocellus` daemon: the config, the run itself (until it exits by itself
//! or for a fixed time, or a warm-up and measuring phases with a hook at their edges,
//! then SIGTERM), what it published on `ocellus/+/detections`,
//! its CPU time and memory, and the per-camera counters it logs at exit.

use std::collections::BTreeMap;
use std::fs;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Map, Value, json};

use crate::common::{self, Daemon, Mosquitto, MqttCollector, Msg};
use crate::measure::{
    MemoryBreakdown, children_cpu_s, memory_breakdown, num, opt_num, percentile, process_cpu_s,
    rss_mb,
};

/// `[[cameras]]` `ID` at `url` (any TOML-ready URL) with the person query and the
/// camera settings in `extra` (TOML lines).
pub fn camera(id: &str, url: &str, extra: &str) -> String {
    format!(
        "[[cameras]]\nrealtime = false\nid = {id}\nurl = {url}\n{extra}\n\n{query}",
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

/// The YOLOX-nano model on the CPU with `threads()` threads (and the lines of
/// `OCELLUS_BENCH_YOLOX`, e.g. `max_batch = 1`, to compare settings), then the cameras.
pub fn config(cameras: &[String]) -> String {
    let n = threads();
    let extra = std::env::var("OCELLUS_BENCH_YOLOX").unwrap_or_default();
    format!(
        "[engine]\nthreads = {n}\n\n{}{}",
        common::yolox_model(&common::yolox_dir(), &format!("threads = {n}\n{extra}")),
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
    /// After `warmup`, the windows `phases` one after another, then SIGTERM (see
    /// [`run_phased`]).
    Phases {
        warmup: Duration,
        phases: Vec<Duration>,
    },
}

/// A measuring window of an `Until::For` or `Until::Phases` run.
pub struct Window {
    pub start: Instant,
    pub end: Instant,
    /// The daemon's own CPU seconds (all threads) inside the window.
    pub daemon_cpu_s: Option<f64>,
    /// This process's CPU seconds inside the window (RTSP server, MQTT subscriber).
    pub bench_cpu_s: Option<f64>,
    /// The daemon's VmRSS at the window's end.
    pub rss_end_mb: Option<f64>,
    /// The largest VmRSS read inside the window (every 500 ms and at its edges).
    pub peak_rss_mb: Option<f64>,
    /// Where the daemon's memory was at the window's end (smaps and threads).
    pub memory_end: Option<MemoryBreakdown>,
}

/// A window's edge: when, the daemon's CPU seconds, this process's CPU seconds.
type Mark = (Instant, Option<f64>, Option<f64>);

fn mark(pid: &str, ticks: f64) -> Mark {
    (
        Instant::now(),
        process_cpu_s(pid, ticks),
        process_cpu_s("self", ticks),
    )
}

impl Window {
    fn between(
        start: Mark,
        end: Mark,
        rss_end_mb: Option<f64>,
        peak: Option<f64>,
        memory_end: Option<MemoryBreakdown>,
    ) -> Self {
        Window {
            start: start.0,
            end: end.0,
            daemon_cpu_s: start.1.zip(end.1).map(|(a, b)| b - a),
            bench_cpu_s: start.2.zip(end.2).map(|(a, b)| b - a),
            rss_end_mb,
            peak_rss_mb: peak,
            memory_end,
        }
    }

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
    /// The measuring windows that began (one for `Until::For`; none for `Until::Exit`
    /// or when the daemon ended during the warm-up); the last one ends early when the
    /// daemon exited by itself.
    pub phases: Vec<Window>,
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
    run_phased(bin, cfg, config_text, broker, until, ticks, &mut |_| {})
}

/// The daemon's memory, read every `every` (and on demand at the windows' edges).
struct Memory {
    pid: u32,
    every: Duration,
    last: Instant,
    peak_rss: Option<f64>,
    peak_hwm: Option<f64>,
    /// The largest VmRSS since the current window began.
    window_peak: Option<f64>,
}

fn max_of(peak: Option<f64>, v: f64) -> Option<f64> {
    Some(peak.map_or(v, |p| p.max(v)))
}

impl Memory {
    /// Reads VmRSS and VmHWM when `every` has passed since the last read (or `now`);
    /// VmRSS when it did read.
    fn sample(&mut self, now: bool) -> Option<f64> {
        if !now && self.last.elapsed() < self.every {
            return None;
        }
        self.last = Instant::now();
        let (rss, hwm) = rss_mb(self.pid)?;
        self.peak_rss = max_of(self.peak_rss, rss);
        self.peak_hwm = max_of(self.peak_hwm, hwm);
        self.window_peak = max_of(self.window_peak, rss);
        Some(rss)
    }
}

/// [`run`], calling `on_edge(k)` at each edge of the measuring windows of an
/// `Until::For` or `Until::Phases` run (edge 0 starts the first window, edge k ends
/// window k-1 and starts window k, the last edge ends the last window), right after
/// the edge's CPU times and VmRSS are read: the window that follows starts at that
/// read, so what the hook does is in it; the last edge's hook runs before the
/// SIGTERM. Edge k is due `warmup + phases[..k]` after the start (time a hook takes
/// comes out of the window after it). RSS is read every 500 ms meanwhile.
pub fn run_phased(
    bin: &Path,
    cfg: &Path,
    config_text: &str,
    broker: &Mosquitto,
    until: Until,
    ticks: f64,
    on_edge: &mut dyn FnMut(usize),
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
    // The first read comes one period after the start (before that the child may not
    // have exec'd yet); files are read more often, as their runs are short.
    let mut mem = Memory {
        pid,
        every: match until {
            Until::Exit(_) => FILE_RSS_EVERY,
            _ => RSS_EVERY,
        },
        last: started,
        peak_rss: None,
        peak_hwm: None,
        window_peak: None,
    };
    let mut phases = Vec::new();
    let mut problem = None;
    // The edges of the windows, from the start (none for a run over files).
    let edges: Vec<Duration> = match &until {
        Until::Exit(_) => Vec::new(),
        Until::For { total, warmup } => vec![*warmup, (*total).max(*warmup)],
        Until::Phases { warmup, phases } => std::iter::once(*warmup)
            .chain(phases.iter().scan(*warmup, |at, p| {
                *at += *p;
                Some(*at)
            }))
            .collect(),
    };
    let status: Option<ExitStatus> = if let Until::Exit(limit) = until {
        loop {
            mem.sample(false);
            if let Some(s) = daemon.try_status() {
                break Some(s);
            }
            if started.elapsed() >= limit {
                problem = Some(format!("did not finish within {limit:?}; killed"));
                break Some(daemon.kill_hard());
            }
            thread::sleep(Duration::from_millis(20));
        }
    } else {
        let mut open: Option<Mark> = None;
        let mut next = 0;
        let exited = loop {
            mem.sample(false);
            if let Some(s) = daemon.try_status() {
                break Some(s);
            }
            if started.elapsed() >= edges[next] {
                let at = mark(&pid_s, ticks);
                let rss = mem.sample(true);
                if let Some(start) = open.take() {
                    let memory = memory_breakdown(pid);
                    phases.push(Window::between(start, at, rss, mem.window_peak, memory));
                }
                mem.window_peak = rss;
                on_edge(next);
                next += 1;
                if next == edges.len() {
                    break None;
                }
                open = Some(at);
            }
            thread::sleep(Duration::from_millis(20));
        };
        match exited {
            Some(s) => {
                // Gone: its window ends here, without the daemon's CPU time.
                if let Some(start) = open.take() {
                    let at = mark(&pid_s, ticks);
                    phases.push(Window::between(start, at, None, mem.window_peak, None));
                }
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
        peak_rss_mb: mem.peak_rss,
        peak_hwm_mb: mem.peak_hwm,
        phases,
        output: daemon.output(),
    }
}

impl Run {
    /// The measuring window of an `Until::For` run (the first of an `Until::Phases` one).
    pub fn window(&self) -> Option<&Window> {
        self.phases.first()
    }

    /// Each camera's evaluation rate inside `w`: its detections messages per second.
    pub fn rates_hz(&self, ids: &[String], w: &Window) -> Vec<f64> {
        ids.iter()
            .map(|id| {
                let topic = common::detections_topic(id);
                let n = self
                    .msgs
                    .iter()
                    .filter(|m| m.topic == topic && w.contains(m.at))
                    .count();
                n as f64 / w.seconds()
            })
            .collect()
    }

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
