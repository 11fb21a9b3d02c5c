//! Publisher metrics: what the MQTT outbox holds and has done — messages queued, the
//! age of the oldest, drops, events raised and acknowledged, journal lines written,
//! the journal's size and what it left out, incoming messages discarded for their
//! size, outgoing ones refused for theirs, the connection state and reconnects. Lock-free: the publisher task updates them,
//! the once-a-minute summary (and later `/metrics`) reads them.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::counter::Counter;

/// The MQTT publisher's counters and gauges; share it as an `Arc`.
#[derive(Debug)]
pub struct PublisherMetrics {
    /// What `oldest` counts from.
    epoch: Instant,
    queued: AtomicU64,
    /// Enqueue time of the oldest message, in nanoseconds after `epoch` plus one;
    /// 0 when nothing is queued.
    oldest: AtomicU64,
    dropped: Counter,
    events_raised: Counter,
    events_acknowledged: Counter,
    journal_lines: Counter,
    journal_bytes: AtomicU64,
    journal_dropped: Counter,
    incoming_dropped: Counter,
    refused: Counter,
    connected: AtomicBool,
    reconnects: Counter,
}

impl Default for PublisherMetrics {
    fn default() -> Self {
        Self {
            epoch: Instant::now(),
            queued: AtomicU64::new(0),
            oldest: AtomicU64::new(0),
            dropped: Counter::default(),
            events_raised: Counter::default(),
            events_acknowledged: Counter::default(),
            journal_lines: Counter::default(),
            journal_bytes: AtomicU64::new(0),
            journal_dropped: Counter::default(),
            incoming_dropped: Counter::default(),
            refused: Counter::default(),
            connected: AtomicBool::new(false),
            reconnects: Counter::default(),
        }
    }
}

impl PublisherMetrics {
    /// Messages in the outbox: queued, handed to the client or awaiting PUBACK.
    pub fn queued(&self) -> u64 {
        self.queued.load(Ordering::Relaxed)
    }

    /// When the oldest message in the outbox entered it (`None` when empty).
    pub fn oldest_since(&self) -> Option<Instant> {
        match self.oldest.load(Ordering::Relaxed) {
            0 => None,
            n => Some(self.epoch + Duration::from_nanos(n - 1)),
        }
    }

    /// How long the oldest message in the outbox has waited (`None` when empty).
    pub fn oldest_age(&self) -> Option<Duration> {
        self.oldest_since()
            .map(|at| Instant::now().saturating_duration_since(at))
    }

    /// Messages the outbox discarded because it was full (see `publish::OVERFLOW`).
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }

    /// Messages on `<cam>/events` topics the daemon produced in this run.
    pub fn events_raised(&self) -> u64 {
        self.events_raised.get()
    }

    /// Messages on `<cam>/events` topics the broker acknowledged (PUBACK), including
    /// those an earlier run left in the journal.
    pub fn events_acknowledged(&self) -> u64 {
        self.events_acknowledged.get()
    }

    /// Lines written to the outbox journal (appended or rewritten).
    pub fn journal_lines(&self) -> u64 {
        self.journal_lines.get()
    }

    /// Bytes in the outbox journal file now.
    pub fn journal_bytes(&self) -> u64 {
        self.journal_bytes.load(Ordering::Relaxed)
    }

    /// Messages left out of the journal because it was at its byte cap (kept in
    /// memory only: a restart before they are delivered loses them).
    pub fn journal_dropped(&self) -> u64 {
        self.journal_dropped.get()
    }

    /// Incoming messages discarded because they were over the daemon's limit for
    /// their topic.
    pub fn incoming_dropped(&self) -> u64 {
        self.incoming_dropped.get()
    }

    /// Outgoing messages refused because their packet would be over
    /// `mqtt.max_packet_size`, or because the broker closed the connection each time
    /// one was sent.
    pub fn refused(&self) -> u64 {
        self.refused.get()
    }

    /// Whether the broker connection is up.
    pub fn connected(&self) -> bool {
        self.connected.load(Ordering::Relaxed)
    }

    /// Connections made after the first one.
    pub fn reconnects(&self) -> u64 {
        self.reconnects.get()
    }

    /// One line: `3 queued, oldest 12.4 s, 0 dropped, 41 events raised, 41
    /// acknowledged, 12 journal lines, 1 reconnects, connected`, with the refusals
    /// (`, 2 refused, 1 incoming dropped, 3 journal dropped`) when there were any.
    pub fn summary(&self) -> String {
        let mut refusals = String::new();
        for (n, what) in [
            (self.refused(), "refused"),
            (self.incoming_dropped(), "incoming dropped"),
            (self.journal_dropped(), "journal dropped"),
        ] {
            if n > 0 {
                refusals.push_str(&format!(", {n} {what}"));
            }
        }
        format!(
            "{} queued, oldest {:.1} s, {} dropped, {} events raised, {} acknowledged, \
             {} journal lines, {} reconnects, {}{refusals}",
            self.queued(),
            self.oldest_age().unwrap_or_default().as_secs_f64(),
            self.dropped(),
            self.events_raised(),
            self.events_acknowledged(),
            self.journal_lines(),
            self.reconnects(),
            if self.connected() {
                "connected"
            } else {
                "disconnected"
            },
        )
    }

    /// The outbox now holds `n` messages, the oldest enqueued at `oldest`.
    pub(crate) fn set_queue(&self, n: usize, oldest: Option<Instant>) {
        self.queued.store(n as u64, Ordering::Relaxed);
        let nanos = oldest.map_or(0, |at| {
            let since = at.saturating_duration_since(self.epoch).as_nanos();
            u64::try_from(since).unwrap_or(u64::MAX - 1) + 1
        });
        self.oldest.store(nanos, Ordering::Relaxed);
    }

    pub(crate) fn on_dropped(&self) {
        self.dropped.inc();
    }

    pub(crate) fn on_event_raised(&self) {
        self.events_raised.inc();
    }

    pub(crate) fn on_event_acknowledged(&self) {
        self.events_acknowledged.inc();
    }

    pub(crate) fn on_journal_lines(&self, n: usize) {
        self.journal_lines.add(n as u64);
    }

    pub(crate) fn set_journal_bytes(&self, n: u64) {
        self.journal_bytes.store(n, Ordering::Relaxed);
    }

    pub(crate) fn on_journal_dropped(&self, n: u64) {
        self.journal_dropped.add(n);
    }

    pub(crate) fn on_incoming_dropped(&self) {
        self.incoming_dropped.inc();
    }

    pub(crate) fn on_refused(&self) {
        self.refused.inc();
    }

    /// The connection came up (`reconnect`: not the first time) or went down.
    pub(crate) fn set_connected(&self, up: bool, reconnect: bool) {
        self.connected.store(up, Ordering::Relaxed);
        if up && reconnect {
            self.reconnects.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn oldest_age_counts_from_the_enqueue_time() {
        let m = PublisherMetrics::default();
        assert_eq!(m.oldest_age(), None);
        m.set_queue(2, Some(Instant::now()));
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(m.queued(), 2);
        let age = m.oldest_age().unwrap();
        assert!(age >= Duration::from_millis(20), "{age:?}");
        m.set_queue(0, None);
        assert_eq!(m.oldest_age(), None);
        assert!(m.summary().starts_with("0 queued, oldest 0.0 s, 0 dropped"));
    }

    #[test]
    fn reconnects_count_only_after_the_first_connection() {
        let m = PublisherMetrics::default();
        m.set_connected(true, false);
        m.set_connected(false, false);
        m.set_connected(true, true);
        assert!(m.connected());
        assert_eq!(m.reconnects(), 1);
        assert!(m.summary().ends_with("1 reconnects, connected"));
    }
}
