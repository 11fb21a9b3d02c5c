//! Florence-2: the vision tower on a photo; the first query (encode + `<CAPTION>`);
//! the Nth query (`run` of `<CAPTION>`, `<OD>`, `<OCR>` and a grounding phrase on the
//! same features, prompt embeddings cached), split into text encoder and decoding.

use std::path::Path;
use std::time::Instant;

use ocellus::engine;
use ocellus::kit::Frame;
use ocellus::model::florence2::{Florence2, Florence2Config, Task};
use serde_json::{Map, Value, json};

use crate::measure::{Bench, ms, num};
use crate::{Row, cell};

/// Token cap of every query (random weights rarely stop earlier).
const MAX_TOKENS: usize = 20;

pub fn bench(b: &Bench, label: &str, dir: &Path, frame: &Frame) -> Result<(Value, Row), String> {
    let e = |e: ocellus::model::ModelError| e.to_string();
    let mut cfg: Florence2Config = toml::from_str(&format!(
        "dir = {dir:?}\nproviders = [\"cpu\"]\nthreads = {}",
        b.threads
    ))
    .map_err(|e| e.to_string())?;
    cfg.resolve_paths(Path::new("/"));
    let env = engine::environment(&Default::default()).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let (model, s) = Florence2::load("florence2", &cfg, env).map_err(e)?;
    let load_ms = ms(t0.elapsed());
    eprintln!("generative: {label}: loaded in {load_ms:.0} ms");

    let parts = 6;
    let vision = b.sample(parts, || model.encode(&s, frame, None))?;
    eprintln!("generative: {label}: vision {:.1} ms", vision.wall().median);
    let first = b.sample(parts, || {
        let image = model.encode(&s, frame, None)?;
        model.run(&s, &image, &Task::Caption, MAX_TOKENS)
    })?;
    eprintln!(
        "generative: {label}: first query {:.1} ms",
        first.wall().median
    );
    let image = model.encode(&s, frame, None).map_err(e)?;
    let tasks = [
        Task::Caption,
        Task::Detect,
        Task::Ocr,
        Task::Ground("an astronaut".into()),
    ];
    let mut nth = Map::new();
    let mut nth_ms = Vec::new();
    let mut caption_rate = f64::NAN;
    for task in &tasks {
        let runs = b.sample(parts, || model.run(&s, &image, task, MAX_TOKENS))?;
        let tokens = runs.out[0].tokens;
        let decode = runs.of(|g| ms(g.decode)).median;
        let rate = runs.of(|g| g.tokens as f64 / g.decode.as_secs_f64()).median;
        let mut j = runs.json();
        j["text_encoder_median_ms"] = num(runs.of(|g| ms(g.encode)).median);
        j["decode_median_ms"] = num(decode);
        j["tokens"] = json!(tokens);
        j["tokens_per_s"] = num(rate);
        j["decode_ms_per_token"] = num(decode / tokens as f64);
        eprintln!(
            "generative: {label}: Nth {} {:.1} ms ({tokens} tokens)",
            task.token(),
            runs.wall().median
        );
        if matches!(task, Task::Caption) {
            caption_rate = rate;
        }
        let short = match task {
            Task::Ground(_) => "grounding".to_string(),
            t => format!("`{}`", t.token()),
        };
        nth_ms.push((short, runs.wall().median, runs.of(|g| ms(g.encode)).median));
        nth.insert(task.token().into(), j);
    }
    let (vw, fw) = (vision.wall().median, first.wall().median);
    let caption = nth_ms[0].1;
    let mut fj = first.json();
    fj["task"] = json!("<CAPTION>");
    fj["tokens"] = json!(first.out[0].tokens);
    let mut vj = vision.json();
    vj["preprocess_median_ms"] = num(vision.of(|f| ms(f.stages.preprocess)).median);
    vj["vision_median_ms"] = num(vision.of(|f| ms(f.stages.infer)).median);
    let report = json!({
        "dir": dir,
        "load_ms": num(load_ms),
        "image_tokens": image.tokens,
        "max_tokens": MAX_TOKENS,
        "vision_encode": vj,
        "first_query": fj,
        "nth_query": nth,
        "nth_over_first_ratio": num(caption / fw),
    });
    let others: Vec<String> = nth_ms[1..]
        .iter()
        .map(|(t, m, _)| format!("{t} {}", cell(Some(*m))))
        .collect();
    let row = Row {
        model: label.into(),
        encode_ms: Some(vw),
        first_ms: Some(fw),
        nth_ms: Some(caption),
        tokens_per_s: Some(caption_rate),
        notes: format!(
            "Nth = `<CAPTION>` ({} tokens, text encoder {} ms); Nth {} ms",
            first.out[0].tokens,
            cell(Some(nth_ms[0].2)),
            others.join(", ")
        ),
    };
    Ok((report, row))
}
