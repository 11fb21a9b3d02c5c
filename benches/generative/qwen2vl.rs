//! Qwen2-VL / Qwen2.5-VL: the image prefix (smart resize and patches, the vision
//! encoder with `grid_thw`, the M-RoPE prefill of its KV cache); the first query
//! (prefix + yes/no); the Nth yes/no on the same prefix; five standing questions on one
//! frame with the prefix shared (measured) and without (five first queries); a greedy
//! answer of at most 16 tokens.

use std::path::Path;
use std::time::Instant;

use ocellus::engine;
use ocellus::kit::Frame;
use ocellus::model::qwen2vl::{Qwen2Vl, Qwen2VlConfig};
use serde_json::{Value, json};

use crate::measure::{Bench, ms, num};
use crate::{Row, cell};

const QUESTION: &str = "Is there a person in the picture?";
const QUESTIONS: [&str; 5] = [
    "Is there a person in the picture?",
    "Is it dark?",
    "Is there a vehicle?",
    "Is the door open?",
    "Is anyone wearing a helmet?",
];
const ASK: &str = "What is in the picture?";
const ANSWER_TOKENS: usize = 16;

pub fn bench(b: &Bench, label: &str, dir: &Path, frame: &Frame) -> Result<(Value, Row), String> {
    let e = |e: ocellus::model::ModelError| e.to_string();
    let mut cfg: Qwen2VlConfig = toml::from_str(&format!(
        "dir = {dir:?}\nproviders = [\"cpu\"]\nthreads = {}",
        b.threads
    ))
    .map_err(|e| e.to_string())?;
    cfg.resolve_paths(Path::new("/"));
    let env = engine::environment(&Default::default()).map_err(|e| e.to_string())?;
    let t0 = Instant::now();
    let (vlm, s) = Qwen2Vl::load("qwen2vl", &cfg, env).map_err(e)?;
    let load_ms = ms(t0.elapsed());
    eprintln!("generative: {label}: loaded in {load_ms:.0} ms");

    let parts = 5;
    let prefix = b.sample(parts, || vlm.prefix(&s, frame, None))?;
    eprintln!("generative: {label}: prefix {:.1} ms", prefix.wall().median);
    let first = b.sample(parts, || {
        let p = vlm.prefix(&s, frame, None)?;
        vlm.yes_no(&s, &p, QUESTION)
    })?;
    let p = vlm.prefix(&s, frame, None).map_err(e)?;
    let nth = b.sample(parts, || vlm.yes_no(&s, &p, QUESTION))?;
    eprintln!(
        "generative: {label}: first {:.1} ms, Nth {:.1} ms",
        first.wall().median,
        nth.wall().median
    );
    let five = b.sample(parts, || {
        let p = vlm.prefix(&s, frame, None)?;
        QUESTIONS
            .iter()
            .map(|q| vlm.yes_no(&s, &p, q))
            .collect::<Result<Vec<_>, _>>()
    })?;
    let answer = b.sample(parts, || vlm.answer(&s, &p, ASK, ANSWER_TOKENS))?;
    eprintln!("generative: {label}: answer {:.1} ms", answer.wall().median);

    let (pw, fw, nw) = (prefix.wall().median, first.wall().median, nth.wall().median);
    let (pre, vis, fill) = (
        prefix.of(|p| ms(p.timings.preprocess)).median,
        prefix.of(|p| ms(p.timings.vision)).median,
        prefix.of(|p| ms(p.timings.prefill)).median,
    );
    let mut pj = prefix.json();
    pj["preprocess_median_ms"] = num(pre);
    pj["vision_median_ms"] = num(vis);
    pj["prefill_median_ms"] = num(fill);
    pj["tokens"] = json!(p.len());
    let with_reuse = five.wall().median;
    let without = QUESTIONS.len() as f64 * fw;
    let tokens = answer.out[0].tokens;
    let steps = answer.of(|g| ms(g.timings.steps)).median;
    let rate = answer
        .of(|g| (g.tokens as f64 - 1.0) / g.timings.steps.as_secs_f64())
        .median;
    let mut aj = answer.json();
    aj["max_tokens"] = json!(ANSWER_TOKENS);
    aj["tokens"] = json!(tokens);
    aj["suffix_median_ms"] = num(answer.of(|g| ms(g.timings.suffix)).median);
    aj["steps_median_ms"] = num(steps);
    aj["tokens_per_s"] = num(rate);
    aj["step_ms_per_token"] = num(steps / (tokens as f64 - 1.0));
    let report = json!({
        "dir": dir,
        "load_ms": num(load_ms),
        "prefix": pj,
        "first_query": first.json(),
        "nth_yes_no": nth.json(),
        "nth_over_first_ratio": num(nw / fw),
        "five_questions": {
            "with_prefix_reuse": five.json(),
            "without_prefix_reuse_ms": num(without),
            "without_is": "5 x first_query median (prefix + question each time)",
            "reuse_over_without_ratio": num(with_reuse / without),
        },
        "answer": aj,
    });
    let row = Row {
        model: label.into(),
        encode_ms: Some(pw),
        first_ms: Some(fw),
        nth_ms: Some(nw),
        tokens_per_s: Some(rate),
        notes: format!(
            "prefix = pre {} + vision {} + prefill {} ms ({} tokens); \
             5 questions {} ms sharing it vs {} ms not; answer {tokens} tokens {} ms",
            cell(Some(pre)),
            cell(Some(vis)),
            cell(Some(fill)),
            p.len(),
            cell(Some(with_reuse)),
            cell(Some(without)),
            cell(Some(answer.wall().median))
        ),
    };
    Ok((report, row))
}
