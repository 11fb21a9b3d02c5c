//! PLACEHOLDER until feat/smolvlm merges (integration scaffolding).
use std::path::{Path, PathBuf};
use serde::Deserialize;
use super::ModelError;
use crate::engine::{Provider, SharedSession, default_providers};
use crate::source::Frame;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SmolVlmConfig {
    pub dir: PathBuf,
    #[serde(default = "default_providers")]
    pub providers: Vec<Provider>,
    #[serde(default)]
    pub threads: Option<usize>,
    #[serde(default)]
    pub max_tokens: usize,
}
impl SmolVlmConfig {
    pub fn resolve_paths(&mut self, base: &Path) {
        self.dir = crate::config::resolve(base, &self.dir);
    }
}
pub struct SmolVlmSessions {
    pub vision: SharedSession,
}
pub struct SmolVlm;
pub struct ImagePrefix;
pub struct YesNo {
    pub p_yes: f32,
    pub yes_logit: f32,
    pub no_logit: f32,
}
pub struct Generated {
    pub ids: Vec<u32>,
    pub text: String,
    pub tokens: usize,
}
impl SmolVlm {
    pub fn load(name: &str, cfg: &SmolVlmConfig, _env: &ort::environment::Environment) -> Result<(Self, SmolVlmSessions), ModelError> {
        Err(ModelError::Load { model: name.into(), file: cfg.dir.clone(), cause: "placeholder".into() })
    }
    pub fn prefix(&self, _s: &SmolVlmSessions, _f: &Frame, _r: Option<[f32; 4]>) -> Result<ImagePrefix, ModelError> {
        Err(ModelError::Run { model: String::new(), cause: "placeholder".into() })
    }
    pub fn yes_no(&self, _s: &SmolVlmSessions, _p: &ImagePrefix, _q: &str) -> Result<YesNo, ModelError> {
        Err(ModelError::Run { model: String::new(), cause: "placeholder".into() })
    }
    pub fn answer(&self, _s: &SmolVlmSessions, _p: &ImagePrefix, _q: &str, _m: usize) -> Result<Generated, ModelError> {
        Err(ModelError::Run { model: String::new(), cause: "placeholder".into() })
    }
}
