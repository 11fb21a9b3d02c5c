//! What a served model's reply means: p(yes) from the first answer token's top
//! log-probabilities, and the JSON answers of yes/no, classify and detect (the JSON
//! found in the text, a Markdown code fence around it allowed). Boxes come in two
//! conventions, both taken: Qwen-style `bbox_2d: [x1, y1, x2, y2]` in the sent image's
//! pixels and Gemini-style `box_2d: [ymin, xmin, ymax, xmax]` on a 0–1000 grid.
//!
//! ```
//! use ocellus::model::remote::parse::{boxes, json_in, yes_from_top};
//! let top = [("Yes".to_string(), -0.105), ("No".to_string(), -2.303)];
//! let p = yes_from_top(&top).unwrap();
//! assert!((p - 0.9).abs() < 1e-3);
//! let v = json_in("```json\n[{\"label\": \"car\", \"bbox_2d\": [64, 0, 128, 72]}]\n```").unwrap();
//! let (found, dropped) = boxes(&v, (256, 144)).unwrap();
//! assert_eq!((found[0].bbox, dropped), ([0.25, 0.0, 0.5, 0.5], 0));
//! ```

use serde_json::Value;

use crate::model::florence2::Found;

/// Most boxes one reply may give (more are dropped).
pub const MAX_BOXES: usize = 100;

/// The yes or no a token stands for (`Yes`, ` yes`, `YES`, `no.` ...), if it does.
fn yes_or_no(token: &str) -> Option<bool> {
    let t = token
        .trim()
        .trim_matches(|c: char| c.is_ascii_punctuation())
        .to_ascii_lowercase();
    match t.as_str() {
        "yes" => Some(true),
        "no" => Some(false),
        _ => None,
    }
}

/// p(yes) from a token's top log-probabilities: the probability of the yes variants
/// over that of the yes and no variants together. When only one side is among the
/// top tokens, the other is taken at the least probability listed (an upper bound of
/// what it can be), so a short list never gives a certainty it does not show.
/// `None` when no variant of either is listed.
pub fn yes_from_top(top: &[(String, f32)]) -> Option<f32> {
    let (mut yes, mut no, mut any_yes, mut any_no) = (0f64, 0f64, false, false);
    let mut least = f64::INFINITY;
    for (token, logprob) in top {
        let p = f64::from(*logprob).exp();
        if !p.is_finite() {
            continue;
        }
        least = least.min(p);
        match yes_or_no(token) {
            Some(true) => (yes, any_yes) = (yes + p, true),
            Some(false) => (no, any_no) = (no + p, true),
            None => {}
        }
    }
    if !any_yes && !any_no {
        return None;
    }
    if !any_yes {
        yes = least;
    }
    if !any_no {
        no = least;
    }
    let total = yes + no;
    (total > 0.0).then(|| (yes / total) as f32)
}

/// The JSON value in a model's text: the whole text, or inside a Markdown code fence,
/// or from its first `{` or `[` to the matching last `}` or `]`.
pub fn json_in(text: &str) -> Result<Value, String> {
    let t = text.trim();
    if let Ok(v) = serde_json::from_str(t) {
        return Ok(v);
    }
    let fenced = t
        .split_once("```")
        .map(|(_, rest)| rest.trim_start_matches("json").trim_start())
        .and_then(|rest| rest.split_once("```").map(|(body, _)| body.trim()));
    if let Some(body) = fenced
        && let Ok(v) = serde_json::from_str(body)
    {
        return Ok(v);
    }
    for (open, close) in [('{', '}'), ('[', ']')] {
        if let (Some(a), Some(b)) = (t.find(open), t.rfind(close))
            && a < b
            && let Ok(v) = serde_json::from_str(&t[a..=b])
        {
            return Ok(v);
        }
    }
    Err(format!("no JSON in {}", crate::kit::shown(t)))
}

/// p(yes) of `{"answer": "yes"|"no", "confidence": 0..1}` (a confidence of the answer
/// given; without one the answer counts as certain).
pub fn yes_from_json(v: &Value) -> Result<f32, String> {
    let answer = v
        .get("answer")
        .and_then(Value::as_str)
        .and_then(yes_or_no)
        .ok_or_else(|| format!("no \"answer\": \"yes\"|\"no\" in {}", short(v)))?;
    let confidence = confidence_of(v)?.unwrap_or(1.0);
    Ok(if answer { confidence } else { 1.0 - confidence })
}

/// The label and confidence of `{"label": one of labels, "confidence": 0..1}`
/// (matched without regard to case; the configured spelling is returned).
pub fn label_from_json(v: &Value, labels: &[String]) -> Result<(String, Option<f32>), String> {
    let said = v
        .get("label")
        .or_else(|| v.get("answer"))
        .and_then(Value::as_str)
        .ok_or_else(|| format!("no \"label\" in {}", short(v)))?;
    let label = labels
        .iter()
        .find(|l| l.trim().eq_ignore_ascii_case(said.trim()))
        .ok_or_else(|| format!("label {} is not one of {labels:?}", crate::kit::shown(said)))?;
    Ok((label.clone(), confidence_of(v)?))
}

fn confidence_of(v: &Value) -> Result<Option<f32>, String> {
    match v.get("confidence") {
        None | Some(Value::Null) => Ok(None),
        Some(c) => match c.as_f64() {
            Some(c) if (0.0..=1.0).contains(&c) => Ok(Some(c as f32)),
            _ => Err(format!("confidence {c} is not a number in 0..1")),
        },
    }
}

/// The boxes of a detect or ground reply, normalised to `[x0, y0, x1, y1]` in 0..1
/// of the sent image (`sent` = its width and height), and how many items were
/// dropped as invalid (no box, not four finite numbers, empty after clamping). The
/// reply is a list of objects, or an object holding one (`objects`, `boxes`,
/// `detections`); an empty list is an answer (nothing found).
pub fn boxes(v: &Value, sent: (u32, u32)) -> Result<(Vec<Found>, usize), String> {
    let single = std::slice::from_ref(v);
    let items: &[Value] = match v {
        Value::Array(items) => items,
        Value::Object(map) if map.contains_key("bbox_2d") || map.contains_key("box_2d") => single,
        Value::Object(map) => ["objects", "boxes", "detections", "results"]
            .iter()
            .find_map(|k| map.get(*k).and_then(Value::as_array))
            .ok_or_else(|| format!("no list of boxes in {}", short(v)))?,
        _ => return Err(format!("no list of boxes in {}", short(v))),
    };
    let (w, h) = (f64::from(sent.0.max(1)), f64::from(sent.1.max(1)));
    let mut found = Vec::new();
    let mut dropped = 0;
    for item in items.iter().take(MAX_BOXES) {
        match one_box(item, w, h) {
            Some(f) => found.push(f),
            None => dropped += 1,
        }
    }
    dropped += items.len().saturating_sub(MAX_BOXES);
    Ok((found, dropped))
}

fn one_box(item: &Value, w: f64, h: f64) -> Option<Found> {
    let four = |v: &Value| -> Option<[f64; 4]> {
        let a = v.as_array()?;
        if a.len() != 4 {
            return None;
        }
        let mut out = [0.0; 4];
        for (o, x) in out.iter_mut().zip(a) {
            *o = x.as_f64().filter(|x| x.is_finite())?;
        }
        Some(out)
    };
    let [x0, y0, x1, y1] = if let Some([x0, y0, x1, y1]) = item.get("bbox_2d").and_then(four) {
        [x0 / w, y0 / h, x1 / w, y1 / h]
    } else if let Some([ymin, xmin, ymax, xmax]) = item.get("box_2d").and_then(four) {
        [xmin / 1000.0, ymin / 1000.0, xmax / 1000.0, ymax / 1000.0]
    } else {
        return None;
    };
    let c = |x: f64| x.clamp(0.0, 1.0) as f32;
    let bbox = [c(x0.min(x1)), c(y0.min(y1)), c(x0.max(x1)), c(y0.max(y1))];
    if bbox[2] <= bbox[0] || bbox[3] <= bbox[1] {
        return None;
    }
    let label = item
        .get("label")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .trim();
    Some(Found {
        label: label.chars().take(64).collect(),
        bbox,
    })
}

/// A value shown in a message, cut to 64 characters.
fn short(v: &Value) -> String {
    crate::kit::shown(&v.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn top(pairs: &[(&str, f32)]) -> Vec<(String, f32)> {
        pairs.iter().map(|(t, l)| (t.to_string(), *l)).collect()
    }

    #[test]
    fn yes_and_no_variants_are_summed_and_normalised() {
        let p = yes_from_top(&top(&[
            ("Yes", (0.6f32).ln()),
            (" yes", (0.1f32).ln()),
            ("No", (0.2f32).ln()),
            ("Maybe", (0.1f32).ln()),
        ]))
        .unwrap();
        assert!((p - 0.7 / 0.9).abs() < 1e-6, "{p}");
        // Only "no" listed: yes is bounded by the least listed probability.
        let p = yes_from_top(&top(&[("No", (0.9f32).ln()), ("The", (0.05f32).ln())])).unwrap();
        assert!((p - 0.05 / 0.95).abs() < 1e-6, "{p}");
        assert_eq!(yes_from_top(&top(&[("The", -0.1)])), None);
    }

    #[test]
    fn json_answers_are_found_and_checked() {
        assert_eq!(
            yes_from_json(&json_in("{\"answer\": \"no\", \"confidence\": 0.8}").unwrap()),
            Ok(0.19999999)
        );
        assert!(yes_from_json(&json!({"answer": "perhaps"})).is_err());
        assert!(yes_from_json(&json!({"answer": "yes", "confidence": 7})).is_err());
        let labels = ["red".to_string(), "green".to_string()];
        assert_eq!(
            label_from_json(&json!({"label": "Green", "confidence": 0.5}), &labels),
            Ok(("green".to_string(), Some(0.5)))
        );
        assert!(label_from_json(&json!({"label": "blue"}), &labels).is_err());
        assert!(json_in("I think it is open").is_err());
        assert!(json_in("Sure! {\"answer\": \"yes\"} Hope that helps.").is_ok());
    }

    #[test]
    fn both_box_conventions_are_normalised_and_bad_items_dropped() {
        let v = json!({"objects": [
            {"label": "person", "box_2d": [0, 500, 500, 1000]},
            {"label": "car", "bbox_2d": [0, 72, 128, 144]},
            {"label": "nan", "bbox_2d": [1, 2, 3]},
            {"label": "flat", "bbox_2d": [10, 10, 10, 50]},
            {"label": "nobox"}
        ]});
        let (found, dropped) = boxes(&v, (256, 144)).unwrap();
        assert_eq!(dropped, 3);
        assert_eq!(found[0].bbox, [0.5, 0.0, 1.0, 0.5]);
        assert_eq!(found[0].label, "person");
        assert_eq!(found[1].bbox, [0.0, 0.5, 0.5, 1.0]);
        assert_eq!(boxes(&json!([]), (1, 1)).unwrap().0.len(), 0);
        assert!(boxes(&json!({"answer": "yes"}), (1, 1)).is_err());
        assert!(boxes(&json!("text"), (1, 1)).is_err());
    }
}
