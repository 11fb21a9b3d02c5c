//! The alert state machine of one query: hysteresis on the score (`on` > `off`) and
//! `min_frames` consecutive agreeing evaluations before the state changes.

use super::Answer;

/// A state change: `from` is `None` for the first state after start.
#[derive(Debug, Clone, PartialEq)]
pub struct Change {
    pub from: Option<Answer>,
    pub to: Answer,
}

#[derive(Debug, Clone)]
pub struct Debounce {
    min_frames: u32,
    state: Option<Answer>,
    pending: Option<(Answer, u32)>,
}

impl Debounce {
    pub fn new(min_frames: u32) -> Self {
        Self {
            min_frames: min_frames.max(1),
            state: None,
            pending: None,
        }
    }

    pub fn state(&self) -> Option<&Answer> {
        self.state.as_ref()
    }

    /// The yes/no a score proposes given the current state: ON needs `score >= on`,
    /// OFF needs `score <= off`; in between the current state holds.
    pub fn propose_yes_no(&self, score: f32, on: f32, off: f32) -> Answer {
        match self.state {
            Some(Answer::YesNo(true)) => Answer::YesNo(score > off),
            Some(Answer::YesNo(false)) => Answer::YesNo(score >= on),
            _ => Answer::YesNo(score >= on),
        }
    }

    /// Feeds one evaluation; returns the change once `min_frames` in a row agree.
    pub fn update(&mut self, proposed: Answer) -> Option<Change> {
        if self.state.as_ref() == Some(&proposed) {
            self.pending = None;
            return None;
        }
        let count = match &self.pending {
            Some((p, n)) if *p == proposed => n + 1,
            _ => 1,
        };
        if count >= self.min_frames {
            self.pending = None;
            let from = self.state.replace(proposed.clone());
            Some(Change { from, to: proposed })
        } else {
            self.pending = Some((proposed, count));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(d: &mut Debounce, scores: &[f32]) -> Vec<Option<bool>> {
        scores
            .iter()
            .map(|&s| {
                let p = d.propose_yes_no(s, 0.7, 0.5);
                d.update(p).map(|c| c.to == Answer::YesNo(true))
            })
            .collect()
    }

    #[test]
    fn hysteresis_holds_between_off_and_on() {
        let mut d = Debounce::new(1);
        assert_eq!(
            run(&mut d, &[0.2, 0.65, 0.72, 0.6, 0.51, 0.5, 0.69]),
            vec![Some(false), None, Some(true), None, None, Some(false), None]
        );
    }

    #[test]
    fn min_frames_needs_consecutive_agreement() {
        let mut d = Debounce::new(3);
        assert_eq!(
            run(&mut d, &[0.9, 0.9, 0.1, 0.9, 0.9, 0.9, 0.1, 0.1, 0.1]),
            vec![
                None,
                None,
                None,
                None,
                None,
                Some(true),
                None,
                None,
                Some(false)
            ]
        );
    }

    #[test]
    fn first_change_has_no_previous_state() {
        let mut d = Debounce::new(1);
        let c = d.update(Answer::Count(2)).unwrap();
        assert_eq!(c.from, None);
        let c = d.update(Answer::Count(3)).unwrap();
        assert_eq!(c.from, Some(Answer::Count(2)));
        assert_eq!(d.update(Answer::Count(3)), None);
    }
}
