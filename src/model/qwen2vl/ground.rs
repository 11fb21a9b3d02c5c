//! Detection and grounding with Qwen's JSON output: the prompt asks for boxes "in JSON
//! format" and the model answers `[{"bbox_2d": [x0, y0, x1, y1], "label": "cat"}, ...]`
//! (often inside a ```` ```json ```` fence), in pixels of the RESIZED image the vision
//! encoder saw (Qwen2.5-VL's absolute coordinates). [`parse_boxes`] turns that into
//! boxes normalised in the encoded image; anything else is a [`Qwen2VlError::Grounding`]
//! error, counted by the model ([`Qwen2Vl::grounding_failures`]) and logged by the
//! caller, never a panic.
//!
//! ```
//! use ocellus::model::qwen2vl::parse_boxes;
//! let text = "```json\n[{\"bbox_2d\": [14, 0, 56, 28], \"label\": \"cat\"}]\n```";
//! let found = parse_boxes(text, (56, 28), "object").unwrap();
//! assert_eq!(found[0].label, "cat");
//! assert_eq!(found[0].bbox, [0.25, 0.0, 1.0, 1.0]);
//! assert!(parse_boxes("a cat on a sofa", (56, 28), "object").is_err());
//! ```

use serde_json::Value;

use super::decode::Generated;
use super::error::Qwen2VlError;
use super::model::{Qwen2Vl, Qwen2VlSessions};
use super::prefix::ImagePrefix;
use crate::model::florence2::Found;
use crate::model::{Cancel, ModelError};

/// The prompt of a `caption` query that asks nothing of its own.
pub const CAPTION_PROMPT: &str = "Describe this image.";

/// The prompt of a `read` query that asks nothing of its own.
pub const READ_PROMPT: &str = "Read all the text in the image.";

/// The prompt of a `detect` query: every object of `labels`, else of `ask`, else any
/// object.
pub fn detect_prompt(labels: &[String], ask: &str) -> String {
    let what = match (labels.is_empty(), ask.trim()) {
        (false, _) => labels.join(", "),
        (true, "") => "object".to_string(),
        (true, ask) => ask.to_string(),
    };
    format!("Locate every {what} in the image and output the bbox coordinates in JSON format.")
}

/// The prompt of a `ground` query: the region `phrase` describes.
pub fn ground_prompt(phrase: &str) -> String {
    format!("Locate {phrase} in the image and output its bbox coordinates in JSON format.")
}

/// Qwen's JSON boxes in `text`, normalised by the resized image's `(width, height)`;
/// a box without a label gets `label`.
pub fn parse_boxes(
    text: &str,
    resized: (u32, u32),
    label: &str,
) -> Result<Vec<Found>, Qwen2VlError> {
    let bad = |why: &str| Qwen2VlError::Grounding {
        why: why.into(),
        text: text.chars().take(200).collect(),
    };
    let body = match text.find("```") {
        Some(i) => {
            let rest = &text[i + 3..];
            let rest = rest.strip_prefix("json").unwrap_or(rest);
            rest.split("```").next().unwrap_or(rest)
        }
        None => text,
    };
    let start = body
        .find(['[', '{'])
        .ok_or_else(|| bad("no JSON array or object"))?;
    let value = serde_json::Deserializer::from_str(&body[start..])
        .into_iter::<Value>()
        .next()
        .ok_or_else(|| bad("no JSON value"))?
        .map_err(|e| bad(&e.to_string()))?;
    let items = match value {
        Value::Array(items) => items,
        one @ Value::Object(_) => vec![one],
        _ => return Err(bad("neither an array nor an object")),
    };
    let (w, h) = (resized.0.max(1) as f32, resized.1.max(1) as f32);
    let mut found = Vec::with_capacity(items.len());
    for item in &items {
        let coords: Vec<f32> = item["bbox_2d"]
            .as_array()
            .ok_or_else(|| bad("an item without bbox_2d"))?
            .iter()
            .map(|v| v.as_f64().map(|x| x as f32))
            .collect::<Option<_>>()
            .ok_or_else(|| bad("bbox_2d must hold numbers"))?;
        let [x0, y0, x1, y1] = coords[..] else {
            return Err(bad("bbox_2d must hold 4 numbers"));
        };
        if ![x0, y0, x1, y1].iter().all(|v| v.is_finite()) {
            return Err(bad("bbox_2d must be finite"));
        }
        let nx = |x: f32| (x / w).clamp(0.0, 1.0);
        let ny = |y: f32| (y / h).clamp(0.0, 1.0);
        found.push(Found {
            label: item["label"].as_str().unwrap_or(label).to_string(),
            bbox: [
                nx(x0.min(x1)),
                ny(y0.min(y1)),
                nx(x0.max(x1)),
                ny(y0.max(y1)),
            ],
        });
    }
    Ok(found)
}

impl Qwen2Vl {
    /// Greedy answer to a grounding `prompt` ([`detect_prompt`], [`ground_prompt`]) on
    /// `prefix`, parsed as Qwen's JSON boxes normalised in the encoded image (region);
    /// an answer that is not such JSON is an error, and counted.
    pub fn locate_with(
        &self,
        s: &Qwen2VlSessions,
        prefix: &ImagePrefix,
        prompt: &str,
        label: &str,
        max_tokens: usize,
        cancel: &Cancel,
    ) -> Result<(Vec<Found>, Generated), ModelError> {
        let generated = self.answer_with(s, prefix, prompt, max_tokens, cancel)?;
        match parse_boxes(&generated.text, prefix.resized(), label) {
            Ok(found) => Ok((found, generated)),
            Err(e) => {
                self.grounding_failures.inc();
                let n = self.grounding_failures.get();
                tracing::trace!(model = %self.name, failures = n, "{e}");
                Err(self.run_error(e))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn boxes_are_normalised_by_the_resized_image() {
        let text =
            r#"[{"bbox_2d": [28, 14, 84, 56], "label": "cat"}, {"bbox_2d": [84, 56, 0, 0]}]"#;
        let found = parse_boxes(text, (112, 56), "thing").unwrap();
        assert_eq!(found.len(), 2);
        assert_eq!(found[0].bbox, [0.25, 0.25, 0.75, 1.0]);
        assert_eq!(found[1].label, "thing");
        assert_eq!(found[1].bbox, [0.0, 0.0, 0.75, 1.0]);
        // One object, trailing text, a fence without "json".
        let one = "Here: ```\n{\"bbox_2d\": [0, 0, 200, 10], \"label\": \"x\"}\n``` done";
        assert_eq!(
            parse_boxes(one, (100, 10), "y").unwrap()[0].bbox,
            [0.0, 0.0, 1.0, 1.0]
        );
        assert!(parse_boxes("[]", (10, 10), "y").unwrap().is_empty());
    }

    #[test]
    fn malformed_json_is_an_error_not_a_panic() {
        for text in [
            "",
            "no boxes here",
            "[{\"bbox_2d\": [1, 2, 3]}]",
            "[{\"bbox_2d\": [1, 2, 3, \"a\"]}]",
            "[{\"label\": \"cat\"}]",
            "[{\"bbox_2d\": [1, 2, 3, 4]",
            "\"just a string\"",
            "[1e999, 2]",
        ] {
            let e = parse_boxes(text, (10, 10), "y").unwrap_err();
            assert!(e.to_string().contains("bbox_2d"), "{text:?}: {e}");
        }
    }
}
