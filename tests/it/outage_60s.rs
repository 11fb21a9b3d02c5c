//! A 60-second broker outage loses no event: the real daemon raises a `person` event
//! at every picture change of a looping astronaut/coffee clip (real GStreamer,
//! YOLOX-nano, mosquitto; a file plays as fast as it is evaluated, so thousands of
//! events) while its broker is killed for 60 s and started again; in
//! the second test the daemon is also restarted half-way through the outage (with
//! `[mqtt] state_dir`). Every event the daemon says it raised (its exit summary line
//! `metrics mqtt: ... N events raised, M acknowledged`) arrives, at least once with a
//! stable id (a duplicate is a byte-identical re-send), in order. Each test prints
//! its figures: events sent, received, duplicates, the largest delay.
//!
//! The daemon reaches the broker through a `GatedProxy`: at the start of the outage
//! the daemon is cut off half a second before the broker is killed (a broker killed
//! with deliveries in flight loses them itself), and afterwards the proxy opens only
//! once the test's subscriber has subscribed again.

use crate::common;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use common::*;
use serde_json::Value;

const CAM: &str = "cam";
const OUTAGE: Duration = Duration::from_secs(60);

/// A private broker behind a gated proxy, a subscriber to the camera's events, and
/// the config of a daemon raising a person event every second of the clip.
struct Setup {
    broker: Mosquitto,
    proxy: GatedProxy,
    col: MqttCollector,
    cfg: PathBuf,
    /// Wall clock and monotonic clock read together (arrival `Instant` → time).
    epoch: (SystemTime, Instant),
    _dir: tempfile::TempDir,
}

impl Setup {
    /// With `journal`, the daemon keeps its outbox journal in `<state_dir>`, returned.
    fn new(role: &str, journal: bool) -> (Self, Option<PathBuf>) {
        let dir = tempfile::tempdir().unwrap();
        let clip = media_clip(
            dir.path(),
            "flip.mkv",
            &[("astronaut.png", 1.0), ("coffee.png", 1.0)],
        );
        let broker = Mosquitto::start();
        let proxy = GatedProxy::start(broker.port());
        let col = MqttCollector::with_filter(&broker.url(), &events_topic(CAM));
        let state = journal.then(|| dir.path().join("state"));
        let state_line = state
            .as_deref()
            .map(|p| format!("state_dir = {}\n", toml_path(p)))
            .unwrap_or_default();
        let cfg = write_config(
            dir.path(),
            &format!(
                "[mqtt]\nurl = {}\nclient_id = {}\nkeep_alive = \"2s\"\n{state_line}\n{}\
                 [[cameras]]\nrealtime = false\nid = {}\nurl = {}\nsample_fps = 4\nrepeat = true\n\n{}",
                toml_str(&proxy.url()),
                toml_str(&client_id(role)),
                engine_and_yolox(),
                toml_str(CAM),
                toml_path(&clip),
                person_query(""),
            ),
        );
        let setup = Setup {
            broker,
            proxy,
            col,
            cfg,
            epoch: (SystemTime::now(), Instant::now()),
            _dir: dir,
        };
        (setup, state)
    }

    /// Waits (up to 90 s) for the first two events.
    fn wait_first_events(&self, daemon: &Daemon) {
        assert!(
            self.col.wait_for(|m| m.len() >= 2, Duration::from_secs(90)),
            "fewer than 2 events before the outage; got:\n{}\ndaemon output:\n{}",
            self.col.dump(),
            daemon.output()
        );
    }

    /// Takes the broker away: the daemon is cut off first, the broker gets half a
    /// second to deliver what it has acknowledged, then it is killed. Returns when
    /// the outage began.
    fn broker_down(&mut self) -> (SystemTime, Instant) {
        self.proxy.set_open(false);
        let began = (SystemTime::now(), Instant::now());
        self.proxy.sever();
        thread::sleep(Duration::from_millis(500));
        self.broker.stop();
        assert!(self.col.wait_disconnected(Duration::from_secs(10)));
        began
    }

    /// Starts the broker again `OUTAGE` after `began`, and opens the proxy once the
    /// subscriber has subscribed again. Returns when the daemon could reconnect.
    fn broker_back(&mut self, began: Instant) -> SystemTime {
        thread::sleep((began + OUTAGE).saturating_duration_since(Instant::now()));
        self.broker.start_again();
        assert!(
            self.col.wait_suback_count(2, Duration::from_secs(20)),
            "the subscriber did not subscribe again after the broker restart"
        );
        let open = SystemTime::now();
        self.proxy.set_open(true);
        open
    }

    /// Waits (up to 60 s) for an event raised after `since`: the backlog, sent
    /// before it in order, has arrived by then.
    fn wait_event_after(&self, since: SystemTime, daemon: &Daemon) {
        // Only the messages not seen yet are parsed (the backlog is thousands).
        let mut seen = 0;
        let mut raised_after = |m: &[Msg]| {
            let found = m[seen..].iter().any(|m| event_time(&m.json()) > since);
            seen = m.len();
            found
        };
        assert!(
            self.col
                .wait_for(&mut raised_after, Duration::from_secs(60)),
            "no event raised after the broker came back arrived; got:\n{}\ndaemon output:\n{}",
            self.col.dump(),
            daemon.output()
        );
    }

    /// Waits (up to 10 s) until `n` distinct events have arrived (the broker may
    /// still be delivering when the daemon has exited).
    fn wait_unique(&self, n: usize) {
        let (mut distinct, mut seen) = (HashSet::new(), 0);
        self.col.wait_for(
            |m| {
                distinct.extend(m[seen..].iter().map(|m| m.payload.clone()));
                seen = m.len();
                distinct.len() >= n
            },
            Duration::from_secs(10),
        );
    }

    /// Every event in arrival order: arrival time, JSON, text.
    fn events(&self) -> Vec<(SystemTime, Value, String)> {
        self.col
            .messages()
            .iter()
            .map(|m| {
                let at = self.epoch.0 + m.at.duration_since(self.epoch.1);
                (at, m.json(), m.text())
            })
            .collect()
    }
}

/// SIGTERM; exit 0 within 30 s; returns the daemon's exit summary of the publisher.
fn stop(daemon: &mut Daemon) -> Summary {
    let status = daemon.stop_within(Duration::from_secs(30));
    assert!(
        status.success(),
        "SIGTERM should exit 0, got {status}; output:\n{}",
        daemon.output()
    );
    Summary::parse(&daemon.output())
}

/// The numbers of the daemon's last `metrics mqtt:` line (logged at exit).
#[derive(Debug, Clone, Copy)]
struct Summary {
    raised: usize,
    acknowledged: usize,
    dropped: usize,
}

impl Summary {
    fn parse(output: &str) -> Self {
        let log = strip_ansi(output);
        let line = log
            .lines()
            .rev()
            .find_map(|l| l.split_once("metrics mqtt: ").map(|(_, s)| s.to_string()))
            .unwrap_or_else(|| panic!("no `metrics mqtt:` line in the daemon's output:\n{log}"));
        let number = |name: &str| -> usize {
            line.split(", ")
                .find_map(|part| part.strip_suffix(name))
                .and_then(|n| n.trim().parse().ok())
                .unwrap_or_else(|| panic!("no {name:?} in {line:?}"))
        };
        Summary {
            raised: number(" events raised"),
            acknowledged: number(" acknowledged"),
            dropped: number(" dropped"),
        }
    }
}

fn event_time(e: &Value) -> SystemTime {
    humantime::parse_rfc3339(e["time"].as_str().unwrap_or_default())
        .unwrap_or_else(|err| panic!("event time is not RFC 3339 ({err}): {e}"))
}

/// The events of one test, checked: duplicates are byte-identical re-sends of the
/// same id; the figures.
struct Received {
    /// Distinct events in arrival order, with their arrival time.
    unique: Vec<(SystemTime, Value)>,
    all: usize,
    duplicates: usize,
    max_delay: Duration,
}

impl Received {
    fn check(events: &[(SystemTime, Value, String)]) -> Self {
        let mut by_id: HashMap<String, &str> = HashMap::new();
        let mut unique = Vec::new();
        let mut duplicates = 0;
        let mut max_delay = Duration::ZERO;
        for (at, e, text) in events {
            assert_eq!(e["camera"], CAM, "{e}");
            assert_eq!(e["query"], "person", "{e}");
            let id = e["id"]
                .as_str()
                .unwrap_or_else(|| panic!("event without an id: {e}"))
                .to_string();
            max_delay = max_delay.max(at.duration_since(event_time(e)).unwrap_or_default());
            match by_id.get(&id) {
                Some(prev) => {
                    duplicates += 1;
                    assert_eq!(*prev, text, "two different events share the id {id}");
                }
                None => {
                    by_id.insert(id, text);
                    unique.push((*at, e.clone()));
                }
            }
        }
        Received {
            unique,
            all: events.len(),
            duplicates,
            max_delay,
        }
    }

    /// Distinct events raised (frame time) within `from..to`.
    fn raised_within(&self, from: SystemTime, to: SystemTime) -> usize {
        self.unique
            .iter()
            .filter(|(_, e)| (from..to).contains(&event_time(e)))
            .count()
    }

    fn figures(&self, sent: usize, during: usize) -> String {
        format!(
            "outage figures: sent {sent}, received {} (unique {}), duplicates {}, max delay {:.1} s, \
             during outage {during}",
            self.all,
            self.unique.len(),
            self.duplicates,
            self.max_delay.as_secs_f64()
        )
    }
}

/// One run's events, in arrival order, are in the order they were raised: `seq` and
/// `time` strictly increase, and each starts from the state the previous one ended in.
fn assert_in_order(run: &[&Value], all: &str) {
    for w in run.windows(2) {
        let (a, b) = (w[0], w[1]);
        assert!(
            b["seq"].as_u64() > a["seq"].as_u64() && event_time(b) > event_time(a),
            "events out of order:\n  {a}\n  {b}\nall:\n{all}"
        );
        assert_eq!(
            b["from"], a["to"],
            "events do not chain (one was lost or reordered):\n  {a}\n  {b}\nall:\n{all}"
        );
    }
}

#[test]
fn broker_down_60s_loses_no_event() {
    let (mut s, _) = Setup::new("outage60", false);
    let mut daemon = Daemon::start(&s.cfg, &[]);
    s.wait_first_events(&daemon);

    let (down_sys, down_at) = s.broker_down();
    let open_sys = s.broker_back(down_at);
    assert!(
        daemon.is_running(),
        "the daemon must survive a broker outage:\n{}",
        daemon.output()
    );
    s.wait_event_after(open_sys, &daemon);
    let sent = stop(&mut daemon);
    s.wait_unique(sent.raised);

    let events = s.events();
    let got = Received::check(&events);
    let during = got.raised_within(down_sys, open_sys);
    eprintln!("{}", got.figures(sent.raised, during));
    let all = format!("{}{}", s.col.dump(), broker_drops(&s.broker));
    assert_eq!(
        got.unique.len(),
        sent.raised,
        "the daemon raised {} events, {} distinct ones arrived:\n{all}",
        sent.raised,
        got.unique.len()
    );
    assert_eq!(sent.dropped, 0, "{sent:?}");
    assert_eq!(
        sent.acknowledged, sent.raised,
        "every event should be acknowledged before a clean exit: {sent:?}"
    );
    let run: Vec<&Value> = got.unique.iter().map(|(_, e)| e).collect();
    assert_in_order(&run, &all);
    assert!(
        during >= 50,
        "only {during} events raised during the 60 s outage (the test proved little):\n{all}"
    );
}

#[test]
fn daemon_restart_during_60s_outage_loses_no_event() {
    let (mut s, state) = Setup::new("restart60", true);
    let journal = state.expect("state_dir").join("outbox.jsonl");
    let mut first = Daemon::start(&s.cfg, &[]);
    s.wait_first_events(&first);

    let (down_sys, down_at) = s.broker_down();
    // Half-way through the outage the daemon is restarted.
    thread::sleep((down_at + OUTAGE / 2).saturating_duration_since(Instant::now()));
    let first_sent = stop(&mut first);
    let journaled = journaled_event_ids(&journal);
    let restart_sys = SystemTime::now();
    let mut second = Daemon::start(&s.cfg, &[]);

    let open_sys = s.broker_back(down_at);
    assert!(
        second.is_running(),
        "the restarted daemon must survive the outage:\n{}",
        second.output()
    );
    s.wait_event_after(open_sys, &second);
    let second_sent = stop(&mut second);
    let sent = first_sent.raised + second_sent.raised;
    s.wait_unique(sent);

    let events = s.events();
    let got = Received::check(&events);
    let during = got.raised_within(down_sys, open_sys);
    eprintln!(
        "{} (first run: {} raised, {} acknowledged, {} journaled; second run: {} raised, {} acknowledged)",
        got.figures(sent, during),
        first_sent.raised,
        first_sent.acknowledged,
        journaled.len(),
        second_sent.raised,
        second_sent.acknowledged,
    );
    let all = format!("{}{}", s.col.dump(), broker_drops(&s.broker));
    // The first run acknowledged or journaled each of its events; the second
    // delivered the journal and its own.
    assert!(!journaled.is_empty(), "nothing journaled during the outage");
    assert_eq!(
        first_sent.acknowledged + journaled.len(),
        first_sent.raised,
        "{first_sent:?}, {} journaled",
        journaled.len()
    );
    assert_eq!(
        second_sent.acknowledged,
        journaled.len() + second_sent.raised,
        "{second_sent:?}, {} journaled",
        journaled.len()
    );
    assert_eq!((first_sent.dropped, second_sent.dropped), (0, 0));
    for id in &journaled {
        assert!(
            got.unique.iter().any(|(_, e)| e["id"] == id.as_str()),
            "journaled event {id} never arrived:\n{all}"
        );
    }
    assert_eq!(
        got.unique.len(),
        sent,
        "the two runs raised {sent} events, {} distinct ones arrived:\n{all}",
        got.unique.len()
    );
    // Each run in order; all of the first run's before any of the second's.
    let (one, two): (Vec<&Value>, Vec<&Value>) = got
        .unique
        .iter()
        .map(|(_, e)| e)
        .partition(|e| event_time(e) < restart_sys);
    assert_eq!(one.len(), first_sent.raised, "{all}");
    let split = one.len();
    assert!(
        got.unique[..split]
            .iter()
            .all(|(_, e)| event_time(e) < restart_sys),
        "an event of the second run arrived before the first run's journal:\n{all}"
    );
    assert_in_order(&one, &all);
    assert_in_order(&two, &all);
    assert!(
        during >= 50,
        "only {during} events raised during the 60 s outage (the test proved little):\n{all}"
    );
    assert!(
        std::fs::read_to_string(&journal)
            .unwrap_or_default()
            .trim()
            .is_empty(),
        "the journal should be empty once everything was acknowledged"
    );
}

/// What the broker logged about dropping messages for a slow subscriber.
fn broker_drops(broker: &Mosquitto) -> String {
    broker
        .log()
        .lines()
        .filter(|l| l.contains("dropped"))
        .map(|l| format!("broker: {l}\n"))
        .collect()
}

/// The ids of the events in the outbox journal, in order.
fn journaled_event_ids(journal: &Path) -> Vec<String> {
    journaled(journal, &events_topic(CAM))
        .iter()
        .map(|e| e["id"].as_str().unwrap_or_default().to_string())
        .collect()
}
