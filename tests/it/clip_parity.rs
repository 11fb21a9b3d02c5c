//! CLIP parity: the Rust path (GStreamer PNG decode → resize/crop/normalise →
//! tokenise → ONNX Runtime → cosine × logit_scale → softmax) against reference values
//! computed by Hugging Face transformers on a tiny random-weight CLIP
//! (scripts/fixtures/make_tiny_clip.py). Tolerance: 1e-4 on embeddings and
//! probabilities, 1e-3 on raw logits (they are scaled by 100).

use crate::common;

use common::{floats, max_diff, normalised, shared_dir};

use std::path::{Path, PathBuf};

use ocellus::engine::{self, Batcher, EngineConfig, Rect, RgbView};
use ocellus::kit::Frame;
use ocellus::model::ClipConfig;
use ocellus::model::clip::{Clip, ClipImage, ClipSessions, softmax};
use ocellus::query::{FrameOutputs, StandingQuery};
use ocellus::source;
use serde_json::Value;

const TOL: f32 = 1e-4;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn reference() -> Value {
    let text =
        std::fs::read_to_string(root().join("tests/fixtures/clip_tiny/reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The model, its sessions and the engine thread of its vision encoder.
fn load() -> (Clip, ClipSessions, Batcher) {
    let mut cfg: ClipConfig = toml::from_str(&format!(
        "dir = {:?}\ntokenizer = {:?}\nproviders = [\"cpu\"]\nthreads = 1",
        root().join("tests/fixtures/clip_tiny"),
        shared_dir().join("models/clip_vit_b32_tokenizer/tokenizer.json"),
    ))
    .unwrap();
    let mut model = ocellus::model::ModelConfig::Clip(cfg.clone());
    model.resolve_paths(Path::new("/"));
    if let ocellus::model::ModelConfig::Clip(c) = model {
        cfg = c;
    }
    let env = engine::environment(&EngineConfig::default()).unwrap();
    let (clip, sessions) = Clip::load("tiny-clip", &cfg, env).unwrap();
    let engine = clip.engine(&sessions, &EngineConfig::default()).unwrap();
    (clip, sessions, engine)
}

/// Decodes an image file with the camera pipeline (uridecodebin → RGB appsink).
fn decode(path: &Path) -> Frame {
    source::first_frame(path, ocellus::kit::Pixels::Rgb).unwrap()
}

#[test]
fn tokenizer_and_text_embeddings_match_transformers() {
    let (clip, sessions, _engine) = load();
    let r = reference();
    for p in r["prompts"].as_array().unwrap() {
        let text = p["text"].as_str().unwrap();
        let ids: Vec<i64> = p["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        assert_eq!(clip.tokenize(text).unwrap(), ids, "token ids of {text:?}");
        let got = clip.embed_text(&sessions, text).unwrap();
        let want = normalised(&floats(&p["text_embeds"]));
        let d = max_diff(&got, &want);
        eprintln!("text {text:?}: max |diff| {d:e}");
        assert!(d < TOL, "text embedding of {text:?} differs by {d}");
    }
}

#[test]
fn image_path_matches_transformers_for_real_photos() {
    let (clip, sessions, engine) = load();
    let mut client = engine.client();
    let r = reference();
    let mut scratch = ClipImage::new();
    for (i, img) in r["images"].as_array().unwrap().iter().enumerate() {
        let file = img["file"].as_str().unwrap();
        let frame = decode(&shared_dir().join("media").join(file));
        assert_eq!(
            (frame.width as u64, frame.height as u64),
            (
                img["width"].as_u64().unwrap(),
                img["height"].as_u64().unwrap()
            )
        );
        if file == "chelsea.png" {
            // 451 px wide: GStreamer pads RGB rows to 1356 bytes.
            assert_eq!(frame.stride, 1356);
            let view = RgbView::of(&frame).unwrap();
            let whole = Rect::of_region(None, frame.width, frame.height);
            let pixels = scratch.fill(&view, whole, clip.spec()).unwrap().to_vec();
            let raw =
                std::fs::read(root().join("tests/fixtures/clip_tiny/pixel_values_chelsea.f32"))
                    .unwrap();
            let want: Vec<f32> = raw
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let d = max_diff(&pixels, &want);
            eprintln!("chelsea pixel_values: max |diff| {d:e}");
            assert!(
                d < TOL,
                "chelsea pixel_values differ from CLIPImageProcessor by up to {d}"
            );
        }
        let got = clip
            .embed_image(&mut client, &frame, None, &mut scratch)
            .unwrap();
        let want = normalised(&floats(&img["image_embeds"]));
        let d = max_diff(&got, &want);
        eprintln!("image {file}: embedding max |diff| {d:e}");
        assert!(d < TOL, "image embedding of {file} differs by {d}");

        let prompts: Vec<_> = r["prompts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                clip.embed_text(&sessions, p["text"].as_str().unwrap())
                    .unwrap()
            })
            .collect();
        let refs: Vec<_> = prompts.iter().collect();
        let logits = clip.logits(&got, &refs);
        let want = floats(&r["logits_per_image"][i]);
        let d = max_diff(&logits, &want);
        eprintln!("image {file}: logits max |diff| {d:e}");
        assert!(d < 1e-3, "logits of {file} differ by {d}");
    }
}

#[test]
fn yes_no_and_classify_scores_match_transformers() {
    let (clip, sessions, engine) = load();
    let mut client = engine.client();
    let r = reference();
    let mut scratch = ClipImage::new();
    let frames: Vec<Frame> = r["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|img| {
            decode(
                &shared_dir()
                    .join("media")
                    .join(img["file"].as_str().unwrap()),
            )
        })
        .collect();
    let embeddings: Vec<_> = frames
        .iter()
        .map(|f| {
            clip.embed_image(&mut client, f, None, &mut scratch)
                .unwrap()
        })
        .collect();
    for q in r["queries"].as_array().unwrap() {
        let strings = |k: &str| -> Vec<&str> {
            q[k].as_array()
                .map(|a| a.iter().map(|s| s.as_str().unwrap()).collect())
                .unwrap_or_default()
        };
        for (i, image) in embeddings.iter().enumerate() {
            if let Some(p_yes) = q.get("p_yes") {
                let (yes, no) = (strings("yes"), strings("no"));
                let prompts: Vec<_> = yes
                    .iter()
                    .chain(&no)
                    .map(|t| clip.embed_text(&sessions, t).unwrap())
                    .collect();
                let probs = softmax(&clip.logits(image, &prompts.iter().collect::<Vec<_>>()));
                let got: f32 = probs[..yes.len()].iter().sum();
                let want = p_yes[i].as_f64().unwrap() as f32;
                assert!(
                    (got - want).abs() < TOL,
                    "{} p_yes on image {i}: {got} vs {want}",
                    q["id"]
                );
            } else {
                let labels = strings("labels");
                let prompts: Vec<_> = labels
                    .iter()
                    .map(|t| clip.embed_text(&sessions, t).unwrap())
                    .collect();
                let got = softmax(&clip.logits(image, &prompts.iter().collect::<Vec<_>>()));
                let want = floats(&q["probs"][i]);
                let d = max_diff(&got, &want);
                assert!(d < TOL, "{} probs on image {i} differ by {d}", q["id"]);
            }
        }
    }
}

/// The standing-query path (config → prepare → evaluate) gives the same p(yes).
#[test]
fn standing_yes_no_query_reports_the_reference_probability() {
    let r = reference();
    let q = &r["queries"][1];
    let dir = tempfile::tempdir().unwrap();
    let cfg = format!(
        r#"[models.tiny]
family = "clip"
dir = {:?}
tokenizer = {:?}
providers = ["cpu"]

[[cameras]]
realtime = false
id = "cam"
url = "unused.mkv"

[[cameras.queries]]
id = "coffee"
ask = "is there coffee?"
kind = "yes_no"
model = "tiny"
yes = {}
no = {}
on = 0.2
off = 0.1
"#,
        root().join("tests/fixtures/clip_tiny"),
        shared_dir().join("models/clip_vit_b32_tokenizer/tokenizer.json"),
        q["yes"],
        q["no"],
    );
    let path = dir.path().join("c.toml");
    std::fs::write(&path, cfg).unwrap();
    let config = ocellus::app::config::load(&path).unwrap();
    let env = engine::environment(&config.engine).unwrap();
    let prompts = std::sync::Arc::default();
    let models = ocellus::model::Registry::load(&config.models, &config.engine, env, &prompts);
    let mut query = StandingQuery::prepare(config.cameras[0].queries[0].clone(), &models).unwrap();
    let (clip, _sessions, engine) = load();
    let mut client = engine.client();
    let mut scratch = ClipImage::new();
    for (i, img) in r["images"].as_array().unwrap().iter().enumerate() {
        let frame = decode(
            &shared_dir()
                .join("media")
                .join(img["file"].as_str().unwrap()),
        );
        let e = clip
            .embed_image(&mut client, &frame, None, &mut scratch)
            .unwrap();
        let outputs = FrameOutputs {
            detections: vec![],
            embeddings: vec![(std::sync::Arc::from("tiny"), None, Some(e))],
        };
        let eval = query
            .evaluate(
                &outputs,
                std::time::SystemTime::now(),
                std::time::Duration::ZERO,
            )
            .unwrap();
        let want = q["p_yes"][i].as_f64().unwrap() as f32;
        assert!(
            (eval.score - want).abs() < TOL,
            "image {i}: {} vs {want}",
            eval.score
        );
        let expect_on = want >= 0.2;
        assert_eq!(
            eval.state.map(|s| s.to_string()),
            Some(if expect_on { "ON" } else { "OFF" }.to_string())
        );
    }
}
