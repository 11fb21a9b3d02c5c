//! ONNX Runtime sessions with execution-provider preference and logged fallback.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};

use ort::ep::{self, ExecutionProvider};
use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;

use super::{EngineError, Provider};

/// A session shared by every camera that uses the model; runs are serialised.
#[derive(Clone)]
pub struct SharedSession {
    inner: Arc<Mutex<Session>>,
    /// Provider the session runs on.
    pub provider: Provider,
}

impl SharedSession {
    pub fn lock(&self) -> MutexGuard<'_, Session> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The provider each opened session runs on, by (model, file name): the log says it
/// once at load, `/metrics` says it for as long as the model runs.
static CHOSEN: Mutex<BTreeMap<(String, String), &'static str>> = Mutex::new(BTreeMap::new());

/// (model, file name, provider) of every session opened so far; a model opened again
/// (a reload) replaces its entries.
pub fn chosen_providers() -> Vec<(String, String, &'static str)> {
    CHOSEN
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .iter()
        .map(|((m, f), p)| (m.clone(), f.clone(), *p))
        .collect()
}

/// Opens `file` for model `model`, trying `providers` in order. A provider that is
/// not built into this ONNX Runtime, or that fails to create the session, is skipped;
/// one line says which provider was chosen and why the others were not.
pub fn open(
    env: &ort::environment::Environment,
    model: &str,
    file: &Path,
    providers: &[Provider],
    threads: Option<usize>,
) -> Result<SharedSession, EngineError> {
    if !file.is_file() {
        return Err(EngineError::ModelMissing {
            model: model.into(),
            file: file.into(),
        });
    }
    open_graph(env, model, file, None, providers, threads)
}

/// As [`open`], for a graph already in memory (`bytes`: e.g. `file` rewritten by
/// [`free_batch`](super::free_batch)); `file` names it in messages.
pub fn open_bytes(
    env: &ort::environment::Environment,
    model: &str,
    file: &Path,
    bytes: &[u8],
    providers: &[Provider],
    threads: Option<usize>,
) -> Result<SharedSession, EngineError> {
    open_graph(env, model, file, Some(bytes), providers, threads)
}

fn open_graph(
    env: &ort::environment::Environment,
    model: &str,
    file: &Path,
    bytes: Option<&[u8]>,
    providers: &[Provider],
    threads: Option<usize>,
) -> Result<SharedSession, EngineError> {
    let mut skipped = Vec::new();
    let mut last_err = None;
    for &provider in providers {
        if let Some(why) = unavailable(provider) {
            skipped.push(format!("{}: {why}", provider.name()));
            continue;
        }
        match build(env, file, bytes, provider, threads) {
            Ok(session) => {
                if skipped.is_empty() {
                    tracing::info!(model = %model, "{} on {}", file.display(), provider.name());
                } else {
                    tracing::warn!(
                        model = %model,
                        "{} on {} ({})",
                        file.display(),
                        provider.name(),
                        skipped.join("; ")
                    );
                }
                let name = file
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                CHOSEN
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert((model.to_string(), name), provider.name());
                return Ok(SharedSession {
                    inner: Arc::new(Mutex::new(session)),
                    provider,
                });
            }
            Err(e) => {
                skipped.push(format!("{}: {e}", provider.name()));
                last_err = Some(e);
            }
        }
    }
    Err(EngineError::NoProvider {
        model: model.into(),
        file: file.into(),
        skipped: if providers.is_empty() {
            "none is configured".into()
        } else {
            skipped.join("; ")
        },
        source: last_err,
    })
}

/// The first of `providers` this ONNX Runtime has (a session may still fail to
/// start on it, and fall back to the next).
pub fn first_available(providers: &[Provider]) -> Option<Provider> {
    providers
        .iter()
        .copied()
        .find(|&p| unavailable(p).is_none())
}

fn unavailable(provider: Provider) -> Option<&'static str> {
    let available = match provider {
        Provider::Cpu => return None,
        Provider::Cuda => ep::CUDA::is_available(),
        Provider::Tensorrt => ep::TensorRT::is_available(),
    };
    match available {
        Ok(true) => None,
        Ok(false) => Some("not in this ONNX Runtime build"),
        Err(_) => Some("cannot query ONNX Runtime"),
    }
}

/// Where TensorRT keeps the engines it builds (minutes each on first start):
/// systemd's `$CACHE_DIRECTORY` (`CacheDirectory=`), else `$XDG_CACHE_HOME/ocellus`,
/// else `~/.cache/ocellus`, else the temporary directory — never a private `/tmp`
/// that a service restart empties when a cache directory exists.
pub(super) fn tensorrt_cache() -> std::path::PathBuf {
    let env = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty());
    let base = env("CACHE_DIRECTORY")
        // systemd lists several directories separated by ':'; the first is ours.
        .and_then(|v| {
            v.to_string_lossy()
                .split(':')
                .next()
                .map(std::path::PathBuf::from)
        })
        .or_else(|| env("XDG_CACHE_HOME").map(|d| std::path::PathBuf::from(d).join("ocellus")))
        .or_else(|| env("HOME").map(|h| std::path::PathBuf::from(h).join(".cache/ocellus")))
        .unwrap_or_else(|| std::env::temp_dir().join("ocellus"));
    base.join("tensorrt")
}

fn build(
    env: &ort::environment::Environment,
    file: &Path,
    bytes: Option<&[u8]>,
    provider: Provider,
    threads: Option<usize>,
) -> ort::Result<Session> {
    let mut builder =
        Session::builder(env)?.with_optimization_level(GraphOptimizationLevel::Level3)?;
    if let Some(n) = threads {
        builder = builder.with_intra_threads(n)?;
    }
    // The intra-op threads spin between the parallel parts of a run (fast), but
    // stop as soon as the run returns: between two frames a camera preprocesses,
    // decodes and publishes, and threads spinning then only burn the CPU those need.
    builder = builder.with_config_entry("session.force_spinning_stop", "1")?;
    let dispatch = match provider {
        Provider::Cpu => None,
        Provider::Cuda => Some(ep::CUDA::default().build().error_on_failure()),
        Provider::Tensorrt => Some(
            ep::TensorRT::default()
                .with_engine_cache(true)
                .with_engine_cache_path(tensorrt_cache().to_string_lossy())
                .build()
                .error_on_failure(),
        ),
    };
    if let Some(d) = dispatch {
        builder = builder.with_execution_providers([d])?;
    }
    match bytes {
        Some(b) => builder.commit_from_memory(b),
        None => builder.commit_from_file(file),
    }
}
