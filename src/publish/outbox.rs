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
//!
//! Nothing enters that would make a packet over the broker's limit
//! (`mqtt.max_packet_size`): such a message is refused, logged (rate-limited) and
//! counted, and the rest flows. And no message is re-sent forever: one that was the
//! largest unacknowledged when the broker closed a fresh connection
//! [`MAX_QUICK_DROPS`] times is taken for one the broker refuses (a broker limit
//! lower than `mqtt.max_packet_size`, say) and dropped the same way; its size less
//! one becomes the limit from then on (never below [`LEARNED_FLOOR`]).
//!
//! Each message also records whether the journal on disk holds it
//! ([`Journaled`]), so the journal is written incrementally: only what it does not
//! hold yet is appended.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use super::limits::packet_size;
use super::topics::is_events;
use crate::kit::RateLimit;
use crate::kit::metrics::PublisherMetrics;

/// How many times the broker may close a fresh connection (within `QUICK_DROP` of
/// accepting it) while the same message is the largest unacknowledged one before
/// that message is taken for one the broker refuses and dropped. Three: a flaky
/// link rarely drops three connections in a row right after the same message, a
/// broker that disconnects on it (mosquitto over its `max_packet_size`) always does.
pub(super) const MAX_QUICK_DROPS: u8 = 3;

/// A message dropped after [`MAX_QUICK_DROPS`] lowers the packet limit to its size
/// less one, but never below this: 64 KiB keeps every state, event and device
/// config (a few KB) flowing should the blame be misplaced.
pub(super) const LEARNED_FLOOR: usize = 64 << 10;

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
    /// The full topic, prefix included.
    pub topic: String,
    /// The message body (empty: clears a retained message).
    pub payload: Vec<u8>,
    /// Whether the broker keeps it as the topic's retained message.
    pub retain: bool,
    /// QoS 1 when true, else QoS 0 (best effort, never re-sent).
    pub reliable: bool,
}

/// Whether the journal on disk holds a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Journaled {
    /// Not yet: written at the next journal sync during an outage.
    No,
    /// Written (or left out of a full journal, on purpose).
    Yes,
    /// Never needs to be: made again by the next run (availability, device configs,
    /// retained states republished after a reconnect, what an earlier run left).
    Never,
}

/// A message and when it entered the outbox.
#[derive(Debug)]
struct Entry {
    at: Instant,
    msg: Message,
    journaled: Journaled,
    /// Fresh connections the broker closed while this was the oldest unacknowledged.
    quick_drops: u8,
}

/// Messages on their way to the broker: queued, handed to the client, or awaiting
/// their PUBACK (see the module docs).
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
    /// Largest packet the broker takes (`mqtt.max_packet_size`, or lower: learned).
    max_packet: usize,
    /// `max_packet` was lowered after the broker refused a message.
    learned: bool,
    /// Rate limit of the refusal warnings.
    refusals: RateLimit,
    metrics: Arc<PublisherMetrics>,
}

impl Outbox {
    /// `capacity`: queued messages kept during an outage; `window`: unacknowledged
    /// messages in flight at once; `metrics`: updated on every change. Packets are
    /// limited to `limits::DEFAULT_MAX_PACKET` (see [`Outbox::with_max_packet`]).
    pub fn new(capacity: usize, window: usize, metrics: Arc<PublisherMetrics>) -> Self {
        Self {
            queued: VecDeque::new(),
            handed: VecDeque::new(),
            inflight: VecDeque::new(),
            times: BTreeMap::new(),
            capacity: capacity.max(1),
            window: window.max(1),
            overflow: None,
            max_packet: super::limits::DEFAULT_MAX_PACKET,
            learned: false,
            refusals: RateLimit::new(),
            metrics,
        }
    }

    /// The largest packet a message may make (`mqtt.max_packet_size`).
    pub fn with_max_packet(mut self, max_packet: usize) -> Self {
        self.max_packet = max_packet;
        self
    }

    /// Whether `msg` makes a packet the broker takes; when not, it is refused: logged
    /// (rate-limited) with its topic and size, and counted.
    pub fn admits(&mut self, msg: &Message) -> bool {
        let size = packet_size(&msg.topic, msg.payload.len());
        if size <= self.max_packet {
            return true;
        }
        self.metrics.on_refused();
        if let Some(s) = self.refusals.allow() {
            let limit = if self.learned {
                "the packet limit learned from the broker"
            } else {
                "mqtt.max_packet_size"
            };
            tracing::error!(
                suppressed = s.count(),
                "mqtt: not publishing {}: {size} bytes, over {limit} ({} bytes); the rest goes on{s}",
                msg.topic,
                self.max_packet,
            );
        }
        false
    }

    /// The metrics this outbox updates.
    pub fn metrics(&self) -> &Arc<PublisherMetrics> {
        &self.metrics
    }

    /// Queues a message the journal should hold during an outage (see
    /// [`Outbox::push_as`]).
    pub fn push(&mut self, msg: Message) {
        self.push_as(msg, Journaled::No);
    }

    /// Queues a message unless [`Outbox::admits`] refuses it. A retained message
    /// replaces a queued one on the same topic (which keeps its place and its age).
    /// When full, see `OVERFLOW_POLICY`. `journaled`: whether the journal holds it
    /// or needs to.
    pub fn push_as(&mut self, msg: Message, journaled: Journaled) {
        if !self.admits(&msg) {
            return;
        }
        if msg.retain
            && let Some(old) = self
                .queued
                .iter_mut()
                .find(|e| e.msg.retain && e.msg.topic == msg.topic)
        {
            // A newer value keeps the slot's record of closed connections: a state
            // that changes faster than the broker's refusals add up is still caught.
            if old.msg.payload != msg.payload
                && (old.journaled == Journaled::Yes || journaled == Journaled::No)
            {
                old.journaled = journaled;
            }
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
        self.enqueue_back(msg, journaled);
        self.update_metrics();
    }

    /// Queues a message ahead of everything else (availability and device configs
    /// after a reconnect; never journaled: the next run makes them again), unless
    /// [`Outbox::admits`] refuses it.
    pub fn push_front(&mut self, msg: Message) {
        if !self.admits(&msg) {
            return;
        }
        let mut quick_drops = 0;
        if msg.retain {
            let mut gone = Vec::new();
            self.queued.retain(|e| {
                let same = e.msg.retain && e.msg.topic == msg.topic;
                if same {
                    gone.push(e.at);
                    // It takes over the record of closed connections.
                    quick_drops = quick_drops.max(e.quick_drops);
                }
                !same
            });
            for at in gone {
                self.forget(at);
            }
        }
        let at = Instant::now();
        self.remember(at);
        self.queued.push_front(Entry {
            at,
            msg,
            journaled: Journaled::Never,
            quick_drops,
        });
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
    /// the front of the queue, in its original order. `quick`: the broker closed the
    /// connection soon after accepting it, which counts against the largest message
    /// unacknowledged (see `MAX_QUICK_DROPS`); the message dropped for it, if
    /// any, is returned.
    pub fn on_disconnect(&mut self, quick: bool) -> Option<Message> {
        let mut refused = None;
        // The largest unacknowledged: the broker acknowledges in order, but PUBACKs
        // read just before the close may reach us only after the reconnect, so the
        // oldest unacknowledged may well have been taken.
        let largest = self
            .inflight
            .iter_mut()
            .map(|(_, e)| e)
            .chain(self.handed.iter_mut())
            .filter(|e| e.msg.reliable)
            .max_by_key(|e| e.msg.payload.len());
        if quick && let Some(e) = largest {
            e.quick_drops += 1;
            if e.quick_drops >= MAX_QUICK_DROPS {
                let size = packet_size(&e.msg.topic, e.msg.payload.len());
                static DROPPING: RateLimit = RateLimit::new();
                if let Some(s) = DROPPING.allow() {
                    tracing::error!(
                        suppressed = s.count(),
                        "mqtt: dropping {} ({size} bytes): the broker closed the connection {} \
                         times in a row right after it was sent; does the broker refuse it (a \
                         broker limit below mqtt.max_packet_size, {} bytes, or an ACL)?{s}",
                        e.msg.topic,
                        e.quick_drops,
                        self.max_packet
                    );
                }
                self.metrics.on_refused();
                e.msg.reliable = false;
                refused = Some(e.msg.clone());
                // Most likely the broker's size limit: nothing as large goes out any
                // more (never below `LEARNED_FLOOR`, so a misjudged message cannot
                // silence the rest).
                let learned = (size - 1).max(LEARNED_FLOOR);
                if learned < self.max_packet {
                    tracing::warn!(
                        "mqtt: taking {learned} bytes for the broker's packet limit from now on \
                         (mqtt.max_packet_size is {}; set it to the broker's)",
                        self.max_packet
                    );
                    self.max_packet = learned;
                    self.learned = true;
                }
            }
        }
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
        refused
    }

    /// Every reliable message not yet acknowledged, in the order it would be sent.
    pub fn pending(&self) -> impl Iterator<Item = &Message> {
        self.entries().map(|e| &e.msg)
    }

    /// What the journal should hold: every reliable message not yet acknowledged
    /// that the next run would not make again, in the order it would be sent.
    pub fn durable(&self) -> impl Iterator<Item = &Message> {
        self.entries()
            .filter(|e| e.journaled != Journaled::Never)
            .map(|e| &e.msg)
    }

    /// Of [`Outbox::durable`], what the journal does not hold yet.
    pub fn unjournaled(&self) -> impl Iterator<Item = &Message> {
        self.entries()
            .filter(|e| e.journaled == Journaled::No)
            .map(|e| &e.msg)
    }

    /// The journal now holds (or has left out on purpose) every durable message.
    pub fn mark_journaled(&mut self) {
        let entries = self
            .inflight
            .iter_mut()
            .map(|(_, e)| e)
            .chain(self.handed.iter_mut())
            .chain(self.queued.iter_mut());
        for e in entries {
            if e.journaled == Journaled::No {
                e.journaled = Journaled::Yes;
            }
        }
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.inflight
            .iter()
            .map(|(_, e)| e)
            .chain(self.handed.iter())
            .chain(self.queued.iter())
            .filter(|e| e.msg.reliable)
    }

    /// Nothing queued, handed or unacknowledged.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.handed.is_empty() && self.inflight.is_empty()
    }

    /// Messages held: queued, handed and unacknowledged.
    pub fn len(&self) -> usize {
        self.queued.len() + self.handed.len() + self.inflight.len()
    }

    /// Messages dropped because the outbox was full.
    pub fn dropped(&self) -> u64 {
        self.metrics.dropped()
    }

    fn enqueue_back(&mut self, msg: Message, journaled: Journaled) {
        let at = Instant::now();
        self.remember(at);
        self.queued.push_back(Entry {
            at,
            msg,
            journaled,
            quick_drops: 0,
        });
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
        o.on_disconnect(false);
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
        o.on_disconnect(false);
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
    fn a_message_over_the_packet_limit_is_refused_and_the_rest_flows() {
        let m = Arc::new(PublisherMetrics::default());
        let mut o = Outbox::new(100, 10, m.clone()).with_max_packet(1000);
        o.push(msg("s", &"x".repeat(2000), true, true));
        o.push_front(msg("big", &"y".repeat(1000), true, true));
        o.push(msg("e", "ev", false, true));
        assert_eq!(drain(&mut o), vec!["ev"]);
        assert_eq!((m.refused(), m.dropped()), (2, 0));
        // The limit is on the whole packet: topic and headers count.
        let fits = (0..1000)
            .take_while(|n| super::super::limits::packet_size("t", *n) <= 1000)
            .last()
            .unwrap();
        assert!(o.admits(&msg("t", &"z".repeat(fits), false, true)));
        assert!(!o.admits(&msg("t", &"z".repeat(fits + 1), false, true)));
    }

    #[test]
    fn a_message_the_broker_keeps_closing_the_connection_on_is_dropped() {
        let m = Arc::new(PublisherMetrics::default());
        let mut o = Outbox::new(100, 10, m.clone());
        o.push(msg("a", "ok", false, true));
        let poison = "p".repeat(100_000);
        o.push(msg("poison", &poison, true, true));
        o.push(msg("b", "after", false, true));
        let mut refused = None;
        for round in 1..=MAX_QUICK_DROPS {
            let sent = drain(&mut o);
            if round == 1 {
                assert_eq!(sent, vec!["ok", poison.as_str(), "after"]);
                o.on_sent(1);
                o.on_ack(1);
            } else {
                assert_eq!(sent, vec![poison.as_str(), "after"], "{round}");
            }
            o.on_sent(2);
            o.on_sent(3);
            refused = o.on_disconnect(true);
            // The same message again after the reconnect keeps its record.
            if refused.is_none() {
                o.push_front(msg("poison", &poison, true, true));
            }
        }
        assert_eq!(refused.map(|r| r.topic).as_deref(), Some("poison"));
        assert_eq!(m.refused(), 1);
        // Its size less one is the limit from now on (not below the floor).
        let size = packet_size("poison", poison.len());
        assert_eq!(o.max_packet, (size - 1).max(LEARNED_FLOOR));
        assert!(!o.admits(&msg("poison", &poison, true, true)));
        assert_eq!(m.refused(), 2);
        // Only the largest unacknowledged is blamed; the one behind it goes out.
        assert_eq!(drain(&mut o), vec!["after"]);
        // A slow drop (a dead link) blames nothing.
        o.on_sent(4);
        for _ in 0..5 {
            assert_eq!(o.on_disconnect(false), None);
            assert_eq!(drain(&mut o), vec!["after"]);
            o.on_sent(4);
        }
    }

    #[test]
    fn the_journal_flags_follow_each_message() {
        let mut o = Outbox::new(100, 10, Default::default());
        o.push(msg("e", "1", false, true));
        o.push(msg("s", "OFF", true, true));
        o.push_front(msg("status", "online", true, true));
        o.push_as(msg("cfg", "{}", true, true), Journaled::Never);
        o.push(msg("d", "x", false, false));
        let names = |it: &mut dyn Iterator<Item = &Message>| -> Vec<String> {
            it.map(|m| m.topic.clone()).collect()
        };
        assert_eq!(names(&mut o.unjournaled()), vec!["e", "s"]);
        o.mark_journaled();
        assert!(o.unjournaled().next().is_none());
        assert_eq!(names(&mut o.durable()), vec!["e", "s"]);
        // A new value of a journaled state needs writing again; the same one does not.
        o.push(msg("s", "OFF", true, true));
        assert!(o.unjournaled().next().is_none());
        o.push(msg("s", "ON", true, true));
        assert_eq!(names(&mut o.unjournaled()), vec!["s"]);
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
