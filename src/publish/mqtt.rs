//! The publisher task: feeds the outbox from the daemon's channel, drives rumqttc's
//! event loop, reconnects forever, re-sends unacknowledged messages and republishes
//! retained state after every reconnect.

use std::collections::BTreeMap;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{Encoder, Message, Outbox, Outgoing};

/// Outbox size during an outage (messages) and unacknowledged messages in flight.
const OUTBOX_CAPACITY: usize = 20_000;
const WINDOW: usize = 64;
/// How long shutdown waits for the broker to take what is left.
const DRAIN: Duration = Duration::from_secs(5);

pub async fn run(
    opts: MqttOptions,
    url: String,
    mut rx: mpsc::Receiver<Outgoing>,
    mut encoder: Encoder,
) {
    let (client, mut eventloop) = AsyncClient::new(opts, 2 * WINDOW);
    let mut outbox = Outbox::new(OUTBOX_CAPACITY, WINDOW);
    let mut retained: BTreeMap<String, Message> = BTreeMap::new();
    let (mut connected, mut ever_connected, mut failures) = (false, false, 0u32);
    let mut input_open = true;
    let mut deadline: Option<Instant> = None;
    loop {
        if connected {
            while let Some(m) = outbox.next_to_send() {
                let qos = if m.reliable {
                    QoS::AtLeastOnce
                } else {
                    QoS::AtMostOnce
                };
                if client
                    .try_publish(m.topic, qos, m.retain, m.payload)
                    .is_err()
                {
                    outbox.on_disconnect();
                    break;
                }
            }
        }
        if !input_open && outbox.is_empty() {
            break;
        }
        tokio::select! {
            msg = rx.recv(), if input_open => match msg {
                Some(out) => encoder.encode(&out, |m| {
                    if m.retain {
                        retained.insert(m.topic.clone(), m.clone());
                    }
                    // Best-effort messages (detections) are live data: during an
                    // outage they are dropped, not replayed stale afterwards.
                    if m.reliable || connected {
                        outbox.push(m);
                    }
                }),
                None => {
                    input_open = false;
                    outbox.push(encoder.status(false));
                    deadline = Some(Instant::now() + DRAIN);
                }
            },
            ev = eventloop.poll() => match ev {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    tracing::info!("mqtt: connected to {url}");
                    connected = true;
                    failures = 0;
                    if input_open {
                        outbox.push(encoder.status(true));
                    }
                    if ever_connected {
                        for m in retained.values() {
                            outbox.push(m.clone());
                        }
                    }
                    ever_connected = true;
                }
                Ok(Event::Outgoing(rumqttc::Outgoing::Publish(pkid))) => outbox.on_sent(pkid),
                Ok(Event::Incoming(Packet::PubAck(ack))) => outbox.on_ack(ack.pkid),
                Ok(_) => {}
                Err(e) => {
                    if connected || failures == 0 {
                        tracing::error!("mqtt: broker {url} unreachable: {e}; retrying ({} messages waiting)", outbox.len());
                    }
                    connected = false;
                    outbox.on_disconnect();
                    failures += 1;
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(250 * u64::from(failures.min(8)))).await;
                }
            },
            _ = sleep_until(deadline) => break,
        }
    }
    if !outbox.is_empty() {
        tracing::error!(
            "mqtt: shutting down with {} messages not delivered to {url}",
            outbox.len()
        );
    }
    if connected {
        let _ = client.try_disconnect();
        let _ = tokio::time::timeout(Duration::from_secs(1), async {
            while let Ok(ev) = eventloop.poll().await {
                if matches!(ev, Event::Outgoing(rumqttc::Outgoing::Disconnect)) {
                    break;
                }
            }
        })
        .await;
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
