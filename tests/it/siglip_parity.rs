//! SigLIP parity: the Rust path (GStreamer PNG decode → Pillow-bilinear resize to
//! 224×224 → rescale/normalise → tokenise and pad to 64 → ONNX Runtime → cosine ×
//! logit_scale + logit_bias → sigmoid) against reference values computed by Hugging
//! Face transformers on a tiny random-weight SigLIP (scripts/fixtures/make_tiny_siglip.py,
//! tests/fixtures/siglip_tiny). Pixel values must match the image processor exactly;
//! embeddings, logits and probabilities within 1e-4. Also: the MobileCLIP form of
//! `preprocessor_config.json` against `CLIPImageProcessor`, the standing-query path
//! for yes_no and classify, and the loader's one-line errors.

use crate::common;

use common::{floats, max_diff, normalised, shared_dir};

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use ocellus::engine::{self, Batcher, EngineConfig, Rect, RgbView};
use ocellus::kit::Frame;
use ocellus::model::clip::{Clip, ClipImage, ClipSessions, Embedding, ImageSpec, Scoring};
use ocellus::model::{ClipConfig, ClipModelType, ModelConfig};
use ocellus::query::{FrameOutputs, StandingQuery};
use ocellus::source;
use serde_json::Value;

const TOL: f32 = 1e-4;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/siglip_tiny")
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixture().join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The model config for `dir` with `extra` TOML lines, paths resolved.
fn config(dir: &Path, extra: &str) -> ClipConfig {
    let cfg: ClipConfig = toml::from_str(&format!(
        "dir = {dir:?}\nproviders = [\"cpu\"]\nthreads = 1\n{extra}"
    ))
    .unwrap();
    let mut model = ModelConfig::Clip(cfg);
    model.resolve_paths(Path::new("/"));
    match model {
        ModelConfig::Clip(c) => c,
        _ => unreachable!(),
    }
}

fn try_load(dir: &Path, extra: &str) -> Result<(Clip, ClipSessions), String> {
    let env = engine::environment(&EngineConfig::default()).unwrap();
    Clip::load("tiny-siglip", &config(dir, extra), env).map_err(|e| e.to_string())
}

/// The model, its sessions and the engine thread of its vision encoder.
fn load() -> (Clip, ClipSessions, Batcher) {
    let (clip, sessions) = try_load(&fixture(), "").unwrap();
    let engine = clip.engine(&sessions, &EngineConfig::default()).unwrap();
    (clip, sessions, engine)
}

fn decode(file: &str) -> Frame {
    source::first_frame(
        &shared_dir().join("media").join(file),
        ocellus::kit::Pixels::Rgb,
    )
    .unwrap()
}

fn strings(v: &Value) -> Vec<&str> {
    v.as_array()
        .map(|a| a.iter().map(|s| s.as_str().unwrap()).collect())
        .unwrap_or_default()
}

/// The processor's pixel_values from the fixture's bytes (HWC) and per-channel table:
/// the generator checked that `table[c][byte]` is exactly what the processor gave.
fn processor_pixels(bytes_file: &Path, table: &Value) -> Vec<f32> {
    let bytes = std::fs::read(bytes_file).unwrap();
    let table: Vec<Vec<f32>> = table.as_array().unwrap().iter().map(floats).collect();
    let plane = bytes.len() / 3;
    let mut out = vec![0f32; bytes.len()];
    for (i, px) in bytes.chunks_exact(3).enumerate() {
        for c in 0..3 {
            out[c * plane + i] = table[c][usize::from(px[c])];
        }
    }
    out
}

#[test]
fn the_loader_reads_siglip_from_the_folder() {
    let (clip, _sessions, _engine) = load();
    let r = reference();
    assert_eq!(clip.model_type(), ClipModelType::Siglip);
    let Scoring::Sigmoid { scale, bias } = clip.scoring() else {
        panic!("SigLIP scores by sigmoid, got {:?}", clip.scoring());
    };
    let (want_scale, want_bias) = (
        r["logit_scale_exp"].as_f64().unwrap() as f32,
        r["logit_bias"].as_f64().unwrap() as f32,
    );
    eprintln!("logit scale {scale} (want {want_scale}), bias {bias} (want {want_bias})");
    assert!((scale - want_scale).abs() < 1e-5 && bias == want_bias);
}

#[test]
fn tokenizer_and_text_embeddings_match_transformers() {
    let (clip, sessions, _engine) = load();
    let r = reference();
    let mut worst = 0f32;
    for p in r["prompts"].as_array().unwrap() {
        let text = p["text"].as_str().unwrap();
        let ids: Vec<i64> = p["input_ids"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        assert_eq!(ids.len(), 64);
        assert_eq!(clip.tokenize(text).unwrap(), ids, "token ids of {text:?}");
        let got = clip.embed_text(&sessions, text).unwrap();
        let d = max_diff(&got, &normalised(&floats(&p["text_embeds"])));
        worst = worst.max(d);
        assert!(d < TOL, "text embedding of {text:?} differs by {d}");
    }
    eprintln!("text embeddings: max |diff| {worst:e}");
}

#[test]
fn preprocessing_is_bit_exact_with_the_image_processor() {
    let (clip, _sessions, _engine) = load();
    let r = reference();
    let mut scratch = ClipImage::new();
    for img in r["images"].as_array().unwrap() {
        let file = img["file"].as_str().unwrap();
        let frame = decode(file);
        let view = RgbView::of(&frame).unwrap();
        let whole = Rect::of_region(None, frame.width, frame.height);
        let got = scratch.fill(&view, whole, clip.spec()).unwrap().to_vec();
        let want = processor_pixels(
            &fixture().join(img["pixels"].as_str().unwrap()),
            &r["pixel_table"],
        );
        let d = max_diff(&got, &want);
        eprintln!("{file} pixel_values: max |diff| {d:e}");
        assert_eq!(
            d, 0.0,
            "{file}: pixel_values differ from SiglipImageProcessor"
        );
    }
}

#[test]
fn mobileclip_form_preprocessing_is_bit_exact_with_clip_image_processor() {
    let r = reference();
    let m = &r["mobileclip"];
    let spec = ImageSpec::from_file(&fixture().join(m["preprocessor"].as_str().unwrap())).unwrap();
    assert_eq!(spec.output_size(), Some((256, 256)));
    assert_eq!(spec.normalize, None);
    let frame = decode(m["file"].as_str().unwrap());
    let view = RgbView::of(&frame).unwrap();
    let whole = Rect::of_region(None, frame.width, frame.height);
    let ((rw, rh), window) = spec.geometry(f64::from(frame.width), f64::from(frame.height));
    assert_eq!(
        [rw, rh, window.x, window.y],
        [
            m["resized"][0].as_u64().unwrap() as u32,
            m["resized"][1].as_u64().unwrap() as u32,
            m["crop"][0].as_u64().unwrap() as u32,
            m["crop"][1].as_u64().unwrap() as u32
        ]
    );
    let got = ClipImage::new().fill(&view, whole, &spec).unwrap().to_vec();
    let want = processor_pixels(
        &fixture().join(m["pixels"].as_str().unwrap()),
        &m["pixel_table"],
    );
    let d = max_diff(&got, &want);
    eprintln!("MobileCLIP-form chelsea pixel_values: max |diff| {d:e}");
    assert_eq!(d, 0.0, "pixel_values differ from CLIPImageProcessor");
}

#[test]
fn image_embeddings_logits_and_probabilities_match_transformers() {
    let (clip, sessions, engine) = load();
    let mut client = engine.client();
    let r = reference();
    let mut scratch = ClipImage::new();
    let prompts: Vec<Embedding> = r["prompts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            clip.embed_text(&sessions, p["text"].as_str().unwrap())
                .unwrap()
        })
        .collect();
    let refs: Vec<&Embedding> = prompts.iter().collect();
    let (mut worst_e, mut worst_l, mut worst_p) = (0f32, 0f32, 0f32);
    for (i, img) in r["images"].as_array().unwrap().iter().enumerate() {
        let file = img["file"].as_str().unwrap();
        let image = clip
            .embed_image(&mut client, &decode(file), None, &mut scratch)
            .unwrap();
        let d = max_diff(&image, &normalised(&floats(&img["image_embeds"])));
        worst_e = worst_e.max(d);
        assert!(d < TOL, "image embedding of {file} differs by {d}");
        let d = max_diff(
            &clip.logits(&image, &refs),
            &floats(&r["logits_per_image"][i]),
        );
        worst_l = worst_l.max(d);
        assert!(d < TOL, "logits of {file} differ by {d}");
        let d = max_diff(
            &clip.probabilities(&image, &refs),
            &floats(&r["probs_per_image"][i]),
        );
        worst_p = worst_p.max(d);
        assert!(d < TOL, "sigmoid probabilities of {file} differ by {d}");
    }
    eprintln!(
        "image embeddings max |diff| {worst_e:e}, logits {worst_l:e}, probabilities {worst_p:e}"
    );
}

/// yes_no and classify through the standing-query path (config → prepare → evaluate).
#[test]
fn standing_queries_report_the_reference_scores() {
    let r = reference();
    let queries = r["queries"].as_array().unwrap();
    let mut toml = format!(
        "[models.tiny]\nfamily = \"clip\"\ndir = {:?}\nproviders = [\"cpu\"]\n\n\
         [[cameras]]\nrealtime = false\nid = \"cam\"\nurl = \"unused.mkv\"\n",
        fixture()
    );
    for q in queries {
        let id = q["id"].as_str().unwrap();
        if q.get("p_yes").is_some() {
            toml += &format!(
                "\n[[cameras.queries]]\nid = {id:?}\nask = \"?\"\nkind = \"yes_no\"\nmodel = \"tiny\"\n\
                 yes = {}\nno = {}\non = 0.5\noff = 0.49999\n",
                q["yes"], q["no"]
            );
        } else {
            toml += &format!(
                "\n[[cameras.queries]]\nid = {id:?}\nask = \"?\"\nkind = \"classify\"\nmodel = \"tiny\"\nlabels = {}\n",
                q["labels"]
            );
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    std::fs::write(&path, toml).unwrap();
    let config = ocellus::app::config::load(&path).unwrap();
    let env = engine::environment(&config.engine).unwrap();
    let models =
        ocellus::model::Registry::load(&config.models, &config.engine, env, &Arc::default());
    assert!(models.failed().is_empty(), "{:?}", models.failed());
    let mut standing: Vec<StandingQuery> = config.cameras[0]
        .queries
        .iter()
        .map(|q| StandingQuery::prepare(q.clone(), &models).unwrap())
        .collect();
    let (clip, _sessions, engine) = load();
    let mut client = engine.client();
    let mut scratch = ClipImage::new();
    let mut worst = 0f32;
    for (i, img) in r["images"].as_array().unwrap().iter().enumerate() {
        let image = clip
            .embed_image(
                &mut client,
                &decode(img["file"].as_str().unwrap()),
                None,
                &mut scratch,
            )
            .unwrap();
        let outputs = FrameOutputs {
            detections: vec![],
            embeddings: vec![(Arc::from("tiny"), None, Some(image))],
        };
        for (q, query) in queries.iter().zip(standing.iter_mut()) {
            let eval = query
                .evaluate(&outputs, SystemTime::now(), Duration::ZERO)
                .unwrap();
            let state = eval.state.map(|s| s.to_string());
            if let Some(p_yes) = q.get("p_yes") {
                let want = p_yes[i].as_f64().unwrap() as f32;
                let d = (eval.score - want).abs();
                worst = worst.max(d);
                assert!(
                    d < TOL,
                    "{} on image {i}: {} vs {want}",
                    q["id"],
                    eval.score
                );
                assert_eq!(
                    state.as_deref(),
                    Some(if want >= 0.5 { "ON" } else { "OFF" })
                );
            } else {
                let labels = strings(&q["labels"]);
                let best = labels[q["best"][i].as_u64().unwrap() as usize];
                let want = q["score"][i].as_f64().unwrap() as f32;
                let d = (eval.score - want).abs();
                worst = worst.max(d);
                assert!(d < TOL, "classify on image {i}: {} vs {want}", eval.score);
                assert_eq!(state.as_deref(), Some(best), "label on image {i}");
            }
        }
    }
    eprintln!("standing query scores: max |diff| {worst:e}");
}

/// A copy of the fixture folder to break.
fn copy_fixture() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for sub in ["", "onnx"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
        for e in std::fs::read_dir(fixture().join(sub)).unwrap() {
            let e = e.unwrap();
            if e.file_type().unwrap().is_file() {
                std::fs::copy(e.path(), dir.path().join(sub).join(e.file_name())).unwrap();
            }
        }
    }
    dir
}

/// Replaces every `from` in `file` by `to` (same length: the protobuf stays valid).
fn rename_in(file: &Path, from: &str, to: &str) {
    assert_eq!(from.len(), to.len());
    let bytes = std::fs::read(file).unwrap();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    let mut n = 0;
    while i < bytes.len() {
        if bytes[i..].starts_with(from.as_bytes()) {
            out.extend_from_slice(to.as_bytes());
            i += from.len();
            n += 1;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    assert!(n > 0, "{from} is not in {}", file.display());
    std::fs::write(file, out).unwrap();
}

fn one_line_naming(e: &str, file: &Path) {
    assert!(!e.contains('\n'), "{e}");
    assert!(e.starts_with("model tiny-siglip: "), "{e}");
    assert!(e.contains(&file.display().to_string()), "{e}");
}

#[test]
fn loader_errors_are_one_line_and_name_the_file() {
    // No combined export and no numbers in the config.
    let dir = copy_fixture();
    let combined = dir.path().join("onnx/model.onnx");
    std::fs::remove_file(&combined).unwrap();
    let e = try_load(dir.path(), "").err().unwrap();
    eprintln!("{e}");
    one_line_naming(&e, &combined);
    assert!(e.contains(
        "not found; SigLIP's logit_scale and logit_bias are only in the combined export"
    ));
    // Both numbers in the config: the combined export is not needed.
    let (clip, _) = try_load(dir.path(), "logit_scale = 117.3\nlogit_bias = -12.9").unwrap();
    assert_eq!(
        clip.scoring(),
        Scoring::Sigmoid {
            scale: 117.3,
            bias: -12.9
        }
    );

    // A combined export whose logits have no bias.
    let dir = copy_fixture();
    let combined = dir.path().join("onnx/model.onnx");
    rename_in(&combined, "Add", "Sub");
    let e = try_load(dir.path(), "").err().unwrap();
    eprintln!("{e}");
    one_line_naming(&e, &combined);
    assert!(e.contains("no logit_bias"), "{e}");
    // One number overridden, the other read from the file.
    let dir = copy_fixture();
    let (clip, _) = try_load(dir.path(), "logit_bias = -3.5").unwrap();
    let Scoring::Sigmoid { scale, bias } = clip.scoring() else {
        panic!()
    };
    assert!((scale - 10.0).abs() < 1e-5 && bias == -3.5);

    // A text model without pooler_output.
    let text = dir.path().join("onnx/text_model.onnx");
    rename_in(&text, "pooler_output", "pooled_outpux");
    let e = try_load(dir.path(), "").err().unwrap();
    eprintln!("{e}");
    one_line_naming(&e, &text);
    assert!(
        e.ends_with(r#"expected an output named pooler_output, found ["last_hidden_state", "pooled_outpux"]"#),
        "{e}"
    );

    // model_type in the config overrides config.json: as CLIP, the towers' outputs
    // are not CLIP's.
    let dir = copy_fixture();
    let e = try_load(dir.path(), "model_type = \"clip\"").err().unwrap();
    eprintln!("{e}");
    one_line_naming(&e, &dir.path().join("onnx/vision_model.onnx"));
    assert!(e.contains("expected an output named image_embeds"), "{e}");
    // ... and logit_bias is refused for CLIP.
    let e = try_load(dir.path(), "model_type = \"clip\"\nlogit_bias = 1.0")
        .err()
        .unwrap();
    one_line_naming(&e, &dir.path().join("config.json"));
    assert!(
        e.contains("logit_bias is set, but this is a CLIP model"),
        "{e}"
    );

    // A preprocessor that does not fit the vision model.
    let pre = dir.path().join("preprocessor_config.json");
    let text = std::fs::read_to_string(&pre).unwrap().replace("224", "256");
    std::fs::write(&pre, text).unwrap();
    let e = try_load(dir.path(), "").err().unwrap();
    eprintln!("{e}");
    one_line_naming(&e, &pre);
    assert!(e.contains("gives 256x256 images, but"), "{e}");

    // Unknown keys are refused.
    let bad = toml::from_str::<ClipConfig>("dir = \"x\"\nkind = \"siglip\"");
    assert!(
        bad.unwrap_err()
            .to_string()
            .contains("unknown field `kind`")
    );
}
