//! The inference floor of scenario "every": a bare ONNX Runtime loop running the
//! same YOLOX-nano session as the daemon (same library, same environment, same
//! session options, since it is opened by `ocellus::engine::open`: Level3
//! optimisation, 2 intra-op threads, CPU) over one preprocessed 1x3x416x416 tensor,
//! N times, with nothing else around it.
//!
//! It runs in a child process, the benchmark binary itself started again with
//! `OCELLUS_BENCH_ROLE=raw-ort OCELLUS_BENCH_FRAMES=N` (and optionally
//! `OCELLUS_BENCH_THREADS`, `OCELLUS_BENCH_MODEL`, `OCELLUS_BENCH_BATCH`), so that the
//! parent measures its CPU time like any other child's. With `OCELLUS_BENCH_BATCH=B`
//! the model's batch dimension is freed in memory (`ocellus::engine::free_batch`, as
//! the daemon does) and each run takes B copies of the tensor (N/B runs).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ocellus::engine::{self, Provider};
use ort::value::TensorRef;
use serde_json::{Value, json};

use crate::common;
use crate::measure::{Usage, run_child};

pub const ROLE: &str = "raw-ort";

/// The `.onnx` file of the YOLOX-nano model folder.
pub fn model_file() -> PathBuf {
    let dir = common::yolox_dir();
    std::fs::read_dir(&dir)
        .expect("read the YOLOX-nano folder")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.extension().is_some_and(|e| e == "onnx"))
        .unwrap_or_else(|| panic!("no .onnx file in {}", dir.display()))
}

/// The child's main: runs the loop, prints one JSON line, returns.
pub fn child_main() {
    let env_num = |key: &str, default: Option<usize>| -> usize {
        match std::env::var(key) {
            Ok(v) => v
                .parse()
                .unwrap_or_else(|_| panic!("{key}={v:?} is not a number")),
            Err(_) => default.unwrap_or_else(|| panic!("{key} is not set")),
        }
    };
    let frames = env_num("OCELLUS_BENCH_FRAMES", None);
    let threads = env_num("OCELLUS_BENCH_THREADS", Some(2));
    let model = std::env::var_os("OCELLUS_BENCH_MODEL")
        .map(PathBuf::from)
        .unwrap_or_else(model_file);
    // None: the file as it is; Some(b): the freed graph, b frames a run.
    let batch = std::env::var("OCELLUS_BENCH_BATCH")
        .ok()
        .map(|v| v.parse::<usize>().expect("OCELLUS_BENCH_BATCH is a number"));

    let t0 = Instant::now();
    let env = engine::environment(&Default::default()).expect("load ONNX Runtime");
    let session = match batch {
        None => engine::open(env, "coco", &model, &[Provider::Cpu], Some(threads)),
        Some(_) => {
            let bytes = std::fs::read(&model).expect("read the model");
            let freed = engine::free_batch(&bytes).expect("free the batch dimension");
            engine::open_bytes(env, "coco", &model, &freed, &[Provider::Cpu], Some(threads))
        }
    }
    .expect("open the YOLOX-nano session");
    let per_run = batch.unwrap_or(1).max(1);
    let provider = session.provider.name();
    let mut s = session.lock();
    let input = s.inputs()[0].name().to_string();
    let output = s.outputs()[0].name().to_string();
    let dims = s.inputs()[0]
        .dtype()
        .tensor_shape()
        .map(|d| d.to_vec())
        .unwrap_or_default();
    let (h, w) = match dims[..] {
        [_, 3, h, w] if h > 0 && w > 0 => (h as usize, w as usize),
        _ => panic!("unexpected input shape {dims:?}"),
    };
    let one = letterboxed_tensor(w, h);
    let tensor: Vec<f32> = one
        .iter()
        .copied()
        .cycle()
        .take(one.len() * per_run)
        .collect();
    let setup_s = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let mut checksum = 0.0f64;
    for _ in 0..frames.div_ceil(per_run) {
        let value = TensorRef::from_array_view(([per_run, 3, h, w], tensor.as_slice()))
            .expect("input tensor");
        let outputs = s
            .run(ort::inputs![input.as_str() => value])
            .expect("inference");
        let (_, rows) = outputs[output.as_str()]
            .try_extract_tensor::<f32>()
            .expect("output tensor");
        checksum += f64::from(rows[4]);
    }
    let loop_s = t1.elapsed().as_secs_f64();
    println!(
        "{}",
        json!({
            "frames": frames.div_ceil(per_run) * per_run,
            "batch": per_run,
            "threads": threads,
            "provider": provider,
            "model": model.display().to_string(),
            "setup_wall_s": setup_s,
            "loop_wall_s": loop_s,
            "checksum": checksum,
        })
    );
}

/// A 16:9 frame letterboxed the YOLOX way into `w`x`h`: the top 9/16 of the rows
/// carry a deterministic texture (0..255, like pixels), the rest is grey 114.
/// Inference cost does not depend on the values; they only keep it realistic.
fn letterboxed_tensor(w: usize, h: usize) -> Vec<f32> {
    let content_rows = h * 9 / 16;
    let mut t = vec![114.0f32; 3 * h * w];
    let mut state = 0x2545_f491_u32;
    for c in 0..3 {
        for y in 0..content_rows {
            for x in 0..w {
                state ^= state << 13;
                state ^= state >> 17;
                state ^= state << 5;
                let smooth = ((x + y * 2 + c * 40) % 256) as f32;
                t[(c * h + y) * w + x] = (smooth * 0.75 + (state % 64) as f32).min(255.0);
            }
        }
    }
    t
}

/// Longest one raw loop may take.
const LIMIT: Duration = Duration::from_secs(600);

/// Runs the loop for `frames` frames in a child; its usage and what it printed.
pub fn run(
    frames: usize,
    threads: usize,
    model: &Path,
    ticks: f64,
) -> Result<(Usage, Value), String> {
    run_batched(frames, None, threads, model, ticks)
}

/// As [`run`], on the freed graph with `batch` frames a run when `batch` is set.
pub fn run_batched(
    frames: usize,
    batch: Option<usize>,
    threads: usize,
    model: &Path,
    ticks: f64,
) -> Result<(Usage, Value), String> {
    let exe = std::env::current_exe().map_err(|e| format!("current_exe: {e}"))?;
    let mut cmd = Command::new(exe);
    cmd.env("OCELLUS_BENCH_ROLE", ROLE)
        .env("OCELLUS_BENCH_FRAMES", frames.to_string())
        .env("OCELLUS_BENCH_THREADS", threads.to_string())
        .env("OCELLUS_BENCH_MODEL", model)
        .env_remove("OCELLUS_BENCH_BATCH");
    if let Some(b) = batch {
        cmd.env("OCELLUS_BENCH_BATCH", b.to_string());
    }
    let run = run_child(&mut cmd, LIMIT, ticks)?;
    run.check(&format!("raw ONNX Runtime loop of {frames} frames"))?;
    let report: Value = run
        .stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("raw ONNX Runtime loop printed no JSON: {}", run.stdout))?;
    eprintln!(
        "bench: raw ORT {frames} frames{}: {:.2} s wall, {:.2} s CPU",
        batch.map_or(String::new(), |b| format!(" (freed batch, {b} a run)")),
        run.usage.wall_s,
        run.usage.cpu_s
    );
    Ok((run.usage, report))
}
