//! The systemd unit and its installer: `systemd-analyze verify` passes with no
//! warning on the unit as shipped and as installed with device drop-ins,
//! `systemd-analyze security` rates its hardening, and `deploy/install.sh --root`
//! lays out the binary, the ONNX Runtime library, the unit, the drop-in and the config.
//! The log formats systemd sees (`--log-format json`, journald's stream) are checked
//! through the binary too.

use crate::common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::*;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn analyze(args: &[&str]) -> Output {
    Command::new("systemd-analyze")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("systemd-analyze: {e} (deploy/setup.sh installs systemd)"))
}

/// The shipped unit with ExecStart pointed at the binary under test.
fn unit_copy(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(repo().join("systemd/ocellus.service")).unwrap();
    assert!(text.contains("ExecStart=/usr/local/bin/ocellus run"));
    let path = dir.join("ocellus.service");
    std::fs::write(
        &path,
        text.replace("/usr/local/bin/ocellus", env!("CARGO_BIN_EXE_ocellus")),
    )
    .unwrap();
    path
}

#[test]
fn the_unit_verifies_without_warnings_and_is_hardened() {
    let dir = tempfile::tempdir().unwrap();
    let unit = unit_copy(dir.path());
    let out = analyze(&["verify", unit.to_str().unwrap()]);
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");

    let text = std::fs::read_to_string(&unit).unwrap();
    for line in [
        "Type=notify",
        "WatchdogSec=60s",
        "Restart=on-failure",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "DynamicUser=yes",
        "StateDirectory=ocellus",
        "ProtectSystem=strict",
        "ProtectHome=yes",
        "PrivateTmp=yes",
        "PrivateDevices=yes",
        "NoNewPrivileges=yes",
    ] {
        assert!(text.lines().any(|l| l == line), "the unit lacks {line}");
    }

    let out = analyze(&["security", "--offline=yes", unit.to_str().unwrap()]);
    let report = String::from_utf8_lossy(&out.stdout);
    let level: f64 = report
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for ocellus.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in:\n{report}"));
    eprintln!("systemd-analyze security: exposure {level}");
    assert!(level <= 2.5, "exposure {level} (was 1.9):\n{report}");
}

#[test]
fn install_lays_out_the_service_and_verifies_its_drop_in() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}[[cameras]]\nid = \"door\"\nurl = \"rtsp://10.0.0.20/stream1\"\n\n{}",
            engine_and_yolox(),
            person_query("")
        ),
    );
    let out = Command::new("bash")
        .arg(repo().join("deploy/install.sh"))
        .args(["--root", root.to_str().unwrap()])
        .args(["--binary", env!("CARGO_BIN_EXE_ocellus")])
        .args(["--config", cfg.to_str().unwrap()])
        .args(["--video", "--gpu", "nvidia"])
        .output()
        .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("systemd-analyze verify: ok"), "{said}");
    for f in [
        "usr/local/bin/ocellus",
        "usr/local/lib/ocellus/libonnxruntime.so",
        "usr/local/share/doc/ocellus/README.md",
        "etc/systemd/system/ocellus.service",
        "etc/ocellus/ocellus.toml",
    ] {
        assert!(root.join(f).exists(), "{f} not installed:\n{said}");
    }
    let dropin =
        std::fs::read_to_string(root.join("etc/systemd/system/ocellus.service.d/devices.conf"))
            .unwrap();
    for line in [
        "PrivateDevices=no",
        "DevicePolicy=closed",
        "DeviceAllow=char-video4linux rw",
        "DeviceAllow=char-nvidia-frontend rw",
        "DeviceAllow=char-nvidia-uvm rw",
    ] {
        assert!(dropin.lines().any(|l| l == line), "{dropin}");
    }

    // Installing again without devices removes the drop-in; a changed config is
    // written beside the running one, not over it.
    std::fs::write(
        &cfg,
        std::fs::read_to_string(&cfg).unwrap() + "\n# changed\n",
    )
    .unwrap();
    let out = Command::new("bash")
        .arg(repo().join("deploy/install.sh"))
        .args(["--root", root.to_str().unwrap()])
        .args(["--binary", env!("CARGO_BIN_EXE_ocellus")])
        .args(["--config", cfg.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(
        !root
            .join("etc/systemd/system/ocellus.service.d/devices.conf")
            .exists()
    );
    assert!(root.join("etc/ocellus/ocellus.toml.new").exists());

    // A config that fails `ocellus check` installs nothing.
    let bad = write_config(
        &dir.path().join("root"),
        "[[cameras]]\nrealtime = false\nid = \"x\"\n",
    );
    let out = Command::new("bash")
        .arg(repo().join("deploy/install.sh"))
        .args(["--root", dir.path().join("other").to_str().unwrap()])
        .args(["--binary", env!("CARGO_BIN_EXE_ocellus")])
        .args(["--config", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(!dir.path().join("other").exists());
}

#[test]
fn logs_as_json_lines_or_without_timestamps_under_journald() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}[[cameras]]\nrealtime = false\nid = \"door\"\nurl = \"/nowhere.mkv\"\n\n{}",
            engine_and_yolox(),
            person_query("")
        ),
    );
    let missing = dir.path().join("missing.png");
    let media = missing.to_str().unwrap();
    let cfg = cfg.to_str().unwrap();

    let out = run_ocellus(&["ask", media, "-c", cfg, "--log-format", "json"], &[]);
    let lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let error = lines
        .iter()
        .find(|l| l["level"] == "ERROR")
        .unwrap_or_else(|| panic!("{}", out.show()));
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .starts_with(&format!("camera door: {media}")),
        "{error}"
    );
    assert!(error["timestamp"].is_string(), "{error}");
    assert_eq!(
        error["camera"], "door",
        "the camera as a field too: {error}"
    );

    // journald: stderr is the stream $JOURNAL_STREAM names, so no timestamps.
    use std::os::unix::fs::MetadataExt;
    let log = dir.path().join("journal");
    let file = std::fs::File::create(&log).unwrap();
    let meta = file.metadata().unwrap();
    let stream = format!("{}:{}", meta.dev(), meta.ino());
    let status = Command::new(env!("CARGO_BIN_EXE_ocellus"))
        .args(["ask", media, "-c", cfg])
        .env("JOURNAL_STREAM", &stream)
        .env("OCELLUS_MODELS", models_dir())
        .stdout(std::process::Stdio::null())
        .stderr(file)
        .status()
        .unwrap();
    assert!(!status.success());
    let text = std::fs::read_to_string(&log).unwrap();
    let first = text.lines().next().unwrap_or_else(|| panic!("no log"));
    assert!(
        first.starts_with("INFO ") || first.starts_with(" INFO "),
        "a journald line starts with its level: {first:?}"
    );
    assert!(
        text.lines()
            .any(|l| l.contains(&format!("ERROR camera door: {media}"))),
        "{text}"
    );
}

/// `--log-format json` in the daemon: a line about one camera carries it as a
/// `camera` field (flattened beside `message`), one about a model as `model`, whether
/// the text names them too (a camera's summary, its failure) or not.
#[test]
fn json_log_lines_carry_the_camera_and_model_as_fields() {
    let dir = tempfile::tempdir().unwrap();
    let clip = media_clip(dir.path(), "door.mkv", &[("astronaut.png", 1.0)]);
    let missing = dir.path().join("missing.mkv");
    let cfg = write_config(
        dir.path(),
        &format!(
            "{}[[cameras]]\nrealtime = false\nid = \"door\"\nurl = {}\nsample_fps = 2\n\n{}\
             [[cameras]]\nrealtime = false\nid = \"gone\"\nurl = {}\n\n{}",
            engine_and_yolox(),
            toml_path(&clip),
            person_query(""),
            toml_path(&missing),
            person_query("")
        ),
    );
    let out = run_ocellus(
        &["run", "-c", cfg.to_str().unwrap(), "--log-format", "json"],
        &[],
    );
    out.assert_no_panic();
    let lines: Vec<serde_json::Value> = out
        .stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect();
    let message = |l: &serde_json::Value| l["message"].as_str().unwrap_or_default().to_string();
    let find = |what: &str, pred: &dyn Fn(&serde_json::Value) -> bool| {
        lines
            .iter()
            .find(|l| pred(l))
            .unwrap_or_else(|| panic!("no {what} line:\n{}", out.show()))
            .clone()
    };

    // Each camera's summary when it ended: the text as in plain logs.
    for cam in ["door", "gone"] {
        let summary = find("summary", &|l| {
            l["level"] == "INFO"
                && message(l).starts_with(&format!("camera {cam}: "))
                && message(l).contains(" decoded, ")
        });
        assert_eq!(summary["camera"], cam, "{summary}");
    }
    // The other camera's failure: its own camera.
    let failed = find("ERROR", &|l| l["level"] == "ERROR");
    assert_eq!(failed["camera"], "gone", "{failed}");
    assert!(message(&failed).starts_with("camera gone: "), "{failed}");
    // The model's session: the model only as a field.
    let session = find("model session", &|l| {
        l["model"] == "coco" && message(l).contains(" on ")
    });
    assert!(!message(&session).contains("model coco"), "{session}");
    // Every line with a camera names one of the two.
    for l in lines.iter().filter(|l| !l["camera"].is_null()) {
        assert!(l["camera"] == "door" || l["camera"] == "gone", "{l}");
    }
}
