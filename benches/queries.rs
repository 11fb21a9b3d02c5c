//! Per-query cost: `cargo bench --bench queries`.
//!
//! Evaluates 1, 10 and 100 standing yes/no dual-encoder queries (two prompts each,
//! 512-dimensional embeddings as CLIP ViT-B/32 has) on one camera, frame after frame,
//! the way the daemon does once the image embedding is known: every query's head
//! (dot products, softmax, hysteresis) into the camera's pooled report, then the
//! publisher's encoder over that report (in the steady state it publishes nothing: no
//! state changes, attributes at most every 10 s). Prints JSON and writes
//! `target/ocellus-bench/queries.json`; `per_extra_query_ns` is
//! (time with 100 queries − time with 1) / 99, measured in the same run.

// A benchmark crate: its helpers are `pub` for its own modules, and a failed step
// ends the run with a panic that says which.
#![allow(
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use ocellus::model::clip::{Embedding, Scoring};
use ocellus::publish::{Encoder, Outgoing, Topics};
use ocellus::query::{FrameOutputs, QueryConfig, ReportPool, StandingQuery};
use serde_json::{Value, json};

const DIM: usize = 512;
const FRAMES: u32 = 20_000;
const REPEATS: usize = 5;

/// A deterministic unit vector.
fn unit(seed: usize) -> Embedding {
    let v: Vec<f32> = (0..DIM)
        .map(|i| ((i * 2654435761usize.wrapping_add(seed * 97)) % 1000) as f32 / 1000.0 - 0.5)
        .collect();
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter().map(|x| x / n).collect()
}

fn queries(n: usize) -> Vec<StandingQuery> {
    (0..n)
        .map(|i| {
            let config: QueryConfig = toml::from_str(&format!(
                "id = \"q{i}\"\nask = \"question {i}?\"\nkind = \"yes_no\"\nmodel = \"scene\"\nno = [\"not {i}\"]"
            ))
            .expect("query config");
            StandingQuery::from_prompts(
                config,
                vec![unit(2 * i + 1), unit(2 * i + 2)],
                1,
                Scoring::Softmax { scale: 100.0 },
            )
        })
        .collect()
}

/// Nanoseconds per frame for `n` queries (best of REPEATS).
fn per_frame_ns(n: usize, with_encoder: bool) -> f64 {
    let mut qs = queries(n);
    let camera: Arc<str> = Arc::from("bench");
    let outputs = FrameOutputs {
        detections: vec![],
        embeddings: vec![(Arc::from("scene"), None, Some(unit(0)))],
    };
    let pool = ReportPool::new(camera.clone(), 4);
    let mut encoder = Encoder::new(Topics::new("ocellus"), true);
    let mut published = 0u64;
    let mut best = Duration::MAX;
    for _ in 0..REPEATS {
        let t0 = Instant::now();
        for seq in 0..FRAMES {
            let now = SystemTime::now();
            let mut report = pool.take();
            report.seq = u64::from(seq);
            report.time = now;
            report.queries.clear();
            for q in &mut qs {
                if let Some(e) = q.evaluate(black_box(&outputs), now, std::time::Duration::ZERO) {
                    report.queries.push(e);
                }
            }
            if with_encoder {
                encoder.encode(&Outgoing::Frame(report), |_| published += 1);
            } else {
                black_box(&report);
            }
        }
        best = best.min(t0.elapsed());
    }
    // The first frame publishes each query's state and attributes; then nothing.
    if with_encoder {
        assert!(
            published >= 2 * n as u64,
            "{published} messages for {n} queries"
        );
    }
    best.as_secs_f64() * 1e9 / f64::from(FRAMES)
}

fn main() {
    let mut results = serde_json::Map::new();
    for with_encoder in [false, true] {
        let label = if with_encoder {
            "evaluate_and_encode"
        } else {
            "evaluate"
        };
        let mut per = serde_json::Map::new();
        let mut t = Vec::new();
        for n in [1usize, 10, 100] {
            let ns = per_frame_ns(n, with_encoder);
            eprintln!("queries: {label}, {n} queries: {ns:.0} ns per frame");
            per.insert(format!("{n}_queries_ns_per_frame"), json!(ns.round()));
            t.push(ns);
        }
        per.insert(
            "per_extra_query_ns".into(),
            json!(((t[2] - t[0]) / 99.0 * 10.0).round() / 10.0),
        );
        results.insert(label.into(), Value::Object(per));
    }
    let report = json!({
        "setup": {
            "embedding_dim": DIM,
            "prompts_per_query": 2,
            "frames_per_measurement": FRAMES,
            "best_of": REPEATS,
            "what": "query heads (dot products, softmax, hysteresis) into the pooled report; with the publisher's encoder in the second block",
        },
        "results": results,
    });
    let text = serde_json::to_string_pretty(&report).expect("JSON");
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ocellus-bench");
    std::fs::create_dir_all(&dir).expect("create target/ocellus-bench");
    std::fs::write(dir.join("queries.json"), format!("{text}\n")).expect("write queries.json");
    println!("{text}");
}
