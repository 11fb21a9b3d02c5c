//! The web interface's live stream: every message the publisher sends (the MQTT
//! contract's topics, with their JSON payloads) and a compact report of each
//! evaluated frame (states, scores, boxes: at most [`FRAMES_PER_SECOND`] a camera),
//! fanned out to the open pages; the last retained message of each topic (as a
//! broker keeps it, sent first to a page that connects); each query's recent score
//! (its sparkline); and the latest state changes with their snapshots (the events
//! page). It is the publisher's [`Observer`], so it runs on the publisher's task,
//! never on a camera's evaluator: one page or none, the evaluators do the same work.
//!
//! ```
//! use ocellus::app::http::WebConfig;
//! use ocellus::app::web::Hub;
//! let hub = Hub::new("ocellus", &WebConfig::default());
//! let mut rx = hub.subscribe();
//! assert!(rx.try_recv().is_err()); // nothing published yet
//! assert!(hub.history("door", "open").is_empty());
//! ```

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::app::http::WebConfig;
use crate::publish::{Message, Observer, Outgoing};
use crate::query::FrameReport;

/// Frame reports sent to pages, at most, per camera and second.
pub const FRAMES_PER_SECOND: u32 = 5;

/// Score points kept per query and second, at most.
const POINTS_PER_SECOND: u32 = 2;

/// Messages a slow page may fall behind by before it misses some (it is told, and
/// reloads its state).
const BACKLOG: usize = 512;

/// One event of the stream: its SSE name (`mqtt`, `frame`) and its JSON.
#[derive(Debug)]
pub struct LiveEvent {
    /// `mqtt` (a published message) or `frame` (an evaluated frame).
    pub name: &'static str,
    /// The event's JSON text.
    pub data: String,
}

/// A state change kept for the events page.
#[derive(Debug, Clone)]
pub struct StoredEvent {
    /// The event as published on `<cam>/events`.
    pub json: Arc<Value>,
    /// Its id, camera and query (from `json`).
    pub id: Arc<str>,
    /// The camera.
    pub camera: Arc<str>,
    /// The query.
    pub query: Arc<str>,
    /// The annotated snapshot of the frame behind it, when snapshots are on.
    pub jpeg: Option<Arc<[u8]>>,
}

/// One camera's queries' recent scores: `(unix ms, score)`, oldest first.
type Scores = HashMap<Arc<str>, VecDeque<(u64, f32)>>;

/// The live stream, score history and events of the web interface.
pub struct Hub {
    prefix: String,
    keep_events: usize,
    history_for: Duration,
    live: broadcast::Sender<Arc<LiveEvent>>,
    retained: Mutex<BTreeMap<String, Arc<LiveEvent>>>,
    history: Mutex<HashMap<Arc<str>, Scores>>,
    events: Mutex<VecDeque<StoredEvent>>,
    /// Per camera: when its last frame report went to the pages, and the snapshot
    /// of the frame being published (events that follow take it).
    cameras: Mutex<HashMap<Arc<str>, CameraLive>>,
}

#[derive(Default)]
struct CameraLive {
    sent: Option<Instant>,
    snapshot: Option<Arc<[u8]>>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Hub {
    /// The hub of a publisher whose topics start with `prefix`.
    pub fn new(prefix: &str, cfg: &WebConfig) -> Self {
        let (live, _) = broadcast::channel(BACKLOG);
        Self {
            prefix: prefix.trim_end_matches('/').to_string(),
            keep_events: cfg.events,
            history_for: cfg.history,
            live,
            retained: Mutex::default(),
            history: Mutex::default(),
            events: Mutex::default(),
            cameras: Mutex::default(),
        }
    }

    /// The stream from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<LiveEvent>> {
        self.live.subscribe()
    }

    /// The last retained message of every topic, as `mqtt` events.
    pub fn retained(&self) -> Vec<Arc<LiveEvent>> {
        lock(&self.retained).values().cloned().collect()
    }

    /// How many pages have the stream open.
    pub fn pages(&self) -> usize {
        self.live.receiver_count()
    }

    /// `query`'s recent scores, oldest first, as `(unix ms, score)`.
    pub fn history(&self, camera: &str, query: &str) -> Vec<(u64, f32)> {
        lock(&self.history)
            .get(camera)
            .and_then(|qs| qs.get(query))
            .map(|r| r.iter().copied().collect())
            .unwrap_or_default()
    }

    /// The kept events, newest first, of `camera` and `query` when given.
    pub fn events(
        &self,
        camera: Option<&str>,
        query: Option<&str>,
        limit: usize,
    ) -> Vec<StoredEvent> {
        lock(&self.events)
            .iter()
            .rev()
            .filter(|e| camera.is_none_or(|c| *e.camera == *c))
            .filter(|e| query.is_none_or(|q| *e.query == *q))
            .take(limit)
            .cloned()
            .collect()
    }

    /// The kept event `id`.
    pub fn event(&self, id: &str) -> Option<StoredEvent> {
        lock(&self.events).iter().find(|e| &*e.id == id).cloned()
    }

    fn send(&self, event: LiveEvent) -> Arc<LiveEvent> {
        let event = Arc::new(event);
        if self.live.receiver_count() > 0 {
            let _ = self.live.send(event.clone());
        }
        event
    }

    /// A frame's scores go to the history; its report to the pages (throttled).
    fn frame(&self, r: &FrameReport) {
        let now_ms = unix_ms(r.time);
        {
            let mut all = lock(&self.history);
            let capacity = (self.history_for.as_secs() as usize) * POINTS_PER_SECOND as usize;
            let oldest = now_ms.saturating_sub(self.history_for.as_millis() as u64);
            let cam = match all.get_mut(&*r.camera) {
                Some(c) => c,
                None => all.entry(r.camera.clone()).or_default(),
            };
            for q in &r.queries {
                let ring = match cam.get_mut(&*q.id) {
                    Some(ring) => ring,
                    None => cam
                        .entry(q.id.clone())
                        .or_insert_with(|| VecDeque::with_capacity(capacity)),
                };
                let due = ring.back().is_none_or(|(t, _)| {
                    now_ms.saturating_sub(*t) >= 1000 / u64::from(POINTS_PER_SECOND)
                });
                if due {
                    while ring.len() >= capacity.max(1)
                        || ring.front().is_some_and(|(t, _)| *t < oldest)
                    {
                        ring.pop_front();
                    }
                    ring.push_back((now_ms, q.score));
                }
            }
        }
        let send = {
            let mut cams = lock(&self.cameras);
            let cam = match cams.get_mut(&*r.camera) {
                Some(c) => c,
                None => cams.entry(r.camera.clone()).or_default(),
            };
            cam.snapshot = r.snapshot.as_ref().map(|s| s.jpeg.clone());
            let every = Duration::from_secs(1) / FRAMES_PER_SECOND;
            let due = cam.sent.is_none_or(|t| t.elapsed() >= every);
            let send = due && self.live.receiver_count() > 0;
            if send {
                cam.sent = Some(Instant::now());
            }
            send
        };
        if send {
            let queries: Vec<Value> = r
                .queries
                .iter()
                .map(|q| {
                    json!({
                        "id": q.id, "state": q.state.as_ref().map(|s| s.to_string()),
                        "score": q.score, "confidence": q.confidence,
                    })
                })
                .collect();
            let data = json!({
                "camera": r.camera, "seq": r.seq, "pts": r.pts,
                "time": humantime::format_rfc3339_millis(r.time).to_string(),
                "queries": queries, "detections": r.detections,
            });
            self.send(LiveEvent {
                name: "frame",
                data: data.to_string(),
            });
        }
    }

    /// What a topic is: `(camera, query, kind)`.
    fn classify<'a>(
        &self,
        topic: &'a str,
    ) -> Option<(Option<&'a str>, Option<&'a str>, &'static str)> {
        let rest = topic
            .strip_prefix(self.prefix.as_str())?
            .strip_prefix('/')?;
        if rest == "status" {
            return Some((None, None, "daemon_status"));
        }
        if let Some(m) = rest.strip_prefix("models/") {
            return m
                .strip_suffix("/status")
                .map(|_| (None, None, "model_status"));
        }
        let (cam, rest) = rest.split_once('/')?;
        if let Some(q) = rest.strip_prefix("query/") {
            let (q, what) = q.split_once('/')?;
            let kind = match what {
                "state" => "state",
                "attributes" => "attributes",
                "error" => "error",
                _ => return None,
            };
            return Some((Some(cam), Some(q), kind));
        }
        let kind = match rest {
            "status" => "status",
            "events" => "events",
            "detections" => "detections",
            "caption" => "caption",
            "snapshot" => "snapshot",
            "review" => "review",
            "review/image" => "review_image",
            _ => return None,
        };
        Some((Some(cam), None, kind))
    }

    fn published(&self, m: &Message) {
        let Some((camera, query, kind)) = self.classify(&m.topic) else {
            return;
        };
        // Each frame's boxes reach the pages in its frame report.
        if kind == "detections" {
            return;
        }
        let binary = matches!(kind, "snapshot" | "review_image");
        let payload: Value = if binary {
            if m.payload.is_empty() {
                json!("")
            } else {
                Value::Null
            }
        } else {
            serde_json::from_slice(&m.payload)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&m.payload).into_owned()))
        };
        if kind == "events"
            && let (Some(cam), Some(obj)) = (camera, payload.as_object())
        {
            let field = |k: &str| obj.get(k).and_then(Value::as_str).map(Arc::<str>::from);
            if let (Some(id), Some(q)) = (field("id"), field("query")) {
                let jpeg = lock(&self.cameras)
                    .get(cam)
                    .and_then(|c| c.snapshot.clone());
                let mut events = lock(&self.events);
                while events.len() >= self.keep_events.max(1) {
                    events.pop_front();
                }
                events.push_back(StoredEvent {
                    json: Arc::new(payload.clone()),
                    id,
                    camera: Arc::from(cam),
                    query: q,
                    jpeg,
                });
            }
        }
        let data = json!({
            "topic": m.topic, "camera": camera, "query": query, "kind": kind,
            "retained": m.retain, "payload": payload,
        });
        let event = self.send(LiveEvent {
            name: "mqtt",
            data: data.to_string(),
        });
        if m.retain {
            let mut retained = lock(&self.retained);
            if m.payload.is_empty() {
                retained.remove(&m.topic);
            } else {
                retained.insert(m.topic.clone(), event);
            }
        }
    }

    /// Forgets the history of queries and cameras that went away.
    fn forget(&self, out: &Outgoing) {
        let mut all = lock(&self.history);
        match out {
            Outgoing::Queries { camera, removed } => {
                if let Some(qs) = all.get_mut(camera.id.as_str()) {
                    for q in removed {
                        qs.remove(q.as_str());
                    }
                }
            }
            Outgoing::Cameras { removed, .. } => {
                for cam in removed {
                    all.remove(cam.id.as_str());
                }
            }
            _ => {}
        }
    }
}

impl Observer for Hub {
    fn outgoing(&self, out: &Outgoing) {
        match out {
            Outgoing::Frame(r) => self.frame(r),
            Outgoing::Queries { .. } | Outgoing::Cameras { .. } => self.forget(out),
            _ => {}
        }
    }

    fn message(&self, m: &Message) {
        self.published(m);
    }
}

#[cfg(test)]
mod tests;
