//! What the publisher shares with the rest of the daemon: where the commands it
//! receives go, its metrics, its heartbeat, and who else sees what it publishes.

use std::sync::Arc;

use super::{Message, Outgoing};
use crate::kit::metrics::PublisherMetrics;
use crate::kit::watchdog::Heartbeat;
use crate::kit::{LabelCommand, QueryCommand};

/// How often an idle publisher still beats its heartbeat.
pub(super) const BEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Takes a query change received over MQTT; false when the daemon is too busy to
/// take it (the message is dropped, and said so).
pub type Commands = Arc<dyn Fn(QueryCommand) -> bool + Send + Sync>;

/// Takes a label of a taught query received over MQTT; false when the daemon is
/// too busy to take it (the message is dropped, and said so).
pub type Labels = Arc<dyn Fn(LabelCommand) -> bool + Send + Sync>;

/// Sees what the publisher publishes: each daemon output as it arrives, then each
/// message made of it, as it goes to the broker (or stdout). Called on the
/// publisher's task: it must not block.
pub trait Observer: Send + Sync {
    /// A daemon output, before it is encoded.
    fn outgoing(&self, out: &Outgoing);
    /// A message the publisher sends (Home Assistant's device configs aside).
    fn message(&self, m: &Message);
}

/// The publisher's [`Observer`] (the web UI's live stream).
pub type Tap = Arc<dyn Observer>;

/// What the publisher shares with the rest of the daemon.
#[derive(Default)]
pub struct Links {
    /// Where runtime query specs received over MQTT go (see [`Commands`]).
    pub commands: Option<Commands>,
    /// Where labels received over MQTT go (see [`Labels`]).
    pub labels: Option<Labels>,
    /// Kept up to date by the MQTT publisher (stdout leaves them alone).
    pub metrics: Arc<PublisherMetrics>,
    /// Sees every output and message (see [`Observer`]).
    pub tap: Option<Tap>,
    /// Beaten every time round the publisher's loop (at least once a second).
    pub heartbeat: Option<Heartbeat>,
}
