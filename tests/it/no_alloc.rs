//! Zero heap allocation on the frame path in the steady state, shown with a counting
//! global allocator: once warm, evaluating a frame — YOLOX letterbox into the reused
//! input tensor, the engine thread's run with preallocated ONNX Runtime tensors,
//! decoding and NMS into reused vectors, dual-encoder regions (CLIP and SigLIP) served
//! from the embedding cache, every query (softmax and sigmoid scoring), the pooled
//! report, taught queries (an embedder's head, a CLIP query's prompts mixed with its
//! examples, the camera's last frame kept for labelling) — allocates nothing, and neither
//! does a frame the gate found unchanged, nor the gate itself. (ONNX Runtime's own
//! C++ allocations are not Rust heap allocations and are not counted.)
//!
//! The count is process-wide, and the harness runs the tests of this binary (every
//! integration test) on parallel threads: the test runs itself again in a process of
//! its own, running only it, and measures there.

use crate::common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime};

use ocellus::cache::{EmbeddingCache, PromptCache};
use ocellus::eval::{CameraWorker, WorkerContext};
use ocellus::gate::ChangeGate;
use ocellus::kit::metrics::CameraMetrics;
use ocellus::kit::shutdown::Shutdown;
use ocellus::kit::{Frame, Sample, Unchanged};
use ocellus::kit::{Plane, Thumb};
use ocellus::query::{Inference, ReportPool};
use ocellus::source::{self, CameraConfig, WhenFull};
use ocellus::teach::{Lessons, Source, TeachConfig};

struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

// SAFETY: forwards to the system allocator; only counts.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.alloc_zeroed(layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        unsafe { System.realloc(ptr, layout, new_size) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

// The allocator of the whole test binary: it only counts, which costs the other tests
// nothing they would notice.
#[global_allocator]
static GLOBAL: Counting = Counting;

/// Set in the process the test runs itself in, where it measures.
const ALONE_ENV: &str = "OCELLUS_NO_ALLOC_ALONE";

fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.load(Ordering::SeqCst);
    f();
    ALLOCATIONS.load(Ordering::SeqCst) - before
}

/// Decodes a photo with the camera pipeline (uridecodebin → appsink) into `pixels`.
fn decode(path: &std::path::Path, pixels: ocellus::kit::Pixels) -> Frame {
    gstreamer::init().expect("GStreamer");
    let cam: CameraConfig =
        toml::from_str(&format!("id = \"img\"\nurl = {}", common::toml_path(path)))
            .expect("camera");
    let (tx, rx) = source::frame_queue(2, WhenFull::Block);
    let handle = source::spawn(
        cam,
        pixels,
        tx,
        |_| {},
        Shutdown::new(),
        source::Retry::Never,
        Arc::default(),
    );
    let frame = loop {
        match rx.recv_timeout(Duration::from_secs(20)) {
            Ok(Some(Sample::Frame(f))) => break f,
            Ok(_) => continue,
            Err(_) => panic!("no frame from {}: {:?}", path.display(), handle.join()),
        }
    };
    drop(rx);
    let _ = handle.join();
    frame
}

#[test]
fn the_frame_path_does_not_allocate_in_the_steady_state() {
    if std::env::var_os(ALONE_ENV).is_some() {
        return measure();
    }
    let out = common::rerun_this_test(
        module_path!(),
        "the_frame_path_does_not_allocate_in_the_steady_state",
    )
    .arg("--nocapture")
    .env(ALONE_ENV, "1")
    .output()
    .expect("run the test binary again");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let text = format!("{stdout}{}", String::from_utf8_lossy(&out.stderr));
    assert!(
        out.status.success(),
        "measured alone: {}\n{text}",
        out.status
    );
    assert!(
        stdout.contains("test result: ok. 1 passed"),
        "the test did not run alone:\n{text}"
    );
}

/// The measurement, in a process that runs nothing else.
fn measure() {
    let root = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config_text = format!(
        r#"[engine]
threads = 1

{yolox}
[models.tiny]
family = "clip"
dir = {clip}
tokenizer = {tokenizer}
providers = ["cpu"]
threads = 1

[models.sig]
family = "clip"
dir = {siglip}
providers = ["cpu"]
threads = 1

[[cameras]]
realtime = false
id = "door"
url = "unused.mkv"

{person}
[[cameras.queries]]
id = "coffee"
ask = "is there coffee?"
kind = "yes_no"
model = "tiny"
yes = ["a photo of a cup of coffee"]
no = ["a photo of an astronaut", "a photo of a cat"]
region = [0.0, 0.0, 0.5, 1.0]

[[cameras.queries]]
id = "scene"
ask = "what is it?"
kind = "classify"
model = "tiny"
labels = ["astronaut", "coffee", "cat"]
region = [0.0, 0.0, 0.5, 1.0]

[[cameras.queries]]
id = "sig_coffee"
ask = "is there coffee?"
kind = "yes_no"
model = "sig"
yes = ["a photo of a cup of coffee"]
no = ["a photo of an astronaut", "a photo of a cat"]
region = [0.0, 0.0, 0.5, 1.0]

[[cameras.queries]]
id = "sig_scene"
ask = "what is it?"
kind = "classify"
model = "sig"
labels = ["astronaut", "coffee", "cat"]
region = [0.0, 0.0, 0.5, 1.0]
"#,
        yolox = common::yolox_model(&common::yolox_dir(), ""),
        clip = common::toml_path(&root.join("tests/fixtures/clip_tiny")),
        siglip = common::toml_path(&root.join("tests/fixtures/siglip_tiny")),
        tokenizer =
            common::toml_path(&common::models_dir().join("clip_vit_b32_tokenizer/tokenizer.json")),
        person = common::person_query(""),
    );
    let config =
        ocellus::app::config::parse(&config_text, std::path::Path::new("/tmp/no_alloc.toml"))
            .expect("config");
    let env = ocellus::engine::environment(&config.engine).expect("ONNX Runtime");
    let models = ocellus::model::Registry::load(
        &config.models,
        &config.engine,
        env,
        &Arc::new(PromptCache::default()),
    );
    assert!(models.failed().is_empty(), "{:?}", models.failed());
    let ctx = WorkerContext {
        cache: Arc::new(EmbeddingCache::new(1 << 20)),
        metrics: Arc::new(CameraMetrics::default()),
        lessons: Arc::default(),
    };
    let mut worker = CameraWorker::new(&config.cameras[0], &models, ctx.clone());
    assert_eq!(worker.failed_queries(), 0);
    let pool = ReportPool::new(worker.camera().clone(), 2);
    let frame = Sample::Frame(decode(
        &common::media("astronaut.png"),
        ocellus::kit::Pixels::Rgb,
    ));
    let unchanged = Sample::Unchanged(Unchanged {
        seq: 1,
        pts: Duration::from_millis(500),
        captured: SystemTime::now(),
        decoded_at: Instant::now(),
        score: 0.0,
    });

    // Warm up: buffers grow to their working size, the cache learns the region.
    for _ in 0..3 {
        let mut r = pool.take();
        assert!(worker.evaluate(&frame, &mut r));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
        assert_eq!(r.queries.len(), 5);
    }
    for _ in 0..3 {
        assert!(worker.evaluate(&unchanged, &mut pool.take()));
    }
    let hits_before = ctx.metrics.cache_hits.get();
    let encoded_before = ctx.metrics.encoded.get();

    // Encoded frames: YOLOX runs every time, each dual encoder's region is a cache hit.
    let mut person = 0.0;
    let n = allocations_during(|| {
        for _ in 0..20 {
            let mut r = pool.take();
            assert!(worker.evaluate(&frame, &mut r));
            assert_eq!(r.inference, Inference::Encoded);
            person = r.queries[0].score;
        }
    });
    assert!(person > 0.8, "YOLOX saw the astronaut with {person}");
    assert_eq!(ctx.metrics.encoded.get() - encoded_before, 20);
    assert_eq!(ctx.metrics.cache_hits.get() - hits_before, 40);
    assert_eq!(n, 0, "{n} heap allocations in 20 encoded frames");

    // Frames the gate found unchanged: the last outputs are reused.
    let n = allocations_during(|| {
        for _ in 0..20 {
            let mut r = pool.take();
            assert!(worker.evaluate(&unchanged, &mut r));
            assert_eq!(r.inference, Inference::Reused);
        }
    });
    assert_eq!(n, 0, "{n} heap allocations in 20 unchanged frames");

    // A detector-only camera gets I420 frames: the letterbox converts only the
    // pixels it samples.
    let mut detector_only = config.cameras[0].clone();
    detector_only.queries.truncate(1);
    let mut worker = CameraWorker::new(&detector_only, &models, ctx.clone());
    assert_eq!(worker.pixels(), ocellus::kit::Pixels::I420);
    let frame = Sample::Frame(decode(
        &common::media("astronaut.png"),
        ocellus::kit::Pixels::I420,
    ));
    for _ in 0..3 {
        assert!(worker.evaluate(&frame, &mut pool.take()));
    }
    let n = allocations_during(|| {
        for _ in 0..20 {
            let mut r = pool.take();
            assert!(worker.evaluate(&frame, &mut r));
            person = r.queries[0].score;
        }
    });
    assert!(
        person > 0.8,
        "YOLOX saw the astronaut in I420 with {person}"
    );
    assert_eq!(n, 0, "{n} heap allocations in 20 encoded I420 frames");

    // The gate: thumbnail and verdict.
    let luma = vec![90u8; 1280 * 720];
    let mut gate = ChangeGate::new(
        0.02,
        Duration::from_secs(30),
        [None, Some([0.5, 0.0, 1.0, 0.5])],
    );
    let n = allocations_during(|| {
        for i in 0..100u64 {
            let plane = Plane {
                data: &luma,
                width: 1280,
                height: 720,
                stride: 1280,
                offset: 0,
                step: 1,
            };
            let thumb = Thumb::of(&plane);
            gate.judge(thumb.as_ref(), Duration::from_millis(i * 100));
        }
    });
    assert_eq!(n, 0, "{n} heap allocations in 100 gate decisions");

    taught(&root);
}

/// Taught queries: an embedder query answering from its examples alone and a CLIP
/// query whose prompts and examples mix; with the camera's last frame kept for
/// "label the current frame", still nothing is allocated per frame.
fn taught(root: &std::path::Path) {
    let text = format!(
        r#"[engine]
threads = 1

[models.look]
family = "embedder"
dir = {look}
providers = ["cpu"]
threads = 1

[models.tiny]
family = "clip"
dir = {clip}
tokenizer = {tokenizer}
providers = ["cpu"]
threads = 1

[[cameras]]
realtime = false
id = "desk"
url = "unused.mkv"

[[cameras.queries]]
id = "cat"
ask = "is the cat there?"
kind = "yes_no"
model = "look"

[[cameras.queries]]
id = "coffee"
ask = "is there coffee?"
kind = "yes_no"
model = "tiny"
yes = ["a photo of a cup of coffee"]
no = ["a photo of a cat"]
"#,
        look = common::toml_path(&common::models_dir().join("mobilenetv2_int8_imagenet")),
        clip = common::toml_path(&root.join("tests/fixtures/clip_tiny")),
        tokenizer =
            common::toml_path(&common::models_dir().join("clip_vit_b32_tokenizer/tokenizer.json")),
    );
    let config = ocellus::app::config::parse(&text, std::path::Path::new("/tmp/no_alloc.toml"))
        .expect("taught config");
    let env = ocellus::engine::environment(&config.engine).expect("ONNX Runtime");
    let models = ocellus::model::Registry::load(
        &config.models,
        &config.engine,
        env,
        &Arc::new(PromptCache::default()),
    );
    assert!(models.failed().is_empty(), "{:?}", models.failed());
    let store = tempfile::tempdir().unwrap();
    let lessons = Arc::new(Lessons::new(TeachConfig {
        dir: Some(store.path().to_path_buf()),
        ..TeachConfig::default()
    }));
    let ctx = WorkerContext {
        cache: Arc::new(EmbeddingCache::new(1 << 20)),
        metrics: Arc::new(CameraMetrics::default()),
        lessons: lessons.clone(),
    };
    let mut worker = CameraWorker::new(&config.cameras[0], &models, ctx.clone());
    assert_eq!(worker.failed_queries(), 0);
    let cat = decode(&common::media("chelsea.png"), ocellus::kit::Pixels::Rgb);
    let mug = decode(&common::media("coffee.png"), ocellus::kit::Pixels::Rgb);
    for (query, model) in [("cat", "look"), ("coffee", "tiny")] {
        let lesson = lessons.find("desk", query).expect("the query's lesson");
        let loaded = models.get(model).unwrap();
        let (yes, no) = if query == "cat" {
            (&cat, &mug)
        } else {
            (&mug, &cat)
        };
        lesson
            .add_frame("ON", yes, None, Source::Cli, None, loaded)
            .unwrap();
        lesson
            .add_frame("OFF", no, None, Source::Cli, None, loaded)
            .unwrap();
    }
    let pool = ReportPool::new(worker.camera().clone(), 2);
    let frame = Sample::Frame(cat);
    for _ in 0..3 {
        let mut r = pool.take();
        assert!(worker.evaluate(&frame, &mut r));
        assert!(r.errors.is_empty(), "{:?}", r.errors);
    }
    let mut states = Vec::with_capacity(40);
    let n = allocations_during(|| {
        for _ in 0..20 {
            let mut r = pool.take();
            assert!(worker.evaluate(&frame, &mut r));
            for q in &r.queries {
                states.push((q.taught.is_some(), q.score));
            }
        }
    });
    assert_eq!(n, 0, "{n} heap allocations in 20 frames of taught queries");
    // Both answered with their lessons; the embedder's head knows the cat.
    assert_eq!(states.len(), 40);
    assert!(states.iter().all(|(taught, _)| *taught));
    assert!(states.chunks(2).all(|p| p[0].1 > 0.5), "{states:?}");
    assert!(
        lessons.frame("desk").with(|f| f.width).is_some(),
        "the last frame is kept"
    );
}
