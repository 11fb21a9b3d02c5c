//! PLACEHOLDER until feat/florence2 merges (integration scaffolding).
use std::path::{Path, PathBuf};
use serde::Deserialize;
use super::{ModelError, Stages};
use crate::engine::{Provider, SharedSession, default_providers};
use crate::source::Frame;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Florence2Config {
    pub dir: PathBuf,
    #[serde(default = "default_providers")]
    pub providers: Vec<Provider>,
    #[serde(default)]
    pub threads: Option<usize>,
    #[serde(default)]
    pub max_tokens: usize,
}
impl Florence2Config {
    pub fn resolve_paths(&mut self, base: &Path) {
        self.dir = crate::config::resolve(base, &self.dir);
    }
}
pub struct Florence2Sessions {
    pub vision: SharedSession,
}
pub struct Florence2;
pub struct ImageFeatures {
    pub stages: Stages,
}
pub enum Task {
    Caption,
    DetailedCaption,
    MoreDetailedCaption,
    Detect,
    Ocr,
    Ground(String),
}
pub struct Found {
    pub label: String,
    pub bbox: [f32; 4],
}
pub enum TaskOutput {
    Text(String),
    Boxes(Vec<Found>),
}
pub struct Generated {
    pub ids: Vec<u32>,
    pub text: String,
    pub output: TaskOutput,
    pub tokens: usize,
}
impl Florence2 {
    pub fn load(name: &str, cfg: &Florence2Config, _env: &ort::environment::Environment) -> Result<(Self, Florence2Sessions), ModelError> {
        Err(ModelError::Load { model: name.into(), file: cfg.dir.clone(), cause: "placeholder".into() })
    }
    pub fn encode(&self, _s: &Florence2Sessions, _f: &Frame, _r: Option<[f32; 4]>) -> Result<ImageFeatures, ModelError> {
        Err(ModelError::Run { model: String::new(), cause: "placeholder".into() })
    }
    pub fn run(&self, _s: &Florence2Sessions, _i: &ImageFeatures, _t: &Task, _m: usize) -> Result<Generated, ModelError> {
        Err(ModelError::Run { model: String::new(), cause: "placeholder".into() })
    }
}
