//! The loaded models of a config: [`Registry::load`] opens each `[models.NAME]`
//! through the engine (a model that fails is logged and kept with its one-line
//! error), [`Registry::reload`] keeps the models a new config leaves as they were.
//! Each [`Loaded`] model holds its sessions and, for the per-frame models, the engine
//! thread of its image path.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::config::ModelConfig;
use super::error::ModelError;
use super::{clip, embedder, florence2, paligemma, ppocr, qwen2vl, remote, smolvlm, yolox};
use crate::cache::PromptCache;
use crate::engine::{Batcher, EngineConfig};
use crate::kit::metrics::ModelMetrics;

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
    Embedder {
        model: Box<embedder::Embedder>,
        session: crate::engine::SharedSession,
        engine: Batcher,
    },
    /// A served model (`openai`, `ollama`): no sessions, an HTTP client.
    Remote { model: Box<remote::Remote> },
    Paligemma {
        model: Box<paligemma::PaliGemma>,
        sessions: paligemma::PaliGemmaSessions,
    },
    Qwen2vl {
        model: Box<qwen2vl::Qwen2Vl>,
        sessions: qwen2vl::Qwen2VlSessions,
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
            Loaded::Yolox { engine, .. }
            | Loaded::Clip { engine, .. }
            | Loaded::Embedder { engine, .. } => Some(engine),
            Loaded::Florence2 { .. }
            | Loaded::Smolvlm { .. }
            | Loaded::Ppocr { .. }
            | Loaded::Remote { .. }
            | Loaded::Paligemma { .. }
            | Loaded::Qwen2vl { .. } => None,
        }
    }
}

impl Loaded {
    /// The unit-length embedding of `region` of `frame`, for a model that embeds
    /// images (clip, embedder); `None` for the others.
    pub fn embed_image(
        &self,
        frame: &crate::kit::Frame,
        region: Option<[f32; 4]>,
        scratch: &mut clip::ClipImage,
    ) -> Option<Result<clip::Embedding, ModelError>> {
        match self {
            Loaded::Clip { model, engine, .. } => {
                Some(model.embed_image(&mut engine.client(), frame, region, scratch))
            }
            Loaded::Embedder { model, engine, .. } => {
                Some(model.embed_image(&mut engine.client(), frame, region, scratch))
            }
            _ => None,
        }
    }

    /// What the model's image embeddings depend on; `None` for a model that makes none.
    pub fn image_identity(&self) -> Option<String> {
        match self {
            Loaded::Clip { model, .. } => Some(model.image_identity().to_string()),
            Loaded::Embedder { model, .. } => Some(model.identity().to_string()),
            _ => None,
        }
    }
}

/// Every model of a config that could be loaded; the others with their one-line error.
#[derive(Default)]
pub struct Registry {
    loaded: BTreeMap<String, Arc<Loaded>>,
    failed: BTreeMap<String, String>,
    /// The `[models.*]` tables and the `[engine]` the models were loaded from, which a
    /// reload compares with its own.
    configs: BTreeMap<String, ModelConfig>,
    engine: EngineConfig,
}

impl Registry {
    /// Loads each model of `models` to run on `engine`; a model that fails is logged
    /// and skipped. Prompt embeddings (CLIP prompts, Florence-2 task prompts, SmolVLM
    /// questions) go through `prompts`, which outlives a config reload.
    pub fn load(
        models: &BTreeMap<String, ModelConfig>,
        engine: &EngineConfig,
        env: &ort::environment::Environment,
        prompts: &Arc<PromptCache>,
    ) -> Self {
        let mut reg = Self::empty(models, engine);
        for (name, cfg) in models {
            reg.load_one(name, cfg, env, prompts);
        }
        reg
    }

    /// The models of a new config for a reload: a model whose config (and the
    /// engine's) is the one it was loaded with keeps running as it is, the others are
    /// loaded anew (a failure is logged and recorded like at start). Also returns the
    /// names that changed: added, reloaded or removed.
    pub fn reload(
        &self,
        models: &BTreeMap<String, ModelConfig>,
        engine: &EngineConfig,
        env: &ort::environment::Environment,
        prompts: &Arc<PromptCache>,
    ) -> (Self, BTreeSet<String>) {
        let mut reg = Self::empty(models, engine);
        let mut changed = BTreeSet::new();
        for (name, cfg) in models {
            let same = self.engine == *engine && self.configs.get(name) == Some(cfg);
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
            if reg.load_one(name, cfg, env, prompts) {
                tracing::info!(model = %name, "model loaded");
            }
        }
        changed.extend(
            self.configs
                .keys()
                .filter(|n| !models.contains_key(*n))
                .cloned(),
        );
        (reg, changed)
    }

    /// A registry of no model yet, for these configs.
    fn empty(models: &BTreeMap<String, ModelConfig>, engine: &EngineConfig) -> Self {
        Self {
            configs: models.clone(),
            engine: engine.clone(),
            ..Self::default()
        }
    }

    /// Loads `name` (the engine's thread count unless it sets its own) into `loaded`,
    /// or logs why not and records it in `failed`; true when it loaded.
    fn load_one(
        &mut self,
        name: &str,
        cfg: &ModelConfig,
        env: &ort::environment::Environment,
        prompts: &Arc<PromptCache>,
    ) -> bool {
        let mut cfg = cfg.clone();
        cfg.default_threads(self.engine.threads);
        match open(name, &cfg, env, &self.engine, prompts) {
            Ok(m) => {
                self.loaded.insert(name.into(), Arc::new(m));
                true
            }
            Err(e) => {
                tracing::error!(model = %name, "{e}");
                self.failed.insert(name.into(), e.to_string());
                false
            }
        }
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Loaded>> {
        self.loaded.get(name)
    }

    /// Each loaded served model's client counters, by name.
    pub fn clone_remotes(&self) -> Vec<(String, Arc<crate::kit::metrics::RemoteMetrics>)> {
        self.loaded
            .iter()
            .filter_map(|(n, l)| match l.as_ref() {
                Loaded::Remote { model } => Some((n.clone(), model.metrics().clone())),
                _ => None,
            })
            .collect()
    }

    /// Each loaded model's engine metrics, by name.
    pub fn clone_engines(&self) -> Vec<(String, Arc<ModelMetrics>)> {
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

/// Opens one model of its family, and the engine thread of a per-frame model.
fn open(
    name: &str,
    cfg: &ModelConfig,
    env: &ort::environment::Environment,
    engine: &EngineConfig,
    prompts: &Arc<PromptCache>,
) -> Result<Loaded, ModelError> {
    Ok(match cfg {
        ModelConfig::Yolox(c) => {
            let (model, session) = yolox::Yolox::load(name, c, env, engine)?;
            let engine = model.engine(session)?;
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
        ModelConfig::Qwen2vl(c) => {
            let (model, sessions) = qwen2vl::Qwen2Vl::load(name, c, env)?;
            let model = model.with_prompt_cache(prompts.clone());
            Loaded::Qwen2vl {
                model: Box::new(model),
                sessions,
            }
        }
        ModelConfig::Embedder(c) => {
            let (model, session) = embedder::Embedder::load(name, c, env)?;
            let engine = model.engine(&session, engine)?;
            Loaded::Embedder {
                model: Box::new(model),
                session,
                engine,
            }
        }
        ModelConfig::Openai(c) => Loaded::Remote {
            model: Box::new(remote::Remote::load(name, remote::Dialect::OpenAi, c)?),
        },
        ModelConfig::Ollama(c) => Loaded::Remote {
            model: Box::new(remote::Remote::load(name, remote::Dialect::Ollama, c)?),
        },
        ModelConfig::Paligemma(c) => {
            let (model, sessions) = paligemma::PaliGemma::load(name, c, env)?;
            let model = model.with_prompt_cache(prompts.clone());
            Loaded::Paligemma {
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
