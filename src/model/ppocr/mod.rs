//! PLACEHOLDER until feat/ppocr merges (integration scaffolding).
use std::path::{Path, PathBuf};
use serde::Deserialize;
use super::{ModelError, Stages};
use crate::engine::{Provider, SharedSession, default_providers};
use crate::source::Frame;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PpocrConfig {
    pub dir: PathBuf,
    #[serde(default = "default_providers")]
    pub providers: Vec<Provider>,
    #[serde(default)]
    pub threads: Option<usize>,
}
impl PpocrConfig {
    pub fn resolve_paths(&mut self, base: &Path) {
        self.dir = crate::config::resolve(base, &self.dir);
    }
}
pub struct PpocrSessions {
    pub det: SharedSession,
}
pub struct Ppocr;
pub struct TextLine {
    pub text: String,
    pub score: f32,
    pub bbox: [f32; 4],
}
pub struct Reading {
    pub lines: Vec<TextLine>,
    pub stages: Stages,
}
impl Reading {
    pub fn text(&self) -> String {
        self.lines.iter().map(|l| l.text.as_str()).collect::<Vec<_>>().join("\n")
    }
}
impl Ppocr {
    pub fn load(name: &str, cfg: &PpocrConfig, _env: &ort::environment::Environment) -> Result<(Self, PpocrSessions), ModelError> {
        Err(ModelError::Load { model: name.into(), file: cfg.dir.clone(), cause: "placeholder".into() })
    }
    pub fn read(&self, _s: &PpocrSessions, _f: &Frame, _r: Option<[f32; 4]>) -> Result<Reading, ModelError> {
        Err(ModelError::Run { model: String::new(), cause: "placeholder".into() })
    }
}
