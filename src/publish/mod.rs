//! Publish: the MQTT contract of DESIGN.md over rumqttc on tokio — daemon availability
//! with a last will, per-camera status, retained query state and attributes, events at
//! QoS 1, detections — through an outbox that survives broker outages. Without a
//! broker configured, the same messages are printed to stdout as `topic payload`.
//! Sizes are bounded both ways (`limits`): an incoming message over the daemon's
//! limit for its topic is discarded without losing the connection, and nothing
//! over `mqtt.max_packet_size` is ever queued; the journal on disk has a byte cap.
//!
//! ```no_run
//! use ocellus::publish::{self, MqttConfig, Outgoing};
//! let rt = tokio::runtime::Runtime::new().unwrap();
//! let metrics = std::sync::Arc::new(ocellus::kit::metrics::PublisherMetrics::default());
//! let mqtt = Some(MqttConfig::from_url("mqtt://127.0.0.1:1883"));
//! let links = publish::Links { metrics: metrics.clone(), ..Default::default() };
//! let (tx, task) = publish::spawn(rt.handle(), mqtt, true, &[], false, links).unwrap();
//! println!("{}", metrics.summary()); // 0 queued, oldest 0.0 s, 0 dropped, ...
//! drop(tx); // closing the channel publishes `offline` and disconnects
//! rt.block_on(task).unwrap();
//! ```

mod config;
mod connect;
mod discovery;
mod encode;
mod error;
mod journal;
mod limits;
mod links;
mod mqtt;
mod outbox;
mod outgoing;
mod topics;

use std::io::Write;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

pub use config::MqttConfig;
pub use discovery::Discovery;
pub use encode::Encoder;
pub use error::PublishError;
pub use journal::DEFAULT_MAX_BYTES as DEFAULT_JOURNAL_MAX_BYTES;
pub use limits::{DEFAULT_MAX_PACKET, MAX_QUERY_SPEC, MQTT_MAX_REMAINING};
pub use links::{Commands, Labels, Links, Observer, Tap};
pub use outbox::{Message, OVERFLOW_POLICY, Outbox};
pub use outgoing::Outgoing;
pub use topics::Topics;

use crate::kit::watchdog::Heartbeat;

/// Capacity of the channel into the publisher.
const CHANNEL: usize = 1024;

/// The publisher's input and its task.
pub type Publisher = (mpsc::Sender<Outgoing>, JoinHandle<()>);

/// Starts the publisher on `rt`: MQTT when `mqtt` is given, else stdout. Bad settings
/// (URL, password file, TLS files) fail here, before anything runs. `cameras` are
/// announced to Home Assistant (unless `discovery = false`). See [`Links`] for what it
/// shares with the daemon. Dropping every sender shuts it down after it has published
/// `offline`.
pub fn spawn(
    rt: &tokio::runtime::Handle,
    mqtt: Option<MqttConfig>,
    detections: bool,
    cameras: &[crate::source::CameraConfig],
    snapshots: bool,
    links: Links,
) -> Result<Publisher, PublishError> {
    let Links {
        commands,
        labels,
        metrics,
        tap,
        heartbeat,
    } = links;
    let (tx, rx) = mpsc::channel(CHANNEL);
    let task = match mqtt {
        Some(cfg) => {
            let encoder = Encoder::new(Topics::new(&cfg.prefix), detections && cfg.detections);
            let opts = connect::options(&cfg, encoder.topics())?;
            if let Some((field, why)) = cfg.limit_problems().into_iter().next() {
                return Err(PublishError::Config(format!("mqtt.{field}: {why}")));
            }
            let discovery = cfg.discovery.then(|| {
                Discovery::new(&cfg.discovery_prefix, encoder.topics(), cameras, snapshots)
                    .with_limit(cfg.max_packet_size, metrics.clone())
            });
            let incoming = limits::Incoming::new(
                encoder.topics(),
                cfg.discovery.then_some(cfg.discovery_prefix.as_str()),
                cfg.max_packet_size,
            );
            let journal = cfg
                .state_dir
                .as_deref()
                .map(|dir| journal::Journal::open(dir, cfg.journal_max_bytes, metrics.clone()))
                .transpose()
                .map_err(PublishError::Config)?;
            let outbox = Outbox::new(cfg.outbox_capacity, mqtt::WINDOW, metrics)
                .with_max_packet(cfg.max_packet_size);
            let parts = mqtt::Parts {
                encoder,
                discovery,
                journal,
                outbox,
                commands,
                labels,
                tap,
                heartbeat,
                incoming,
            };
            rt.spawn(mqtt::run(opts, cfg.url, rx, parts))
        }
        None => rt.spawn(stdout(
            rx,
            Encoder::new(Topics::new("ocellus"), detections),
            heartbeat,
            tap,
        )),
    };
    Ok((tx, task))
}

/// Prints every message as one `topic payload` line.
async fn stdout(
    mut rx: mpsc::Receiver<Outgoing>,
    mut encoder: Encoder,
    heartbeat: Option<Heartbeat>,
    tap: Option<Tap>,
) {
    let mut print = |m: Message| {
        if let Some(tap) = &tap {
            tap.message(&m);
        }
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{} {}", m.topic, String::from_utf8_lossy(&m.payload));
    };
    print(encoder.status(true));
    let mut tick = tokio::time::interval(links::BEAT_EVERY);
    loop {
        if let Some(h) = &heartbeat {
            h.beat();
        }
        tokio::select! {
            o = rx.recv() => match o {
                Some(o) => {
                    if let Some(tap) = &tap {
                        tap.outgoing(&o);
                    }
                    encoder.encode(&o, &mut print)
                }
                None => break,
            },
            _ = tick.tick() => {}
        }
    }
    print(encoder.status(false));
}
