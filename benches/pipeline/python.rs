//! The everyday alternative of scenario "every": `scripts/bench/python_loop.py`
//! (OpenCV decode, NumPy letterbox, onnxruntime) in a virtual environment made once
//! under `target/ocellus-bench/pyenv` with pinned packages and reused.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::measure::{ChildRun, Usage, run_child, tail};

/// The packages, pinned (onnxruntime as the daemon's vendored library).
pub const PINS: [&str; 3] = [
    "numpy==2.4.6",
    "opencv-python-headless==5.0.0.93",
    "onnxruntime==1.32.0",
];

/// Written into the environment once every pinned package is installed.
const MARKER: &str = "ocellus-bench-pins.txt";
const INSTALL_LIMIT: Duration = Duration::from_secs(900);
const RUN_LIMIT: Duration = Duration::from_secs(900);

/// The environment's python, made (or remade, when the pins changed) first.
/// `$OCELLUS_BENCH_PYTHON` is the interpreter that makes it (default `python3`).
pub fn ensure_env(dir: &Path, ticks: f64) -> Result<PathBuf, String> {
    let env = dir.join("pyenv");
    let python = env.join("bin").join("python");
    let pins = PINS.join("\n");
    if python.is_file() && fs::read_to_string(env.join(MARKER)).is_ok_and(|m| m.trim() == pins) {
        eprintln!("bench: reusing {}", env.display());
        return Ok(python);
    }
    eprintln!("bench: making {} ({})", env.display(), PINS.join(" "));
    if env.exists() {
        fs::remove_dir_all(&env).map_err(|e| format!("remove {}: {e}", env.display()))?;
    }
    let base = std::env::var_os("OCELLUS_BENCH_PYTHON").unwrap_or_else(|| "python3".into());
    let step = |what: &str, run: Result<ChildRun, String>| -> Result<(), String> {
        let run = run?;
        run.check(what)
            .map_err(|e| format!("{e}\nstdout: {}", tail(&run.stdout, 1500)))
    };
    step(
        "python3 -m venv",
        run_child(
            Command::new(&base).arg("-m").arg("venv").arg(&env),
            INSTALL_LIMIT,
            ticks,
        ),
    )?;
    step(
        "pip install",
        run_child(
            Command::new(&python)
                .args(["-m", "pip", "install", "--disable-pip-version-check", "-q"])
                .args(PINS),
            INSTALL_LIMIT,
            ticks,
        ),
    )?;
    fs::write(env.join(MARKER), format!("{pins}\n")).map_err(|e| format!("write {MARKER}: {e}"))?;
    Ok(python)
}

/// The loop script.
pub fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scripts")
        .join("bench")
        .join("python_loop.py")
}

/// Runs the loop over `clip`; its usage and what it printed.
pub fn run(
    python: &Path,
    clip: &Path,
    model: &Path,
    threads: usize,
    ticks: f64,
) -> Result<(Usage, Value), String> {
    let run = run_child(
        Command::new(python)
            .arg(script())
            .arg("--model")
            .arg(model)
            .arg("--threads")
            .arg(threads.to_string())
            .arg(clip)
            .env_remove("PYTHONPATH"),
        RUN_LIMIT,
        ticks,
    )?;
    run.check(&format!("python_loop.py {}", clip.display()))?;
    let report: Value = run
        .stdout
        .lines()
        .rev()
        .find_map(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| format!("python_loop.py printed no JSON: {}", run.stdout))?;
    eprintln!(
        "bench: python loop {}: {} frames, {:.2} s wall, {:.2} s CPU",
        clip.display(),
        report["frames"],
        run.usage.wall_s,
        run.usage.cpu_s
    );
    Ok((run.usage, report))
}
