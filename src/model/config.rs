//! Model config: one `[models.NAME]` table per model, tagged by `family`.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, Visitor};

use super::embedder::EmbedderConfig;
use super::florence2::Florence2Config;
use super::paligemma::PaliGemmaConfig;
use super::ppocr::PpocrConfig;
use super::qwen2vl::Qwen2VlConfig;
use super::remote::RemoteConfig;
use super::smolvlm::SmolVlmConfig;
use crate::engine::{Provider, default_providers};
use crate::kit::Problem;

/// `[models.NAME]`: which family, where its files are, how to run it. An unknown or
/// missing `family` is reported at `models.NAME.family`, naming the known families.
#[derive(Debug, Clone, PartialEq)]
pub enum ModelConfig {
    Yolox(YoloxConfig),
    Clip(ClipConfig),
    Florence2(Florence2Config),
    Smolvlm(SmolVlmConfig),
    Ppocr(PpocrConfig),
    Embedder(EmbedderConfig),
    /// A served model behind an OpenAI-compatible `/v1/chat/completions`.
    Openai(RemoteConfig),
    /// A served model behind Ollama's `/api/chat`.
    Ollama(RemoteConfig),
    Paligemma(PaliGemmaConfig),
    Qwen2vl(Qwen2VlConfig),
}

/// The values `family` may take.
pub(super) const FAMILIES: [&str; 10] = [
    "yolox",
    "clip",
    "florence2",
    "smolvlm",
    "ppocr",
    "embedder",
    "paligemma",
    "qwen2vl",
    "openai",
    "ollama",
];

impl<'de> Deserialize<'de> for ModelConfig {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_map(ModelVisitor)
    }
}

/// Reads the table, checking `family` as its own value (so that its problem carries
/// the path `models.NAME.family`), then the family's fields.
struct ModelVisitor;

impl<'de> Visitor<'de> for ModelVisitor {
    type Value = ModelConfig;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a model table with a `family`")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ModelConfig, A::Error> {
        let mut family = None;
        let mut rest = toml::Table::new();
        while let Some(key) = map.next_key::<String>()? {
            if key == "family" {
                family = Some(map.next_value_seed(FamilySeed)?);
            } else {
                let value = map.next_value::<toml::Value>()?;
                rest.insert(key, value);
            }
        }
        let Some(family) = family else {
            return Err(de::Error::custom(format!(
                "missing field `family` (known: {})",
                FAMILIES.join(", ")
            )));
        };
        let rest = toml::Value::Table(rest);
        let config = match family {
            "yolox" => rest.try_into().map(ModelConfig::Yolox),
            "clip" => rest.try_into().map(ModelConfig::Clip),
            "florence2" => rest.try_into().map(ModelConfig::Florence2),
            "smolvlm" => rest.try_into().map(ModelConfig::Smolvlm),
            "embedder" => rest.try_into().map(ModelConfig::Embedder),
            "openai" => rest.try_into().map(ModelConfig::Openai),
            "ollama" => rest.try_into().map(ModelConfig::Ollama),
            "paligemma" => rest.try_into().map(ModelConfig::Paligemma),
            "qwen2vl" => rest.try_into().map(ModelConfig::Qwen2vl),
            _ => rest.try_into().map(ModelConfig::Ppocr),
        };
        config.map_err(|e| de::Error::custom(e.message()))
    }
}

/// `family = "…"`: one of [`FAMILIES`].
struct FamilySeed;

impl<'de> DeserializeSeed<'de> for FamilySeed {
    type Value = &'static str;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<&'static str, D::Error> {
        let name = String::deserialize(d)?;
        FAMILIES
            .iter()
            .find(|f| **f == name)
            .copied()
            .ok_or_else(|| {
                de::Error::custom(format!(
                    "unknown family {name:?} (known: {})",
                    FAMILIES.join(", ")
                ))
            })
    }
}

/// YOLOX COCO detector (`family = "yolox"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct YoloxConfig {
    pub dir: PathBuf,
    /// ONNX file inside `dir` (default: the only `.onnx` there).
    #[serde(default)]
    pub file: Option<PathBuf>,
    /// Class names, one a line (default: the only `.txt` in `dir`).
    #[serde(default)]
    pub labels: Option<PathBuf>,
    #[serde(default = "default_providers")]
    pub providers: Vec<Provider>,
    #[serde(default)]
    pub threads: Option<usize>,
    /// Detections below this score are discarded.
    #[serde(default = "default_score")]
    pub score_threshold: f32,
    /// Class-wise NMS IoU.
    #[serde(default = "default_iou")]
    pub nms_iou: f32,
    /// Most frames (of different cameras) one run takes; default 1 (the file as it
    /// is). Over 1 on the CPU, an export with a fixed batch of 1 has its batch
    /// dimension freed at load (2 to 4 measured the most frames per CPU-second).
    #[serde(default)]
    pub max_batch: Option<usize>,
}

/// Dual encoder (CLIP, SigLIP, MobileCLIP) in the Hugging Face ONNX layout
/// (`family = "clip"`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClipConfig {
    pub dir: PathBuf,
    #[serde(default = "default_vision")]
    pub vision: PathBuf,
    #[serde(default = "default_text")]
    pub text: PathBuf,
    #[serde(default = "default_tokenizer")]
    pub tokenizer: PathBuf,
    #[serde(default = "default_preprocessor")]
    pub preprocessor: PathBuf,
    /// The model's `config.json` (optional): its `model_type` and text tower.
    #[serde(default = "default_model_json")]
    pub config: PathBuf,
    /// The combined export (optional), read only for SigLIP's trained `logit_scale`
    /// and `logit_bias`, which the split towers do not hold.
    #[serde(default = "default_combined")]
    pub combined: PathBuf,
    #[serde(default = "default_providers")]
    pub providers: Vec<Provider>,
    #[serde(default)]
    pub threads: Option<usize>,
    /// How the model is scored: `"clip"` (CLIP, MobileCLIP: softmax over a query's
    /// prompts) or `"siglip"` (a sigmoid per prompt). Default: `config.json`'s
    /// `model_type`; CLIP without one.
    #[serde(default)]
    pub model_type: Option<ClipModelType>,
    /// Multiplier of cosine similarities, i.e. `exp` of the model's trained
    /// `logit_scale`. Default: 100 for CLIP; SigLIP's is read from `combined`.
    #[serde(default)]
    pub logit_scale: Option<f32>,
    /// SigLIP's trained `logit_bias` (default: read from `combined`); CLIP has none.
    #[serde(default)]
    pub logit_bias: Option<f32>,
}

/// The dual encoders the `clip` family runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClipModelType {
    /// CLIP and MobileCLIP: contrastive (softmax) scoring.
    Clip,
    /// SigLIP: sigmoid scoring with a bias.
    Siglip,
}

fn default_score() -> f32 {
    0.3
}
fn default_iou() -> f32 {
    0.45
}
fn default_vision() -> PathBuf {
    "onnx/vision_model.onnx".into()
}
fn default_text() -> PathBuf {
    "onnx/text_model.onnx".into()
}
fn default_tokenizer() -> PathBuf {
    "tokenizer.json".into()
}
fn default_preprocessor() -> PathBuf {
    "preprocessor_config.json".into()
}
fn default_model_json() -> PathBuf {
    "config.json".into()
}
fn default_combined() -> PathBuf {
    "onnx/model.onnx".into()
}

impl ModelConfig {
    pub fn family(&self) -> &'static str {
        match self {
            ModelConfig::Yolox(_) => "yolox",
            ModelConfig::Clip(_) => "clip",
            ModelConfig::Florence2(_) => "florence2",
            ModelConfig::Smolvlm(_) => "smolvlm",
            ModelConfig::Ppocr(_) => "ppocr",
            ModelConfig::Embedder(_) => "embedder",
            ModelConfig::Openai(_) => "openai",
            ModelConfig::Ollama(_) => "ollama",
            ModelConfig::Paligemma(_) => "paligemma",
            ModelConfig::Qwen2vl(_) => "qwen2vl",
        }
    }

    /// A served model's config (`openai`, `ollama`).
    pub fn remote(&self) -> Option<&RemoteConfig> {
        match self {
            ModelConfig::Openai(c) | ModelConfig::Ollama(c) => Some(c),
            _ => None,
        }
    }

    /// The execution providers (none for a served model).
    pub fn providers(&self) -> &[Provider] {
        match self {
            ModelConfig::Yolox(c) => &c.providers,
            ModelConfig::Clip(c) => &c.providers,
            ModelConfig::Florence2(c) => &c.providers,
            ModelConfig::Smolvlm(c) => &c.providers,
            ModelConfig::Ppocr(c) => &c.providers,
            ModelConfig::Embedder(c) => &c.providers,
            ModelConfig::Openai(_) | ModelConfig::Ollama(_) => &[],
            ModelConfig::Paligemma(c) => &c.providers,
            ModelConfig::Qwen2vl(c) => &c.providers,
        }
    }

    pub fn threads(&self) -> Option<usize> {
        match self {
            ModelConfig::Yolox(c) => c.threads,
            ModelConfig::Clip(c) => c.threads,
            ModelConfig::Florence2(c) => c.threads,
            ModelConfig::Smolvlm(c) => c.threads,
            ModelConfig::Ppocr(c) => c.threads,
            ModelConfig::Embedder(c) => c.threads,
            ModelConfig::Openai(_) | ModelConfig::Ollama(_) => None,
            ModelConfig::Paligemma(c) => c.threads,
            ModelConfig::Qwen2vl(c) => c.threads,
        }
    }

    /// Slow models run on each camera's slow lane, at each query's cadence,
    /// instead of on every sampled frame.
    pub fn is_slow(&self) -> bool {
        matches!(
            self,
            ModelConfig::Florence2(_)
                | ModelConfig::Smolvlm(_)
                | ModelConfig::Ppocr(_)
                | ModelConfig::Openai(_)
                | ModelConfig::Ollama(_)
                | ModelConfig::Paligemma(_)
                | ModelConfig::Qwen2vl(_)
        )
    }

    /// Uses the engine's thread count when the model sets none.
    pub fn default_threads(&mut self, threads: Option<usize>) {
        let own = match self {
            ModelConfig::Yolox(c) => &mut c.threads,
            ModelConfig::Clip(c) => &mut c.threads,
            ModelConfig::Florence2(c) => &mut c.threads,
            ModelConfig::Smolvlm(c) => &mut c.threads,
            ModelConfig::Ppocr(c) => &mut c.threads,
            ModelConfig::Embedder(c) => &mut c.threads,
            ModelConfig::Openai(_) | ModelConfig::Ollama(_) => return,
            ModelConfig::Paligemma(c) => &mut c.threads,
            ModelConfig::Qwen2vl(c) => &mut c.threads,
        };
        if own.is_none() {
            *own = threads;
        }
    }

    /// The model's folder; `None` for a served model, which has none.
    pub fn dir(&self) -> Option<&Path> {
        Some(match self {
            ModelConfig::Yolox(c) => &c.dir,
            ModelConfig::Clip(c) => &c.dir,
            ModelConfig::Florence2(c) => &c.dir,
            ModelConfig::Smolvlm(c) => &c.dir,
            ModelConfig::Ppocr(c) => &c.dir,
            ModelConfig::Embedder(c) => &c.dir,
            ModelConfig::Paligemma(c) => &c.dir,
            ModelConfig::Qwen2vl(c) => &c.dir,
            ModelConfig::Openai(_) | ModelConfig::Ollama(_) => return None,
        })
    }

    /// The files the model cannot load without, by config field (after
    /// `resolve_paths`); optional files (Florence-2's generation config, PP-OCR's
    /// keys, which the recogniser's metadata also holds, a dual encoder's
    /// `config.json` and combined export) are not listed.
    pub fn required_files(&self) -> Vec<(&'static str, &Path)> {
        let p = PathBuf::as_path;
        match self {
            ModelConfig::Yolox(c) => [("file", &c.file), ("labels", &c.labels)]
                .into_iter()
                .filter_map(|(k, f)| Some((k, f.as_deref()?)))
                .collect(),
            ModelConfig::Clip(c) => vec![
                ("vision", p(&c.vision)),
                ("text", p(&c.text)),
                ("tokenizer", p(&c.tokenizer)),
                ("preprocessor", p(&c.preprocessor)),
            ],
            ModelConfig::Florence2(c) => vec![
                ("vision", p(&c.vision)),
                ("embed", p(&c.embed)),
                ("encoder", p(&c.encoder)),
                ("decoder", p(&c.decoder)),
                ("tokenizer", p(&c.tokenizer)),
                ("preprocessor", p(&c.preprocessor)),
            ],
            ModelConfig::Smolvlm(c) => vec![
                ("vision", p(&c.vision)),
                ("embed", p(&c.embed)),
                ("decoder", p(&c.decoder)),
                ("tokenizer", p(&c.tokenizer)),
                ("preprocessor", p(&c.preprocessor)),
                ("config", p(&c.config)),
            ],
            ModelConfig::Paligemma(c) => vec![
                ("vision", p(&c.vision)),
                ("embed", p(&c.embed)),
                ("decoder", p(&c.decoder)),
                ("tokenizer", p(&c.tokenizer)),
                ("preprocessor", p(&c.preprocessor)),
                ("config", p(&c.config)),
            ],
            ModelConfig::Qwen2vl(c) => vec![
                ("vision", p(&c.vision)),
                ("embed", p(&c.embed)),
                ("decoder", p(&c.decoder)),
                ("tokenizer", p(&c.tokenizer)),
                ("preprocessor", p(&c.preprocessor)),
                ("config", p(&c.config)),
            ],
            ModelConfig::Ppocr(c) => [
                ("det", Some(&c.det)),
                ("rec", Some(&c.rec)),
                ("cls", c.cls.as_ref()),
            ]
            .into_iter()
            .filter_map(|(k, f)| Some((k, f?.as_path())))
            .collect(),
            ModelConfig::Embedder(c) => [
                ("file", c.file.as_ref()),
                ("preprocessor", Some(&c.preprocessor)),
            ]
            .into_iter()
            .filter_map(|(k, f)| Some((k, f?.as_path())))
            .collect(),
            ModelConfig::Openai(c) | ModelConfig::Ollama(c) => c
                .api_key_file
                .as_deref()
                .filter(|_| c.api_key.is_none())
                .map(|f| ("api_key_file", f))
                .into_iter()
                .collect(),
        }
    }

    /// Makes `dir` absolute and the files inside it relative to `dir`.
    pub fn resolve_paths(&mut self, base: &Path) {
        let resolve = crate::kit::resolve;
        match self {
            ModelConfig::Yolox(c) => {
                c.dir = resolve(base, &c.dir);
                c.file = c.file.as_ref().map(|f| resolve(&c.dir, f));
                c.labels = c.labels.as_ref().map(|f| resolve(&c.dir, f));
            }
            ModelConfig::Clip(c) => {
                c.dir = resolve(base, &c.dir);
                for f in [
                    &mut c.vision,
                    &mut c.text,
                    &mut c.tokenizer,
                    &mut c.preprocessor,
                    &mut c.config,
                    &mut c.combined,
                ] {
                    *f = resolve(&c.dir, f);
                }
            }
            ModelConfig::Florence2(c) => c.resolve_paths(base),
            ModelConfig::Smolvlm(c) => c.resolve_paths(base),
            ModelConfig::Ppocr(c) => c.resolve_paths(base),
            ModelConfig::Embedder(c) => c.resolve_paths(base),
            ModelConfig::Openai(c) | ModelConfig::Ollama(c) => c.resolve_paths(base),
            ModelConfig::Paligemma(c) => c.resolve_paths(base),
            ModelConfig::Qwen2vl(c) => c.resolve_paths(base),
        }
    }
}

impl ModelConfig {
    /// The problems of `[models.<name>]`, pushed to `problems`.
    pub fn check(&self, name: &str, problems: &mut Vec<Problem>) {
        if let Some(remote) = self.remote() {
            remote.check(name, problems);
            return;
        }
        if self.providers().is_empty() {
            problems.push(Problem::new(
                format!("models.{name}.providers"),
                "must name at least one provider",
            ));
        }
        if self.threads() == Some(0) {
            problems.push(Problem::new(
                format!("models.{name}.threads"),
                "must be at least 1",
            ));
        }
        if let ModelConfig::Yolox(c) = self
            && c.max_batch == Some(0)
        {
            problems.push(Problem::new(
                format!("models.{name}.max_batch"),
                "must be at least 1",
            ));
        }
        if let ModelConfig::Paligemma(c) = self
            && let Some(why) = c.problem()
        {
            problems.push(Problem::new(format!("models.{name}.lang"), why));
        }
        if let ModelConfig::Qwen2vl(c) = self
            && let Err(e) = c.check()
        {
            let field = match e {
                super::qwen2vl::Qwen2VlConfigError::MaxPixels => "max_pixels",
                super::qwen2vl::Qwen2VlConfigError::MaxTokens => "max_tokens",
            };
            problems.push(Problem::new(
                format!("models.{name}.{field}"),
                e.to_string(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ModelConfig, serde_path_to_error::Error<toml::de::Error>> {
        let value: toml::Value = toml::from_str(text).expect("TOML");
        serde_path_to_error::deserialize::<_, ModelConfig>(value)
    }

    /// The problem with `text`, as the config reports it: the path, then the first
    /// line of the message (toml adds "in `field`" on a second line).
    fn problem(text: &str) -> String {
        let Err(e) = parse(text) else {
            panic!("{text:?} parses");
        };
        let path = e.path().to_string();
        let message = e.into_inner().to_string();
        format!("{path}: {}", message.lines().next().unwrap_or_default())
    }

    #[test]
    fn the_family_is_checked_by_name_at_its_own_path() {
        let m = parse("family = \"yolox\"\ndir = \"/m\"\nscore_threshold = 0.5").unwrap();
        assert_eq!(m.family(), "yolox");
        assert_eq!(m.dir(), Some(Path::new("/m")));
        assert_eq!(
            problem("family = \"gpt\"\ndir = \"/m\""),
            "family: unknown family \"gpt\" (known: yolox, clip, florence2, smolvlm, ppocr, embedder, paligemma, qwen2vl, openai, ollama)"
        );
        let missing = problem("dir = \"/m\"");
        assert!(missing.contains("missing field `family`"), "{missing}");
        let typo = problem("family = \"clip\"\ndir = \"/m\"\nlogit_scael = 1.0");
        assert!(typo.contains("unknown field `logit_scael`"), "{typo}");
        for family in FAMILIES {
            if matches!(family, "openai" | "ollama") {
                let e = problem(&format!("family = \"{family}\"\nmodel = \"m\""));
                assert!(e.contains("missing field `url`"), "{family}: {e}");
                continue;
            }
            // Each family's own table is reached (its required `dir` is missing).
            let e = problem(&format!("family = \"{family}\""));
            assert!(e.contains("missing field `dir`"), "{family}: {e}");
        }
    }
}
