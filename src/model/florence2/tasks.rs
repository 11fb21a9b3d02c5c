//! Florence-2 tasks: the prompt each task token stands for, and the parsing of the
//! generated text (with `<loc_N>` location tokens) into text or boxes, as transformers'
//! `Florence2Processor.post_process_generation` does it.
//!
//! ```
//! use ocellus::model::florence2::{Task, TaskOutput};
//! assert_eq!(Task::Detect.prompt(), "Locate the objects with category name in the image.");
//! let out = Task::Detect.parse("</s><s>car<loc_52><loc_333><loc_932><loc_774></s>");
//! let TaskOutput::Boxes(found) = out else { unreachable!() };
//! assert_eq!(found[0].label, "car");
//! assert_eq!(found[0].bbox, [0.0525, 0.3335, 0.9325, 0.7745]);
//! ```

use serde::Serialize;

/// One Florence-2 task (the subset the daemon asks).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Task {
    Caption,
    DetailedCaption,
    MoreDetailedCaption,
    /// Object detection (`<OD>`).
    Detect,
    /// Text reading (`<OCR>`).
    Ocr,
    /// Phrase grounding (`<CAPTION_TO_PHRASE_GROUNDING>`) of the given phrase(s).
    Ground(String),
}

/// What a task's answer is parsed into.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum TaskOutput {
    Text(String),
    Boxes(Vec<Found>),
}

/// One labelled box; `bbox` is normalised `[x0, y0, x1, y1]` in the encoded image.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Found {
    pub label: String,
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

/// Phrases that phrase grounding drops (transformers' Florence-2 `post_processor_config`).
const BANNED_GROUNDING: &[&str] = &[
    "it",
    "I",
    "me",
    "mine",
    "you",
    "your",
    "yours",
    "he",
    "him",
    "his",
    "she",
    "her",
    "hers",
    "they",
    "them",
    "their",
    "theirs",
    "one",
    "oneself",
    "we",
    "us",
    "our",
    "ours",
    "its",
    "myself",
    "yourself",
    "himself",
    "herself",
    "itself",
    "ourselves",
    "yourselves",
    "themselves",
    "this",
    "that",
    "these",
    "those",
    "who",
    "whom",
    "whose",
    "which",
    "what",
    "all",
    "another",
    "any",
    "anybody",
    "anyone",
    "anything",
    "each",
    "everybody",
    "everyone",
    "everything",
    "few",
    "many",
    "nobody",
    "none",
    "several",
    "some",
    "somebody",
    "someone",
    "something",
    "each other",
    "one another",
    "the image",
    "image",
    "images",
    "the",
    "a",
    "an",
    "a group",
    "other objects",
    "lots",
    "a set",
];

impl Task {
    /// The task token (`<OD>`, ...).
    pub fn token(&self) -> &'static str {
        match self {
            Task::Caption => "<CAPTION>",
            Task::DetailedCaption => "<DETAILED_CAPTION>",
            Task::MoreDetailedCaption => "<MORE_DETAILED_CAPTION>",
            Task::Detect => "<OD>",
            Task::Ocr => "<OCR>",
            Task::Ground(_) => "<CAPTION_TO_PHRASE_GROUNDING>",
        }
    }

    /// The prompt text the processor substitutes for the task token.
    pub fn prompt(&self) -> String {
        match self {
            Task::Caption => "What does the image describe?".into(),
            Task::DetailedCaption => "Describe in detail what is shown in the image.".into(),
            Task::MoreDetailedCaption => {
                "Describe with a paragraph what is shown in the image.".into()
            }
            Task::Detect => "Locate the objects with category name in the image.".into(),
            Task::Ocr => "What is the text in the image?".into(),
            Task::Ground(text) => format!("Locate the phrases in the caption: {}", py_strip(text)),
        }
    }

    /// Parses generated text (special tokens included, as `batch_decode(...,
    /// skip_special_tokens=False)` gives it) into this task's output.
    pub fn parse(&self, text: &str) -> TaskOutput {
        match self {
            Task::Caption | Task::DetailedCaption | Task::MoreDetailedCaption | Task::Ocr => {
                TaskOutput::Text(py_strip(&text.replace("<s>", "").replace("</s>", "")).into())
            }
            Task::Detect => TaskOutput::Boxes(boxes(text, false)),
            Task::Ground(_) => TaskOutput::Boxes(boxes(text, true)),
        }
    }
}

/// transformers' `clean_up_tokenization` (BART's tokenizer sets
/// `clean_up_tokenization_spaces`): drops the space before punctuation and contractions.
pub fn clean_up_tokenization(text: &str) -> String {
    text.replace(" .", ".")
        .replace(" ?", "?")
        .replace(" !", "!")
        .replace(" ,", ",")
        .replace(" ' ", "'")
        .replace(" n't", "n't")
        .replace(" 'm", "'m")
        .replace(" 's", "'s")
        .replace(" 've", "'ve")
        .replace(" 're", "'re")
}

/// Python's `str.strip()` (whitespace at both ends).
fn py_strip(s: &str) -> &str {
    s.trim_matches(char::is_whitespace)
}

/// `<loc_N>` at the start of `s`: (N, length of the token).
fn loc_at(s: &str) -> Option<(u64, usize)> {
    let rest = s.strip_prefix("<loc_")?;
    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    if digits == 0 || rest.as_bytes().get(digits) != Some(&b'>') {
        return None;
    }
    let n = rest[..digits].bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    });
    Some((n, 5 + digits + 1))
}

/// Every match of `([^<]+(?:<loc_\d+>){4,})` in `text`, left to right, as Python's
/// `re.findall` finds them: (label part, location numbers).
fn phrases(text: &str) -> Vec<(&str, Vec<u64>)> {
    let mut found = Vec::new();
    let mut s = 0;
    while s < text.len() {
        if text.as_bytes()[s] == b'<' {
            s += 1;
            continue;
        }
        // `[^<]+` runs to the next '<'; no shorter run can be followed by `<loc_`.
        let Some(e) = text[s..].find('<').map(|i| s + i) else {
            break;
        };
        let mut locs = Vec::new();
        let mut end = e;
        while let Some((n, len)) = loc_at(&text[end..]) {
            locs.push(n);
            end += len;
        }
        if locs.len() >= 4 {
            found.push((&text[s..e], locs));
            s = end;
        } else {
            s = e + 1;
        }
    }
    found
}

/// `description_with_bboxes` (`grounding = false`) or `phrase_grounding` parsing.
fn boxes(text: &str, grounding: bool) -> Vec<Found> {
    let text = text
        .replace("<s>", "")
        .replace("</s>", "")
        .replace("<pad>", "");
    let mut out = Vec::new();
    for (label, locs) in phrases(&text) {
        // `^\s*(.*?)(?=<loc_|...)`: `.` stops at a newline, so a label with one after its
        // leading whitespace does not match.
        if label.trim_start_matches(char::is_whitespace).contains('\n') {
            continue;
        }
        let phrase = py_strip(label);
        if grounding && BANNED_GROUNDING.contains(&phrase) {
            continue;
        }
        // `phrase.encode("ascii", "ignore")`, after the strip.
        let label: String = phrase.chars().filter(char::is_ascii).collect();
        for b in locs.chunks_exact(4) {
            out.push(Found {
                label: label.clone(),
                bbox: [b[0], b[1], b[2], b[3]].map(|n| (n as f32 + 0.5) / 1000.0),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(out: &TaskOutput) -> Vec<&str> {
        match out {
            TaskOutput::Boxes(b) => b.iter().map(|f| f.label.as_str()).collect(),
            TaskOutput::Text(_) => panic!("expected boxes"),
        }
    }

    #[test]
    fn prompts_are_the_processors() {
        assert_eq!(
            Task::Ground("  a person ".into()).prompt(),
            "Locate the phrases in the caption: a person"
        );
        assert_eq!(Task::Caption.prompt(), "What does the image describe?");
        assert_eq!(Task::Ocr.token(), "<OCR>");
    }

    #[test]
    fn text_tasks_drop_start_and_end_tokens_only() {
        let out = Task::Ocr.parse("</s><s>EXIT 12 <pad>  </s>");
        assert_eq!(out, TaskOutput::Text("EXIT 12 <pad>".into()));
    }

    #[test]
    fn boxes_come_in_fours_and_need_four() {
        let out = Task::Detect.parse(
            "</s><s>person<loc_10><loc_20><loc_500><loc_990><loc_600><loc_20><loc_999><loc_998>\
             <loc_7>dog<loc_0><loc_0><loc_0>cat<loc_1><loc_2><loc_3><loc_4></s>",
        );
        // As re.findall: after "dog" (three locations) a match starts inside "<loc_0>".
        assert_eq!(labels(&out), ["person", "person", "loc_0>cat"]);
        let TaskOutput::Boxes(b) = out else {
            unreachable!()
        };
        assert_eq!(b[1].bbox, [0.6005, 0.0205, 0.9995, 0.9985]);
    }

    #[test]
    fn labels_are_stripped_then_made_ascii() {
        let out = Task::Detect.parse(" é café table <loc_1><loc_2><loc_3><loc_4>");
        assert_eq!(labels(&out), [" caf table"]);
    }

    #[test]
    fn grounding_drops_banned_phrases() {
        let out = Task::Ground("x".into())
            .parse("</s><s>it<loc_1><loc_2><loc_3><loc_4>the man<loc_9><loc_9><loc_99><loc_999>");
        assert_eq!(labels(&out), ["the man"]);
        // Detection keeps them.
        let out = Task::Detect.parse("it<loc_1><loc_2><loc_3><loc_4>");
        assert_eq!(labels(&out), ["it"]);
    }

    #[test]
    fn a_tag_tail_can_be_a_label_as_in_python() {
        // re.findall starts a match inside "<od>": "od>car".
        let out = Task::Detect.parse("<od>car<loc_1><loc_2><loc_3><loc_4>");
        assert_eq!(labels(&out), ["od>car"]);
        let out = Task::Detect.parse("<loc_1><loc_2><loc_3><loc_4><loc_5>");
        assert_eq!(labels(&out), ["loc_1>"]);
        let out = Task::Detect.parse("a\nb<loc_1><loc_2><loc_3><loc_4>");
        assert!(labels(&out).is_empty());
        let out = Task::Detect.parse(" \n a<loc_1><loc_2><loc_3><loc_4>");
        assert_eq!(labels(&out), ["a"]);
    }

    #[test]
    fn clean_up_matches_transformers() {
        assert_eq!(
            clean_up_tokenization("it 's a cat . is n't it ?"),
            "it's a cat. isn't it?"
        );
    }
}
