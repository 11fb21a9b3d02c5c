//! MQTT size limits, both ways, through the real daemon, GStreamer, YOLOX-nano and a
//! real mosquitto: a 5 MB retained message on a subscribed topic is discarded and
//! counted while the session goes on (no reconnect, states keep flowing); what
//! would be over `mqtt.max_packet_size` (a snapshot, a Home Assistant device config)
//! is refused where it is made and the rest flows; a message the broker closes the
//! connection on (a broker limit below the daemon's) is dropped after a few tries
//! instead of blocking everything behind it forever, and those disconnects cost the
//! journal no rewrite; and the outage journal with
//! snapshots on stays under `mqtt.journal_max_bytes` while the next start still
//! delivers its events first, in order.

use crate::common;

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use common::*;

const WAIT: Duration = Duration::from_secs(60);

/// A 1 s astronaut / 1 s coffee clip: a `person` change every second of video.
fn flip_clip(dir: &Path) -> std::path::PathBuf {
    media_clip(
        dir,
        "flip.mkv",
        &[("astronaut.png", 1.0), ("coffee.png", 1.0)],
    )
}

/// The daemon's config: `[mqtt]` with `mqtt_extra`, `[http]` on `http`, `extra`
/// sections, camera `cam` looping the flip clip (made in `dir`) with `queries`.
fn config(
    dir: &Path,
    url: &str,
    role: &str,
    http: u16,
    mqtt_extra: &str,
    extra: &str,
    queries: &str,
) -> std::path::PathBuf {
    let clip = flip_clip(dir);
    write_config(
        dir,
        &format!(
            "[mqtt]\nurl = {}\nclient_id = {}\n{mqtt_extra}\n\n[http]\nlisten = \"127.0.0.1:{http}\"\n\n\
             {}{extra}\n[[cameras]]\nrealtime = false\nid = \"cam\"\nurl = {}\nsample_fps = 4\nrepeat = true\n\n{queries}",
            toml_str(url),
            toml_str(&client_id(role)),
            engine_and_yolox(),
            toml_path(&clip),
        ),
    )
}

/// One sample of `/metrics` (no labels), or `None`.
fn metric(port: u16, name: &str) -> Option<f64> {
    let r = http(port, "GET", "/metrics", None, b"")?;
    let key = format!("{name} ");
    r.text()
        .lines()
        .find_map(|l| l.strip_prefix(key.as_str()))
        .and_then(|v| v.trim().parse().ok())
}

fn metric_at_least(port: u16, name: &str, n: f64) -> bool {
    wait_until(WAIT, || metric(port, name).is_some_and(|v| v >= n))
}

/// Messages on `ocellus/cam/events` among `m`.
fn events(m: &[Msg]) -> usize {
    m.iter().filter(|x| x.topic == events_topic("cam")).count()
}

#[test]
fn a_5mb_retained_message_on_subscribed_topics_is_discarded_and_the_session_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let url = broker.url();
    // Retained before the daemon subscribes: the broker hands them over at every
    // subscribe (the old client dropped the connection on each, for ever).
    let big = vec![b'x'; 5 << 20];
    publish_once(&url, "homeassistant/device/zzz/config", big.clone(), true);
    publish_once(&url, "ocellus/cam/query/q/set", big, true);
    let port = free_port();
    let cfg = config(
        dir.path(),
        &url,
        "limits-in",
        port,
        "",
        "",
        &person_query(""),
    );
    let col = MqttCollector::with_filter(&url, "ocellus/cam/#");
    let mut daemon = Daemon::start(&cfg, &[]);

    // The oversized spec is refused on its error topic, with its size.
    let error = col
        .wait_for_topic("ocellus/cam/query/q/error", WAIT)
        .unwrap_or_else(|| panic!("no error for the 5 MB spec:\n{}", daemon.output()));
    let reason = error.json()["error"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("5242880 bytes") && reason.contains("65536"),
        "{reason}"
    );
    // Both discarded, counted, one warning naming the topic and the size.
    assert!(
        metric_at_least(port, "ocellus_mqtt_incoming_dropped_total", 2.0),
        "discards not counted:\n{}",
        daemon.output()
    );
    assert!(
        daemon.wait_output("discarded a 5242880-byte", Duration::from_secs(10)),
        "{}",
        daemon.output()
    );
    // The session goes on: states and events keep coming after the discards ...
    col.clear();
    assert!(
        col.wait_for(|m| events(m) >= 3, WAIT),
        "no events after the discards:\n{}\n{}",
        col.dump(),
        daemon.output()
    );
    // ... on the first connection, never dropped.
    assert_eq!(metric(port, "ocellus_mqtt_reconnects_total"), Some(0.0));
    assert_eq!(metric(port, "ocellus_mqtt_connected"), Some(1.0));
    let log = daemon.output();
    assert!(!log.contains("unreachable"), "{log}");
    assert!(daemon.stop_within(Duration::from_secs(30)).success());
}

/// Twelve yes/no queries on `person` with 100-character names: a device config of
/// about 6 KB.
fn twelve_long_named_queries() -> String {
    (0..12)
        .map(|i| {
            format!(
                "[[cameras.queries]]\nid = \"p{i}\"\nname = \"{}\"\nask = \"a person?\"\n\
                 kind = \"yes_no\"\nmodel = \"coco\"\nlabel = \"person\"\n\n",
                "N".repeat(100)
            )
        })
        .collect()
}

#[test]
fn what_would_exceed_max_packet_size_is_refused_at_its_source_and_the_rest_flows() {
    let dir = tempfile::tempdir().unwrap();
    let broker = Mosquitto::start();
    let url = broker.url();
    let port = free_port();
    let snaps = dir.path().join("snaps");
    let cfg = config(
        dir.path(),
        &url,
        "limits-out",
        port,
        "max_packet_size = 4096\ndetections = false",
        &format!(
            "[snapshots]\ndir = {}\nkeep = 2\nquality = 95\n\n",
            toml_path(&snaps)
        ),
        &twelve_long_named_queries(),
    );
    let col = MqttCollector::new(&url);
    let mut daemon = Daemon::start(&cfg, &[]);
    assert!(
        col.wait_for(|m| events(m) >= 3, WAIT),
        "events must flow:\n{}\n{}",
        col.dump(),
        daemon.output()
    );
    // The snapshot JPEG (over 4 KB) and the device config (about 6 KB) were refused
    // where they were made, each with its line, and counted.
    assert!(
        metric_at_least(port, "ocellus_mqtt_refused_total", 2.0),
        "{}",
        daemon.output()
    );
    let log = daemon.output();
    assert!(log.contains("not publishing ocellus/cam/snapshot"), "{log}");
    assert!(
        log.contains("not publishing the config of device ocellus_cam"),
        "{log}"
    );
    let topics: HashSet<String> = col.topics().into_iter().collect();
    assert!(!topics.contains("ocellus/cam/snapshot"), "{topics:?}");
    assert!(
        !topics.contains("homeassistant/device/ocellus_cam/config"),
        "{topics:?}"
    );
    // The events still name their snapshot file; states go out; no reconnect.
    let event = col.last(&events_topic("cam")).unwrap().json();
    assert!(event["snapshot"]["file"].is_string(), "{event}");
    assert!(topics.contains(&state_topic("cam", "p0")), "{topics:?}");
    assert_eq!(metric(port, "ocellus_mqtt_reconnects_total"), Some(0.0));
    assert!(daemon.stop_within(Duration::from_secs(30)).success());
}

#[test]
fn a_message_the_broker_disconnects_on_is_dropped_not_retried_forever() {
    let dir = tempfile::tempdir().unwrap();
    // The broker closes the connection of a client that sends a packet over 20000
    // bytes; the daemon, left at its default limit, cannot know.
    let broker = Mosquitto::start_with_conf("max_packet_size 20000");
    let url = broker.url();
    let port = free_port();
    let snaps = dir.path().join("snaps");
    let cfg = config(
        dir.path(),
        &url,
        "limits-broker",
        port,
        &format!(
            "detections = false\nstate_dir = {}",
            toml_path(&dir.path().join("state"))
        ),
        &format!(
            "[snapshots]\ndir = {}\nkeep = 2\nquality = 95\n\n",
            toml_path(&snaps)
        ),
        &person_query(""),
    );
    let col = MqttCollector::with_filter(&url, &events_topic("cam"));
    let mut daemon = Daemon::start(&cfg, &[]);
    // Each event's snapshot (tens of KB) goes out ahead of it: without the drop,
    // no event would ever get through.
    assert!(
        col.wait_for(|m| m.len() >= 3, WAIT),
        "events blocked behind a refused snapshot:\n{}\n{}",
        broker.log(),
        daemon.output()
    );
    let log = daemon.output();
    assert!(log.contains("dropping ocellus/cam/snapshot"), "{log}");
    assert!(
        metric(port, "ocellus_mqtt_refused_total").is_some_and(|v| v >= 1.0),
        "{log}"
    );
    assert!(broker.log().contains("oversize packet"), "{}", broker.log());
    // The disconnects cost the journal no rewrite: each message is written once at
    // most (an event, its state, attributes and snapshot), not the whole outbox again
    // at every disconnect.
    let lines = metric(port, "ocellus_mqtt_journal_lines_total").unwrap();
    let raised = metric(port, "ocellus_mqtt_events_raised_total").unwrap();
    assert!(
        lines <= 4.0 * raised + 20.0,
        "{lines} journal lines for {raised} events"
    );
    assert!(daemon.stop_within(Duration::from_secs(30)).success());
}

/// The size of the largest file under `dir` (in any folder below it).
fn largest_file(dir: &Path) -> u64 {
    let mut largest = 0;
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let Ok(m) = e.metadata() else { continue };
        largest = largest.max(if m.is_dir() {
            largest_file(&e.path())
        } else {
            m.len()
        });
    }
    largest
}

#[test]
fn the_journal_stays_under_its_cap_with_snapshots_and_still_delivers_in_order() {
    const CAP: u64 = 512 << 10;
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let snaps = dir.path().join("snaps");
    let mut broker = Mosquitto::start();
    let url = broker.url();
    let port = free_port();
    let cfg = config(
        dir.path(),
        &url,
        "limits-journal",
        port,
        &format!(
            "state_dir = {}\nkeep_alive = \"2s\"\nmax_packet_size = {}\njournal_max_bytes = {CAP}",
            toml_path(&state),
            256 << 10
        ),
        &format!(
            "[snapshots]\ndir = {}\nkeep = 2\nquality = 95\n\n",
            toml_path(&snaps)
        ),
        &person_query(""),
    );
    // The broker is down for the whole first run.
    broker.stop();
    let journal = state.join("outbox.jsonl");
    let journaled_events = || journaled(&journal, "ocellus/cam/events");
    let mut first = Daemon::start(&cfg, &[]);
    // Enough snapshots for several times the cap (each one tens of KB).
    let mut largest = 0;
    let raised = || metric(port, "ocellus_mqtt_events_raised_total").unwrap_or(0.0);
    let ok = wait_until(Duration::from_secs(120), || {
        let size = std::fs::metadata(&journal).map_or(0, |m| m.len());
        largest = largest.max(size);
        raised() >= 30.0
    });
    assert!(ok, "too few events during the outage:\n{}", first.output());
    let snapshot = largest_file(&snaps);
    assert!(
        30 * snapshot > 2 * CAP,
        "snapshots of {snapshot} bytes: the test proved little"
    );
    assert!(largest <= CAP, "journal reached {largest} bytes, cap {CAP}");
    let reported = metric(port, "ocellus_mqtt_journal_bytes").unwrap();
    assert!(reported as u64 <= CAP, "{reported}");
    assert!(
        first.stop_within(Duration::from_secs(30)).success(),
        "{}",
        first.output()
    );
    let size = std::fs::metadata(&journal).unwrap().len();
    assert!(size <= CAP, "journal left at {size} bytes, cap {CAP}");
    // Retained snapshots coalesce: one line at most after the shutdown.
    let text = std::fs::read_to_string(&journal).unwrap();
    let snapshot_lines = text
        .lines()
        .filter(|l| l.contains("\"topic\":\"ocellus/cam/snapshot\""))
        .count();
    assert!(snapshot_lines <= 1, "{snapshot_lines} snapshot lines");
    let kept = journaled_events();
    assert!(kept.len() >= 20, "{} events journaled", kept.len());

    // The broker is back; a subscriber is there before the daemon restarts.
    broker.start_again();
    let col = MqttCollector::with_filter(&url, &events_topic("cam"));
    let mut second = Daemon::start(&cfg, &[]);
    let ids: Vec<String> = kept
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    assert!(
        col.wait_for(|m| m.len() >= ids.len(), WAIT),
        "journaled events missing after the restart:\n{}\n{}",
        col.dump(),
        second.output()
    );
    let received: Vec<String> = col
        .messages()
        .iter()
        .map(|m| m.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(&received[..ids.len()], &ids[..], "{received:#?}");
    assert!(
        wait_until(Duration::from_secs(20), || journaled_events().is_empty()),
        "journal not emptied"
    );
    assert!(second.stop_within(Duration::from_secs(30)).success());
    eprintln!(
        "journal: {} events kept, largest file {largest} bytes (cap {CAP}), snapshots {snapshot} bytes",
        ids.len()
    );
}
