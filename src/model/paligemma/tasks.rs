//! PaliGemma's task prompts (the PaliGemma processor's prefixes: `caption en`,
//! `describe en`, `ocr`, `answer en QUESTION`, `detect a ; b`, `segment x`) and what
//! their answers mean: `<locYYYY>` location tokens become normalised boxes.
//!
//! A detection answer is a `;`-separated list of objects, each four location tokens
//! `<locY0><locX0><locY1><locX1>` (y before x, each `0..=1023` of 1024 bins of the
//! image the encoder saw) and its label; a segmentation answer adds sixteen
//! `<segNNN>` tokens between the box and the label (codes of a mask VAE that the
//! published ONNX export does not include, so ocellus keeps the box and skips them).
//!
//! ```
//! use ocellus::model::paligemma::{Task, boxes};
//! let task = Task::Detect(vec!["cat".into(), "person".into()]);
//! assert_eq!(task.prompt("en"), "detect cat ; person");
//! assert_eq!(Task::Answer("Is the door open?".into()).prompt("en"), "answer en Is the door open?");
//! let found = boxes("<loc0256><loc0000><loc0768><loc0512> cat ; <loc0000><loc0512><loc1024><loc1024> person");
//! assert_eq!(found.len(), 2);
//! assert_eq!(found[0].label, "cat");
//! assert_eq!(found[0].bbox, [0.0, 0.25, 0.5, 0.75]);
//! assert_eq!(found[1].bbox, [0.5, 0.0, 1.0, 1.0]);
//! ```

use crate::model::florence2::Found;

/// Bins of a location token: `<locYYYY>` is `YYYY / 1024` of the side.
const LOC_BINS: f32 = 1024.0;

/// What a PaliGemma prompt asks of an image.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Task {
    /// `caption LANG`: a short caption.
    Caption,
    /// `describe LANG`: a longer description.
    Describe,
    /// `ocr`: the text in the image.
    Ocr,
    /// `answer LANG QUESTION`.
    Answer(String),
    /// `detect a ; b`: boxes of the named objects.
    Detect(Vec<String>),
    /// `segment x`: the box (and mask codes, skipped) of the named object.
    Segment(String),
}

impl Task {
    /// The prompt text (before the processor's `"\n"`).
    pub fn prompt(&self, lang: &str) -> String {
        match self {
            Task::Caption => format!("caption {lang}"),
            Task::Describe => format!("describe {lang}"),
            Task::Ocr => "ocr".into(),
            Task::Answer(q) => format!("answer {lang} {}", q.trim()),
            Task::Detect(objects) => {
                let names: Vec<&str> = objects
                    .iter()
                    .map(|o| o.trim())
                    .filter(|o| !o.is_empty())
                    .collect();
                format!("detect {}", names.join(" ; "))
            }
            Task::Segment(x) => format!("segment {}", x.trim()),
        }
    }

    /// Whether the answer is boxes (detect, segment) rather than text.
    pub fn gives_boxes(&self) -> bool {
        matches!(self, Task::Detect(_) | Task::Segment(_))
    }

    /// The objects of a `detect` task from a query's `labels`, or else from its `ask`
    /// (`"cat ; person"` or `"cat, person"`).
    pub fn detect(labels: &[String], ask: &str) -> Self {
        let objects = if labels.is_empty() {
            ask.split([';', ','])
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect()
        } else {
            labels.to_vec()
        };
        Task::Detect(objects)
    }
}

/// The boxes of a detect or segment answer, normalised `[x0, y0, x1, y1]` in the
/// image the encoder saw (which is the query's region, squashed to a square: the
/// normalised box is the region's). Each run of four location tokens is one box; its
/// label is the text after it up to the next location token or `;`, trimmed, with
/// `<segNNN>` tokens left out. Fewer than four location tokens in a row are no box.
pub fn boxes(text: &str) -> Vec<Found> {
    let mut found = Vec::new();
    let mut rest = text;
    let mut locs: Vec<f32> = Vec::with_capacity(4);
    while !rest.is_empty() {
        if let Some((v, after)) = token(rest, "<loc", 4) {
            locs.push(v as f32 / LOC_BINS);
            rest = after;
            if locs.len() == 4 {
                let (label, after) = label(rest);
                rest = after;
                let [y0, x0, y1, x1] =
                    [locs[0], locs[1], locs[2], locs[3]].map(|v| v.clamp(0.0, 1.0));
                found.push(Found {
                    label,
                    bbox: [x0.min(x1), y0.min(y1), x0.max(x1), y0.max(y1)],
                });
                locs.clear();
            }
            continue;
        }
        locs.clear();
        let mut chars = rest.chars();
        chars.next();
        rest = chars.as_str();
    }
    found
}

/// `<locNNNN>` (or `<segNNN>`) at the start of `s`: its number and the rest.
fn token<'a>(s: &'a str, open: &str, digits: usize) -> Option<(u32, &'a str)> {
    let body = s.strip_prefix(open)?;
    let num = body.get(..digits)?;
    if !num.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let after = body[digits..].strip_prefix('>')?;
    Some((num.parse().ok()?, after))
}

/// The label after a box: up to the next `<loc` or `;`, `<segNNN>` tokens skipped.
fn label(mut s: &str) -> (String, &str) {
    let mut label = String::new();
    loop {
        if let Some((_, after)) = token(s, "<seg", 3) {
            s = after;
            continue;
        }
        if s.is_empty() || s.starts_with("<loc") {
            break;
        }
        if let Some(after) = s.strip_prefix(';') {
            s = after;
            break;
        }
        let mut chars = s.chars();
        if let Some(c) = chars.next() {
            label.push(c);
        }
        s = chars.as_str();
    }
    (label.trim().to_string(), s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_are_the_processors() {
        assert_eq!(Task::Caption.prompt("en"), "caption en");
        assert_eq!(Task::Describe.prompt("de"), "describe de");
        assert_eq!(Task::Ocr.prompt("en"), "ocr");
        assert_eq!(Task::Segment(" cat ".into()).prompt("en"), "segment cat");
        assert_eq!(
            Task::detect(&[], "cat, person ; dog").prompt("en"),
            "detect cat ; person ; dog"
        );
        assert_eq!(
            Task::detect(&["car".into()], "ignored").prompt("en"),
            "detect car"
        );
    }

    #[test]
    fn location_runs_become_boxes_and_seg_codes_are_skipped() {
        // Segment output: box, 16 mask codes, label.
        let seg: String = (0..16).map(|i| format!("<seg{i:03}>")).collect();
        let text = format!("<loc0512><loc0256><loc1023><loc0768>{seg} cat");
        let f = boxes(&text);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].label, "cat");
        assert_eq!(f[0].bbox, [0.25, 0.5, 0.75, 1023.0 / 1024.0]);
        // Reversed corners are ordered; fewer than four locations are no box.
        let f = boxes("<loc0100><loc0900><loc0050><loc0100>a b<loc0001><loc0002> c");
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].label, "a b");
        assert_eq!(f[0].bbox[0], 100.0 / 1024.0);
        assert_eq!(f[0].bbox[2], 900.0 / 1024.0);
        // Malformed tokens and plain text give nothing.
        assert!(boxes("<loc12><loc0001x> nothing here").is_empty());
        // Two boxes back to back: the first has an empty label.
        let f =
            boxes("<loc0000><loc0000><loc0010><loc0010><loc0000><loc0000><loc0020><loc0020> dog");
        assert_eq!(f.len(), 2);
        assert_eq!((f[0].label.as_str(), f[1].label.as_str()), ("", "dog"));
    }
}
