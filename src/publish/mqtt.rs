//! The publisher task: feeds the outbox from the daemon's channel, reconnects forever,
//! re-sends unacknowledged messages and republishes retained state after every
//! reconnect.
//!
//! rumqttc's event loop runs in a task of its own that forwards its events: polling it
//! inside a `select!` next to the daemon's channel would cancel a connection attempt
//! in progress every time a frame report arrived.

use std::collections::{BTreeMap, HashSet};
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

use rumqttc::{AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::journal::Journal;
use super::limits::Incoming;
use super::outbox::Journaled;
use super::{Commands, Labels, Tap};
use super::{Discovery, Encoder, Message, Outbox, Outgoing};
use crate::kit::{LabelCommand, QueryCommand};
use crate::kit::{RateLimit, RateLimits};

/// What the polling task forwards.
#[derive(Debug)]
pub(super) enum Polled {
    Event(Result<Event, ConnectionError>),
    /// An incoming message over the daemon's limit for its topic, already discarded.
    Oversized {
        topic: String,
        size: usize,
        kind: &'static str,
        limit: usize,
    },
}

/// Messages the broker refused (closed the connection on) that are remembered so
/// they are not sent again after a reconnect; beyond this many the oldest is
/// forgotten.
const REFUSED_KEPT: usize = 256;

/// Unacknowledged messages in flight.
pub(super) const WINDOW: usize = 64;
/// How long shutdown waits for the broker to take what is left.
const DRAIN: Duration = Duration::from_secs(5);
/// Reconnect backoff: doubles from the first to the last.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(250), Duration::from_secs(4));

/// Connections the broker closed within this long of accepting them count as
/// taken over (another client with the same id, or an ACL kick).
const QUICK_DROP: Duration = Duration::from_secs(10);

/// The publisher's connection state.
struct Link {
    url: String,
    client_id: String,
    /// When the current connection was accepted.
    connected_at: Option<Instant>,
    /// Connections in a row closed within `QUICK_DROP` (the hint is logged at 3).
    quick_drops: u32,
    outbox: Outbox,
    retained: BTreeMap<String, Message>,
    connected: bool,
    ever_connected: bool,
    failed_once: bool,
    /// Set once the daemon's channel has closed.
    draining: bool,
    discovery: Option<Discovery>,
    /// Subscriptions to make after each connect (a clean session forgets them).
    subscribe: bool,
    /// The outbox on disk during outages.
    journal: Option<Journal>,
    /// Where runtime query specs go (`<prefix>/+/query/+/set`).
    commands: Option<Commands>,
    /// Where labels of taught queries go (`<prefix>/+/query/+/label`).
    labels: Option<Labels>,
    /// Sees every daemon output and every message made of it (the web UI's stream).
    tap: Option<Tap>,
    /// Rate limit of the warnings about oversized incoming messages.
    oversized: RateLimit,
    /// Messages (topic, payload hash) the broker closed the connection on: not
    /// republished after a reconnect.
    refused: HashSet<(String, u64)>,
    refused_order: std::collections::VecDeque<(String, u64)>,
}

fn fingerprint(m: &Message) -> (String, u64) {
    let mut h = DefaultHasher::new();
    m.payload.hash(&mut h);
    (m.topic.clone(), h.finish())
}

impl Link {
    /// Applies what the polling task forwarded.
    fn on_polled(&mut self, polled: Polled, encoder: &Encoder) {
        match polled {
            Polled::Event(ev) => self.on_event(ev, encoder),
            Polled::Oversized {
                topic,
                size,
                kind,
                limit,
            } => self.on_oversized(&topic, size, kind, limit, encoder),
        }
    }

    /// An incoming message was over its limit: counted, logged (rate-limited), and
    /// for a query spec refused on its `.../error` topic.
    fn on_oversized(
        &mut self,
        topic: &str,
        size: usize,
        kind: &str,
        limit: usize,
        encoder: &Encoder,
    ) {
        self.outbox.metrics().on_incoming_dropped();
        if let Some(s) = self.oversized.allow() {
            tracing::warn!(
                suppressed = s.count(),
                "mqtt: discarded a {size}-byte {kind} on {topic}: over the daemon's {limit}-byte \
                 limit for it{s}; {} discarded in all",
                self.outbox.metrics().incoming_dropped()
            );
        }
        if self.commands.is_some()
            && let Some((camera, query)) = encoder.topics().parse_query_set(topic)
        {
            let reason = format!("the spec is {size} bytes, over the limit of {limit} bytes");
            self.outbox.push(encoder.rejected(camera, query, &reason));
        } else if self.labels.is_some()
            && let Some((camera, query)) = encoder.topics().parse_query_label(topic)
        {
            let reason = format!("the label is {size} bytes, over the limit of {limit} bytes");
            self.outbox.push(encoder.rejected(camera, query, &reason));
        }
    }

    /// Remembers a message the broker closed the connection on.
    fn remember_refused(&mut self, m: &Message) {
        let f = fingerprint(m);
        if self.refused.insert(f.clone()) {
            self.refused_order.push_back(f);
            if self.refused_order.len() > REFUSED_KEPT
                && let Some(old) = self.refused_order.pop_front()
            {
                self.refused.remove(&old);
            }
        }
        if self.retained.get(&m.topic).is_some_and(|r| r == m) {
            self.retained.remove(&m.topic);
        }
    }

    fn was_refused(&self, m: &Message) -> bool {
        !self.refused.is_empty() && self.refused.contains(&fingerprint(m))
    }

    /// Applies one event from rumqttc's loop.
    fn on_event(&mut self, ev: Result<Event, ConnectionError>, encoder: &Encoder) {
        match ev {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                tracing::info!("mqtt: connected to {} as {}", self.url, self.client_id);
                self.connected_at = Some(Instant::now());
                self.connected = true;
                self.outbox
                    .metrics()
                    .set_connected(true, self.ever_connected);
                self.failed_once = false;
                // Republished states are made again by the next run: not journaled.
                if self.ever_connected {
                    for m in self.retained.values() {
                        self.outbox.push_as(m.clone(), Journaled::Never);
                    }
                }
                // Availability first, ahead of any backlog, then the discovery configs.
                if !self.draining {
                    if let Some(d) = &self.discovery {
                        for m in d.messages().into_iter().rev() {
                            if !self.was_refused(&m) {
                                self.outbox.push_front(m);
                            }
                        }
                    }
                    self.subscribe = self.discovery.is_some()
                        || self.commands.is_some()
                        || self.labels.is_some();
                    self.outbox.push_front(encoder.status(true));
                }
                self.ever_connected = true;
            }
            Ok(Event::Incoming(Packet::Publish(p))) => {
                if let (Some(commands), Some((camera, query))) =
                    (&self.commands, encoder.topics().parse_query_set(&p.topic))
                {
                    let cmd = QueryCommand {
                        camera: camera.to_string(),
                        query: query.to_string(),
                        payload: p.payload.to_vec(),
                    };
                    if !commands(cmd) {
                        busy(&p.topic, camera, query, "query changes");
                    }
                    return;
                }
                if let (Some(labels), Some((camera, query))) =
                    (&self.labels, encoder.topics().parse_query_label(&p.topic))
                {
                    let cmd = LabelCommand {
                        camera: camera.to_string(),
                        query: query.to_string(),
                        payload: p.payload.to_vec(),
                    };
                    if !labels(cmd) {
                        busy(&p.topic, camera, query, "labels");
                        self.outbox.push(encoder.rejected(
                            camera,
                            query,
                            "label dropped: too many labels at once; send it again",
                        ));
                    }
                    return;
                }
                if let Some(d) = &self.discovery {
                    for m in d.on_message(&p.topic, &p.payload) {
                        self.outbox.push_as(m, Journaled::Never);
                    }
                }
            }
            Ok(Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) => self.outbox.on_sent(pkid),
            Ok(Event::Incoming(Packet::PubAck(ack))) => self.outbox.on_ack(ack.pkid),
            Ok(_) => {}
            Err(e) => {
                let quick = self.connected_at.take().map(|at| at.elapsed() < QUICK_DROP);
                match quick {
                    Some(true) => self.quick_drops += 1,
                    Some(false) => self.quick_drops = 0,
                    None => {}
                }
                if self.quick_drops == 3 {
                    tracing::warn!(
                        "mqtt: {} closed the connection 3 times in a row within {} s of accepting it; \
                         is another client using client_id {:?}? (each daemon needs its own)",
                        self.url,
                        QUICK_DROP.as_secs(),
                        self.client_id
                    );
                }
                // Once an outage (not at each retry), and a broker that keeps closing
                // the connection once a minute.
                static UNREACHABLE: RateLimit = RateLimit::new();
                if (self.connected || !self.failed_once)
                    && let Some(s) = UNREACHABLE.allow()
                {
                    tracing::error!(
                        suppressed = s.count(),
                        "mqtt: broker {} unreachable: {e}; retrying ({} messages waiting){s}",
                        self.url,
                        self.outbox.len()
                    );
                }
                self.connected = false;
                self.outbox.metrics().set_connected(false, false);
                self.failed_once = true;
                if let Some(m) = self.outbox.on_disconnect(quick == Some(true)) {
                    self.remember_refused(&m);
                }
                // Only what the file does not hold yet: a disconnect costs no rewrite.
                if let Some(j) = &mut self.journal {
                    j.sync(&mut self.outbox);
                }
            }
        }
    }

    /// Queues what the encoder makes of one daemon output.
    fn on_output(&mut self, out: &Outgoing, encoder: &mut Encoder) {
        // Device configs are made again by the next run: not journaled.
        let configs = match (out, &mut self.discovery) {
            (Outgoing::Queries { camera, .. }, Some(d)) => d.update(camera),
            (Outgoing::Cameras { cameras, .. }, Some(d)) => d.set_cameras(cameras),
            (Outgoing::Model { model, .. }, Some(d)) => d.served(model),
            _ => Vec::new(),
        };
        for m in configs {
            self.outbox.push_as(m, Journaled::Never);
        }
        if let Some(tap) = &self.tap {
            tap.outgoing(out);
        }
        encoder.encode(out, |m| {
            // Refused at its source (logged and counted): it never replaces the
            // retained state that is republished after a reconnect.
            if !self.outbox.admits(&m) {
                return;
            }
            if let Some(tap) = &self.tap {
                tap.message(&m);
            }
            if m.retain && m.payload.is_empty() {
                self.retained.remove(&m.topic);
            } else if m.retain {
                self.retained.insert(m.topic.clone(), m.clone());
            }
            if m.reliable && !m.retain && super::topics::is_events(&m.topic) {
                self.outbox.metrics().on_event_raised();
            }
            // Best-effort messages (detections) are live data: during an outage they
            // are dropped, not replayed stale afterwards.
            if m.reliable || self.connected {
                self.outbox.push(m);
            }
        });
        if !self.connected
            && let Some(j) = &mut self.journal
        {
            j.sync(&mut self.outbox);
        }
    }

    /// Hands queued messages to the client while connected.
    fn send(&mut self, client: &AsyncClient, topics: &super::Topics) {
        if !self.connected {
            return;
        }
        if std::mem::take(&mut self.subscribe) {
            let mut filters = Vec::new();
            if let Some(d) = &self.discovery {
                filters.extend([d.birth_topic(), d.configs_filter()]);
            }
            if self.commands.is_some() {
                filters.push(topics.query_set_filter());
            }
            if self.labels.is_some() {
                filters.push(topics.query_label_filter());
            }
            for filter in filters {
                if let Err(e) = client.try_subscribe(filter.as_str(), QoS::AtLeastOnce) {
                    static FAILED: RateLimits = RateLimits::new();
                    if let Some(s) = FAILED.allow(&filter) {
                        tracing::warn!(
                            suppressed = s.count(),
                            "mqtt: cannot subscribe to {filter}: {e}{s}"
                        );
                    }
                }
            }
        }
        while let Some(m) = self.outbox.next_to_send() {
            let qos = if m.reliable {
                QoS::AtLeastOnce
            } else {
                QoS::AtMostOnce
            };
            if client
                .try_publish(m.topic, qos, m.retain, m.payload)
                .is_err()
            {
                self.outbox.on_disconnect(false);
                return;
            }
        }
    }
}

/// What the publisher task is made of, besides its connection.
pub(super) struct Parts {
    pub encoder: Encoder,
    pub discovery: Option<Discovery>,
    /// The journal and what an earlier run left in it.
    pub journal: Option<(Journal, Vec<Message>)>,
    pub outbox: Outbox,
    pub commands: Option<Commands>,
    pub labels: Option<Labels>,
    pub tap: Option<Tap>,
    pub heartbeat: Option<crate::kit::watchdog::Heartbeat>,
    /// The daemon's limits on incoming payloads.
    pub incoming: Incoming,
}

pub(super) async fn run(
    opts: MqttOptions,
    url: String,
    mut rx: mpsc::Receiver<Outgoing>,
    parts: Parts,
) {
    let Parts {
        mut encoder,
        discovery,
        journal,
        outbox,
        commands,
        labels,
        tap,
        heartbeat,
        incoming,
    } = parts;
    let client_id = opts.client_id();
    let (client, eventloop) = AsyncClient::new(opts, 2 * WINDOW);
    let (events_tx, mut events) = mpsc::channel(4 * WINDOW);
    let poller = tokio::spawn(poll(eventloop, events_tx, incoming));
    let mut link = Link {
        url,
        client_id,
        connected_at: None,
        quick_drops: 0,
        outbox,
        retained: BTreeMap::new(),
        connected: false,
        ever_connected: false,
        failed_once: false,
        draining: false,
        discovery,
        subscribe: false,
        journal: None,
        commands,
        labels,
        tap,
        oversized: RateLimit::new(),
        refused: HashSet::new(),
        refused_order: Default::default(),
    };
    if let Some((journal, earlier)) = journal {
        // What an earlier run could not deliver goes first, in its order (the file
        // holds it already).
        for m in earlier {
            link.outbox.push_as(m, Journaled::Yes);
        }
        link.journal = Some(journal);
    }
    let mut deadline: Option<Instant> = None;
    let mut beat = tokio::time::interval(super::links::BEAT_EVERY);
    loop {
        if let Some(h) = &heartbeat {
            h.beat();
        }
        // Apply every event already reported (a disconnect above all) before handing
        // out more messages, so none is handed to a connection that is already gone.
        while let Ok(ev) = events.try_recv() {
            link.on_polled(ev, &encoder);
        }
        link.send(&client, encoder.topics());
        if link.connected
            && link.outbox.is_empty()
            && let Some(j) = &mut link.journal
        {
            j.clear();
        }
        if link.draining && link.outbox.is_empty() {
            break;
        }
        tokio::select! {
            msg = rx.recv(), if !link.draining => match msg {
                Some(out) => link.on_output(&out, &mut encoder),
                None => {
                    link.draining = true;
                    link.outbox.push(encoder.status(false));
                    deadline = Some(Instant::now() + DRAIN);
                }
            },
            ev = events.recv() => match ev {
                Some(ev) => {
                    let failed = matches!(ev, Polled::Event(Err(_)));
                    link.on_polled(ev, &encoder);
                    if failed && deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                }
                None => break,
            },
            _ = sleep_until(deadline) => break,
            _ = beat.tick() => {}
        }
    }
    if !link.outbox.is_empty() {
        link.outbox.on_disconnect(false);
        match &mut link.journal {
            Some(j) => {
                let max = j.max_bytes();
                j.rewrite(&mut link.outbox, max);
                tracing::warn!(
                    "mqtt: shutting down with {} messages not delivered to {}; kept in the journal for the next start",
                    link.outbox.len(),
                    link.url
                );
            }
            None => tracing::error!(
                "mqtt: shutting down with {} messages not delivered to {}",
                link.outbox.len(),
                link.url
            ),
        }
    }
    if link.connected && client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Some(ev) = events.recv().await {
                if matches!(
                    ev,
                    Polled::Event(Ok(Event::Outgoing(rumqttc::Outgoing::Disconnect)) | Err(_))
                ) {
                    break;
                }
            }
        })
        .await;
    }
    link.outbox.metrics().set_connected(false, false);
    poller.abort();
}

/// Logs a command (`what`: query changes, labels) the daemon was too busy to take:
/// one line a minute whatever the names, which come from anyone who may publish.
fn busy(topic: &str, camera: &str, query: &str, what: &str) {
    static DROPPED: RateLimit = RateLimit::new();
    if let Some(s) = DROPPED.allow() {
        tracing::warn!(
            camera = %camera,
            query = %query,
            suppressed = s.count(),
            "mqtt: {topic}: dropped, too many {what} at once{s}"
        );
    }
}

/// Drives rumqttc's event loop and forwards every event, an incoming message over
/// its topic's limit replaced by [`Polled::Oversized`] (so its payload is freed here,
/// and the channel holds only small messages); after an error it waits with capped
/// exponential backoff before the next poll (which reconnects).
async fn poll(mut eventloop: EventLoop, tx: mpsc::Sender<Polled>, limits: Incoming) {
    let mut backoff = BACKOFF.0;
    loop {
        let ev = eventloop.poll().await;
        let failed = ev.is_err();
        if matches!(ev, Ok(Event::Incoming(Packet::ConnAck(_)))) {
            backoff = BACKOFF.0;
        }
        let polled = match ev {
            Ok(Event::Incoming(Packet::Publish(p))) => {
                let (kind, limit) = limits.limit(&p.topic);
                if p.payload.len() > limit {
                    Polled::Oversized {
                        size: p.payload.len(),
                        topic: p.topic,
                        kind,
                        limit,
                    }
                } else {
                    Polled::Event(Ok(Event::Incoming(Packet::Publish(p))))
                }
            }
            ev => Polled::Event(ev),
        };
        if tx.send(polled).await.is_err() {
            return;
        }
        if failed {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
