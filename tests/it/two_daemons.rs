//! Scaling past one box: two daemons (real YOLOX-nano, GStreamer) on one mosquitto,
//! each with its own topic prefix and the default client id (`<prefix>-<hostname>`),
//! both with a camera named `door`. Nothing collides: each one's topics, Home
//! Assistant devices and unique ids stay under its own prefix, both stay connected,
//! and stopping one marks only that one offline and removes nothing of the other.
//! A third daemon given the first one's client id is told why the broker keeps
//! closing its connection.

use crate::common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

fn site(dir: &Path, prefix: &str, broker: &str, clip: &Path, extra_mqtt: &str) -> PathBuf {
    let dir = dir.join(prefix);
    std::fs::create_dir_all(&dir).unwrap();
    write_config(
        &dir,
        &format!(
            "[mqtt]\nurl = {}\nprefix = \"{prefix}\"\nkeep_alive = \"5s\"\n{extra_mqtt}\n\n{}\
             [[cameras]]\nrealtime = false\nid = \"door\"\nurl = {}\nrepeat = true\nsample_fps = 2\n\n{}\
             [[cameras.queries]]\nid = \"cups\"\nask = \"how many cups?\"\nkind = \"count\"\nmodel = \"coco\"\nlabel = \"cup\"\n\n",
            toml_str(broker),
            engine_and_yolox(),
            toml_path(clip),
            person_query(""),
        ),
    )
}

/// The retained discovery configs on the broker, by topic.
fn discovery(broker: &str) -> Vec<(String, Value)> {
    let col = MqttCollector::with_filter(broker, "homeassistant/device/+/config");
    std::thread::sleep(Duration::from_millis(500));
    let mut configs: Vec<(String, Value)> = col
        .messages()
        .into_iter()
        .filter(|m| !m.payload.is_empty())
        .map(|m| (m.topic.clone(), m.json()))
        .collect();
    configs.sort_by(|a, b| a.0.cmp(&b.0));
    configs
}

fn unique_ids(cfg: &Value) -> BTreeSet<String> {
    cfg["components"]
        .as_object()
        .unwrap()
        .values()
        .map(|c| c["unique_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn two_daemons_on_one_broker_do_not_collide() {
    let dir = tempfile::tempdir().unwrap();
    let person = media_clip(dir.path(), "person.mkv", &[("astronaut.png", 2.0)]);
    let cups = media_clip(dir.path(), "cups.mkv", &[("coffee.png", 2.0)]);
    let broker = Mosquitto::start();
    let url = broker.url();
    let all = MqttCollector::new(&url);
    let mut a = Daemon::start(&site(dir.path(), "site-a", &url, &person, ""), &[]);
    let mut b = Daemon::start(&site(dir.path(), "site-b", &url, &cups, ""), &[]);

    let a_person = "site-a/door/query/person/state";
    let b_cups = "site-b/door/query/cups/state";
    assert!(
        all.wait_for(
            |m| m.iter().any(|m| m.topic == a_person && m.text() == "ON")
                && m.iter().any(|m| m.topic == b_cups && m.text() == "1"),
            WAIT
        ),
        "{}",
        all.dump()
    );
    // Let both run side by side for a while, then look at everything they sent.
    std::thread::sleep(Duration::from_secs(4));
    let a_out = a.output();
    let b_out = b.output();
    for (out, prefix) in [(&a_out, "site-a"), (&b_out, "site-b")] {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
        let id = format!("{prefix}-{}", host.trim());
        assert_eq!(
            out.matches(&format!("mqtt: connected to {url} as {id}"))
                .count(),
            1,
            "{prefix} connected once, as {id}:\n{out}"
        );
        assert!(!out.contains("closed the connection"), "{out}");
    }
    assert!(
        !broker.log().contains("already connected"),
        "a client id was shared:\n{}",
        broker.log()
    );
    for m in all.messages() {
        let t = &m.topic;
        assert!(
            t.starts_with("site-a/")
                || t.starts_with("site-b/")
                || t == "homeassistant/device/site-a_door/config"
                || t == "homeassistant/device/site-b_door/config",
            "a topic outside both prefixes: {t}"
        );
    }
    assert_eq!(all.last("site-a/status").unwrap().text(), "online");
    assert_eq!(all.last("site-b/status").unwrap().text(), "online");
    // Each camera's answers stay its own: B's camera (coffee) never shows a person,
    // always one cup.
    assert!(
        all.payloads(b_cups).iter().all(|p| p == "1"),
        "{:?}",
        all.payloads(b_cups)
    );
    assert!(
        all.payloads("site-b/door/query/person/state")
            .iter()
            .all(|p| p == "OFF")
    );

    let configs = discovery(&url);
    let topics: Vec<&str> = configs.iter().map(|(t, _)| t.as_str()).collect();
    assert_eq!(
        topics,
        [
            "homeassistant/device/site-a_door/config",
            "homeassistant/device/site-b_door/config"
        ]
    );
    let (ua, ub) = (unique_ids(&configs[0].1), unique_ids(&configs[1].1));
    assert!(ua.iter().all(|u| u.starts_with("site-a_door_")), "{ua:?}");
    assert!(ub.iter().all(|u| u.starts_with("site-b_door_")), "{ub:?}");
    assert!(ua.is_disjoint(&ub));
    // Home Assistant object ids are [a-z0-9_]: the prefix's '-' becomes '_'.
    assert_eq!(
        configs[0].1["components"]["site-a_door_person"]["default_entity_id"],
        "binary_sensor.site_a_door_person"
    );
    assert_eq!(configs[0].1["availability"][0]["topic"], "site-a/status");
    assert_eq!(configs[1].1["availability"][0]["topic"], "site-b/status");

    // A third daemon configured with A's client id: the broker drops one for the
    // other over and over, and the daemon says why.
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let stolen = format!("client_id = \"site-a-{}\"", host.trim());
    let mut c = Daemon::start(&site(dir.path(), "site-c", &url, &person, &stolen), &[]);
    let hint = "is another client using client_id";
    assert!(
        wait_until(WAIT, || a.output().contains(hint)
            || c.output().contains(hint)),
        "no hint about the shared client id\nA:\n{}\nC:\n{}",
        a.output(),
        c.output()
    );
    c.stop();

    // Stopping A: only A goes offline; B's device and retained state stay.
    a.stop();
    assert!(
        all.wait_for(
            |m| m
                .iter()
                .rev()
                .find(|m| m.topic == "site-a/status")
                .is_some_and(|m| m.text() == "offline"),
            WAIT
        ),
        "{}",
        all.dump()
    );
    assert_eq!(all.last("site-b/status").unwrap().text(), "online");
    let configs = discovery(&url);
    assert!(
        configs
            .iter()
            .any(|(t, _)| t == "homeassistant/device/site-b_door/config"),
        "{configs:?}"
    );
    b.stop();
}
