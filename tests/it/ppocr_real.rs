//! PP-OCRv4 with the real weights (../shared/models/ppocrv4_rapidocr): GStreamer
//! decodes the test photos, the Rust pipeline reads them, and the lines are checked
//! against the expected text and against RapidOCR 1.4.4's own output on the same
//! images (tests/fixtures/ppocr/reference.json, made by
//! scripts/fixtures/make_ppocr_reference.py). Texts are compared after removing
//! spaces where the model's spacing is not the point ("MACHINE 3:LIGHT RED").

use crate::common;

use common::shared_dir;

use std::path::{Path, PathBuf};

use ocellus::engine::{self, EngineConfig};
use ocellus::kit::Frame;
use ocellus::model::ppocr::{Ppocr, PpocrConfig, PpocrSessions, Reading};
use ocellus::source;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn config(extra: &str) -> PpocrConfig {
    let mut cfg: PpocrConfig = toml::from_str(&format!(
        "dir = {:?}\nproviders = [\"cpu\"]\nthreads = 2\n{extra}",
        shared_dir().join("models/ppocrv4_rapidocr"),
    ))
    .unwrap();
    cfg.resolve_paths(Path::new("/"));
    cfg
}

fn load(extra: &str) -> (Ppocr, PpocrSessions) {
    let env = engine::environment(&EngineConfig::default()).unwrap();
    Ppocr::load("ocr", &config(extra), env).unwrap()
}

fn reference(case: &str) -> Value {
    let text = std::fs::read_to_string(root().join("tests/fixtures/ppocr/reference.json")).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    all[case].clone()
}

/// Decodes a shared photo with the camera pipeline (uridecodebin → RGB appsink).
fn decode(name: &str) -> Frame {
    source::first_frame(
        &shared_dir().join("media").join(name),
        ocellus::kit::Pixels::Rgb,
    )
    .unwrap()
}

fn squeeze(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

fn show(name: &str, r: &Reading) {
    for l in &r.lines {
        eprintln!("{name}: {:?} {:.3} {:?}", l.text, l.score, l.bbox);
    }
    eprintln!(
        "{name}: det {:.1} ms, cls {:.1} ms, rec {:.1} ms; pre {:.1} ms, post {:.1} ms",
        r.runs.det.as_secs_f64() * 1e3,
        r.runs.cls.as_secs_f64() * 1e3,
        r.runs.rec.as_secs_f64() * 1e3,
        r.stages.preprocess.as_secs_f64() * 1e3,
        r.stages.postprocess.as_secs_f64() * 1e3,
    );
}

/// Same lines as RapidOCR: same count and text, boxes within `px` pixels, scores
/// within 0.01. Returns the largest box and score differences.
fn assert_matches_reference(case: &str, r: &Reading, frame: &Frame, px: f32) -> (f32, f32) {
    let want = reference(case);
    let lines = want["lines"].as_array().unwrap();
    let texts: Vec<&str> = lines.iter().map(|l| l["text"].as_str().unwrap()).collect();
    let got: Vec<&str> = r.lines.iter().map(|l| l.text.as_str()).collect();
    assert_eq!(got, texts, "{case}: lines differ from RapidOCR's");
    let (fw, fh) = (frame.width as f32, frame.height as f32);
    let (mut dbox, mut dscore) = (0f32, 0f32);
    for (l, w) in r.lines.iter().zip(lines) {
        let b: Vec<f32> = w["bbox"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        for (i, (got, want)) in l.bbox.iter().zip(&b).enumerate() {
            let scale = if i % 2 == 0 { fw } else { fh };
            dbox = dbox.max((got - want).abs() * scale);
        }
        dscore = dscore.max((l.score - w["score"].as_f64().unwrap() as f32).abs());
    }
    eprintln!("{case}: max |box diff| {dbox} px, max |score diff| {dscore}");
    assert!(dbox <= px, "{case}: boxes differ by {dbox} px");
    assert!(dscore <= 0.01, "{case}: scores differ by {dscore}");
    (dbox, dscore)
}

#[test]
fn reads_the_machine_card() {
    let (ocr, sessions) = load("");
    let frame = decode("ocr_synthetic_machine3.png");
    let r = ocr.read(&sessions, &frame, None).unwrap();
    show("machine3", &r);
    let text = r.text();
    assert!(squeeze(&text).contains("MACHINE3"), "{text:?}");
    assert!(squeeze(&text).contains("LIGHTRED"), "{text:?}");
    assert!(
        r.lines.iter().any(|l| l.text.contains("Door camera 42 OK")),
        "{text:?}"
    );
    assert_eq!(text.lines().count(), 2);
    assert!(r.lines[0].bbox[1] < r.lines[1].bbox[1], "top line first");
    assert_matches_reference("machine3", &r, &frame, 1.0);
}

#[test]
fn reads_the_first_lines_of_the_scanned_page() {
    let (ocr, sessions) = load("");
    let frame = decode("page.png");
    let r = ocr.read(&sessions, &frame, None).unwrap();
    show("page", &r);
    assert!(r.lines.len() >= 2, "{:?}", r.text());
    assert_eq!(squeeze(&r.lines[0].text), "Region-basedsegmentation");
    assert_eq!(
        r.lines[1].text,
        "Let us first determine markers of the coins and the"
    );
    assert_matches_reference("page", &r, &frame, 1.0);
}

#[test]
fn a_region_reads_only_its_lines() {
    let (ocr, sessions) = load("");
    let frame = decode("ocr_synthetic_machine3.png");
    let region = [0.0, 0.5, 1.0, 1.0];
    let r = ocr.read(&sessions, &frame, Some(region)).unwrap();
    show("machine3 lower half", &r);
    assert_eq!(r.lines.len(), 1, "{:?}", r.text());
    // With only the line around it, the model reads "OK" as "0K" (so does RapidOCR).
    assert!(
        squeeze(&r.text()).starts_with("Doorcamera42"),
        "{:?}",
        r.text()
    );
    let b = r.lines[0].bbox;
    assert!(b[0] >= region[0] && b[1] >= region[1] && b[2] <= region[2] && b[3] <= region[3]);
    assert_matches_reference("machine3_line2", &r, &frame, 1.0);
}

#[test]
fn keys_fall_back_to_the_model_metadata_and_cls_can_be_off() {
    let (ocr, sessions) = load("keys = \"no-such-keys.txt\"\ncls = false");
    assert!(sessions.cls.is_none());
    let frame = decode("ocr_synthetic_machine3.png");
    let r = ocr.read(&sessions, &frame, None).unwrap();
    assert!(
        r.lines.iter().any(|l| l.text.contains("Door camera 42 OK")),
        "{:?}",
        r.text()
    );
}

#[test]
fn a_missing_model_file_is_a_one_line_error_naming_it() {
    let env = engine::environment(&EngineConfig::default()).unwrap();
    let e = match Ppocr::load("ocr", &config("rec = \"missing_rec.onnx\""), env) {
        Ok(_) => panic!("loaded without its rec model"),
        Err(e) => e.to_string(),
    };
    eprintln!("{e}");
    assert!(e.contains("missing_rec.onnx") && e.contains("ocr"), "{e}");
    assert_eq!(e.lines().count(), 1, "{e}");
}

/// Per-image model times (warm, median of 5), printed for the record.
#[test]
fn timings() {
    let (ocr, sessions) = load("");
    for name in ["ocr_synthetic_machine3.png", "page.png"] {
        let frame = decode(name);
        ocr.read(&sessions, &frame, None).unwrap();
        let mut runs: Vec<Reading> = (0..5)
            .map(|_| ocr.read(&sessions, &frame, None).unwrap())
            .collect();
        runs.sort_by_key(|r| r.stages.infer);
        show(name, &runs[2]);
    }
}
