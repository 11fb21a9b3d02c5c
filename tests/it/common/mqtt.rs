//! MQTT clients of the tests: a subscriber that records everything it sees
//! (`MqttCollector`, its `Msg`s), one-shot publishing (`publish_once`), client ids and
//! broker URLs.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Packet, QoS};

use super::{lock, wait_until};

/// `(host, port)` from `mqtt://host:port`, `tcp://host:port` or `host:port`.
pub fn mqtt_host_port(url: &str) -> (String, u16) {
    let rest = url
        .split_once("://")
        .map(|(_, r)| r)
        .unwrap_or(url)
        .split(['/', '?'])
        .next()
        .unwrap_or_default();
    match rest.rsplit_once(':') {
        Some((h, p)) => (
            h.to_string(),
            p.parse()
                .unwrap_or_else(|_| panic!("bad port in MQTT url {url:?}")),
        ),
        None => (rest.to_string(), 1883),
    }
}

/// A client id no other client of this test process uses (`role` in it, to read
/// broker logs by).
pub fn client_id(role: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "ocellus-test-{role}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

fn mqtt_options(url: &str, role: &str) -> MqttOptions {
    let (host, port) = mqtt_host_port(url);
    let mut o = MqttOptions::new(client_id(role), host, port);
    o.set_keep_alive(Duration::from_secs(5))
        .set_clean_session(true)
        .set_max_packet_size(64 << 20, 64 << 20);
    o
}

/// One message as the collector received it.
#[derive(Clone, Debug)]
pub struct Msg {
    pub topic: String,
    pub payload: Vec<u8>,
    /// True only for retained messages delivered because of a (re)subscription.
    pub retain: bool,
    pub at: Instant,
}

impl Msg {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.payload).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.payload).unwrap_or_else(|e| {
            panic!(
                "payload on {} is not JSON ({e}): {:?}",
                self.topic,
                self.text()
            )
        })
    }
}

struct CollectorState {
    messages: Arc<Mutex<Vec<Msg>>>,
    subacks: AtomicUsize,
    connected: AtomicBool,
    stop: AtomicBool,
}

/// Subscribes to a topic filter at QoS 1 and records every message, from a
/// background thread that reconnects (and resubscribes) when the broker restarts.
pub struct MqttCollector {
    client: Client,
    state: Arc<CollectorState>,
    filter: String,
}

impl MqttCollector {
    /// Subscribes to `#` and waits (up to 10 s) for the subscription to be acknowledged.
    pub fn new(url: &str) -> Self {
        Self::with_filter(url, "#")
    }

    /// Subscribes to `filter` and waits (up to 10 s) for the subscription to be acknowledged.
    pub fn with_filter(url: &str, filter: &str) -> Self {
        let c = Self::start(url, filter);
        assert!(
            c.wait_subscribed(Duration::from_secs(10)),
            "MQTT collector could not subscribe to {filter:?} at {url} within 10 s"
        );
        c
    }

    /// Like `with_filter` but does not wait for the subscription.
    pub fn start(url: &str, filter: &str) -> Self {
        let (client, mut connection) = Client::new(mqtt_options(url, "collector"), 64);
        let state = Arc::new(CollectorState {
            messages: Arc::new(Mutex::new(Vec::new())),
            subacks: AtomicUsize::new(0),
            connected: AtomicBool::new(false),
            stop: AtomicBool::new(false),
        });
        let thread_state = Arc::clone(&state);
        let thread_client = client.clone();
        let thread_filter = filter.to_string();
        thread::Builder::new()
            .name("mqtt-collector".into())
            .spawn(move || {
                let st = thread_state;
                for event in connection.iter() {
                    if st.stop.load(Ordering::SeqCst) {
                        break;
                    }
                    match event {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            st.connected.store(true, Ordering::SeqCst);
                            // Clean session: subscribe on every (re)connection.
                            let _ = thread_client
                                .try_subscribe(thread_filter.clone(), QoS::AtLeastOnce);
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => {
                            st.subacks.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok(Event::Incoming(Packet::Publish(p))) => {
                            lock(&st.messages).push(Msg {
                                topic: p.topic.clone(),
                                payload: p.payload.to_vec(),
                                retain: p.retain,
                                at: Instant::now(),
                            });
                        }
                        Ok(_) => {}
                        Err(_) => {
                            // Broker gone or restarting: keep iterating, which reconnects.
                            st.connected.store(false, Ordering::SeqCst);
                            thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                st.connected.store(false, Ordering::SeqCst);
            })
            .expect("spawn mqtt-collector thread");
        MqttCollector {
            client,
            state,
            filter: filter.to_string(),
        }
    }

    pub fn filter(&self) -> &str {
        &self.filter
    }

    /// The shared message list the background thread appends to.
    pub fn shared(&self) -> Arc<Mutex<Vec<Msg>>> {
        Arc::clone(&self.state.messages)
    }

    /// Whether the client is connected right now.
    pub fn connected(&self) -> bool {
        self.state.connected.load(Ordering::SeqCst)
    }

    /// How many SUBACKs arrived so far (one per (re)connection).
    pub fn suback_count(&self) -> usize {
        self.state.subacks.load(Ordering::SeqCst)
    }

    /// Waits for the first SUBACK.
    pub fn wait_subscribed(&self, timeout: Duration) -> bool {
        self.wait_suback_count(1, timeout)
    }

    /// Waits until at least `n` SUBACKs arrived (e.g. `n = 2` after a broker restart).
    pub fn wait_suback_count(&self, n: usize, timeout: Duration) -> bool {
        wait_until(timeout, || self.suback_count() >= n)
    }

    /// Waits until the connection to the broker is lost.
    pub fn wait_disconnected(&self, timeout: Duration) -> bool {
        wait_until(timeout, || !self.connected())
    }

    /// A copy of every message so far.
    pub fn messages(&self) -> Vec<Msg> {
        lock(&self.state.messages).clone()
    }

    /// How many messages arrived so far (without copying them).
    pub fn len(&self) -> usize {
        lock(&self.state.messages).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn clear(&self) {
        lock(&self.state.messages).clear();
    }

    /// Waits until `pred` holds for the messages received so far.
    pub fn wait_for(&self, mut pred: impl FnMut(&[Msg]) -> bool, timeout: Duration) -> bool {
        wait_until(timeout, || pred(&lock(&self.state.messages)))
    }

    /// Waits for a message on `topic` and returns the latest one.
    pub fn wait_for_topic(&self, topic: &str, timeout: Duration) -> Option<Msg> {
        if self.wait_for(|m| m.iter().any(|m| m.topic == topic), timeout) {
            self.last(topic)
        } else {
            None
        }
    }

    /// Payloads (as lossy UTF-8) of every message on `topic`, oldest first.
    pub fn payloads(&self, topic: &str) -> Vec<String> {
        lock(&self.state.messages)
            .iter()
            .filter(|m| m.topic == topic)
            .map(Msg::text)
            .collect()
    }

    /// The latest message on `topic`.
    pub fn last(&self, topic: &str) -> Option<Msg> {
        lock(&self.state.messages)
            .iter()
            .rev()
            .find(|m| m.topic == topic)
            .cloned()
    }

    /// Distinct topics seen, in order of first appearance.
    pub fn topics(&self) -> Vec<String> {
        let mut seen = Vec::new();
        for m in lock(&self.state.messages).iter() {
            if !seen.contains(&m.topic) {
                seen.push(m.topic.clone());
            }
        }
        seen
    }

    /// A readable dump of everything received, for assertion messages.
    pub fn dump(&self) -> String {
        lock(&self.state.messages)
            .iter()
            .map(|m| {
                format!(
                    "{}{} {}\n",
                    m.topic,
                    if m.retain { " (retained)" } else { "" },
                    m.text()
                )
            })
            .collect()
    }
}

impl Drop for MqttCollector {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = self.client.try_disconnect();
    }
}

/// Publishes one message at QoS 1 and waits (up to 10 s) for the broker's PUBACK.
pub fn publish_once(url: &str, topic: &str, payload: impl Into<Vec<u8>>, retain: bool) {
    let (client, mut connection) = Client::new(mqtt_options(url, "publisher"), 16);
    client
        .publish(topic, QoS::AtLeastOnce, retain, payload.into())
        .expect("queue MQTT publish");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no PUBACK from {url} for {topic} within 10 s"
        );
        match connection.recv_timeout(left) {
            Ok(Ok(Event::Incoming(Packet::PubAck(_)))) => break,
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                // Broker not there (yet): retry until the deadline.
                let _ = e;
                thread::sleep(Duration::from_millis(100));
            }
            Err(_) => {}
        }
    }
    let _ = client.disconnect();
    // Let the DISCONNECT go out (bounded).
    let _ = connection.recv_timeout(Duration::from_millis(200));
}
