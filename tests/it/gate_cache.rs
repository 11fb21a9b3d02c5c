//! The change gate and the embedding cache on clips made at test time, through the
//! real binary (GStreamer decode, ONNX Runtime, mosquitto): a still clip is encoded
//! about once per `max_staleness`; a change is encoded at the next sample; a camera
//! flipping between two views is served from the embedding cache; frames the gate
//! holds back still publish the last answers with their own frame time; and cameras
//! sharing one model are served evenly.

use crate::common;

use std::path::Path;
use std::time::Duration;

use common::*;
use serde_json::Value;

fn config(dir: &Path, camera: &str, queries: &str, models: &str) -> std::path::PathBuf {
    write_config(
        dir,
        &format!(
            "{ENGINE_ONE_THREAD}{models}[[cameras]]\nrealtime = false\nid = \"cam\"\nurl = \"unused.mkv\"\n{camera}\n{queries}"
        ),
    )
}

fn inference(lines: &[Value]) -> Vec<(f64, String)> {
    lines
        .iter()
        .map(|l| {
            (
                l["pts"].as_f64().expect("pts"),
                l["inference"].as_str().expect("inference").to_string(),
            )
        })
        .collect()
}

fn tiny_clip_model() -> String {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    format!(
        "[models.tiny]\nfamily = \"clip\"\ndir = {}\ntokenizer = {}\nproviders = [\"cpu\"]\n\n",
        toml_path(&root.join("tests/fixtures/clip_tiny")),
        toml_path(&models_dir().join("clip_vit_b32_tokenizer/tokenizer.json")),
    )
}

#[test]
fn a_still_clip_is_encoded_once_per_max_staleness() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(dir.path(), "still.mkv", &[("astronaut.png", 8.0)]);
    let cfg = config(
        dir.path(),
        "max_staleness = \"2s\"",
        &person_query(""),
        &yolox_model(&yolox_dir(), ""),
    );
    let lines = ask_json(&clip, &cfg, "4");
    let kinds = inference(&lines);
    let encoded: Vec<f64> = kinds
        .iter()
        .filter(|(_, k)| k == "encoded")
        .map(|(p, _)| *p)
        .collect();
    // 8 s at 4 samples a second: encoded at 0, 2, 4 and 6 s, the rest reused.
    assert!(
        (30..=33).contains(&lines.len()),
        "{} samples: {kinds:?}",
        lines.len()
    );
    assert_eq!(encoded.len(), 4, "encoded at {encoded:?}");
    for (got, want) in encoded.iter().zip([0.0, 2.0, 4.0, 6.0]) {
        assert!((got - want).abs() < 0.15, "encoded at {encoded:?}");
    }
    assert!(
        kinds.iter().all(|(_, k)| k == "encoded" || k == "reused"),
        "{kinds:?}"
    );
    // Reused frames carry the last answers with their own time and position.
    let mut last_pts = -1.0;
    for l in &lines {
        let pts = l["pts"].as_f64().unwrap();
        assert!(pts > last_pts, "pts must increase: {pts} after {last_pts}");
        last_pts = pts;
        assert_eq!(l["queries"][0]["state"], "ON", "{l}");
        assert_eq!(l["detections"][0]["label"], "person", "{l}");
        if l["inference"] == "reused" {
            assert!(l["change"].as_f64().unwrap() < 0.02, "{l}");
        }
    }
    let times: Vec<&str> = lines.iter().map(|l| l["time"].as_str().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

#[test]
fn a_change_is_encoded_at_the_next_sample() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(
        dir.path(),
        "switch.mkv",
        &[("astronaut.png", 3.0), ("coffee.png", 3.0)],
    );
    let cfg = config(
        dir.path(),
        "",
        &person_query(""),
        &yolox_model(&yolox_dir(), ""),
    );
    let lines = ask_json(&clip, &cfg, "2");
    let kinds = inference(&lines);
    let first_after = kinds
        .iter()
        .position(|(pts, _)| *pts >= 3.0)
        .expect("samples after the switch");
    // The sample right after the switch is encoded and sees the change; before it,
    // only the first frame was.
    assert_eq!(kinds[first_after].1, "encoded", "{kinds:?}");
    assert!(kinds[first_after].0 < 3.0 + 0.5 + 0.05, "{kinds:?}");
    assert_eq!(
        lines[first_after]["queries"][0]["state"], "OFF",
        "{}",
        lines[first_after]
    );
    assert_eq!(
        kinds.iter().filter(|(_, k)| k == "encoded").count(),
        2,
        "{kinds:?}"
    );
    assert!(
        lines[first_after]["change"].as_f64().unwrap() > 0.1,
        "{}",
        lines[first_after]
    );
}

#[test]
fn a_camera_flipping_between_two_views_is_served_from_the_embedding_cache() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(
        dir.path(),
        "flip.mkv",
        &[
            ("astronaut.png", 1.0),
            ("coffee.png", 1.0),
            ("astronaut.png", 1.0),
            ("coffee.png", 1.0),
            ("astronaut.png", 1.0),
        ],
    );
    let query = "[[cameras.queries]]\nid = \"coffee\"\nask = \"is there coffee?\"\nkind = \"yes_no\"\n\
                 model = \"tiny\"\nyes = [\"a photo of a cup of coffee\"]\nno = [\"a photo of an astronaut\"]\n";
    let cfg = config(dir.path(), "", query, &tiny_clip_model());
    let lines = ask_json(&clip, &cfg, "2");
    let kinds = inference(&lines);
    let count = |k: &str| kinds.iter().filter(|(_, x)| x == k).count();
    // Each view is encoded once; going back to a view seen before is a cache hit.
    assert_eq!(count("encoded"), 2, "{kinds:?}");
    assert_eq!(count("cached"), 3, "{kinds:?}");
    assert_eq!(count("reused"), lines.len() - 5, "{kinds:?}");
    // A cached answer is the one the encoder gave for that view.
    let score_at = |pts: f64| {
        lines
            .iter()
            .find(|l| (l["pts"].as_f64().unwrap() - pts).abs() < 0.01)
            .map(|l| l["queries"][0]["score"].as_f64().unwrap())
            .unwrap_or_else(|| panic!("no sample at {pts}: {kinds:?}"))
    };
    assert_eq!(score_at(0.0), score_at(2.0));
    assert_eq!(score_at(1.0), score_at(3.0));
    assert_ne!(score_at(0.0), score_at(1.0));
}

#[test]
fn held_back_frames_publish_the_last_answers_with_their_own_time() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(dir.path(), "still.mkv", &[("astronaut.png", 5.0)]);
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}[[cameras]]\nrealtime = false\nid = \"cam\"\nurl = {}\nsample_fps = 4\n\n{}",
            engine_and_yolox(),
            toml_path(&clip),
            person_query("")
        ),
    );
    let broker = Mosquitto::start();
    let col = MqttCollector::with_filter(&broker.url(), &detections_topic("cam"));
    assert!(col.wait_subscribed(Duration::from_secs(10)));
    let out = run_to_end(&cfg, &broker.url());
    assert!(
        col.wait_for(|m| m.len() >= 20, Duration::from_secs(10)),
        "{}",
        col.dump()
    );
    let msgs: Vec<Value> = col.messages().iter().map(|m| m.json()).collect();
    // One message per sample, all with the person, each with its own frame time.
    assert_eq!(msgs.len(), 20, "{}", col.dump());
    let pts: Vec<f64> = msgs.iter().map(|m| m["pts"].as_f64().unwrap()).collect();
    assert!(pts.windows(2).all(|w| w[1] > w[0]), "{pts:?}");
    let times: std::collections::BTreeSet<&str> =
        msgs.iter().map(|m| m["time"].as_str().unwrap()).collect();
    assert!(times.len() > 1, "{times:?}");
    assert!(msgs.iter().all(|m| m["detections"][0]["label"] == "person"));
    // The exit summary: one encode, the other 19 samples held back by the gate.
    let summary = out
        .stderr
        .lines()
        .find(|l| l.contains("camera cam: ") && l.contains(" decoded, "))
        .unwrap_or_else(|| panic!("no summary line:\n{}", out.stderr));
    assert!(
        summary.contains("50 decoded, 20 sampled, 19 unchanged, 1 encoded"),
        "{summary}"
    );
}

#[test]
fn cameras_sharing_one_model_are_served_evenly() {
    let dir = tempfile::tempdir().unwrap();
    let clip = make_pattern(dir.path());
    let cams: String = (0..6)
        .map(|i| {
            format!(
                "[[cameras]]\nrealtime = false\nid = \"c{i}\"\nurl = {}\nrepeat = true\nsample_fps = 30\nchange_threshold = 0\n\n{}",
                toml_path(&clip),
                person_query("")
            )
        })
        .collect();
    let cfg = write_config(dir.path(), &format!("{}\n{cams}", engine_and_yolox()));
    let broker = Mosquitto::start();
    let col = MqttCollector::with_filter(&broker.url(), "ocellus/+/detections");
    assert!(col.wait_subscribed(Duration::from_secs(10)));
    let mut daemon = Daemon::start(&cfg, &["--mqtt-url", &broker.url()]);
    // Every camera evaluates every frame: the one engine thread is saturated.
    assert!(
        col.wait_for(|m| m.len() >= 300, Duration::from_secs(60)),
        "{}",
        daemon.output()
    );
    let status = daemon.stop_within(Duration::from_secs(30));
    assert!(status.success(), "{}", daemon.output());
    let mut per_camera = std::collections::BTreeMap::new();
    for m in col.messages() {
        *per_camera.entry(m.topic.clone()).or_insert(0u32) += 1;
    }
    let (min, max) = (
        per_camera.values().min().copied().unwrap_or(0),
        per_camera.values().max().copied().unwrap_or(0),
    );
    eprintln!("frames per camera: {per_camera:?}");
    assert_eq!(per_camera.len(), 6, "{per_camera:?}");
    assert!(
        f64::from(min) >= 0.7 * f64::from(max),
        "uneven service: {per_camera:?}"
    );
}

/// A 2 s moving test pattern (every frame differs).
fn make_pattern(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("ball.mkv");
    make_test_pattern_clip(&out, 320, 240, 30, 2.0, "ball");
    out
}
