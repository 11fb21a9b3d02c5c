//! Qwen2-VL and Qwen2.5-VL parity: the Rust path (GStreamer PNG decode → smart resize →
//! Pillow-BICUBIC resize → rescale/normalise → patches → vision encoder with
//! `grid_thw` → image prefix KV with M-RoPE positions → question suffix at
//! `index + rope_delta` → yes/no logits, greedy decoding) against reference values
//! computed by Hugging Face transformers on tiny random-weight
//! `Qwen2VLForConditionalGeneration` and `Qwen2_5_VLForConditionalGeneration` models
//! (scripts/fixtures/make_tiny_qwen2vl.py). transformers runs the whole prompt in one
//! forward pass (and `generate()`); ocellus splits it into an image prefix and a
//! question suffix. Tolerances: pixel values 1e-6 (the resize is Pillow-exact), logits
//! and p(yes) 1e-4, token ids, positions, rope_deltas and resize sizes exactly equal.

use crate::common;

use common::shared_dir;

use std::path::{Path, PathBuf};

use ocellus::engine::{self, EngineConfig};
use ocellus::kit::Frame;
use ocellus::model::ModelError;
use ocellus::model::qwen2vl::{
    ModelType, Qwen2Vl, Qwen2VlConfig, Qwen2VlSessions, mrope_prefix_positions, smart_resize,
};
use ocellus::source;
use serde_json::Value;

const TOL: f32 = 1e-4;
const PIXEL_TOL: f32 = 1e-6;
const FIXTURES: [&str; 2] = ["qwen2vl_tiny", "qwen25vl_tiny"];

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn reference(name: &str) -> Value {
    let text = std::fs::read_to_string(fixture(name).join("reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn config(dir: &Path) -> Qwen2VlConfig {
    let mut cfg: Qwen2VlConfig = toml::from_str(&format!(
        "dir = {dir:?}\nproviders = [\"cpu\"]\nthreads = 1"
    ))
    .unwrap();
    cfg.resolve_paths(Path::new("/"));
    cfg
}

fn load(name: &str) -> (Qwen2Vl, Qwen2VlSessions) {
    let env = engine::environment(&EngineConfig::default()).unwrap();
    Qwen2Vl::load(name, &config(&fixture(name)), env).unwrap()
}

fn photo(name: &str) -> Frame {
    source::first_frame(
        &shared_dir().join("media").join(name),
        ocellus::kit::Pixels::Rgb,
    )
    .unwrap()
}

fn ids(v: &Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

fn f32_of(v: &Value) -> f32 {
    v.as_f64().unwrap() as f32
}

#[test]
fn both_model_types_load_from_their_configs() {
    assert_eq!(load("qwen2vl_tiny").0.model_type(), ModelType::Qwen2Vl);
    assert_eq!(load("qwen25vl_tiny").0.model_type(), ModelType::Qwen25Vl);
}

#[test]
fn smart_resize_matches_transformers() {
    let r = reference("qwen2vl_tiny");
    let rows = r["smart_resize"].as_array().unwrap();
    assert!(rows.len() >= 30);
    for row in rows {
        let n: Vec<u32> = row
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_u64().unwrap() as u32)
            .collect();
        let [h, w, lo, hi, rh, rw] = n[..] else {
            panic!("{row}")
        };
        assert_eq!(smart_resize(h, w, 28, lo, hi), Ok((rh, rw)), "{row}");
    }
}

#[test]
fn pixel_values_match_the_qwen2vl_processor() {
    for name in FIXTURES {
        let (vlm, _s) = load(name);
        for img in reference(name)["images"].as_array().unwrap() {
            let photo_name = img["image"].as_str().unwrap();
            let bytes = std::fs::read(fixture(name).join(img["file"].as_str().unwrap())).unwrap();
            let want: Vec<f32> = bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let pv = vlm.pixel_values(&photo(photo_name), None).unwrap();
            let (got, grid, resized) = (pv.pixels, pv.grid, pv.resized);
            let g: Vec<i64> = img["grid_thw"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_i64().unwrap())
                .collect();
            assert_eq!(grid.to_vec(), g, "{name} {photo_name}: grid_thw");
            let r = &img["resized"];
            assert_eq!(
                (resized.1, resized.0),
                (r[0].as_u64().unwrap() as u32, r[1].as_u64().unwrap() as u32),
                "{name} {photo_name}: resized (h, w)"
            );
            assert_eq!(got.len(), want.len(), "{name} {photo_name}: tensor size");
            let d = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            eprintln!("{name} {photo_name}: grid {grid:?}, pixel_values max |diff| {d:e}");
            assert!(
                d <= PIXEL_TOL,
                "{name} {photo_name}: pixel_values max |diff| {d}"
            );
        }
    }
}

#[test]
fn prompt_ids_and_mrope_positions_are_the_processors() {
    for name in FIXTURES {
        let (vlm, _s) = load(name);
        let r = reference(name);
        let mut stop = vlm.stop_ids().to_vec();
        stop.sort_unstable();
        assert_eq!(
            stop,
            ids(&r["stop_ids"]),
            "{name}: <|im_end|> and the generation eos"
        );
        let yn = &r["yes_no"];
        assert_eq!(
            vlm.yes_no_ids(),
            (
                yn["yes_id"].as_u64().unwrap() as u32,
                yn["no_id"].as_u64().unwrap() as u32
            )
        );
        for case in r["cases"].as_array().unwrap() {
            let img = r["images"]
                .as_array()
                .unwrap()
                .iter()
                .find(|i| i["image"] == case["image"])
                .unwrap();
            let grid: Vec<usize> = img["grid_thw"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_u64().unwrap() as usize)
                .collect();
            let (rows, cols) = (grid[1] / 2, grid[2] / 2);
            let q = case["question"].as_str().unwrap();
            let mut full = vlm.prefix_ids(rows * cols);
            let prefix_len = full.len();
            assert_eq!(prefix_len, case["prefix_len"].as_u64().unwrap() as usize);
            let suffix = vlm.suffix_ids(q).unwrap();
            full.extend(&suffix);
            assert_eq!(full, ids(&case["input_ids"]), "{name}: input_ids of {q:?}");

            // M-RoPE: the prefix's three rows, then index + rope_delta.
            let delta = rows.max(cols) as i64 - (rows * cols) as i64;
            assert_eq!(delta, case["rope_delta"].as_i64().unwrap(), "{name} {q:?}");
            let head = mrope_prefix_positions(vlm.head_ids().len(), rows, cols);
            let n = full.len();
            let want = case["position_ids"].as_array().unwrap();
            for (row, want_row) in want.iter().enumerate() {
                let got: Vec<i64> = head[row * prefix_len..(row + 1) * prefix_len]
                    .iter()
                    .copied()
                    .chain((prefix_len..n).map(|p| p as i64 + delta))
                    .collect();
                let want_row: Vec<i64> = want_row
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_i64().unwrap())
                    .collect();
                assert_eq!(got, want_row, "{name} {q:?}: position_ids row {row}");
            }
        }
    }
}

#[test]
fn yes_no_logits_and_greedy_answers_match_transformers() {
    for name in FIXTURES {
        let (vlm, s) = load(name);
        let r = reference(name);
        let max_new = r["max_new_tokens"].as_u64().unwrap() as usize;
        let cases = r["cases"].as_array().unwrap();
        let (mut worst_logit, mut worst_p) = (0f32, 0f32);
        for photo_name in ["astronaut.png", "chelsea.png"] {
            let frame = photo(photo_name);
            let prefix = vlm.prefix(&s, &frame, None).unwrap();
            eprintln!(
                "{name} {photo_name}: prefix {} tokens, {:?}",
                prefix.len(),
                prefix.timings
            );
            for case in cases.iter().filter(|c| c["image"] == photo_name) {
                let q = case["question"].as_str().unwrap();
                assert_eq!(prefix.len(), case["prefix_len"].as_u64().unwrap() as usize);
                assert_eq!(prefix.rope_delta(), case["rope_delta"].as_i64().unwrap());
                let got = vlm.yes_no(&s, &prefix, q).unwrap();
                let dy = (got.yes_logit - f32_of(&case["yes_logit"])).abs();
                let dn = (got.no_logit - f32_of(&case["no_logit"])).abs();
                let dp = (got.p_yes - f32_of(&case["p_yes"])).abs();
                eprintln!(
                    "{name} {photo_name} {q:?}: p(yes) {:.6} (|diff| {dp:e}), logits |diff| {dy:e} / {dn:e}",
                    got.p_yes
                );
                assert!(
                    dy <= TOL && dn <= TOL,
                    "{name} {photo_name} {q:?}: {got:?} vs {case}"
                );
                assert!(dp <= TOL, "{name} {photo_name} {q:?}: p(yes) {}", got.p_yes);
                worst_logit = worst_logit.max(dy).max(dn);
                worst_p = worst_p.max(dp);

                let answer = vlm.answer(&s, &prefix, q, max_new).unwrap();
                assert_eq!(
                    answer.ids,
                    ids(&case["generated_ids"]),
                    "{name} {photo_name} {q:?}: greedy ids"
                );
                assert_eq!(answer.tokens, answer.ids.len());
                assert_eq!(answer.text, case["generated_text"].as_str().unwrap());
            }
        }
        eprintln!("{name}: max |logit diff| {worst_logit:e}, max |p(yes) diff| {worst_p:e}");
    }
}

#[test]
fn questions_do_not_mutate_the_shared_prefix() {
    let (vlm, s) = load("qwen2vl_tiny");
    let frame = photo("chelsea.png");
    let shared = vlm.prefix(&s, &frame, None).unwrap();
    let first = vlm.yes_no(&s, &shared, "Is there a cat?").unwrap();
    let answer = vlm
        .answer(&s, &shared, "What is in the picture?", 8)
        .unwrap();
    let second = vlm
        .yes_no(&s, &shared, "Is there a person in the image?")
        .unwrap();
    assert_eq!(vlm.yes_no(&s, &shared, "Is there a cat?").unwrap(), first);
    let fresh = vlm.prefix(&s, &frame, None).unwrap();
    assert_eq!(vlm.yes_no(&s, &fresh, "Is there a cat?").unwrap(), first);
    assert_eq!(
        vlm.yes_no(&s, &fresh, "Is there a person in the image?")
            .unwrap(),
        second
    );
    assert_eq!(
        vlm.answer(&s, &fresh, "What is in the picture?", 8)
            .unwrap()
            .ids,
        answer.ids
    );
    // A region is a different image: a different prefix and answer.
    let region = vlm.prefix(&s, &frame, Some([0.0, 0.0, 0.5, 0.5])).unwrap();
    assert_ne!(vlm.yes_no(&s, &region, "Is there a cat?").unwrap(), first);
}

#[test]
fn a_grounding_answer_that_is_not_json_is_a_counted_error() {
    // The random-weight model answers the grounding prompt with the recorded greedy
    // tokens, which are no JSON: the call fails with one line and the model counts it.
    let (vlm, s) = load("qwen25vl_tiny");
    let r = reference("qwen25vl_tiny");
    let case = r["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["question"].as_str().unwrap().contains("JSON"))
        .unwrap();
    let prompt = case["question"].as_str().unwrap();
    let frame = photo(case["image"].as_str().unwrap());
    let prefix = vlm.prefix(&s, &frame, None).unwrap();
    let cancel = ocellus::model::Cancel::new();
    let before = vlm.grounding_failures();
    let e = vlm
        .locate_with(&s, &prefix, prompt, "cat", 16, &cancel)
        .unwrap_err();
    assert!(matches!(e, ModelError::Run { .. }), "{e}");
    let line = e.to_string();
    assert!(
        line.starts_with("model qwen25vl_tiny: the grounding answer is not JSON"),
        "{line}"
    );
    assert!(!line.contains('\n'), "{line}");
    assert_eq!(vlm.grounding_failures(), before + 1);
}

#[test]
fn a_folder_of_another_family_is_refused_in_one_line() {
    let env = engine::environment(&EngineConfig::default()).unwrap();
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smolvlm_tiny");
    let Err(e) = Qwen2Vl::load("vqa", &config(&dir), env) else {
        panic!("a SmolVLM folder loads as qwen2vl");
    };
    let line = e.to_string();
    assert!(
        line.contains("config.json") && line.contains("\"idefics3\""),
        "{line}"
    );
    assert!(!line.contains('\n'), "{line}");
}

/// `ocellus ask` with one query of each kind on the tiny Qwen2-VL: the yes/no's score
/// and the answer's text are the transformers reference (one image prefix shared by
/// all six queries), the detect and ground queries (the random weights answer no JSON)
/// fail with one counted line each, the others still answer.
#[test]
fn standing_queries_of_every_kind_run_on_the_slow_lane() {
    let r = reference("qwen2vl_tiny");
    let case = |q: &str| -> Value {
        r["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["image"] == "astronaut.png" && c["question"] == q)
            .unwrap()
            .clone()
    };
    let person = case("Is there a person in the image?");
    let what = case("What is in the picture?");
    let dir = tempfile::tempdir().unwrap();
    let q = |id: &str, kind: &str, ask: &str| {
        format!(
            "[[cameras.queries]]\nid = \"{id}\"\nask = {}\nkind = \"{kind}\"\nmodel = \"qwen\"\nmax_tokens = 16\n\n",
            common::toml_str(ask)
        )
    };
    let cfg = common::write_config(
        dir.path(),
        &format!(
            "{}[models.qwen]\nfamily = \"qwen2vl\"\ndir = {}\nproviders = [\"cpu\"]\n\n\
             [[cameras]]\nrealtime = false\nid = \"scene\"\nurl = \"unused.png\"\n\n{}{}{}{}{}{}",
            common::ENGINE_ONE_THREAD,
            common::toml_path(&fixture("qwen2vl_tiny")),
            q("someone", "yes_no", "Is there a person in the image?"),
            q("what", "answer", "What is in the picture?"),
            q("caption", "caption", ""),
            q("text", "read", ""),
            q("things", "detect", "cat"),
            q("where", "ground", "the astronaut"),
        ),
    );
    let out = common::run_ocellus(
        &[
            "ask",
            &common::media("astronaut.png").to_string_lossy(),
            "-c",
            &cfg.to_string_lossy(),
        ],
        &[],
    );
    eprintln!("{}", out.show());
    out.assert_no_panic();
    let frames = out.json_lines();
    assert_eq!(frames.len(), 1, "{}", out.show());
    let eval = |id: &str| {
        frames[0]["queries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["id"] == id)
            .cloned()
    };
    let someone = eval("someone").expect("the yes_no query answered");
    let p = someone["score"].as_f64().unwrap() as f32;
    assert!(
        (p - f32_of(&person["p_yes"])).abs() <= TOL,
        "{someone} vs {person}"
    );
    let answer = eval("what").expect("the answer query answered");
    assert_eq!(
        answer["state"].as_str().unwrap(),
        what["generated_text"].as_str().unwrap().trim(),
        "{answer}"
    );
    assert!(
        eval("caption").is_some() && eval("text").is_some(),
        "{}",
        out.show()
    );
    assert!(
        eval("things").is_none() && eval("where").is_none(),
        "{}",
        out.show()
    );
    let failures: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("the grounding answer is not JSON"))
        .collect();
    assert_eq!(failures.len(), 2, "{}", out.show());
}

/// `ocellus check`: a kind the family cannot answer, a yes_no without its question and
/// a `max_pixels` below one token are one line each, at their paths.
#[test]
fn bad_qwen2vl_queries_and_settings_are_one_line_each() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = common::write_config(
        dir.path(),
        &format!(
            "[models.qwen]\nfamily = \"qwen2vl\"\ndir = {}\nmax_pixels = 100\n\n\
             [[cameras]]\nrealtime = false\nid = \"scene\"\nurl = {}\n\n\
             [[cameras.queries]]\nid = \"n\"\nask = \"how many?\"\nkind = \"count\"\nmodel = \"qwen\"\nlabel = \"cat\"\n\n\
             [[cameras.queries]]\nid = \"q\"\nask = \" \"\nkind = \"yes_no\"\nmodel = \"qwen\"\n\n\
             [[cameras.queries]]\nid = \"c\"\nask = \"\"\nkind = \"caption\"\nmodel = \"qwen\"\n",
            common::toml_path(&fixture("qwen2vl_tiny")),
            common::toml_path(&common::media("astronaut.png")),
        ),
    );
    let out = common::run_ocellus(&["check", "-c", &cfg.to_string_lossy()], &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    out.assert_no_panic();
    let problems: Vec<&str> = out.stdout.lines().skip(1).map(str::trim).collect();
    assert_eq!(problems.len(), 3, "{}", out.show());
    assert!(
        problems[0].starts_with("models.qwen.max_pixels: "),
        "{}",
        out.show()
    );
    assert!(
        problems[1].starts_with("cameras[0].queries[0].kind: count queries are not supported")
            && problems[1].contains("family qwen2vl"),
        "{}",
        out.show()
    );
    assert!(
        problems[2].starts_with("cameras[0].queries[1].ask: "),
        "{}",
        out.show()
    );
}

#[test]
fn long_questions_are_refused_before_any_onnx_work_and_cancel_stops_an_answer() {
    use ocellus::model::qwen2vl::MAX_QUESTION_TOKENS;
    let (vlm, s) = load("qwen2vl_tiny");
    let long = "Is the door open? ".repeat(200);
    let e = vlm.check_question(&long).unwrap_err();
    assert!(
        matches!(
            e,
            ModelError::TooLong {
                limit: MAX_QUESTION_TOKENS,
                ..
            }
        ),
        "{e}"
    );
    let e = vlm
        .check_question(&"x".repeat(40_000))
        .unwrap_err()
        .to_string();
    assert!(e.contains("40000 bytes"), "{e}");
    let frame = photo("chelsea.png");
    let prefix = vlm.prefix(&s, &frame, None).unwrap();
    assert!(vlm.yes_no(&s, &prefix, &long).is_err());
    let cancel = ocellus::model::Cancel::new();
    cancel.raise();
    let e = vlm
        .answer_with(&s, &prefix, "What is in the picture?", 64, &cancel)
        .unwrap_err();
    assert!(e.is_cancelled(), "{e}");
    assert!(matches!(vlm.prefix_with(&s, &frame, None, &cancel), Err(e) if e.is_cancelled()));
    // A runaway answer stops at the token cap.
    let got = vlm
        .answer(&s, &prefix, "What is in the picture?", 100_000)
        .unwrap();
    let stopped = got.ids.last().is_some_and(|id| vlm.stop_ids().contains(id));
    assert!(
        got.tokens == ocellus::model::qwen2vl::MAX_NEW_TOKENS || stopped,
        "{}",
        got.tokens
    );
    assert!(prefix.len() + got.tokens + 16 <= vlm.max_sequence());
}

/// In the daemon, a grounding answer that is not JSON is counted on `/metrics`.
#[test]
fn unreadable_grounding_answers_are_a_metric() {
    let dir = tempfile::tempdir().unwrap();
    let clip = common::media_clip(
        dir.path(),
        "scene.mkv",
        &[("astronaut.png", 1.0), ("chelsea.png", 1.0)],
    );
    let port = common::free_port();
    let cfg = common::write_config(
        dir.path(),
        &format!(
            "[http]\nlisten = \"127.0.0.1:{port}\"\n\n{}[models.qwen]\nfamily = \"qwen2vl\"\ndir = {}\nproviders = [\"cpu\"]\n\n\
             [[cameras]]\nrealtime = false\nid = \"scene\"\nurl = {}\nsample_fps = 4\nrepeat = true\n\n\
             [[cameras.queries]]\nid = \"things\"\nask = \"cat\"\nkind = \"detect\"\nmodel = \"qwen\"\nmax_tokens = 8\nevery = \"1s\"\n",
            common::ENGINE_ONE_THREAD,
            common::toml_path(&fixture("qwen2vl_tiny")),
            common::toml_path(&clip),
        ),
    );
    let mut daemon = common::Daemon::start(&cfg, &[]);
    let count = || {
        common::http(port, "GET", "/metrics", None, b"")
            .map(|r| r.text())
            .unwrap_or_default()
            .lines()
            .find(|l| l.starts_with("ocellus_model_unreadable_answers_total{model=\"qwen\"}"))
            .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    assert!(
        common::wait_until(std::time::Duration::from_secs(60), || count() >= 1.0),
        "{}",
        daemon.output()
    );
    daemon.stop();
}
