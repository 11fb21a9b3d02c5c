//! Loads the ONNX Runtime shared library once per process (`ort` with `load-dynamic`).

use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use super::{EngineConfig, EngineError};

static ENV: OnceLock<(PathBuf, ort::environment::Environment)> = OnceLock::new();

/// Held while the environment is being made: ONNX Runtime allows one per process, so
/// two threads asking for it at once (tests of one binary, say) must not both build one.
static LOADING: Mutex<()> = Mutex::new(());

/// Where `libonnxruntime.so` is looked for, first match wins: `[engine] onnxruntime`,
/// `$ORT_DYLIB_PATH`, `vendor/onnxruntime/lib` beside the binary's project, the
/// project this binary was built from, then the system's library path.
pub fn candidates(cfg: &EngineConfig) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Some(p) = &cfg.onnxruntime {
        out.push(p.clone());
        return out;
    }
    if let Some(p) = std::env::var_os("ORT_DYLIB_PATH").filter(|p| !p.is_empty()) {
        out.push(PathBuf::from(p));
        return out;
    }
    let vendored = Path::new("vendor/onnxruntime/lib/libonnxruntime.so");
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1).take(4) {
            out.push(dir.join(vendored));
        }
        if let Some(dir) = exe.parent() {
            out.push(dir.join("libonnxruntime.so"));
        }
    }
    out.push(Path::new(env!("CARGO_MANIFEST_DIR")).join(vendored));
    out.push(PathBuf::from("libonnxruntime.so"));
    out
}

/// Loads ONNX Runtime (once) and returns the process-wide environment.
pub fn environment(
    cfg: &EngineConfig,
) -> Result<&'static ort::environment::Environment, EngineError> {
    if let Some((_, env)) = ENV.get() {
        return Ok(env);
    }
    let _loading = LOADING.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, env)) = ENV.get() {
        return Ok(env);
    }
    let tried = candidates(cfg);
    let path = tried
        .iter()
        .find(|p| p.is_file() || (p.components().count() == 1))
        .cloned()
        .ok_or_else(|| EngineError::LibraryMissing {
            path: tried.first().cloned().unwrap_or_default(),
        })?;
    let builder = ort::init_from(&path).map_err(|source| EngineError::LibraryLoad {
        path: path.clone(),
        source,
    })?;
    let env = builder
        .with_name("ocellus")
        .with_telemetry(false)
        .build()
        .map_err(|source| EngineError::Library {
            path: path.clone(),
            source,
        })?;
    tracing::info!("ONNX Runtime loaded from {}", path.display());
    let (_, env) = ENV.get_or_init(|| (path, env));
    Ok(env)
}
