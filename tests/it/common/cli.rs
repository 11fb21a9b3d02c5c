//! One-shot runs of the `ocellus` binary (`ask`, `check`, `run` of files that end)
//! with their exit code and output.

use std::io::Read;
use std::process::{Child, Stdio};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::Value;

use super::{Pty, assert_no_critical, assert_no_panic, ocellus_command, strip_ansi, wait_or_kill};

/// The longest a one-shot run may take before it is killed and the test fails.
pub const RUN_LIMIT: Duration = Duration::from_secs(90);

/// What a finished run of the binary left.
pub struct Out {
    pub code: Option<i32>,
    pub stdout: String,
    /// stderr with colour codes removed.
    pub stderr: String,
    /// stderr as written.
    pub raw_stderr: String,
}

impl Out {
    /// Exit code, stdout and stderr, for assertion messages.
    pub fn show(&self) -> String {
        format!(
            "exit {:?}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }

    /// Log lines at `level` ("ERROR", "WARN", ...).
    pub fn log(&self, level: &str) -> Vec<&str> {
        super::log_lines(&self.stderr, level)
    }

    /// stdout parsed as one JSON object per line (panics on anything else).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| {
                serde_json::from_str(l).unwrap_or_else(|e| {
                    panic!("stdout line is not JSON ({e}): {l:?}\n{}", self.show())
                })
            })
            .collect()
    }

    pub fn assert_no_panic(&self) {
        assert_no_panic("the binary's output", &self.show());
    }

    /// No GLib/GStreamer CRITICAL on stderr. Checked last in a test, so that it
    /// does not hide the test's own findings.
    pub fn assert_no_critical(&self) {
        assert_no_critical("stderr", &self.stderr);
    }
}

/// Runs `ocellus ARGS` (see `ocellus_command`) with the extra environment `env` to
/// completion; panics when it takes longer than `RUN_LIMIT` (it is killed then).
pub fn run_ocellus(args: &[&str], env: &[(&str, &str)]) -> Out {
    let mut cmd = ocellus_command();
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    let err_reader = read_all(Box::new(child.stderr.take().unwrap()));
    finish(args, child, err_reader)
}

/// `run_ocellus` with stderr a terminal (a pseudo-terminal, `Pty`) rather than a
/// pipe; `raw_stderr` is what the terminal got, its line ends `\n`.
pub fn run_ocellus_on_a_terminal(args: &[&str], env: &[(&str, &str)]) -> Out {
    let pty = Pty::open();
    let mut cmd = ocellus_command();
    cmd.args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(pty.terminal());
    let child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e}"));
    // The command holds a copy of the terminal: reading ends when every copy is closed.
    drop(cmd);
    finish(args, child, pty.read_all())
}

fn read_all(mut pipe: Box<dyn Read + Send>) -> JoinHandle<String> {
    thread::spawn(move || {
        let mut s = String::new();
        let _ = pipe.read_to_string(&mut s);
        s
    })
}

/// Reads the child's stdout, waits for it (killed after `RUN_LIMIT`) and collects
/// what it wrote.
fn finish(args: &[&str], mut child: Child, err_reader: JoinHandle<String>) -> Out {
    let out_reader = read_all(Box::new(child.stdout.take().unwrap()));
    let status = wait_or_kill(&mut child, RUN_LIMIT);
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
        "ocellus {args:?} did not finish within {RUN_LIMIT:?}:\n{}",
        out.show()
    );
    eprintln!("ocellus {}\n{}", args.join(" "), out.show());
    out
}

/// `ocellus ask MEDIA -c CFG --sample-fps FPS`, which must succeed without critical
/// log lines; its JSON lines.
pub fn ask_json(media: &std::path::Path, cfg: &std::path::Path, sample_fps: &str) -> Vec<Value> {
    let out = run_ocellus(
        &[
            "ask",
            &media.to_string_lossy(),
            "-c",
            &cfg.to_string_lossy(),
            "--sample-fps",
            sample_fps,
        ],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.show());
    out.assert_no_critical();
    out.json_lines()
}

/// `ocellus run -c CFG --mqtt-url URL` of cameras that end by themselves; it must
/// exit 0.
pub fn run_to_end(cfg: &std::path::Path, mqtt_url: &str) -> Out {
    let out = run_ocellus(
        &["run", "-c", &cfg.to_string_lossy(), "--mqtt-url", mqtt_url],
        &[],
    );
    assert_eq!(out.code, Some(0), "{}", out.show());
    out
}
