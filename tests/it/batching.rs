//! Batching across cameras on a real ONNX Runtime session (the tiny CLIP vision
//! encoder, whose batch dimension is dynamic): frames from several cameras submitted
//! at once are run as one batch, each camera gets exactly the rows a run of its frame
//! alone gives, and a model with a fixed batch dimension (YOLOX-nano) runs one frame
//! at a time even when cameras submit at once, each getting its own rows.

use crate::common;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use ocellus::engine::{self, BatchSpec, Batcher, EngineConfig, Job, Provider};

fn tiny_vision() -> engine::SharedSession {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let env = engine::environment(&EngineConfig::default()).unwrap();
    engine::open(
        env,
        "tiny",
        &root.join("tests/fixtures/clip_tiny/onnx/vision_model.onnx"),
        &[Provider::Cpu],
        Some(1),
    )
    .unwrap()
}

fn input(seed: usize, len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| (((i * 31 + seed * 17) % 97) as f32 / 97.0) - 0.5)
        .collect()
}

/// The output for each input, run one after the other by one client (nobody else
/// to wait for: each is a run of its own).
fn alone(engine: &Batcher, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let mut client = engine.client();
    inputs
        .iter()
        .map(|input| {
            let mut job = Job {
                input: input.clone(),
                output: Vec::new(),
            };
            client.run(&mut job).unwrap();
            job.output
        })
        .collect()
}

/// The output for each input, each submitted by a client of its own on a thread of
/// its own, all released at once by a barrier (every client exists before any
/// submits).
fn together(engine: &Batcher, inputs: &[Vec<f32>]) -> Vec<Vec<f32>> {
    let barrier = Arc::new(Barrier::new(inputs.len()));
    std::thread::scope(|s| {
        let handles: Vec<_> = inputs
            .iter()
            .map(|input| {
                let mut client = engine.client();
                let barrier = barrier.clone();
                s.spawn(move || {
                    let mut job = Job {
                        input: input.clone(),
                        output: Vec::new(),
                    };
                    barrier.wait();
                    client.run(&mut job).unwrap();
                    job.output
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    })
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "output lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// (runs, frames) the engine made while `f` ran.
fn counted<T>(engine: &Batcher, f: impl FnOnce() -> T) -> (T, u64, u64) {
    let (runs, items) = (engine.metrics.runs.get(), engine.metrics.items.get());
    let out = f();
    (
        out,
        engine.metrics.runs.get() - runs,
        engine.metrics.items.get() - items,
    )
}

#[test]
fn frames_of_several_cameras_run_as_one_batch_with_the_same_results() {
    let engine = Batcher::spawn(
        tiny_vision(),
        BatchSpec {
            model: "tiny".into(),
            output: Some("image_embeds".into()),
            max_batch: 4,
            // An upper bound only: the engine stops waiting as soon as every client
            // has a request in, so this long wait costs nothing and keeps a thread
            // the loaded machine schedules late in the batch.
            max_wait: Duration::from_secs(5),
        },
    )
    .unwrap();
    assert_eq!(engine.max_batch(), 4);
    let len = engine.input_len();
    let inputs: Vec<Vec<f32>> = (0..4).map(|seed| input(seed, len)).collect();
    let (alone, runs, items) = counted(&engine, || alone(&engine, &inputs));
    assert_eq!((runs, items), (4, 4), "one client: a run per frame");
    // Four cameras at once, four frames, at most four a batch: one run of all four.
    let (together, runs, items) = counted(&engine, || together(&engine, &inputs));
    assert_eq!(
        (runs, items),
        (1, 4),
        "4 concurrent frames (max_batch 4) took {runs} runs of {items} frames, not one batch of 4"
    );
    for (seed, (a, b)) in alone.iter().zip(&together).enumerate() {
        let d = max_diff(a, b);
        assert!(d < 1e-5, "camera {seed}: batched output differs by {d}");
    }
    assert_ne!(
        alone[0], alone[1],
        "different inputs must give different outputs"
    );
    // A wrong-sized input is refused with the model named, and nothing else stops.
    let mut bad = Job {
        input: vec![0.0; 3],
        output: Vec::new(),
    };
    let err = engine.client().run(&mut bad).unwrap_err().to_string();
    assert!(err.contains("tiny") && err.contains("3 values"), "{err}");
}

#[test]
fn a_fixed_batch_dimension_runs_one_frame_at_a_time() {
    let env = engine::environment(&EngineConfig::default()).unwrap();
    let session = engine::open(
        env,
        "coco",
        &common::yolox_dir().join("yolox_nano_416.onnx"),
        &[Provider::Cpu],
        Some(1),
    )
    .unwrap();
    let engine = Batcher::spawn(
        session,
        BatchSpec {
            model: "coco".into(),
            output: None,
            max_batch: 8,
            // Long: were the fixed batch dimension ignored, the engine would wait
            // for every client and batch them all.
            max_wait: Duration::from_secs(2),
        },
    )
    .unwrap();
    assert_eq!(engine.max_batch(), 1);
    assert_eq!(engine.input_shape(), &[3, 416, 416]);
    let len = engine.input_len();
    // Pixel values, different for each camera.
    let inputs: Vec<Vec<f32>> = (0..3)
        .map(|seed| input(seed, len).iter().map(|v| v * 255.0 + 127.5).collect())
        .collect();
    let (alone, runs, items) = counted(&engine, || alone(&engine, &inputs));
    assert_eq!((runs, items), (3, 3));
    // Three cameras at once: still one frame a run.
    let (together, runs, items) = counted(&engine, || together(&engine, &inputs));
    assert_eq!(
        (runs, items),
        (3, 3),
        "3 concurrent frames on a fixed batch of 1 took {runs} runs of {items} frames"
    );
    for (seed, (a, b)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a.len(), 3549 * 85, "camera {seed}: one item's rows");
        let d = max_diff(a, b);
        assert!(
            d < 1e-3,
            "camera {seed}: output differs by {d} from its run alone"
        );
    }
    for i in 0..alone.len() {
        for j in i + 1..alone.len() {
            assert!(
                max_diff(&alone[i], &alone[j]) > 1e-3,
                "cameras {i} and {j}: different inputs must give different outputs"
            );
        }
    }
}
