//! Home Assistant MQTT discovery against a real mosquitto, with the test playing Home
//! Assistant: every device config is checked against the field names and types of
//! Home Assistant's MQTT discovery docs (device-based form), the birth message makes
//! the daemon announce again, a camera or query removed from the config is removed
//! from Home Assistant on the next start, and `discovery = false` announces nothing.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn config(dir: &Path, client: &str, extra_mqtt: &str, cameras: &str) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "[mqtt]\nurl = \"mqtt://127.0.0.1:1\"\nclient_id = {}\n{extra_mqtt}\n\n{}{}\
             [models.ocr]\nfamily = \"ppocr\"\ndir = {}\nproviders = [\"cpu\"]\n\n{cameras}",
            toml_str(&client_id(client)),
            engine_and_yolox(),
            "",
            toml_path(&models_dir().join("ppocrv4_rapidocr")),
        ),
    )
}

fn door(clip: &Path, with_cups: bool) -> String {
    let mut s = format!(
        "[[cameras]]\nrealtime = false\nid = \"door\"\nname = \"Front door\"\nurl = {}\nrepeat = true\n\n{}\
         [[cameras.queries]]\nid = \"meter\"\nname = \"Meter reading\"\nask = \"meter\"\nkind = \"read\"\n\
         model = \"ocr\"\npattern = '(\\d+)'\nunit = \"bar\"\n\n\
         [[cameras.queries]]\nid = \"sign\"\nask = \"what does the sign say?\"\nkind = \"read\"\nmodel = \"ocr\"\n\n",
        toml_path(clip),
        person_query("expire_after = \"2s\""),
    );
    if with_cups {
        s.push_str(
            "[[cameras.queries]]\nid = \"cups\"\nask = \"how many cups?\"\nkind = \"count\"\n\
             model = \"coco\"\nlabel = \"cup\"\nunit = \"cups\"\n\n",
        );
    }
    s
}

fn yard(clip: &Path) -> String {
    format!(
        "[[cameras]]\nrealtime = false\nid = \"yard\"\nurl = {}\nrepeat = true\n\n{}",
        toml_path(clip),
        person_query("")
    )
}

const DOOR: &str = "homeassistant/device/ocellus_door/config";
const YARD: &str = "homeassistant/device/ocellus_yard/config";

fn is_str(v: &Value) -> bool {
    v.as_str().is_some_and(|s| !s.is_empty())
}

/// Checks a device-based discovery payload against Home Assistant's documented
/// fields and types; returns the components by key.
fn check_device(cfg: &Value, camera: &str) -> serde_json::Map<String, Value> {
    let text = cfg.to_string();
    let device = &cfg["device"];
    let ids = device["identifiers"]
        .as_array()
        .expect("device.identifiers list");
    assert_eq!(ids, &vec![Value::from(format!("ocellus_{camera}"))]);
    for k in ["name", "manufacturer", "model", "sw_version"] {
        assert!(is_str(&device[k]), "device.{k}: {text}");
    }
    assert!(is_str(&cfg["origin"]["name"]), "origin.name: {text}");
    let availability = cfg["availability"].as_array().expect("availability list");
    assert_eq!(availability[0]["topic"], "ocellus/status");
    assert_eq!(availability[1]["topic"], format!("ocellus/{camera}/status"));
    for a in availability {
        assert!(
            is_str(&a["payload_available"]) && is_str(&a["payload_not_available"]),
            "{a}"
        );
    }
    assert_eq!(cfg["availability_mode"], "all");
    assert!(cfg["qos"].is_u64());
    let components = cfg["components"]
        .as_object()
        .expect("components map")
        .clone();
    for (key, c) in &components {
        let platform = c["platform"].as_str().expect("platform");
        assert!(
            ["binary_sensor", "sensor", "event", "image"].contains(&platform),
            "{key}: {c}"
        );
        if c.as_object().is_some_and(|o| o.len() == 1) {
            continue; // a removed entity: only its platform
        }
        assert_eq!(c["unique_id"], key.as_str(), "{c}");
        // The entity id: default_entity_id for Home Assistant 2025.10 on, object_id
        // (deprecated there, ignored beside default_entity_id) for 2025.4 to 2025.9.
        assert_eq!(c["default_entity_id"], format!("{platform}.{key}"), "{c}");
        assert_eq!(c["object_id"], key.as_str(), "{c}");
        assert!(is_str(&c["name"]) && is_str(&c["state_topic"]), "{c}");
        match platform {
            "binary_sensor" => {
                assert_eq!(
                    (c["payload_on"].as_str(), c["payload_off"].as_str()),
                    (Some("ON"), Some("OFF"))
                );
                assert!(is_str(&c["json_attributes_topic"]), "{c}");
            }
            "sensor" => {
                assert!(is_str(&c["json_attributes_topic"]), "{c}");
                if let Some(sc) = c.get("state_class") {
                    assert!(
                        ["measurement", "total", "total_increasing"]
                            .contains(&sc.as_str().unwrap())
                    );
                }
                if let Some(u) = c.get("unit_of_measurement") {
                    assert!(is_str(u), "{c}");
                }
            }
            "event" => {
                let types = c["event_types"].as_array().expect("event_types list");
                assert!(!types.is_empty() && types.iter().all(is_str), "{c}");
            }
            _ => {}
        }
    }
    components
}

#[test]
fn home_assistant_sees_each_camera_as_a_device_and_removed_entities_go() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(dir.path(), "door.mkv", &[("astronaut.png", 2.0)]);
    let broker = Mosquitto::start();
    let ha = MqttCollector::with_filter(&broker.url(), "homeassistant/#");
    let cfg = config(
        dir.path(),
        "ha",
        "",
        &format!("{}{}", door(&clip, true), yard(&clip)),
    );
    let person = MqttCollector::with_filter(&broker.url(), "ocellus/door/query/person/+");
    const STATE: &str = "ocellus/door/query/person/state";
    const ATTRIBUTES: &str = "ocellus/door/query/person/attributes";
    let mut daemon = Daemon::start(&cfg, &["--mqtt-url", &broker.url()]);
    assert!(
        ha.wait_for(
            |m| [DOOR, YARD].iter().all(|t| m.iter().any(|x| x.topic == *t)),
            Duration::from_secs(30)
        ),
        "{}\n{}",
        ha.dump(),
        daemon.output()
    );
    let components = check_device(&ha.last(DOOR).unwrap().json(), "door");
    let c = |k: &str| {
        components
            .get(k)
            .unwrap_or_else(|| panic!("no {k}: {components:#?}"))
    };
    assert_eq!(c("ocellus_door_person")["platform"], "binary_sensor");
    assert_eq!(
        c("ocellus_door_person")["state_topic"],
        "ocellus/door/query/person/state"
    );
    // expire_after: Home Assistant expires the state unless it is re-sent, which the
    // daemon does (at least twice per period) while frames flow.
    assert_eq!(c("ocellus_door_person")["expire_after"], 2);
    assert!(c("ocellus_door_cups").get("expire_after").is_none());
    assert!(
        person.wait_for(
            |m| m.iter().filter(|m| m.topic == STATE).count() >= 3,
            Duration::from_secs(10)
        ),
        "the person state (always ON) should be re-sent every second:\n{}",
        person.dump()
    );
    // The state goes alone: the attributes (a new frame_time each time, a row in
    // Home Assistant's recorder) go out with the first state and each change only,
    // the first state before them (the retained state may be an earlier run's).
    let msgs = person.messages();
    let states: Vec<String> = msgs
        .iter()
        .filter(|m| m.topic == STATE)
        .map(|m| m.text())
        .collect();
    let changes = states.windows(2).filter(|w| w[0] != w[1]).count();
    let attributes = msgs.iter().filter(|m| m.topic == ATTRIBUTES).count();
    assert_eq!(attributes, 1 + changes, "{}", person.dump());
    assert_eq!(msgs[0].topic, STATE, "{}", person.dump());
    assert_eq!(c("ocellus_door_cups")["unit_of_measurement"], "cups");
    assert_eq!(c("ocellus_door_cups")["state_class"], "measurement");
    assert_eq!(c("ocellus_door_meter")["name"], "Meter reading");
    assert_eq!(c("ocellus_door_meter")["unit_of_measurement"], "bar");
    assert!(
        c("ocellus_door_sign").get("state_class").is_none(),
        "text sensor"
    );
    assert_eq!(
        c("ocellus_door_events")["event_types"],
        serde_json::json!(["person", "meter", "sign", "cups"])
    );
    assert_eq!(
        ha.last(DOOR).unwrap().json()["device"]["name"],
        "Front door"
    );
    check_device(&ha.last(YARD).unwrap().json(), "yard");

    // Home Assistant (re)starts: its birth message makes the daemon announce again.
    let before = ha.payloads(DOOR).len();
    publish_once(&broker.url(), "homeassistant/status", "online", false);
    assert!(
        ha.wait_for(
            |m| m.iter().filter(|x| x.topic == DOOR).count() > before,
            Duration::from_secs(10)
        ),
        "no discovery after the birth message:\n{}",
        ha.dump()
    );
    assert!(daemon.stop_within(Duration::from_secs(30)).success());

    // Next start without the yard camera and without the cups query.
    let cfg = config(dir.path(), "ha", "", &door(&clip, false));
    let mut daemon = Daemon::start(&cfg, &["--mqtt-url", &broker.url()]);
    let removed = |m: &[Msg]| {
        let yard_gone = m.iter().any(|x| x.topic == YARD && x.payload.is_empty());
        let cups_gone = m.iter().filter(|x| x.topic == DOOR).any(|x| {
            x.json()["components"]["ocellus_door_cups"] == serde_json::json!({"platform": "sensor"})
        });
        yard_gone && cups_gone
    };
    assert!(
        ha.wait_for(removed, Duration::from_secs(30)),
        "the yard device and the cups entity should be removed:\n{}\n{}",
        ha.dump(),
        daemon.output()
    );
    let last = ha.last(DOOR).unwrap().json();
    let components = check_device(&last, "door");
    assert!(components.contains_key("ocellus_door_person"));
    assert!(daemon.stop_within(Duration::from_secs(30)).success());
    // A fresh Home Assistant sees no yard device left behind.
    let fresh = MqttCollector::with_filter(&broker.url(), "homeassistant/#");
    assert!(fresh.wait_for(
        |m| m.iter().any(|x| x.topic == DOOR),
        Duration::from_secs(10)
    ));
    assert!(fresh.last(YARD).is_none(), "{}", fresh.dump());
}

#[test]
fn discovery_can_be_switched_off() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(dir.path(), "door.mkv", &[("astronaut.png", 2.0)]);
    let broker = Mosquitto::start();
    let col = MqttCollector::new(&broker.url());
    let cfg = config(dir.path(), "off", "discovery = false", &door(&clip, true));
    let mut daemon = Daemon::start(&cfg, &["--mqtt-url", &broker.url()]);
    assert!(
        col.wait_for(
            |m| m
                .iter()
                .any(|x| x.topic == "ocellus/door/query/person/state"),
            Duration::from_secs(30)
        ),
        "{}",
        col.dump()
    );
    publish_once(&broker.url(), "homeassistant/status", "online", false);
    std::thread::sleep(Duration::from_secs(1));
    assert!(daemon.stop_within(Duration::from_secs(30)).success());
    let ha: Vec<String> = col
        .topics()
        .into_iter()
        .filter(|t| t.starts_with("homeassistant/device/"))
        .collect();
    assert!(ha.is_empty(), "{ha:?}");
}
