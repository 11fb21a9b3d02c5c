//! PaliGemma parity: the Rust path (GStreamer PNG decode → Pillow-bicubic squash to
//! the encoder's square → rescale/normalise → vision encoder → image prefix KV →
//! prompt suffix → yes/no logits, greedy decoding, `<loc>` boxes) against reference
//! values computed by Hugging Face transformers on a tiny random-weight
//! PaliGemmaForConditionalGeneration with a Gemma 2 decoder
//! (scripts/fixtures/make_tiny_paligemma.py). transformers runs the whole prompt in
//! one forward pass; ocellus splits it into an image prefix and a prompt suffix.
//! The reference is transformers with the causal prompt attention of the published
//! 2-D-mask decoder (see `ocellus::model::paligemma`); its prefix-LM values are in
//! reference.json for the record only.
//! Tolerances: pixel values 1e-6 (the resize is Pillow-exact), logits and p(yes)
//! 1e-4, greedy token ids and text exactly equal.

use crate::common;

use common::shared_dir;

use std::path::{Path, PathBuf};

use ocellus::engine::{self, EngineConfig};
use ocellus::kit::Frame;
use ocellus::model::paligemma::{PaliGemma, PaliGemmaConfig, PaliGemmaSessions, Task, boxes};
use ocellus::source;
use serde_json::Value;

const TOL: f32 = 1e-4;
const PIXEL_TOL: f32 = 1e-6;

fn fixture() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/paligemma_tiny")
}

fn reference() -> Value {
    let text = std::fs::read_to_string(fixture().join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn load() -> (PaliGemma, PaliGemmaSessions) {
    let mut cfg: PaliGemmaConfig = toml::from_str(&format!(
        "dir = {:?}\nproviders = [\"cpu\"]\nthreads = 1",
        fixture()
    ))
    .unwrap();
    cfg.resolve_paths(Path::new("/"));
    let env = engine::environment(&EngineConfig::default()).unwrap();
    PaliGemma::load("tiny-paligemma", &cfg, env).unwrap()
}

fn photo(name: &str) -> Frame {
    let path = shared_dir().join("media").join(name);
    source::first_frame(&path, ocellus::kit::Pixels::Rgb).unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn f32s(v: &Value) -> f32 {
    v.as_f64().unwrap() as f32
}

/// The task whose prompt the generator used.
fn task(prompt: &str) -> Task {
    let task = if let Some(q) = prompt.strip_prefix("answer en ") {
        Task::Answer(q.into())
    } else if let Some(objects) = prompt.strip_prefix("detect ") {
        Task::detect(&[], objects)
    } else if prompt == "caption en" {
        Task::Caption
    } else if prompt == "ocr" {
        Task::Ocr
    } else {
        panic!("no task for {prompt:?}")
    };
    assert_eq!(task.prompt("en"), prompt);
    task
}

#[test]
fn pixel_values_match_the_siglip_processor() {
    let (vlm, _s) = load();
    for img in reference()["images"].as_array().unwrap() {
        let name = img["image"].as_str().unwrap();
        let bytes = std::fs::read(fixture().join(img["file"].as_str().unwrap())).unwrap();
        let want: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        let got = vlm.pixel_values(&photo(name), None).unwrap();
        assert_eq!(got.len(), want.len(), "{name}: tensor size");
        let d = got
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f32::max);
        eprintln!("{name}: pixel_values max |diff| {d:e}");
        assert!(d <= PIXEL_TOL, "{name}: pixel_values max |diff| {d}");
    }
}

#[test]
fn prefix_and_prompt_tokens_are_the_processors_input_ids() {
    let (vlm, _s) = load();
    let r = reference();
    assert_eq!(vlm.prefix_ids(), ids(&r["prefix_ids"]).as_slice());
    assert_eq!(vlm.stop_ids(), ids(&r["stop_ids"]).as_slice());
    let yn = &r["yes_no"];
    assert_eq!(
        vlm.yes_no_ids(),
        (
            yn["yes_id"].as_u64().unwrap() as u32,
            yn["no_id"].as_u64().unwrap() as u32
        )
    );
    for case in r["cases"].as_array().unwrap() {
        let p = case["prompt"].as_str().unwrap();
        let mut full = vlm.prefix_ids().to_vec();
        full.extend(vlm.suffix_ids(&task(p)).unwrap());
        assert_eq!(full, ids(&case["input_ids"]), "input_ids of {p:?}");
    }
}

#[test]
fn yes_no_logits_and_greedy_answers_match_transformers() {
    let (vlm, s) = load();
    let r = reference();
    let max_new = r["max_new_tokens"].as_u64().unwrap() as usize;
    let cases = r["cases"].as_array().unwrap();
    let (mut worst_logit, mut worst_p, mut with_boxes) = (0f32, 0f32, 0);
    for name in ["astronaut.png", "chelsea.png"] {
        let prefix = vlm.prefix(&s, &photo(name), None).unwrap();
        assert_eq!(prefix.len(), vlm.prefix_ids().len());
        eprintln!("{name}: prefix {:?}", prefix.timings);
        for case in cases.iter().filter(|c| c["image"] == name) {
            let p = case["prompt"].as_str().unwrap();
            let task = task(p);
            if let Task::Answer(q) = &task {
                let got = vlm.yes_no(&s, &prefix, q).unwrap();
                let dy = (got.yes_logit - f32s(&case["yes_logit"])).abs();
                let dn = (got.no_logit - f32s(&case["no_logit"])).abs();
                let dp = (got.p_yes - f32s(&case["p_yes"])).abs();
                eprintln!(
                    "{name} {p:?}: p(yes) {:.6} (|diff| {dp:e}), logits |diff| {dy:e} / {dn:e}",
                    got.p_yes
                );
                assert!(dy <= TOL && dn <= TOL, "{name} {p:?}: {got:?} vs {case}");
                assert!(
                    dp <= TOL,
                    "{name} {p:?}: p(yes) {} vs {}",
                    got.p_yes,
                    case["p_yes"]
                );
                worst_logit = worst_logit.max(dy).max(dn);
                worst_p = worst_p.max(dp);
            }
            let answer = vlm.run(&s, &prefix, &task, max_new).unwrap();
            eprintln!("{name} {p:?}: {:?}, {:?}", answer.text, answer.timings);
            assert_eq!(
                answer.ids,
                ids(&case["generated_ids"]),
                "{name} {p:?}: greedy ids"
            );
            assert_eq!(answer.tokens, answer.ids.len());
            let text = case["generated_text"].as_str().unwrap();
            assert_eq!(answer.text, text, "{name} {p:?}: text");
            if task.gives_boxes() {
                assert_eq!(answer.boxes, boxes(text), "{name} {p:?}: boxes of the text");
                with_boxes += answer.boxes.len();
            } else {
                assert!(answer.boxes.is_empty());
            }
        }
    }
    assert!(with_boxes > 0, "the detect answers carry <loc> runs");
    eprintln!("max |logit diff| {worst_logit:e}, max |p(yes) diff| {worst_p:e}");
}

#[test]
fn prompts_do_not_mutate_the_shared_prefix() {
    let (vlm, s) = load();
    let frame = photo("chelsea.png");
    let shared = vlm.prefix(&s, &frame, None).unwrap();
    let first = vlm.yes_no(&s, &shared, "Is there a cat?").unwrap();
    let caption = vlm.run(&s, &shared, &Task::Caption, 8).unwrap();
    let second = vlm
        .yes_no(&s, &shared, "Is there a person in the image?")
        .unwrap();
    let again = vlm.yes_no(&s, &shared, "Is there a cat?").unwrap();
    let fresh = vlm.prefix(&s, &frame, None).unwrap();
    assert_eq!(again, first, "asking twice on one prefix");
    assert_eq!(vlm.yes_no(&s, &fresh, "Is there a cat?").unwrap(), first);
    assert_eq!(
        vlm.yes_no(&s, &fresh, "Is there a person in the image?")
            .unwrap(),
        second
    );
    assert_eq!(
        vlm.run(&s, &fresh, &Task::Caption, 8).unwrap().ids,
        caption.ids
    );
    // A region is a different image: a different prefix and answer.
    let region = vlm.prefix(&s, &frame, Some([0.0, 0.0, 0.5, 0.5])).unwrap();
    assert_ne!(vlm.yes_no(&s, &region, "Is there a cat?").unwrap(), first);
}

#[test]
fn a_folder_of_another_family_is_one_clear_line() {
    let mut cfg: PaliGemmaConfig = toml::from_str(&format!(
        "dir = {:?}\nproviders = [\"cpu\"]",
        fixture().with_file_name("smolvlm_tiny")
    ))
    .unwrap();
    cfg.resolve_paths(Path::new("/"));
    let env = engine::environment(&EngineConfig::default()).unwrap();
    let e = PaliGemma::load("pali", &cfg, env)
        .err()
        .unwrap()
        .to_string();
    assert!(!e.contains('\n'), "{e}");
    assert!(
        e.contains("model pali")
            && e.contains("config.json")
            && e.contains("not a paligemma model"),
        "{e}"
    );
}
