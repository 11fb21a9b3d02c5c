//! The HTTP endpoints of the real daemon (real RTSP server, GStreamer, YOLOX-nano,
//! mosquitto): a bearer token is required, `/metrics` parses as Prometheus text and
//! its counters move, `/healthz` turns 503 when a camera stops producing frames and
//! recovers after, queries are added and deleted through `/api/queries`, and the last
//! alert's JPEG is served.

use crate::common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;

const TOKEN: &str = "s3cret-token";
const WAIT: Duration = Duration::from_secs(60);

fn config(dir: &Path, http: u16, broker: &str, rtsp: &str, clip: &Path) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "[mqtt]\nurl = {}\nclient_id = {}\n\n[http]\nlisten = \"127.0.0.1:{http}\"\ntoken = \"{TOKEN}\"\n\n\
             [snapshots]\n\n{}\
             [[cameras]]\nrealtime = false\nid = \"live\"\nurl = {}\nsample_fps = 2\nframe_timeout = \"2s\"\nreconnect_max = \"1s\"\n\n{}\
             [[cameras]]\nrealtime = false\nid = \"flip\"\nurl = {}\nsample_fps = 4\nrepeat = true\n\n{}",
            toml_str(broker),
            toml_str(&client_id("http")),
            engine_and_yolox(),
            toml_str(rtsp),
            person_query(""),
            toml_path(clip),
            person_query(""),
        ),
    )
}

fn get(port: u16, path: &str) -> Option<HttpResponse> {
    http(port, "GET", path, Some(TOKEN), b"")
}

fn wait_health(port: u16, want: u16) -> HttpResponse {
    let deadline = Instant::now() + WAIT;
    loop {
        let r = get(port, "/healthz");
        if let Some(r) = r {
            if r.status == want {
                return r;
            }
            assert!(
                Instant::now() < deadline,
                "healthz stayed {} (wanted {want}): {}",
                r.status,
                r.text()
            );
        } else {
            assert!(Instant::now() < deadline, "nothing listens on {port}");
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The samples of `/metrics`, parsed as Prometheus text.
fn scrape(port: u16) -> prometheus_parse::Scrape {
    let r = get(port, "/metrics").expect("metrics");
    assert_eq!(r.status, 200);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let lines = r
        .text()
        .lines()
        .map(|l| Ok(l.to_string()))
        .collect::<Vec<_>>();
    prometheus_parse::Scrape::parse(lines.into_iter()).expect("Prometheus text")
}

#[test]
fn endpoints_report_health_metrics_queries_and_snapshots() {
    let dir = tempfile::tempdir().unwrap();
    let mount = RtspMount {
        path: "/live".into(),
        launch: photo_launch_line(&media("astronaut.png")),
        protocols: RTSPLowerTrans::TCP,
    };
    let mut server = RtspServer::start_on_free_port(vec![mount.clone()]).unwrap();
    let rtsp = server.url("rtspt", "/live");
    let rtsp_port: u16 = rtsp
        .rsplit(':')
        .next()
        .unwrap()
        .split('/')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let clip = media_clip(
        dir.path(),
        "flip.mkv",
        &[("astronaut.png", 1.0), ("coffee.png", 1.0)],
    );
    let broker = Mosquitto::start();
    let port = free_port();
    let cfg = config(dir.path(), port, &broker.url(), &rtsp, &clip);
    let mut daemon = Daemon::start(&cfg, &[]);

    // Healthy from the start (no camera is late yet); "online" once the RTSP camera
    // delivered its first frame.
    let ok = wait_health(port, 200).json();
    assert_eq!(ok["status"], "ok", "{ok}");
    assert!(
        wait_until(WAIT, || get(port, "/healthz")
            .is_some_and(|r| r.json()["cameras"]["live"]["status"] == "online")),
        "the RTSP camera never came online"
    );
    let ok = wait_health(port, 200).json();
    assert_eq!(ok["broker"]["connected"], true, "{ok}");
    assert_eq!(ok["models"]["coco"]["loaded"], true, "{ok}");
    assert_eq!(ok["cameras"]["live"]["status"], "online", "{ok}");

    // The token is required, and compared whole.
    let r = http(port, "GET", "/healthz", None, b"").unwrap();
    assert_eq!(r.status, 401);
    assert_eq!(r.header("www-authenticate"), Some("Bearer"));
    assert_eq!(
        http(port, "GET", "/metrics", Some("s3cret"), b"")
            .unwrap()
            .status,
        401
    );

    // Prometheus text whose counters move. "online" comes with the first decoded
    // frame, before that frame has been evaluated: wait for its latency sample.
    let latency_count = |s: &prometheus_parse::Scrape| {
        s.samples
            .iter()
            .find(|x| {
                x.metric == "ocellus_camera_latency_seconds"
                    && x.labels.get("camera") == Some("live")
            })
            .and_then(|x| match &x.value {
                prometheus_parse::Value::Histogram(b) => b.last().map(|b| b.count),
                _ => None,
            })
    };
    assert!(
        wait_until(Duration::from_secs(20), || latency_count(&scrape(port))
            .is_some_and(|c| c > 0.0)),
        "no evaluated frame in the latency histogram"
    );
    let first = scrape(port);
    let decoded = |s: &prometheus_parse::Scrape| {
        metric_value(
            s,
            "ocellus_camera_decoded_frames_total",
            &[("camera", "live")],
        )
        .expect("decoded counter")
    };
    let d1 = decoded(&first);
    assert_eq!(
        metric_value(
            &first,
            "ocellus_model_loaded",
            &[("model", "coco"), ("family", "yolox")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(
            &first,
            "ocellus_model_provider_info",
            &[("model", "coco"), ("provider", "cpu")]
        ),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&first, "ocellus_mqtt_connected", &[]),
        Some(1.0)
    );
    assert_eq!(
        metric_value(&first, "ocellus_camera_up", &[("camera", "live")]),
        Some(1.0)
    );
    let latency = first
        .samples
        .iter()
        .find(|x| {
            x.metric == "ocellus_camera_latency_seconds" && x.labels.get("camera") == Some("live")
        })
        .expect("latency histogram");
    match &latency.value {
        prometheus_parse::Value::Histogram(buckets) => {
            assert!(buckets.last().unwrap().count > 0.0, "{buckets:?}")
        }
        other => panic!("latency is not a histogram: {other:?}"),
    }
    std::thread::sleep(Duration::from_secs(2));
    let second = scrape(port);
    assert!(
        decoded(&second) > d1,
        "the decoded counter moves: {d1} then {}",
        decoded(&second)
    );
    assert!(
        metric_value(&second, "ocellus_model_runs_total", &[("model", "coco")]).unwrap()
            >= metric_value(&first, "ocellus_model_runs_total", &[("model", "coco")]).unwrap()
    );

    let cams = get(port, "/api/cameras").unwrap().json();
    let ids: Vec<&str> = cams["cameras"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["flip", "live"]);

    // The last alert's picture (the flip camera alerts every second).
    let deadline = Instant::now() + WAIT;
    let jpeg = loop {
        let r = get(port, "/api/cameras/flip/snapshot.jpg").unwrap();
        if r.status == 200 {
            break r;
        }
        assert_eq!(r.status, 404, "{}", r.text());
        assert!(Instant::now() < deadline, "no snapshot: {}", r.text());
        std::thread::sleep(Duration::from_millis(250));
    };
    assert_eq!(jpeg.header("content-type"), Some("image/jpeg"));
    assert_eq!(&jpeg.body[..3], &[0xFF, 0xD8, 0xFF], "a JPEG");
    let r = get(port, "/api/cameras/nope/snapshot.jpg").unwrap();
    assert_eq!(
        (r.status, r.json()["error"].as_str()),
        (404, Some("no camera \"nope\""))
    );

    // Queries: the same path as the MQTT commands.
    let spec = br#"{"ask": "how many cups?", "kind": "count", "model": "coco", "label": "cup"}"#;
    let r = http(port, "PUT", "/api/queries/live/cups", Some(TOKEN), spec).unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["config"]["kind"], "count");
    let all = get(port, "/api/queries").unwrap().json();
    let live: Vec<&str> = all["cameras"]["live"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["id"].as_str().unwrap())
        .collect();
    assert_eq!(live, ["person", "cups"], "{all}");
    let bad = br#"{"ask": "?", "kind": "count", "model": "coco", "label": "unicorn"}"#;
    let r = http(port, "PUT", "/api/queries/live/bad", Some(TOKEN), bad).unwrap();
    assert_eq!(r.status, 400);
    assert!(
        r.json()["error"].as_str().unwrap().contains("unicorn"),
        "{}",
        r.text()
    );
    let r = http(port, "PUT", "/api/queries/nope/x", Some(TOKEN), spec).unwrap();
    assert_eq!(r.status, 404, "{}", r.text());
    let r = http(port, "DELETE", "/api/queries/live/cups", Some(TOKEN), b"").unwrap();
    assert_eq!(
        (r.status, &r.json()["deleted"]),
        (200, &Value::Bool(true)),
        "{}",
        r.text()
    );
    let r = http(port, "DELETE", "/api/queries/live/cups", Some(TOKEN), b"").unwrap();
    assert_eq!(r.status, 400, "{}", r.text());

    // The live camera stops producing frames: 503 with the reason, then recovery.
    server.stop();
    let bad = wait_health(port, 503).json();
    let problems = bad["problems"].to_string();
    assert!(problems.contains("camera live: no frame for"), "{bad}");
    assert!(
        !problems.contains("camera flip"),
        "the other camera is healthy: {bad}"
    );
    let _server = RtspServer::start(rtsp_port, vec![mount]).unwrap();
    wait_health(port, 200);
    // Health follows the frames at once; the camera's status says `online` once its
    // pipeline's watch loop (polling every 100 ms) has seen the first new frame.
    let deadline = Instant::now() + WAIT;
    loop {
        let back = wait_health(port, 200).json();
        if back["cameras"]["live"]["status"] == "online" {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "camera live healthy but not online: {back}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    assert!(
        daemon.stop_within(Duration::from_secs(30)).success(),
        "{}",
        daemon.output()
    );
    let out = daemon.output();
    assert!(!out.contains(TOKEN), "the token is never logged");
}
