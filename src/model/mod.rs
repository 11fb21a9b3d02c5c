//! Models: one folder per family, each with its own config and IO contract. A model
//! never owns its ONNX sessions: [`Registry::load`] opens them through the engine and
//! hands them to the model at each call.
//!
//! Each loaded model's image path runs on its own engine thread ([`Batcher`]), which
//! batches frames across cameras.
//!
//! ```no_run
//! let config = ocellus::app::config::load("pipelines/demo.toml".as_ref()).unwrap();
//! let env = ocellus::engine::environment(&config.engine).unwrap();
//! let prompts = std::sync::Arc::new(ocellus::cache::PromptCache::default());
//! let models = ocellus::model::Registry::load(&config, env, &prompts);
//! for (name, why) in models.failed() { eprintln!("{name}: {why}") }
//! ```

mod cancel;
pub mod clip;
mod config;
pub mod florence2;
pub mod ppocr;
pub mod preprocessor;
pub mod smolvlm;
pub mod yolox;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

pub use cancel::{Cancel, RunError};
pub use config::{ClipConfig, ClipModelType, ModelConfig, YoloxConfig};

use crate::app::config::Config;
use crate::cache::PromptCache;
use crate::engine::{Batcher, EngineConfig, EngineError};

/// How long one model call's steps took.
#[derive(Debug, Clone, Copy, Default)]
pub struct Stages {
    pub preprocess: Duration,
    /// Waiting for the engine thread and the (batched) run.
    pub infer: Duration,
    pub postprocess: Duration,
}

/// One detected object; `bbox` is normalised `[x0, y0, x1, y1]` in the frame.
#[derive(Debug, Clone, Serialize)]
pub struct Detection {
    #[serde(skip)]
    pub class: usize,
    pub label: Arc<str>,
    pub score: f32,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
    /// The model that found it, for detections of slow models (florence2) that share
    /// the camera's detections topic with the per-frame detector.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<Arc<str>>,
}

#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("model {model}: {}: {cause}", file.display())]
    Load {
        model: String,
        file: PathBuf,
        cause: String,
    },
    #[error("model {model}: {cause}")]
    Run { model: String, cause: String },
    /// Stopped by its [`Cancel`] (the slow lane is closing).
    #[error("model {model}: cancelled")]
    Cancelled { model: String },
    /// A prompt longer than the model takes, refused before any ONNX work.
    #[error("model {model}: {what} has {tokens} tokens, more than the {limit} it may have")]
    TooLong {
        model: String,
        what: &'static str,
        tokens: usize,
        limit: usize,
    },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// A loaded model with its sessions and the engine thread of its image path.
pub enum Loaded {
    Yolox {
        model: yolox::Yolox,
        engine: Batcher,
    },
    Clip {
        model: Box<clip::Clip>,
        sessions: clip::ClipSessions,
        engine: Batcher,
    },
    Florence2 {
        model: Box<florence2::Florence2>,
        sessions: florence2::Florence2Sessions,
    },
    Smolvlm {
        model: Box<smolvlm::SmolVlm>,
        sessions: smolvlm::SmolVlmSessions,
    },
    Ppocr {
        model: Box<ppocr::Ppocr>,
        sessions: ppocr::PpocrSessions,
    },
}

impl Loaded {
    /// Slow models run at each query's cadence on the camera's slow lane.
    pub fn is_slow(&self) -> bool {
        self.engine().is_none()
    }

    /// The engine thread that batches this model's frames across cameras; `None` for
    /// slow models, which each camera's slow lane calls directly.
    pub fn engine(&self) -> Option<&Batcher> {
        match self {
            Loaded::Yolox { engine, .. } | Loaded::Clip { engine, .. } => Some(engine),
            Loaded::Florence2 { .. } | Loaded::Smolvlm { .. } | Loaded::Ppocr { .. } => None,
        }
    }
}

/// Every model of a config that could be loaded; the others with their one-line error.
#[derive(Default)]
pub struct Registry {
    loaded: BTreeMap<String, Arc<Loaded>>,
    failed: BTreeMap<String, String>,
}

impl Registry {
    /// Loads each model named in the config; a model that fails is logged and skipped.
    /// Prompt embeddings (CLIP prompts, Florence-2 task prompts, SmolVLM questions) go
    /// through `prompts`, which outlives a config reload.
    pub fn load(
        config: &Config,
        env: &ort::environment::Environment,
        prompts: &Arc<PromptCache>,
    ) -> Self {
        let mut reg = Self::default();
        for (name, cfg) in &config.models {
            let mut cfg = cfg.clone();
            cfg.default_threads(config.engine.threads);
            match Self::load_one(name, &cfg, env, &config.engine, prompts) {
                Ok(m) => {
                    reg.loaded.insert(name.clone(), Arc::new(m));
                }
                Err(e) => {
                    tracing::error!(model = %name, "{e}");
                    reg.failed.insert(name.clone(), e.to_string());
                }
            }
        }
        reg
    }

    /// The models of `new` for a reload: a model whose config (and the engine's) is
    /// unchanged keeps running as it is, the others are loaded anew (a failure is
    /// logged and recorded like at start). Also returns the names that changed:
    /// added, reloaded or removed.
    pub fn reload(
        &self,
        old: &Config,
        new: &Config,
        env: &ort::environment::Environment,
        prompts: &Arc<PromptCache>,
    ) -> (Self, std::collections::BTreeSet<String>) {
        let mut reg = Self::default();
        let mut changed = std::collections::BTreeSet::new();
        for (name, cfg) in &new.models {
            let same = old.engine == new.engine && old.models.get(name) == Some(cfg);
            if same {
                if let Some(m) = self.loaded.get(name) {
                    reg.loaded.insert(name.clone(), m.clone());
                    continue;
                }
                if let Some(e) = self.failed.get(name) {
                    reg.failed.insert(name.clone(), e.clone());
                    continue;
                }
            }
            changed.insert(name.clone());
            let mut cfg = cfg.clone();
            cfg.default_threads(new.engine.threads);
            match Self::load_one(name, &cfg, env, &new.engine, prompts) {
                Ok(m) => {
                    tracing::info!(model = %name, "model loaded");
                    reg.loaded.insert(name.clone(), Arc::new(m));
                }
                Err(e) => {
                    tracing::error!(model = %name, "{e}");
                    reg.failed.insert(name.clone(), e.to_string());
                }
            }
        }
        changed.extend(
            old.models
                .keys()
                .filter(|n| !new.models.contains_key(*n))
                .cloned(),
        );
        (reg, changed)
    }

    fn load_one(
        name: &str,
        cfg: &ModelConfig,
        env: &ort::environment::Environment,
        engine: &EngineConfig,
        prompts: &Arc<PromptCache>,
    ) -> Result<Loaded, ModelError> {
        Ok(match cfg {
            ModelConfig::Yolox(c) => {
                let (model, session) = yolox::Yolox::load(name, c, env)?;
                let engine = model.engine(session, engine)?;
                Loaded::Yolox { model, engine }
            }
            ModelConfig::Clip(c) => {
                let (model, sessions) = clip::Clip::load(name, c, env)?;
                let model = model.with_prompt_cache(prompts.clone());
                let engine = model.engine(&sessions, engine)?;
                Loaded::Clip {
                    model: Box::new(model),
                    sessions,
                    engine,
                }
            }
            ModelConfig::Florence2(c) => {
                let (model, sessions) = florence2::Florence2::load(name, c, env)?;
                let model = model.with_prompt_cache(prompts.clone());
                Loaded::Florence2 {
                    model: Box::new(model),
                    sessions,
                }
            }
            ModelConfig::Smolvlm(c) => {
                let (model, sessions) = smolvlm::SmolVlm::load(name, c, env)?;
                let model = model.with_prompt_cache(prompts.clone());
                Loaded::Smolvlm {
                    model: Box::new(model),
                    sessions,
                }
            }
            ModelConfig::Ppocr(c) => {
                let (model, sessions) = ppocr::Ppocr::load(name, c, env)?;
                Loaded::Ppocr {
                    model: Box::new(model),
                    sessions,
                }
            }
        })
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Loaded>> {
        self.loaded.get(name)
    }

    /// Each loaded model's engine metrics, by name.
    pub fn clone_engines(&self) -> Vec<(String, Arc<crate::kit::metrics::ModelMetrics>)> {
        self.loaded
            .iter()
            .filter_map(|(n, l)| Some((n.clone(), l.engine()?.metrics.clone())))
            .collect()
    }

    /// Models that failed to load, with why.
    pub fn failed(&self) -> &BTreeMap<String, String> {
        &self.failed
    }
}

/// The one file with extension `ext` in `dir` (a model folder's default).
pub fn single_file(model: &str, dir: &Path, ext: &str) -> Result<PathBuf, ModelError> {
    let err = |cause: String| ModelError::Load {
        model: model.into(),
        file: dir.to_path_buf(),
        cause,
    };
    let entries = std::fs::read_dir(dir).map_err(|e| err(e.to_string()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .filter(|p| {
            !p.file_stem().is_some_and(|s| {
                s.eq_ignore_ascii_case("manifest") || s.eq_ignore_ascii_case("readme")
            })
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(err(format!("no .{ext} file in the folder"))),
        _ => Err(err(format!(
            "several .{ext} files; name one with `file`/`labels`"
        ))),
    }
}
