//! The teach stage's cost and what it learns: `cargo bench --bench teach`.
//!
//! Three measurements in one run:
//!
//! * `train_ms` and `cross_validate_ms`: [`Head::train`] and [`cross_validate`] on
//!   10, 50 and 200 synthetic unit vectors of 1280 numbers (MobileNetV2's embedding
//!   length) in 2 states, and 200 in 4 states; the median of a few repeats.
//! * `head_ns_per_frame`: what answering one frame with a trained head costs
//!   ([`Head::probs`]: `k` dot products and a softmax), and `head_share_of_embed`,
//!   that cost over one real MobileNetV2 embedding of a photo measured in the same
//!   run (`embed`: median wall time of `Embedder::embed_image` on its engine thread,
//!   with its preprocess / infer / postprocess steps).
//! * `accuracy`: the real learning curve of a two-state query ("cat" = `chelsea.png`,
//!   "not cat" = `coffee.png`, `astronaut.png`, `rocket.jpg`, `page.png`). Each
//!   example is a random variant of a photo (crop of 50–90 % of each side, horizontal
//!   flip, brightness ×0.6–1.4; a fixed-seed PRNG), embedded by the real embedder.
//!   Heads trained on 1, 2, 4 and 8 examples per state, drawn from a pool of training
//!   variants, are scored on held-out variants (other crops of the same photos),
//!   averaged over several draws; `nearest_centroid_by_examples_per_state` scores
//!   the alternative probe (each state's mean example, cosine) on the same draws.
//!
//! The embedder is `<shared>/models/mobilenetv2_int8_imagenet` (its default file,
//! `mobilenetv2-12-u8u8-embed.onnx`, on the CPU provider) and the photos are
//! `<shared>/media`, decoded by GStreamer; `<shared>` is `$OCELLUS_SHARED`, default
//! `<crate>/../shared`. Without them `embed` and `accuracy` say `skipped` and why, and
//! the synthetic parts still run. `OCELLUS_BENCH_THREADS` sets the embedder's
//! ONNX Runtime threads (default: the engine's).
//!
//! Prints JSON and writes `target/ocellus-bench/teach.json`.

// A benchmark crate: its helpers are `pub` for its own modules, and a failed step
// ends the run with a panic that says which.
#![allow(
    unreachable_pub,
    missing_docs,
    clippy::unwrap_used,
    clippy::expect_used
)]

use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ocellus::engine::BatchClient;
use ocellus::kit::{Frame, Pixels};
use ocellus::model::clip::ClipImage;
use ocellus::model::embedder::{Embedder, EmbedderConfig};
use ocellus::source::first_frame;
use ocellus::teach::{Head, argmax, cross_validate};
use serde_json::{Map, Value, json};

const DIM: usize = 1280;
/// Repeats of each training measurement (the median is reported).
const TRAIN_REPEATS: usize = 7;
/// Frames per `probs` measurement, and repeats (the best is reported).
const PROBS_FRAMES: u32 = 200_000;
const PROBS_REPEATS: usize = 5;
/// Embeddings timed for `embed` (after a few unmeasured ones).
const EMBED_RUNS: usize = 30;
const EMBED_WARMUP: usize = 3;
/// Examples per state the heads are trained on.
const SHOTS: [usize; 4] = [1, 2, 4, 8];
/// Training variants per photo: the "cat" state has one photo, "not cat" four.
const TRAIN_POOL_CAT: usize = 24;
const TRAIN_POOL_PER_OTHER: usize = 6;
/// Held-out variants per photo.
const TEST_CAT: usize = 32;
const TEST_PER_OTHER: usize = 8;
/// Random draws of the training examples per number of shots.
const DRAWS: usize = 20;

const CAT: &str = "chelsea.png";
const OTHERS: [&str; 4] = ["coffee.png", "astronaut.png", "rocket.jpg", "page.png"];

/// SplitMix64: a small deterministic PRNG.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.unit()
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    /// `m` distinct indices below `n`.
    fn sample(&mut self, n: usize, m: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        for i in 0..m.min(n) {
            let j = i + self.below(n - i);
            idx.swap(i, j);
        }
        idx.truncate(m);
        idx
    }
}

fn normalised(mut v: Vec<f32>) -> Vec<f32> {
    let n = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
    v.iter_mut().for_each(|x| *x /= n);
    v
}

/// `n` unit vectors in `k` states, each near its state's centre (non-negative, as
/// MobileNetV2's features are), labelled round-robin.
fn synthetic(n: usize, k: usize, seed: u64) -> (Vec<Vec<f32>>, Vec<usize>) {
    let mut rng = Rng(seed);
    let centres: Vec<Vec<f32>> = (0..k)
        .map(|_| (0..DIM).map(|_| rng.unit()).collect())
        .collect();
    let xs = (0..n)
        .map(|i| {
            let c = &centres[i % k];
            normalised(
                c.iter()
                    .map(|v| (v + rng.range(-0.4, 0.4)).max(0.0))
                    .collect(),
            )
        })
        .collect();
    let ys = (0..n).map(|i| i % k).collect();
    (xs, ys)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len().is_multiple_of(2) {
        f64::midpoint(v[m - 1], v[m])
    } else {
        v[m]
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn round(v: f64, places: i32) -> f64 {
    let p = 10f64.powi(places);
    (v * p).round() / p
}

/// Median milliseconds of `f` over `TRAIN_REPEATS` runs (after one unmeasured run).
fn time_ms<T>(mut f: impl FnMut() -> T) -> f64 {
    black_box(f());
    median(
        (0..TRAIN_REPEATS)
            .map(|_| {
                let t0 = Instant::now();
                black_box(f());
                ms(t0.elapsed())
            })
            .collect(),
    )
}

/// `train_ms`, `cross_validate_ms` and what the cross-validation got right
/// (`[right, of]`), keyed by size.
fn training() -> (Map<String, Value>, Map<String, Value>, Map<String, Value>) {
    let mut train = Map::new();
    let mut cv = Map::new();
    let mut cv_right = Map::new();
    for (n, k) in [(10, 2), (50, 2), (200, 2), (200, 4)] {
        let (xs, ys) = synthetic(n, k, 1000 + n as u64 * 10 + k as u64);
        let xs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
        let key = format!("{n}_examples_{k}_states");
        let t = time_ms(|| Head::train(black_box(&xs), black_box(&ys), k).expect("train"));
        let c =
            time_ms(|| cross_validate(black_box(&xs), black_box(&ys), k).expect("cross-validate"));
        let (right, of) = cross_validate(&xs, &ys, k).expect("cross-validate");
        eprintln!("teach: {key}: train {t:.2} ms, cross-validate {c:.2} ms ({right}/{of} right)");
        train.insert(key.clone(), json!(round(t, 3)));
        cv.insert(key.clone(), json!(round(c, 3)));
        cv_right.insert(key, json!([right, of]));
    }
    (train, cv, cv_right)
}

/// Nanoseconds per `Head::probs` call on a head of `k` states (best of repeats).
fn probs_ns(k: usize) -> f64 {
    let (xs, ys) = synthetic(200, k, 7 + k as u64);
    let refs: Vec<&[f32]> = xs.iter().map(Vec::as_slice).collect();
    let head = Head::train(&refs, &ys, k).expect("train");
    let frames: Vec<&[f32]> = refs.iter().take(16).copied().collect();
    let mut out = vec![0f32; k];
    let mut best = Duration::MAX;
    let mut checksum = 0usize;
    for _ in 0..PROBS_REPEATS {
        let t0 = Instant::now();
        for i in 0..PROBS_FRAMES {
            let x = frames[i as usize % frames.len()];
            head.probs(black_box(x), black_box(&mut out));
            checksum += argmax(black_box(&out));
        }
        best = best.min(t0.elapsed());
    }
    black_box(checksum);
    best.as_secs_f64() * 1e9 / f64::from(PROBS_FRAMES)
}

/// The real embedder and its engine thread's client.
struct Look {
    model: Embedder,
    client: BatchClient,
    scratch: ClipImage,
    // Kept alive for the client.
    _engine: ocellus::engine::Batcher,
    file: String,
}

impl Look {
    fn open(dir: &Path, threads: Option<usize>) -> Result<Self, String> {
        let mut cfg: EmbedderConfig = toml::from_str(&format!(
            "dir = {}\nproviders = [\"cpu\"]",
            toml::Value::String(dir.to_string_lossy().into_owned())
        ))
        .map_err(|e| e.to_string())?;
        cfg.threads = threads;
        cfg.resolve_paths(dir);
        let engine_cfg = ocellus::engine::EngineConfig::default();
        let env = ocellus::engine::environment(&engine_cfg).map_err(|e| e.to_string())?;
        let (model, session) = Embedder::load("look", &cfg, env).map_err(|e| e.to_string())?;
        let engine = model
            .engine(&session, &engine_cfg)
            .map_err(|e| e.to_string())?;
        let client = engine.client();
        let file = model
            .identity()
            .split(':')
            .next()
            .unwrap_or_default()
            .to_string();
        Ok(Self {
            model,
            client,
            scratch: ClipImage::new(),
            _engine: engine,
            file,
        })
    }

    fn embed(&mut self, frame: &Frame, region: Option<[f32; 4]>) -> Result<Vec<f32>, String> {
        self.model
            .embed_image(&mut self.client, frame, region, &mut self.scratch)
            .map(|e| e.to_vec())
            .map_err(|e| e.to_string())
    }
}

/// Median (and fastest) wall time of one embedding of the whole of `frame`.
fn embed_cost(look: &mut Look, frame: &Frame) -> Result<Value, String> {
    for _ in 0..EMBED_WARMUP {
        look.embed(frame, None)?;
    }
    let (mut wall, mut pre, mut infer, mut post) = (vec![], vec![], vec![], vec![]);
    for _ in 0..EMBED_RUNS {
        let t0 = Instant::now();
        let e = look.embed(black_box(frame), None)?;
        wall.push(ms(t0.elapsed()));
        black_box(e);
        let s = &look.scratch.stages;
        pre.push(ms(s.preprocess));
        infer.push(ms(s.infer));
        post.push(ms(s.postprocess));
    }
    let fastest = wall.iter().copied().fold(f64::MAX, f64::min);
    Ok(json!({
        "file": look.file,
        "image": format!("{CAT} ({}x{})", frame.width, frame.height),
        "dim": look.model.dim(),
        "runs": EMBED_RUNS,
        "embed_ms_median": round(median(wall), 3),
        "embed_ms_fastest": round(fastest, 3),
        "preprocess_ms_median": round(median(pre), 3),
        "infer_ms_median": round(median(infer), 3),
        "postprocess_ms_median": round(median(post), 3),
    }))
}

/// A random variant of `photo`: brightness and flip applied to the pixels, and the
/// crop as the region to embed.
fn variant(photo: &Frame, rng: &mut Rng) -> (Frame, [f32; 4]) {
    let (w, h) = (photo.width as usize, photo.height as usize);
    let gain = rng.range(0.6, 1.4);
    let flip = rng.unit() < 0.5;
    let data = photo.data();
    let mut rgb = Vec::with_capacity(w * h * 3);
    for y in 0..h {
        let row = &data[y * photo.stride..y * photo.stride + w * 3];
        for x in 0..w {
            let sx = if flip { w - 1 - x } else { x };
            for c in 0..3 {
                let v = f32::from(row[sx * 3 + c]) * gain;
                rgb.push(v.round().clamp(0.0, 255.0) as u8);
            }
        }
    }
    let frame = Frame::from_rgb(photo.width, photo.height, w * 3, rgb);
    let cw = rng.range(0.5, 0.9);
    let ch = rng.range(0.5, 0.9);
    let x0 = rng.range(0.0, 1.0 - cw);
    let y0 = rng.range(0.0, 1.0 - ch);
    (frame, [x0, y0, x0 + cw, y0 + ch])
}

/// Embeddings of `n` random variants of `photo`.
fn variants(
    look: &mut Look,
    photo: &Frame,
    n: usize,
    rng: &mut Rng,
) -> Result<Vec<Vec<f32>>, String> {
    (0..n)
        .map(|_| {
            let (frame, region) = variant(photo, rng);
            look.embed(&frame, Some(region))
        })
        .collect()
}

/// The learning curve: held-out accuracy by examples per state.
/// Each state's mean example, L2-normalised.
fn centroids(xs: &[&[f32]], ys: &[usize], k: usize) -> Vec<Vec<f32>> {
    let dim = xs.first().map_or(0, |x| x.len());
    let mut c = vec![vec![0f32; dim]; k];
    for (x, &y) in xs.iter().zip(ys) {
        for (a, v) in c[y].iter_mut().zip(x.iter()) {
            *a += v;
        }
    }
    c.into_iter().map(normalised).collect()
}

/// The state whose centroid is nearest `x` (largest cosine).
fn nearest(centroids: &[Vec<f32>], x: &[f32]) -> usize {
    let cos = |c: &Vec<f32>| c.iter().zip(x).map(|(a, b)| a * b).sum::<f32>();
    (0..centroids.len())
        .max_by(|&a, &b| cos(&centroids[a]).total_cmp(&cos(&centroids[b])))
        .unwrap_or(0)
}

fn accuracy(look: &mut Look, cat: &Frame, others: &[Frame]) -> Result<Value, String> {
    let t0 = Instant::now();
    let mut rng = Rng(0x5EED_CA75);
    // Pools: state 0 = cat, state 1 = not cat (its photos interleaved).
    let train_cat = variants(look, cat, TRAIN_POOL_CAT, &mut rng)?;
    let test_cat = variants(look, cat, TEST_CAT, &mut rng)?;
    let mut train_other = Vec::new();
    let mut test_other = Vec::new();
    for photo in others {
        train_other.extend(variants(look, photo, TRAIN_POOL_PER_OTHER, &mut rng)?);
        test_other.extend(variants(look, photo, TEST_PER_OTHER, &mut rng)?);
    }
    let embed_s = t0.elapsed().as_secs_f64();
    let test: Vec<(&[f32], usize)> = test_cat
        .iter()
        .map(|v| (v.as_slice(), 0))
        .chain(test_other.iter().map(|v| (v.as_slice(), 1)))
        .collect();

    let mut by_shots = Map::new();
    let mut by_shots_min = Map::new();
    let mut centroid_by_shots = Map::new();
    let mut untrained = 0usize;
    for shots in SHOTS {
        let mut accs = Vec::new();
        let mut centroid_accs = Vec::new();
        for _ in 0..DRAWS {
            let mut xs: Vec<&[f32]> = Vec::new();
            let mut ys = Vec::new();
            for i in rng.sample(train_cat.len(), shots) {
                xs.push(&train_cat[i]);
                ys.push(0);
            }
            for i in rng.sample(train_other.len(), shots) {
                xs.push(&train_other[i]);
                ys.push(1);
            }
            let Some(head) = Head::train(&xs, &ys, 2) else {
                untrained += 1;
                continue;
            };
            let right = test.iter().filter(|(x, y)| head.predict(x) == *y).count();
            accs.push(right as f64 / test.len() as f64);
            // The alternative probe on the same draw: the nearest centroid (cosine).
            let centroids = centroids(&xs, &ys, 2);
            let right = test
                .iter()
                .filter(|(x, y)| nearest(&centroids, x) == *y)
                .count();
            centroid_accs.push(right as f64 / test.len() as f64);
        }
        let centroid = centroid_accs.iter().sum::<f64>() / centroid_accs.len().max(1) as f64;
        centroid_by_shots.insert(shots.to_string(), json!(round(centroid, 4)));
        let mean = accs.iter().sum::<f64>() / accs.len().max(1) as f64;
        let worst = accs.iter().copied().fold(1.0, f64::min);
        eprintln!("teach: {shots} per state: held-out accuracy {mean:.3} (worst draw {worst:.3})");
        by_shots.insert(shots.to_string(), json!(round(mean, 4)));
        by_shots_min.insert(shots.to_string(), json!(round(worst, 4)));
    }

    // Cross-validation on the whole training pool, for comparison.
    let pool: Vec<&[f32]> = train_cat
        .iter()
        .chain(&train_other)
        .map(Vec::as_slice)
        .collect();
    let pool_ys: Vec<usize> = (0..pool.len())
        .map(|i| usize::from(i >= train_cat.len()))
        .collect();
    let all = Head::train(&pool, &pool_ys, 2).ok_or("the whole pool did not train")?;
    let right_all = test.iter().filter(|(x, y)| all.predict(x) == *y).count();
    let cv = cross_validate(&pool, &pool_ys, 2).map(|(r, n)| json!([r, n]));

    Ok(json!({
        "accuracy_by_examples_per_state": by_shots,
        "worst_draw_by_examples_per_state": by_shots_min,
        "nearest_centroid_by_examples_per_state": centroid_by_shots,
        "test_variants": test.len(),
        "test_variants_per_state": [test_cat.len(), test_other.len()],
        "train_pool_per_state": [train_cat.len(), train_other.len()],
        "draws": DRAWS,
        "heads_not_trained": untrained,
        "whole_pool_head_accuracy": round(right_all as f64 / test.len() as f64, 4),
        "whole_pool_cross_validate": cv,
        "states": ["cat (chelsea.png)", format!("not cat ({})", OTHERS.join(", "))],
        "variants": "crop 50-90% of each side at a random place, horizontal flip half the time, brightness x0.6-1.4; test variants are other crops of the same photos",
        "embedding_seconds": round(embed_s, 2),
    }))
}

fn main() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let shared =
        std::env::var_os("OCELLUS_SHARED").map_or_else(|| root.join("../shared"), PathBuf::from);
    let threads = std::env::var("OCELLUS_BENCH_THREADS")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok());

    let (train, cv, cv_right) = training();
    let mut head_ns = Map::new();
    let mut head2 = 0.0;
    for k in [2usize, 4] {
        let ns = probs_ns(k);
        eprintln!("teach: Head::probs, {k} states: {ns:.0} ns per frame");
        if k == 2 {
            head2 = ns;
        }
        head_ns.insert(format!("{k}_states"), json!(round(ns, 1)));
    }

    // The real embedder and photos.
    let model_dir = shared.join("models/mobilenetv2_int8_imagenet");
    let media = shared.join("media");
    let real = (|| -> Result<(Look, Frame, Vec<Frame>), String> {
        if !model_dir.is_dir() {
            return Err(format!("no model folder {}", model_dir.display()));
        }
        let photo = |name: &str| {
            let path = media.join(name);
            if !path.is_file() {
                return Err(format!("no photo {}", path.display()));
            }
            first_frame(&path, Pixels::Rgb).map_err(|e| e.to_string())
        };
        let cat = photo(CAT)?;
        let others = OTHERS
            .iter()
            .map(|n| photo(n))
            .collect::<Result<Vec<_>, _>>()?;
        let look = Look::open(&model_dir, threads)?;
        Ok((look, cat, others))
    })();
    let (embed, share, acc) = match real {
        Err(why) => {
            eprintln!("teach: real embedder skipped: {why}");
            let skipped = json!({ "skipped": why });
            (skipped.clone(), Value::Null, skipped)
        }
        Ok((mut look, cat, others)) => {
            let embed = embed_cost(&mut look, &cat).unwrap_or_else(|e| json!({ "skipped": e }));
            let share = embed["embed_ms_median"]
                .as_f64()
                .map_or(Value::Null, |e| json!(head2 / (e * 1e6)));
            if let Some(e) = embed["embed_ms_median"].as_f64() {
                eprintln!(
                    "teach: one embedding {e:.2} ms (median); head share {:.2e}",
                    head2 / (e * 1e6)
                );
            }
            let acc =
                accuracy(&mut look, &cat, &others).unwrap_or_else(|e| json!({ "skipped": e }));
            (embed, share, acc)
        }
    };

    let report = json!({
        "setup": {
            "embedding_dim": DIM,
            "train_repeats_median_of": TRAIN_REPEATS,
            "probs_frames_per_measurement": PROBS_FRAMES,
            "probs_best_of": PROBS_REPEATS,
            "synthetic": "unit vectors near one non-negative centre per state, labelled round-robin",
            "embedder": model_dir.display().to_string(),
            "embedder_threads": threads,
            "media": media.display().to_string(),
        },
        "results": {
            "train_ms": train,
            "cross_validate_ms": cv,
            "cross_validate_right_of_synthetic": cv_right,
            "head_ns_per_frame": head_ns,
            "embed": embed,
            "head_share_of_embed": share,
            "accuracy": acc,
        },
    });
    let text = serde_json::to_string_pretty(&report).expect("JSON");
    let dir = root.join("target/ocellus-bench");
    std::fs::create_dir_all(&dir).expect("create target/ocellus-bench");
    std::fs::write(dir.join("teach.json"), format!("{text}\n")).expect("write teach.json");
    println!("{text}");
}
