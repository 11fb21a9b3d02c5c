//! The alert state machine of one query: hysteresis on the score (`on` > `off`),
//! `min_frames` consecutive agreeing evaluations and `min_duration` of stream time
//! before the state changes, a longer `off_delay` before a yes/no turns OFF, and a
//! `cooldown` after each change during which the state holds. Times are stream time
//! (pts), so a file plays out the same at any speed; a pts that goes backwards (a
//! loop, a reconnect) restarts the clocks.

use std::time::Duration;

use super::Answer;

/// A state change: `from` is `None` for the first state after start.
#[derive(Debug, Clone, PartialEq)]
pub struct StateChange {
    /// The state before; `None` for the first state.
    pub from: Option<Answer>,
    /// The state now.
    pub to: Answer,
}

/// The time rules of a query's state machine (all zero: change at once).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Timing {
    /// A new answer must hold this long before the state takes it.
    pub min_duration: Duration,
    /// yes_no: OFF must hold this long before an ON state turns OFF.
    pub off_delay: Duration,
    /// After a change, the state holds at least this long.
    pub cooldown: Duration,
}

/// A proposed answer that has not become the state yet.
#[derive(Debug, Clone)]
struct Pending {
    answer: Answer,
    frames: u32,
    since: Duration,
}

#[derive(Debug, Clone)]
/// A query's state machine: a proposed answer becomes the state after `min_frames` frames agree and its timing (`min_duration`, `off_delay`, `cooldown`) allows.
pub struct Debounce {
    min_frames: u32,
    timing: Timing,
    state: Option<Answer>,
    pending: Option<Pending>,
    last_change: Option<Duration>,
}

impl Debounce {
    /// A state machine that needs `min_frames` agreeing frames, with no timing.
    pub fn new(min_frames: u32) -> Self {
        Self::with_timing(min_frames, Timing::default())
    }

    /// A state machine with `min_frames` and `timing`.
    pub fn with_timing(min_frames: u32, timing: Timing) -> Self {
        Self {
            min_frames: min_frames.max(1),
            timing,
            state: None,
            pending: None,
            last_change: None,
        }
    }

    /// The current state; `None` until the first one is settled.
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

    /// Feeds one evaluation at stream time `at`; returns the change once the rules
    /// allow it. The first state after start needs only `min_frames`.
    pub fn update(&mut self, proposed: Answer, at: Duration) -> Option<StateChange> {
        if self.last_change.is_some_and(|t| at < t) {
            self.last_change = None;
        }
        if self.state.as_ref() == Some(&proposed) {
            self.pending = None;
            return None;
        }
        let pending = match self.pending.take() {
            Some(p) if p.answer == proposed && at >= p.since => Pending {
                frames: p.frames + 1,
                ..p
            },
            _ => Pending {
                answer: proposed,
                frames: 1,
                since: at,
            },
        };
        let held = at - pending.since;
        let ready = pending.frames >= self.min_frames
            && (self.state.is_none()
                || (held >= self.hold_for(&pending.answer)
                    && self
                        .last_change
                        .is_none_or(|t| at - t >= self.timing.cooldown)));
        if !ready {
            self.pending = Some(pending);
            return None;
        }
        let from = self.state.replace(pending.answer.clone());
        if from.is_some() {
            // The first state is not an alert: no cooldown after it.
            self.last_change = Some(at);
        }
        Some(StateChange {
            from,
            to: pending.answer,
        })
    }

    /// How long `to` must hold before the state takes it.
    fn hold_for(&self, to: &Answer) -> Duration {
        match (&self.state, to) {
            (Some(Answer::YesNo(true)), Answer::YesNo(false)) => {
                self.timing.min_duration.max(self.timing.off_delay)
            }
            _ => self.timing.min_duration,
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
                d.update(p, Duration::ZERO)
                    .map(|c| c.to == Answer::YesNo(true))
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
        let c = d.update(Answer::Count(2), Duration::ZERO).unwrap();
        assert_eq!(c.from, None);
        let c = d.update(Answer::Count(3), Duration::ZERO).unwrap();
        assert_eq!(c.from, Some(Answer::Count(2)));
        assert_eq!(d.update(Answer::Count(3), Duration::ZERO), None);
    }

    /// Feeds (seconds, answer) pairs; returns the times of the changes and their target.
    fn timed(d: &mut Debounce, feed: &[(f64, bool)]) -> Vec<(f64, bool)> {
        feed.iter()
            .filter_map(|&(t, on)| {
                let c = d.update(Answer::YesNo(on), Duration::from_secs_f64(t))?;
                Some((t, c.to == Answer::YesNo(true)))
            })
            .collect()
    }

    fn timing(min: f64, off_delay: f64, cooldown: f64) -> Timing {
        Timing {
            min_duration: Duration::from_secs_f64(min),
            off_delay: Duration::from_secs_f64(off_delay),
            cooldown: Duration::from_secs_f64(cooldown),
        }
    }

    #[test]
    fn min_duration_ignores_flapping_and_takes_a_lasting_change() {
        let mut d = Debounce::with_timing(1, timing(1.0, 0.0, 0.0));
        // Flapping every 0.5 s never holds 1 s; a lasting ON does, at 1 s after it began.
        let feed = [
            (0.0, false),
            (0.5, true),
            (1.0, false),
            (1.5, true),
            (2.0, false),
            (2.5, true),
            (3.0, true),
            (3.5, true),
            (4.0, true),
        ];
        assert_eq!(timed(&mut d, &feed), vec![(0.0, false), (3.5, true)]);
    }

    #[test]
    fn off_delay_keeps_on_until_off_has_held() {
        let mut d = Debounce::with_timing(1, timing(0.0, 2.0, 0.0));
        let feed = [
            (0.0, true),
            (1.0, false),
            (2.0, true),
            (3.0, false),
            (4.0, false),
            (5.0, false),
        ];
        assert_eq!(timed(&mut d, &feed), vec![(0.0, true), (5.0, false)]);
    }

    #[test]
    fn cooldown_holds_the_state_after_a_change() {
        let mut d = Debounce::with_timing(1, timing(0.0, 0.0, 10.0));
        let feed = [
            (0.0, false),
            (1.0, true),
            (2.0, false),
            (5.0, false),
            (11.0, false),
            (12.0, true),
        ];
        // The first state is free; ON at 1 s; OFF waits until 10 s after it (11 s).
        assert_eq!(
            timed(&mut d, &feed),
            vec![(0.0, false), (1.0, true), (11.0, false)]
        );
    }

    #[test]
    fn time_going_backwards_restarts_the_clocks() {
        let mut d = Debounce::with_timing(1, timing(1.0, 0.0, 5.0));
        let feed = [
            (0.0, false),
            (10.0, true),
            (11.0, true),
            (0.5, false),
            (1.0, false),
            (1.6, false),
        ];
        assert_eq!(
            timed(&mut d, &feed),
            vec![(0.0, false), (11.0, true), (1.6, false)]
        );
    }
}
