//! Batching across cameras on a real ONNX Runtime session (the tiny CLIP vision
//! encoder, whose batch dimension is dynamic): frames from several cameras submitted
//! at once are run as one batch, each camera gets exactly the rows a run of its frame
//! alone gives, and a model with a fixed batch dimension (YOLOX-nano) runs one frame
//! at a time even when cameras submit at once, each getting its own rows, unless its
//! batch dimension is freed ([`engine::free_batch`]): then it batches, with the same rows.

use crate::common;

use std::path::Path;
use std::sync::{Arc, Barrier};
use std::time::Duration;

use ocellus::engine::{self, BatchSpec, Batcher, EngineConfig, Provider};

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
        .map(|input| client.run(input).unwrap())
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
                    barrier.wait();
                    client.run(input).unwrap()
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
    // Three at once: one batch smaller than the largest, each camera its own rows.
    let (three, runs, items) = counted(&engine, || self::together(&engine, &inputs[..3]));
    assert_eq!((runs, items), (1, 3), "3 concurrent frames: {runs} runs");
    for (seed, (a, b)) in alone.iter().zip(&three).enumerate() {
        let d = max_diff(a, b);
        assert!(
            d < 1e-5,
            "camera {seed}: in a batch of 3 the output differs by {d}"
        );
    }
    // Alone again after batches: the job's own output, not a batch's rows.
    let again = self::alone(&engine, &inputs[1..2]);
    assert!(max_diff(&again[0], &alone[1]) < 1e-6);
    assert_ne!(
        alone[0], alone[1],
        "different inputs must give different outputs"
    );
    // A wrong-sized input is refused with the model named, and nothing else stops.
    let err = engine.client().run(&[0.0; 3]).unwrap_err().to_string();
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

/// The shared YOLOX-nano export (fixed batch of 1) with its batch dimension freed
/// in memory: ONNX Runtime sees a free batch, and a batch of three cameras' frames
/// gives each camera exactly the rows the unchanged file gives its frame alone.
#[test]
fn a_freed_yolox_batch_runs_several_cameras_with_the_fixed_files_results() {
    let file = common::yolox_dir().join("yolox_nano_416.onnx");
    let fixed_bytes = std::fs::read(&file).unwrap();
    let freed_bytes = engine::free_batch(&fixed_bytes).unwrap();
    assert_eq!(
        engine::free_batch(&freed_bytes),
        Err(engine::FreeBatchError::AlreadyFree)
    );
    let env = engine::environment(&EngineConfig::default()).unwrap();
    let fixed = engine::open(env, "coco", &file, &[Provider::Cpu], Some(1)).unwrap();
    let freed =
        engine::open_bytes(env, "coco", &file, &freed_bytes, &[Provider::Cpu], Some(1)).unwrap();
    let dims = |s: &engine::SharedSession| {
        let s = s.lock();
        let i = s.inputs()[0].dtype().tensor_shape().unwrap().to_vec();
        let o = s.outputs()[0].dtype().tensor_shape().unwrap().to_vec();
        (i, o)
    };
    assert_eq!(dims(&fixed), (vec![1, 3, 416, 416], vec![1, 3549, 85]));
    assert_eq!(dims(&freed), (vec![-1, 3, 416, 416], vec![-1, 3549, 85]));
    let spec = |max_batch| BatchSpec {
        model: "coco".into(),
        output: None,
        max_batch,
        max_wait: Duration::from_secs(5),
    };
    let fixed = Batcher::spawn(fixed, spec(4)).unwrap();
    let freed = Batcher::spawn(freed, spec(4)).unwrap();
    assert_eq!((fixed.max_batch(), freed.max_batch()), (1, 4));
    let len = fixed.input_len();
    let inputs: Vec<Vec<f32>> = (0..3)
        .map(|seed| input(seed, len).iter().map(|v| v * 255.0 + 127.5).collect())
        .collect();
    let reference = alone(&fixed, &inputs);
    let (batched, runs, items) = counted(&freed, || together(&freed, &inputs));
    assert_eq!((runs, items), (1, 3), "3 cameras at once: {runs} runs");
    for (seed, (a, b)) in reference.iter().zip(&batched).enumerate() {
        let d = max_diff(a, b);
        assert!(d < 1e-4, "camera {seed}: the freed batch differs by {d}");
    }
    // A frame alone on the freed graph: the same rows too.
    let one = alone(&freed, &inputs[2..]);
    assert!(max_diff(&one[0], &reference[2]) < 1e-4);
    assert!(max_diff(&reference[0], &reference[1]) > 1e-3);
}

/// How the registry opens YOLOX: one frame a run by default (the file as it is);
/// with `max_batch` over 1 on the CPU, the export's batch is freed and runs take up
/// to that many frames, whatever `[engine] max_batch` says.
#[test]
fn yolox_batches_on_the_cpu_only_when_asked() {
    use ocellus::model::YoloxConfig;
    use ocellus::model::yolox::Yolox;
    let env = engine::environment(&EngineConfig::default()).unwrap();
    let cfg = |extra: &str| -> YoloxConfig {
        toml::from_str(&format!(
            "dir = {:?}\nproviders = [\"cpu\"]\nthreads = 1\n{extra}",
            common::yolox_dir()
        ))
        .unwrap()
    };
    let batch = |c: &YoloxConfig, engine_cfg: &EngineConfig| {
        let (model, session) = Yolox::load("coco", c, env, engine_cfg).unwrap();
        let free = session.lock().inputs()[0].dtype().tensor_shape().unwrap()[0] < 0;
        (model.engine(session).unwrap().max_batch(), free)
    };
    let default = EngineConfig::default();
    assert_eq!(default.max_batch, 8);
    assert_eq!(batch(&cfg(""), &default), (1, false));
    assert_eq!(batch(&cfg("max_batch = 1"), &default), (1, false));
    assert_eq!(batch(&cfg("max_batch = 4"), &default), (4, true));
    let two = EngineConfig {
        max_batch: 2,
        ..EngineConfig::default()
    };
    assert_eq!(batch(&cfg("max_batch = 3"), &two), (3, true));
}
