//! Runtime queries over MQTT against a real mosquitto, the real daemon, GStreamer,
//! YOLOX-nano and the tiny CLIP fixture: a query spec on
//! `ocellus/<cam>/query/<q>/set` adds or replaces a standing query without a restart
//! (Home Assistant's device config follows), an empty payload deletes one (its
//! retained state and its entity go), an invalid spec is refused with a reason on
//! `.../error` and changes nothing, and accepted changes survive a restart through
//! `<state_dir>/queries.json`. A dual-encoder query added to a detector-only camera
//! switches its pipeline to RGB, and its prompts are embedded once.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const DEVICE: &str = "homeassistant/device/ocellus_cam/config";
const WAIT: Duration = Duration::from_secs(60);

fn tiny_clip_model() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    format!(
        "[models.tiny]\nfamily = \"clip\"\ndir = {}\ntokenizer = {}\nproviders = [\"cpu\"]\n\n",
        toml_path(&root.join("tests/fixtures/clip_tiny")),
        toml_path(&models_dir().join("clip_vit_b32_tokenizer/tokenizer.json")),
    )
}

fn config(dir: &Path, url: &str) -> PathBuf {
    let clip = media_clip(
        dir,
        "flip.mkv",
        &[("astronaut.png", 2.0), ("coffee.png", 2.0)],
    );
    write_config(
        dir,
        &format!(
            "[mqtt]\nurl = {}\nclient_id = {}\nstate_dir = {}\n\n{}{}\
             [[cameras]]\nrealtime = false\nid = \"cam\"\nurl = {}\nsample_fps = 4\nrepeat = true\n\n{}",
            toml_str(url),
            toml_str(&client_id("runtime")),
            toml_path(&dir.join("state")),
            engine_and_yolox(),
            tiny_clip_model(),
            toml_path(&clip),
            person_query(""),
        ),
    )
}

fn set(url: &str, query: &str, spec: &str) -> Instant {
    let at = Instant::now();
    publish_once(url, &format!("ocellus/cam/query/{query}/set"), spec, false);
    at
}

/// States of `query` received after `since`.
fn states_since(col: &MqttCollector, query: &str, since: Instant) -> Vec<String> {
    col.messages()
        .iter()
        .filter(|m| m.at > since && m.topic == state_topic("cam", query))
        .map(|m| m.text())
        .collect()
}

fn wait_state(col: &MqttCollector, query: &str, since: Instant, ok: impl Fn(&str) -> bool) {
    let topic = state_topic("cam", query);
    assert!(
        col.wait_for(
            |m| m
                .iter()
                .any(|m| m.at > since && m.topic == topic && ok(&m.text())),
            WAIT
        ),
        "no fitting state on {topic}; got {:?}\n{}",
        states_since(col, query, since),
        col.dump()
    );
}

/// The last device config's components.
fn components(col: &MqttCollector) -> serde_json::Map<String, Value> {
    let last = col.last(DEVICE).expect("device config");
    last.json()["components"].as_object().unwrap().clone()
}

fn wait_error(col: &MqttCollector, query: &str, since: Instant) -> String {
    let topic = format!("ocellus/cam/query/{query}/error");
    assert!(
        col.wait_for(|m| m.iter().any(|m| m.at > since && m.topic == topic), WAIT),
        "no message on {topic}:\n{}",
        col.dump()
    );
    let msg = col.last(&topic).expect("the error message");
    let e = msg.json();
    assert_eq!(
        (e["camera"].as_str(), e["query"].as_str()),
        (Some("cam"), Some(query))
    );
    e["error"].as_str().expect("error text").to_string()
}

fn embedded(output: &str, prompt: &str) -> usize {
    let line = format!("prompt embedded: {prompt:?}");
    output.lines().filter(|l| l.contains(&line)).count()
}

#[test]
fn queries_are_added_replaced_refused_deleted_and_kept_over_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let url = broker.url();
    let cfg = config(dir.path(), &url);
    let col = MqttCollector::new(&url);
    let log_env = [("OCELLUS_LOG", "info,ort=warn,ocellus::cache=debug")];
    let mut daemon = Daemon::start_with_env(&cfg, &[], &log_env);
    wait_state(&col, "person", Instant::now() - WAIT, |s| {
        s == "ON" || s == "OFF"
    });

    // Add: a count on the detector the camera already runs.
    let t = set(
        &url,
        "people",
        r#"{"ask": "how many people?", "kind": "count", "model": "coco", "label": "person", "unit": "people"}"#,
    );
    wait_state(&col, "people", t, |s| s.parse::<u32>().is_ok());
    assert!(col.wait_for(
        |m| {
            m.iter()
                .any(|m| m.at > t && m.topic == DEVICE && m.text().contains("ocellus_cam_people"))
        },
        WAIT
    ));
    let c = components(&col);
    assert_eq!(c["ocellus_cam_people"]["platform"], "sensor");
    assert_eq!(c["ocellus_cam_people"]["unit_of_measurement"], "people");
    assert!(c["ocellus_cam_person"]["state_topic"].is_string());

    // Add: a dual-encoder question with a region; the detector-only camera (I420)
    // switches to RGB for it, and its two prompts are embedded once each.
    let t = set(
        &url,
        "astro",
        r#"{"ask": "an astronaut", "kind": "yes_no", "model": "tiny", "no": ["a cup of coffee"],
            "region": [0.0, 0.0, 0.5, 0.5]}"#,
    );
    wait_state(&col, "astro", t, |s| s == "ON" || s == "OFF");
    let out = daemon.output();
    assert!(
        out.contains("restarting the pipeline for Rgb frames"),
        "{out}"
    );
    assert_eq!(
        (
            embedded(&out, "an astronaut"),
            embedded(&out, "a cup of coffee")
        ),
        (1, 1),
        "each prompt of a new query is embedded once:\n{out}"
    );
    // The detector's queries kept answering across the switch.
    wait_state(&col, "people", t, |s| s.parse::<u32>().is_ok());

    // Replace: `people` becomes a yes/no; Home Assistant gets a binary_sensor.
    let t = set(
        &url,
        "people",
        r#"{"ask": "anyone there?", "kind": "yes_no", "model": "coco", "label": "person"}"#,
    );
    wait_state(&col, "people", t, |s| s == "ON" || s == "OFF");
    // Its first state goes before its attributes: attributes first would show Home
    // Assistant the count's retained state with the yes/no's score.
    let attributes = "ocellus/cam/query/people/attributes";
    let yes_no_attributes = |m: &Msg| {
        m.at > t
            && m.topic == attributes
            && serde_json::from_slice::<Value>(&m.payload).is_ok_and(|a| a["kind"] == "yes_no")
    };
    assert!(
        col.wait_for(|m| m.iter().any(yes_no_attributes), WAIT),
        "no attributes of the replaced query:\n{}",
        col.dump()
    );
    let msgs = col.messages();
    let first_attributes = msgs.iter().position(yes_no_attributes).unwrap();
    let first_state = msgs
        .iter()
        .position(|m| {
            m.at > t
                && m.topic == state_topic("cam", "people")
                && ["ON", "OFF"].contains(&&*m.text())
        })
        .unwrap();
    assert!(first_state < first_attributes, "{}", col.dump());
    assert!(
        col.wait_for(
            |m| m.iter().any(|m| m.at > t
                && m.topic == DEVICE
                && m.json()["components"]["ocellus_cam_people"]["default_entity_id"]
                    == "binary_sensor.ocellus_cam_people"),
            WAIT
        ),
        "{}",
        col.dump()
    );
    assert_eq!(
        components(&col)["ocellus_cam_people"]["platform"],
        "binary_sensor"
    );
    let saved = std::fs::read_to_string(dir.path().join("state/queries.json")).unwrap();

    // Refused: each reason arrives on the query's error topic and nothing changes.
    let t = set(
        &url,
        "bad",
        r#"{"ask": "unicorns?", "kind": "count", "model": "coco", "label": "unicorn"}"#,
    );
    let e = wait_error(&col, "bad", t);
    assert!(
        e.contains("\"unicorn\" is not one of model coco's classes"),
        "{e}"
    );
    let t = set(&url, "people", r#"{"ask": "anyone?", "kind": "yes_no""#);
    let e = wait_error(&col, "people", t);
    assert!(e.contains("not JSON"), "{e}");
    let t = set(
        &url,
        "people",
        r#"{"ask": "anyone?", "kind": "yes_no", "model": "coco", "colour": "red"}"#,
    );
    let e = wait_error(&col, "people", t);
    assert!(e.contains("unknown field `colour`"), "{e}");
    let t = set(&url, "ghost", "");
    let e = wait_error(&col, "ghost", t);
    assert!(e.contains("no query \"ghost\""), "{e}");
    let t = Instant::now();
    publish_once(&url, "ocellus/nocam/query/x/set", r#"{"ask": "?"}"#, false);
    let msg = col
        .wait_for_topic("ocellus/nocam/query/x/error", WAIT)
        .expect("error for an unknown camera");
    assert!(
        msg.at > t
            && msg.json()["error"]
                .as_str()
                .unwrap()
                .contains("no camera \"nocam\"")
    );
    wait_state(&col, "people", t, |s| s == "ON" || s == "OFF");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("state/queries.json")).unwrap(),
        saved,
        "a refused spec must not change the saved queries"
    );
    assert!(states_since(&col, "bad", Instant::now() - WAIT).is_empty());

    // Delete a query of the config file: its retained state and its entity go.
    let t = set(&url, "person", "");
    assert!(
        col.wait_for(
            |m| m.iter().any(|m| m.at > t
                && m.topic == DEVICE
                && m.json()["components"]["ocellus_cam_person"]
                    == serde_json::json!({"platform": "binary_sensor"})),
            WAIT
        ),
        "{}",
        col.dump()
    );
    std::thread::sleep(Duration::from_secs(2));
    let fresh = MqttCollector::new(&url);
    assert!(fresh.wait_for(
        |m| m.iter().any(|m| m.topic == state_topic("cam", "astro")),
        WAIT
    ));
    assert!(
        fresh.last(&state_topic("cam", "person")).is_none(),
        "the deleted query's retained state is cleared:\n{}",
        fresh.dump()
    );
    drop(fresh);
    let saved: Value = serde_json::from_str(
        &std::fs::read_to_string(dir.path().join("state/queries.json")).unwrap(),
    )
    .unwrap();
    let cam = &saved["cameras"]["cam"];
    assert_eq!(cam["deleted"], serde_json::json!(["person"]), "{saved}");
    assert_eq!(cam["set"]["people"]["kind"], "yes_no", "{saved}");
    assert_eq!(cam["set"]["astro"]["model"], "tiny", "{saved}");
    let first = daemon.output();
    assert!(
        daemon.stop_within(Duration::from_secs(30)).success(),
        "{first}"
    );

    // Restart: the runtime changes come back from the state file.
    let restart = Instant::now();
    let mut daemon = Daemon::start_with_env(&cfg, &[], &log_env);
    wait_state(&col, "astro", restart, |s| s == "ON" || s == "OFF");
    wait_state(&col, "people", restart, |s| s == "ON" || s == "OFF");
    let out = daemon.output();
    assert!(
        out.contains("camera cam: 3 runtime query change(s) restored"),
        "{out}"
    );
    assert_eq!(embedded(&out, "an astronaut"), 1, "{out}");
    assert!(
        states_since(&col, "person", restart).is_empty(),
        "a deleted query stays deleted after a restart"
    );
    assert!(daemon.stop_within(Duration::from_secs(30)).success());
}
