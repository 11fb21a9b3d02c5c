//! Bad input through the real `ocellus` binary (`ask`, `check`, `run`): missing,
//! undecodable, truncated and unreachable media, missing and wrong models, malformed
//! configs, awkward frame shapes, and still images. Each must give one clear error line
//! (or the right answer), never a panic.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;

use common::*;

// ------------------------------------------------------------------ helpers

/// A config with the YOLOX model `coco` at `model_dir` (extra model keys in
/// `model_extra`) and one camera `door` at `url` asking for persons, cups and cats.
fn config(dir: &Path, model_dir: &Path, model_extra: &str, url: &Path) -> PathBuf {
    write_config(
        dir,
        &format!(
            "{ENGINE_ONE_THREAD}{}\
             [[cameras]]\nid = \"door\"\nurl = {}\nsample_fps = 2\n\n{}\
             [[cameras.queries]]\nid = \"cups\"\nask = \"how many cups?\"\nkind = \"count\"\nmodel = \"coco\"\nlabel = \"cup\"\n\n\
             [[cameras.queries]]\nid = \"cats\"\nask = \"how many cats?\"\nkind = \"count\"\nmodel = \"coco\"\nlabel = \"cat\"\n",
            yolox_model(model_dir, model_extra),
            toml_path(url),
            person_query(""),
        ),
    )
}

fn good_config(dir: &Path) -> PathBuf {
    config(dir, &yolox_dir(), "", &dir.join("unused.mkv"))
}

fn ask(media: &str, cfg: &Path) -> Out {
    run_ocellus(&["ask", media, "-c", &cfg.to_string_lossy()], &[])
}

/// `ask MEDIA` with a config whose camera is fine: exit 1, exactly one ERROR line,
/// naming camera `door` and MEDIA, no JSON line, no panic.
fn assert_ask_fails(dir: &Path, media: &str) -> Out {
    let out = ask(media, &good_config(dir));
    assert_eq!(out.code, Some(1), "{}", out.show());
    one_error_naming(&out, media);
    assert!(
        out.stdout.trim().is_empty(),
        "no frame, no JSON line:\n{}",
        out.show()
    );
    out.assert_no_panic();
    out
}

/// `run` with camera `door` at `url` and no broker (what would be published goes to
/// stdout): exit 1, exactly one ERROR line naming the camera and `url`, the camera
/// goes offline, no panic.
fn assert_run_fails(dir: &Path, url: &Path) -> Out {
    let cfg = config(dir, &yolox_dir(), "", url);
    let out = run_ocellus(&["run", "-c", &cfg.to_string_lossy()], &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    one_error_naming(&out, &url.to_string_lossy());
    assert!(
        out.stdout
            .lines()
            .any(|l| l == "ocellus/door/status offline"),
        "{}",
        out.show()
    );
    out.assert_no_panic();
    out
}

/// `ask` over one image with a model that cannot load: the frame is reported (one
/// JSON line) but no query ran and nothing was detected, and the exit code says a
/// query could not run.
fn assert_no_query_ran(out: &Out) {
    let frames = out.json_lines();
    assert_eq!(frames.len(), 1, "{}", out.show());
    assert_eq!(
        frames[0]["queries"],
        Value::Array(vec![]),
        "the queries must not run:\n{}",
        out.show()
    );
    assert!(frames[0].get("detections").is_none(), "{}", out.show());
    assert_eq!(
        out.code,
        Some(1),
        "a configured query cannot run: exit 1\n{}",
        out.show()
    );
}

/// `ask MEDIA` that must work: exit 0, no panic; returns the output and its frames.
fn ask_ok(media: &Path, cfg: &Path) -> (Out, Vec<Value>) {
    let out = ask(&media.to_string_lossy(), cfg);
    assert_eq!(out.code, Some(0), "{}", out.show());
    out.assert_no_panic();
    let frames = out.json_lines();
    (out, frames)
}

/// Asserts exactly one ERROR line, naming camera `door` and `what`; returns it.
fn one_error_naming<'a>(out: &'a Out, what: &str) -> &'a str {
    let errors = out.log("ERROR");
    assert_eq!(
        errors.len(),
        1,
        "expected exactly one ERROR line:\n{}",
        out.show()
    );
    let line = errors[0];
    assert!(
        line.contains("camera door"),
        "the error line should name the camera: {line}"
    );
    assert!(
        line.contains(what),
        "the error line should name {what}: {line}"
    );
    line
}

fn boxes(frame: &Value, label: &str) -> Vec<(f64, [f64; 4])> {
    frame["detections"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .filter(|d| d["label"] == label)
        .map(|d| {
            let b: Vec<f64> = d["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap())
                .collect();
            (d["score"].as_f64().unwrap(), [b[0], b[1], b[2], b[3]])
        })
        .collect()
}

/// The answer of query `id` in a frame.
fn query<'a>(frame: &'a Value, id: &str) -> &'a Value {
    frame["queries"]
        .as_array()
        .unwrap_or_else(|| panic!("no queries array: {frame}"))
        .iter()
        .find(|q| q["id"] == id)
        .unwrap_or_else(|| panic!("no query {id} in {frame}"))
}

/// The best box of `label` in a frame.
fn best_box(frame: &Value, label: &str) -> (f64, [f64; 4]) {
    boxes(frame, label)
        .into_iter()
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .unwrap_or_else(|| panic!("no {label} detected in {frame}"))
}

fn assert_box_sane(b: [f64; 4], what: &str) {
    assert!(
        b.iter().all(|v| (0.0..=1.0).contains(v)),
        "{what}: box outside [0,1]: {b:?}"
    );
    assert!(b[0] < b[2] && b[1] < b[3], "{what}: degenerate box {b:?}");
}

fn assert_close(a: [f64; 4], b: [f64; 4], tol: f64, what: &str) {
    let d = a
        .iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max);
    assert!(
        d <= tol,
        "{what}: box {a:?} differs from {b:?} by {d:.3} (> {tol})"
    );
}

// -------------------------------------------------------------------- tests

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-clip.mkv");
    let missing_s = missing.to_string_lossy().to_string();
    assert_ask_fails(dir.path(), &missing_s);

    // The daemon without a broker prints what it would publish: the camera goes
    // offline without ever being online, and the exit code says it failed.
    let out = assert_run_fails(dir.path(), &missing);
    assert!(
        out.stdout.lines().any(|l| l == "ocellus/status offline"),
        "{}",
        out.show()
    );
    assert!(
        !out.stdout.contains("ocellus/door/status online"),
        "{}",
        out.show()
    );

    // check finds it before anything runs.
    let cfg = config(dir.path(), &yolox_dir(), "", &missing);
    let out = run_ocellus(&["check", "-c", &cfg.to_string_lossy()], &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("cameras[0].url:") && l.contains(&missing_s)),
        "{}",
        out.show()
    );
}

#[test]
fn undecodable_file() {
    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.mkv");
    // 256 KiB of reproducible pseudo-random bytes (xorshift).
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let bytes: Vec<u8> = (0..256 * 1024)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x >> 24) as u8
        })
        .collect();
    fs::write(&junk, bytes).unwrap();
    assert_ask_fails(dir.path(), &junk.to_string_lossy());
    assert_run_fails(dir.path(), &junk);
}

#[test]
fn unreachable_rtsp_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rtsp://127.0.0.1:{}/x", free_port());
    assert_ask_fails(dir.path(), &url);
}

#[test]
fn truncated_clip() {
    let dir = tempfile::tempdir().unwrap();
    let full = media_clip(dir.path(), "six.mkv", &[("astronaut.png", 6.0)]);
    let bytes = fs::read(&full).unwrap();
    let cut = dir.path().join("cut.mkv");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let cfg = good_config(dir.path());

    let (whole, whole_frames) = ask_ok(&full, &cfg);
    assert_eq!(whole_frames.len(), 12, "6 s at 2 fps:\n{}", whole.show());
    assert!(
        !whole.stderr.contains("truncated"),
        "an intact clip is not truncated:\n{}",
        whole.show()
    );

    let out = ask(&cut.to_string_lossy(), &cfg);
    out.assert_no_panic();
    let frames = out.json_lines();
    assert!(
        frames.len() >= 2 && frames.len() < whole_frames.len(),
        "expected some but not all of the {} frames, got {}:\n{}",
        whole_frames.len(),
        frames.len(),
        out.show()
    );
    // The frames before the damage are right: increasing pts, the person found.
    let mut last_pts = -1.0;
    for f in &frames {
        let pts = f["pts"].as_f64().unwrap();
        assert!(pts > last_pts, "pts not increasing:\n{}", out.show());
        last_pts = pts;
        assert!(best_box(f, "person").0 > 0.8, "{f}");
    }
    // stderr says where it stopped, naming the camera and the file.
    let cut_s = cut.to_string_lossy();
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("truncated") || l.contains("stopped after"))
        .unwrap_or_else(|| {
            panic!(
                "stderr does not say the clip was cut short:\n{}",
                out.show()
            )
        });
    assert!(
        line.contains("camera door") && line.contains(&*cut_s),
        "{line}"
    );
    if let Some(rest) = line.split("ended at ").nth(1) {
        // "ended at X s of Y s (truncated?)"
        let nums: Vec<f64> = rest
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        assert!(nums.len() >= 2, "{line}");
        assert!(
            nums[0] + 0.01 >= last_pts,
            "stopped at {} but printed a frame at {last_pts}: {line}",
            nums[0]
        );
        assert!((nums[1] - 6.0).abs() < 0.3, "the clip is 6 s long: {line}");
    }
    // What the binary does today: a cut-short file is a warning, exit 0.
    assert_eq!(out.code, Some(0), "{}", out.show());
    whole.assert_no_critical();
    out.assert_no_critical();
}

#[test]
fn missing_model_dir() {
    let dir = tempfile::tempdir().unwrap();
    let nowhere = dir.path().join("no-such-model-dir");
    let cfg = config(dir.path(), &nowhere, "", &dir.path().join("unused.mkv"));
    let out = ask(&media("astronaut.png").to_string_lossy(), &cfg);
    out.assert_no_panic();
    let nowhere_s = nowhere.to_string_lossy();
    let errors = out.log("ERROR");
    assert!(
        errors
            .iter()
            .any(|l| l.contains("model coco") && l.contains(&*nowhere_s)),
        "no error line naming model coco and {nowhere_s}:\n{}",
        out.show()
    );
    // Each query says it cannot run, and none runs.
    for q in ["person", "cups", "cats"] {
        assert!(
            errors
                .iter()
                .any(|l| l.contains(&format!("query {q}")) && l.contains("model coco")),
            "no error line for query {q}:\n{}",
            out.show()
        );
    }
    assert_no_query_ran(&out);
}

#[test]
fn wrong_shaped_model() {
    let dir = tempfile::tempdir().unwrap();
    let yunet = models_dir().join("yunet_face_120x160/face_detection_yunet_120x160.onnx");
    assert!(yunet.is_file(), "{} missing", yunet.display());
    let yunet_s = yunet.to_string_lossy().to_string();
    let cfg = config(
        dir.path(),
        &yolox_dir(),
        &format!("file = {}", toml_str(&yunet_s)),
        &dir.path().join("unused.mkv"),
    );
    let out = ask(&media("astronaut.png").to_string_lossy(), &cfg);
    out.assert_no_panic();
    let errors = out.log("ERROR");
    let model_line = errors
        .iter()
        .find(|l| l.contains("model coco") && l.contains(&yunet_s) && !l.contains("query"))
        .unwrap_or_else(|| {
            panic!(
                "no error line naming model coco and {yunet_s}:\n{}",
                out.show()
            )
        });
    assert!(
        model_line.contains("expected") || model_line.contains("shape"),
        "the line should say what is wrong with the model's inputs/outputs: {model_line}"
    );
    assert_no_query_ran(&out);
}

#[test]
fn check_reports_every_problem_with_its_path() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            r#"
[mqtt]
url = "http://broker"

[models.coco]
family = "yolox"
dir = {}

[[cameras]]
id = "front door"
url = "ftp://x"
sample_fps = 0

[[cameras.queries]]
id = "person"
ask = "is there a person?"
kind = "yes_no"
model = "coco"
on = 0.3
off = 0.5

[[cameras.queries]]
id = "cups"
ask = "how many cups?"
kind = "count"
model = "nope"
label = "cup"

[[cameras]]
id = "back"
url = "back.mkv"
queue = "many"
"#,
            toml_path(&yolox_dir())
        ),
    );
    let out = run_ocellus(&["check", "-c", &cfg.to_string_lossy()], &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    out.assert_no_panic();
    let expected = [
        "mqtt.url:",
        "cameras[0].id:",
        "cameras[0].url:",
        "cameras[0].sample_fps:",
        "cameras[0].queries[0].on:",
        "cameras[0].queries[0].label:",
        "cameras[0].queries[1].model:",
        "cameras[1].queue:",
    ];
    for path in expected {
        assert!(
            out.stdout.lines().any(|l| l.trim_start().starts_with(path)),
            "problem {path} not reported:\n{}",
            out.show()
        );
    }
    // Format: `config FILE: N problem(s):` then one `  path: message` line per problem.
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap_or_default();
    assert!(
        header.starts_with("config ") && header.contains(&*cfg.to_string_lossy()),
        "{header}"
    );
    let n: usize = header
        .rsplit(": ")
        .next()
        .and_then(|t| t.split_whitespace().next())
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(|| panic!("no problem count in {header:?}"));
    assert_eq!(n, expected.len(), "{}", out.show());
    let rest: Vec<&str> = lines.collect();
    assert_eq!(
        rest.len(),
        n,
        "expected exactly one line per problem after the header:\n{}",
        out.show()
    );
    for l in rest {
        assert!(
            l.starts_with("  ") && l.trim_start().contains(": ") && !l.trim().is_empty(),
            "not a `  path: message` line: {l:?}\n{}",
            out.show()
        );
    }
}

#[test]
fn check_demo_pipeline() {
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("demo.mkv");
    make_clip(&clip, &[(&media("astronaut.png"), 1.0)], 320, 180, 10);
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/demo.toml");
    let models = models_dir();
    // `ocellus check` of the demo pipeline with its clip at `clip`.
    let check_demo = |clip: &Path| {
        run_ocellus(
            &["check", "-c", &demo.to_string_lossy()],
            &[
                ("OCELLUS_DEMO_CLIP", &clip.to_string_lossy()),
                ("OCELLUS_MODELS", &models.to_string_lossy()),
            ],
        )
    };
    let out = check_demo(&clip);
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert!(
        out.stdout.contains("ok (1 cameras, 5 queries, 2 models)"),
        "{}",
        out.show()
    );

    // The same with a clip that is not there: one problem, at the camera's url.
    let gone = dir.path().join("gone.mkv");
    let out = check_demo(&gone);
    assert_eq!(out.code, Some(1), "{}", out.show());
    assert!(
        out.stdout
            .lines()
            .any(|l| l.trim_start().starts_with("cameras[0].url:")
                && l.contains(&*gone.to_string_lossy())),
        "{}",
        out.show()
    );
}

#[test]
fn odd_width_video() {
    let dir = tempfile::tempdir().unwrap();
    let chelsea = media("chelsea.png");
    let clip = dir.path().join("odd.mkv");
    // 451 px wide: RGB rows of 1353 bytes, padded to 1356 by GStreamer.
    // (Odd sizes are encoded 4:4:4.)
    make_clip(&clip, &[(&chelsea, 2.0)], 451, 300, 10);
    let cfg = good_config(dir.path());
    let (reference, reference_frames) = ask_ok(&chelsea, &cfg);
    let (_, want) = best_box(&reference_frames[0], "cat");

    let (out, frames) = ask_ok(&clip, &cfg);
    assert_eq!(frames.len(), 4, "2 s at 2 fps:\n{}", out.show());
    for f in &frames {
        let (score, b) = best_box(f, "cat");
        assert!(score > 0.45, "weak cat ({score}) in {f}");
        assert_box_sane(b, "cat in 451x300 clip");
        // Same picture, same place: a stride mix-up would shear the image.
        assert_close(b, want, 0.05, "cat in the odd-width clip vs chelsea.png");
        assert!(
            b[2] - b[0] > 0.5 && b[3] - b[1] > 0.5,
            "the cat fills most of the picture: {b:?}"
        );
        assert_eq!(query(f, "cats")["state"], 1, "{f}");
    }
    reference.assert_no_critical();
    out.assert_no_critical();
}

#[test]
fn portrait_video() {
    let dir = tempfile::tempdir().unwrap();
    let astronaut = media("astronaut.png");
    let clip = dir.path().join("portrait.mkv");
    // 512x512 letterboxed into 360x640: the picture is rows 140..500.
    make_clip(&clip, &[(&astronaut, 2.0)], 360, 640, 10);
    let (top, bottom) = (140.0 / 640.0, 500.0 / 640.0);
    let cfg = good_config(dir.path());
    let (reference, reference_frames) = ask_ok(&astronaut, &cfg);
    let (_, r) = best_box(&reference_frames[0], "person");
    // Where the reference box lands in the portrait frame.
    let scale = bottom - top;
    let want = [r[0], top + r[1] * scale, r[2], top + r[3] * scale];

    let (out, frames) = ask_ok(&clip, &cfg);
    assert_eq!(frames.len(), 4, "{}", out.show());
    for f in &frames {
        let (score, b) = best_box(f, "person");
        assert!(score > 0.8, "weak person ({score}) in {f}");
        assert_box_sane(b, "person in portrait clip");
        assert!(
            b[1] >= top - 0.02 && b[3] <= bottom + 0.02,
            "the person's box {b:?} leaves the picture area y {top:.3}..{bottom:.3}"
        );
        assert!(
            b[3] - b[1] > 0.8 * (want[3] - want[1]),
            "box too short: {b:?} vs {want:?}"
        );
        assert_close(
            b,
            want,
            0.05,
            "person in the portrait clip vs astronaut.png",
        );
    }
    reference.assert_no_critical();
    out.assert_no_critical();
}

#[test]
fn still_images() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = good_config(dir.path());

    let (astronaut, frames) = ask_ok(&media("astronaut.png"), &cfg);
    assert_eq!(
        frames.len(),
        1,
        "an image is one frame:\n{}",
        astronaut.show()
    );
    let (score, b) = best_box(&frames[0], "person");
    assert!(score > 0.8, "person score {score}");
    assert_box_sane(b, "astronaut");
    // MANIFEST: person box [11, 20, 368, 507] in the 512x512 image.
    assert_close(
        b,
        [11.0 / 512.0, 20.0 / 512.0, 368.0 / 512.0, 507.0 / 512.0],
        0.05,
        "astronaut",
    );
    let person = query(&frames[0], "person");
    assert!(person["score"].as_f64().unwrap() > 0.8, "{person}");

    let (out, frames) = ask_ok(&media("rocket.jpg"), &cfg);
    assert_eq!(frames.len(), 1, "{}", out.show());
    let dets = frames[0]["detections"]
        .as_array()
        .unwrap_or_else(|| panic!("no detections array: {}", frames[0]));
    assert!(
        dets.iter().all(|d| d["score"].as_f64().unwrap() <= 0.35),
        "nothing on rocket.jpg should score above 0.35: {dets:?}"
    );
    astronaut.assert_no_critical();
    out.assert_no_critical();
}

/// Logs go to a pipe or a file (systemd, docker) far more often than to a terminal:
/// then they must be plain text, without colour escape codes.
#[test]
fn log_lines_are_plain_text_when_stderr_is_not_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-clip.mkv");
    let out = ask(&missing.to_string_lossy(), &good_config(dir.path()));
    assert_eq!(out.code, Some(1));
    assert!(!out.raw_stderr.is_empty());
    assert!(
        !out.raw_stderr.contains('\x1b'),
        "stderr is a pipe but the log lines carry ANSI colour codes: {:?}",
        out.raw_stderr
            .lines()
            .find(|l| l.contains("ERROR"))
            .unwrap_or_default()
    );
}
