//! Tests of the test helpers in `tests/it/common` themselves, against the real
//! mosquitto and GStreamer tools.

use crate::common;

use std::panic::AssertUnwindSafe;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

const T: Duration = Duration::from_secs(10);

#[test]
fn broker_collector_retained_and_restart() {
    let mut broker = Mosquitto::start();
    assert_eq!(broker.url(), format!("mqtt://127.0.0.1:{}", broker.port()));
    let collector = MqttCollector::new(&broker.url());

    publish_once(&broker.url(), "selftest/retained", "hello", true);
    let got = collector
        .wait_for_topic("selftest/retained", T)
        .unwrap_or_else(|| panic!("no message; got:\n{}", collector.dump()));
    assert_eq!(got.text(), "hello");
    assert_eq!(collector.payloads("selftest/retained"), vec!["hello"]);

    // A late subscriber gets it as a retained message.
    let late = MqttCollector::with_filter(&broker.url(), "selftest/+");
    let got = late
        .wait_for_topic("selftest/retained", T)
        .expect("retained message for a late subscriber");
    assert!(got.retain, "late subscriber should see the retain flag");
    assert_eq!(got.payload, b"hello");

    // Broker restart on the same port: the collector reconnects and resubscribes.
    let port = broker.port();
    broker.stop();
    assert!(!broker.is_running());
    assert!(
        collector.wait_disconnected(T),
        "collector did not notice the broker going away"
    );
    broker.start_again();
    assert_eq!(broker.port(), port);
    assert!(
        collector.wait_suback_count(2, T),
        "collector did not resubscribe after the restart; broker log:\n{}",
        broker.log()
    );
    publish_once(&broker.url(), "selftest/after-restart", r#"{"n":1}"#, false);
    assert!(
        collector.wait_for(|m| m.iter().any(|m| m.topic == "selftest/after-restart"), T),
        "no message after restart; got:\n{}",
        collector.dump()
    );
    assert_eq!(
        collector.last("selftest/after-restart").unwrap().json()["n"],
        1
    );
    // persistence is off: the retained message did not survive the restart.
    assert_eq!(collector.payloads("selftest/retained"), vec!["hello"]);
    assert!(collector.last("nothing/here").is_none());
}

#[test]
fn make_clip_two_images() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("two.mkv");
    let astronaut = media("astronaut.png");
    let coffee = media("coffee.png");
    make_clip(&out, &[(&astronaut, 1.0), (&coffee, 1.0)], 320, 240, 10);

    let d = discover_duration(&out);
    assert!(
        (d.as_secs_f64() - 2.0).abs() < 0.15,
        "gst-discoverer-1.0 says {d:?}, expected ~2 s"
    );
    let info = probe_clip(&out);
    assert_eq!(info.frames, 20, "{info:?}");
    assert_eq!((info.width, info.height), (320, 240));
    assert_eq!(info.first_pts, Some(Duration::ZERO));
    assert_eq!(info.last_pts, Some(Duration::from_millis(1900)));

    // Same images into the other containers.
    for ext in ["mp4", "ts"] {
        let out = dir.path().join(format!("two.{ext}"));
        make_clip(&out, &[(&astronaut, 0.5), (&coffee, 0.5)], 320, 240, 10);
        let info = probe_clip(&out);
        assert_eq!(info.frames, 10, "{ext}: {info:?}");
        assert_eq!((info.width, info.height), (320, 240), "{ext}");
    }
}

#[test]
fn make_test_pattern_clip_odd_and_portrait() {
    let dir = tempfile::tempdir().unwrap();
    for (w, h, ext) in [(321, 241, "mp4"), (240, 426, "mkv")] {
        let out = dir.path().join(format!("pattern-{w}x{h}.{ext}"));
        make_test_pattern_clip(&out, w, h, 10, 1.0, "ball");
        let info = probe_clip(&out);
        assert_eq!(info.frames, 10, "{info:?}");
        assert_eq!((info.width, info.height), (w, h));
    }
}

#[test]
#[should_panic(expected = "gst-launch-1.0 failed")]
fn make_clip_reports_gst_failure() {
    let dir = tempfile::tempdir().unwrap();
    let not_an_image = dir.path().join("not-an-image.png");
    std::fs::write(&not_an_image, b"this is not a PNG").unwrap();
    make_clip(
        &dir.path().join("bad.mkv"),
        &[(&not_an_image, 1.0)],
        64,
        64,
        10,
    );
}

/// A `gst-launch-1.0` run that never ends is killed at its time limit and tried again;
/// after 3 such runs the panic says so, and no process and no file is left behind.
#[test]
fn run_gst_launch_kills_a_run_that_hangs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("never.mkv");
    // Names the element, to find any gst-launch-1.0 of this test still running.
    let marker = format!("selftest-hang-{}", std::process::id());
    let started = Instant::now();
    let result = std::panic::catch_unwind(AssertUnwindSafe(|| {
        // A live source without num-buffers never posts EOS.
        run_gst_launch(&out, Duration::from_millis(500), |_| {
            [
                "videotestsrc",
                "is-live=true",
                &format!("name={marker}"),
                "!",
                "fakesink",
            ]
            .map(String::from)
            .to_vec()
        })
    }));
    let message = match result {
        Ok(()) => panic!("a pipeline that never ends was reported as done"),
        Err(e) => e
            .downcast_ref::<String>()
            .cloned()
            .unwrap_or_else(|| "(not a string)".into()),
    };
    assert!(message.contains("hung 3 times"), "{message}");
    assert!(
        started.elapsed() >= Duration::from_millis(1500),
        "three runs of 500 ms took {:?}",
        started.elapsed()
    );
    let left: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(left.is_empty(), "left behind: {left:?}");
    let running: Vec<String> = std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .map(|c| String::from_utf8_lossy(&c).replace('\0', " "))
        .filter(|c| c.contains(&marker))
        .collect();
    assert!(running.is_empty(), "still running: {running:?}");
}

#[test]
fn daemon_capture_stop_and_kill() {
    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "echo started; echo to-stderr >&2; trap 'echo got-term; exit 3' TERM; \
         while :; do sleep 0.05; done",
    ]);
    let mut d = Daemon::spawn("selftest-sh", cmd);
    assert!(d.wait_output("started", T), "output: {}", d.output());
    assert!(d.wait_output("to-stderr", T), "output: {}", d.output());
    assert!(d.is_running());
    let status = d.stop();
    assert_eq!(status.code(), Some(3), "output: {}", d.output());
    assert!(d.output().contains("got-term"), "output: {}", d.output());

    let mut cmd = Command::new("sh");
    cmd.args([
        "-c",
        "trap '' TERM; echo immortal; while :; do sleep 0.05; done",
    ]);
    let mut d = Daemon::spawn("selftest-sh", cmd);
    assert!(d.wait_output("immortal", T));
    let status = d.kill_hard();
    assert!(!status.success());
    assert!(!d.is_running());

    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(dir.path(), "[x]\ny = 1\n");
    assert_eq!(std::fs::read_to_string(&cfg).unwrap(), "[x]\ny = 1\n");
    assert!(ocellus_bin().is_file());
    assert!(models_dir().is_dir(), "{}", models_dir().display());
}
