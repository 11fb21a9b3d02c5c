//! End-to-end tests of `ocellus run` against a real mosquitto broker, with real clips
//! made by GStreamer at test time and the real YOLOX-nano model: the MQTT contract
//! (availability, retained state, events, detections), the last will, clean shutdown
//! (also once the reader of its log has gone), a broker outage, a broken camera beside
//! a good one, a broker that is not there yet when the daemon starts, and a broker
//! behind a slow link. A small TCP proxy (`GatedProxy` in `common`: no MQTT logic, it
//! only forwards bytes) sits between the daemon and the broker where a test needs to
//! hold the daemon back or add latency.

use crate::common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use common::*;

const CAM: &str = "yard";

// ------------------------------------------------------------------ helpers

/// `[mqtt]` with a unique client id (the URL is overridden by `--mqtt-url`).
fn mqtt_section(client_id: &str, keep_alive: &str) -> String {
    format!(
        "[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\nclient_id = {}\nkeep_alive = {}\n\n",
        toml_str(client_id),
        toml_str(keep_alive)
    )
}

fn camera(id: &str, url: &Path, sample_fps: f64, repeat: bool) -> String {
    format!(
        "[[cameras]]\nrealtime = false\nid = {}\nurl = {}\nsample_fps = {sample_fps}\nrepeat = {repeat}\n\n{}\
         [[cameras.queries]]\nid = \"cups\"\nask = \"how many cups?\"\nkind = \"count\"\n\
         model = \"coco\"\nlabel = \"cup\"\n\n",
        toml_str(id),
        toml_path(url),
        person_query("min_frames = 2")
    )
}

/// astronaut 2 s → coffee 2 s, as `DIR/NAME`.
fn astronaut_coffee(dir: &Path, name: &str) -> PathBuf {
    media_clip(dir, name, &[("astronaut.png", 2.0), ("coffee.png", 2.0)])
}

/// The config of a daemon with its own client id (`role` in it) and `keep_alive`,
/// the real model, and camera CAM looping over `clip` at `sample_fps`; returns the
/// client id and the config's path.
fn looping_config(
    dir: &Path,
    role: &str,
    keep_alive: &str,
    clip: &Path,
    sample_fps: f64,
) -> (String, PathBuf) {
    let id = client_id(role);
    let cfg = write_config(
        dir,
        &format!(
            "{}{}{}",
            mqtt_section(&id, keep_alive),
            engine_and_yolox(),
            camera(CAM, clip, sample_fps, true)
        ),
    );
    (id, cfg)
}

/// A private broker with a subscriber to everything on it, and the config of a
/// daemon (own client id, keep-alive 5 s) whose camera CAM loops over astronaut →
/// coffee at 2 fps.
struct Looping {
    broker: Mosquitto,
    col: MqttCollector,
    /// The daemon's MQTT client id (broker log lines name it).
    id: String,
    cfg: PathBuf,
    _dir: tempfile::TempDir,
}

impl Looping {
    fn new(role: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let clip = astronaut_coffee(dir.path(), "loop.mkv");
        let broker = Mosquitto::start();
        let col = MqttCollector::new(&broker.url());
        let (id, cfg) = looping_config(dir.path(), role, "5s", &clip, 2.0);
        Looping {
            broker,
            col,
            id,
            cfg,
            _dir: dir,
        }
    }

    /// `ocellus run` with this config against this broker, once it is online with
    /// a state (see `expect_online`).
    fn start_online(&self) -> Daemon {
        let daemon = Daemon::start(&self.cfg, &["--mqtt-url", &self.broker.url()]);
        expect_online(&self.col, &daemon);
        daemon
    }
}

/// The daemon and camera CAM are online and CAM's person query has a state.
fn online_with_state(m: &[Msg]) -> bool {
    m.iter()
        .any(|m| m.topic == status_topic() && m.payload == b"online")
        && m.iter()
            .any(|m| m.topic == cam_status(CAM) && m.payload == b"online")
        && m.iter().any(|m| m.topic == state_topic(CAM, "person"))
}

/// The daemon said `online` after `since` (it is back after an outage).
fn back_online_since(since: Instant) -> impl Fn(&[Msg]) -> bool {
    move |m| {
        m.iter()
            .any(|m| m.at > since && m.topic == status_topic() && m.payload == b"online")
    }
}

/// Waits up to 60 s for `online_with_state`; panics with what arrived and the
/// daemon's output otherwise.
fn expect_online(col: &MqttCollector, daemon: &Daemon) {
    assert!(
        col.wait_for(online_with_state, Duration::from_secs(60)),
        "daemon never came online with a state; got:\n{}\ndaemon output:\n{}",
        col.dump(),
        daemon.output()
    );
}

/// Camera CAM and the daemon say `offline` (within 10 s).
fn expect_offline(col: &MqttCollector) {
    assert!(
        wait_last(
            col,
            &[(&status_topic(), "offline"), (&cam_status(CAM), "offline")],
            Duration::from_secs(10)
        ),
        "after SIGTERM both statuses should be offline; got:\n{}",
        col.dump()
    );
}

/// SIGTERM: exit 0 within 30 s, and then camera CAM and the daemon `offline`.
fn stop_cleanly(daemon: &mut Daemon, col: &MqttCollector) {
    let status = daemon.stop_within(Duration::from_secs(30));
    assert!(
        status.success(),
        "SIGTERM should exit 0, got {status}; output:\n{}",
        daemon.output()
    );
    expect_offline(col);
}

/// The broker's log shows how the daemon's connection `id` ended: with a DISCONNECT
/// (`clean`: the daemon said goodbye, the offline is its own) or by the socket
/// closing without one (the broker then publishes the last will).
fn assert_connection_end(broker: &Mosquitto, id: &str, clean: bool) {
    let log = broker.log();
    // mosquitto 2.0 logs "Client X disconnected." for a DISCONNECT, and "Client X
    // closed its connection." or "Client X disconnected due to <error>." (a socket
    // killed mid-packet can read as "out of memory") when the socket ended without one.
    let disconnected = log.contains(&format!("Client {id} disconnected."));
    let closed = log.contains(&format!("Client {id} closed its connection"))
        || log.contains(&format!("Client {id} disconnected due to"));
    assert!(
        disconnected == clean && closed != clean,
        "the connection of {id} should end {} a DISCONNECT; broker log:\n{log}",
        if clean { "with" } else { "without" }
    );
}

/// No panic and no GLib CRITICAL in the daemon's log (colour codes removed).
fn assert_clean_log(log: &str) {
    assert_no_panic("the daemon's log", log);
    assert_no_critical("the daemon's log", log);
}

/// A new subscriber to everything on `url`; panics unless the latest of its
/// messages match `want` (retained ones, as nobody publishes any more) within 10 s.
fn late_subscriber(url: &str, want: &[(&str, &str)]) -> MqttCollector {
    let late = MqttCollector::new(url);
    assert!(
        wait_last(&late, want, Duration::from_secs(10)),
        "a new subscriber should get the retained {want:?}; got:\n{}",
        late.dump()
    );
    late
}

fn last_payload(c: &MqttCollector, topic: &str) -> Option<String> {
    c.last(topic).map(|m| m.text())
}

/// Waits until the latest message on every (topic, payload) pair matches.
fn wait_last(c: &MqttCollector, want: &[(&str, &str)], timeout: Duration) -> bool {
    c.wait_for(
        |msgs| {
            want.iter().all(|(topic, payload)| {
                msgs.iter()
                    .rev()
                    .find(|m| m.topic == *topic)
                    .is_some_and(|m| m.payload == payload.as_bytes())
            })
        },
        timeout,
    )
}

/// Every event of `cam` (JSON), in arrival order, with its arrival time.
fn events(c: &MqttCollector, cam: &str) -> Vec<(Instant, Value, String)> {
    let topic = events_topic(cam);
    c.messages()
        .into_iter()
        .filter(|m| m.topic == topic)
        .map(|m| (m.at, m.json(), m.text()))
        .collect()
}

/// Checks an event against the contract: every field, the camera and its types.
fn check_event_fields(e: &Value, cam: &str) {
    for key in [
        "id", "camera", "query", "from", "to", "score", "time", "pts", "seq", "model", "region",
    ] {
        assert!(e.get(key).is_some(), "event lacks {key:?}: {e}");
    }
    assert_eq!(e["camera"], cam, "{e}");
    assert_eq!(e["model"], "coco", "{e}");
    assert!(e["id"].as_str().is_some_and(|s| !s.is_empty()), "{e}");
    assert!(
        e["score"].is_number() && e["pts"].is_number() && e["seq"].is_u64(),
        "{e}"
    );
    let t = e["time"]
        .as_str()
        .unwrap_or_else(|| panic!("time is not a string: {e}"));
    humantime::parse_rfc3339(t)
        .unwrap_or_else(|err| panic!("time {t:?} is not RFC 3339 ({err}): {e}"));
    assert_ne!(e["from"], e["to"], "an event must change something: {e}");
    assert!(
        !e["from"].is_null(),
        "events are only for changes between two known states: {e}"
    );
}

fn event_time(e: &Value) -> SystemTime {
    humantime::parse_rfc3339(e["time"].as_str().unwrap()).unwrap()
}

fn labels(det: &Value) -> Vec<String> {
    det["detections"]
        .as_array()
        .unwrap_or_else(|| panic!("detections message without a detections array: {det}"))
        .iter()
        .map(|d| d["label"].as_str().unwrap_or_default().to_string())
        .collect()
}

// -------------------------------------------------------------------- tests

/// astronaut 3 s → coffee 3 s → astronaut 3 s through the daemon: availability,
/// retained state ON/OFF/ON, events, detections, counts, exit at the end of the file.
#[test]
fn file_camera_end_to_end() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(
        dir.path(),
        "three.mkv",
        &[
            ("astronaut.png", 3.0),
            ("coffee.png", 3.0),
            ("astronaut.png", 3.0),
        ],
    );
    let broker = Mosquitto::start();
    let col = MqttCollector::new(&broker.url());
    let cfg = write_config(
        dir.path(),
        &format!("{}{}", engine_and_yolox(), camera(CAM, &clip, 2.0, false)),
    );
    let mut daemon = Daemon::start(&cfg, &["--mqtt-url", &broker.url()]);
    let status = daemon.expect_exit(Duration::from_secs(120));
    assert!(
        status.success(),
        "daemon exited with {status} at the end of the file; output:\n{}",
        daemon.output()
    );
    assert!(
        wait_last(
            &col,
            &[(&status_topic(), "offline"), (&cam_status(CAM), "offline")],
            Duration::from_secs(10)
        ),
        "after the exit, ocellus/status and ocellus/{CAM}/status should be offline; got:\n{}",
        col.dump()
    );
    let dump = col.dump();

    // Availability: online first, offline last.
    let daemon_status = col.payloads(&status_topic());
    assert_eq!(
        daemon_status.first().map(String::as_str),
        Some("online"),
        "{dump}"
    );
    assert_eq!(
        daemon_status.last().map(String::as_str),
        Some("offline"),
        "{dump}"
    );
    let camera_status = col.payloads(&cam_status(CAM));
    assert!(
        camera_status.iter().any(|s| s == "online"),
        "camera never online:\n{dump}"
    );
    assert_eq!(
        camera_status.last().map(String::as_str),
        Some("offline"),
        "{dump}"
    );

    // Query states, in the order they were published (by presentation time: cups 0 at
    // 0.0 s, person ON at 0.5 s (min_frames 2), cups 1 at 3.0 s, person OFF at 3.5 s,
    // cups 0 at 6.0 s, person ON at 6.5 s).
    let person = state_topic(CAM, "person");
    let cups = state_topic(CAM, "cups");
    assert_eq!(
        col.payloads(&person),
        vec!["ON", "OFF", "ON"],
        "person states:\n{dump}"
    );
    assert_eq!(
        col.payloads(&cups),
        vec!["0", "1", "0"],
        "cups states:\n{dump}"
    );
    let states: Vec<String> = col
        .messages()
        .iter()
        .filter(|m| m.topic == person || m.topic == cups)
        .map(|m| {
            format!(
                "{}={}",
                if m.topic == person { "person" } else { "cups" },
                m.text()
            )
        })
        .collect();
    assert_eq!(
        states,
        [
            "cups=0",
            "person=ON",
            "cups=1",
            "person=OFF",
            "cups=0",
            "person=ON"
        ],
        "state changes out of order:\n{dump}"
    );
    // Camera online comes before the daemon says it is offline, and the daemon's
    // availability brackets everything.
    let msgs = col.messages();
    let first_online = msgs
        .iter()
        .position(|m| m.topic == status_topic() && m.payload == b"online")
        .unwrap();
    let first_state = msgs.iter().position(|m| m.topic == person).unwrap();
    let last_offline = msgs
        .iter()
        .rposition(|m| m.topic == status_topic() && m.payload == b"offline")
        .unwrap();
    assert!(
        first_online < first_state && first_state < last_offline,
        "{dump}"
    );
    assert_eq!(
        last_offline,
        msgs.len() - 1,
        "daemon offline must be the last message:\n{dump}"
    );

    // Attributes.
    let attrs = col
        .last(&format!("ocellus/{CAM}/query/person/attributes"))
        .unwrap_or_else(|| panic!("no attributes for person:\n{dump}"))
        .json();
    for key in [
        "score",
        "since",
        "frame_time",
        "pts",
        "model",
        "region",
        "kind",
    ] {
        assert!(attrs.get(key).is_some(), "attributes lack {key:?}: {attrs}");
    }
    assert_eq!(attrs["kind"], "yes_no");
    assert_eq!(attrs["model"], "coco");

    // Events: person ON→OFF then OFF→ON; cups 0→1 then 1→0; never for the first state.
    let evs = events(&col, CAM);
    for (_, e, _) in &evs {
        check_event_fields(e, CAM);
    }
    let of_query = |q: &str| -> Vec<&Value> {
        evs.iter()
            .map(|(_, e, _)| e)
            .filter(|e| e["query"] == q)
            .collect()
    };
    let person_evs = of_query("person");
    assert_eq!(person_evs.len(), 2, "person events:\n{dump}");
    let from_to = |e: &Value| (e["from"].clone(), e["to"].clone());
    assert_eq!(
        from_to(person_evs[0]),
        ("ON".into(), "OFF".into()),
        "{dump}"
    );
    assert_eq!(
        from_to(person_evs[1]),
        ("OFF".into(), "ON".into()),
        "{dump}"
    );
    let p0 = person_evs[0]["pts"].as_f64().unwrap();
    let p1 = person_evs[1]["pts"].as_f64().unwrap();
    assert!(
        (3.0..6.0).contains(&p0),
        "ON→OFF should happen during the coffee part, at {p0} s"
    );
    assert!(
        (6.0..9.0).contains(&p1),
        "OFF→ON should happen during the last astronaut part, at {p1} s"
    );
    let cups_evs = of_query("cups");
    assert_eq!(cups_evs.len(), 2, "cups events:\n{dump}");
    assert_eq!(from_to(cups_evs[0]), (0.into(), 1.into()), "{dump}");
    assert_eq!(from_to(cups_evs[1]), (1.into(), 0.into()), "{dump}");
    assert_eq!(evs.len(), 4, "unexpected events:\n{dump}");
    let mut ids: Vec<&str> = evs
        .iter()
        .map(|(_, e, _)| e["id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 4, "event ids must be unique:\n{dump}");

    // Detections: person during the astronaut parts, cup (and no person) during coffee.
    let dets: Vec<Value> = col
        .messages()
        .iter()
        .filter(|m| m.topic == detections_topic(CAM))
        .map(Msg::json)
        .collect();
    eprintln!("{} detections messages", dets.len());
    assert!(
        dets.len() >= 16,
        "expected ~18 detections messages (9 s at 2 fps), got {}",
        dets.len()
    );
    let (mut a1, mut c, mut a2) = (0, 0, 0);
    for d in &dets {
        let pts = d["pts"].as_f64().unwrap_or_else(|| panic!("no pts: {d}"));
        assert!(d["time"].is_string() && d["seq"].is_u64(), "{d}");
        for b in d["detections"].as_array().unwrap() {
            let bx: Vec<f64> = b["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            assert!(
                bx.len() == 4 && bx.iter().all(|v| (0.0..=1.0).contains(v)),
                "box not normalised: {d}"
            );
            assert!(bx[0] < bx[2] && bx[1] < bx[3], "degenerate box: {d}");
        }
        let l = labels(d);
        if pts < 3.0 {
            a1 += 1;
            assert!(
                l.iter().any(|l| l == "person"),
                "no person at {pts} s (astronaut): {d}"
            );
        } else if pts < 6.0 {
            c += 1;
            assert!(
                l.iter().any(|l| l == "cup"),
                "no cup at {pts} s (coffee): {d}"
            );
            assert!(
                !l.iter().any(|l| l == "person"),
                "person at {pts} s (coffee): {d}"
            );
        } else {
            a2 += 1;
            assert!(
                l.iter().any(|l| l == "person"),
                "no person at {pts} s (astronaut): {d}"
            );
        }
    }
    assert!(
        a1 >= 4 && c >= 4 && a2 >= 4,
        "detections per part: {a1}, {c}, {a2}"
    );

    // A new subscriber, after the daemon is gone, gets the retained values.
    let late = late_subscriber(
        &broker.url(),
        &[
            (&status_topic(), "offline"),
            (&cam_status(CAM), "offline"),
            (&person, "ON"),
            (&cups, "0"),
        ],
    );
    for topic in [
        status_topic(),
        cam_status(CAM),
        person.clone(),
        cups.clone(),
    ] {
        assert!(
            late.last(&topic).unwrap().retain,
            "{topic} is not retained:\n{}",
            late.dump()
        );
    }
    let late_dump = late.dump();
    assert!(
        late.messages()
            .iter()
            .all(|m| m.topic != events_topic(CAM) && !m.topic.ends_with("/detections")),
        "events and detections must not be retained:\n{late_dump}"
    );
    let out = strip_ansi(&daemon.output());
    assert!(
        log_lines(&out, "ERROR").is_empty(),
        "unexpected ERROR lines:\n{out}"
    );
    assert_clean_log(&out);
}

/// SIGKILL: the broker publishes the daemon's last will, `offline` (retained).
#[test]
fn last_will_on_sigkill() {
    let looping = Looping::new("lwt");
    let mut daemon = looping.start_online();
    let (broker, col, id) = (&looping.broker, &looping.col, &looping.id);
    assert!(
        daemon.is_running(),
        "a repeating file camera must keep the daemon running"
    );
    let killed = daemon.kill_hard();
    let t0 = Instant::now();
    assert!(!killed.success());
    assert!(
        wait_last(
            col,
            &[(&status_topic(), "offline")],
            Duration::from_secs(10)
        ),
        "no last will (ocellus/status offline) within 10 s of SIGKILL; got:\n{}\nbroker log:\n{}",
        col.dump(),
        broker.log()
    );
    eprintln!(
        "last will arrived {:.2} s after SIGKILL",
        t0.elapsed().as_secs_f64()
    );
    // The daemon never said goodbye: the broker saw the socket close, no DISCONNECT.
    assert_connection_end(broker, id, false);
    let late = MqttCollector::with_filter(&broker.url(), "ocellus/status");
    let got = late
        .wait_for_topic(&status_topic(), Duration::from_secs(10))
        .expect("retained ocellus/status for a new subscriber");
    assert_eq!(got.text(), "offline");
    assert!(got.retain, "the last will must be retained");
}

/// SIGTERM: clean exit 0, camera `offline` then daemon `offline`, clean DISCONNECT.
#[test]
fn sigterm_clean_shutdown() {
    let looping = Looping::new("term");
    let mut daemon = looping.start_online();
    let (broker, col, id) = (&looping.broker, &looping.col, &looping.id);
    stop_cleanly(&mut daemon, col);
    let msgs = col.messages();
    let cam_off = msgs
        .iter()
        .rposition(|m| m.topic == cam_status(CAM) && m.payload == b"offline")
        .unwrap();
    let daemon_off = msgs
        .iter()
        .rposition(|m| m.topic == status_topic() && m.payload == b"offline")
        .unwrap();
    assert!(
        cam_off < daemon_off,
        "camera offline should precede daemon offline:\n{}",
        col.dump()
    );
    let out = strip_ansi(&daemon.output());
    assert!(
        out.contains("SIGTERM"),
        "no word of SIGTERM in the log:\n{out}"
    );
    // The daemon said goodbye (DISCONNECT): the offline came from the daemon, not the will.
    assert_connection_end(broker, id, true);
    late_subscriber(
        &broker.url(),
        &[(&status_topic(), "offline"), (&cam_status(CAM), "offline")],
    );
    assert_clean_log(&out);
}

/// `ocellus run ... 2>&1 | head -3`: once the reader of its stdout and stderr has gone,
/// every log line the daemon writes meets EPIPE. It must keep running, and SIGTERM must
/// still stop it cleanly. (tracing-subscriber used to report the failed write with
/// `eprintln!`, which panicked the thread that logged: the signal task died at its
/// "SIGTERM: shutting down" line, before it triggered the shutdown, and the daemon
/// ignored SIGTERM from then on.)
#[test]
fn sigterm_stops_the_daemon_after_its_log_reader_has_gone() {
    let looping = Looping::new("epipe");
    let (broker, col, id) = (&looping.broker, &looping.col, &looping.id);
    let mut child = ocellus_run_command(&looping.cfg, &["--mqtt-url", &broker.url()]);
    child
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = KillOnDrop(child.spawn().expect("start ocellus"));
    let pid = child.0.id();

    // Read its log up to its last line at start (`mqtt: connected to ...`), as `head`
    // would, then hang up: both read ends are closed.
    let stdout = child.0.stdout.take().unwrap();
    let stderr = child.0.stderr.take().unwrap();
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut lines = Vec::new();
        let mut line = String::new();
        while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
            eprintln!("[ocellus {pid} err] {}", line.trim_end());
            let connected = line.contains("mqtt: connected to");
            lines.push(std::mem::take(&mut line));
            if connected {
                break;
            }
        }
        let _ = tx.send((lines, reader));
    });
    let (lines, stderr) = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("no 'mqtt: connected to' log line within 60 s");
    assert!(
        lines
            .last()
            .is_some_and(|l| l.contains("mqtt: connected to")),
        "the log ended before the daemon connected:\n{}",
        lines.concat()
    );
    drop(stderr);
    drop(stdout);

    // It goes on working without anyone reading its log.
    assert!(
        col.wait_for(online_with_state, Duration::from_secs(60)),
        "daemon never came online with a state after its log reader went; got:\n{}",
        col.dump()
    );
    thread::sleep(Duration::from_secs(2));
    if let Ok(Some(status)) = child.0.try_wait() {
        panic!("the daemon exited ({status}) once its log reader had gone");
    }

    // SIGTERM: it logs "SIGTERM: shutting down" into the closed pipe, and still stops.
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(killed.success(), "kill -TERM {pid}: {killed}");
    let status = wait_or_kill(&mut child.0, Duration::from_secs(10));
    assert!(
        status.is_some(),
        "SIGTERM did not stop the daemon within 10 s once its stdout and stderr were \
         closed pipes (it was killed)"
    );
    assert!(
        status.is_some_and(|s| s.success()),
        "SIGTERM should exit 0, got {status:?}"
    );
    expect_offline(col);
    // The offline came from the daemon (DISCONNECT), not from its last will.
    assert_connection_end(broker, id, true);
}

/// The broker goes away for ~6 s and comes back on the same port: nothing the daemon
/// produced meanwhile is lost, retained state is republished.
#[test]
fn broker_outage_loses_no_event() {
    let dir = tempfile::tempdir().unwrap();
    let clip = astronaut_coffee(dir.path(), "flip.mkv");
    let mut broker = Mosquitto::start();
    let proxy = GatedProxy::start(broker.port());
    let col = MqttCollector::new(&broker.url());
    let (_, cfg) = looping_config(dir.path(), "outage", "2s", &clip, 4.0);
    let mut daemon = Daemon::start(&cfg, &["--mqtt-url", &proxy.url()]);
    let person = state_topic(CAM, "person");
    let n_person_events = |c: &MqttCollector| {
        events(c, CAM)
            .iter()
            .filter(|(_, e, _)| e["query"] == "person")
            .count()
    };
    assert!(
        col.wait_for(
            |m| m
                .iter()
                .filter(
                    |m| m.topic == events_topic(CAM) && m.text().contains("\"query\":\"person\"")
                )
                .count()
                >= 2,
            Duration::from_secs(90)
        ),
        "fewer than 2 person events before the outage; got:\n{}\ndaemon output:\n{}",
        col.dump(),
        daemon.output()
    );

    // Outage: the broker is killed; the daemon cannot reach it until it is back and the
    // test's subscriber has resubscribed.
    proxy.set_open(false);
    let stop_sys = SystemTime::now();
    let stop_at = Instant::now();
    // The daemon is cut off first, and the broker gets a moment to deliver to the
    // subscriber what it has already acknowledged to the daemon: a broker killed with
    // deliveries in flight loses them itself (seen once under load), which would say
    // nothing about the daemon.
    proxy.sever();
    thread::sleep(Duration::from_millis(500));
    broker.stop();
    assert!(col.wait_disconnected(Duration::from_secs(10)));
    // What the broker delivered while it was being stopped arrived before this.
    let down_at = Instant::now();
    thread::sleep(Duration::from_secs(6));
    let restart_at = Instant::now();
    broker.start_again();
    assert!(
        col.wait_suback_count(2, Duration::from_secs(20)),
        "collector did not resubscribe after the restart"
    );
    let open_sys = SystemTime::now();
    let open_at = Instant::now();
    proxy.set_open(true);
    assert!(
        daemon.is_running(),
        "the daemon must survive a broker outage:\n{}",
        daemon.output()
    );
    assert!(
        col.wait_for(back_online_since(open_at), Duration::from_secs(20)),
        "daemon did not come back online after the restart; got:\n{}\ndaemon output:\n{}",
        col.dump(),
        daemon.output()
    );
    let reconnected_after = open_at.elapsed();
    thread::sleep(Duration::from_secs(8));

    // States keep flowing after the restart.
    let msgs = col.messages();
    assert!(
        msgs.iter().any(|m| m.at > open_at && m.topic == person),
        "no person state after the restart:\n{}",
        col.dump()
    );
    assert!(
        msgs.iter()
            .any(|m| m.at > open_at && m.topic == events_topic(CAM)),
        "no event after the restart:\n{}",
        col.dump()
    );
    // Retained state was republished into the fresh broker (it keeps nothing over a restart).
    let fresh = MqttCollector::new(&broker.url());
    assert!(
        fresh.wait_for(online_with_state, Duration::from_secs(10)),
        "a fresh subscriber after the restart should get ocellus/status online, the camera status \
         and the person state (retained); got:\n{}",
        fresh.dump()
    );
    drop(fresh);

    // Clean stop, so that the outbox drains before the chain is checked.
    stop_cleanly(&mut daemon, &col);
    let dump = col.dump();

    // Duplicates (same id) must be exact re-sends.
    let all = events(&col, CAM);
    let mut by_id: HashMap<String, String> = HashMap::new();
    let mut duplicates = 0;
    let mut unique: Vec<(Instant, Value)> = Vec::new();
    for (at, e, text) in &all {
        check_event_fields(e, CAM);
        let id = e["id"].as_str().unwrap().to_string();
        match by_id.get(&id) {
            Some(prev) => {
                duplicates += 1;
                assert_eq!(prev, text, "two different events share the id {id}");
            }
            None => {
                by_id.insert(id, text.clone());
                unique.push((*at, e.clone()));
            }
        }
    }

    // Counts by the frame time of each event relative to the outage.
    let (mut before, mut during, mut after) = (0, 0, 0);
    for (_, e) in &unique {
        let t = event_time(e);
        if t < stop_sys {
            before += 1;
        } else if t < open_sys {
            during += 1;
        } else {
            after += 1;
        }
    }
    // While no broker process runs, nothing can arrive. (Between the restart and the
    // proxy opening, the subscriber is reconnecting; what arrives then is logged.)
    let received_during = all
        .iter()
        .filter(|(at, _, _)| *at > down_at && *at < restart_at)
        .count();
    for (at, _, text) in all
        .iter()
        .filter(|(at, _, _)| *at >= restart_at && *at < open_at)
    {
        eprintln!(
            "received {:.3} s after the broker restarted, before the proxy opened: {text}",
            at.duration_since(restart_at).as_secs_f64()
        );
    }

    // The person chain: each event starts where the previous one ended, in order.
    let chain: Vec<&(Instant, Value)> = unique
        .iter()
        .filter(|(_, e)| e["query"] == "person")
        .collect();
    let mut largest_gap = Duration::ZERO;
    let mut largest_frame_gap = Duration::ZERO;
    for w in chain.windows(2) {
        let (a, b) = (&w[0].1, &w[1].1);
        assert_eq!(
            b["from"], a["to"],
            "person events do not chain (an event was lost or reordered):\n  {a}\n  {b}\nall:\n{dump}"
        );
        assert!(
            b["seq"].as_u64() > a["seq"].as_u64(),
            "person events out of order:\n  {a}\n  {b}"
        );
        largest_gap = largest_gap.max(w[1].0.duration_since(w[0].0));
        largest_frame_gap = largest_frame_gap.max(
            event_time(b)
                .duration_since(event_time(a))
                .unwrap_or_default(),
        );
    }
    // The same for cups.
    let cups_chain: Vec<&Value> = unique
        .iter()
        .map(|(_, e)| e)
        .filter(|e| e["query"] == "cups")
        .collect();
    for w in cups_chain.windows(2) {
        assert_eq!(
            w[1]["from"], w[0]["to"],
            "cups events do not chain:\n  {}\n  {}",
            w[0], w[1]
        );
    }
    // The last person state published is where the chain ends.
    let last_state = col.payloads(&person).last().cloned();
    let chain_end = chain
        .last()
        .map(|(_, e)| e["to"].as_str().unwrap_or_default().to_string());
    assert_eq!(
        last_state, chain_end,
        "last person state vs last person event:\n{dump}"
    );

    eprintln!(
        "outage: broker down {:.1} s, daemon back online {:.1} s after the proxy opened; \
         events by frame time: {before} before, {during} during, {after} after the outage \
         ({} person, {} cups; {received_during} received while the broker was down); \
         {duplicates} duplicate(s) (same id re-sent); largest gap between consecutive person \
         events: {:.1} s received, {:.1} s frame time; proxy: {} connections forwarded, {} refused",
        open_at.duration_since(stop_at).as_secs_f64(),
        reconnected_after.as_secs_f64(),
        chain.len(),
        cups_chain.len(),
        largest_gap.as_secs_f64(),
        largest_frame_gap.as_secs_f64(),
        proxy.forwarded.load(Ordering::SeqCst),
        proxy.refused.load(Ordering::SeqCst),
    );
    assert_eq!(
        received_during, 0,
        "nothing can be received while the broker is down"
    );
    assert!(before >= 2, "events before the outage: {before}");
    assert!(
        during >= 1,
        "no event was produced during the outage (the test proved nothing):\n{dump}"
    );
    assert!(after >= 1, "no event after the outage:\n{dump}");
    assert!(n_person_events(&col) >= 3);
    let log = strip_ansi(&daemon.output());
    assert!(
        log.lines()
            .filter(|l| l.contains("mqtt: connected to"))
            .count()
            >= 2,
        "the daemon should log its reconnection:\n{log}"
    );
}

/// A camera whose file is missing fails alone; the other plays; exit 1 at the end.
#[test]
fn broken_camera_does_not_stop_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let good = astronaut_coffee(dir.path(), "good.mkv");
    let missing = dir.path().join("no-such-clip.mkv");
    let broker = Mosquitto::start();
    let col = MqttCollector::new(&broker.url());
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}{}{}",
            engine_and_yolox(),
            camera("broken", &missing, 2.0, false),
            camera("good", &good, 2.0, false)
        ),
    );
    let mut daemon = Daemon::start(&cfg, &["--mqtt-url", &broker.url()]);
    let status = daemon.expect_exit(Duration::from_secs(120));
    assert!(
        wait_last(
            &col,
            &[(&status_topic(), "offline")],
            Duration::from_secs(10)
        ),
        "{}",
        col.dump()
    );
    let dump = col.dump();
    let out = strip_ansi(&daemon.output());
    assert_eq!(
        status.code(),
        Some(1),
        "one camera failed: exit 1 expected, got {status}\n{out}"
    );

    // The good camera did its work.
    assert!(
        col.payloads(&cam_status("good"))
            .iter()
            .any(|s| s == "online"),
        "{dump}"
    );
    assert_eq!(
        col.payloads(&state_topic("good", "person")),
        vec!["ON", "OFF"],
        "{dump}"
    );
    assert_eq!(
        col.payloads(&state_topic("good", "cups")),
        vec!["0", "1"],
        "{dump}"
    );
    assert_eq!(events(&col, "good").len(), 2, "good camera events:\n{dump}");
    assert_eq!(
        last_payload(&col, &cam_status("good")).as_deref(),
        Some("offline"),
        "{dump}"
    );
    // ... after the broken one had already failed.
    let msgs = col.messages();
    let broken_off = msgs
        .iter()
        .position(|m| m.topic == cam_status("broken") && m.payload == b"offline")
        .unwrap_or_else(|| panic!("broken camera never offline:\n{dump}"));
    let last_good_state = msgs
        .iter()
        .rposition(|m| m.topic.starts_with("ocellus/good/query/"))
        .unwrap();
    assert!(broken_off < last_good_state, "{dump}");

    // The broken one: offline, never online, nothing else.
    assert_eq!(
        col.payloads(&cam_status("broken")),
        vec!["offline"],
        "{dump}"
    );
    assert!(
        msgs.iter()
            .all(|m| !m.topic.starts_with("ocellus/broken/") || m.topic == cam_status("broken")),
        "the broken camera published more than its status:\n{dump}"
    );

    // Exactly one ERROR line about it, naming the camera and the path.
    let errors = log_lines(&out, "ERROR");
    let about: Vec<&str> = errors
        .iter()
        .copied()
        .filter(|l| l.contains("broken"))
        .collect();
    assert_eq!(
        about.len(),
        1,
        "expected one ERROR line about camera broken:\n{out}"
    );
    assert!(about[0].contains("camera broken"), "{}", about[0]);
    assert!(
        about[0].contains(&*missing.to_string_lossy()),
        "{}",
        about[0]
    );
    assert!(
        !errors.iter().any(|l| l.contains("good")),
        "ERROR lines about the good camera:\n{out}"
    );
    assert_clean_log(&out);
}

/// No broker at start: one error line, the daemon keeps going, and once a broker
/// appears on that port the (retained) states arrive without a restart.
#[test]
fn broker_unreachable_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let clip = astronaut_coffee(dir.path(), "loop.mkv");
    // Take a port mosquitto can use, then leave it empty for now.
    let mut broker = Mosquitto::start();
    broker.stop();
    let url = broker.url();
    let (_, cfg) = looping_config(dir.path(), "late-broker", "5s", &clip, 2.0);
    let mut daemon = Daemon::start(&cfg, &["--mqtt-url", &url]);
    assert!(
        daemon.wait_output("unreachable", Duration::from_secs(60)),
        "no 'unreachable' line:\n{}",
        daemon.output()
    );
    // Several retries later: still running, still exactly one line about it.
    thread::sleep(Duration::from_secs(4));
    assert!(
        daemon.is_running(),
        "the daemon must keep running without a broker:\n{}",
        daemon.output()
    );
    let out = strip_ansi(&daemon.output());
    let lines: Vec<&str> = out.lines().filter(|l| l.contains("unreachable")).collect();
    assert_eq!(
        lines.len(),
        1,
        "expected one line about the unreachable broker:\n{out}"
    );
    assert!(
        lines[0].contains(&url),
        "the line should name {url}: {}",
        lines[0]
    );
    assert!(log_level(lines[0]) == Some("ERROR"), "{}", lines[0]);
    assert!(!out.contains("mqtt: connected"), "{out}");

    broker.start_again();
    let col = MqttCollector::new(&broker.url());
    assert!(
        col.wait_for(
            |m| online_with_state(m) && m.iter().any(|m| m.topic == state_topic(CAM, "cups")),
            Duration::from_secs(30)
        ),
        "states did not arrive after the broker appeared; got:\n{}\ndaemon output:\n{}",
        col.dump(),
        daemon.output()
    );
    assert!(daemon.is_running());
    assert!(daemon.wait_output("mqtt: connected", Duration::from_secs(5)));
    // A subscriber that connects later still gets them: they are retained.
    let late = MqttCollector::new(&broker.url());
    assert!(
        late.wait_for(
            |m| m
                .iter()
                .any(|m| m.retain && m.topic == state_topic(CAM, "person"))
                && m.iter()
                    .any(|m| m.retain && m.topic == status_topic() && m.payload == b"online"),
            Duration::from_secs(10)
        ),
        "retained state for a late subscriber:\n{}",
        late.dump()
    );
    stop_cleanly(&mut daemon, &col);
    let out = strip_ansi(&daemon.output());
    assert_eq!(
        out.lines().filter(|l| l.contains("unreachable")).count(),
        1,
        "{out}"
    );
    assert_clean_log(&out);
}

/// The broker behind a slow link (what it sends reaches the daemon 300 ms later, as on
/// a congested cellular uplink): the daemon must connect, and reconnect after an outage,
/// while its camera keeps producing frames.
#[test]
fn reconnects_over_a_slow_link() {
    let mut looping = Looping::new("slow-link");
    let proxy = GatedProxy::with_latency(looping.broker.port(), Duration::from_millis(300));
    let col = &looping.col;
    // Control: an ordinary MQTT client gets through this link.
    let t0 = Instant::now();
    publish_once(&proxy.url(), "slowlink/probe", "through the proxy", false);
    assert!(col.wait_for(
        |m| m.iter().any(|m| m.topic == "slowlink/probe"),
        Duration::from_secs(10)
    ));
    eprintln!(
        "slow link: a plain client published through it in {:.2} s",
        t0.elapsed().as_secs_f64()
    );
    let probe_connections = proxy.forwarded.load(Ordering::SeqCst);
    let mut daemon = Daemon::start(&looping.cfg, &["--mqtt-url", &proxy.url()]);
    let connected = col.wait_for(online_with_state, Duration::from_secs(20));
    let daemon_connections = proxy.forwarded.load(Ordering::SeqCst) - probe_connections;
    eprintln!(
        "slow link, first connection: {daemon_connections} TCP connections opened by the daemon"
    );
    assert!(
        connected,
        "the daemon did not get online within 20 s over a 300 ms link ({daemon_connections} TCP \
         connections opened); got:\n{}\ndaemon output:\n{}",
        col.dump(),
        daemon.output()
    );
    // Outage of 3 s, then the same slow link again.
    looping.broker.stop();
    assert!(col.wait_disconnected(Duration::from_secs(10)));
    thread::sleep(Duration::from_secs(3));
    let before = proxy.forwarded.load(Ordering::SeqCst);
    looping.broker.start_again();
    assert!(col.wait_suback_count(2, Duration::from_secs(20)));
    let restarted = Instant::now();
    let back = col.wait_for(back_online_since(restarted), Duration::from_secs(20));
    let attempts = proxy.forwarded.load(Ordering::SeqCst) - before;
    eprintln!(
        "slow link, after the restart: back online: {back}, {attempts} TCP connections opened to the broker in {:.1} s",
        restarted.elapsed().as_secs_f64()
    );
    assert!(
        back,
        "the daemon did not reconnect within 20 s of the broker's restart over a 300 ms link; \
         it opened {attempts} TCP connections meanwhile; daemon output:\n{}\nbroker log:\n{}",
        daemon.output(),
        looping.broker.log()
    );
    // One connection per attempt, with backoff: not a burst of connections per frame.
    assert!(
        attempts <= 10,
        "the daemon opened {attempts} TCP connections to reconnect once"
    );
    stop_cleanly(&mut daemon, col);
}
