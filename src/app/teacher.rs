//! The daemon's teacher: applies the labels of taught queries that arrive over MQTT
//! (`<prefix>/<cam>/query/<q>/label`) and HTTP (`POST
//! /api/cameras/<cam>/queries/<q>/examples`: the current frame, a review item, or an
//! uploaded picture), one at a time on its own thread, so
//! that embedding the picture and training the head never hold up the publisher
//! or an HTTP worker. Its queue is bounded ([`QUEUE`]); a label that finds it full
//! is refused (MQTT: on the query's `.../error` topic; HTTP: 503), never queued
//! without bound. A label that cannot be applied (no such query, an unknown state,
//! no frame yet) is refused the same way, with its one-line reason.
//!
//! ```text
//! mosquitto_pub -t ocellus/door/query/open/label -m ON
//! mosquitto_pub -t ocellus/door/query/open/label -m '{"state": "OFF", "review": "r-20261203T101500.123Z-4"}'
//! ```

use std::sync::Arc;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use tokio::sync::{mpsc, oneshot};

use crate::kit::{LabelCommand, RateLimit};
use crate::publish::{Labels, Outgoing};
use crate::teach::{Example, Label, Lessons, Source, TeachError};

/// Labels waiting for the teacher, at most (overflow policy: refuse the new one).
pub const QUEUE: usize = 16;

/// One label to apply, and where its outcome goes.
pub struct Job {
    /// The label as received.
    pub cmd: LabelCommand,
    /// Which surface it came from.
    pub source: Source,
    /// An uploaded picture the label is of (its payload is then the state alone).
    pub picture: Option<Vec<u8>>,
    /// HTTP waits for the outcome; MQTT's refusals go to the query's error topic.
    pub reply: Option<oneshot::Sender<Result<Example, TeachError>>>,
}

/// The teacher's queue.
#[derive(Clone)]
pub struct Teacher {
    tx: Sender<Job>,
}

impl Teacher {
    /// A queue for the thread [`Teacher::spawn`] starts on its other end.
    pub fn queue() -> (Self, Receiver<Job>) {
        let (tx, rx) = crossbeam_channel::bounded(QUEUE);
        (Self { tx }, rx)
    }

    /// Queues `job`; gives it back when the queue is full or the teacher is gone.
    pub fn send(&self, job: Job) -> Result<(), Job> {
        self.tx.try_send(job).map_err(|e| match e {
            TrySendError::Full(j) | TrySendError::Disconnected(j) => j,
        })
    }

    /// What the MQTT publisher calls with each label it receives.
    pub fn labels(&self) -> Labels {
        let teacher = self.clone();
        Arc::new(move |cmd| {
            teacher
                .send(Job {
                    cmd,
                    source: Source::Mqtt,
                    picture: None,
                    reply: None,
                })
                .is_ok()
        })
    }

    /// Starts the thread that applies the queued labels to `lessons`; MQTT's
    /// refusals go out on `out` (held weakly: the teacher does not keep the
    /// publisher from shutting down). It ends when every [`Teacher`] is dropped.
    pub fn spawn(rx: Receiver<Job>, lessons: Arc<Lessons>, out: &mpsc::Sender<Outgoing>) {
        let out = out.downgrade();
        let run = move || {
            for job in rx {
                apply(job, &lessons, &out);
            }
        };
        if let Err(e) = std::thread::Builder::new()
            .name("teacher".into())
            .spawn(run)
        {
            tracing::error!("cannot start the teacher thread ({e}); labels are refused");
        }
    }
}

/// Applies one label: logged, answered (HTTP) or refused on the error topic (MQTT).
fn apply(job: Job, lessons: &Lessons, out: &mpsc::WeakSender<Outgoing>) {
    let Job {
        cmd,
        source,
        picture,
        reply,
    } = job;
    let result = Label::parse(&cmd.payload).and_then(|l| match &picture {
        Some(bytes) => lessons.label_picture(&cmd.camera, &cmd.query, &l.state, bytes, source),
        None => lessons.label(&cmd.camera, &cmd.query, &l, source),
    });
    match &result {
        Ok(ex) => {
            let summary = lessons
                .find(&cmd.camera, &cmd.query)
                .map(|l| l.trained().summary.clone());
            tracing::info!(
                camera = %cmd.camera,
                query = %cmd.query,
                state = %ex.state,
                example = %ex.id,
                "labelled {} ({:?}); examples {:?}, accuracy {:?}",
                ex.state,
                source,
                summary.as_ref().map(|s| &s.examples),
                summary.as_ref().and_then(|s| s.accuracy),
            );
        }
        Err(e) => {
            // Names come from anyone who may publish: one line a minute.
            static REFUSED: RateLimit = RateLimit::new();
            if let Some(s) = REFUSED.allow() {
                tracing::warn!(
                    camera = %crate::kit::shown(&cmd.camera),
                    query = %crate::kit::shown(&cmd.query),
                    suppressed = s.count(),
                    "label refused: {e}{s}"
                );
            }
            if reply.is_none()
                && let Some(out) = out.upgrade()
            {
                let _ = out.blocking_send(Outgoing::Rejected {
                    camera: cmd.camera.clone(),
                    query: cmd.query.clone(),
                    reason: e.to_string(),
                });
            }
        }
    }
    if let Some(reply) = reply {
        let _ = reply.send(result);
    }
}
