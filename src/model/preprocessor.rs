//! Hugging Face `preprocessor_config.json` files: the JSON and the normalisation
//! numbers every image processor family reads from it.
//!
//! ```
//! let v = serde_json::json!({"image_mean": [0.5, 0.5, 0.5]});
//! assert_eq!(ocellus::model::preprocessor::triple(&v, "image_mean"), Ok(Some([0.5; 3])));
//! assert_eq!(ocellus::model::preprocessor::rescale(&v), 1.0 / 255.0);
//! ```

use std::path::Path;

use serde_json::Value;

/// The parsed file (the error says what is wrong; the caller names the file).
pub fn read(path: &Path) -> Result<Value, String> {
    let text = std::fs::read_to_string(path).map_err(|e| e.to_string())?;
    serde_json::from_str(&text).map_err(|e| e.to_string())
}

/// Three numbers under `key` (`image_mean`, `image_std`); `None` when absent.
pub fn triple(v: &Value, key: &str) -> Result<Option<[f32; 3]>, String> {
    let Some(list) = v[key].as_array() else {
        return Ok(None);
    };
    let vals: Vec<f32> = list
        .iter()
        .filter_map(|x| x.as_f64().map(|f| f as f32))
        .collect();
    <[f32; 3]>::try_from(vals)
        .map(Some)
        .map_err(|_| format!("{key} must have 3 numbers"))
}

/// `rescale_factor` (default 1/255).
pub fn rescale(v: &Value) -> f64 {
    v["rescale_factor"].as_f64().unwrap_or(1.0 / 255.0)
}
