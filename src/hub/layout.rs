//! What a model folder must hold for its family, taken from ocellus's own model config
//! (`src/model/*/config.rs` defaults and [`ModelConfig::required_files`]), the name of
//! the manifest every install writes beside the files ([`MANIFEST_FILE`]), and the
//! `[models.NAME]` snippet that points a config at the folder.
//!
//! ```
//! use std::collections::BTreeMap;
//! use ocellus::hub::layout::{needs, snippet};
//! let needs = needs("clip", &BTreeMap::new()).unwrap();
//! assert!(needs.iter().any(|n| n.describe() == "onnx/vision_model.onnx"));
//! let s = snippet("scene", "clip", "/var/lib/ocellus/models/clip".as_ref(), &BTreeMap::new());
//! assert_eq!(s, "[models.scene]\nfamily = \"clip\"\ndir = \"/var/lib/ocellus/models/clip\"\n");
//! ```

use std::collections::BTreeMap;
use std::path::Path;

use crate::model::{ModelConfig, single_file};

/// The manifest's file name inside a model folder (see [`super::manifest`]).
pub const MANIFEST_FILE: &str = "ocellus-model.json";

/// The model config of a folder could not be made from its family and keys: the
/// first line of TOML's message.
#[derive(Debug, thiserror::Error)]
#[error("{}", .0.to_string().lines().next().unwrap_or_default())]
pub struct LayoutError(#[source] toml::de::Error);

/// One thing the family loader needs in the folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Need {
    /// This relative path.
    File(String),
    /// Exactly one file with this extension directly in the folder (YOLOX without
    /// `file`/`labels`).
    OneOf(&'static str),
}

impl Need {
    pub fn describe(&self) -> String {
        match self {
            Need::File(p) => p.clone(),
            Need::OneOf(ext) => format!("one .{ext} file"),
        }
    }

    /// Whether a folder holding exactly `paths` (relative) satisfies this need.
    pub fn satisfied_by(&self, paths: &[&str]) -> bool {
        match self {
            Need::File(p) => paths.contains(&p.as_str()),
            Need::OneOf(ext) => {
                let suffix = format!(".{ext}");
                paths
                    .iter()
                    .filter(|p| !p.contains('/') && p.ends_with(&suffix))
                    .count()
                    == 1
            }
        }
    }

    /// What is wrong with `dir` for this need, if anything.
    pub fn problem(&self, model: &str, dir: &Path) -> Option<String> {
        match self {
            Need::File(p) => (!dir.join(p).is_file()).then(|| p.clone()),
            Need::OneOf(ext) => single_file(model, dir, ext).err().map(|_| self.describe()),
        }
    }
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// The `[models.NAME]` table for a model folder.
pub fn snippet(name: &str, family: &str, dir: &Path, config: &BTreeMap<String, String>) -> String {
    let mut s = format!(
        "[models.{name}]\nfamily = {}\ndir = {}\n",
        toml_string(family),
        toml_string(&dir.to_string_lossy())
    );
    for (k, v) in config {
        s.push_str(&format!("{k} = {}\n", toml_string(v)));
    }
    s
}

/// The model config ocellus would load for this folder (paths resolved).
pub fn model_config(
    family: &str,
    dir: &Path,
    config: &BTreeMap<String, String>,
) -> Result<ModelConfig, LayoutError> {
    let table = snippet("m", family, dir, config);
    let body = table.split_once('\n').map_or("", |(_, rest)| rest);
    let mut cfg: ModelConfig = toml::from_str(body).map_err(LayoutError)?;
    cfg.resolve_paths(dir);
    Ok(cfg)
}

/// What the family loader needs, relative to the model folder.
pub fn needs(family: &str, config: &BTreeMap<String, String>) -> Result<Vec<Need>, LayoutError> {
    let base = Path::new("/m");
    let cfg = model_config(family, base, config)?;
    let mut out: Vec<Need> = cfg
        .required_files()
        .into_iter()
        .map(|(_, p)| {
            let rel = p.strip_prefix(base).unwrap_or(p);
            Need::File(rel.to_string_lossy().into_owned())
        })
        .collect();
    if let ModelConfig::Yolox(y) = &cfg {
        if y.file.is_none() {
            out.push(Need::OneOf("onnx"));
        }
        if y.labels.is_none() {
            out.push(Need::OneOf("txt"));
        }
    }
    Ok(out)
}

/// The needs `dir` does not meet, described (empty: the folder is complete).
pub fn missing(
    model: &str,
    family: &str,
    dir: &Path,
    config: &BTreeMap<String, String>,
) -> Result<Vec<String>, LayoutError> {
    Ok(needs(family, config)?
        .iter()
        .filter_map(|n| n.problem(model, dir))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn needs_follow_the_family_defaults_and_overrides() {
        let none = BTreeMap::new();
        let f = |family, cfg: &BTreeMap<String, String>| -> Vec<String> {
            needs(family, cfg)
                .unwrap()
                .iter()
                .map(Need::describe)
                .collect()
        };
        assert_eq!(
            f("florence2", &none),
            [
                "onnx/vision_encoder.onnx",
                "onnx/embed_tokens.onnx",
                "onnx/encoder_model.onnx",
                "onnx/decoder_model_merged.onnx",
                "tokenizer.json",
                "preprocessor_config.json"
            ]
        );
        assert!(f("smolvlm", &none).contains(&"config.json".to_string()));
        assert!(f("paligemma", &none).contains(&"onnx/decoder_model_merged.onnx".to_string()));
        assert_eq!(
            f("ppocr", &none),
            [
                "ch_PP-OCRv4_det_infer.onnx",
                "ch_PP-OCRv4_rec_infer.onnx",
                "ch_ppocr_mobile_v2.0_cls_infer.onnx"
            ]
        );
        assert_eq!(f("yolox", &none), ["one .onnx file", "one .txt file"]);
        let quant = BTreeMap::from([("vision".to_string(), "onnx/v_q.onnx".to_string())]);
        assert_eq!(f("clip", &quant)[0], "onnx/v_q.onnx");
        assert!(needs("clip", &BTreeMap::from([("bogus".into(), "x".into())])).is_err());
    }

    #[test]
    fn one_of_counts_top_level_files_only() {
        let n = Need::OneOf("txt");
        assert!(n.satisfied_by(&["a.onnx", "labels.txt", "docs/x.txt"]));
        assert!(!n.satisfied_by(&["a.txt", "b.txt"]));
    }
}
