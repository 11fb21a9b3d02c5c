//! Which dual encoder a model folder holds, from its `config.json` (`model_type`:
//! `"clip"` for CLIP and MobileCLIP-style exports, `"siglip"`), unless the model's
//! config says so itself (`model_type = "clip" | "siglip"`), and the numbers of the
//! text tower that `config.json` gives (`text_config.max_position_embeddings`,
//! `text_config.pad_token_id`). A folder without `config.json` is CLIP.

use std::path::Path;

use serde_json::Value;

use crate::model::ClipModelType;

/// What `config.json` (or the override) says.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Family {
    pub model_type: ClipModelType,
    /// The text tower's context length.
    pub max_positions: Option<usize>,
    /// The text tower's pad token.
    pub pad_id: Option<i64>,
}

/// Why `config.json` does not say which dual encoder it is.
#[derive(Debug, thiserror::Error)]
pub enum FamilyError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(
        "model_type {0:?} is not a dual encoder ocellus knows (clip, siglip); \
         set model_type = \"clip\" or \"siglip\" in the model's config if it is one"
    )]
    NotDualEncoder(String),
}

/// `model_type` values that are CLIP-style dual encoders (scored by softmax).
const CLIP_TYPES: [&str; 4] = ["clip", "clip_text_model", "clip_vision_model", "mobileclip"];

/// Reads `config.json` at `path` (absent: CLIP, or `chosen`).
pub(super) fn read(path: &Path, chosen: Option<ClipModelType>) -> Result<Family, FamilyError> {
    if !path.exists() {
        return Ok(Family {
            model_type: chosen.unwrap_or(ClipModelType::Clip),
            max_positions: None,
            pad_id: None,
        });
    }
    let text = std::fs::read_to_string(path)?;
    let v: Value = serde_json::from_str(&text)?;
    let model_type = match (chosen, v["model_type"].as_str()) {
        (Some(t), _) => t,
        (None, Some("siglip" | "siglip_text_model" | "siglip_vision_model")) => {
            ClipModelType::Siglip
        }
        (None, Some(t)) if CLIP_TYPES.contains(&t) => ClipModelType::Clip,
        (None, None) => ClipModelType::Clip,
        (None, Some(t)) => {
            return Err(FamilyError::NotDualEncoder(t.into()));
        }
    };
    let text_config = &v["text_config"];
    Ok(Family {
        model_type,
        max_positions: text_config["max_position_embeddings"]
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .filter(|&n| n > 0),
        pad_id: text_config["pad_token_id"].as_i64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn family(json: &str, chosen: Option<ClipModelType>) -> Result<Family, FamilyError> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("config.json");
        std::fs::write(&path, json).unwrap();
        read(&path, chosen)
    }

    #[test]
    fn model_type_decides_unless_the_config_does() {
        let siglip = r#"{"model_type": "siglip", "text_config": {"max_position_embeddings": 64}}"#;
        let f = family(siglip, None).unwrap();
        assert_eq!(
            (f.model_type, f.max_positions, f.pad_id),
            (ClipModelType::Siglip, Some(64), None)
        );
        assert_eq!(
            family(siglip, Some(ClipModelType::Clip))
                .unwrap()
                .model_type,
            ClipModelType::Clip
        );
        let clip = r#"{"model_type": "clip", "text_config": {"pad_token_id": 1}}"#;
        assert_eq!(family(clip, None).unwrap().pad_id, Some(1));
        assert_eq!(family("{}", None).unwrap().model_type, ClipModelType::Clip);
        assert!(
            family(r#"{"model_type": "bert"}"#, None)
                .unwrap_err()
                .to_string()
                .starts_with("model_type \"bert\" is not a dual encoder ocellus knows")
        );
        assert_eq!(
            family(r#"{"model_type": "bert"}"#, Some(ClipModelType::Siglip))
                .unwrap()
                .model_type,
            ClipModelType::Siglip
        );
        assert!(family("{", None).is_err());
        let none = read(Path::new("/nonexistent/config.json"), None).unwrap();
        assert_eq!(none.model_type, ClipModelType::Clip);
    }
}
