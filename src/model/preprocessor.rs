//! Hugging Face `preprocessor_config.json` files: the JSON and the normalisation
//! numbers every image processor family reads from it.
//!
//! ```
//! let v = serde_json::json!({"image_mean": [0.5, 0.5, 0.5], "image_std": [1, 2]});
//! let mean = ocellus::model::preprocessor::triple(&v, "image_mean").unwrap();
//! assert_eq!(mean, Some([0.5; 3]));
//! let std = ocellus::model::preprocessor::triple(&v, "image_std").unwrap_err();
//! assert_eq!(std.to_string(), "image_std must have 3 numbers");
//! assert_eq!(ocellus::model::preprocessor::rescale(&v), 1.0 / 255.0);
//! ```

use std::path::Path;

use serde_json::Value;

/// What is wrong with the file (the caller names it).
#[derive(Debug, thiserror::Error)]
pub enum PreprocessorError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error("{key} must have 3 numbers")]
    NotThree { key: String },
}

/// The parsed file.
pub fn read(path: &Path) -> Result<Value, PreprocessorError> {
    let text = std::fs::read_to_string(path)?;
    Ok(serde_json::from_str(&text)?)
}

/// Three numbers under `key` (`image_mean`, `image_std`); `None` when absent.
pub fn triple(v: &Value, key: &str) -> Result<Option<[f32; 3]>, PreprocessorError> {
    let Some(list) = v[key].as_array() else {
        return Ok(None);
    };
    let vals: Vec<f32> = list
        .iter()
        .filter_map(|x| x.as_f64().map(|f| f as f32))
        .collect();
    <[f32; 3]>::try_from(vals)
        .map(Some)
        .map_err(|_| PreprocessorError::NotThree { key: key.into() })
}

/// `rescale_factor` (default 1/255).
pub fn rescale(v: &Value) -> f64 {
    v["rescale_factor"].as_f64().unwrap_or(1.0 / 255.0)
}
