//! A daemon restarted during a broker outage loses no event: with `[mqtt] state_dir`,
//! what it produced while the broker was unreachable is journaled on disk, and the
//! next run delivers it first, in order, before anything new; the journal empties once
//! the broker has acknowledged everything. Real mosquitto, GStreamer, YOLOX-nano.

use crate::common;

use std::collections::HashSet;
use std::time::Duration;

use common::*;

#[test]
fn events_raised_during_an_outage_survive_a_daemon_restart() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(
        dir.path(),
        "flip.mkv",
        &[("astronaut.png", 1.0), ("coffee.png", 1.0)],
    );
    let state = dir.path().join("state");
    let mut broker = Mosquitto::start();
    let url = broker.url();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[mqtt]\nurl = {}\nclient_id = {}\nstate_dir = {}\nkeep_alive = \"2s\"\n\n{}\
             [[cameras]]\nrealtime = false\nid = \"cam\"\nurl = {}\nsample_fps = 4\nrepeat = true\n\n{}",
            toml_str(&url),
            toml_str(&client_id("journal")),
            toml_path(&state),
            engine_and_yolox(),
            toml_path(&clip),
            person_query(""),
        ),
    );
    // The broker is down for the whole first run.
    broker.stop();
    let mut first = Daemon::start(&cfg, &[]);
    let journal = state.join("outbox.jsonl");
    let journaled_events = || journaled(&journal, "ocellus/cam/events");
    assert!(
        wait_until(Duration::from_secs(60), || journaled_events().len() >= 4),
        "no events journaled during the outage:\n{}",
        first.output()
    );
    assert!(
        first.stop_within(Duration::from_secs(30)).success(),
        "{}",
        first.output()
    );
    let kept = journaled_events();
    assert!(kept.len() >= 4, "{kept:#?}");

    // The broker is back; a subscriber is there before the daemon restarts.
    broker.start_again();
    let col = MqttCollector::with_filter(&url, "ocellus/cam/events");
    let mut second = Daemon::start(&cfg, &[]);
    let ids: Vec<String> = kept
        .iter()
        .map(|e| e["id"].as_str().unwrap().to_string())
        .collect();
    let all_arrived = |m: &[Msg]| {
        let got: HashSet<String> = m
            .iter()
            .map(|x| x.json()["id"].as_str().unwrap().to_string())
            .collect();
        ids.iter().all(|id| got.contains(id))
    };
    assert!(
        col.wait_for(all_arrived, Duration::from_secs(30)),
        "journaled events missing after the restart:\n{}\n{}",
        col.dump(),
        second.output()
    );
    // They came first, in their order, before anything the second run raised.
    let received: Vec<String> = col
        .messages()
        .iter()
        .map(|m| m.json()["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(&received[..ids.len()], &ids[..], "{received:#?}");
    // Delivered and acknowledged: the journal empties.
    assert!(
        wait_until(Duration::from_secs(10), || journaled_events().is_empty()),
        "journal not emptied"
    );
    assert!(second.stop_within(Duration::from_secs(30)).success());
    eprintln!(
        "journal: {} events raised during the outage, all delivered after the restart",
        ids.len()
    );
}
