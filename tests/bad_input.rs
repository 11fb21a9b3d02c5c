//! Bad input through the real `ocellus` binary (`ask`, `check`, `run`): missing,
//! undecodable, truncated and unreachable media, missing and wrong models, malformed
//! configs, awkward frame shapes, and still images. Each must give one clear error line
//! (or the right answer), never a panic.

mod common;

use std::fs;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use common::*;

const TIMEOUT: Duration = Duration::from_secs(90);

// ------------------------------------------------------------------ helpers

struct Out {
    code: Option<i32>,
    stdout: String,
    /// stderr with colour codes removed.
    stderr: String,
    /// stderr as written.
    raw_stderr: String,
}

impl Out {
    fn show(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Log lines at `level` ("ERROR", "WARN", ...).
    fn log(&self, level: &str) -> Vec<&str> {
        self.stderr
            .lines()
            .filter(|l| l.split_whitespace().nth(1) == Some(level))
            .collect()
    }

    /// stdout parsed as one JSON object per line (panics on anything else).
    fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("stdout line is not JSON ({e}): {l:?}\n{}", self.show())
                })
            })
            .collect()
    }

    fn assert_no_panic(&self) {
        assert!(
            !self.stderr.contains("panicked") && !self.stdout.contains("panicked"),
            "the binary panicked:\n{}",
            self.show()
        );
    }
}

/// No GLib/GStreamer CRITICAL (a programming error) on any of these runs' stderr.
/// Checked last in each test, so that it does not hide the test's own findings.
fn assert_no_critical(outs: &[&Out]) {
    for out in outs {
        let criticals: Vec<&str> = out
            .stderr
            .lines()
            .filter(|l| l.contains("-CRITICAL **"))
            .collect();
        assert!(
            criticals.is_empty(),
            "{} GLib CRITICAL line(s) on stderr, the first: {:?}",
            criticals.len(),
            criticals[0]
        );
    }
}

/// Runs `ocellus ARGS` to completion (killed after `TIMEOUT`).
fn ocellus(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = Command::new(ocellus_bin());
    cmd.args(args);
    if std::env::var_os("OCELLUS_MODELS").is_none() {
        cmd.env("OCELLUS_MODELS", models_dir());
    }
    cmd.env("RUST_BACKTRACE", "1")
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let mut out_pipe = child.stdout.take().unwrap();
    let mut err_pipe = child.stderr.take().unwrap();
    let out_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = out_pipe.read_to_string(&mut s);
        s
    });
    let err_reader = thread::spawn(move || {
        let mut s = String::new();
        let _ = err_pipe.read_to_string(&mut s);
        s
    });
    let deadline = Instant::now() + TIMEOUT;
    let status = loop {
        if let Some(s) = child.try_wait().expect("wait for ocellus") {
            break Some(s);
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let raw_stderr = err_reader.join().unwrap_or_default();
    let out = Out {
        code: status.and_then(|s| s.code()),
        stdout,
        stderr: strip_ansi(&raw_stderr),
        raw_stderr,
    };
    assert!(
        status.is_some(),
        "ocellus {args:?} did not finish within {TIMEOUT:?}:\n{}",
        out.show()
    );
    eprintln!("ocellus {}\n{}", args.join(" "), out.show());
    out
}

/// Removes ANSI escape sequences (colour codes).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            if chars.peek() == Some(&'[') {
                chars.next();
                for c in chars.by_ref() {
                    if ('@'..='~').contains(&c) {
                        break;
                    }
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn toml_str(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

fn yolox_dir() -> PathBuf {
    models_dir().join("yolox_nano_coco")
}

/// A config with the YOLOX model `coco` (extra model keys in `model_extra`) and one
/// camera `door` at `url` asking for persons, cups and cats.
fn config(dir: &Path, model_dir: &Path, model_extra: &str, url: &Path) -> PathBuf {
    write_config(
        dir,
        &format!(
            "[engine]\nthreads = 1\n\n[models.coco]\nfamily = \"yolox\"\ndir = {}\nproviders = [\"cpu\"]\n{model_extra}\n\
             [[cameras]]\nid = \"door\"\nurl = {}\nsample_fps = 2\n\n\
             [[cameras.queries]]\nid = \"person\"\nask = \"is there a person?\"\nkind = \"yes_no\"\nmodel = \"coco\"\nlabel = \"person\"\n\n\
             [[cameras.queries]]\nid = \"cups\"\nask = \"how many cups?\"\nkind = \"count\"\nmodel = \"coco\"\nlabel = \"cup\"\n\n\
             [[cameras.queries]]\nid = \"cats\"\nask = \"how many cats?\"\nkind = \"count\"\nmodel = \"coco\"\nlabel = \"cat\"\n",
            toml_str(&model_dir.to_string_lossy()),
            toml_str(&url.to_string_lossy()),
        ),
    )
}

fn good_config(dir: &Path) -> PathBuf {
    config(dir, &yolox_dir(), "", &dir.join("unused.mkv"))
}

fn ask(media: &str, cfg: &Path) -> Out {
    ocellus(&["ask", media, "-c", &cfg.to_string_lossy()], &[])
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

/// `common::make_clip` with a time limit and retries: the same real GStreamer pipeline
/// (`common::clip_pipeline`), with `I420` replaced by `format` (`Y444` allows odd sizes).
/// Under heavy load `gst-launch-1.0` sometimes never finishes such a concat/imagefreeze
/// pipeline (every streaming thread idle, EOS never posted); a run that takes longer
/// than 45 s is killed and tried again.
fn make_clip_retrying(
    out: &Path,
    segments: &[(&Path, f64)],
    width: u32,
    height: u32,
    format: &str,
) {
    let ext = out
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or("mkv")
        .to_string();
    let mut failures = Vec::new();
    for attempt in 1..=3 {
        let tmp = out.with_extension(format!("try{attempt}.{ext}"));
        let log = out.with_extension(format!("try{attempt}.log"));
        let args: Vec<String> = clip_pipeline(out, &tmp, segments, width, height, 10)
            .into_iter()
            .map(|a| a.replace("format=I420", &format!("format={format}")))
            .collect();
        let mut child = Command::new("gst-launch-1.0")
            .arg("-q")
            .args(&args)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(fs::File::create(&log).expect("create gst-launch log"))
            .spawn()
            .expect("run gst-launch-1.0 (deploy/setup.sh installs it)");
        let deadline = Instant::now() + Duration::from_secs(45);
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait for gst-launch-1.0") {
                break Some(s);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            thread::sleep(Duration::from_millis(50));
        };
        let stderr = fs::read_to_string(&log).unwrap_or_default();
        let _ = fs::remove_file(&log);
        match status {
            Some(s) if s.success() && fs::metadata(&tmp).is_ok_and(|m| m.len() > 0) => {
                fs::rename(&tmp, out).expect("rename clip into place");
                return;
            }
            Some(s) => panic!(
                "gst-launch-1.0 failed ({s}) making {}\npipeline: {}\n{stderr}",
                out.display(),
                args.join(" ")
            ),
            None => {
                eprintln!(
                    "gst-launch-1.0 hung making {} (attempt {attempt}); trying again",
                    out.display()
                );
                failures.push(stderr);
                let _ = fs::remove_file(&tmp);
            }
        }
    }
    panic!(
        "gst-launch-1.0 hung 3 times making {}: {failures:?}",
        out.display()
    );
}

// -------------------------------------------------------------------- tests

#[test]
fn missing_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-clip.mkv");
    let missing_s = missing.to_string_lossy().to_string();

    let out = ask(&missing_s, &good_config(dir.path()));
    assert_eq!(out.code, Some(1), "{}", out.show());
    one_error_naming(&out, &missing_s);
    assert!(
        out.stdout.trim().is_empty(),
        "no frame, no JSON line:\n{}",
        out.show()
    );
    out.assert_no_panic();

    // The daemon without a broker prints what it would publish: the camera goes
    // offline without ever being online, and the exit code says it failed.
    let cfg = config(dir.path(), &yolox_dir(), "", &missing);
    let out = ocellus(&["run", "-c", &cfg.to_string_lossy()], &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    one_error_naming(&out, &missing_s);
    assert!(
        out.stdout
            .lines()
            .any(|l| l == "ocellus/door/status offline"),
        "{}",
        out.show()
    );
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
    out.assert_no_panic();

    // check finds it before anything runs.
    let out = ocellus(&["check", "-c", &cfg.to_string_lossy()], &[]);
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
    let junk_s = junk.to_string_lossy().to_string();

    let out = ask(&junk_s, &good_config(dir.path()));
    assert_eq!(out.code, Some(1), "{}", out.show());
    one_error_naming(&out, &junk_s);
    assert!(out.stdout.trim().is_empty(), "{}", out.show());
    out.assert_no_panic();

    let cfg = config(dir.path(), &yolox_dir(), "", &junk);
    let out = ocellus(&["run", "-c", &cfg.to_string_lossy()], &[]);
    assert_eq!(out.code, Some(1), "{}", out.show());
    one_error_naming(&out, &junk_s);
    assert!(
        out.stdout
            .lines()
            .any(|l| l == "ocellus/door/status offline"),
        "{}",
        out.show()
    );
    out.assert_no_panic();
}

#[test]
fn unreachable_rtsp_url() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("rtsp://127.0.0.1:{}/x", free_port());
    let out = ask(&url, &good_config(dir.path()));
    assert_eq!(out.code, Some(1), "{}", out.show());
    one_error_naming(&out, &url);
    assert!(out.stdout.trim().is_empty(), "{}", out.show());
    out.assert_no_panic();
}

#[test]
fn truncated_clip() {
    let dir = tempfile::tempdir().unwrap();
    let full = dir.path().join("six.mkv");
    make_clip_retrying(&full, &[(&media("astronaut.png"), 6.0)], 640, 360, "I420");
    let bytes = fs::read(&full).unwrap();
    let cut = dir.path().join("cut.mkv");
    fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    let cfg = good_config(dir.path());

    let whole = ask(&full.to_string_lossy(), &cfg);
    assert_eq!(whole.code, Some(0), "{}", whole.show());
    let whole_frames = whole.json_lines();
    assert_eq!(whole_frames.len(), 12, "6 s at 2 fps:\n{}", whole.show());
    whole.assert_no_panic();
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
    assert_no_critical(&[&whole, &out]);
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
    let frames = out.json_lines();
    assert_eq!(frames.len(), 1, "{}", out.show());
    assert_eq!(frames[0]["queries"], Value::Array(vec![]), "{}", out.show());
    assert!(frames[0].get("detections").is_none(), "{}", out.show());
    eprintln!("missing model: ask exits {:?}", out.code);
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.show());
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
        &format!("file = {}\n", toml_str(&yunet_s)),
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
    let frames = out.json_lines();
    assert_eq!(frames.len(), 1, "{}", out.show());
    assert_eq!(
        frames[0]["queries"],
        Value::Array(vec![]),
        "the queries must not run:\n{}",
        out.show()
    );
    assert!(frames[0].get("detections").is_none(), "{}", out.show());
    assert!(matches!(out.code, Some(0 | 1)), "{}", out.show());
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
            toml_str(&yolox_dir().to_string_lossy())
        ),
    );
    let out = ocellus(&["check", "-c", &cfg.to_string_lossy()], &[]);
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
    make_clip_retrying(&clip, &[(&media("astronaut.png"), 1.0)], 320, 180, "I420");
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/demo.toml");
    let models = models_dir();
    let models_s = models.to_string_lossy();
    let out = ocellus(
        &["check", "-c", &demo.to_string_lossy()],
        &[
            ("OCELLUS_DEMO_CLIP", &clip.to_string_lossy()),
            ("OCELLUS_MODELS", &models_s),
        ],
    );
    assert_eq!(out.code, Some(0), "{}", out.show());
    assert!(
        out.stdout.contains("ok (1 cameras, 3 queries, 1 models)"),
        "{}",
        out.show()
    );

    // The same with a clip that is not there: one problem, at the camera's url.
    let gone = dir.path().join("gone.mkv");
    let out = ocellus(
        &["check", "-c", &demo.to_string_lossy()],
        &[
            ("OCELLUS_DEMO_CLIP", &gone.to_string_lossy()),
            ("OCELLUS_MODELS", &models_s),
        ],
    );
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
    make_clip_retrying(&clip, &[(&chelsea, 2.0)], 451, 300, "Y444");
    let cfg = good_config(dir.path());
    let reference = ask(&chelsea.to_string_lossy(), &cfg);
    assert_eq!(reference.code, Some(0), "{}", reference.show());
    let (_, want) = best_box(&reference.json_lines()[0], "cat");

    let out = ask(&clip.to_string_lossy(), &cfg);
    assert_eq!(out.code, Some(0), "{}", out.show());
    out.assert_no_panic();
    let frames = out.json_lines();
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
        let cats = f["queries"]
            .as_array()
            .unwrap()
            .iter()
            .find(|q| q["id"] == "cats")
            .unwrap();
        assert_eq!(cats["state"], 1, "{f}");
    }
    assert_no_critical(&[&reference, &out]);
}

#[test]
fn portrait_video() {
    let dir = tempfile::tempdir().unwrap();
    let astronaut = media("astronaut.png");
    let clip = dir.path().join("portrait.mkv");
    // 512x512 letterboxed into 360x640: the picture is rows 140..500.
    make_clip_retrying(&clip, &[(&astronaut, 2.0)], 360, 640, "I420");
    let (top, bottom) = (140.0 / 640.0, 500.0 / 640.0);
    let cfg = good_config(dir.path());
    let reference = ask(&astronaut.to_string_lossy(), &cfg);
    let (_, r) = best_box(&reference.json_lines()[0], "person");
    // Where the reference box lands in the portrait frame.
    let scale = bottom - top;
    let want = [r[0], top + r[1] * scale, r[2], top + r[3] * scale];

    let out = ask(&clip.to_string_lossy(), &cfg);
    assert_eq!(out.code, Some(0), "{}", out.show());
    out.assert_no_panic();
    let frames = out.json_lines();
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
    assert_no_critical(&[&reference, &out]);
}

#[test]
fn still_images() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = good_config(dir.path());

    let astronaut = ask(&media("astronaut.png").to_string_lossy(), &cfg);
    assert_eq!(astronaut.code, Some(0), "{}", astronaut.show());
    let frames = astronaut.json_lines();
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
    let person = frames[0]["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["id"] == "person")
        .unwrap();
    assert!(person["score"].as_f64().unwrap() > 0.8, "{person}");

    let out = ask(&media("rocket.jpg").to_string_lossy(), &cfg);
    assert_eq!(out.code, Some(0), "{}", out.show());
    let frames = out.json_lines();
    assert_eq!(frames.len(), 1, "{}", out.show());
    let dets = frames[0]["detections"]
        .as_array()
        .unwrap_or_else(|| panic!("no detections array: {}", frames[0]));
    assert!(
        dets.iter().all(|d| d["score"].as_f64().unwrap() <= 0.35),
        "nothing on rocket.jpg should score above 0.35: {dets:?}"
    );
    out.assert_no_panic();
    astronaut.assert_no_panic();
    assert_no_critical(&[&astronaut, &out]);
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
