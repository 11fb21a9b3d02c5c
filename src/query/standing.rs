//! A standing query bound to its loaded model: prompts embedded once at start, then
//! evaluated against each frame's model outputs — a few dot products and the state
//! machine, without allocating.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use super::error::BindError;
use super::taught::Taught;
use super::tracker::Tracker;
use super::{Answer, Evaluation, QueryConfig, QueryKind};
use crate::model::clip::{Embedding, Scoring, dot};
use crate::model::{Detection, Loaded, Registry};
use crate::teach::Lesson;

/// What the models produced for the last encoded frame, shared by every query of
/// the camera (and reused for frames the gate found unchanged). Slots are made once
/// per camera and refilled in place.
#[derive(Default)]
pub struct FrameOutputs {
    /// Detections of the whole frame per detector model; `None` when its run failed.
    pub detections: Vec<(Arc<str>, Option<Vec<Detection>>)>,
    /// Image embeddings per (model, region); `None` when its run failed.
    pub embeddings: Vec<EmbeddingSlot>,
}

/// (model, region, embedding) of one region of the frame.
pub(super) type EmbeddingSlot = (Arc<str>, Option<[f32; 4]>, Option<Embedding>);

impl FrameOutputs {
    /// The detections of detector `model` on the frame; `None` when it did not run or failed.
    pub fn detections(&self, model: &str) -> Option<&[Detection]> {
        self.detections
            .iter()
            .find(|(m, _)| **m == *model)
            .and_then(|(_, d)| d.as_deref())
    }

    /// The embedding of (`model`, `region`) of the frame; `None` when it did not run or failed.
    pub fn embedding(&self, model: &str, region: Option<[f32; 4]>) -> Option<&Embedding> {
        self.embeddings
            .iter()
            .find(|(m, r, _)| **m == *model && *r == region)
            .and_then(|(_, _, e)| e.as_ref())
    }
}

enum How {
    /// yolox yes_no (best score of `label` in the region) or count.
    Detector { label: String, min_score: f32 },
    /// clip: `prompts[..yes]` are positive (yes_no) or all are labels (classify),
    /// scored by the model's rule (softmax for CLIP, sigmoid for SigLIP).
    Prompts {
        prompts: Vec<Embedding>,
        yes: usize,
        scoring: Scoring,
        labels: Vec<Arc<str>>,
        /// Per-frame logits, then probabilities (reused).
        probs: Vec<f32>,
        /// The query's examples, when it has a lesson: they move the answer.
        taught: Option<Taught>,
    },
    /// embedder: the answer comes from the examples alone.
    Examples {
        labels: Vec<Arc<str>>,
        taught: Taught,
    },
}

impl How {
    fn prompts(
        config: &QueryConfig,
        prompts: Vec<Embedding>,
        yes: usize,
        scoring: Scoring,
    ) -> Self {
        How::Prompts {
            probs: vec![0.0; prompts.len()],
            prompts,
            yes,
            scoring,
            labels: labels(config),
            taught: None,
        }
    }
}

/// A per-frame query bound to its model: a detector or a dual encoder.
pub struct StandingQuery {
    /// The query as configured.
    pub config: QueryConfig,
    how: How,
    track: Tracker,
}

impl StandingQuery {
    /// A dual-encoder `yes_no` or `classify` query over prompt embeddings computed
    /// elsewhere (`prompts[..yes]` positive; for classify, one per label).
    pub fn from_prompts(
        config: QueryConfig,
        prompts: Vec<Embedding>,
        yes: usize,
        scoring: Scoring,
    ) -> Self {
        let how = How::prompts(&config, prompts, yes, scoring);
        Self::new(config, how)
    }

    fn new(config: QueryConfig, how: How) -> Self {
        Self {
            track: Tracker::new(&config),
            config,
            how,
        }
    }

    /// Binds `config` to its model; clip prompts are embedded here, once.
    pub fn prepare(config: QueryConfig, models: &Registry) -> Result<Self, BindError> {
        Self::taught(config, models, None)
    }

    /// As [`StandingQuery::prepare`], answering also from `lesson`'s examples (a
    /// clip or embedder yes_no or classify query); an embedder query needs one.
    pub fn taught(
        config: QueryConfig,
        models: &Registry,
        lesson: Option<Arc<Lesson>>,
    ) -> Result<Self, BindError> {
        let loaded =
            models
                .get(&config.model)
                .ok_or_else(|| match models.failed().get(&config.model) {
                    Some(why) => BindError::NotLoaded {
                        model: config.model.clone(),
                        why: why.to_string(),
                    },
                    None => BindError::NotConfigured {
                        model: config.model.clone(),
                    },
                })?;
        let how = match (loaded.as_ref(), config.kind) {
            (Loaded::Yolox { model, .. }, QueryKind::YesNo | QueryKind::Count) => {
                let label = config.label.clone().unwrap_or_default();
                if !model.labels().iter().any(|l| **l == *label) {
                    return Err(BindError::UnknownLabel {
                        label,
                        model: config.model.clone(),
                    });
                }
                How::Detector {
                    label,
                    min_score: config.min_score.unwrap_or(0.0),
                }
            }
            (
                Loaded::Clip {
                    model, sessions, ..
                },
                QueryKind::YesNo | QueryKind::Classify,
            ) => {
                let (texts, yes): (Vec<&String>, usize) = if config.kind == QueryKind::YesNo {
                    let yes: Vec<&String> = if config.yes.is_empty() {
                        vec![&config.ask]
                    } else {
                        config.yes.iter().collect()
                    };
                    let n = yes.len();
                    (yes.into_iter().chain(&config.no).collect(), n)
                } else {
                    (config.labels.iter().collect(), 0)
                };
                let prompts = texts
                    .into_iter()
                    .map(|t| model.embed_text(sessions, t))
                    .collect::<Result<Vec<_>, _>>()?;
                let mut how = How::prompts(&config, prompts, yes, model.scoring());
                if let How::Prompts { taught, .. } = &mut how {
                    *taught = lesson.map(|l| Taught::new(l, &config));
                }
                how
            }
            (Loaded::Embedder { .. }, QueryKind::YesNo | QueryKind::Classify) => {
                let Some(lesson) = lesson else {
                    return Err(BindError::NoLesson {
                        model: config.model.clone(),
                    });
                };
                How::Examples {
                    labels: labels(&config),
                    taught: Taught::new(lesson, &config),
                }
            }
            (_, kind) => {
                return Err(BindError::Cannot {
                    model: config.model.clone(),
                    kind: kind.name(),
                });
            }
        };
        Ok(Self::new(config, how))
    }

    /// The query's id.
    pub fn id(&self) -> &Arc<str> {
        &self.track.id
    }

    /// Detector models this query needs (whole frame) or clip (model, region) pairs.
    pub fn needs_detections(&self) -> bool {
        matches!(self.how, How::Detector { .. })
    }

    /// Scores the frame and feeds the state machine. `None` when the model produced
    /// nothing for this frame (e.g. its inference failed).
    /// `now` is the wall-clock time of the evaluation, `pts` the frame's stream time
    /// (the state machine's clock).
    pub fn evaluate(
        &mut self,
        outputs: &FrameOutputs,
        now: SystemTime,
        pts: Duration,
    ) -> Option<Evaluation> {
        let cfg = &self.config;
        let (score, proposed) = match &mut self.how {
            How::Detector { label, min_score } => {
                let dets = outputs.detections(&cfg.model)?;
                let mut best = 0.0f32;
                let mut count = 0u32;
                for d in dets
                    .iter()
                    .filter(|d| *d.label == **label && inside(d, cfg.region))
                {
                    best = best.max(d.score);
                    if d.score >= *min_score {
                        count += 1;
                    }
                }
                match cfg.kind {
                    QueryKind::Count => (best, Answer::Count(count)),
                    _ => (best, self.track.propose_yes_no(best, cfg)),
                }
            }
            How::Prompts {
                prompts,
                yes,
                scoring,
                labels,
                probs,
                taught,
            } => {
                let image = outputs.embedding(&cfg.model, cfg.region)?;
                for (p, prompt) in probs.iter_mut().zip(prompts.iter()) {
                    *p = scoring.logit(dot(image, prompt));
                }
                if cfg.kind == QueryKind::Classify {
                    let (mut best, mut p) = scoring.classify(probs);
                    if let Some(t) = taught {
                        (best, p) = t.classify(image, probs);
                    }
                    let label = labels.get(best).cloned().unwrap_or_else(|| Arc::from(""));
                    (p, Answer::Label(label))
                } else {
                    let mut p = scoring.yes_no(probs, *yes);
                    if let Some(t) = taught {
                        p = t.yes_no(image, p);
                    }
                    (p, self.track.propose_yes_no(p, cfg))
                }
            }
            How::Examples { labels, taught } => {
                let image = outputs.embedding(&cfg.model, cfg.region)?;
                let answer = match cfg.kind {
                    QueryKind::Classify => taught.examples_classify(image).map(|(best, p)| {
                        let label = labels.get(best).cloned().unwrap_or_else(|| Arc::from(""));
                        (p, Answer::Label(label))
                    }),
                    _ => taught
                        .examples_yes_no(image)
                        .map(|p| (p, self.track.propose_yes_no(p, cfg))),
                };
                match answer {
                    Some(a) => a,
                    None => {
                        let mut e = self.track.unknown(cfg, now);
                        e.taught = Some(taught.summary());
                        return Some(e);
                    }
                }
            }
        };
        let mut e = self.track.settle(cfg, score, proposed, (now, pts));
        e.confidence = match cfg.kind {
            QueryKind::YesNo => Some(score.max(1.0 - score)),
            QueryKind::Classify => Some(score),
            _ => None,
        };
        e.taught = match &self.how {
            How::Prompts { taught, .. } => taught.as_ref().map(Taught::summary),
            How::Examples { taught, .. } => Some(taught.summary()),
            How::Detector { .. } => None,
        };
        Some(e)
    }

    /// The query's lesson, when it is taught.
    pub fn lesson(&self) -> Option<&Arc<Lesson>> {
        match &self.how {
            How::Prompts { taught, .. } => taught.as_ref().map(Taught::lesson),
            How::Examples { taught, .. } => Some(taught.lesson()),
            How::Detector { .. } => None,
        }
    }
}

/// A query's labels as shared strings.
fn labels(config: &QueryConfig) -> Vec<Arc<str>> {
    config
        .labels
        .iter()
        .map(|l| Arc::from(l.as_str()))
        .collect()
}

/// True when the detection's centre lies inside the normalised region (or no region).
fn inside(d: &Detection, region: Option<[f32; 4]>) -> bool {
    let Some([x0, y0, x1, y1]) = region else {
        return true;
    };
    let cx = (d.bbox[0] + d.bbox[2]) / 2.0;
    let cy = (d.bbox[1] + d.bbox[3]) / 2.0;
    cx >= x0 && cx <= x1 && cy >= y0 && cy <= y1
}
