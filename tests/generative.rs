//! Slow queries end to end, through the real binary (GStreamer decode, ONNX Runtime,
//! mosquitto): the real PP-OCRv4 models read a machine display into text and
//! numbers (`pattern`), inside a region too; slow queries run at their cadence (the
//! first frame, then a scene change) while the per-frame detector answers every
//! sample; and in the daemon, captions, detections, answers and readings of
//! Florence-2, SmolVLM (tiny random-weight fixtures) and PP-OCR reach MQTT with the
//! contract's topics, while the per-frame answers keep flowing.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn ppocr_model() -> String {
    let dir = models_dir().join("ppocrv4_rapidocr");
    assert!(dir.is_dir(), "PP-OCRv4 not found at {}", dir.display());
    format!(
        "[models.ocr]\nfamily = \"ppocr\"\ndir = {}\nproviders = [\"cpu\"]\n\n",
        toml_path(&dir)
    )
}

fn florence_model() -> String {
    format!(
        "[models.florence]\nfamily = \"florence2\"\ndir = {}\nproviders = [\"cpu\"]\n\n",
        toml_path(&root().join("tests/fixtures/florence2_tiny"))
    )
}

fn smolvlm_model() -> String {
    format!(
        "[models.smol]\nfamily = \"smolvlm\"\ndir = {}\nproviders = [\"cpu\"]\n\n",
        toml_path(&root().join("tests/fixtures/smolvlm_tiny"))
    )
}

fn query(id: &str, kind: &str, model: &str, extra: &str) -> String {
    format!(
        "[[cameras.queries]]\nid = {}\nask = \"what does it say?\"\nkind = {}\nmodel = {}\n{extra}\n\n",
        toml_str(id),
        toml_str(kind),
        toml_str(model)
    )
}

fn ask(media: &Path, cfg: &Path, sample_fps: &str) -> Vec<Value> {
    let out = run_ocellus(
        &[
            "ask",
            &media.to_string_lossy(),
            "-c",
            &cfg.to_string_lossy(),
            "--sample-fps",
            sample_fps,
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.show());
    out.assert_no_critical();
    out.json_lines()
}

/// The evaluation of query `id` in a report line, if it ran on that frame.
fn eval<'a>(line: &'a Value, id: &str) -> Option<&'a Value> {
    line["queries"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["id"] == id))
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn read_queries_turn_a_display_into_text_and_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{ENGINE_ONE_THREAD}{}[[cameras]]\nid = \"panel\"\nurl = \"unused.png\"\n\n{}{}{}{}",
            ppocr_model(),
            query("display", "read", "ocr", ""),
            query("machine", "read", "ocr", "pattern = 'MACHINE\\s*(\\d+)'"),
            query("camera", "read", "ocr", "pattern = 'camera\\s*(\\d+)'"),
            query("second_line", "read", "ocr", "region = [0.0, 0.5, 0.8, 0.9]"),
        ),
    );
    let lines = ask(&media("ocr_synthetic_machine3.png"), &cfg, "1");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    let state = |id: &str| {
        eval(line, id)
            .unwrap_or_else(|| panic!("no {id} in {line:#}"))
            .get("state")
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(state("machine"), serde_json::json!(3.0), "{line:#}");
    assert_eq!(state("camera"), serde_json::json!(42.0), "{line:#}");
    let display = state("display").as_str().unwrap_or_default().to_string();
    // The recogniser's spacing varies ("MACHINE 3: L" + "LIGHT"): compare without it.
    assert!(
        squash(&display).contains("MACHINE3:LIGHTRED")
            && squash(&display).contains("Doorcamera42OK"),
        "{display:?}"
    );
    let second = state("second_line").as_str().unwrap_or_default().to_string();
    assert_eq!(squash(&second), "Doorcamera42OK", "{line:#}");
    let score = eval(line, "display").unwrap()["score"].as_f64().unwrap();
    assert!(score > 0.8 && score <= 1.0, "mean line confidence {score}");
}

#[test]
fn slow_queries_run_on_the_first_frame_and_on_a_scene_change_only() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(
        dir.path(),
        "scene.mkv",
        &[("astronaut.png", 3.0), ("ocr_synthetic_machine3.png", 3.0)],
    );
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}{}[[cameras]]\nid = \"cam\"\nurl = \"unused.mkv\"\n\n{}{}",
            engine_and_yolox(),
            ppocr_model(),
            person_query(""),
            query(
                "display",
                "read",
                "ocr",
                "every = \"1m\"\nmin_interval = \"1s\"\non_change = true"
            ),
        ),
    );
    let lines = ask(&clip, &cfg, "2");
    assert_eq!(lines.len(), 12, "{lines:#?}");
    // The per-frame detector answers on every sample.
    assert!(lines.iter().all(|l| eval(l, "person").is_some()));
    let read: Vec<(f64, String)> = lines
        .iter()
        .filter_map(|l| {
            let e = eval(l, "display")?;
            Some((
                l["pts"].as_f64().unwrap(),
                e["state"].as_str().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    assert_eq!(read.len(), 2, "{read:?}");
    assert_eq!(read[0].0, 0.0);
    assert!((read[1].0 - 3.0).abs() < 0.01, "{read:?}");
    assert!(!squash(&read[0].1).contains("MACHINE"), "{read:?}");
    assert!(squash(&read[1].1).contains("MACHINE3"), "{read:?}");
}
