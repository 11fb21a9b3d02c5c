//! Bad input through the real `ocellus` binary (`ask`, `check`, `run`, `models pull`):
//! each must give one clear error line naming the camera / file / model and the
//! cause (or the right answer), never a panic, and nothing else stops: where the test
//! is a `run`, a second, good camera in the same daemon keeps publishing.
//!
//! Kind of bad input → test:
//!
//! | media                               | test                                           |
//! |-------------------------------------|------------------------------------------------|
//! | missing file                        | `missing_file` (ask, run, check)               |
//! | no permission                       | `unreadable_path` (a directory; mode 000 only when not root: root reads it) |
//! | zero bytes                          | `zero_byte_file` (ask, run + good camera)      |
//! | not media                           | `undecodable_file` (random bytes), `text_file_is_not_media` |
//! | truncated                           | `truncated_clip`                               |
//! | audio only                          | `audio_only_file` (ask, run + good camera); video with audio: `rtsp_stream_with_an_audio_track` |
//! | oversized frame (over `max_pixels`) | `oversized_frame_is_refused_before_decoding` (PNG header; clip in run + good camera) |
//! | codec with no decoder               | `codec_without_decoder`                        |
//! | 16-bit PNG                          | `sixteen_bit_png`                              |
//! | CMYK JPEG (decoded, via avdec_mjpeg) | `cmyk_jpeg` (a CMYK JPEG written here)        |
//! | EXIF rotation (honoured, as browsers do) | `exif_orientation_is_honoured`            |
//! | stream starting without a key frame | `stream_starting_without_a_key_frame`          |
//! | odd width, portrait, stills         | `odd_width_video`, `portrait_video`, `still_images` |
//!
//! | URLs                                | test                                           |
//! |-------------------------------------|------------------------------------------------|
//! | unknown scheme                      | `unknown_scheme`, `check_reports_every_problem_with_its_path` |
//! | DNS failure (`.invalid`)            | `dns_failure` (rtsp, http; run + good camera)  |
//! | connection refused                  | `connection_refused` (rtsp, http), `unreachable_rtsp_url` |
//! | RTSP 401, RTSP 404                  | `rtsp_401_and_404` (gst-rtsp-server with a login) |
//! | HTTP 404, HTTP serving HTML         | `http_404_and_html` (run + good camera)        |
//!
//! | models                              | test                                           |
//! |-------------------------------------|------------------------------------------------|
//! | missing                             | `missing_model_dir`                            |
//! | wrong shape                         | `wrong_shaped_model`                           |
//! | non-ONNX bytes, truncated ONNX      | `non_onnx_and_truncated_model_files`           |
//! | another family's folder             | `another_familys_folder`                       |
//! | unknown family                      | `unknown_model_family`                         |
//! | download larger than its pin        | `model_download_larger_than_its_pin`           |
//! | config problems, each with its path | `check_reports_every_problem_with_its_path`, `check_demo_pipeline` |
//!
//! Test media is made at test time (gst-launch-1.0, or bytes written here); none is
//! committed.

use crate::common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

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
             [[cameras]]\nrealtime = false\nid = \"door\"\nurl = {}\nsample_fps = 2\n\n{}\
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
realtime = false
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
realtime = false
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
        // A wrong type no longer hides the rest of its camera: the file is checked.
        "cameras[1].url:",
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

/// Issue 13's example: an unknown key in one section and one in a camera used to
/// hide every other problem (`check` gave one). Each structural problem leaves its
/// key out and the rest is still checked: all six are reported.
#[test]
fn check_reports_structural_and_semantic_problems_together() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        r#"
[mqtt]
url = "mqtt://127.0.0.1:1883"
bogus_key = 1
[[cameras]]
realtime = false
id = "a"
url = "file:///nonexistent.mp4"
sample_fps = -3
colour = "x"
[[cameras.queries]]
id = "q"
ask = "is there a person?"
model = "nope"
kind = "yes_no"
on = 0.3
off = 0.6
"#,
    );
    let out = run_ocellus(&["check", "-c", &cfg.to_string_lossy()], &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    out.assert_no_panic();
    let expected = [
        ("mqtt.bogus_key:", "unknown field"),
        ("cameras[0].colour:", "unknown field"),
        ("cameras[0].sample_fps:", "greater than 0"),
        ("cameras[0].url:", "/nonexistent.mp4 does not exist"),
        ("cameras[0].queries[0].model:", "nope"),
        ("cameras[0].queries[0].on:", "greater than off"),
    ];
    let lines: Vec<&str> = out.stdout.lines().skip(1).map(str::trim_start).collect();
    for (path, what) in expected {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(path) && l.contains(what)),
            "problem {path} ({what}) not reported:\n{}",
            out.show()
        );
    }
    assert!(
        out.stdout
            .starts_with(&format!("config {}: 6 problem(s):", cfg.display())),
        "{}",
        out.show()
    );
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
        out.stdout.contains("ok (1 cameras, 6 queries, 3 models)"),
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

/// On a terminal the log lines are coloured. With the test above: colour follows
/// whether stderr (not stdout, a pipe here) is a terminal, rather than never being
/// there.
#[test]
fn log_lines_are_coloured_when_stderr_is_a_terminal() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-clip.mkv");
    let cfg = good_config(dir.path());
    let out = run_ocellus_on_a_terminal(
        &[
            "ask",
            &missing.to_string_lossy(),
            "-c",
            &cfg.to_string_lossy(),
        ],
        &[],
    );
    assert_eq!(out.code, Some(1), "{}", out.show());
    let error = out
        .raw_stderr
        .lines()
        .find(|l| log_level(&strip_ansi(l)) == Some("ERROR"))
        .unwrap_or_else(|| panic!("no ERROR line on the terminal:\n{}", out.show()));
    assert!(
        error.contains("\x1b["),
        "stderr is a terminal but the ERROR line carries no colour codes: {error:?}"
    );
}

// ------------------------------------------------- more media, URLs, models

/// Writes test media with `gst-launch-1.0 -q HEAD ! filesink location=OUT` (HEAD's
/// paths must not hold spaces); never hangs (see `run_gst_launch`).
fn gst_make(out: &Path, head: &str) {
    run_gst_launch(out, clip_time_limit(5.0), |tmp| {
        let mut args: Vec<String> = head.split_whitespace().map(String::from).collect();
        args.extend(["!", "filesink"].map(String::from));
        args.push(format!("location={}", tmp.display()));
        args
    });
}

/// A config with camera `door` at `url` (plus `door_extra` keys) and camera `yard` at
/// a good clip, both asking for persons, for `run` without a broker.
fn two_cameras(dir: &Path, url: &str, door_extra: &str) -> PathBuf {
    let yard = media_clip(dir, "yard.mkv", &[("astronaut.png", 2.0)]);
    write_config(
        dir,
        &format!(
            "{}\
             [[cameras]]\nrealtime = false\nid = \"door\"\nurl = {}\n{door_extra}\n\n{}\
             [[cameras]]\nrealtime = false\nid = \"yard\"\nurl = {}\nsample_fps = 2\n\n{}",
            engine_and_yolox(),
            toml_str(url),
            person_query(""),
            toml_path(&yard),
            person_query(""),
        ),
    )
}

/// `run` with a bad camera `door` at `url` beside the good camera `yard`: exactly one
/// ERROR line, naming door, `url` and `cause`; door goes offline without ever being
/// online; yard keeps publishing (its person state and detections). Returns the
/// error line.
fn assert_run_isolates(dir: &Path, url: &str, door_extra: &str, cause: &str) -> String {
    let cfg = two_cameras(dir, url, door_extra);
    let out = run_ocellus(&["run", "-c", &cfg.to_string_lossy()], &[]);
    out.assert_no_panic();
    let line = one_error_naming(&out, url).to_string();
    assert!(
        line.contains(cause),
        "the error should say {cause:?}: {line}"
    );
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert!(
        lines.contains(&"ocellus/door/status offline"),
        "{}",
        out.show()
    );
    assert!(
        !lines.contains(&"ocellus/door/status online"),
        "{}",
        out.show()
    );
    assert!(
        lines.contains(&"ocellus/yard/query/person/state ON"),
        "the good camera must go on publishing:\n{}",
        out.show()
    );
    assert!(
        lines
            .iter()
            .filter(|l| l.starts_with("ocellus/yard/detections "))
            .count()
            >= 3,
        "{}",
        out.show()
    );
    line
}

/// The daemon with a live camera `door` at `url` that fails beside the good camera
/// `yard`: door is retried with backoff (a warning naming door, `url` and `cause`
/// each time, never an error line), yard publishes its answers meanwhile.
fn assert_daemon_isolates_live(dir: &Path, url: &str, cause: &str) {
    let cfg = two_cameras(dir, url, "reconnect_max = \"2s\"");
    let mut daemon = Daemon::start(&cfg, &[]);
    let published = daemon.wait_output(
        "ocellus/yard/query/person/state ON",
        Duration::from_secs(60),
    );
    let retried = daemon.wait_output("reconnecting in", Duration::from_secs(30));
    daemon.stop();
    let output = daemon.output();
    assert!(published, "the good camera must publish:\n{output}");
    assert!(retried, "the live camera is retried:\n{output}");
    let door: Vec<&str> = output
        .lines()
        .filter(|l| l.contains("camera door"))
        .filter(|l| log_level(l).is_some_and(|lvl| lvl == "WARN" || lvl == "ERROR"))
        .collect();
    assert!(!door.is_empty(), "{output}");
    for l in &door {
        assert!(
            l.contains(" WARN ") && l.contains(url) && l.contains(cause),
            "each retry is one warning naming door, {url} and {cause:?}: {l}"
        );
    }
    assert_no_panic("daemon", &output);
}

/// `ask URL`: one error line naming camera door, `url` and `cause`, exit 1.
fn assert_ask_fails_with(dir: &Path, url: &str, cause: &str) -> String {
    let out = assert_ask_fails(dir, url);
    let line = one_error_naming(&out, url).to_string();
    assert!(
        line.contains(cause),
        "the error should say {cause:?}: {line}"
    );
    line
}

/// CRC-32 (PNG chunks) and Adler-32 (zlib), bit by bit: test data is small.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = 0xffff_ffffu32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// An 8-bit grey PNG of `width`×`height` whose IDAT holds the first `rows` rows
/// (all mid-grey, zlib "stored" blocks): `rows == height` is a whole image, fewer
/// a header that promises more than the file holds.
fn grey_png(width: u32, height: u32, rows: u32) -> Vec<u8> {
    let mut raw = Vec::new();
    for _ in 0..rows {
        raw.push(0); // filter: none
        raw.extend(std::iter::repeat_n(128u8, width as usize));
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let n = block.len() as u16;
        z.extend(n.to_le_bytes());
        z.extend((!n).to_le_bytes());
        z.extend_from_slice(block);
    }
    z.extend(adler32(&raw).to_be_bytes());
    let chunk = |kind: &[u8], data: &[u8], out: &mut Vec<u8>| {
        out.extend((data.len() as u32).to_be_bytes());
        let mut body = kind.to_vec();
        body.extend_from_slice(data);
        out.extend_from_slice(&body);
        out.extend(crc32(&body).to_be_bytes());
    };
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = width.to_be_bytes().to_vec();
    ihdr.extend(height.to_be_bytes());
    ihdr.extend([8, 0, 0, 0, 0]); // 8-bit grey, deflate, no filter, no interlace
    chunk(b"IHDR", &ihdr, &mut png);
    chunk(b"IDAT", &z, &mut png);
    chunk(b"IEND", b"", &mut png);
    png
}

/// A baseline JPEG of `width`×`height` (multiples of 8) in one flat colour, one
/// sample per component (1: grey, 3: YCbCr, 4: CMYK with Adobe's APP14 marker, whose
/// CMYK is stored inverted, as Photoshop writes it): every 8×8 block holds only its
/// DC coefficient, so the scan is a few bits a block.
fn flat_jpeg(width: u16, height: u16, samples: &[u8]) -> Vec<u8> {
    let segment = |marker: u8, body: &[u8], out: &mut Vec<u8>| {
        out.extend([0xff, marker]);
        out.extend((body.len() as u16 + 2).to_be_bytes());
        out.extend_from_slice(body);
    };
    let n = samples.len() as u8;
    let mut out = vec![0xff, 0xd8];
    if n == 4 {
        // "Adobe", version 100, flags 0, 0, transform 0 (CMYK as is).
        segment(0xee, b"Adobe\x00\x64\x00\x00\x00\x00\x00", &mut out);
    }
    let mut dqt = vec![0u8];
    dqt.extend([1u8; 64]);
    segment(0xdb, &dqt, &mut out);
    let mut sof = vec![8];
    sof.extend(height.to_be_bytes());
    sof.extend(width.to_be_bytes());
    sof.push(n);
    for c in 1..=n {
        sof.extend([c, 0x11, 0]);
    }
    segment(0xc0, &sof, &mut out);
    // DC: the standard luminance table (categories 0..11); AC: end-of-block alone,
    // code `0`.
    let dc_bits = [0u8, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0];
    let mut dht = vec![0x00];
    dht.extend(dc_bits);
    dht.extend(0u8..12);
    dht.push(0x10);
    dht.push(1);
    dht.extend([0u8; 15]);
    dht.push(0);
    segment(0xc4, &dht, &mut out);
    let mut sos = vec![n];
    for c in 1..=n {
        sos.extend([c, 0x00]);
    }
    sos.extend([0, 63, 0]);
    segment(0xda, &sos, &mut out);
    // Canonical codes of the DC table.
    let mut codes = Vec::new();
    let mut code = 0u32;
    for (len, &count) in dc_bits.iter().enumerate() {
        for _ in 0..count {
            codes.push((code, len as u32 + 1));
            code += 1;
        }
        code <<= 1;
    }
    let mut bits: Vec<u8> = Vec::new();
    let put = |v: u32, len: u32, bits: &mut Vec<u8>| {
        for i in (0..len).rev() {
            bits.push(((v >> i) & 1) as u8);
        }
    };
    let blocks = usize::from(width / 8) * usize::from(height / 8);
    for b in 0..blocks {
        for &v in samples {
            // A flat block's DC is 8 × (sample − 128); later blocks repeat it.
            let diff: i32 = if b == 0 { 8 * (i32::from(v) - 128) } else { 0 };
            let cat = 32 - diff.unsigned_abs().leading_zeros();
            let (c, l) = codes[cat as usize];
            put(c, l, &mut bits);
            if cat > 0 {
                let extra = if diff > 0 {
                    diff
                } else {
                    diff + (1 << cat) - 1
                };
                put(extra as u32, cat, &mut bits);
            }
            put(0, 1, &mut bits); // end of block
        }
    }
    while !bits.len().is_multiple_of(8) {
        bits.push(1);
    }
    for byte in bits.chunks(8) {
        let b = byte.iter().fold(0u8, |acc, &x| acc << 1 | x);
        out.push(b);
        if b == 0xff {
            out.push(0);
        }
    }
    out.extend([0xff, 0xd9]);
    out
}

/// A CMYK JPEG (pure red: C 0, M 100 %, Y 100 %, K 0, stored inverted as Adobe
/// writes it) decodes to red: `jpegdec` cannot convert CMYK, so the pipeline takes
/// FFmpeg's decoder for it. A grey JPEG made the same way checks the writer.
#[test]
fn cmyk_jpeg() {
    use ocellus::kit::Pixels;
    use ocellus::source::first_frame;
    let dir = tempfile::tempdir().unwrap();
    let grey = dir.path().join("grey.jpg");
    fs::write(&grey, flat_jpeg(16, 16, &[200])).unwrap();
    let frame = first_frame(&grey, Pixels::Rgb).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        &frame.data()[..3],
        &[200, 200, 200],
        "the JPEG writer works"
    );

    let cmyk = dir.path().join("cmyk.jpg");
    fs::write(&cmyk, flat_jpeg(64, 48, &[255, 0, 0, 255])).unwrap();
    let frame = first_frame(&cmyk, Pixels::Rgb).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((frame.width, frame.height), (64, 48));
    let px = &frame.data()[..3];
    assert!(
        px[0] > 230 && px[1] < 25 && px[2] < 25,
        "a red CMYK JPEG decodes to red, got {px:?}"
    );
    let (out, frames) = ask_ok(&cmyk, &good_config(dir.path()));
    assert_eq!(frames.len(), 1, "{}", out.show());
    out.assert_no_critical();
}

#[test]
fn zero_byte_file() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.mkv");
    fs::write(&empty, b"").unwrap();
    let url = empty.to_string_lossy().to_string();
    assert_ask_fails_with(dir.path(), &url, "no data");
    assert_run_isolates(dir.path(), &url, "", "no data");
}

#[test]
fn text_file_is_not_media() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("notes.mp4");
    fs::write(&text, "These are meeting notes, not a video.\n".repeat(40)).unwrap();
    let url = text.to_string_lossy().to_string();
    assert_ask_fails_with(dir.path(), &url, "text file");
}

/// Tests run as root, which reads files whatever their mode: an unreadable file is
/// made with `chmod 000` and tried only when that actually stops this process (not
/// as root). A directory where a file should be is tried always.
#[test]
fn unreadable_path() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("clips");
    fs::create_dir(&folder).unwrap();
    let url = folder.to_string_lossy().to_string();
    assert_ask_fails_with(dir.path(), &url, "is a directory");

    let locked = dir.path().join("locked.mkv");
    fs::copy(media("astronaut.png"), &locked).unwrap();
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&locked, fs::Permissions::from_mode(0o000)).unwrap();
    if fs::File::open(&locked).is_ok() {
        eprintln!(
            "unreadable_path: running as root, which reads a mode-000 file: the permission case is skipped"
        );
        return;
    }
    let url = locked.to_string_lossy().to_string();
    assert_ask_fails_with(dir.path(), &url, "ermission");
}

#[test]
fn audio_only_file() {
    let dir = tempfile::tempdir().unwrap();
    let ogg = dir.path().join("sound.ogg");
    gst_make(
        &ogg,
        "audiotestsrc num-buffers=40 ! audioconvert ! vorbisenc ! oggmux",
    );
    let url = ogg.to_string_lossy().to_string();
    assert_ask_fails_with(dir.path(), &url, "no video stream (only audio/x-vorbis)");
    assert_run_isolates(dir.path(), &url, "", "no video stream");
}

/// A Matroska file whose video codec id was changed to one nobody decodes.
#[test]
fn codec_without_decoder() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(dir.path(), "h264.mkv", &[("astronaut.png", 1.0)]);
    let bytes = fs::read(&clip).unwrap();
    let (from, to) = (b"V_MPEG4/ISO/AVC", b"V_QQQQQ/ISO/AVC");
    let at = bytes
        .windows(from.len())
        .position(|w| w == from)
        .expect("an H.264 Matroska file names its codec");
    let mut patched = bytes.clone();
    patched[at..at + to.len()].copy_from_slice(to);
    let odd = dir.path().join("odd-codec.mkv");
    fs::write(&odd, patched).unwrap();
    let url = odd.to_string_lossy().to_string();
    let line = assert_ask_fails_with(dir.path(), &url, "Missing decoder");
    assert!(line.contains("V_QQQQQ/ISO/AVC"), "name the codec: {line}");
}

/// 16000×16000 pixels announced by a 1 KB PNG: refused from its header, before a
/// decoder allocates the 256 MB frame (without the bound `ask` took 0.94 GB on
/// such a file); a 64×64 PNG made the same way decodes. A clip over a lowered
/// `max_pixels` is refused the same way in `run`, and the other camera goes on.
#[test]
fn oversized_frame_is_refused_before_decoding() {
    let dir = tempfile::tempdir().unwrap();
    let small = dir.path().join("small.png");
    fs::write(&small, grey_png(64, 64, 64)).unwrap();
    let (out, frames) = ask_ok(&small, &good_config(dir.path()));
    assert_eq!(frames.len(), 1, "the crafted PNG decodes:\n{}", out.show());

    let huge = dir.path().join("huge.png");
    fs::write(&huge, grey_png(16_000, 16_000, 4)).unwrap();
    let url = huge.to_string_lossy().to_string();
    let line = assert_ask_fails_with(dir.path(), &url, "frame 16000x16000");
    assert!(
        line.contains("256000000 pixels")
            && line.contains(&format!("limit of {} pixels", 7680 * 4320))
            && line.contains("max_pixels")
            && line.contains("refused before decoding"),
        "{line}"
    );

    let clip = media_clip(dir.path(), "hd.mkv", &[("astronaut.png", 1.0)]);
    let url = clip.to_string_lossy().to_string();
    let line = assert_run_isolates(dir.path(), &url, "max_pixels = 200000", "frame 640x360");
    assert!(line.contains("limit of 200000 pixels"), "{line}");
}

/// A 16-bit greyscale PNG decodes (to 8 bits) and the person is still found.
#[test]
fn sixteen_bit_png() {
    let dir = tempfile::tempdir().unwrap();
    let deep = dir.path().join("deep.png");
    gst_make(
        &deep,
        &format!(
            "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format=GRAY16_BE ! pngenc",
            media("astronaut.png").display()
        ),
    );
    let bytes = fs::read(&deep).unwrap();
    assert_eq!(bytes[24], 16, "IHDR bit depth: a 16-bit PNG was made");
    let (out, frames) = ask_ok(&deep, &good_config(dir.path()));
    assert_eq!(frames.len(), 1, "{}", out.show());
    let (score, b) = best_box(&frames[0], "person");
    assert!(score > 0.6, "person score {score} in the 16-bit grey image");
    assert_box_sane(b, "astronaut, 16-bit grey");
    out.assert_no_critical();
}

/// Stills honour their EXIF orientation, as browsers show them: the astronaut is
/// stored turned a quarter left with orientation 6 ("rotate 90° clockwise to
/// show"), and is found upright where the upright JPEG has her. The same pixels
/// without the tag are a picture on its side.
#[test]
fn exif_orientation_is_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let astronaut = media("astronaut.png");
    let src = format!(
        "filesrc location={} ! pngdec ! videoflip video-direction=90l ! videoconvert ! jpegenc",
        astronaut.display()
    );
    let tagged = dir.path().join("tagged.jpg");
    gst_make(
        &tagged,
        &format!("{src} ! taginject tags=image-orientation=rotate-90 ! jifmux"),
    );
    let bytes = fs::read(&tagged).unwrap();
    assert!(
        bytes.windows(6).any(|w| w == b"Exif\0\0"),
        "the JPEG carries EXIF"
    );
    let untagged = dir.path().join("untagged.jpg");
    gst_make(&untagged, &format!("{src} ! jifmux"));
    let upright = dir.path().join("upright.jpg");
    gst_make(
        &upright,
        &format!(
            "filesrc location={} ! pngdec ! videoconvert ! jpegenc",
            astronaut.display()
        ),
    );
    let cfg = good_config(dir.path());
    let (_, want) = ask_ok(&upright, &cfg);
    let (_, want) = best_box(&want[0], "person");
    let (out, frames) = ask_ok(&tagged, &cfg);
    let (score, b) = best_box(&frames[0], "person");
    assert!(score > 0.8, "person score {score}:\n{}", out.show());
    assert_close(b, want, 0.03, "EXIF-rotated JPEG vs the upright one");
    let (_, sideways) = ask_ok(&untagged, &cfg);
    let upright_person = boxes(&sideways[0], "person")
        .into_iter()
        .any(|(s, b)| s > 0.5 && (b[0] - want[0]).abs() < 0.05 && (b[3] - want[3]).abs() < 0.05);
    assert!(
        !upright_person,
        "without the tag the picture is on its side: {}",
        sideways[0]
    );
}

/// An MPEG-TS cut in the middle of its first group of pictures: frames start at the
/// next key frame (no grey smear before it), the person is found in each.
#[test]
fn stream_starting_without_a_key_frame() {
    let dir = tempfile::tempdir().unwrap();
    let ts = dir.path().join("whole.ts");
    // 4 s at 10 fps, a key frame every 2 s, no B-frames.
    gst_make(
        &ts,
        &format!(
            "filesrc location={} ! pngdec ! imagefreeze num-buffers=40 ! video/x-raw,framerate=10/1 \
             ! videoconvert ! videoscale ! video/x-raw,width=320,height=320,format=I420 \
             ! x264enc key-int-max=20 bframes=0 speed-preset=ultrafast ! mpegtsmux",
            media("astronaut.png").display()
        ),
    );
    let bytes = fs::read(&ts).unwrap();
    // Drop the first eighth (0.5 s: after the first key frame, before the second),
    // at a 188-byte packet boundary.
    let cut = (bytes.len() / 188 / 8) * 188;
    let late = dir.path().join("late.ts");
    fs::write(&late, &bytes[cut..]).unwrap();
    let (out, frames) = ask_ok(&late, &good_config(dir.path()));
    assert!(!frames.is_empty(), "{}", out.show());
    let first = frames[0]["pts"].as_f64().unwrap();
    assert!(
        first >= 1.5,
        "the first frame ({first} s) comes from the second key frame (2 s):\n{}",
        out.show()
    );
    for f in &frames {
        assert!(best_box(f, "person").0 > 0.8, "{f}");
    }
    out.assert_no_critical();
}

#[test]
fn unknown_scheme() {
    let dir = tempfile::tempdir().unwrap();
    let url = "ftp://cameras.example/door.mkv";
    assert_ask_fails_with(dir.path(), url, "ftp");
}

/// `.invalid` never resolves (RFC 6761), so no packet leaves the machine.
#[test]
fn dns_failure() {
    let dir = tempfile::tempdir().unwrap();
    for url in [
        "rtsp://door-camera.invalid/stream",
        "http://door-camera.invalid/video.mjpg",
    ] {
        assert_ask_fails_with(
            dir.path(),
            url,
            "cannot resolve host \"door-camera.invalid\"",
        );
    }
    assert_daemon_isolates_live(
        dir.path(),
        "rtsp://door-camera.invalid/stream",
        "cannot resolve host",
    );
}

#[test]
fn connection_refused() {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    for scheme in ["rtsp", "http"] {
        let url = format!("{scheme}://127.0.0.1:{port}/x");
        assert_ask_fails_with(
            dir.path(),
            &url,
            &format!("connection refused by 127.0.0.1:{port}"),
        );
    }
}

/// An RTSP server that wants a login: without one it answers 401; with the right
/// one the same URL plays (so the 401 is the login, not the stream).
#[test]
fn rtsp_401_and_404() {
    let dir = tempfile::tempdir().unwrap();
    let mounts = vec![RtspMount {
        path: "/door".into(),
        launch: photo_launch_line(&media("astronaut.png")),
        protocols: RTSPLowerTrans::TCP,
    }];
    let server = RtspServer::start_on_free_port_with_auth(mounts, "viewer", "s3cret")
        .unwrap_or_else(|e| panic!("{e}"));
    let url = server.url("rtsp", "/door");
    assert_ask_fails_with(dir.path(), &url, "Unauthorized");
    let missing = server.url("rtsp", "/nowhere");
    assert_ask_fails_with(dir.path(), &missing, "Not Found");

    let with_login = url.replacen("rtsp://", "rtsp://viewer:s3cret@", 1);
    let cfg = config(dir.path(), &yolox_dir(), "", Path::new("unused"));
    let text = fs::read_to_string(&cfg).unwrap().replace(
        &format!("url = {}", toml_path(Path::new("unused"))),
        &format!("url = {}", toml_str(&with_login)),
    );
    fs::write(&cfg, text).unwrap();
    let mut daemon = Daemon::start(&cfg, &[]);
    let playing = daemon.wait_output(
        "ocellus/door/query/person/state ON",
        Duration::from_secs(60),
    );
    daemon.stop();
    assert!(
        playing,
        "with the login the stream plays:\n{}",
        daemon.output()
    );
}

/// HTTP: a 404, and a server that answers with a web page (a login or error page).
#[test]
fn http_404_and_html() {
    let dir = tempfile::tempdir().unwrap();
    let server = common::hub_server::HubServer::start();
    let page = server.add_direct(
        "login.html",
        b"<!DOCTYPE html>\n<html><head><title>Camera login</title></head>\
          <body><form><input name=\"password\"></form></body></html>\n"
            .repeat(4),
    );
    let missing = format!("{}/direct/no-such-stream.mjpg", server.endpoint());
    assert_ask_fails_with(dir.path(), &missing, "404");
    assert_ask_fails_with(dir.path(), &page, "not media: the source is text/html");
    assert_daemon_isolates_live(dir.path(), &page, "text/html");
}

/// A model file of random bytes, and the real detector cut in half: one line naming
/// the model and the file; no query runs.
#[test]
fn non_onnx_and_truncated_model_files() {
    let dir = tempfile::tempdir().unwrap();
    let real = yolox_dir().join("yolox_nano_416.onnx");
    let bytes = fs::read(&real).unwrap();
    let half = dir.path().join("half.onnx");
    fs::write(&half, &bytes[..bytes.len() / 2]).unwrap();
    let junk = dir.path().join("junk.onnx");
    fs::write(&junk, "this is not a model\n".repeat(100)).unwrap();
    for file in [&junk, &half] {
        let file_s = file.to_string_lossy().to_string();
        let cfg = config(
            dir.path(),
            &yolox_dir(),
            &format!("file = {}", toml_str(&file_s)),
            &dir.path().join("unused.mkv"),
        );
        let out = ask(&media("astronaut.png").to_string_lossy(), &cfg);
        out.assert_no_panic();
        let errors = out.log("ERROR");
        assert!(
            errors
                .iter()
                .any(|l| l.contains("model coco") && l.contains(&file_s) && !l.contains("query")),
            "no error line naming model coco and {file_s}:\n{}",
            out.show()
        );
        assert_no_query_ran(&out);
    }
}

/// A CLIP model pointed at the YOLOX folder: `check` names each file the family
/// needs that is not there.
#[test]
fn another_familys_folder() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{ENGINE_ONE_THREAD}[models.scene]\nfamily = \"clip\"\ndir = {}\n\n\
             [[cameras]]\nrealtime = false\nid = \"door\"\nurl = \"unused.mkv\"\n\n\
             [[cameras.queries]]\nid = \"indoor\"\nask = \"indoors?\"\nkind = \"yes_no\"\nmodel = \"scene\"\nno = [\"a street\"]\n",
            toml_path(&yolox_dir())
        ),
    );
    let out = run_ocellus(&["check", "-c", &cfg.to_string_lossy()], &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    out.assert_no_panic();
    for field in ["vision", "text", "tokenizer", "preprocessor"] {
        assert!(
            out.stdout.lines().any(|l| l
                .trim_start()
                .starts_with(&format!("models.scene.{field}:"))
                && l.contains(&*yolox_dir().to_string_lossy())),
            "models.scene.{field} not reported:\n{}",
            out.show()
        );
    }
}

/// `family = "gpt4"`: one problem at `models.coco.family` naming the known
/// families, and the queries using coco are not also reported as undefined.
#[test]
fn unknown_model_family() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{ENGINE_ONE_THREAD}[models.coco]\nfamily = \"gpt4\"\ndir = {}\n\n\
             [[cameras]]\nrealtime = false\nid = \"door\"\nurl = \"unused.mkv\"\n\n{}",
            toml_path(&yolox_dir()),
            person_query("")
        ),
    );
    let out = run_ocellus(&["check", "-c", &cfg.to_string_lossy()], &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    let problems: Vec<&str> = out.stdout.lines().skip(1).map(str::trim).collect();
    assert!(
        problems.contains(
            &"models.coco.family: unknown family \"gpt4\" (known: yolox, clip, florence2, smolvlm, ppocr, embedder, paligemma, qwen2vl, openai, ollama)"
        ),
        "{}",
        out.show()
    );
    assert!(
        !out.stdout.contains("is not defined"),
        "the query's model is defined, only wrong:\n{}",
        out.show()
    );
}

/// `models pull` of a file pinned at N bytes from a server that sends more: with a
/// `Content-Length` over the pin it is refused before reading; without one, reading
/// stops at the pin and the download is deleted.
#[test]
fn model_download_larger_than_its_pin() {
    use common::hub_server::{Faults, HubServer};
    let dir = tempfile::tempdir().unwrap();
    let server = HubServer::start();
    let model: Vec<u8> = (0..100_000u32).map(|i| (i * 7 % 251) as u8).collect();
    let mut served = model.clone();
    served.extend(std::iter::repeat_n(0u8, 4_000_000));
    let url = server.add_direct("big/model.onnx", served);
    let sha = ocellus::hub::hash::hex(&ocellus::hub::hash::sha256_of(&model));
    let catalog = dir.path().join("catalog.toml");
    fs::write(
        &catalog,
        format!(
            "[[model]]\nname = \"pinned\"\nfamily = \"yolox\"\ntitle = \"t\"\nlicence = \"MIT\"\n\
             source = \"the test server\"\nrevision = \"fixture\"\n\
             [[model.file]]\npath = \"model.onnx\"\nurl = \"{url}\"\nsha256 = \"{sha}\"\nsize = {}\n\
             [[model.file]]\npath = \"labels.txt\"\ninline = \"person\\n\"\n",
            model.len()
        ),
    )
    .unwrap();
    let models = dir.path().join("models");
    let pull = || {
        let out = run_ocellus(
            &[
                "models",
                "pull",
                "pinned",
                "--dir",
                &models.to_string_lossy(),
                "--catalog",
                &catalog.to_string_lossy(),
            ],
            &[("NO_PROXY", "127.0.0.1,localhost"), ("HF_TOKEN", "")],
        );
        out.assert_no_panic();
        assert_eq!(out.code, Some(1), "{}", out.show());
        let errors: Vec<&str> = out.log("ERROR");
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("model pinned") && l.contains("model.onnx"))
            .unwrap_or_else(|| panic!("no line naming the model and file:\n{}", out.show()))
            .to_string();
        assert!(errors.len() <= 1, "{}", out.show());
        let leftovers: Vec<_> = fs::read_dir(&models)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        let part = models.join("pinned/model.onnx.part");
        assert!(
            !part.exists() && !models.join("pinned/model.onnx").exists(),
            "{leftovers:?}"
        );
        line
    };
    let line = pull();
    assert!(
        line.contains(&format!("more than the {} bytes pinned", model.len()))
            && line.contains("refused before reading"),
        "{line}"
    );
    server.set_faults(
        "direct/big/model.onnx",
        Faults {
            no_length: true,
            ..Default::default()
        },
    );
    let line = pull();
    assert!(
        line.contains(&format!("runs past the {} bytes pinned", model.len()))
            && line.contains("stopped reading"),
        "{line}"
    );
}

/// Audio is never decoded now (`audio_only_file`): a live camera whose stream also
/// carries an audio track (its pad left unlinked) must keep delivering frames.
#[test]
fn rtsp_stream_with_an_audio_track() {
    let dir = tempfile::tempdir().unwrap();
    let mounts = vec![RtspMount {
        path: "/av".into(),
        launch: "( videotestsrc is-live=true ! video/x-raw,width=320,height=180,framerate=10/1 \
                 ! x264enc tune=zerolatency key-int-max=10 ! rtph264pay name=pay0 pt=96 \
                 audiotestsrc is-live=true ! audioconvert ! opusenc ! rtpopuspay name=pay1 pt=97 )"
            .into(),
        protocols: RTSPLowerTrans::TCP,
    }];
    let server = RtspServer::start_on_free_port(mounts).unwrap_or_else(|e| panic!("{e}"));
    let url = server.url("rtsp", "/av");
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}[[cameras]]\nrealtime = false\nid = \"door\"\nurl = {}\nchange_threshold = 0\n\n{}",
            engine_and_yolox(),
            toml_str(&url),
            person_query("")
        ),
    );
    let mut daemon = Daemon::start(&cfg, &[]);
    let seen = |d: &Daemon| {
        d.output()
            .lines()
            .filter(|l| l.starts_with("ocellus/door/detections "))
            .count()
    };
    let flowing = wait_until(Duration::from_secs(60), || seen(&daemon) >= 6);
    daemon.stop();
    let output = daemon.output();
    assert!(flowing, "frames must keep coming:\n{output}");
    assert!(
        !output.contains(" WARN ") && !output.contains(" ERROR "),
        "no warning about the audio track:\n{output}"
    );
}
