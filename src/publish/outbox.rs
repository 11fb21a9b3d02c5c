//! The publisher's outbox: messages wait here until the broker acknowledges them, so
//! a broker outage loses nothing. Retained state messages coalesce per topic (only
//! the latest matters); events and other QoS 1 messages stay in order, bounded, with
//! an explicit drop-oldest policy and a counter.
//!
//! rumqttc forgets unacknowledged publishes when a clean session reconnects, so the
//! outbox tracks packet ids itself: a message handed to the client is `handed`, gets
//! its packet id when rumqttc reports it sent, and leaves when its PUBACK arrives.
//! On disconnect every unacknowledged message goes back to the front, in order.

use std::collections::VecDeque;

/// One message to publish.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub topic: String,
    pub payload: Vec<u8>,
    pub retain: bool,
    /// QoS 1 when true, else QoS 0 (best effort, never re-sent).
    pub reliable: bool,
}

#[derive(Debug)]
pub struct Outbox {
    queued: VecDeque<Message>,
    /// Handed to the client, not yet reported sent (in order).
    handed: VecDeque<Message>,
    /// Sent with a packet id, awaiting PUBACK (in send order).
    inflight: VecDeque<(u16, Message)>,
    capacity: usize,
    window: usize,
    dropped: u64,
}

impl Outbox {
    /// `capacity`: queued messages kept during an outage; `window`: unacknowledged
    /// messages in flight at once.
    pub fn new(capacity: usize, window: usize) -> Self {
        Self {
            queued: VecDeque::new(),
            handed: VecDeque::new(),
            inflight: VecDeque::new(),
            capacity: capacity.max(1),
            window: window.max(1),
            dropped: 0,
        }
    }

    /// Queues a message. A retained message replaces a queued one on the same topic.
    /// When full, the oldest best-effort message goes first, then the oldest of all.
    pub fn push(&mut self, msg: Message) {
        if msg.retain
            && let Some(old) = self
                .queued
                .iter_mut()
                .find(|m| m.retain && m.topic == msg.topic)
        {
            *old = msg;
            return;
        }
        if self.queued.len() >= self.capacity {
            let victim = self.queued.iter().position(|m| !m.reliable).unwrap_or(0);
            if let Some(m) = self.queued.remove(victim) {
                self.dropped += 1;
                tracing::warn!(topic = %m.topic, "mqtt outbox full ({} messages): dropped the oldest", self.capacity);
            }
        }
        self.queued.push_back(msg);
    }

    /// Queues a message ahead of everything else (availability after a reconnect).
    pub fn push_front(&mut self, msg: Message) {
        if msg.retain {
            self.queued.retain(|m| !(m.retain && m.topic == msg.topic));
        }
        self.queued.push_front(msg);
    }

    /// The next message to hand to the client, if the in-flight window allows.
    pub fn next_to_send(&mut self) -> Option<Message> {
        if self.handed.len() + self.inflight.len() >= self.window {
            return None;
        }
        let msg = self.queued.pop_front()?;
        self.handed.push_back(msg.clone());
        Some(msg)
    }

    /// rumqttc reported a publish sent with `pkid` (0 for QoS 0).
    pub fn on_sent(&mut self, pkid: u16) {
        if let Some(msg) = self.handed.pop_front()
            && msg.reliable
        {
            self.inflight.push_back((pkid, msg));
        }
    }

    /// The broker acknowledged `pkid`.
    pub fn on_ack(&mut self, pkid: u16) {
        if let Some(i) = self.inflight.iter().position(|(p, _)| *p == pkid) {
            self.inflight.remove(i);
        }
    }

    /// The connection dropped: every reliable message not acknowledged goes back to
    /// the front of the queue, in its original order.
    pub fn on_disconnect(&mut self) {
        let again: Vec<Message> = self
            .inflight
            .drain(..)
            .map(|(_, m)| m)
            .chain(self.handed.drain(..).filter(|m| m.reliable))
            .collect();
        for msg in again.into_iter().rev() {
            if msg.retain && self.queued.iter().any(|m| m.retain && m.topic == msg.topic) {
                continue; // a newer value of this state is already queued
            }
            self.queued.push_front(msg);
        }
    }

    /// Every reliable message not yet acknowledged, in the order it would be sent.
    pub fn pending(&self) -> impl Iterator<Item = &Message> {
        self.inflight
            .iter()
            .map(|(_, m)| m)
            .chain(self.handed.iter())
            .chain(self.queued.iter())
            .filter(|m| m.reliable)
    }

    /// Nothing queued, handed or unacknowledged.
    pub fn is_empty(&self) -> bool {
        self.queued.is_empty() && self.handed.is_empty() && self.inflight.is_empty()
    }

    pub fn len(&self) -> usize {
        self.queued.len() + self.handed.len() + self.inflight.len()
    }

    pub fn dropped(&self) -> u64 {
        self.dropped
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
        let mut o = Outbox::new(100, 10);
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
        let mut o = Outbox::new(100, 10);
        o.push(msg("status", "offline", true, true));
        o.push(msg("e", "ev", false, true));
        o.push_front(msg("status", "online", true, true));
        assert_eq!(drain(&mut o), vec!["online", "ev"]);
    }

    #[test]
    fn retained_states_coalesce_per_topic() {
        let mut o = Outbox::new(100, 10);
        o.push(msg("s", "OFF", true, true));
        o.push(msg("e", "ev", false, true));
        o.push(msg("s", "ON", true, true));
        assert_eq!(drain(&mut o), vec!["ON", "ev"]);
    }

    #[test]
    fn overflow_drops_best_effort_first_and_counts() {
        let mut o = Outbox::new(2, 10);
        o.push(msg("e", "1", false, true));
        o.push(msg("d", "x", false, false));
        o.push(msg("e", "2", false, true));
        assert_eq!(o.dropped(), 1);
        assert_eq!(drain(&mut o), vec!["1", "2"]);
    }

    #[test]
    fn window_limits_messages_in_flight() {
        let mut o = Outbox::new(100, 2);
        for i in 0..3 {
            o.push(msg("e", &i.to_string(), false, true));
        }
        assert_eq!(drain(&mut o), vec!["0", "1"]);
        o.on_sent(7);
        o.on_ack(7);
        assert_eq!(drain(&mut o), vec!["2"]);
    }
}
