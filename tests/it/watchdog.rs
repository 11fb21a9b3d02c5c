//! systemd's notify protocol and watchdog, through the real daemon and a fake
//! `$NOTIFY_SOCKET` (a unix datagram socket the test binds): READY=1 once cameras run,
//! WATCHDOG=1 pings while everything moves, RELOADING=1/READY=1 around a SIGHUP,
//! STOPPING=1 at SIGTERM — and no pings once an encoder is stuck inside ONNX Runtime
//! (tests/fixtures/stall: a YOLOX-shaped model that never returns on a bright frame),
//! while the other camera keeps answering and `/healthz` names the stuck loop.

use crate::common;

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::*;

/// Every datagram the daemon sends, with when it arrived.
struct FakeSystemd {
    path: PathBuf,
    got: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl FakeSystemd {
    fn bind(dir: &Path) -> Self {
        let path = dir.join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        std::thread::spawn(move || {
            let mut buf = vec![0u8; 4096];
            while let Ok(n) = socket.recv(&mut buf) {
                let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
                sink.lock().unwrap().push((Instant::now(), msg));
            }
        });
        Self { path, got }
    }

    fn env(&self, watchdog: Duration) -> [(&'static str, String); 2] {
        [
            ("NOTIFY_SOCKET", self.path.to_string_lossy().into_owned()),
            ("WATCHDOG_USEC", watchdog.as_micros().to_string()),
        ]
    }

    fn messages(&self) -> Vec<(Instant, String)> {
        self.got.lock().unwrap().clone()
    }

    /// When the first message with a line `line` (after `after`) arrived.
    fn wait(&self, line: &str, after: Instant, timeout: Duration) -> Option<Instant> {
        let mut at = None;
        wait_until(timeout, || {
            at = self
                .messages()
                .into_iter()
                .find(|(t, m)| *t >= after && m.lines().any(|l| l == line))
                .map(|(t, _)| t);
            at.is_some()
        });
        at
    }

    fn pings_between(&self, from: Instant, to: Instant) -> usize {
        self.messages()
            .iter()
            .filter(|(t, m)| *t >= from && *t < to && m == "WATCHDOG=1")
            .count()
    }
}

fn start(cfg: &Path, env: &[(&'static str, String)]) -> Daemon {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    Daemon::start_with_env(cfg, &[], &env)
}

#[test]
fn notifies_ready_pings_while_alive_reloads_and_stops() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(dir.path(), "door.mkv", &[("astronaut.png", 2.0)]);
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}[[cameras]]\nrealtime = false\nid = \"door\"\nurl = {}\nrepeat = true\nsample_fps = 2\n\n{}",
            engine_and_yolox(),
            toml_path(&clip),
            person_query("")
        ),
    );
    let systemd = FakeSystemd::bind(dir.path());
    let t0 = Instant::now();
    let mut daemon = start(&cfg, &systemd.env(Duration::from_secs(1)));

    let ready = systemd
        .wait("READY=1", t0, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no READY=1: {:?}\n{}", systemd.messages(), daemon.output()));
    let first = systemd.messages();
    assert!(
        first
            .iter()
            .any(|(_, m)| m.contains("STATUS=1 camera(s) running, 1 model(s) loaded")),
        "{first:?}"
    );
    // Pings every half period (500 ms) while the camera is evaluated.
    assert!(daemon.wait_output(
        "ocellus/door/query/person/state ON",
        Duration::from_secs(30)
    ));
    std::thread::sleep(Duration::from_millis(2600));
    let pings = systemd.pings_between(ready, Instant::now());
    assert!(pings >= 4, "{pings} pings in {:?}", ready.elapsed());

    let hup = Instant::now();
    daemon.signal("HUP");
    let reloading = systemd
        .wait("RELOADING=1", hup, Duration::from_secs(20))
        .expect("RELOADING=1 on SIGHUP");
    systemd
        .wait("READY=1", reloading, Duration::from_secs(20))
        .expect("READY=1 after the reload");

    let term = Instant::now();
    daemon.signal("TERM");
    let status = daemon.expect_exit(Duration::from_secs(30));
    assert!(status.success(), "{status:?}\n{}", daemon.output());
    assert!(
        systemd
            .wait("STOPPING=1", term, Duration::from_secs(1))
            .is_some(),
        "{:?}",
        systemd.messages()
    );
}

/// A still image of one flat colour, made with GStreamer.
fn flat_png(dir: &Path, pattern: &str) -> PathBuf {
    let out = dir.join(format!("{pattern}.png"));
    run_gst_launch(&out, Duration::from_secs(30), |tmp| {
        vec![
            "videotestsrc".into(),
            format!("pattern={pattern}"),
            "num-buffers=1".into(),
            "!".into(),
            "video/x-raw,width=64,height=64".into(),
            "!".into(),
            "pngenc".into(),
            "!".into(),
            "filesink".into(),
            format!("location={}", tmp.display()),
        ]
    });
    out
}

#[test]
fn a_stuck_encoder_stops_the_pings_and_the_other_camera_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/stall");
    let (black, white) = (flat_png(dir.path(), "black"), flat_png(dir.path(), "white"));
    let stuck_clip = dir.path().join("dark-then-bright.mkv");
    make_clip(&stuck_clip, &[(&black, 3.0), (&white, 20.0)], 320, 240, 10);
    let door_clip = media_clip(dir.path(), "door.mkv", &[("astronaut.png", 2.0)]);
    let http = free_port();
    let cfg = write_config(
        dir.path(),
        &format!(
            "[http]\nlisten = \"127.0.0.1:{http}\"\n\n{}\
             [models.stall]\nfamily = \"yolox\"\ndir = {}\nproviders = [\"cpu\"]\n\n\
             [[cameras]]\nrealtime = false\nid = \"stuck\"\nurl = {}\nsample_fps = 2\n\n\
             [[cameras.queries]]\nid = \"person\"\nask = \"a person?\"\nkind = \"yes_no\"\nmodel = \"stall\"\nlabel = \"person\"\n\n\
             [[cameras]]\nrealtime = false\nid = \"door\"\nurl = {}\nrepeat = true\nsample_fps = 2\n\n{}",
            engine_and_yolox(),
            toml_path(&fixture),
            toml_path(&stuck_clip),
            toml_path(&door_clip),
            person_query("")
        ),
    );
    let systemd = FakeSystemd::bind(dir.path());
    let t0 = Instant::now();
    let limit = Duration::from_secs(2);
    let mut daemon = start(&cfg, &systemd.env(limit));
    systemd
        .wait("READY=1", t0, Duration::from_secs(60))
        .unwrap_or_else(|| panic!("no READY=1\n{}", daemon.output()));
    // The dark frames were answered: the stuck camera worked before its bright frame.
    assert!(
        daemon.wait_output(
            "ocellus/stuck/query/person/state OFF",
            Duration::from_secs(30)
        ),
        "{}",
        daemon.output()
    );
    let stalled_line = "watchdog: camera stuck: evaluator: no progress for";
    assert!(
        daemon.wait_output(stalled_line, Duration::from_secs(30)),
        "the stall is never reported\n{}",
        daemon.output()
    );
    let noticed = Instant::now();
    let status = systemd
        .wait(
            "STATUS=stalled: camera stuck: evaluator",
            t0,
            Duration::from_secs(5),
        )
        .is_some();
    assert!(status, "{:?}", systemd.messages());

    // No ping for a whole watchdog period and more (systemd would restart us now),
    // while the other camera keeps being evaluated.
    let door_before = daemon.output().matches("ocellus/door/detections").count();
    std::thread::sleep(Duration::from_secs(3));
    let pings = systemd.pings_between(noticed, Instant::now());
    assert_eq!(pings, 0, "pinged while stuck: {:?}", systemd.messages());
    let door_after = daemon.output().matches("ocellus/door/detections").count();
    assert!(
        door_after > door_before,
        "the other camera stopped too ({door_before} then {door_after} detections)"
    );

    let health = http_get_status(http, "/healthz");
    assert_eq!(health.0, 503, "{}", health.1);
    assert!(
        health
            .1
            .contains("camera stuck: evaluator: no progress for"),
        "{}",
        health.1
    );
    assert!(
        !health.1.contains("camera door: evaluator"),
        "the running camera is not stuck: {}",
        health.1
    );
    // Stopping waits on the stuck model, as systemd's TimeoutStopSec would; kill it.
    daemon.kill_hard();
}

fn http_get_status(port: u16, path: &str) -> (u16, String) {
    let r = http(port, "GET", path, None, b"").expect("HTTP answer");
    (r.status, r.text())
}
