//! Batching across cameras on a real ONNX Runtime session (the tiny CLIP vision
//! encoder, whose batch dimension is dynamic): frames from several cameras are run
//! as one batch, each camera gets exactly the rows a run of its frame alone gives,
//! and a model with a fixed batch dimension (YOLOX-nano) runs one frame at a time.

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

#[test]
fn frames_of_several_cameras_run_as_one_batch_with_the_same_results() {
    let engine = Batcher::spawn(
        tiny_vision(),
        BatchSpec {
            model: "tiny".into(),
            output: Some("image_embeds".into()),
            max_batch: 4,
            max_wait: Duration::from_millis(500),
        },
    )
    .unwrap();
    assert_eq!(engine.max_batch(), 4);
    let len = engine.input_len();
    // Each input alone (one client: nobody else to wait for).
    let alone: Vec<Vec<f32>> = {
        let mut client = engine.client();
        (0..4)
            .map(|seed| {
                let mut job = Job {
                    input: input(seed, len),
                    output: Vec::new(),
                };
                client.run(&mut job).unwrap();
                job.output
            })
            .collect()
    };
    let runs_before = engine.metrics.runs.get();
    // Four cameras at once.
    let barrier = Arc::new(Barrier::new(4));
    let together: Vec<Vec<f32>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4)
            .map(|seed| {
                let mut client = engine.client();
                let barrier = barrier.clone();
                s.spawn(move || {
                    let mut job = Job {
                        input: input(seed, len),
                        output: Vec::new(),
                    };
                    barrier.wait();
                    client.run(&mut job).unwrap();
                    job.output
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let runs = engine.metrics.runs.get() - runs_before;
    assert!(
        runs < 4,
        "4 concurrent frames took {runs} runs: no batching"
    );
    for (seed, (a, b)) in alone.iter().zip(&together).enumerate() {
        assert_eq!(a.len(), b.len());
        let d = a
            .iter()
            .zip(b)
            .map(|(x, y)| (x - y).abs())
            .fold(0.0, f32::max);
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
            max_wait: Duration::from_millis(5),
        },
    )
    .unwrap();
    assert_eq!(engine.max_batch(), 1);
    assert_eq!(engine.input_shape(), &[3, 416, 416]);
    let mut job = Job {
        input: vec![114.0; engine.input_len()],
        output: Vec::new(),
    };
    engine.client().run(&mut job).unwrap();
    assert_eq!(job.output.len(), 3549 * 85);
}
