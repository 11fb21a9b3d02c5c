//! Cost of the slow model families on CPU: `cargo bench --bench generative`.
//!
//! Encode once, ask many: for each model it measures encoding an image, the first
//! query on a fresh image (encoding + one query) and the Nth query on the same
//! encoding, as medians and 90th percentiles after one warm-up:
//!
//! * florence2 (benches/generative/florence2.rs): vision-encode ms; first query =
//!   encode + `<CAPTION>`; Nth query = `<CAPTION>`, `<OD>`, `<OCR>` and a grounding
//!   phrase on the same features (text encoder + greedy decoding, 20 tokens at most),
//!   tokens/s of the decoding loop;
//! * smolvlm (benches/generative/smolvlm.rs): the image prefix (preprocess, vision,
//!   prefill); first query = prefix + yes/no; Nth yes/no on the same prefix; five
//!   questions per frame with and without sharing the prefix; a 16-token answer;
//! * paligemma (benches/generative/paligemma.rs): as smolvlm, with a caption and a
//!   detect answer instead of the free answer;
//! * qwen2vl (benches/generative/qwen2vl.rs): as smolvlm, for Qwen2-VL and Qwen2.5-VL
//!   (the prefix is the smart-resized image's patches, vision encoder, M-RoPE prefill);
//! * ppocr (benches/generative/ppocr.rs): PP-OCRv4 ms per frame, det/cls/rec split.
//!
//! Models: the committed tiny fixtures
//! (tests/fixtures/{florence2,smolvlm,paligemma,qwen2vl,qwen25vl}_tiny: the
//! overhead of our own loops), random-weight models with the real Florence-2-base and
//! SmolVLM-256M dimensions (realistic compute; made by scripts/fixtures, never
//! committed, reported as skipped when absent) and PP-OCRv4's real weights from
//! `<shared>/models/ppocrv4_rapidocr`. Photos: `<shared>/media`, decoded by GStreamer.
//!
//! Prints one JSON object on stdout, writes it to `target/ocellus-bench/generative.json`
//! and prints a markdown table for the README on stderr. Environment:
//!
//! * `OCELLUS_BENCH_ONLY` — models to run, comma-separated: florence2_tiny,
//!   florence2_base, smolvlm_tiny, smolvlm_256m, paligemma_tiny, qwen2vl_tiny,
//!   qwen25vl_tiny, ppocr (default all);
//! * `OCELLUS_BENCH_THREADS` — intra-op threads of every session (default 2);
//! * `OCELLUS_BENCH_RUNS` — measured runs of every measurement (default: as many as
//!   fit in the model's budget by the first run's cost, 3 to 50);
//! * `OCELLUS_BENCH_MODEL_SECONDS` — that budget per model (default 60);
//! * `OCELLUS_BENCH_FLORENCE2_BASE`, `OCELLUS_BENCH_SMOLVLM_256M` — folders of the
//!   real-sized models (default target/florence2_base, target/smolvlm_256m_random);
//! * `OCELLUS_SHARED` — the shared folder (default `<crate>/../shared`).

// A benchmark crate: its helpers are `pub` for its own modules, and a failed step
// ends the run with a panic that says which.
#![allow(
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

#[path = "generative/florence2.rs"]
mod florence2;
#[path = "generative/measure.rs"]
mod measure;
#[path = "generative/paligemma.rs"]
mod paligemma;
#[path = "generative/ppocr.rs"]
mod ppocr;
#[path = "generative/qwen2vl.rs"]
mod qwen2vl;
#[path = "generative/smolvlm.rs"]
mod smolvlm;
#[path = "generative/vlm.rs"]
mod vlm;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ocellus::kit::{Frame, Pixels};
use ocellus::source::first_frame;
use serde_json::{Map, Value, json};

use measure::{Bench, cpu_s, num};

/// One line of the README table.
pub struct Row {
    pub model: String,
    pub encode_ms: Option<f64>,
    pub first_ms: Option<f64>,
    pub nth_ms: Option<f64>,
    pub tokens_per_s: Option<f64>,
    pub notes: String,
}

impl Row {
    fn skipped(model: &str, why: &str) -> Self {
        Self {
            model: model.into(),
            encode_ms: None,
            first_ms: None,
            nth_ms: None,
            tokens_per_s: None,
            notes: format!("skipped: {why}"),
        }
    }
}

enum Family {
    Florence2,
    SmolVlm,
    PaliGemma,
    Qwen2Vl,
}

/// A vision-language model to measure.
struct Model {
    key: &'static str,
    label: &'static str,
    family: Family,
    dir: PathBuf,
    /// How to make the folder when it is absent (`None`: committed).
    make: Option<&'static str>,
}

fn env(key: &str) -> Option<String> {
    std::env::var(key).ok().filter(|v| !v.trim().is_empty())
}

fn env_num(key: &str) -> Option<u64> {
    env(key).map(|v| {
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{key}={v:?} is not a whole number"))
    })
}

fn models(root: &Path) -> Vec<Model> {
    let dir = |key: &str, default: &str| env(key).map_or_else(|| root.join(default), PathBuf::from);
    vec![
        Model {
            key: "florence2_tiny",
            label: "florence2 tiny (fixture)",
            family: Family::Florence2,
            dir: root.join("tests/fixtures/florence2_tiny"),
            make: None,
        },
        Model {
            key: "florence2_base",
            label: "florence2 base dims (random weights)",
            family: Family::Florence2,
            dir: dir("OCELLUS_BENCH_FLORENCE2_BASE", "target/florence2_base"),
            make: Some(
                "HF_HUB_OFFLINE=1 python scripts/fixtures/make_tiny_florence2.py --size base --out target/florence2_base",
            ),
        },
        Model {
            key: "smolvlm_tiny",
            label: "smolvlm tiny (fixture)",
            family: Family::SmolVlm,
            dir: root.join("tests/fixtures/smolvlm_tiny"),
            make: None,
        },
        Model {
            key: "smolvlm_256m",
            label: "smolvlm 256M dims (random weights)",
            family: Family::SmolVlm,
            dir: dir("OCELLUS_BENCH_SMOLVLM_256M", "target/smolvlm_256m_random"),
            make: Some("HF_HUB_OFFLINE=1 python scripts/fixtures/make_tiny_smolvlm.py --size 256m"),
        },
        Model {
            key: "paligemma_tiny",
            label: "paligemma tiny (fixture)",
            family: Family::PaliGemma,
            dir: root.join("tests/fixtures/paligemma_tiny"),
            make: None,
        },
        Model {
            key: "qwen2vl_tiny",
            label: "qwen2vl tiny (fixture)",
            family: Family::Qwen2Vl,
            dir: root.join("tests/fixtures/qwen2vl_tiny"),
            make: None,
        },
        Model {
            key: "qwen25vl_tiny",
            label: "qwen2.5-vl tiny (fixture)",
            family: Family::Qwen2Vl,
            dir: root.join("tests/fixtures/qwen25vl_tiny"),
            make: None,
        },
    ]
}

/// A table cell: `—` when absent, fewer decimals for larger numbers.
pub fn cell(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() && v >= 100.0 => format!("{v:.0}"),
        Some(v) if v.is_finite() && v >= 10.0 => format!("{v:.1}"),
        Some(v) if v.is_finite() => format!("{v:.2}"),
        _ => "—".into(),
    }
}

fn table(rows: &[Row], threads: usize) -> String {
    let mut t = format!(
        "CPU, {threads} threads; medians in ms.\n\n\
         | family / model size | vision-encode ms | first-query ms | Nth-query ms | Nth/first | tokens/s | notes |\n\
         |---|---:|---:|---:|---:|---:|---|\n"
    );
    for r in rows {
        let ratio = r.nth_ms.zip(r.first_ms).map(|(n, f)| n / f);
        t += &format!(
            "| {} | {} | {} | {} | {} | {} | {} |\n",
            r.model,
            cell(r.encode_ms),
            cell(r.first_ms),
            cell(r.nth_ms),
            cell(ratio),
            cell(r.tokens_per_s),
            r.notes
        );
    }
    t
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn main() {
    let start = Instant::now();
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared = env("OCELLUS_SHARED").map_or_else(|| root.join("../shared"), PathBuf::from);
    let bench = Bench {
        threads: env_num("OCELLUS_BENCH_THREADS").unwrap_or(2) as usize,
        runs: env_num("OCELLUS_BENCH_RUNS").map(|n| n.max(1) as usize),
        model_budget: Duration::from_secs(env_num("OCELLUS_BENCH_MODEL_SECONDS").unwrap_or(60)),
    };
    let only = env("OCELLUS_BENCH_ONLY");
    let wanted = |key: &str| {
        only.as_ref()
            .is_none_or(|o| o.split(',').any(|w| w.trim() == key))
    };
    let load_before = loadavg();
    let cpu0 = cpu_s();

    let photo = |name: &str| {
        first_frame(&shared.join("media").join(name), Pixels::Rgb).map_err(|e| e.to_string())
    };
    let mut results = Map::new();
    let mut rows = Vec::new();
    let vlm_photo = "astronaut.png";
    let frame: Result<Frame, String> = photo(vlm_photo);
    for m in models(&root) {
        if !wanted(m.key) {
            continue;
        }
        if !m.dir.join("onnx").is_dir() {
            let make = m.make.unwrap_or("a committed fixture: restore it from git");
            let why = format!(
                "not generated ({} is absent; make it with `{make}`)",
                m.dir.display()
            );
            eprintln!("generative: {} skipped: {why}", m.key);
            rows.push(Row::skipped(m.label, &why));
            results.insert(m.key.into(), json!({ "skipped": why }));
            continue;
        }
        let outcome = frame
            .as_ref()
            .map_err(Clone::clone)
            .and_then(|f| match m.family {
                Family::Florence2 => florence2::bench(&bench, m.label, &m.dir, f),
                Family::SmolVlm => smolvlm::bench(&bench, m.label, &m.dir, f),
                Family::PaliGemma => paligemma::bench(&bench, m.label, &m.dir, f),
                Family::Qwen2Vl => qwen2vl::bench(&bench, m.label, &m.dir, f),
            });
        let value = match outcome {
            Ok((mut v, row)) => {
                v["image"] = json!(vlm_photo);
                rows.push(row);
                v
            }
            Err(e) => {
                eprintln!("generative: {}: {e}", m.key);
                json!({"error": e})
            }
        };
        results.insert(m.key.into(), value);
    }
    if wanted("ppocr") {
        let dir = shared.join("models/ppocrv4_rapidocr");
        let frames = ["ocr_synthetic_machine3.png", "page.png"]
            .into_iter()
            .map(|n| photo(n).map(|f| (n, f)))
            .collect::<Result<Vec<_>, _>>()
            .map(|mut f| {
                // The display as a camera would see it: a 720p frame around it.
                let camera = ppocr::on_canvas(&f[0].1, 1280, 720);
                f.push(("ocr_synthetic_machine3.png in a 720p frame", camera));
                f
            });
        let value = match frames.and_then(|f| ppocr::bench(&bench, &dir, &f)) {
            Ok((v, r)) => {
                rows.extend(r);
                v
            }
            Err(e) => {
                eprintln!("generative: ppocr: {e}");
                json!({"error": e})
            }
        };
        results.insert("ppocr".into(), value);
    }

    let wall = start.elapsed().as_secs_f64();
    // CPU seconds that other processes used while this ran (0 on a quiet machine).
    let others = cpu0
        .zip(cpu_s())
        .map(|((m0, o0), (m1, o1))| (m1 - m0) - (o1 - o0));
    if let Some(o) = others.filter(|o| *o > 1.0 && *o > 0.1 * wall) {
        eprintln!("generative: WARNING: other processes used {o:.0} CPU-s in {wall:.0} s");
    }
    let report = json!({
        "setup": {
            "provider": "cpu",
            "threads": bench.threads,
            "cpus": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "runs": bench.runs.map_or_else(|| json!("adaptive, 3 to 50 after one warm-up"), |n| json!(n)),
            "model_budget_s": bench.model_budget.as_secs(),
            "loadavg_before": load_before,
            "loadavg_after": loadavg(),
            "bench_s": num(wall),
            "other_processes_cpu_s": others.map_or(Value::Null, num),
            "what": "medians and nearest-rank p90 in ms; first query = encode + one query on a fresh image; Nth query = one more query on the same encoding",
        },
        "results": Value::Object(results),
    });
    eprintln!("\n{}", table(&rows, bench.threads));
    let text = serde_json::to_string_pretty(&report).expect("JSON");
    let dir = root.join("target/ocellus-bench");
    std::fs::create_dir_all(&dir).expect("create target/ocellus-bench");
    std::fs::write(dir.join("generative.json"), format!("{text}\n"))
        .expect("write generative.json");
    println!("{text}");
}
