//! RTSP end to end: a real RTSP server (gst-rtsp-server) in the test process
//! streams live H.264 made from a photo; the real `ocellus` binary watches it with
//! the real YOLOX-nano model and publishes to a private mosquitto.
//!
//! * `udp_and_tcp_cameras_go_online_and_see_the_person`: an `rtsp://` camera with
//!   `transport = "udp"` on a UDP-only mount and an `rtspt://` camera on a TCP-only
//!   mount, in one daemon.
//! * `reconnects_after_the_server_goes_away`: the server is torn down (clients
//!   closed, port released) and started again on the same port; a second mount
//!   serving coffee.png shows that answers come from the picture.
//!
//! The stream is 640x360 at 10 fps and the cameras sample 2 fps, to keep the CPU
//! load of a 2-core machine modest.

use crate::common;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::*;

/// Time for a daemon to load the model and show the first answers.
const START: Duration = Duration::from_secs(30);
/// Time for a state change that only needs the stream (status, reconnection).
const CHANGE: Duration = Duration::from_secs(15);

// ------------------------------------------------------------ RTSP server

/// One mount point: a photo turned into a live H.264 stream.
fn mount(path: &str, image: &str, protocols: RTSPLowerTrans) -> RtspMount {
    RtspMount {
        path: path.to_string(),
        launch: photo_launch_line(&media(image)),
        protocols,
    }
}

fn port_refuses(port: u16) -> bool {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_err()
}

// ------------------------------------------------------------------ daemon

/// A camera watched for people with YOLOX-nano; `extra` adds camera settings.
fn camera(id: &str, url: &str, transport: &str, extra: &str) -> String {
    format!(
        r#"
[[cameras]]
realtime = false
id = "{id}"
url = "{url}"
transport = "{transport}"
sample_fps = 2
{extra}

{query}"#,
        query = person_query("on = 0.6\noff = 0.4")
    )
}

fn config(cameras: &[String]) -> String {
    format!(
        "{}{}",
        yolox_model(&yolox_dir(), "threads = 1"),
        cameras.concat()
    )
}

// ------------------------------------------------------------------ checks

/// The topic of the person query's state.
fn person_state(cam: &str) -> String {
    state_topic(cam, "person")
}

/// The person boxes of a detections message.
fn person_boxes(m: &Msg) -> Vec<[f64; 4]> {
    m.json()["detections"]
        .as_array()
        .unwrap_or_else(|| panic!("detections message without a list: {}", m.text()))
        .iter()
        .filter(|d| d["label"] == "person")
        .map(|d| {
            let b: Vec<f64> = d["box"]
                .as_array()
                .expect("detection box")
                .iter()
                .map(|v| v.as_f64().expect("box coordinate"))
                .collect();
            [b[0], b[1], b[2], b[3]]
        })
        .collect()
}

/// Index (in `msgs[from..]`, absolute) of the first message on `topic` with `payload`.
fn find(msgs: &[Msg], from: usize, topic: &str, payload: &str) -> Option<usize> {
    msgs.iter()
        .enumerate()
        .skip(from)
        .find(|(_, m)| m.topic == topic && m.payload == payload.as_bytes())
        .map(|(i, _)| i)
}

/// Index of the first detections message of `cam` after `from` with a person in it.
fn find_person(msgs: &[Msg], from: usize, cam: &str) -> Option<usize> {
    let topic = detections_topic(cam);
    msgs.iter()
        .enumerate()
        .skip(from)
        .find(|(_, m)| m.topic == topic && !person_boxes(m).is_empty())
        .map(|(i, _)| i)
}

/// Everything but the per-frame detections (counted instead), then the daemon output.
fn report(col: &MqttCollector, daemon: &Daemon) -> String {
    let msgs = col.messages();
    let mut out = String::from("MQTT (detections counted, not listed):\n");
    let mut dets = std::collections::BTreeMap::<&str, usize>::new();
    for m in &msgs {
        if m.topic.ends_with("/detections") {
            *dets.entry(m.topic.as_str()).or_default() += 1;
        } else {
            out.push_str(&format!("  {} {}\n", m.topic, m.text()));
        }
    }
    for (t, n) in dets {
        out.push_str(&format!("  {t}: {n} messages\n"));
    }
    out.push_str("daemon output:\n");
    out.push_str(&daemon.output());
    out
}

/// Waits for `what` to hold on the messages; panics with the report otherwise.
fn expect(
    col: &MqttCollector,
    daemon: &Daemon,
    timeout: Duration,
    what: &str,
    mut cond: impl FnMut(&[Msg]) -> bool,
) {
    let t = Instant::now();
    if !col.wait_for(&mut cond, timeout) {
        panic!(
            "{what}: not seen within {timeout:?}\n{}",
            report(col, daemon)
        );
    }
    eprintln!("[rtsp test] {what}: after {:.1?}", t.elapsed());
}

/// States published for the camera's person query: the last is `want`, and once it
/// was reached it never changed (a first frame decoded before a key frame may
/// legitimately say otherwise, a flicker afterwards may not).
fn assert_settled(col: &MqttCollector, daemon: &Daemon, cam: &str, want: &str) {
    let states = col.payloads(&person_state(cam));
    assert!(
        states.last().map(String::as_str) == Some(want)
            && states.iter().skip_while(|s| *s != want).all(|s| s == want),
        "{cam}: person states {states:?}, expected to settle on {want}\n{}",
        report(col, daemon)
    );
}

/// The camera is online, its person query is `want`, and at least 3 detections
/// messages agree with the picture.
fn expect_answer(col: &MqttCollector, daemon: &Daemon, cam: &str, want: &str) {
    expect(col, daemon, START, &format!("{cam} online"), |m| {
        find(m, 0, &cam_status(cam), "online").is_some()
    });
    expect(col, daemon, START, &format!("{cam} person {want}"), |m| {
        find(m, 0, &person_state(cam), want).is_some()
    });
    // 3 messages at 2 fps: the stream flows, not just one frame.
    let topic = detections_topic(cam);
    expect(col, daemon, CHANGE, &format!("{cam} 3 detections"), |m| {
        find(m, 0, &person_state(cam), want)
            .is_some_and(|at| m[at..].iter().filter(|m| m.topic == topic).count() >= 3)
    });
    assert_settled(col, daemon, cam, want);
    let msgs = col.messages();
    let from = find(&msgs, 0, &person_state(cam), want).unwrap();
    for m in msgs[from..].iter().filter(|m| m.topic == topic) {
        let boxes = person_boxes(m);
        if want == "ON" {
            assert!(!boxes.is_empty(), "{cam}: no person in {}", m.text());
        } else {
            assert!(
                boxes.is_empty(),
                "{cam}: a person in a picture without one: {}",
                m.text()
            );
        }
        // The astronaut fills the left part of the letterboxed 360x360 picture at
        // x = 140..500 of 640: her box lies on the picture, not on the borders.
        for b in boxes {
            assert!(
                b[0] >= 0.18 && b[2] <= 0.80 && b[2] - b[0] > 0.2 && b[3] - b[1] > 0.6,
                "{cam}: person box {b:?} is not where the astronaut is"
            );
        }
    }
}

/// SIGTERM: exit 0 within 10 s.
fn stop_cleanly(col: &MqttCollector, daemon: &mut Daemon) {
    let status = daemon.stop();
    assert!(
        status.success(),
        "daemon exit {status}\n{}",
        report(col, daemon)
    );
}

// ------------------------------------------------------------------ tests

#[test]
fn udp_and_tcp_cameras_go_online_and_see_the_person() {
    let started = Instant::now();
    let broker = Mosquitto::start();
    let col = MqttCollector::new(&broker.url());
    // Each mount accepts only its transport, so a camera that negotiated the wrong
    // one would never get a frame.
    let server = RtspServer::start(
        free_port(),
        vec![
            mount("/udp", "astronaut.png", RTSPLowerTrans::UDP),
            mount("/tcp", "astronaut.png", RTSPLowerTrans::TCP),
        ],
    )
    .expect("start the RTSP server");
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &config(&[
            // Default frame_timeout (10 s): a loaded machine gets no spurious restart.
            camera("cam_udp", &server.url("rtsp", "/udp"), "udp", ""),
            camera("cam_tcp", &server.url("rtspt", "/tcp"), "auto", ""),
        ]),
    );
    let mut daemon = Daemon::start(&cfg, &["--mqtt-url", &broker.url()]);

    for cam in ["cam_udp", "cam_tcp"] {
        expect_answer(&col, &daemon, cam, "ON");
    }
    assert_eq!(
        col.payloads("ocellus/cam_udp/status"),
        vec!["online"],
        "the UDP camera should come online once and stay so\n{}",
        report(&col, &daemon)
    );
    assert_eq!(
        col.payloads("ocellus/cam_tcp/status"),
        vec!["online"],
        "the TCP camera should come online once and stay so\n{}",
        report(&col, &daemon)
    );

    stop_cleanly(&col, &mut daemon);
    for cam in ["cam_udp", "cam_tcp"] {
        assert_eq!(
            col.last(&cam_status(cam)).map(|m| m.text()).as_deref(),
            Some("offline"),
            "{cam}: no offline status at shutdown\n{}",
            report(&col, &daemon)
        );
    }
    drop(server);
    eprintln!("[rtsp test] udp+tcp: {:.1?}", started.elapsed());
}

#[test]
fn reconnects_after_the_server_goes_away() {
    let started = Instant::now();
    let broker = Mosquitto::start();
    let col = MqttCollector::new(&broker.url());
    let port = free_port();
    let mounts = || {
        vec![
            mount(
                "/astro",
                "astronaut.png",
                RTSPLowerTrans::UDP | RTSPLowerTrans::TCP,
            ),
            mount(
                "/coffee",
                "coffee.png",
                RTSPLowerTrans::UDP | RTSPLowerTrans::TCP,
            ),
        ]
    };
    let mut server = RtspServer::start(port, mounts()).expect("start the RTSP server");
    let dir = tempfile::tempdir().unwrap();
    let fast = "frame_timeout = \"2s\"\nreconnect_max = \"2s\"";
    let cfg = write_config(
        dir.path(),
        &config(&[
            camera("astro", &server.url("rtsp", "/astro"), "auto", fast),
            camera("coffee", &server.url("rtsp", "/coffee"), "tcp", fast),
        ]),
    );
    let mut daemon = Daemon::start(&cfg, &["--mqtt-url", &broker.url()]);
    expect_answer(&col, &daemon, "astro", "ON");
    expect_answer(&col, &daemon, "coffee", "OFF");

    // The server goes away: connections die, the port is released.
    let before_stop = col.messages().len();
    server.stop();
    assert!(
        port_refuses(port),
        "port {port} still accepts connections after the server stopped"
    );
    for cam in ["astro", "coffee"] {
        expect(&col, &daemon, CHANGE, &format!("{cam} reconnecting"), |m| {
            find(m, before_stop, &cam_status(cam), "reconnecting").is_some()
        });
    }
    assert!(
        daemon.is_running(),
        "daemon exited while its cameras were away\n{}",
        report(&col, &daemon)
    );

    // A new server on the same port with the same mounts: back online, answers flow.
    let before_restart = col.messages().len();
    let _server =
        RtspServer::start(port, mounts()).expect("restart the RTSP server on the same port");
    for cam in ["astro", "coffee"] {
        expect(&col, &daemon, CHANGE, &format!("{cam} online again"), |m| {
            find(m, before_restart, &cam_status(cam), "online").is_some()
        });
    }
    expect(
        &col,
        &daemon,
        CHANGE,
        "astro person detections again",
        |m| {
            find(m, before_restart, &cam_status("astro"), "online")
                .and_then(|online| find_person(m, online, "astro"))
                .is_some()
        },
    );
    expect(&col, &daemon, CHANGE, "coffee detections again", |m| {
        find(m, before_restart, &cam_status("coffee"), "online").is_some_and(|online| {
            m[online..]
                .iter()
                .any(|m| m.topic == detections_topic("coffee"))
        })
    });
    // The answers did not flicker through the outage.
    assert_eq!(
        col.payloads(&person_state("astro")),
        vec!["ON"],
        "{}",
        report(&col, &daemon)
    );
    assert_eq!(
        col.payloads(&person_state("coffee")),
        vec!["OFF"],
        "{}",
        report(&col, &daemon)
    );
    assert!(
        col.messages()
            .iter()
            .filter(|m| m.topic == detections_topic("coffee"))
            .all(|m| person_boxes(m).is_empty()),
        "a person was detected on the coffee stream\n{}",
        report(&col, &daemon)
    );

    stop_cleanly(&col, &mut daemon);
    eprintln!("[rtsp test] reconnect: {:.1?}", started.elapsed());
}
