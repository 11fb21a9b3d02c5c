//! Soak: the RTSP server goes away and comes back, again and again, while the real
//! `ocellus run` watches two cameras on it (one over UDP, one over TCP, each on a
//! mount that accepts only its transport) with the real YOLOX-nano and publishes to a
//! private mosquitto.
//!
//! The server is a separate process (this test binary run again as
//! `soak::rtsp_server_process`, the gst-rtsp-server helper of `tests/it/common/rtsp.rs`), so that
//! it can be stopped both ways: a clean stop (the server closes every connection and
//! session, then the process exits) on odd cycles, SIGKILL on even ones (no RTSP
//! teardown: the kernel closes the sockets, the UDP streams just stop).
//!
//! Each cycle: stop the server, wait until both cameras say `reconnecting`, keep it
//! down a moment, start it again on the same port, time until each camera says
//! `online` (and its frames reach the model again), then read the daemon's threads,
//! file descriptors and RSS from /proc. Checked at the end:
//! * every reconnect came within [`RECONNECT_WITHIN`] of the server's return;
//! * threads, descriptors and RSS after the last cycle are within [`GROWTH`] of their
//!   values after the first (the first cycle is the warm-up: its allocations, thread
//!   pools and caches are made once);
//! * the flapping (at least two minutes: more cycles run when 20 take less) changed each
//!   camera's status every cycle but raised no alert: the picture never changed, so no
//!   event is justified, and the person query's state never left ON.
//!
//! The daemon runs with the allocator settings of `systemd/ocellus.service` (its
//! `MALLOC_*` lines; the daemon sets the same itself at start-up): with glibc's
//! defaults the frame buffers of every rebuilt pipeline stay resident in per-thread
//! arenas (measured: RSS +35 % over 20 cycles, +41 % over 60, flattening), so with
//! `OCELLUS_MALLOC=glibc` (what `OCELLUS_SOAK_MALLOC=plain` sets) this test fails.
//!
//! Knobs (for `scripts/soak.sh`, which runs this for hours): `OCELLUS_SOAK_CYCLES`
//! (default 20; more when they take less than `OCELLUS_SOAK_FLAP_SECONDS`, default
//! 120: the two minutes of flapping), `OCELLUS_SOAK_SECONDS` (cycle until this
//! much time has passed, at least 2 cycles; overrides both), `OCELLUS_SOAK_DOWN_MS`
//! (how long the server stays down once both cameras noticed, default 1000),
//! `OCELLUS_SOAK_UP_MS` (how long the streams flow before the sample and the next
//! stop, default 1000), `OCELLUS_SOAK_JSON` (a file to write the measurements to; they
//! are also printed as one `SOAK-JSON {...}` line on stderr) and
//! `OCELLUS_SOAK_MALLOC=plain` (glibc's defaults instead of the unit's, to measure the
//! difference).

use crate::common;

use std::io::{BufRead, BufReader, Write};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use common::*;
use serde_json::json;

/// The bound: a camera is back online within 5 s of its server's return.
/// With `reconnect_max = "2s"` the backoff alone leaves at least 3 s for the RTSP
/// handshake, the server's first key frame and one decoded frame.
const RECONNECT_WITHIN: Duration = Duration::from_secs(5);
/// The bound on growth over the soak: threads, descriptors and RSS after the
/// last cycle within 5 % of their values after the first.
const GROWTH: f64 = 0.05;
/// Time for the daemon to load the model and show the first answers.
const START: Duration = Duration::from_secs(60);
/// Time for both cameras to notice the server is gone. Both stops close the RTSP
/// connection (measured: 7-35 ms, UDP too); were that missed, a UDP camera would
/// notice by its `frame_timeout` (3 s here). Room for a loaded machine.
const NOTICE: Duration = Duration::from_secs(20);
/// How long a server process may take to listen, or to exit after a clean stop.
const SERVER_TIMEOUT: Duration = Duration::from_secs(20);

const CAMS: [(&str, &str); 2] = [("cam_udp", "udp"), ("cam_tcp", "tcp")];

// ------------------------------------------------------- the server process

const SERVER_ENV: &str = "OCELLUS_SOAK_SERVER_PORT";
const READY: &str = "ocellus-soak-server: ready";
const FAILED: &str = "ocellus-soak-server: failed:";

/// The astronaut photo as a live stream on `/udp` (UDP only) and `/tcp` (TCP only).
fn mounts() -> Vec<RtspMount> {
    let launch = photo_launch_line(&media("astronaut.png"));
    vec![
        RtspMount {
            path: "/udp".into(),
            launch: launch.clone(),
            protocols: RTSPLowerTrans::UDP,
        },
        RtspMount {
            path: "/tcp".into(),
            launch,
            protocols: RTSPLowerTrans::TCP,
        },
    ]
}

/// Not a test: the RTSP server process the soak starts, stops and kills (it does
/// nothing unless started by the soak with `OCELLUS_SOAK_SERVER_PORT`). Serves
/// [`mounts`] on that port, says [`READY`] on stdout, and stops cleanly when its
/// stdin says so or closes.
#[test]
#[ignore = "the RTSP server process of `rtsp_server_stopped_and_killed_20_times`"]
fn rtsp_server_process() {
    let Some(port) = std::env::var(SERVER_ENV)
        .ok()
        .and_then(|p| p.parse::<u16>().ok())
    else {
        return;
    };
    let mut server = match RtspServer::start(port, mounts()) {
        Ok(s) => s,
        Err(e) => {
            println!("{FAILED} {e}");
            return;
        }
    };
    println!("{READY}");
    let mut line = String::new();
    let _ = std::io::stdin().read_line(&mut line);
    server.stop();
}

/// One run of [`rtsp_server_process`].
struct ServerProcess {
    child: KillOnDrop,
    stdin: Option<ChildStdin>,
}

impl ServerProcess {
    /// Starts the server on `port` and waits until it listens (retrying while the
    /// port is still taken); returns it with the moment it was ready.
    fn start(port: u16) -> (Self, Instant) {
        let deadline = Instant::now() + SERVER_TIMEOUT;
        let mut tries = Vec::new();
        loop {
            match Self::try_start(port) {
                Ok(started) => return started,
                Err(e) if Instant::now() < deadline => {
                    tries.push(e);
                    std::thread::sleep(Duration::from_millis(200));
                }
                Err(e) => panic!(
                    "the RTSP server did not start on port {port}: {e}\nearlier tries: {tries:?}"
                ),
            }
        }
    }

    fn try_start(port: u16) -> Result<(Self, Instant), String> {
        let mut child = rerun_this_test(module_path!(), "rtsp_server_process")
            .args(["--ignored", "--nocapture", "-q"])
            .env(SERVER_ENV, port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot run the server process: {e}"))?;
        let stdin = child.stdin.take();
        let stdout = child.stdout.take().ok_or("no stdout")?;
        let child = KillOnDrop(child);
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                eprintln!("[rtsp server {port}] {line}");
                if line.starts_with(READY) || line.starts_with(FAILED) {
                    let _ = tx.send(line);
                }
            }
        });
        match rx.recv_timeout(SERVER_TIMEOUT) {
            Ok(line) if line.starts_with(READY) => Ok((Self { child, stdin }, Instant::now())),
            Ok(line) => Err(line),
            Err(_) => Err(format!("no {READY:?} within {SERVER_TIMEOUT:?}")),
        }
    }

    /// A clean stop: the server closes every connection and session, and exits 0.
    fn stop_cleanly(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"stop\n");
        }
        let status = wait_or_kill(&mut self.child.0, SERVER_TIMEOUT);
        assert!(
            status.is_some_and(|s| s.success()),
            "the RTSP server did not stop cleanly within {SERVER_TIMEOUT:?}: {status:?}"
        );
    }

    /// SIGKILL: the kernel closes its sockets, the clients are told nothing.
    fn kill_hard(mut self) {
        let child: &mut Child = &mut self.child.0;
        let _ = child.kill();
        let status = child.wait().expect("wait for the killed RTSP server");
        assert_eq!(status.signal(), Some(9), "the RTSP server was not killed");
    }
}

// ------------------------------------------------------------ measurements

/// The daemon's threads, open descriptors and resident memory.
#[derive(Clone, Copy, Debug)]
struct Sample {
    threads: u64,
    fds: u64,
    rss_kib: u64,
    /// The anonymous part of the RSS (heap, thread stacks), for the report.
    anon_kib: u64,
}

fn sample(pid: u32) -> Sample {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("cannot read /proc/{pid}/status: {e}"));
    let field = |name: &str| -> u64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {name} in /proc/{pid}/status"))
    };
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap_or_else(|e| panic!("cannot list /proc/{pid}/fd: {e}"))
        .count() as u64;
    Sample {
        threads: field("Threads:"),
        fds,
        rss_kib: field("VmRSS:"),
        anon_kib: field("RssAnon:"),
    }
}

fn sample_json(s: &Sample) -> serde_json::Value {
    json!({"threads": s.threads, "fds": s.fds, "rss_kib": s.rss_kib, "rss_anon_kib": s.anon_kib})
}

/// `(last - first) / first`.
fn growth(first: u64, last: u64) -> f64 {
    (last as f64 - first as f64) / (first as f64).max(1.0)
}

/// Stop kinds alternate: odd cycles stop cleanly, even ones kill.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Stop {
    Clean,
    Kill,
}

struct Cycle {
    stop: Stop,
    /// Per camera, in `CAMS` order: from the server's return to `online`.
    reconnect: Vec<Duration>,
    /// From the stop to the last camera's `reconnecting`.
    noticed: Duration,
    after: Sample,
}

/// The allocator settings of the systemd unit (its `Environment=MALLOC_...` lines):
/// the daemon runs here with the allocator it is deployed with.
fn unit_malloc_env() -> Vec<(String, String)> {
    if std::env::var("OCELLUS_SOAK_MALLOC").is_ok_and(|v| v == "plain") {
        // The daemon sets the unit's values itself unless told not to (src/main.rs).
        return vec![("OCELLUS_MALLOC".into(), "glibc".into())];
    }
    let unit = Path::new(env!("CARGO_MANIFEST_DIR")).join("systemd/ocellus.service");
    let text = std::fs::read_to_string(&unit)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", unit.display()));
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("Environment="))
        .filter(|kv| kv.starts_with("MALLOC_"))
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

// ------------------------------------------------------------------ daemon

fn config(port: u16) -> String {
    let mut toml = format!(
        "{ENGINE_ONE_THREAD}{}",
        yolox_model(&yolox_dir(), "threads = 1")
    );
    for (cam, transport) in CAMS {
        // A short frame_timeout notices a killed UDP server soon; reconnect_max caps
        // the backoff well inside RECONNECT_WITHIN. The alert rules: an answer must
        // hold 1 s (and 2 frames) and a state holds 5 s after a change.
        toml.push_str(&format!(
            "[[cameras]]\nid = \"{cam}\"\nurl = \"rtsp://127.0.0.1:{port}/{transport}\"\n\
             transport = \"{transport}\"\nsample_fps = 2\ndecoder_threads = 1\n\
             frame_timeout = \"3s\"\nreconnect_max = \"2s\"\n\n{}",
            person_query(
                "on = 0.6\noff = 0.4\nmin_frames = 2\nmin_duration = \"1s\"\ncooldown = \"5s\""
            )
        ));
    }
    toml
}

/// Everything but the per-frame detections (counted instead), then the daemon output.
fn report(col: &MqttCollector, daemon: &Daemon) -> String {
    let mut out = String::from("MQTT (detections counted, not listed):\n");
    let mut dets = 0usize;
    for m in col.messages() {
        if m.topic.ends_with("/detections") {
            dets += 1;
        } else {
            out.push_str(&format!("  {} {}\n", m.topic, m.text()));
        }
    }
    out.push_str(&format!("  detections: {dets} messages\ndaemon output:\n"));
    out.push_str(&daemon.output());
    out
}

/// The first message on `topic` with `payload` at index `from` or later.
fn first_after<'a>(msgs: &'a [Msg], from: usize, topic: &str, payload: &str) -> Option<&'a Msg> {
    msgs.iter()
        .skip(from)
        .find(|m| m.topic == topic && m.payload == payload.as_bytes())
}

/// Waits until every camera has `payload` on its status topic after `from`; returns
/// when each did (in `CAMS` order).
fn wait_status(
    col: &MqttCollector,
    daemon: &Daemon,
    from: usize,
    payload: &str,
    timeout: Duration,
    what: &str,
) -> Vec<Instant> {
    let all = |m: &[Msg]| {
        CAMS.iter()
            .all(|(cam, _)| first_after(m, from, &cam_status(cam), payload).is_some())
    };
    if !col.wait_for(all, timeout) {
        panic!(
            "{what}: not every camera said {payload} within {timeout:?}\n{}",
            report(col, daemon)
        );
    }
    let msgs = col.messages();
    CAMS.iter()
        .map(|(cam, _)| {
            first_after(&msgs, from, &cam_status(cam), payload)
                .map(|m| m.at)
                .unwrap_or_else(Instant::now)
        })
        .collect()
}

/// Waits until every camera has published a detections message after its first
/// `online` after `from`: frames reach the model again.
fn wait_frames(col: &MqttCollector, daemon: &Daemon, from: usize, what: &str) {
    let flowing = |m: &[Msg]| {
        CAMS.iter().all(|(cam, _)| {
            let online = m
                .iter()
                .enumerate()
                .skip(from)
                .find(|(_, x)| x.topic == cam_status(cam) && x.payload == b"online");
            online.is_some_and(|(at, _)| m[at..].iter().any(|x| x.topic == detections_topic(cam)))
        })
    };
    if !col.wait_for(flowing, START) {
        panic!(
            "{what}: no detections after online within {START:?}\n{}",
            report(col, daemon)
        );
    }
}

// -------------------------------------------------------------------- test

#[test]
fn rtsp_server_stopped_and_killed_20_times() {
    let started = Instant::now();
    let seconds = env_u64("OCELLUS_SOAK_SECONDS").map(Duration::from_secs);
    let cycles = env_u64("OCELLUS_SOAK_CYCLES").unwrap_or(20).max(2);
    let down = Duration::from_millis(env_u64("OCELLUS_SOAK_DOWN_MS").unwrap_or(1000));
    let up = Duration::from_millis(env_u64("OCELLUS_SOAK_UP_MS").unwrap_or(1000));
    let flap = Duration::from_secs(env_u64("OCELLUS_SOAK_FLAP_SECONDS").unwrap_or(120));

    let broker = Mosquitto::start();
    let col = MqttCollector::new(&broker.url());
    let port = free_port();
    let (mut server, _) = ServerProcess::start(port);
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), &config(port));
    let malloc = unit_malloc_env();
    let env: Vec<(&str, &str)> = malloc
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut daemon = Daemon::start_with_env(&cfg, &["--mqtt-url", &broker.url()], &env);
    let pid = daemon.pid();

    wait_status(&col, &daemon, 0, "online", START, "first start");
    let person_on = |m: &[Msg]| {
        CAMS.iter().all(|(cam, _)| {
            m.iter()
                .any(|x| x.topic == state_topic(cam, "person") && x.payload == b"ON")
        })
    };
    assert!(
        col.wait_for(person_on, START),
        "the person query did not turn ON on both cameras\n{}",
        report(&col, &daemon)
    );
    std::thread::sleep(up);
    let initial = sample(pid);
    let flapping_since = Instant::now();

    let mut done: Vec<Cycle> = Vec::new();
    loop {
        let n = done.len() as u64 + 1;
        let more = match seconds {
            Some(s) => n <= 2 || started.elapsed() < s,
            None => n <= cycles || flapping_since.elapsed() < flap,
        };
        if !more {
            break;
        }
        let stop = if n % 2 == 1 { Stop::Clean } else { Stop::Kill };
        let mark = col.len();
        let stopped_at = Instant::now();
        match stop {
            Stop::Clean => server.stop_cleanly(),
            Stop::Kill => server.kill_hard(),
        }
        let noticed = wait_status(
            &col,
            &daemon,
            mark,
            "reconnecting",
            NOTICE,
            &format!("cycle {n} ({stop:?})"),
        );
        let noticed = noticed
            .iter()
            .map(|t| t.saturating_duration_since(stopped_at))
            .max()
            .unwrap_or_default();
        std::thread::sleep(down);
        assert!(
            daemon.is_running(),
            "cycle {n}: the daemon exited while the server was away\n{}",
            report(&col, &daemon)
        );

        let mark = col.len();
        let (next, back_at) = ServerProcess::start(port);
        server = next;
        let online = wait_status(
            &col,
            &daemon,
            mark,
            "online",
            START,
            &format!("cycle {n} ({stop:?}) reconnect"),
        );
        let reconnect: Vec<Duration> = online
            .iter()
            .map(|t| t.saturating_duration_since(back_at))
            .collect();
        wait_frames(&col, &daemon, mark, &format!("cycle {n} ({stop:?})"));
        std::thread::sleep(up);
        let after = sample(pid);
        eprintln!(
            "[soak] cycle {n} {stop:?}: noticed in {noticed:.1?}, reconnect {:?}, {after:?}",
            reconnect
                .iter()
                .map(|d| format!("{:.2}s", d.as_secs_f64()))
                .collect::<Vec<_>>()
        );
        done.push(Cycle {
            stop,
            reconnect,
            noticed,
            after,
        });
    }
    let flapped_for = flapping_since.elapsed();
    let last_sample = done.last().map(|c| c.after).expect("at least one cycle");
    let first = done[0].after;

    // What the flapping published.
    let msgs = col.messages();
    let count = |topic: &str, payload: Option<&str>| {
        msgs.iter()
            .filter(|m| m.topic == topic && payload.is_none_or(|p| m.payload == p.as_bytes()))
            .count()
    };
    let per_cam: Vec<_> = CAMS
        .iter()
        .map(|(cam, transport)| {
            json!({
                "camera": cam,
                "transport": transport,
                "online": count(&cam_status(cam), Some("online")),
                "reconnecting": count(&cam_status(cam), Some("reconnecting")),
                "events": count(&events_topic(cam), None),
                "person_states": col.payloads(&state_topic(cam, "person")),
            })
        })
        .collect();
    let secs = |d: &Duration| (d.as_secs_f64() * 1000.0).round() / 1000.0;
    let summary = json!({
        "cycles": done.len(),
        "malloc_env": malloc.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        "down_ms": down.as_millis() as u64,
        "up_ms": up.as_millis() as u64,
        "flapping_s": secs(&flapped_for),
        "reconnect_s": done.iter().map(|c| json!({
            "cycle_stop": format!("{:?}", c.stop),
            "noticed": secs(&c.noticed),
            "udp": secs(&c.reconnect[0]),
            "tcp": secs(&c.reconnect[1]),
        })).collect::<Vec<_>>(),
        "reconnect_max_s": done.iter().flat_map(|c| c.reconnect.iter()).map(secs).fold(0.0, f64::max),
        "initial": sample_json(&initial),
        "after_first": sample_json(&first),
        "after_last": sample_json(&last_sample),
        "rss_kib_per_cycle": done.iter().map(|c| c.after.rss_kib).collect::<Vec<_>>(),
        "growth": {
            "threads": growth(first.threads, last_sample.threads),
            "fds": growth(first.fds, last_sample.fds),
            "rss": growth(first.rss_kib, last_sample.rss_kib),
        },
        "cameras": per_cam,
        "elapsed_s": secs(&started.elapsed()),
    });
    eprintln!("SOAK-JSON {summary}");
    if let Some(path) = std::env::var_os("OCELLUS_SOAK_JSON") {
        std::fs::write(&path, format!("{summary:#}\n")).expect("write OCELLUS_SOAK_JSON");
    }

    // Every reconnect within the bound of the server's return.
    for (i, c) in done.iter().enumerate() {
        for ((cam, _), d) in CAMS.iter().zip(&c.reconnect) {
            assert!(
                *d <= RECONNECT_WITHIN,
                "cycle {} ({:?}): {cam} came back {d:.2?} after the server, over \
                 {RECONNECT_WITHIN:?}\n{summary:#}\n{}",
                i + 1,
                c.stop,
                report(&col, &daemon)
            );
        }
    }
    // No growth after the warm-up cycle.
    for (what, a, b) in [
        ("threads", first.threads, last_sample.threads),
        ("file descriptors", first.fds, last_sample.fds),
        ("RSS (KiB)", first.rss_kib, last_sample.rss_kib),
    ] {
        assert!(
            growth(a, b).abs() <= GROWTH,
            "{what}: {a} after the first cycle, {b} after the last ({:+.1} %), over {:.0} %\n{summary:#}",
            growth(a, b) * 100.0,
            GROWTH * 100.0
        );
    }
    // The flapping: every cycle changed each camera's status (checked as it went:
    // reconnecting, then online); the picture never changed, so no event and no
    // flicker of the person query.
    for (cam, _) in CAMS {
        let events = col.payloads(&events_topic(cam));
        assert!(
            events.is_empty(),
            "{cam}: the flapping raised {} event(s) on a scene that never changed: {events:?}\n{}",
            events.len(),
            report(&col, &daemon)
        );
        assert_eq!(
            col.payloads(&state_topic(cam, "person")),
            vec!["ON"],
            "{cam}: the person query's state flickered\n{}",
            report(&col, &daemon)
        );
        assert!(
            count(&cam_status(cam), Some("online")) > done.len(),
            "{cam}: fewer online statuses than cycles\n{}",
            report(&col, &daemon)
        );
    }

    let status = daemon.stop();
    assert!(
        status.success(),
        "daemon exit {status}\n{}",
        report(&col, &daemon)
    );
    server.stop_cleanly();
    eprintln!("[soak] {} cycles in {:.1?}", done.len(), started.elapsed());
}
