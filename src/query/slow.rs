//! Slow standing queries — answered by generative VLMs (florence2, smolvlm, paligemma),
//! served models (openai, ollama) or the OCR pipeline (ppocr) on the camera's slow lane at the query's own cadence
//! rather than on every frame. A query turns what its model produced ([`Outcome`])
//! into an answer and feeds the same state machine as the per-frame queries:
//! `caption`, `answer` and `read` give text (`read` with a `pattern` gives the
//! number it matched), `detect` and `ground` give a count and boxes, smolvlm and
//! paligemma `yes_no` give p(yes) with hysteresis.
//!
//! ```
//! use ocellus::query::{Answer, slow::extract};
//! let re = regex::Regex::new(r"(\d+\.\d)\s*bar").unwrap();
//! assert_eq!(extract(&re, "PRESSURE 12.5 bar"), Some(Answer::Number(12.5)));
//! assert_eq!(extract(&re, "no reading"), None);
//! ```

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use regex::Regex;

use super::error::BindError;
use super::limits::MAX_PATTERN_COMPILED_BYTES;
use super::support::{self, Lane};
use super::tracker::Tracker;
use super::{Answer, Detail, Evaluation, QueryConfig, QueryKind};
use crate::model::florence2::{Found, Task};
use crate::model::paligemma;
use crate::model::{Detection, Loaded, ModelError, Registry};

/// Which model call answers the query.
pub enum Ask {
    /// florence2: one task prompt.
    Florence(Task),
    /// smolvlm, paligemma: p(yes) of the question in one decoder step.
    YesNo(String),
    /// smolvlm: a generated answer to the question.
    Answer(String),
    /// ppocr: the text lines of the region.
    Ocr,
    /// A served model (openai, ollama).
    Remote(RemoteAsk),
    /// paligemma: one task prompt (`yes_no` is [`Ask::YesNo`]).
    PaliGemma(paligemma::Task),
    /// qwen2vl detect/ground: a grounding prompt whose answer is JSON boxes; `label`
    /// names a box the model leaves unlabelled.
    Locate { prompt: String, label: String },
}

/// What a query asks a served model.
pub enum RemoteAsk {
    /// p(yes) of the question.
    YesNo(String),
    /// One of the labels, for the question (may be empty).
    Classify {
        /// The question (`ask`; may be empty).
        question: String,
        /// The labels to choose from.
        labels: Vec<String>,
    },
    /// A text answer to the prompt (caption, answer, read).
    Text(String),
    /// Boxes of the objects or phrase.
    Boxes(String),
}

/// What the model produced for one query on one frame.
pub enum Outcome {
    /// Generated or read text; `score` when the model gives one (OCR confidence).
    Text {
        /// The text.
        text: String,
        /// The model's confidence in it, 0..1, when it gives one (OCR).
        score: Option<f32>,
    },
    /// Boxes normalised in the FRAME.
    Boxes(Vec<Found>),
    /// p(yes).
    Probability(f32),
    /// p(yes) of a served model, and how it was obtained.
    Judged(crate::model::remote::Judged),
    /// classify: one of the labels, with the model's confidence when it gives one.
    Label {
        /// The label, spelled as configured.
        label: String,
        /// The model's confidence in it, 0..1.
        confidence: Option<f32>,
    },
}

/// A slow query bound to its loaded model.
pub struct SlowQuery {
    /// The query as configured.
    pub config: QueryConfig,
    track: Tracker,
    loaded: Arc<Loaded>,
    ask: Ask,
    pattern: Option<Regex>,
    max_tokens: Option<usize>,
}

impl SlowQuery {
    /// Binds `config` to its slow model; `None` when the model is not a slow one
    /// (the query is a per-frame one).
    pub fn prepare(config: &QueryConfig, models: &Registry) -> Option<Result<Self, BindError>> {
        let loaded = models.get(&config.model)?.clone();
        match support::lane(support::family(&loaded), config.kind) {
            Some(Lane::Slow) => {}
            Some(Lane::Frame) => return None,
            None if !loaded.is_slow() => return None, // refused by the per-frame lane
            None => return Some(Err(cannot(config, config.kind))),
        }
        let ask = match (loaded.as_ref(), config.kind) {
            (Loaded::Florence2 { .. }, kind) => Ask::Florence(match kind {
                QueryKind::Caption => match config.detail {
                    Detail::Brief => Task::Caption,
                    Detail::Detailed => Task::DetailedCaption,
                    Detail::MoreDetailed => Task::MoreDetailedCaption,
                },
                QueryKind::Detect => Task::Detect,
                QueryKind::Read => Task::Ocr,
                QueryKind::Ground => Task::Ground(config.ask.clone()),
                other => return Some(Err(cannot(config, other))),
            }),
            (Loaded::Smolvlm { .. }, QueryKind::YesNo) => Ask::YesNo(config.ask.clone()),
            (Loaded::Smolvlm { .. }, QueryKind::Answer | QueryKind::Caption) => {
                Ask::Answer(config.ask.clone())
            }
            (Loaded::Ppocr { .. }, QueryKind::Read) => Ask::Ocr,
            (Loaded::Remote { .. }, kind) => match remote_ask(config, kind) {
                Some(ask) => Ask::Remote(ask),
                None => return Some(Err(cannot(config, kind))),
            },
            (Loaded::Paligemma { .. }, QueryKind::YesNo) => Ask::YesNo(config.ask.clone()),
            (Loaded::Paligemma { .. }, kind) => Ask::PaliGemma(match kind {
                QueryKind::Caption => match config.detail {
                    Detail::Brief => paligemma::Task::Caption,
                    Detail::Detailed | Detail::MoreDetailed => paligemma::Task::Describe,
                },
                QueryKind::Answer => paligemma::Task::Answer(config.ask.clone()),
                QueryKind::Read => paligemma::Task::Ocr,
                QueryKind::Detect => paligemma::Task::detect(&config.labels, &config.ask),
                QueryKind::Ground => paligemma::Task::Detect(vec![config.ask.clone()]),
                other => return Some(Err(cannot(config, other))),
            }),
            (Loaded::Qwen2vl { .. }, kind) => match qwen_ask(config, kind) {
                Some(ask) => ask,
                None => return Some(Err(cannot(config, kind))),
            },
            (_, other) => return Some(Err(cannot(config, other))),
        };
        let pattern = config.pattern.as_deref().map(|p| {
            regex::RegexBuilder::new(p)
                .size_limit(MAX_PATTERN_COMPILED_BYTES)
                .build()
        });
        let pattern = match pattern.transpose() {
            Ok(p) => p,
            Err(e) => return Some(Err(BindError::Pattern(e))),
        };
        let query = Self {
            track: Tracker::new(config),
            loaded,
            ask,
            pattern,
            max_tokens: config.max_tokens,
            config: config.clone(),
        };
        // A prompt longer than its model takes is refused here, when the query is
        // set (config, MQTT or HTTP), not later when the camera's slow lane is built.
        if let Err(e) = query.check_prompt() {
            return Some(Err(e.into()));
        }
        Some(Ok(query))
    }

    /// The query's id.
    pub fn id(&self) -> &Arc<str> {
        &self.track.id
    }

    /// Refuses the query when its prompt (a SmolVLM question, a Florence-2 task
    /// text) is longer than its model takes; tokenises it, no ONNX work.
    fn check_prompt(&self) -> Result<(), ModelError> {
        match (self.loaded.as_ref(), &self.ask) {
            (Loaded::Florence2 { model, .. }, Ask::Florence(task)) => {
                model.check_task(task).map(drop)
            }
            (Loaded::Smolvlm { model, .. }, Ask::YesNo(question) | Ask::Answer(question)) => {
                model.check_question(question).map(drop)
            }
            (Loaded::Paligemma { model, .. }, Ask::YesNo(question)) => {
                model.check_question(question).map(drop)
            }
            (Loaded::Paligemma { model, .. }, Ask::PaliGemma(task)) => {
                model.check_task(task).map(drop)
            }
            (
                Loaded::Qwen2vl { model, .. },
                Ask::YesNo(question)
                | Ask::Answer(question)
                | Ask::Locate {
                    prompt: question, ..
                },
            ) => model.check_question(question).map(drop),
            _ => Ok(()),
        }
    }

    /// The name of the query's model.
    pub fn model(&self) -> &Arc<str> {
        &self.track.model
    }

    /// The loaded model the query runs on.
    pub fn loaded(&self) -> &Arc<Loaded> {
        &self.loaded
    }

    /// What the query asks its model.
    pub fn ask(&self) -> &Ask {
        &self.ask
    }

    /// The query's region, normalised; `None` for the whole frame.
    pub fn region(&self) -> Option<[f32; 4]> {
        self.config.region
    }

    /// The query's token cap, if it sets one.
    pub fn max_tokens(&self) -> Option<usize> {
        self.max_tokens
    }

    /// Turns one run's outcome into the query's answer (through the state machine),
    /// adding found boxes to `detections`. `None` when the outcome gives no answer
    /// (a `pattern` that did not match).
    pub fn conclude(
        &mut self,
        outcome: Outcome,
        (now, pts): (SystemTime, Duration),
        detections: &mut Vec<Detection>,
    ) -> Option<Evaluation> {
        let cfg = &self.config;
        let mut confidence = None;
        let mut score_from = None;
        let (score, proposed) = match outcome {
            Outcome::Probability(p) => (p, self.track.propose_yes_no(p, cfg)),
            Outcome::Judged(j) => {
                score_from = Some(j.from.name());
                let proposed = self.track.propose_yes_no(j.p_yes, cfg);
                confidence = Some(match proposed {
                    Answer::YesNo(false) => 1.0 - j.p_yes,
                    _ => j.p_yes,
                });
                (j.p_yes, proposed)
            }
            Outcome::Label {
                label,
                confidence: c,
            } => {
                confidence = c;
                (
                    c.unwrap_or(f32::NAN),
                    Answer::Label(Arc::from(label.as_str())),
                )
            }
            Outcome::Text { text, score } => {
                let answer = match &self.pattern {
                    Some(re) => extract(re, &text)?,
                    None => Answer::Text(Arc::from(text.trim())),
                };
                (score.unwrap_or(f32::NAN), answer)
            }
            Outcome::Boxes(found) => {
                let mut n = 0;
                for f in found {
                    if cfg.kind == QueryKind::Detect
                        && !cfg.labels.is_empty()
                        && !cfg.labels.iter().any(|l| l.eq_ignore_ascii_case(&f.label))
                    {
                        continue;
                    }
                    n += 1;
                    detections.push(Detection {
                        class: 0,
                        label: Arc::from(f.label.as_str()),
                        score: f32::NAN,
                        bbox: f.bbox,
                        model: Some(self.track.model.clone()),
                    });
                }
                (f32::NAN, Answer::Count(n))
            }
        };
        let mut e = self.track.settle(cfg, score, proposed, (now, pts));
        e.confidence = confidence;
        e.score_from = score_from;
        Some(e)
    }
}

/// What a query of `kind` asks a served model; `None` for a kind it does not answer.
fn remote_ask(config: &QueryConfig, kind: QueryKind) -> Option<RemoteAsk> {
    let ask = config.ask.trim();
    let or = |default: &str| {
        if ask.is_empty() {
            default.to_string()
        } else {
            ask.to_string()
        }
    };
    Some(match kind {
        QueryKind::YesNo => RemoteAsk::YesNo(ask.to_string()),
        QueryKind::Classify => RemoteAsk::Classify {
            question: ask.to_string(),
            labels: config.labels.clone(),
        },
        QueryKind::Caption => RemoteAsk::Text(or(match config.detail {
            Detail::Brief => "Describe the image in one sentence.",
            Detail::Detailed => "Describe the image in detail.",
            Detail::MoreDetailed => "Describe the image in as much detail as you can.",
        })),
        QueryKind::Answer => RemoteAsk::Text(ask.to_string()),
        QueryKind::Read => RemoteAsk::Text(or(
            "Read all the text in the image. Reply with the text only, nothing else.",
        )),
        QueryKind::Detect if !config.labels.is_empty() => {
            RemoteAsk::Boxes(config.labels.join(", "))
        }
        QueryKind::Detect | QueryKind::Ground => RemoteAsk::Boxes(or("object")),
        QueryKind::Count => return None,
    })
}

/// What a qwen2vl model is asked for a query of `kind`: the question, or the kind's
/// default prompt when `ask` is empty (caption, read, detect).
fn qwen_ask(config: &QueryConfig, kind: QueryKind) -> Option<Ask> {
    use crate::model::qwen2vl::{CAPTION_PROMPT, READ_PROMPT, detect_prompt, ground_prompt};
    let or = |default: &str| {
        let ask = config.ask.trim();
        if ask.is_empty() { default } else { ask }.to_string()
    };
    Some(match kind {
        QueryKind::YesNo => Ask::YesNo(config.ask.clone()),
        QueryKind::Answer => Ask::Answer(config.ask.clone()),
        QueryKind::Caption => Ask::Answer(or(CAPTION_PROMPT)),
        QueryKind::Read => Ask::Answer(or(READ_PROMPT)),
        QueryKind::Detect => Ask::Locate {
            prompt: detect_prompt(&config.labels, &config.ask),
            label: config
                .labels
                .first()
                .cloned()
                .unwrap_or_else(|| or("object")),
        },
        QueryKind::Ground => Ask::Locate {
            prompt: ground_prompt(config.ask.trim()),
            label: config.ask.trim().to_string(),
        },
        _ => return None,
    })
}

fn cannot(config: &QueryConfig, kind: QueryKind) -> BindError {
    BindError::Cannot {
        model: config.model.clone(),
        kind: kind.name(),
    }
}

/// The first match of `re` in `text` (its first group when it has one): a number
/// when it parses as one (a decimal comma counts as a point), else the text.
pub fn extract(re: &Regex, text: &str) -> Option<Answer> {
    let caps = re.captures(text)?;
    let m = caps.get(1).or_else(|| caps.get(0))?.as_str().trim();
    let number = m.replace(',', ".");
    Some(match number.parse::<f64>() {
        Ok(n) if n.is_finite() => Answer::Number(n),
        _ => Answer::Text(Arc::from(m)),
    })
}

/// Maps a box normalised in `region` to the frame.
pub fn to_frame(bbox: [f32; 4], region: Option<[f32; 4]>) -> [f32; 4] {
    let Some([x0, y0, x1, y1]) = region else {
        return bbox;
    };
    let (w, h) = (x1 - x0, y1 - y0);
    [
        x0 + bbox[0] * w,
        y0 + bbox[1] * h,
        x0 + bbox[2] * w,
        y0 + bbox[3] * h,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extract_takes_the_first_group_and_parses_numbers() {
        let re = Regex::new(r"(\d+[.,]\d)").unwrap();
        assert_eq!(extract(&re, "T 21,5 C"), Some(Answer::Number(21.5)));
        let whole = Regex::new(r"[A-Z]+ \d").unwrap();
        assert_eq!(
            extract(&whole, "the MACHINE 3 light"),
            Some(Answer::Text(Arc::from("MACHINE 3")))
        );
        assert_eq!(extract(&re, "nothing"), None);
    }

    #[test]
    fn region_boxes_map_into_the_frame() {
        let b = to_frame([0.0, 0.5, 1.0, 1.0], Some([0.5, 0.0, 1.0, 0.5]));
        assert_eq!(b, [0.5, 0.25, 1.0, 0.5]);
        assert_eq!(to_frame(b, None), b);
    }
}
