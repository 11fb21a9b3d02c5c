//! A one-slot queue whose overflow policy is "newest wins": putting a job while one
//! waits replaces it (the replaced job is handed back, so its buffer is reused and
//! its due queries carried over, and a drop counter counts it).

use std::sync::{Condvar, Mutex};
use std::time::Duration;

use crate::kit::metrics::Counter;

/// What [`Mailbox::take`] found.
pub(super) enum Taken<T> {
    Item(T),
    /// Nothing arrived within the timeout.
    Empty,
    /// Closed and empty: no job will come.
    Closed,
}

pub(super) struct Mailbox<T> {
    slot: Mutex<(Option<T>, bool)>,
    ready: Condvar,
    replaced: Counter,
}

impl<T> Mailbox<T> {
    pub(super) fn new(replaced: Counter) -> Self {
        Self {
            slot: Mutex::new((None, false)),
            ready: Condvar::new(),
            replaced,
        }
    }

    /// Puts `item`, replacing (and returning) the one still waiting, if any;
    /// `merge(&mut new, &old)` runs first so nothing the old one asked for is lost.
    pub(super) fn put(&self, mut item: T, merge: impl FnOnce(&mut T, &T)) -> Option<T> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = &slot.0 {
            merge(&mut item, old);
            self.replaced.inc();
        }
        let old = slot.0.replace(item);
        self.ready.notify_one();
        old
    }

    /// Waits up to `timeout` for a job.
    pub(super) fn take(&self, timeout: Duration) -> Taken<T> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        if slot.0.is_none() && !slot.1 {
            slot = self
                .ready
                .wait_timeout(slot, timeout)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        match slot.0.take() {
            Some(item) => Taken::Item(item),
            None if slot.1 => Taken::Closed,
            None => Taken::Empty,
        }
    }

    /// No more jobs; a waiting one is still delivered (unless `discard`).
    pub(super) fn close(&self, discard: bool) -> Option<T> {
        let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
        slot.1 = true;
        self.ready.notify_all();
        if discard { slot.0.take() } else { None }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_item_wins_and_inherits_what_the_old_one_asked() {
        let dropped = Counter::default();
        let m = Mailbox::new(dropped.clone());
        let merge = |new: &mut (u32, u64), old: &(u32, u64)| new.1 |= old.1;
        assert!(m.put((1, 0b01), merge).is_none());
        let old = m.put((2, 0b10), merge);
        assert_eq!(old, Some((1, 0b01)));
        assert_eq!(dropped.get(), 1);
        match m.take(Duration::ZERO) {
            Taken::Item(item) => assert_eq!(item, (2, 0b11)),
            _ => panic!("expected the newest item"),
        }
        assert!(matches!(m.take(Duration::from_millis(1)), Taken::Empty));
        m.put((3, 0), merge);
        assert!(m.close(false).is_none());
        assert!(matches!(m.take(Duration::ZERO), Taken::Item((3, 0))));
        assert!(matches!(m.take(Duration::ZERO), Taken::Closed));
    }
}
