//! A query's examples at work on each frame: the lesson's head, picked up between
//! frames when a label trains a new one, and how its answer combines with the
//! zero-shot prompts of a dual encoder.
//!
//! The combination is a mixture: `p = (1 − α)·p_prompts + α·p_examples` with
//! `α = n / (n + 2)`, `n` the examples a person labelled. No example (or a state
//! without one) leaves today's zero-shot answer exactly; two examples per state of a
//! yes/no query already weigh twice the prompts (α = 2/3), eight weigh 8/9. The
//! prompts count as two examples' worth of evidence: they are right about what the
//! words mean and wrong about this camera's light and angle, which the examples see.

use std::sync::Arc;

use crate::teach::{Lesson, Summary, Trained, argmax};

/// How many examples' worth the prompts are.
const PRIOR_WEIGHT: f32 = 2.0;

/// A lesson as a standing query uses it.
pub(super) struct Taught {
    lesson: Arc<Lesson>,
    /// With `escalate`: the confidence under which the escalation model's answer
    /// for the scene, once it gave one, replaces the query's.
    escalate_below: Option<f32>,
    seen: u64,
    trained: Arc<Trained>,
    /// The head's probabilities per state (reused).
    head: Vec<f32>,
}

impl Taught {
    pub(super) fn new(lesson: Arc<Lesson>, config: &super::QueryConfig) -> Self {
        let k = lesson.spec().states.len();
        Self {
            escalate_below: config.escalate.as_ref().and(config.review_below),
            seen: lesson.generation(),
            trained: lesson.trained(),
            lesson,
            head: vec![0.0; k],
        }
    }

    pub(super) fn lesson(&self) -> &Arc<Lesson> {
        &self.lesson
    }

    pub(super) fn summary(&self) -> Arc<Summary> {
        self.trained.summary.clone()
    }

    /// Takes the lesson's newer head, if a label trained one.
    fn refresh(&mut self) {
        let g = self.lesson.generation();
        if g != self.seen {
            self.trained = self.lesson.trained();
            self.seen = g;
        }
    }

    /// The head's probabilities for `image` into `self.head`; false without a head.
    fn run(&mut self, image: &[f32]) -> bool {
        self.refresh();
        match &self.trained.head {
            Some(h) if h.dim() == image.len() && h.states() == self.head.len() => {
                h.probs(image, &mut self.head);
                true
            }
            _ => false,
        }
    }

    fn weight(&self) -> f32 {
        let n = self.trained.examples as f32;
        n / (n + PRIOR_WEIGHT)
    }

    /// p(yes) from the prompts' `p0` and the examples (or the escalation model's,
    /// while that is uncertain).
    pub(super) fn yes_no(&mut self, image: &[f32], p0: f32) -> f32 {
        let p = if self.run(image) {
            let a = self.weight();
            (1.0 - a) * p0 + a * self.head[0]
        } else {
            p0
        };
        self.escalated(image, Some(p)).unwrap_or(p)
    }

    /// The escalation model's p(yes) for this scene when `p` is uncertain (or
    /// unknown) and it answered the scene.
    fn escalated(&self, image: &[f32], p: Option<f32>) -> Option<f32> {
        let below = self.escalate_below?;
        if p.is_some_and(|p| p.max(1.0 - p) >= below) {
            return None;
        }
        self.lesson.escalated(image)
    }

    /// The label and its probability from the prompts' per-label probabilities
    /// `probs` (overwritten) and the examples.
    pub(super) fn classify(&mut self, image: &[f32], probs: &mut [f32]) -> (usize, f32) {
        if !self.run(image) || probs.len() != self.head.len() {
            let best = argmax(probs);
            return (best, probs.get(best).copied().unwrap_or(0.0));
        }
        let sum: f32 = probs.iter().sum::<f32>().max(1e-12);
        let a = self.weight();
        for (p, h) in probs.iter_mut().zip(&self.head) {
            *p = (1.0 - a) * (*p / sum) + a * h;
        }
        let best = argmax(probs);
        (best, probs[best])
    }

    /// p(yes) from the examples alone; `None` until every state has one.
    pub(super) fn examples_yes_no(&mut self, image: &[f32]) -> Option<f32> {
        let p = self.run(image).then(|| self.head[0]);
        self.escalated(image, p).or(p)
    }

    /// The label and its probability from the examples alone.
    pub(super) fn examples_classify(&mut self, image: &[f32]) -> Option<(usize, f32)> {
        if !self.run(image) {
            return None;
        }
        let best = argmax(&self.head);
        Some((best, self.head[best]))
    }
}

/// What a lesson of query `q` of `camera` is: its states, folder and model; `None`
/// for a query that cannot be taught (only yes_no and classify can).
pub fn lesson_spec(camera: &str, q: &super::QueryConfig) -> Option<crate::teach::LessonSpec> {
    use super::QueryKind;
    let states = match q.kind {
        QueryKind::YesNo => vec!["ON".to_string(), "OFF".to_string()],
        QueryKind::Classify => q.labels.clone(),
        _ => return None,
    };
    Some(crate::teach::LessonSpec {
        camera: camera.into(),
        query: q.id.clone(),
        model: q.model.clone(),
        states,
        yes_no: q.kind == QueryKind::YesNo,
        folder: q.examples.clone(),
        region: q.region,
    })
}
