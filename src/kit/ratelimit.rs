//! Rate-limited warnings: a warning that can repeat per frame, per message or per
//! reconnect attempt is logged at once the first time, then at most once a
//! [`WINDOW`]; the ones in between are counted, and the next line that goes out says
//! how many it stands for (`... (and 41 more like this in the last 60 s)`, and a
//! `suppressed` field), with the same structured fields as the first.
//!
//! [`RateLimit`] is one limiter (a call site whose warning is about one thing: the
//! broker, the journal, a flood of refused commands); [`RateLimits`] is a call site's
//! limiters keyed per camera, per (camera, query) or per model, in a small fixed map.
//! Both are atomics in a `static` at the call site or a field of their owner (`&self`,
//! `const fn new`): a check is a clock read, a hash and a few atomic operations, with
//! no heap allocation and no lock, so it can sit on the per-frame path.
//!
//! ```
//! use ocellus::kit::RateLimits;
//!
//! fn frame_failed(camera: &str, e: &str) {
//!     static FAILED: RateLimits = RateLimits::new();
//!     if let Some(s) = FAILED.allow(camera) {
//!         tracing::warn!(camera = %camera, suppressed = s.count(), "{e}{s}");
//!     }
//! }
//! # frame_failed("door", "no frame");
//! ```
//!
//! The count of a window is told with the next occurrence after it: a warning that
//! stops repeating leaves its last count untold (the metrics still count the cause),
//! unless its owner knows when a burst ends and tells it ([`RateLimit::flush`]).

use std::fmt;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// One line per this much time and key; the others are counted.
pub const WINDOW: Duration = Duration::from_secs(60);

/// Slots of a [`RateLimits`] map: keys beyond this many at one call site take over
/// a slot (its count is lost, and the key it held logs at once again when it comes
/// back): never fewer lines than one per key and window, only more.
pub const SLOTS: usize = 32;

/// The occurrences of a warning not logged since the last line that was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Suppressed {
    count: u64,
    /// Since the last line logged (zero for the first).
    over: Duration,
}

impl Suppressed {
    /// How many were left out, for a `suppressed` field; `None` (no field) when none.
    pub fn count(&self) -> Option<u64> {
        (self.count > 0).then_some(self.count)
    }
}

/// `" (and N more like this in the last S s)"`, or nothing when none was left out.
impl fmt::Display for Suppressed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.count == 0 {
            return Ok(());
        }
        write!(
            f,
            " (and {} more like this in the last {:.0} s)",
            self.count,
            self.over.as_secs_f64()
        )
    }
}

/// One warning's limiter: the first occurrence of each [`WINDOW`] is let through.
#[derive(Debug)]
pub struct RateLimit {
    window: Duration,
    /// The instant of the first check: `last` counts from it.
    epoch: OnceLock<Instant>,
    /// Nanoseconds from `epoch` to the last line let through, plus one (0: none yet).
    last: AtomicU64,
    /// Occurrences held back since then.
    suppressed: AtomicU64,
}

impl Default for RateLimit {
    fn default() -> Self {
        Self::new()
    }
}

impl RateLimit {
    /// A limiter of one line per [`WINDOW`].
    pub const fn new() -> Self {
        Self::with_window(WINDOW)
    }

    /// A limiter of one line per `window`.
    pub const fn with_window(window: Duration) -> Self {
        Self {
            window,
            epoch: OnceLock::new(),
            last: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// Whether to log an occurrence now: `Some` (what it stands for) or `None` (it
    /// was counted).
    pub fn allow(&self) -> Option<Suppressed> {
        self.allow_at(Instant::now())
    }

    /// [`RateLimit::allow`] for an occurrence at `now`.
    pub fn allow_at(&self, now: Instant) -> Option<Suppressed> {
        let epoch = *self.epoch.get_or_init(|| now);
        let at = nanos(now.saturating_duration_since(epoch)).saturating_add(1);
        let last = self.last.load(Ordering::Acquire);
        let window = nanos(self.window);
        if last != 0 && at.saturating_sub(last) < window {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        // Another thread may have let one through since the load: then this one is
        // counted in that window.
        if self
            .last
            .compare_exchange(last, at, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        let over = if last == 0 { 0 } else { at - last };
        Some(Suppressed {
            count: self.suppressed.swap(0, Ordering::AcqRel),
            over: Duration::from_nanos(over),
        })
    }

    /// What was held back since the last line let through, taken (`None`: nothing),
    /// for one line at the end of a burst (a file read through): the next
    /// occurrence still waits for the window.
    pub fn flush(&self) -> Option<Suppressed> {
        let count = self.suppressed.swap(0, Ordering::AcqRel);
        (count > 0).then_some(Suppressed {
            count,
            over: Duration::ZERO,
        })
    }

    /// Forgets what was let through and counted (a slot taken over by another key).
    fn reset(&self) {
        self.last.store(0, Ordering::Release);
        self.suppressed.store(0, Ordering::Release);
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}

/// One call site's limiters, one per key (a camera, a camera and query, a model), in
/// [`SLOTS`] slots found by the key's hash.
#[derive(Debug)]
pub struct RateLimits<const N: usize = SLOTS> {
    slots: [Slot; N],
}

#[derive(Debug)]
struct Slot {
    /// The hash of the key that holds it (never 0), or 0 while free.
    key: AtomicU64,
    limit: RateLimit,
}

impl<const N: usize> Default for RateLimits<N> {
    fn default() -> Self {
        Self::new()
    }
}

impl<const N: usize> RateLimits<N> {
    /// Limiters of one line per key and [`WINDOW`].
    pub const fn new() -> Self {
        Self::with_window(WINDOW)
    }

    /// Limiters of one line per key and `window`.
    pub const fn with_window(window: Duration) -> Self {
        Self {
            slots: [const {
                Slot {
                    key: AtomicU64::new(0),
                    limit: RateLimit::with_window(WINDOW),
                }
            }; N],
        }
        .windowed(window)
    }

    const fn windowed(mut self, window: Duration) -> Self {
        let mut i = 0;
        while i < N {
            self.slots[i].limit.window = window;
            i += 1;
        }
        self
    }

    /// Whether to log an occurrence about `key` now (see [`RateLimit::allow`]).
    pub fn allow(&self, key: impl Hash) -> Option<Suppressed> {
        self.allow_at(key, Instant::now())
    }

    /// [`RateLimits::allow`] for an occurrence at `now`.
    pub fn allow_at(&self, key: impl Hash, now: Instant) -> Option<Suppressed> {
        match self.slot(key) {
            Some(limit) => limit.allow_at(now),
            None => Some(Suppressed {
                count: 0,
                over: Duration::ZERO,
            }),
        }
    }

    /// The limiter of `key`: its slot, a free one, or (all taken) the one its hash
    /// points at, taken over. `None` only for a map of no slots: then nothing is
    /// limited.
    fn slot(&self, key: impl Hash) -> Option<&RateLimit> {
        let mut h = DefaultHasher::new();
        key.hash(&mut h);
        let hash = h.finish().max(1);
        let start = (hash % N.max(1) as u64) as usize;
        for i in 0..N {
            let slot = &self.slots[(start + i) % N];
            match slot
                .key
                .compare_exchange(0, hash, Ordering::AcqRel, Ordering::Acquire)
            {
                Ok(_) => return Some(&slot.limit),
                Err(held) if held == hash => return Some(&slot.limit),
                Err(_) => {}
            }
        }
        let slot = self.slots.get(start)?;
        slot.key.store(hash, Ordering::Release);
        slot.limit.reset();
        Some(&slot.limit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: u64) -> Duration {
        Duration::from_secs(s)
    }

    #[test]
    fn the_first_occurrence_logs_at_once() {
        let l = RateLimit::new();
        let s = l.allow_at(Instant::now()).expect("the first is logged");
        assert_eq!(s.count(), None);
        assert_eq!(s.to_string(), "");
    }

    #[test]
    fn repeats_in_the_window_are_counted_and_told_once_it_passed() {
        let l = RateLimit::new();
        let t0 = Instant::now();
        assert!(l.allow_at(t0).is_some());
        for s in [1, 2, 30, 59] {
            assert_eq!(l.allow_at(t0 + secs(s)), None, "{s} s");
        }
        let s = l.allow_at(t0 + secs(60)).expect("the window passed");
        assert_eq!(s.count(), Some(4));
        assert_eq!(s.to_string(), " (and 4 more like this in the last 60 s)");
        // A new window from there: counted afresh.
        assert_eq!(l.allow_at(t0 + secs(61)), None);
        assert_eq!(l.allow_at(t0 + secs(119)), None);
        let s = l.allow_at(t0 + secs(185)).expect("the next window");
        assert_eq!(s.count(), Some(2));
        assert_eq!(s.to_string(), " (and 2 more like this in the last 125 s)");
        // Nothing held back: the line says nothing more.
        let s = l.allow_at(t0 + secs(300)).expect("a quiet window");
        assert_eq!((s.count(), s.to_string()), (None, String::new()));
    }

    #[test]
    fn a_flush_takes_what_was_held_back() {
        let l = RateLimit::new();
        let t0 = Instant::now();
        assert_eq!(l.flush(), None, "nothing yet");
        assert!(l.allow_at(t0).is_some());
        assert_eq!(l.flush(), None, "nothing held back");
        for s in 1..=3 {
            assert_eq!(l.allow_at(t0 + secs(s)), None);
        }
        assert_eq!(l.flush().and_then(|s| s.count()), Some(3));
        assert_eq!(l.flush(), None, "taken");
        // The window still runs from the last line let through.
        assert_eq!(l.allow_at(t0 + secs(4)), None);
        let s = l.allow_at(t0 + secs(60)).expect("the window passed");
        assert_eq!(s.count(), Some(1));
    }

    #[test]
    fn the_window_can_be_shorter() {
        let l = RateLimit::with_window(secs(1));
        let t0 = Instant::now();
        assert!(l.allow_at(t0).is_some());
        assert!(l.allow_at(t0 + Duration::from_millis(999)).is_none());
        assert_eq!(l.allow_at(t0 + secs(1)).and_then(|s| s.count()), Some(1));
        let m: RateLimits<4> = RateLimits::with_window(secs(1));
        assert!(m.allow_at("a", t0).is_some());
        assert!(m.allow_at("a", t0 + Duration::from_millis(999)).is_none());
        assert!(m.allow_at("a", t0 + secs(1)).is_some());
    }

    #[test]
    fn an_occurrence_from_before_the_last_line_is_counted() {
        let l = RateLimit::new();
        let t0 = Instant::now();
        assert!(l.allow_at(t0 + secs(5)).is_some());
        assert_eq!(l.allow_at(t0), None);
        assert_eq!(l.allow_at(t0 + secs(65)).and_then(|s| s.count()), Some(1));
    }

    #[test]
    fn each_key_has_its_own_window() {
        let m: RateLimits = RateLimits::new();
        let t0 = Instant::now();
        assert!(m.allow_at("door", t0).is_some());
        assert!(
            m.allow_at("yard", t0).is_some(),
            "another camera logs at once"
        );
        assert!(m.allow_at(("door", "person"), t0).is_some(), "a tuple key");
        assert_eq!(m.allow_at("door", t0 + secs(1)), None);
        assert_eq!(m.allow_at("door", t0 + secs(2)), None);
        assert_eq!(m.allow_at("yard", t0 + secs(3)), None);
        assert_eq!(m.allow_at(("door", "person"), t0 + secs(4)), None);
        let door = m.allow_at("door", t0 + secs(60)).and_then(|s| s.count());
        let yard = m.allow_at("yard", t0 + secs(61)).and_then(|s| s.count());
        assert_eq!((door, yard), (Some(2), Some(1)));
    }

    #[test]
    fn more_keys_than_slots_never_hide_a_first_occurrence() {
        let m: RateLimits<2> = RateLimits::new();
        let t0 = Instant::now();
        for key in 0..10 {
            assert!(m.allow_at(key, t0).is_some(), "key {key}");
        }
        let none: RateLimits<0> = RateLimits::new();
        assert!(none.allow_at("a", t0).is_some());
        assert!(
            none.allow_at("a", t0).is_some(),
            "no slots: nothing limited"
        );
    }

    #[test]
    fn threads_at_once_let_one_line_through() {
        let l = RateLimit::new();
        let m: RateLimits = RateLimits::new();
        let t0 = Instant::now();
        let passed = std::thread::scope(|s| {
            let threads: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        (0..1000)
                            .filter(|_| l.allow_at(t0).is_some())
                            .chain((0..1000).filter(|_| m.allow_at("door", t0).is_some()))
                            .count()
                    })
                })
                .collect();
            threads
                .into_iter()
                .map(|t| t.join().unwrap_or(usize::MAX))
                .sum::<usize>()
        });
        assert_eq!(passed, 2, "one for the limiter, one for the key");
        assert_eq!(l.allow_at(t0 + WINDOW).and_then(|s| s.count()), Some(7999));
        let door = m.allow_at("door", t0 + WINDOW).and_then(|s| s.count());
        assert_eq!(door, Some(7999));
    }
}
