//! Scenario "tiles": what watching costs — the web interface's live tiles on the
//! cameras scenario's load.
//!
//! The `cameras` scenario's setup (16 RTSP cameras of 720p30 from the server in this
//! process, `sample_fps = 1`, the person query, YOLOX-nano on the CPU with 2
//! threads) plus `[http]` on a free loopback port (`[http.web] tile_fps = 2`). One
//! daemon run: after `OCELLUS_BENCH_WARMUP_SECONDS` (10), phase A of
//! `OCELLUS_BENCH_TILE_SECONDS` (30) with no tile open; phase B as long with one tile
//! per camera open: a thread of this process per camera polls
//! `GET /api/cameras/camN/live.jpg?after=<last x-frame-seq seen>` every 1/tile_fps s
//! as a page's tile does (its first request without `after`; one keep-alive
//! connection per tile; the threads start spread over one period); phase C as long
//! with the tiles closed again (a camera stays watched 3 s after its last request, so
//! C begins with that tail). Per phase: the daemon's CPU (utime+stime), its VmRSS at
//! the end and the peak, each camera's evaluation rate, frame→MQTT latency, this
//! process's CPU, and the deltas of `/api/system`'s `web` counters read at the edges.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::{Map, Value, json};

use crate::common::{self, Mosquitto, RtspServer};
use crate::daemon::{self, Until, Window, exit_counters};
use crate::measure::{guarded, median, num, opt_num, percentile, tail};
use crate::rtsp::{clip_launch, mounts};
use crate::{Options, require_answers};

/// `[http.web] tile_fps` of the run (the daemon's default), and how often a tile asks.
const TILE_FPS: f64 = 2.0;
/// The phases, in order: (key in the report, whether the tiles are open).
const PHASES: [(&str, bool); 3] = [
    ("a_no_tiles", false),
    ("b_tiles_open", true),
    ("c_tiles_closed_again", false),
];
const TARGET_EVAL_RATE_RATIO: f64 = 0.95;
/// Longest one tile request may take (the first waits up to 3 s for a picture).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

pub fn run(o: &Options) -> Value {
    let run_seconds = o.warmup_seconds + o.tile_seconds * PHASES.len() as u32;
    let spec = crate::cameras::spec(run_seconds);
    let clip = spec.make(&o.dir);
    let result = guarded("tiles: mosquitto", || Ok(Mosquitto::start()))
        .and_then(|broker| guarded("tiles: run", || one(o, &broker, &clip)));
    let (results, error) = match result {
        Ok(v) => (v, Value::Null),
        Err(e) => (Value::Null, json!(e)),
    };
    json!({
        "clip": spec.describe(&clip),
        "setup": {
            "cameras_count": o.cameras,
            "server": "gst-rtsp-server in the benchmark process on 127.0.0.1, TCP only, one mount per camera: \
                       ( filesrc ! matroskademux ! h264parse config-interval=-1 ! rtph264pay config-interval=-1 ), \
                       the clip in real time from its start when the daemon connects",
            "camera": "rtsp://127.0.0.1:PORT/camN, transport = \"tcp\", sample_fps = 1, person yes/no query",
            "model": "YOLOX-nano on the CPU, threads = 2 ([engine] and model)",
            "http": format!("[http] listen = \"127.0.0.1:FREE_PORT\" (no token), [http.web] tile_fps = {TILE_FPS} \
                       (tile_side 640 and tile_quality 75 by default)"),
            "run": format!("one daemon run: warm-up {w} s, then phase A {t} s with no tile open, phase B {t} s with \
                       one tile per camera open ({n} tiles), phase C {t} s with no tile open; SIGTERM",
                       w = o.warmup_seconds, t = o.tile_seconds, n = o.cameras),
            "tiles": format!("one thread of the benchmark process per camera, one keep-alive HTTP/1.1 connection each: \
                       GET /api/cameras/camN/live.jpg?after=<last x-frame-seq seen> every {:.3} s on a fixed schedule \
                       (a late request is sent at once, and the schedule starts again from it); the first request \
                       has no after; the threads start spread evenly over one period; started at phase B's start edge, \
                       stopped (joined) at its end edge", 1.0 / TILE_FPS),
            "phase_c": "a camera stays watched 3 s after its last request (the lease), so phase C begins with that tail",
            "warmup_s": o.warmup_seconds,
            "phase_s": o.tile_seconds,
            "edges": "at each edge the daemon's and this process's utime+stime (/proc/PID/stat) and the daemon's VmRSS \
                      are read, then GET /api/system; the time that takes and starting/stopping the tile threads fall in \
                      the phase that follows",
            "latency": "receive wall time at the subscriber - payload time (stamped when the frame left the decoder), \
                        messages received inside the phase",
            "rate": "messages on ocellus/camN/detections received inside the phase / phase seconds, per camera",
            "cpu_s_per_wall_s": "the daemon's utime+stime over the phase / phase seconds; bench_process_cpu_s_per_wall_s: \
                        this process (RTSP server, MQTT subscriber, in phase B the tile threads), which competes for the \
                        same cores",
            "rss": "VmRSS of /proc/PID/status at the phase's end edge; peak: largest read inside the phase (every 500 ms \
                    and at its edges)",
            "web_counters": "deltas over the phase of /api/system web.tiles_encoded, web.tile_encode_ms (the encoder \
                    thread's time from taking a copied frame to the JPEG, scaling included), web.tiles_dropped, and of \
                    the cameras' evaluated and dropped summed",
            "ratios": "cpu_ratio_16_tiles_to_0: phase B daemon CPU per wall s / phase A's; eval_rate_ratio_16_tiles_to_0: \
                    median per-camera rate in B / median in A; rss_delta_mb: VmRSS at B's end - at A's end; \
                    tile_encode_ms_per_picture and tile_pictures_per_s: phase B's web counters; \
                    daemon_extra_cpu_ms_per_tile_picture: (B - A daemon CPU per wall s) x B seconds / B pictures \
                    (copy, encode and serving together); *_after_tiles_to_0: C against A",
            "targets": format!("eval_rate_ratio_16_tiles_to_0 >= {TARGET_EVAL_RATE_RATIO} (reported, not asserted)"),
        },
        "results": results,
        "error": error,
    })
}

/// What the hook at the phases' edges keeps.
struct Edges {
    port: u16,
    cameras: Vec<String>,
    /// `/api/system` at each edge (`None`: no answer).
    system: Vec<Option<Value>>,
    clients: Option<Clients>,
    /// The tile threads' counts, per phase (`None` where no tile was open).
    tiles: Vec<Option<Value>>,
}

impl Edges {
    fn at(&mut self, edge: usize) {
        let sys = common::http(self.port, "GET", "/api/system", None, b"")
            .filter(|r| r.status == 200)
            .and_then(|r| serde_json::from_slice::<Value>(&r.body).ok());
        self.system.push(sys);
        // The phase that just ended, then the one that begins.
        if let Some(c) = self.clients.take() {
            self.tiles.push(Some(c.stop()));
        } else if edge > 0 {
            self.tiles.push(None);
        }
        if PHASES.get(edge).is_some_and(|(_, open)| *open) {
            eprintln!("bench: tiles: opening {} tiles", self.cameras.len());
            self.clients = Some(Clients::start(self.port, &self.cameras));
        }
    }
}

fn one(o: &Options, broker: &Mosquitto, clip: &std::path::Path) -> Result<Value, String> {
    let ids: Vec<String> = (0..o.cameras).map(|i| format!("cam{i}")).collect();
    let launch = clip_launch(clip);
    let mut server = RtspServer::start_on_free_port(mounts(&ids, &launch))?;
    let cams: Vec<String> = ids
        .iter()
        .map(|id| {
            daemon::camera(
                id,
                &server.url("rtsp", &format!("/{id}")),
                "transport = \"tcp\"\nsample_fps = 1.0\n",
            )
        })
        .collect();
    let port = common::free_port();
    let config = format!(
        "[http]\nlisten = \"127.0.0.1:{port}\"\n\n[http.web]\ntile_fps = {TILE_FPS:?}\n\n{}",
        daemon::config(&cams)
    );
    eprintln!(
        "bench: tiles: {} cameras, warm-up {} s, then 3 phases of {} s (tiles open in the second)",
        ids.len(),
        o.warmup_seconds,
        o.tile_seconds
    );
    let mut edges = Edges {
        port,
        cameras: ids.clone(),
        system: Vec::new(),
        clients: None,
        tiles: Vec::new(),
    };
    let phase = Duration::from_secs(u64::from(o.tile_seconds));
    let run = daemon::run_phased(
        &o.bin,
        &o.dir.join("tiles.toml"),
        &config,
        broker,
        Until::Phases {
            warmup: Duration::from_secs(u64::from(o.warmup_seconds)),
            phases: vec![phase; PHASES.len()],
        },
        o.ticks,
        &mut |e| edges.at(e),
    );
    // Tiles still open if the daemon ended early.
    if let Some(c) = edges.clients.take() {
        edges.tiles.push(Some(c.stop()));
    }
    server.stop();
    require_answers(&run)?;
    if run.phases.len() < 2 {
        return Err(format!(
            "the daemon ended before phase B was over: {}",
            run.exit
        ));
    }

    let mut phases = Vec::new();
    for (k, w) in run.phases.iter().enumerate() {
        phases.push(Phase::of(
            &run,
            w,
            &ids,
            edges.system.get(k).cloned().flatten(),
            edges.system.get(k + 1).cloned().flatten(),
        ));
    }
    let (a, b) = (&phases[0], &phases[1]);
    let mut m = Map::new();
    m.insert("cameras_count".into(), json!(ids.len()));
    m.insert("tiles_open_in_b_count".into(), json!(ids.len()));
    m.insert("exit_ok".into(), json!(run.exit_ok));
    m.insert("exit".into(), json!(run.exit));
    m.insert("run_wall_s".into(), num(run.wall_s));
    m.insert(
        "first_message_after_start_s".into(),
        opt_num(run.first_message_s()),
    );
    // The ratios asked for, measured in this one run.
    let ratio = |x: Option<f64>, y: Option<f64>| opt_num(x.zip(y).map(|(x, y)| x / y));
    m.insert(
        "cpu_ratio_16_tiles_to_0".into(),
        ratio(b.cpu_per_s, a.cpu_per_s),
    );
    let eval_ratio = b.rate_median / a.rate_median;
    m.insert("eval_rate_ratio_16_tiles_to_0".into(), num(eval_ratio));
    m.insert(
        "rss_delta_mb".into(),
        opt_num(
            b.window
                .rss_end_mb
                .zip(a.window.rss_end_mb)
                .map(|(b, a)| b - a),
        ),
    );
    m.insert(
        "peak_rss_delta_mb".into(),
        opt_num(
            b.window
                .peak_rss_mb
                .zip(a.window.peak_rss_mb)
                .map(|(b, a)| b - a),
        ),
    );
    let pictures = b.web("tiles_encoded");
    m.insert(
        "tile_encode_ms_per_picture".into(),
        opt_num(
            b.web("tile_encode_ms")
                .zip(pictures)
                .filter(|(_, n)| *n > 0.0)
                .map(|(ms, n)| ms / n),
        ),
    );
    m.insert(
        "tile_pictures_per_s".into(),
        opt_num(pictures.map(|n| n / b.seconds)),
    );
    m.insert(
        "daemon_extra_cpu_s_per_wall_s_16_tiles".into(),
        opt_num(b.cpu_per_s.zip(a.cpu_per_s).map(|(b, a)| b - a)),
    );
    m.insert(
        "daemon_extra_cpu_ms_per_tile_picture".into(),
        opt_num(
            b.cpu_per_s
                .zip(a.cpu_per_s)
                .zip(pictures)
                .filter(|(_, n)| *n > 0.0)
                .map(|((b_cpu, a_cpu), n)| (b_cpu - a_cpu) * b.seconds / n * 1e3),
        ),
    );
    m.insert(
        "bench_process_cpu_s_per_wall_s_0_tiles".into(),
        opt_num(a.bench_per_s),
    );
    m.insert(
        "bench_process_cpu_s_per_wall_s_16_tiles".into(),
        opt_num(b.bench_per_s),
    );
    m.insert("latency_ms_p99_0_tiles".into(), num(a.p99));
    m.insert("latency_ms_p99_16_tiles".into(), num(b.p99));
    if let Some(c) = phases.get(2) {
        m.insert(
            "cpu_ratio_after_tiles_to_0".into(),
            ratio(c.cpu_per_s, a.cpu_per_s),
        );
        m.insert(
            "eval_rate_ratio_after_tiles_to_0".into(),
            num(c.rate_median / a.rate_median),
        );
        m.insert(
            "rss_delta_after_tiles_mb".into(),
            opt_num(
                c.window
                    .rss_end_mb
                    .zip(a.window.rss_end_mb)
                    .map(|(c, a)| c - a),
            ),
        );
    }
    m.insert(
        "target_eval_rate_ratio_met".into(),
        json!(eval_ratio >= TARGET_EVAL_RATE_RATIO),
    );
    let mut by_phase = Map::new();
    for (k, p) in phases.iter().enumerate() {
        let mut v = p.json();
        if let (Some(obj), Some(Some(t))) = (v.as_object_mut(), edges.tiles.get(k)) {
            obj.insert("tile_requests".into(), t.clone());
        }
        by_phase.insert(PHASES[k].0.into(), v);
    }
    m.insert("phases".into(), Value::Object(by_phase));
    exit_counters(&run.output, &ids).insert(&mut m, "daemon", ids.len());
    m.insert("peak_rss_mb".into(), opt_num(run.peak_rss_mb));
    m.insert("peak_vmhwm_mb".into(), opt_num(run.peak_hwm_mb));
    m.insert("cpu_s".into(), num(run.cpu_s));
    if !run.exit_ok {
        m.insert("daemon_output_tail".into(), json!(tail(&run.output, 3000)));
    }
    Ok(Value::Object(m))
}

/// One phase's numbers.
struct Phase<'a> {
    window: &'a Window,
    seconds: f64,
    rates: Vec<f64>,
    rate_median: f64,
    messages: usize,
    lat: Vec<f64>,
    p99: f64,
    cpu_per_s: Option<f64>,
    bench_per_s: Option<f64>,
    sys0: Option<Value>,
    sys1: Option<Value>,
}

impl<'a> Phase<'a> {
    fn of(
        run: &daemon::Run,
        w: &'a Window,
        ids: &[String],
        sys0: Option<Value>,
        sys1: Option<Value>,
    ) -> Self {
        let seconds = w.seconds();
        let rates = run.rates_hz(ids, w);
        let lat = run.latencies_ms(|m| w.contains(m.at));
        Phase {
            window: w,
            seconds,
            rate_median: median(&rates),
            rates,
            messages: run.msgs.iter().filter(|m| w.contains(m.at)).count(),
            p99: percentile(&lat, 99.0),
            lat,
            cpu_per_s: w.daemon_cpu_s.map(|c| c / seconds),
            bench_per_s: w.bench_cpu_s.map(|c| c / seconds),
            sys0,
            sys1,
        }
    }

    /// The growth of `/api/system`'s `web.KEY` over the phase.
    fn web(&self, key: &str) -> Option<f64> {
        let at = |s: &Option<Value>| s.as_ref()?["web"][key].as_f64();
        Some(at(&self.sys1)? - at(&self.sys0)?)
    }

    /// The growth of `KEY` summed over `/api/system`'s cameras.
    fn cameras_sum(&self, key: &str) -> Option<f64> {
        let at = |s: &Option<Value>| {
            s.as_ref()?["cameras"]
                .as_array()?
                .iter()
                .map(|c| c[key].as_f64())
                .sum::<Option<f64>>()
        };
        Some(at(&self.sys1)? - at(&self.sys0)?)
    }

    fn json(&self) -> Value {
        let w = self.window;
        let watched_at_end = self
            .sys1
            .as_ref()
            .and_then(|s| s["web"]["tiles_watched"].as_u64());
        json!({
            "window_s": num(self.seconds),
            "daemon_cpu_s": opt_num(w.daemon_cpu_s),
            "daemon_cpu_s_per_wall_s": opt_num(self.cpu_per_s),
            "bench_process_cpu_s": opt_num(w.bench_cpu_s),
            "bench_process_cpu_s_per_wall_s": opt_num(self.bench_per_s),
            "rss_end_mb": opt_num(w.rss_end_mb),
            "peak_rss_mb": opt_num(w.peak_rss_mb),
            "messages_count": self.messages,
            "per_camera_rate_hz_min": num(self.rates.iter().copied().fold(f64::INFINITY, f64::min)),
            "per_camera_rate_hz_median": num(self.rate_median),
            "per_camera_rate_hz_max": num(self.rates.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
            "per_camera_rate_hz": self.rates.iter().map(|r| num(*r)).collect::<Vec<_>>(),
            "latency_ms_p50": num(percentile(&self.lat, 50.0)),
            "latency_ms_p99": num(self.p99),
            "latency_ms_max": num(self.lat.last().copied().unwrap_or(f64::NAN)),
            "latency_samples_count": self.lat.len(),
            "tiles_encoded_count": opt_num(self.web("tiles_encoded")),
            "tile_encode_ms": opt_num(self.web("tile_encode_ms")),
            "tiles_dropped_count": opt_num(self.web("tiles_dropped")),
            "tiles_watched_at_end_count": watched_at_end,
            "daemon_evaluated_count": opt_num(self.cameras_sum("evaluated")),
            "daemon_dropped_count": opt_num(self.cameras_sum("dropped")),
            "system_read_at_both_edges": self.sys0.is_some() && self.sys1.is_some(),
        })
    }
}

// ------------------------------------------------------------------ the tiles

/// One tile's counts.
#[derive(Default)]
struct TileCounts {
    ok: u64,
    unchanged: u64,
    other: BTreeMap<u16, u64>,
    failed: u64,
    last_error: Option<String>,
    late: u64,
    bytes: u64,
    request_ms: Vec<f64>,
    first_picture_ms: Option<f64>,
    connections: u64,
}

/// The tile threads of phase B.
struct Clients {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<TileCounts>>,
    started: Instant,
}

impl Clients {
    fn start(port: u16, cameras: &[String]) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let period = Duration::from_secs_f64(1.0 / TILE_FPS);
        let n = cameras.len().max(1) as u32;
        let threads = cameras
            .iter()
            .enumerate()
            .map(|(i, cam)| {
                let (stop, cam) = (stop.clone(), cam.clone());
                let offset = period * i as u32 / n;
                thread::Builder::new()
                    .name(format!("tile-{cam}"))
                    .spawn(move || tile(port, &cam, period, offset, &stop))
                    .expect("spawn a tile thread")
            })
            .collect();
        Clients {
            stop,
            threads,
            started: Instant::now(),
        }
    }

    /// Stops and joins the threads; their counts summed.
    fn stop(self) -> Value {
        self.stop.store(true, Ordering::Release);
        let open_s = self.started.elapsed().as_secs_f64();
        let counts: Vec<TileCounts> = self
            .threads
            .into_iter()
            .map(|t| t.join().unwrap_or_default())
            .collect();
        let sum = |f: fn(&TileCounts) -> u64| counts.iter().map(f).sum::<u64>();
        let (ok, unchanged, failed) = (sum(|c| c.ok), sum(|c| c.unchanged), sum(|c| c.failed));
        let mut other = BTreeMap::new();
        for c in &counts {
            for (s, n) in &c.other {
                *other.entry(s.to_string()).or_insert(0u64) += n;
            }
        }
        let other_n: u64 = other.values().sum();
        let requests = ok + unchanged + other_n + failed;
        let bytes = sum(|c| c.bytes);
        let mut ms: Vec<f64> = counts
            .iter()
            .flat_map(|c| c.request_ms.iter().copied())
            .collect();
        ms.sort_by(f64::total_cmp);
        let first: Vec<f64> = counts.iter().filter_map(|c| c.first_picture_ms).collect();
        json!({
            "tiles_count": counts.len(),
            "open_s": num(open_s),
            "requests_count": requests,
            "requests_per_s": num(requests as f64 / open_s),
            "ok_200_count": ok,
            "unchanged_204_count": unchanged,
            "other_status_count": other_n,
            "other_statuses": other,
            "failed_count": failed,
            "last_error": counts.iter().find_map(|c| c.last_error.clone()),
            "late_count": sum(|c| c.late),
            "connections_count": sum(|c| c.connections),
            "jpeg_bytes": bytes,
            "jpeg_bytes_mean": num(bytes as f64 / ok as f64),
            "pictures_per_s_per_tile": num(ok as f64 / open_s / counts.len().max(1) as f64),
            "request_ms_p50": num(percentile(&ms, 50.0)),
            "request_ms_p99": num(percentile(&ms, 99.0)),
            "request_ms_max": num(ms.last().copied().unwrap_or(f64::NAN)),
            "first_picture_ms_median": num(median(&first)),
            "first_picture_ms_max": num(first.iter().copied().fold(f64::NAN, f64::max)),
        })
    }
}

/// One tile, as a page's: asks for `cam`'s picture every `period` (from `offset`
/// on) with the last sequence number it got, until `stop`.
fn tile(port: u16, cam: &str, period: Duration, offset: Duration, stop: &AtomicBool) -> TileCounts {
    let mut c = TileCounts::default();
    let mut conn = Conn {
        port,
        reader: None,
        body: Vec::new(),
    };
    let opened = Instant::now();
    let mut due = opened + offset;
    let mut seq: Option<u64> = None;
    loop {
        loop {
            if stop.load(Ordering::Acquire) {
                return c;
            }
            let now = Instant::now();
            if now >= due {
                break;
            }
            thread::sleep((due - now).min(Duration::from_millis(50)));
        }
        let path = match seq {
            Some(s) => format!("/api/cameras/{cam}/live.jpg?after={s}"),
            None => format!("/api/cameras/{cam}/live.jpg"),
        };
        let t0 = Instant::now();
        match conn.get(&path, &mut c.connections) {
            Ok(r) => {
                c.request_ms.push(t0.elapsed().as_secs_f64() * 1e3);
                match r.status {
                    200 => {
                        c.ok += 1;
                        c.bytes += r.body_len as u64;
                        if r.seq.is_some() {
                            seq = r.seq;
                        }
                        if c.first_picture_ms.is_none() {
                            c.first_picture_ms = Some(opened.elapsed().as_secs_f64() * 1e3);
                        }
                    }
                    204 => c.unchanged += 1,
                    s => *c.other.entry(s).or_insert(0) += 1,
                }
            }
            Err(e) => {
                c.failed += 1;
                c.last_error = Some(e);
            }
        }
        due += period;
        let now = Instant::now();
        if due < now {
            due = now;
            c.late += 1;
        }
    }
}

/// One answer: status, `x-frame-seq`, body length.
struct Answer {
    status: u16,
    seq: Option<u64>,
    body_len: usize,
}

/// A keep-alive HTTP/1.1 connection to the daemon (made again when it breaks).
struct Conn {
    port: u16,
    reader: Option<BufReader<TcpStream>>,
    body: Vec<u8>,
}

impl Conn {
    /// `GET path`; on a reused connection that fails, once more on a new one.
    fn get(&mut self, path: &str, connections: &mut u64) -> Result<Answer, String> {
        let reused = self.reader.is_some();
        match self.try_get(path, connections) {
            Err(_) if reused => {
                self.reader = None;
                self.try_get(path, connections)
            }
            r => r,
        }
    }

    fn try_get(&mut self, path: &str, connections: &mut u64) -> Result<Answer, String> {
        let result = self.exchange(path, connections);
        if result.is_err() {
            self.reader = None;
        }
        result
    }

    fn exchange(&mut self, path: &str, connections: &mut u64) -> Result<Answer, String> {
        if self.reader.is_none() {
            let s = TcpStream::connect(("127.0.0.1", self.port)).map_err(|e| e.to_string())?;
            s.set_read_timeout(Some(REQUEST_TIMEOUT))
                .map_err(|e| e.to_string())?;
            s.set_nodelay(true).map_err(|e| e.to_string())?;
            *connections += 1;
            self.reader = Some(BufReader::new(s));
        }
        let port = self.port;
        let reader = self.reader.as_mut().ok_or("no connection")?;
        let req = format!("GET {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n");
        reader
            .get_mut()
            .write_all(req.as_bytes())
            .map_err(|e| e.to_string())?;
        let mut line = String::new();
        let read_line = |r: &mut BufReader<TcpStream>, line: &mut String| {
            line.clear();
            match r.read_line(line) {
                Ok(0) => Err("connection closed".to_string()),
                Ok(_) => Ok(()),
                Err(e) => Err(e.to_string()),
            }
        };
        read_line(reader, &mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| format!("bad status line {line:?}"))?;
        let (mut length, mut seq, mut close, mut chunked) = (None, None, false, false);
        loop {
            read_line(reader, &mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            let Some((k, v)) = l.split_once(':') else {
                continue;
            };
            let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
            match k.as_str() {
                "content-length" => length = v.parse::<usize>().ok(),
                "x-frame-seq" => seq = v.parse().ok(),
                "connection" => close = v.eq_ignore_ascii_case("close"),
                "transfer-encoding" => chunked = true,
                _ => {}
            }
        }
        let body_len = match (status, length) {
            (204 | 304, _) => 0,
            (_, Some(n)) if !chunked => {
                self.body.resize(n, 0);
                reader
                    .read_exact(&mut self.body)
                    .map_err(|e| e.to_string())?;
                n
            }
            // No length: the body runs to the connection's end.
            _ => {
                self.body.clear();
                let n = reader
                    .read_to_end(&mut self.body)
                    .map_err(|e| e.to_string())?;
                close = true;
                n
            }
        };
        if close {
            self.reader = None;
        }
        Ok(Answer {
            status,
            seq,
            body_len,
        })
    }
}
