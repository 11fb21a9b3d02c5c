//! The daemon under test as a child process: the binary and its command line
//! (`ocellus_bin`, `ocellus_command`, `ocellus_run_command`), its config file
//! (`write_config`), and a running process with its output collected (`Daemon`).

use std::fs;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::{lock, models_dir, wait_until};

/// The `ocellus` binary cargo built for these tests.
pub fn ocellus_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_ocellus"))
}

/// A command running `ocellus_bin()`, with `OCELLUS_MODELS` defaulting to
/// `models_dir()` and `RUST_BACKTRACE` to 1.
pub fn ocellus_command() -> Command {
    let mut cmd = Command::new(ocellus_bin());
    if std::env::var_os("OCELLUS_MODELS").is_none() {
        cmd.env("OCELLUS_MODELS", models_dir());
    }
    if std::env::var_os("RUST_BACKTRACE").is_none() {
        cmd.env("RUST_BACKTRACE", "1");
    }
    cmd
}

/// `ocellus run -c CONFIG EXTRA...` (see `ocellus_command`).
pub fn ocellus_run_command(config: &Path, extra: &[&str]) -> Command {
    let mut cmd = ocellus_command();
    cmd.arg("run").arg("-c").arg(config).args(extra);
    cmd
}

/// Writes `toml` to `DIR/ocellus.toml` and returns that path.
pub fn write_config(dir: &Path, toml: &str) -> PathBuf {
    let path = dir.join("ocellus.toml");
    fs::write(&path, toml).expect("write config");
    path
}

/// A child process (normally `ocellus run -c CONFIG ...`) whose stdout and
/// stderr are collected (and echoed to the test's stderr). Killed on drop.
pub struct Daemon {
    child: Child,
    name: String,
    output: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
    status: Option<ExitStatus>,
}

impl Daemon {
    /// `ocellus run -c CONFIG EXTRA...`
    pub fn start(config: &Path, extra: &[&str]) -> Self {
        Self::start_with_env(config, extra, &[])
    }

    /// `ocellus run -c CONFIG EXTRA...` with extra environment variables.
    /// `OCELLUS_MODELS` defaults to `models_dir()` and `RUST_BACKTRACE` to 1.
    pub fn start_with_env(config: &Path, extra: &[&str], env: &[(&str, &str)]) -> Self {
        let mut cmd = ocellus_run_command(config, extra);
        cmd.envs(env.iter().copied());
        Self::spawn("ocellus", cmd)
    }

    /// Any command, with the same output capture (used by the harness self-test).
    pub fn spawn(name: &str, mut cmd: Command) -> Self {
        cmd.stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name} ({cmd:?}): {e}"));
        let output = Arc::new(Mutex::new(String::new()));
        let pid = child.id();
        let mut readers = Vec::new();
        let streams: [(&str, Box<dyn Read + Send>); 2] = [
            ("out", Box::new(child.stdout.take().unwrap())),
            ("err", Box::new(child.stderr.take().unwrap())),
        ];
        for (stream, pipe) in streams {
            let out = Arc::clone(&output);
            let prefix = format!("[{name} {pid} {stream}]");
            readers.push(
                thread::Builder::new()
                    .name(format!("{name}-{stream}"))
                    .spawn(move || {
                        let mut r = BufReader::new(pipe);
                        let mut buf = Vec::new();
                        loop {
                            buf.clear();
                            match r.read_until(b'\n', &mut buf) {
                                Ok(0) | Err(_) => break,
                                Ok(_) => {
                                    let line = String::from_utf8_lossy(&buf);
                                    let line = line.trim_end_matches(['\n', '\r']);
                                    eprintln!("{prefix} {line}");
                                    let mut o = lock(&out);
                                    o.push_str(line);
                                    o.push('\n');
                                }
                            }
                        }
                    })
                    .expect("spawn output reader"),
            );
        }
        Daemon {
            child,
            name: name.to_string(),
            output,
            readers,
            status: None,
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// stdout and stderr so far, line by line, interleaved as they arrived.
    pub fn output(&self) -> String {
        lock(&self.output).clone()
    }

    /// Waits until the output contains `needle`.
    pub fn wait_output(&self, needle: &str, timeout: Duration) -> bool {
        wait_until(timeout, || lock(&self.output).contains(needle))
    }

    /// The exit status if the process has exited.
    pub fn try_status(&mut self) -> Option<ExitStatus> {
        if self.status.is_none()
            && let Ok(Some(s)) = self.child.try_wait()
        {
            self.status = Some(s);
            self.join_readers();
        }
        self.status
    }

    pub fn is_running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Waits up to `timeout` for the process to exit by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(s) = self.try_status() {
                return Some(s);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits up to `timeout` for the process to exit by itself; panics (after
    /// SIGKILL) with the collected output when it does not.
    pub fn expect_exit(&mut self, timeout: Duration) -> ExitStatus {
        match self.wait_exit(timeout) {
            Some(s) => s,
            None => self.kill_and_panic(&format!("did not exit by itself within {timeout:?}")),
        }
    }

    /// Sends a signal by name ("TERM", "INT", "HUP", ...) with `kill`.
    pub fn signal(&self, sig: &str) {
        let ok = Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.pid().to_string())
            .stderr(Stdio::null())
            .status()
            .map(|s| s.success())
            .unwrap_or(false);
        if !ok && self.status.is_none() {
            eprintln!("[{}] kill -{sig} {} failed", self.name, self.pid());
        }
    }

    /// SIGKILL, then waits for the process.
    pub fn kill_hard(&mut self) -> ExitStatus {
        if let Some(s) = self.try_status() {
            return s;
        }
        let _ = self.child.kill();
        let s = self.child.wait().expect("wait for killed child");
        self.status = Some(s);
        self.join_readers();
        s
    }

    /// SIGTERM and waits up to 10 s for a clean exit; panics (after SIGKILL)
    /// with the collected output when the process does not exit in time.
    pub fn stop(&mut self) -> ExitStatus {
        self.stop_within(Duration::from_secs(10))
    }

    pub fn stop_within(&mut self, timeout: Duration) -> ExitStatus {
        if let Some(s) = self.try_status() {
            return s;
        }
        self.signal("TERM");
        match self.wait_exit(timeout) {
            Some(s) => s,
            None => self.kill_and_panic(&format!("did not exit within {timeout:?} of SIGTERM")),
        }
    }

    fn kill_and_panic(&mut self, what: &str) -> ! {
        self.kill_hard();
        panic!(
            "{} (pid {}) {what}; its output:\n{}",
            self.name,
            self.pid(),
            self.output()
        );
    }

    /// Lets the reader threads drain the pipes (bounded: a grandchild could
    /// keep them open).
    fn join_readers(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(2);
        while self.readers.iter().any(|h| !h.is_finished()) && Instant::now() < deadline {
            thread::sleep(Duration::from_millis(5));
        }
        for h in std::mem::take(&mut self.readers) {
            if h.is_finished() {
                let _ = h.join();
            }
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if self.status.is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
