//! The bounds of the query control surface, through the real daemon, a real mosquitto,
//! the HTTP API, GStreamer, YOLOX-nano and the tiny CLIP fixture: every bad command
//! (invalid JSON, a 2 MB payload, an unknown kind, a region outside 0..1, 10,000
//! prompts, a 1 MB `ask`, an unknown camera) is refused once with its reason on the
//! channel it came from (`ocellus/<cam>/query/<q>/error`, the HTTP reply) while the
//! camera keeps publishing; two specs with a 2.2 MB `name` cannot cut the daemon's
//! MQTT output (the device config they would make is over the packet limit); a spec
//! of 10,000 labels is refused without holding up a concurrent valid change; adding
//! and deleting a CLIP query on a detector-only camera five times restarts its
//! pipeline once; a burst of changes meets the rate limit; and a damaged
//! `queries.json` is moved aside, not overwritten.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

const TOKEN: &str = "limits-token";
const WAIT: Duration = Duration::from_secs(60);
const DEVICE: &str = "homeassistant/device/ocellus_cam/config";
const DAMAGED: &[u8] = b"{\"cameras\": {\"cam\": {\"set\": {\"mine\": ";

fn tiny_clip_model() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    format!(
        "[models.tiny]\nfamily = \"clip\"\ndir = {}\ntokenizer = {}\nproviders = [\"cpu\"]\n\n",
        toml_path(&root.join("tests/fixtures/clip_tiny")),
        toml_path(&models_dir().join("clip_vit_b32_tokenizer/tokenizer.json")),
    )
}

/// One detector-only camera (`person` on YOLOX) over MQTT and HTTP, the tiny CLIP
/// model loaded for runtime queries.
fn config(dir: &Path, broker: &str, http: u16) -> PathBuf {
    let clip = media_clip(
        dir,
        "flip.mkv",
        &[("astronaut.png", 2.0), ("coffee.png", 2.0)],
    );
    write_config(
        dir,
        &format!(
            "[mqtt]\nurl = {}\nclient_id = {}\nstate_dir = {}\n\n\
             [http]\nlisten = \"127.0.0.1:{http}\"\ntoken = \"{TOKEN}\"\n\n{}{}\
             [[cameras]]\nrealtime = false\nid = \"cam\"\nurl = {}\nsample_fps = 4\nrepeat = true\n\n{}",
            toml_str(broker),
            toml_str(&client_id("limits")),
            toml_path(&dir.join("state")),
            engine_and_yolox(),
            tiny_clip_model(),
            toml_path(&clip),
            person_query(""),
        ),
    )
}

fn put(port: u16, path: &str, body: &[u8]) -> HttpResponse {
    http(port, "PUT", path, Some(TOKEN), body).expect("an HTTP answer")
}

fn wait_person(col: &MqttCollector, since: Instant) {
    let topic = state_topic("cam", "person");
    assert!(
        col.wait_for(|m| m.iter().any(|m| m.at > since && m.topic == topic), WAIT),
        "the camera stopped publishing {topic}:\n{}",
        col.dump()
    );
}

/// The reason of the one message on `<cam>/query/<q>/error` after `since`.
fn mqtt_refusal(col: &MqttCollector, cam: &str, query: &str, since: Instant) -> String {
    let topic = format!("ocellus/{cam}/query/{query}/error");
    assert!(
        col.wait_for(|m| m.iter().any(|m| m.at > since && m.topic == topic), WAIT),
        "no refusal on {topic}"
    );
    let msg = col.last(&topic).expect("the refusal");
    let e = msg.json();
    assert_eq!(e["camera"], cam);
    assert_eq!(e["query"], query);
    e["error"].as_str().expect("a reason").to_string()
}

fn count_spec(extra: Value) -> Vec<u8> {
    let mut spec = json!({"ask": "how many?", "kind": "count", "model": "coco", "label": "person"});
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec.to_string().into_bytes()
}

/// The bad commands of the issue, each `(query, payload, what the reason says)`.
fn bad_commands() -> Vec<(&'static str, Vec<u8>, &'static str)> {
    let ten_thousand = vec!["a"; 10_000]; // 40 KB: under the size limit
    vec![
        (
            "badjson",
            b"{\"ask\": \"?\", \"kind\": ".to_vec(),
            "not JSON",
        ),
        (
            "huge",
            count_spec(json!({"ask": "x".repeat(2 << 20)})),
            "65536",
        ),
        (
            "kind",
            br#"{"ask": "?", "kind": "guess", "model": "coco"}"#.to_vec(),
            "unknown variant `guess`",
        ),
        (
            "region",
            count_spec(json!({"region": [0.5, 0.5, 1.5, 0.9]})),
            "region: [0.5, 0.5, 1.5, 0.9] must be normalised",
        ),
        (
            "prompts",
            json!({"ask": "which?", "kind": "classify", "model": "tiny", "labels": ten_thousand})
                .to_string()
                .into_bytes(),
            "labels: 10000 prompts; at most 32",
        ),
        (
            "bigask",
            count_spec(json!({"ask": "x".repeat(1 << 20)})),
            "65536",
        ),
        (
            "longask",
            count_spec(json!({"ask": "x".repeat(2000)})),
            "ask: is longer than 1000 characters",
        ),
    ]
}

fn metric(port: u16, line_start: &str) -> f64 {
    let r = http(port, "GET", "/metrics", Some(TOKEN), b"").expect("metrics");
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(line_start))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no {line_start} in /metrics:\n{}", r.text()))
}

#[test]
fn bad_commands_are_refused_where_they_came_from_and_nothing_else_stops() {
    let dir = tempfile::tempdir().unwrap();
    // Damaged by hand: the daemon must keep it, not overwrite it.
    std::fs::create_dir_all(dir.path().join("state")).unwrap();
    std::fs::write(dir.path().join("state/queries.json"), DAMAGED).unwrap();
    let broker = Mosquitto::start();
    let url = broker.url();
    let port = free_port();
    let cfg = config(dir.path(), &url, port);
    let col = MqttCollector::new(&url);
    let mut daemon = Daemon::start(&cfg, &[]);
    wait_person(&col, Instant::now() - WAIT);

    // The damaged queries.json went aside, named in one line.
    let out = daemon.output();
    let aside: Vec<PathBuf> = std::fs::read_dir(dir.path().join("state"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().contains("queries.json.bad-"))
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}\n{out}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), DAMAGED);
    let line: Vec<&str> = out.lines().filter(|l| l.contains("moved aside")).collect();
    assert_eq!(line.len(), 1, "{out}");
    assert!(
        line[0].contains(&*aside[0].to_string_lossy()),
        "{}",
        line[0]
    );

    // MQTT: each refused once on its own error topic.
    for (query, payload, want) in bad_commands() {
        let t = Instant::now();
        publish_once(
            &url,
            &format!("ocellus/cam/query/{query}/set"),
            payload,
            false,
        );
        let e = mqtt_refusal(&col, "cam", query, t);
        assert!(e.contains(want), "{query}: {e} (wanted {want})");
        assert!(!e.contains('\n') && e.len() < 600, "{query}: {e}");
    }
    let t = Instant::now();
    publish_once(
        &url,
        "ocellus/nocam/query/x/set",
        count_spec(json!({})),
        false,
    );
    let e = mqtt_refusal(&col, "nocam", "x", t);
    assert!(e.contains("no camera \"nocam\""), "{e}");

    // Two specs with a 2.2 MB name: their device config would be over the 4 MiB
    // packet limit, which used to cut all MQTT output. Refused; output goes on.
    for query in ["name1", "name2"] {
        let t = Instant::now();
        let spec = count_spec(json!({"name": "n".repeat(2_200_000)}));
        publish_once(&url, &format!("ocellus/cam/query/{query}/set"), spec, false);
        let e = mqtt_refusal(&col, "cam", query, t);
        assert!(e.contains("65536"), "{query}: {e}");
    }

    // HTTP: the same commands, refused in the reply.
    for (query, payload, want) in bad_commands() {
        if query == "prompts" {
            continue; // below, next to a valid change
        }
        let r = put(port, &format!("/api/queries/cam/{query}"), &payload);
        let code = if want == "65536" { 413 } else { 400 };
        assert_eq!(r.status, code, "{query}: {}", r.text());
        let e = r.json()["error"].as_str().expect("a reason").to_string();
        assert!(e.contains(want), "{query}: {e} (wanted {want})");
    }
    let r = put(port, "/api/queries/nocam/x", &count_spec(json!({})));
    assert_eq!(r.status, 404, "{}", r.text());
    assert!(r.json()["error"].as_str().unwrap().contains("nocam"));

    // 10,000 labels next to a valid change: both answered, only the valid one taken.
    let (_, prompts, _) = bad_commands().remove(4);
    let big = std::thread::spawn(move || put(port, "/api/queries/cam/prompts", &prompts));
    let ok = put(port, "/api/queries/cam/people", &count_spec(json!({})));
    let big = big.join().unwrap();
    assert_eq!(ok.status, 200, "{}", ok.text());
    assert_eq!(big.status, 400, "{}", big.text());
    assert!(
        big.json()["error"]
            .as_str()
            .unwrap()
            .contains("labels: 10000 prompts; at most 32"),
        "{}",
        big.text()
    );

    // The camera kept publishing, the broker link never dropped, and each MQTT
    // command got exactly one refusal.
    let t = Instant::now();
    wait_person(&col, t);
    wait_person(&col, Instant::now());
    let out = daemon.output();
    assert_eq!(out.matches("mqtt: connected to").count(), 1, "{out}");
    for (query, _, want) in bad_commands() {
        let topic = format!("ocellus/cam/query/{query}/error");
        let n = col.messages().iter().filter(|m| m.topic == topic).count();
        // One for the MQTT command, one more for the HTTP one (the daemon publishes
        // its refusals there too), except for a body the HTTP layer refused (413).
        let want_n = if want == "65536" { 1 } else { 2 };
        assert_eq!(n, want_n, "{topic}:\n{}", col.dump());
    }
    let last = col.last(DEVICE).expect("the device config").json();
    let names: Vec<&String> = last["components"].as_object().unwrap().keys().collect();
    assert!(
        !names
            .iter()
            .any(|n| n.contains("name1") || n.contains("huge")),
        "{names:?}"
    );
    assert!(
        metric(
            port,
            "ocellus_camera_query_changes_refused_total{camera=\"cam\",reason=\"invalid\"}"
        ) >= 10.0
    );

    // The accepted change was saved in a fresh queries.json; the damaged one kept.
    let saved: Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("state/queries.json")).unwrap())
            .unwrap();
    assert_eq!(saved["cameras"]["cam"]["set"]["people"]["kind"], "count");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), DAMAGED);
    assert!(daemon.stop_within(Duration::from_secs(30)).success());
}

#[test]
fn query_changes_cannot_force_reconnects_and_are_rate_limited() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let url = broker.url();
    let port = free_port();
    let cfg = config(dir.path(), &url, port);
    let col = MqttCollector::new(&url);
    let mut daemon = Daemon::start(&cfg, &[]);
    wait_person(&col, Instant::now() - WAIT);

    // Five times: a CLIP query on the detector-only camera (RGB frames), then gone.
    let astro =
        br#"{"ask": "an astronaut", "kind": "yes_no", "model": "tiny", "no": ["a cup of coffee"]}"#;
    for round in 0..5 {
        let t = Instant::now();
        let r = put(port, "/api/queries/cam/astro", astro);
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        let topic = state_topic("cam", "astro");
        assert!(
            col.wait_for(|m| m.iter().any(|m| m.at > t && m.topic == topic), WAIT),
            "round {round}: no state on {topic}"
        );
        let t = Instant::now();
        let r = http(port, "DELETE", "/api/queries/cam/astro", Some(TOKEN), b"").unwrap();
        assert_eq!(r.status, 200, "round {round}: {}", r.text());
        assert!(
            col.wait_for(
                |m| m.iter().any(|m| m.at > t
                    && m.topic == DEVICE
                    && m.json()["components"]["ocellus_cam_astro"]
                        == json!({"platform": "binary_sensor"})),
                WAIT
            ),
            "round {round}: the deleted query's entity stayed"
        );
        // Time for the source to act on a format change, were there one.
        std::thread::sleep(Duration::from_secs(1));
        wait_person(&col, Instant::now());
    }
    let out = daemon.output();
    let restarts = out.matches("restarting the pipeline for").count();
    assert_eq!(
        restarts, 1,
        "only the first CLIP query switches the camera to RGB:\n{out}"
    );

    // A burst: what is left of the 16 at once goes through (the rounds above took
    // some), then one per second.
    let mut accepted = 0;
    let mut refused = None;
    for i in 0..60 {
        let r = put(
            port,
            "/api/queries/cam/burst",
            &count_spec(json!({"ask": format!("how many, take {i}?")})),
        );
        if r.status == 200 {
            accepted += 1;
            continue;
        }
        refused = Some((r.status, r.json()["error"].as_str().unwrap().to_string()));
        break;
    }
    let (status, reason) = refused.expect("the burst met the rate limit");
    assert_eq!(status, 400, "{reason}");
    assert!(reason.contains("too many query changes"), "{reason}");
    assert!(accepted >= 1, "{accepted} accepted before: {reason}");
    let e = mqtt_refusal(&col, "cam", "burst", Instant::now() - WAIT);
    assert!(e.contains("too many query changes"), "{e}");
    assert!(
        metric(
            port,
            "ocellus_camera_query_changes_refused_total{camera=\"cam\",reason=\"limited\"}"
        ) >= 1.0
    );
    // The camera goes on, and a change is taken again a moment later.
    wait_person(&col, Instant::now());
    std::thread::sleep(Duration::from_secs(2));
    let r = put(
        port,
        "/api/queries/cam/burst",
        &count_spec(json!({"ask": "after the pause?"})),
    );
    assert_eq!(r.status, 200, "{}", r.text());
    assert!(daemon.stop_within(Duration::from_secs(30)).success());
}
