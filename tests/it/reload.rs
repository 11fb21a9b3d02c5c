//! Live reload of the real daemon (real RTSP server, GStreamer, YOLOX-nano,
//! mosquitto): SIGHUP with a bad file changes nothing and says why; SIGHUP adding a
//! camera starts it while the running camera's frame counter goes on uninterrupted;
//! a file that only changes a camera's queries keeps its pipeline; `POST /api/reload`
//! removing a camera stops it and removes its Home Assistant device.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

const WAIT: Duration = Duration::from_secs(60);

fn camera(id: &str, url: &str, queries: &str) -> String {
    format!(
        "[[cameras]]\nrealtime = false\nid = \"{id}\"\nurl = {}\nsample_fps = 2\n\n{queries}",
        toml_str(url)
    )
}

fn write(path: &Path, broker: &str, http: u16, cameras: &str) {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let text = format!(
        "[mqtt]\nurl = {}\nclient_id = {}\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n{}{cameras}",
        toml_str(broker),
        toml_str(ID.get_or_init(|| client_id("reload"))),
        engine_and_yolox(),
    );
    std::fs::write(path, text).unwrap();
}

fn hup(daemon: &Daemon) {
    let ok = std::process::Command::new("kill")
        .args(["-HUP", &daemon.pid().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -HUP");
}

/// Camera `id`'s decoded-frames counter from `/metrics`.
fn decoded(port: u16, id: &str) -> Option<f64> {
    let r = http(port, "GET", "/metrics", None, b"")?;
    let key = format!("ocellus_camera_decoded_frames_total{{camera=\"{id}\"}} ");
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(key.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

fn cameras(port: u16) -> Vec<String> {
    let r = http(port, "GET", "/api/cameras", None, b"").expect("api/cameras");
    r.json()["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// Samples camera `id`'s counter every 100 ms until `until` holds, and for 2 s at
/// least: the samples.
fn watch(port: u16, id: &str, mut until: impl FnMut() -> bool) -> Vec<f64> {
    let start = Instant::now();
    let deadline = start + WAIT;
    let mut seen = Vec::new();
    while start.elapsed() < Duration::from_secs(2) || !until() {
        assert!(
            Instant::now() < deadline,
            "timed out; counter samples {seen:?}"
        );
        if let Some(v) = decoded(port, id) {
            seen.push(v);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    if let Some(v) = decoded(port, id) {
        seen.push(v);
    }
    seen
}

fn assert_uninterrupted(seen: &[f64], what: &str) {
    assert!(seen.len() >= 3, "{what}: {seen:?}");
    assert!(
        seen.windows(2).all(|w| w[1] >= w[0]),
        "{what}: camera a's counter went back (a restart): {seen:?}"
    );
    assert!(
        seen.last() > seen.first(),
        "{what}: no new frames: {seen:?}"
    );
}

#[test]
fn reload_changes_only_what_changed() {
    let dir = tempfile::tempdir().unwrap();
    let mounts = vec![
        RtspMount {
            path: "/a".into(),
            launch: photo_launch_line(&media("astronaut.png")),
            protocols: RTSPLowerTrans::TCP,
        },
        RtspMount {
            path: "/b".into(),
            launch: photo_launch_line(&media("coffee.png")),
            protocols: RTSPLowerTrans::TCP,
        },
    ];
    let server = RtspServer::start_on_free_port(mounts).unwrap();
    let (url_a, url_b) = (server.url("rtspt", "/a"), server.url("rtspt", "/b"));
    let broker = Mosquitto::start();
    let col = MqttCollector::new(&broker.url());
    let port = free_port();
    let cfg = dir.path().join("ocellus.toml");
    let person = person_query("");
    write(&cfg, &broker.url(), port, &camera("a", &url_a, &person));
    let mut daemon = Daemon::start(&cfg, &[]);
    assert!(
        wait_until(WAIT, || decoded(port, "a").is_some_and(|v| v > 0.0)),
        "camera a never decoded:\n{}",
        daemon.output()
    );

    // A bad file: nothing changes, the log says why.
    let good = std::fs::read_to_string(&cfg).unwrap();
    std::fs::write(
        &cfg,
        good.replace("sample_fps = 2", "sample_fps = 2\ncolour = \"red\""),
    )
    .unwrap();
    hup(&daemon);
    let seen = watch(port, "a", || daemon.output().contains("nothing changed"));
    let out = daemon.output();
    assert!(
        out.contains("reload: config") && out.contains("cameras[0].colour: unknown field `colour`"),
        "{out}"
    );
    assert_eq!(cameras(port), ["a"]);
    let r = http(port, "POST", "/api/reload", None, b"").unwrap();
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error"].as_str().unwrap().contains("colour"),
        "{}",
        r.text()
    );
    assert_uninterrupted(&seen, "bad file");

    // Adding camera b: it starts; a streams on.
    let cams = format!(
        "{}{}",
        camera("a", &url_a, &person),
        camera("b", &url_b, &person)
    );
    write(&cfg, &broker.url(), port, &cams);
    hup(&daemon);
    let seen = watch(port, "a", || decoded(port, "b").is_some_and(|v| v > 0.0));
    assert_uninterrupted(&seen, "adding b");
    assert_eq!(cameras(port), ["a", "b"]);
    assert!(
        col.wait_for_topic(&state_topic("b", "person"), WAIT)
            .is_some(),
        "camera b answers on MQTT"
    );
    assert!(
        col.wait_for_topic("homeassistant/device/ocellus_b/config", WAIT)
            .is_some(),
        "camera b is announced to Home Assistant"
    );

    // Only a's queries change: its pipeline keeps running, the new query answers.
    let cups = "[[cameras.queries]]\nid = \"cups\"\nask = \"cups?\"\nkind = \"count\"\nmodel = \"coco\"\nlabel = \"cup\"\n\n";
    let cams = format!(
        "{}{}",
        camera("a", &url_a, &format!("{person}{cups}")),
        camera("b", &url_b, &person)
    );
    write(&cfg, &broker.url(), port, &cams);
    let t = Instant::now();
    hup(&daemon);
    let cups_state = state_topic("a", "cups");
    let seen = watch(port, "a", || {
        col.messages()
            .iter()
            .any(|m| m.at > t && m.topic == cups_state)
    });
    assert_uninterrupted(&seen, "new query on a");

    // Removing b over HTTP: it stops, its device goes from Home Assistant.
    write(
        &cfg,
        &broker.url(),
        port,
        &camera("a", &url_a, &format!("{person}{cups}")),
    );
    let t = Instant::now();
    let r = http(port, "POST", "/api/reload", None, b"").unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(
        r.json()["reloaded"].as_str().unwrap().contains("1 stopped"),
        "{}",
        r.text()
    );
    assert_eq!(cameras(port), ["a"]);
    assert!(
        col.wait_for(
            |m| m.iter().any(|m| m.at > t
                && m.topic == "homeassistant/device/ocellus_b/config"
                && m.payload.is_empty()),
            WAIT
        ),
        "camera b's device is removed"
    );
    let out = daemon.output();
    assert!(!out.contains("camera a: stopped for the reload"), "{out}");
    assert!(
        !out.contains("changed; it applies at the next start"),
        "{out}"
    );
    assert!(out.contains("camera b: stopped for the reload"), "{out}");
    assert!(
        daemon.stop_within(Duration::from_secs(30)).success(),
        "{out}"
    );
}
