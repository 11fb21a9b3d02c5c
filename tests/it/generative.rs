//! Slow queries end to end, through the real binary (GStreamer decode, ONNX Runtime,
//! mosquitto): the real PP-OCRv4 models read a machine display into text and
//! numbers (`pattern`), inside a region too; slow queries run at their cadence (the
//! first frame, then a scene change) while the per-frame detector answers every
//! sample; and in the daemon, captions, detections, answers and readings of
//! Florence-2, SmolVLM (tiny random-weight fixtures) and PP-OCR reach MQTT with the
//! contract's topics, while the per-frame answers keep flowing.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use serde_json::Value;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn florence_model() -> String {
    format!(
        "[models.florence]\nfamily = \"florence2\"\ndir = {}\nproviders = [\"cpu\"]\n\n",
        toml_path(&root().join("tests/fixtures/florence2_tiny"))
    )
}

fn smolvlm_model() -> String {
    format!(
        "[models.smol]\nfamily = \"smolvlm\"\ndir = {}\nproviders = [\"cpu\"]\n\n",
        toml_path(&root().join("tests/fixtures/smolvlm_tiny"))
    )
}

fn query(id: &str, kind: &str, model: &str, extra: &str) -> String {
    format!(
        "[[cameras.queries]]\nid = {}\nask = \"what does it say?\"\nkind = {}\nmodel = {}\n{extra}\n\n",
        toml_str(id),
        toml_str(kind),
        toml_str(model)
    )
}

/// The evaluation of query `id` in a report line, if it ran on that frame.
fn eval<'a>(line: &'a Value, id: &str) -> Option<&'a Value> {
    line["queries"]
        .as_array()
        .and_then(|qs| qs.iter().find(|q| q["id"] == id))
}

fn squash(s: &str) -> String {
    s.chars().filter(|c| !c.is_whitespace()).collect()
}

#[test]
fn read_queries_turn_a_display_into_text_and_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{ENGINE_ONE_THREAD}{}[[cameras]]\nrealtime = false\nid = \"panel\"\nurl = \"unused.png\"\n\n{}{}{}{}",
            ppocr_model(),
            query("display", "read", "ocr", ""),
            query("machine", "read", "ocr", "pattern = 'MACHINE\\s*(\\d+)'"),
            query("camera", "read", "ocr", "pattern = 'camera\\s*(\\d+)'"),
            query(
                "second_line",
                "read",
                "ocr",
                "region = [0.0, 0.5, 0.8, 0.9]"
            ),
        ),
    );
    let lines = ask_json(&media("ocr_synthetic_machine3.png"), &cfg, "1");
    assert_eq!(lines.len(), 1, "{lines:#?}");
    let line = &lines[0];
    let state = |id: &str| {
        eval(line, id)
            .unwrap_or_else(|| panic!("no {id} in {line:#}"))
            .get("state")
            .cloned()
            .unwrap_or(Value::Null)
    };
    assert_eq!(state("machine"), serde_json::json!(3.0), "{line:#}");
    assert_eq!(state("camera"), serde_json::json!(42.0), "{line:#}");
    let display = state("display").as_str().unwrap_or_default().to_string();
    // The recogniser's spacing varies ("MACHINE 3: L" + "LIGHT"): compare without it.
    assert!(
        squash(&display).contains("MACHINE3:LIGHTRED")
            && squash(&display).contains("Doorcamera42OK"),
        "{display:?}"
    );
    let second = state("second_line")
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert_eq!(squash(&second), "Doorcamera42OK", "{line:#}");
    let score = eval(line, "display").unwrap()["score"].as_f64().unwrap();
    assert!(score > 0.8 && score <= 1.0, "mean line confidence {score}");
}

#[test]
fn slow_queries_run_on_the_first_frame_and_on_a_scene_change_only() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(
        dir.path(),
        "scene.mkv",
        &[("astronaut.png", 3.0), ("ocr_synthetic_machine3.png", 3.0)],
    );
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}{}[[cameras]]\nrealtime = false\nid = \"cam\"\nurl = \"unused.mkv\"\n\n{}{}",
            engine_and_yolox(),
            ppocr_model(),
            person_query(""),
            query(
                "display",
                "read",
                "ocr",
                "every = \"1m\"\nmin_interval = \"1s\"\non_change = true"
            ),
        ),
    );
    let lines = ask_json(&clip, &cfg, "2");
    assert_eq!(lines.len(), 12, "{lines:#?}");
    // The per-frame detector answers on every sample.
    assert!(lines.iter().all(|l| eval(l, "person").is_some()));
    let read: Vec<(f64, String)> = lines
        .iter()
        .filter_map(|l| {
            let e = eval(l, "display")?;
            Some((
                l["pts"].as_f64().unwrap(),
                e["state"].as_str().unwrap_or_default().to_string(),
            ))
        })
        .collect();
    assert_eq!(read.len(), 2, "{read:?}");
    assert_eq!(read[0].0, 0.0);
    assert!((read[1].0 - 3.0).abs() < 0.01, "{read:?}");
    assert!(!squash(&read[0].1).contains("MACHINE"), "{read:?}");
    assert!(squash(&read[1].1).contains("MACHINE3"), "{read:?}");
}

fn reference(family: &str) -> Value {
    let path = root().join(format!("tests/fixtures/{family}/reference.json"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn captions_detections_answers_and_readings_reach_mqtt() {
    let florence = reference("florence2_tiny");
    let run = |task: &str| -> Value {
        florence["runs"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["image"] == "astronaut" && r["task"] == task)
            .unwrap()["post"]
            .clone()
    };
    let caption = run("<CAPTION>");
    let od = run("<OD>");
    let smol = reference("smolvlm_tiny");
    let case = |q: &str| -> Value {
        smol["cases"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["image"] == "astronaut.png" && c["question"] == q)
            .unwrap()
            .clone()
    };
    let person = case("Is there a person in the image?");
    let what = case("What is in the picture?");

    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}{}{}{}\
             [[cameras]]\nrealtime = false\nid = \"scene\"\nurl = {}\n\n{}\
             [[cameras.queries]]\nid = \"caption\"\nask = \"describe\"\nkind = \"caption\"\nmodel = \"florence\"\nmax_tokens = 20\n\n\
             [[cameras.queries]]\nid = \"things\"\nask = \"objects\"\nkind = \"detect\"\nmodel = \"florence\"\nmax_tokens = 20\n\n\
             [[cameras.queries]]\nid = \"someone\"\nask = \"Is there a person in the image?\"\nkind = \"yes_no\"\nmodel = \"smol\"\n\n\
             [[cameras.queries]]\nid = \"what\"\nask = \"What is in the picture?\"\nkind = \"answer\"\nmodel = \"smol\"\nmax_tokens = 16\n\n\
             [[cameras]]\nrealtime = false\nid = \"panel\"\nurl = {}\n\n{}",
            engine_and_yolox(),
            florence_model(),
            smolvlm_model(),
            ppocr_model(),
            toml_path(&media("astronaut.png")),
            person_query(""),
            toml_path(&media("ocr_synthetic_machine3.png")),
            query("machine", "read", "ocr", "pattern = 'MACHINE\\s*(\\d+)'"),
        ),
    );
    let broker = Mosquitto::start();
    let col = MqttCollector::new(&broker.url());
    let out = run_to_end(&cfg, &broker.url());
    out.assert_no_critical();
    let topic = |t: &str| format!("ocellus/{t}");
    let wanted = [
        "scene/caption",
        "scene/query/caption/state",
        "scene/query/things/state",
        "scene/query/someone/state",
        "scene/query/what/state",
        "panel/query/machine/state",
        // A first state goes out before its attributes.
        "scene/query/caption/attributes",
        "scene/query/someone/attributes",
    ];
    assert!(
        col.wait_for(
            |m| wanted.iter().all(|w| m.iter().any(|x| x.topic == topic(w))),
            Duration::from_secs(10)
        ),
        "{}",
        col.dump()
    );
    let last = |t: &str| col.last(&topic(t)).unwrap_or_else(|| panic!("no {t}"));

    // Florence-2: the caption (retained JSON and the query's state) and the boxes,
    // exactly what transformers' generate() + post_process_generation give.
    let cap = last("scene/caption").json();
    assert_eq!(cap["text"], caption, "{cap}");
    assert_eq!(cap["query"], "caption");
    assert_eq!(cap["model"], "florence");
    assert_eq!(
        last("scene/query/caption/state").text(),
        caption.as_str().unwrap()
    );
    let attrs = last("scene/query/caption/attributes").json();
    assert_eq!(attrs["text"], caption, "{attrs}");
    let labels = od["labels"].as_array().unwrap();
    assert_eq!(
        last("scene/query/things/state").text(),
        labels.len().to_string()
    );
    let dets: Vec<Value> = col
        .payloads(&topic("scene/detections"))
        .iter()
        .map(|p| serde_json::from_str(p).unwrap())
        .collect();
    let from_florence: Vec<&Value> = dets
        .iter()
        .flat_map(|m| m["detections"].as_array().unwrap())
        .filter(|d| d["model"] == "florence")
        .collect();
    let found: Vec<&Value> = from_florence.iter().map(|d| &d["label"]).collect();
    assert_eq!(found, labels.iter().collect::<Vec<_>>(), "{dets:#?}");
    // The per-frame detector's answer is published too (its own message).
    assert!(
        dets.iter().any(|m| m["detections"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["label"] == "person" && d.get("model").is_none())),
        "{dets:#?}"
    );
    assert_eq!(last("scene/query/person/state").text(), "ON");

    // SmolVLM: p(yes) from one decoder step, and a greedy answer.
    assert_eq!(last("scene/query/someone/state").text(), "ON");
    let p = last("scene/query/someone/attributes").json()["score"]
        .as_f64()
        .unwrap();
    assert!((p - person["p_yes"].as_f64().unwrap()).abs() < 1e-4, "{p}");
    assert_eq!(
        last("scene/query/what/state").text(),
        what["generated_text"].as_str().unwrap().trim()
    );

    // PP-OCR: the display's machine number as a sensor value.
    assert_eq!(last("panel/query/machine/state").text(), "3");
    let summary = out
        .stderr
        .lines()
        .find(|l| l.contains("camera scene: ") && l.contains("generative: "))
        .unwrap_or_else(|| panic!("no generative summary:\n{}", out.stderr));
    assert!(summary.contains("generative: 1 frames"), "{summary}");
}

#[test]
fn a_broken_slow_model_is_named_once_and_the_other_queries_go_on() {
    let dir = tempfile::tempdir().unwrap();
    // A Florence-2 folder without its decoder.
    let broken = dir.path().join("florence-broken");
    let fixture = root().join("tests/fixtures/florence2_tiny");
    std::fs::create_dir_all(broken.join("onnx")).unwrap();
    for f in [
        "tokenizer.json",
        "preprocessor_config.json",
        "generation_config.json",
        "onnx/vision_encoder.onnx",
        "onnx/embed_tokens.onnx",
        "onnx/encoder_model.onnx",
    ] {
        std::fs::copy(fixture.join(f), broken.join(f)).unwrap();
    }
    let cfg = write_config(
        dir.path(),
        &format!(
            "{ENGINE_ONE_THREAD}{}[models.florence]\nfamily = \"florence2\"\ndir = {}\n\n\
             [[cameras]]\nrealtime = false\nid = \"panel\"\nurl = \"unused.png\"\n\n{}{}",
            ppocr_model(),
            toml_path(&broken),
            query("caption", "caption", "florence", ""),
            query("machine", "read", "ocr", "pattern = 'MACHINE\\s*(\\d+)'"),
        ),
    );
    let check = run_ocellus(&["check", "-c", &cfg.to_string_lossy()], &[]);
    assert_eq!(check.code, Some(1), "{}", check.show());
    let decoder = broken.join("onnx/decoder_model_merged.onnx");
    assert!(
        check
            .stdout
            .lines()
            .any(|l| l.trim_start().starts_with("models.florence.decoder:")
                && l.contains(&*decoder.to_string_lossy())),
        "{}",
        check.show()
    );
    let out = run_ocellus(
        &[
            "ask",
            &media("ocr_synthetic_machine3.png").to_string_lossy(),
            "-c",
            &cfg.to_string_lossy(),
        ],
        &[],
    );
    out.assert_no_panic();
    assert_eq!(out.code, Some(1), "a query could not run: {}", out.show());
    let errors = out.log("ERROR");
    assert!(
        errors.iter().any(|l| l.contains("model florence")
            && l.contains(&*decoder.to_string_lossy())
            && !l.contains("query")),
        "{}",
        out.show()
    );
    assert!(
        errors
            .iter()
            .any(|l| l.contains("query caption") && l.contains("model florence")),
        "{}",
        out.show()
    );
    let lines = out.json_lines();
    assert_eq!(lines.len(), 1, "{}", out.show());
    let machine = eval(&lines[0], "machine").expect("the OCR query still runs");
    assert_eq!(machine["state"], serde_json::json!(3.0));
    assert!(eval(&lines[0], "caption").is_none());
}

/// The evaluator hands frames to the generative worker without ever waiting for it.
/// The test holds the model's vision session while the worker is answering frame 0,
/// so the worker is stuck; the evaluator must still get through frames 1..39 at
/// once, each replacing the one waiting (newest wins); released, the worker answers
/// frame 0 and then only the newest, frame 39.
#[test]
fn the_generative_worker_takes_the_newest_frame_and_never_holds_back_the_evaluator() {
    use std::sync::{Arc, Mutex, mpsc};

    use ocellus::cache::{EmbeddingCache, PromptCache};
    use ocellus::eval::{CameraWorker, WorkerContext};
    use ocellus::kit::Verdict;
    use ocellus::kit::metrics::CameraMetrics;
    use ocellus::kit::shutdown::Shutdown;
    use ocellus::kit::{Frame, Sample};
    use ocellus::model::{Loaded, Registry};
    use ocellus::query::ReportPool;

    let text = format!(
        "{ENGINE_ONE_THREAD}{}[[cameras]]\nrealtime = false\nid = \"cam\"\nurl = \"unused.mkv\"\n\n{}",
        florence_model(),
        query(
            "caption",
            "caption",
            "florence",
            "every = \"10ms\"\nmin_interval = \"10ms\"\nmax_tokens = 20"
        ),
    );
    let config = ocellus::app::config::parse(&text, Path::new("/tmp/ocellus.toml")).unwrap();
    let env = ocellus::engine::environment(&config.engine).unwrap();
    let models = Registry::load(
        &config.models,
        &config.engine,
        env,
        &Arc::new(PromptCache::default()),
    );
    let metrics = Arc::new(CameraMetrics::default());
    let ctx = WorkerContext {
        cache: Arc::new(EmbeddingCache::new(0)),
        metrics: metrics.clone(),
        lessons: Arc::default(),
    };
    let mut worker = CameraWorker::new(&config.cameras[0], &models, ctx);
    assert_eq!(worker.failed_queries(), 0);
    let answered: Arc<Mutex<Vec<(u64, usize)>>> = Arc::default();
    let sink = answered.clone();
    worker.start_generative(Shutdown::new(), move |r| {
        let captions = r.queries.iter().filter(|q| q.state.is_some()).count();
        sink.lock().unwrap().push((r.seq, captions));
    });
    let photo =
        ocellus::source::first_frame(&media("astronaut.png"), ocellus::kit::Pixels::Rgb).unwrap();
    let (w, h, stride, pixels) = (
        photo.width,
        photo.height,
        photo.stride,
        photo.data().to_vec(),
    );
    let pool = ReportPool::new(Arc::from("cam"), 2);
    let evaluate = move |worker: &mut CameraWorker, i: u64| {
        let mut frame = Frame::from_rgb(w, h, stride, pixels.clone());
        frame.seq = i;
        frame.pts = Duration::from_millis(100 * i);
        frame.verdict = Verdict::Changed(1.0);
        let mut report = pool.take();
        assert!(worker.evaluate(&Sample::Frame(frame), &mut report));
        assert_eq!(report.seq, i);
    };

    let Some(Loaded::Florence2 { sessions, .. }) = models.get("florence").map(|l| l.as_ref())
    else {
        panic!("florence not loaded: {:?}", models.failed());
    };
    let held = sessions.vision.lock();
    evaluate(&mut worker, 0);
    assert!(
        wait_until(Duration::from_secs(30), || metrics.slow_jobs.get() == 1),
        "the worker did not take frame 0"
    );
    // The worker is stuck on frame 0: the evaluator goes on regardless.
    let n = 40u64;
    let (done_tx, done) = mpsc::channel();
    let evaluator = std::thread::spawn(move || {
        for i in 1..n {
            evaluate(&mut worker, i);
        }
        let _ = done_tx.send(());
        worker
    });
    assert!(
        done.recv_timeout(Duration::from_secs(30)).is_ok(),
        "the evaluator waited for the slow lane"
    );
    assert_eq!(
        metrics.slow_replaced.get(),
        n - 2,
        "each frame replaced the one waiting"
    );
    drop(held);
    let mut worker = evaluator.join().unwrap();
    worker.stop_generative();

    let answered = answered.lock().unwrap().clone();
    assert_eq!(
        answered,
        vec![(0, 1), (n - 1, 1)],
        "frame 0, then only the newest"
    );
    assert_eq!(metrics.slow_jobs.get(), 2);
}
