//! One slow query's model calls on one frame: the (model, region) encode shared by
//! every query of the frame ("encode once, ask many": Florence-2's vision features,
//! SmolVLM's and PaliGemma's image-prefix KV cache, the OCR reading), then the query's own part.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::kit::Frame;
use crate::kit::metrics::CameraMetrics;
use crate::model::florence2::{Found, ImageFeatures, TaskOutput};
use crate::model::paligemma;
use crate::model::ppocr::Reading;
use crate::model::qwen2vl;
use crate::model::remote::SentImage;
use crate::model::smolvlm::ImagePrefix;
use crate::model::{Cancel, Loaded, ModelError};
use crate::query::SlowQuery;
use crate::query::slow::{Ask, Outcome, RemoteAsk, to_frame};

/// What one (model, region) encode of a frame produced.
pub(super) enum Features {
    Florence(ImageFeatures),
    Smol(ImagePrefix),
    Pali(paligemma::ImagePrefix),
    Ocr(Reading),
    Remote(SentImage),
    Qwen(qwen2vl::ImagePrefix),
}

/// One (model, region) encode of the current frame, or why it failed.
struct Entry {
    model: Arc<str>,
    region: Option<[f32; 4]>,
    features: Result<Features, Arc<ModelError>>,
}

/// The encodes of the current frame, reused by each query that needs the same one.
#[derive(Default)]
pub(super) struct Encoded {
    entries: Vec<Entry>,
}

impl Encoded {
    pub(super) fn clear(&mut self) {
        self.entries.clear();
    }

    /// The features of `q`'s (model, region), encoding them on first use.
    fn get(
        &mut self,
        q: &SlowQuery,
        frame: &Frame,
        metrics: &CameraMetrics,
        cancel: &Cancel,
    ) -> &Result<Features, Arc<ModelError>> {
        let i = match self
            .entries
            .iter()
            .position(|e| e.model == *q.model() && e.region == q.region())
        {
            Some(i) => i,
            None => {
                let t0 = Instant::now();
                let features = encode(q.loaded(), frame, q.region(), cancel).map_err(Arc::new);
                metrics.slow_encode.record(t0.elapsed());
                self.entries.push(Entry {
                    model: q.model().clone(),
                    region: q.region(),
                    features,
                });
                self.entries.len() - 1
            }
        };
        &self.entries[i].features
    }
}

fn encode(
    loaded: &Loaded,
    frame: &Frame,
    region: Option<[f32; 4]>,
    cancel: &Cancel,
) -> Result<Features, ModelError> {
    Ok(match loaded {
        Loaded::Florence2 { model, sessions } => {
            Features::Florence(model.encode_with(sessions, frame, region, cancel)?)
        }
        Loaded::Smolvlm { model, sessions } => {
            Features::Smol(model.prefix_with(sessions, frame, region, cancel)?)
        }
        Loaded::Ppocr { model, sessions } => {
            Features::Ocr(model.read_with(sessions, frame, region, cancel)?)
        }
        Loaded::Remote { model } => Features::Remote(model.image(frame, region)?),
        Loaded::Paligemma { model, sessions } => {
            Features::Pali(model.prefix_with(sessions, frame, region, cancel)?)
        }
        Loaded::Qwen2vl { model, sessions } => {
            Features::Qwen(model.prefix_with(sessions, frame, region, cancel)?)
        }
        Loaded::Yolox { .. } | Loaded::Clip { .. } | Loaded::Embedder { .. } => {
            return Err(ModelError::NotSlow {
                model: String::new(),
            });
        }
    })
}

/// Why a slow query got no answer on a frame.
#[derive(Debug, thiserror::Error)]
pub(super) enum AskError {
    /// Encoding the frame failed; every query on that (model, region) shares it.
    #[error("{0}")]
    Encode(#[source] Arc<ModelError>),
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("model {model} cannot answer this query")]
    Cannot { model: String },
}

/// Runs `q` on `frame`, encoding through `encoded`; returns the outcome and how long
/// the query's own part took. A raised `cancel` ends it with an error at the next
/// step (the caller tells it apart by [`Cancel::is_raised`]).
pub(super) fn ask(
    q: &SlowQuery,
    frame: &Frame,
    encoded: &mut Encoded,
    metrics: &CameraMetrics,
    cancel: &Cancel,
) -> Result<(Outcome, Duration), AskError> {
    let features = encoded
        .get(q, frame, metrics, cancel)
        .as_ref()
        .map_err(|e| AskError::Encode(e.clone()))?;
    cancel.check(q.model())?;
    let t0 = Instant::now();
    let outcome = match (q.loaded().as_ref(), q.ask(), features) {
        (Loaded::Florence2 { model, sessions }, Ask::Florence(task), Features::Florence(f)) => {
            let max = q.max_tokens().unwrap_or(model.max_tokens());
            let generated = model.run_with(sessions, f, task, max, cancel)?;
            match generated.output {
                TaskOutput::Text(text) => Outcome::Text { text, score: None },
                TaskOutput::Boxes(found) => Outcome::Boxes(
                    found
                        .into_iter()
                        .map(|f| Found {
                            bbox: to_frame(f.bbox, q.region()),
                            label: f.label,
                        })
                        .collect(),
                ),
            }
        }
        (Loaded::Smolvlm { model, sessions }, Ask::YesNo(question), Features::Smol(prefix)) => {
            let yes_no = model.yes_no_with(sessions, prefix, question, cancel)?;
            Outcome::Probability(yes_no.p_yes)
        }
        (Loaded::Smolvlm { model, sessions }, Ask::Answer(question), Features::Smol(prefix)) => {
            let max = q.max_tokens().unwrap_or(model.max_tokens());
            let generated = model.answer_with(sessions, prefix, question, max, cancel)?;
            Outcome::Text {
                text: generated.text,
                score: None,
            }
        }
        (Loaded::Remote { model }, Ask::Remote(ask), Features::Remote(image)) => match ask {
            RemoteAsk::YesNo(question) => Outcome::Judged(model.yes_no(image, question, cancel)?),
            RemoteAsk::Classify { question, labels } => {
                let (label, confidence) = model.classify(image, question, labels, cancel)?;
                Outcome::Label { label, confidence }
            }
            RemoteAsk::Text(prompt) => Outcome::Text {
                text: model.text(image, prompt, q.max_tokens(), cancel)?,
                score: None,
            },
            RemoteAsk::Boxes(what) => Outcome::Boxes(
                model
                    .boxes(image, what, q.max_tokens(), cancel)?
                    .into_iter()
                    .map(|f| Found {
                        bbox: to_frame(f.bbox, q.region()),
                        label: f.label,
                    })
                    .collect(),
            ),
        },
        (Loaded::Qwen2vl { model, sessions }, Ask::YesNo(question), Features::Qwen(prefix)) => {
            let yes_no = model.yes_no_with(sessions, prefix, question, cancel)?;
            Outcome::Probability(yes_no.p_yes)
        }
        (Loaded::Qwen2vl { model, sessions }, Ask::Answer(question), Features::Qwen(prefix)) => {
            let max = q.max_tokens().unwrap_or(model.max_tokens());
            let generated = model.answer_with(sessions, prefix, question, max, cancel)?;
            Outcome::Text {
                text: generated.text,
                score: None,
            }
        }
        (
            Loaded::Qwen2vl { model, sessions },
            Ask::Locate { prompt, label },
            Features::Qwen(prefix),
        ) => {
            let max = q.max_tokens().unwrap_or(model.max_tokens());
            let (found, _) = model.locate_with(sessions, prefix, prompt, label, max, cancel)?;
            Outcome::Boxes(
                found
                    .into_iter()
                    .map(|f| Found {
                        bbox: to_frame(f.bbox, q.region()),
                        label: f.label,
                    })
                    .collect(),
            )
        }
        (Loaded::Paligemma { model, sessions }, Ask::YesNo(question), Features::Pali(prefix)) => {
            let yes_no = model.yes_no_with(sessions, prefix, question, cancel)?;
            Outcome::Probability(yes_no.p_yes)
        }
        (Loaded::Paligemma { model, sessions }, Ask::PaliGemma(task), Features::Pali(prefix)) => {
            let max = q.max_tokens().unwrap_or(model.max_tokens());
            let generated = model.run_with(sessions, prefix, task, max, cancel)?;
            if task.gives_boxes() {
                Outcome::Boxes(
                    generated
                        .boxes
                        .into_iter()
                        .map(|f| Found {
                            bbox: to_frame(f.bbox, q.region()),
                            label: f.label,
                        })
                        .collect(),
                )
            } else {
                Outcome::Text {
                    text: generated.text,
                    score: None,
                }
            }
        }
        (Loaded::Ppocr { .. }, Ask::Ocr, Features::Ocr(reading)) => {
            let score = if reading.lines.is_empty() {
                None
            } else {
                Some(
                    reading.lines.iter().map(|l| l.score).sum::<f32>() / reading.lines.len() as f32,
                )
            };
            Outcome::Text {
                text: reading.text(),
                score,
            }
        }
        _ => {
            return Err(AskError::Cannot {
                model: q.model().to_string(),
            });
        }
    };
    let took = t0.elapsed();
    metrics.slow_query.record(took);
    Ok((outcome, took))
}
