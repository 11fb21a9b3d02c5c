//! The publisher's outbox: messages wait here until the broker acknowledges them, so
//! a broker outage loses nothing. Retained state messages coalesce per topic (only
//! the latest matters); events and other QoS 1 messages stay in order, bounded by a
//! capacity, with an explicit overflow policy (`OVERFLOW_POLICY`) that is logged once
//! per overflow and counted.
//!
//! rumqttc forgets unacknowledged publishes when a clean session reconnects, so the
//! outbox tracks packet ids itself: a message handed to the client is `handed`, gets
//! its packet id when rumqttc reports it sent, and leaves when its PUBACK arrives.
//! On disconnect every unacknowledged message goes back to the front, in order.
//!
//! Every change updates the shared `PublisherMetrics`: messages held, the enqueue
//! time of the oldest, drops and acknowledged events.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::topics::is_events;
use crate::metrics::PublisherMetrics;

/// What a full outbox does with a new message, as its log lines name it: it makes
/// room by dropping the oldest best-effort (QoS 0) message queued, or when there is
/// none, the oldest queued message of all (usually the oldest event: retained states
/// coalesce per topic and take little room). The first drop of an overflow is logged
/// with the capacity; the rest are counted, and logged as one number once the queue
/// has drained to half its capacity.
pub const OVERFLOW_POLICY: &str = "drop-oldest (best-effort first)";

/// One message to publish.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    /// QoS 1 when true, else QoS 0 (best effort, never re-sent).
    pub reliable: bool,
}

/// A message and when it entered the outbox.
#[derive(Debug)]
struct Entry {
    at: Instant,
    msg: Message,
}

#[derive(Debug)]
pub struct Outbox {
    queued: VecDeque<Entry>,
    /// Handed to the client, not yet reported sent (in order).
    handed: VecDeque<Entry>,
    /// Sent with a packet id, awaiting PUBACK (in send order).
    inflight: VecDeque<(u16, Entry)>,
    /// Enqueue times of every message held (a multiset), for the oldest's age.
    times: BTreeMap<Instant, u32>,
    capacity: usize,
    window: usize,
    /// Drops since the queue last overflowed (`None`: not overflowing).
    overflow: Option<u64>,
    metrics: Arc<PublisherMetrics>,
}

impl Outbox {
    /// `capacity`: queued messages kept during an outage; `window`: unacknowledged
    /// messages in flight at once; `metrics`: updated on every change.
    pub fn new(capacity: usize, window: usize, metrics: Arc<PublisherMetrics>) -> Self {
        Self {
            queued: VecDeque::new(),
            handed: VecDeque::new(),
            inflight: VecDeque::new(),
            times: BTreeMap::new(),
            capacity: capacity.max(1),
            window: window.max(1),
            overflow: None,
            metrics,
        }
    }

    /// The metrics this outbox updates.
    pub fn metrics(&self) -> &Arc<PublisherMetrics> {
        &self.metrics
    }

    /// Queues a message. A retained message replaces a queued one on the same topic
    /// (which keeps its place and its age). When full, see `OVERFLOW_POLICY`.
    pub fn push(&mut self, msg: Message) {
        if msg.retain
            && let Some(old) = self
                .queued
                .iter_mut()
                .find(|e| e.msg.retain && e.msg.topic == msg.topic)
        {
            old.msg = msg;
            return;
        }
        if self.queued.len() >= self.capacity {
            let victim = self
                .queued
                .iter()
                .position(|e| !e.msg.reliable)
                .unwrap_or(0);
            if let Some(e) = self.queued.remove(victim) {
                self.forget(e.at);
                self.metrics.on_dropped();
                let drops = self.overflow.get_or_insert(0);
                if *drops == 0 {
                    tracing::warn!(
                        "mqtt outbox full ({} messages), overflow policy {OVERFLOW_POLICY}: \
                         dropped {} (further drops are counted)",
                        self.capacity,
                        e.msg.topic
                    );
                }
                *drops += 1;
            }
        }
        self.enqueue_back(msg);
        self.update_metrics();
    }

    /// Queues a message ahead of everything else (availability after a reconnect).
    pub fn push_front(&mut self, msg: Message) {
        if msg.retain {
            let mut gone = Vec::new();
            self.queued.retain(|e| {
                let same = e.msg.retain && e.msg.topic == msg.topic;
                if same {
                    gone.push(e.at);
                }
                !same
            });
            for at in gone {
                self.forget(at);
            }
        }
        let at = Instant::now();
        self.remember(at);
        self.queued.push_front(Entry { at, msg });
        self.update_metrics();
    }

    /// The next message to hand to the client, if the in-flight window allows.
    pub fn next_to_send(&mut self) -> Option<Message> {
        if self.handed.len() + self.inflight.len() >= self.window {
            return None;
        }
        let entry = self.queued.pop_front()?;
        let msg = entry.msg.clone();
        self.handed.push_back(entry);
        if let Some(drops) = self.overflow
            && self.queued.len() <= self.capacity / 2
        {
            self.overflow = None;
            tracing::warn!(
                "mqtt outbox: {drops} message(s) dropped while full (overflow policy \
                 {OVERFLOW_POLICY}, capacity {}); {} dropped in all",
                self.capacity,
                self.metrics.dropped()
            );
        }
        Some(msg)
    }

    /// rumqttc reported a publish sent with `pkid` (0 for QoS 0).
    pub fn on_sent(&mut self, pkid: u16) {
        if let Some(entry) = self.handed.pop_front() {
            if entry.msg.reliable {
                self.inflight.push_back((pkid, entry));
            } else {
                self.forget(entry.at);
                self.update_metrics();
            }
        }
    }

    /// The broker acknowledged `pkid`.
    pub fn on_ack(&mut self, pkid: u16) {
        if let Some(i) = self.inflight.iter().position(|(p, _)| *p == pkid)
            && let Some((_, entry)) = self.inflight.remove(i)
        {
            if !entry.msg.retain && is_events(&entry.msg.topic) {
                self.metrics.on_event_acknowledged();
            }
            self.forget(entry.at);
            self.update_metrics();
        }
    }

    /// The connection dropped: every reliable message not acknowledged goes back to
    /// the front of the queue, in its original order.
    pub fn on_disconnect(&mut self) {
        let again: Vec<Entry> = self
            .inflight
            .drain(..)
            .map(|(_, e)| e)
            .chain(self.handed.drain(..))
            .collect();
        for entry in again.into_iter().rev() {
            let superseded = entry.msg.retain
                && self
                    .queued
                    .iter()
                    .any(|e| e.msg.retain && e.msg.topic == entry.msg.topic);
            if !entry.msg.reliable || superseded {
                // Best effort is never re-sent; a newer value of this state is queued.
                self.forget(entry.at);
                continue;
            }
            self.queued.push_front(entry);
        }
        self.update_metrics();
    }

    /// Every reliable message not yet acknowledged, in the order it would be sent.
    pub fn pending(&self) -> impl Iterator<Item = &Message> {
        self.inflight
            .iter()
            .map(|(_, e)| e)
            .chain(self.handed.iter())
            .chain(self.queued.iter())
            .map(|e| &e.msg)
            .filter(|m| m.reliable)
    }

    /// Nothing queued, handed or unacknowledged.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.handed.is_empty() && self.inflight.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queued.len() + self.handed.len() + self.inflight.len()
    }

    /// Messages dropped because the outbox was full.
    pub fn dropped(&self) -> u64 {
        self.metrics.dropped()
    }

    fn enqueue_back(&mut self, msg: Message) {
        let at = Instant::now();
        self.remember(at);
        self.queued.push_back(Entry { at, msg });
    }

    fn remember(&mut self, at: Instant) {
        *self.times.entry(at).or_insert(0) += 1;
    }

    fn forget(&mut self, at: Instant) {
        if let Some(n) = self.times.get_mut(&at) {
            *n -= 1;
            if *n == 0 {
                self.times.remove(&at);
            }
        }
    }

    fn update_metrics(&self) {
        let oldest = self.times.keys().next().copied();
        self.metrics.set_queue(self.len(), oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg(topic: &str, payload: &str, retain: bool, reliable: bool) -> Message {
        Message {
            topic: topic.into(),
            payload: payload.as_bytes().to_vec(),
            retain,
            reliable,
        }
    }

    fn drain(o: &mut Outbox) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(m) = o.next_to_send() {
            out.push(String::from_utf8(m.payload).unwrap());
        }
        out
    }

    #[test]
    fn unacked_messages_are_resent_in_order_after_disconnect() {
        let mut o = Outbox::new(100, 10, Default::default());
        for i in 0..4 {
            o.push(msg("e", &i.to_string(), false, true));
        }
        o.push(msg("d", "best-effort", false, false));
        assert_eq!(drain(&mut o).len(), 5);
        o.on_sent(1);
        o.on_sent(2);
        o.on_sent(3);
        o.on_ack(1);
        // Event 0 acked; events 1 and 2 in flight; event 3 and the QoS 0 message
        // handed but not reported sent. The QoS 0 message is not re-sent.
        o.on_disconnect();
        assert_eq!(drain(&mut o), vec!["1", "2", "3"]);
        assert!(!o.is_empty());
    }

    #[test]
    fn push_front_jumps_the_backlog_and_replaces_its_topic() {
        let mut o = Outbox::new(100, 10, Default::default());
        o.push(msg("status", "offline", true, true));
        o.push(msg("e", "ev", false, true));
        o.push_front(msg("status", "online", true, true));
        assert_eq!(drain(&mut o), vec!["online", "ev"]);
    }

    #[test]
    fn retained_states_coalesce_per_topic() {
        let mut o = Outbox::new(100, 10, Default::default());
        o.push(msg("s", "OFF", true, true));
        o.push(msg("e", "ev", false, true));
        o.push(msg("s", "ON", true, true));
        assert_eq!(drain(&mut o), vec!["ON", "ev"]);
    }

    #[test]
    fn overflow_drops_best_effort_first_and_counts() {
        let m = Arc::new(PublisherMetrics::default());
        let mut o = Outbox::new(2, 10, m.clone());
        o.push(msg("e", "1", false, true));
        o.push(msg("d", "x", false, false));
        o.push(msg("e", "2", false, true));
        assert_eq!((o.dropped(), m.dropped(), m.queued()), (1, 1, 2));
        // Then the oldest of all; a retained state replacing its own is no drop.
        o.push(msg("e", "3", false, true));
        o.push(msg("s", "OFF", true, true));
        o.push(msg("s", "ON", true, true));
        assert_eq!((m.dropped(), m.queued()), (3, 2));
        assert_eq!(o.overflow, Some(3));
        // Drained to half the capacity: the overflow is over (and logged as one count).
        assert_eq!(drain(&mut o), vec!["3", "ON"]);
        assert_eq!(o.overflow, None);
        assert_eq!(m.dropped(), 3);
    }

    #[test]
    fn metrics_follow_the_queue_and_its_oldest_message() {
        let m = Arc::new(PublisherMetrics::default());
        let mut o = Outbox::new(100, 10, m.clone());
        assert_eq!((m.queued(), m.oldest_since()), (0, None));
        let before = Instant::now();
        o.push(msg("ocellus/cam/events", "1", false, true));
        let after = Instant::now();
        let first = |m: &PublisherMetrics| {
            m.oldest_since()
                .is_some_and(|t| (before..=after).contains(&t))
        };
        std::thread::sleep(std::time::Duration::from_millis(1));
        o.push(msg("ocellus/cam/events", "2", false, true));
        o.push(msg("ocellus/cam/detections", "d", false, false));
        assert_eq!(m.queued(), 3);
        assert!(first(&m));
        // Handed and sent: still held (QoS 0 leaves once sent), still the oldest.
        assert_eq!(drain(&mut o).len(), 3);
        o.on_sent(1);
        o.on_sent(2);
        o.on_sent(0);
        assert_eq!(m.queued(), 2);
        assert!(first(&m));
        // Back in the queue after a disconnect, with its age.
        o.on_disconnect();
        assert_eq!(m.queued(), 2);
        assert!(first(&m));
        assert_eq!(drain(&mut o), vec!["1", "2"]);
        o.on_sent(3);
        o.on_sent(4);
        o.on_ack(3);
        assert_eq!((m.queued(), m.events_acknowledged()), (1, 1));
        assert!(m.oldest_since().is_some_and(|t| t > after));
        o.on_ack(4);
        o.on_ack(4);
        assert_eq!((m.queued(), m.events_acknowledged()), (0, 2));
        assert_eq!(m.oldest_since(), None);
        assert_eq!(m.dropped(), 0);
    }

    #[test]
    fn a_coalesced_state_keeps_its_age() {
        let m = Arc::new(PublisherMetrics::default());
        let mut o = Outbox::new(100, 10, m.clone());
        let before = Instant::now();
        o.push(msg("s", "OFF", true, true));
        let after = Instant::now();
        o.push(msg("s", "ON", true, true));
        assert_eq!(m.queued(), 1);
        assert!(
            m.oldest_since()
                .is_some_and(|t| (before..=after).contains(&t))
        );
        // Availability jumps the queue as a new message.
        std::thread::sleep(std::time::Duration::from_millis(1));
        o.push_front(msg("s", "online", true, true));
        assert_eq!(m.queued(), 1);
        assert!(m.oldest_since().is_some_and(|t| t > after));
        assert_eq!(drain(&mut o), vec!["online"]);
        o.on_sent(1);
        o.on_ack(1);
        assert_eq!((m.queued(), m.events_acknowledged()), (0, 0));
    }

    #[test]
    fn window_limits_messages_in_flight() {
        let mut o = Outbox::new(100, 2, Default::default());
        for i in 0..3 {
            o.push(msg("e", &i.to_string(), false, true));
        }
        assert_eq!(drain(&mut o), vec!["0", "1"]);
        o.on_sent(7);
        o.on_ack(7);
        assert_eq!(drain(&mut o), vec!["2"]);
    }
}
