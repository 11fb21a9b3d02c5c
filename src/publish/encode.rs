//! Turns daemon output (camera status, frame reports) into MQTT messages.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Message, Outgoing, Topics};
use crate::query::{Answer, FrameReport};

/// Attributes are re-sent at most this often while a state holds.
const ATTRIBUTES_EVERY: Duration = Duration::from_secs(10);

/// Longest text state payload: Home Assistant drops sensor states over 255
/// characters; the whole text goes in the attributes.
const MAX_STATE_CHARS: usize = 255;

/// When a query's attributes went out, and the address of the taught summary
/// they carried (0 for none).
type Sent = (Instant, usize);

/// Turns what the daemon hands the publisher ([`Outgoing`]) into MQTT messages on the
/// contract's topics, re-sending a query's attributes while its state holds.
pub struct Encoder {
    topics: Topics,
    detections: bool,
    /// When each (camera, query)'s attributes last went out.
    /// Looked up by borrowed names, so the per-frame check touches no refcount.
    /// When each (camera, query)'s attributes last went out, and the taught
    /// summary they carried (its address; 0 for none).
    attributes_sent: HashMap<Arc<str>, HashMap<Arc<str>, Sent>>,
}

impl Encoder {
    /// An encoder for the topics of `topics`; `detections` publishes every evaluated
    /// frame's detections (`mqtt.detections`).
    pub fn new(topics: Topics, detections: bool) -> Self {
        Self {
            topics,
            detections,
            attributes_sent: HashMap::new(),
        }
    }

    /// The topic names it publishes on.
    pub fn topics(&self) -> &Topics {
        &self.topics
    }

    /// The daemon's own availability.
    pub fn status(&self, online: bool) -> Message {
        Message {
            topic: self.topics.status(),
            payload: if online {
                b"online".to_vec()
            } else {
                b"offline".to_vec()
            },
            retain: true,
            reliable: true,
        }
    }

    /// A refused query spec's reason, on `.../query/<q>/error`.
    pub fn rejected(&self, camera: &str, query: &str, reason: &str) -> Message {
        Message {
            topic: self.topics.query_error(camera, query),
            payload: json!({
                "camera": camera, "query": query, "error": reason,
                "time": humantime::format_rfc3339_millis(std::time::SystemTime::now()).to_string(),
            })
            .to_string()
            .into_bytes(),
            retain: false,
            reliable: true,
        }
    }

    /// The messages `out` makes, each handed to `emit` (none for most frames): camera
    /// status, snapshot, captions, query states, attributes and events, or the empty
    /// retained messages that clear a removed query's or camera's topics.
    pub fn encode(&mut self, out: &Outgoing, mut emit: impl FnMut(Message)) {
        match out {
            Outgoing::Camera { camera, status } => emit(Message {
                topic: self.topics.camera_status(camera),
                payload: status.as_str().as_bytes().to_vec(),
                retain: true,
                reliable: true,
            }),
            Outgoing::Model { model, available } => emit(Message {
                topic: self.topics.model_status(model),
                payload: if *available { "online" } else { "offline" }.into(),
                retain: true,
                reliable: true,
            }),
            Outgoing::ModelRemoved { model } => emit(Message {
                topic: self.topics.model_status(model),
                payload: Vec::new(),
                retain: true,
                reliable: true,
            }),
            Outgoing::Frame(report) => self.frame(report, &mut emit),
            Outgoing::Queries { camera, removed } => {
                // An empty retained message deletes the broker's retained one.
                for query in removed {
                    for topic in [
                        self.topics.state(&camera.id, query),
                        self.topics.attributes(&camera.id, query),
                    ] {
                        emit(Message {
                            topic,
                            payload: Vec::new(),
                            retain: true,
                            reliable: true,
                        });
                    }
                    if let Some(sent) = self.attributes_sent.get_mut(camera.id.as_str()) {
                        sent.remove(query.as_str());
                    }
                }
            }
            Outgoing::Cameras { removed, .. } => {
                for cam in removed {
                    let mut topics: Vec<String> = cam
                        .queries
                        .iter()
                        .flat_map(|q| {
                            [
                                self.topics.state(&cam.id, &q.id),
                                self.topics.attributes(&cam.id, &q.id),
                            ]
                        })
                        .collect();
                    topics.extend([
                        self.topics.camera_status(&cam.id),
                        self.topics.snapshot(&cam.id),
                        self.topics.caption(&cam.id),
                        self.topics.review_image(&cam.id),
                    ]);
                    for topic in topics {
                        emit(Message {
                            topic,
                            payload: Vec::new(),
                            retain: true,
                            reliable: true,
                        });
                    }
                    self.attributes_sent.remove(cam.id.as_str());
                }
            }
            Outgoing::Rejected {
                camera,
                query,
                reason,
            } => emit(self.rejected(camera, query, reason)),
        }
    }

    fn frame(&mut self, r: &FrameReport, emit: &mut impl FnMut(Message)) {
        // Formatted only for the messages that go out (most frames send none).
        let time = humantime::format_rfc3339_millis(r.time);
        if let (true, Some(dets)) = (self.detections, &r.detections) {
            let payload =
                json!({"time": time.to_string(), "pts": r.pts, "seq": r.seq, "detections": dets});
            emit(Message {
                topic: self.topics.detections(&r.camera),
                payload: payload.to_string().into_bytes(),
                retain: false,
                reliable: false,
            });
        }
        if let Some(shot) = &r.snapshot {
            emit(Message {
                topic: self.topics.snapshot(&r.camera),
                payload: shot.jpeg.to_vec(),
                retain: true,
                reliable: true,
            });
        }
        if let Some(item) = r.reviews.last() {
            // The latest uncertain answer: what to label, and its picture.
            let payload = json!({
                "event_type": "review", "id": item.id, "camera": item.camera, "query": item.query, "ask": item.ask,
                "answer": item.answer, "confidence": item.confidence, "region": item.region,
                "time": humantime::format_rfc3339_millis(item.time).to_string(),
                "label": self.topics.query_label(&item.camera, &item.query),
                "image": self.topics.review_image(&item.camera),
            });
            emit(Message {
                topic: self.topics.review_image(&r.camera),
                payload: item.jpeg.to_vec(),
                retain: true,
                reliable: true,
            });
            // An event (Home Assistant's event entity), not a state: not retained.
            emit(Message {
                topic: self.topics.review(&r.camera),
                payload: payload.to_string().into_bytes(),
                retain: false,
                reliable: true,
            });
        }
        for c in &r.captions {
            let payload = json!({
                "text": c.text, "query": c.query, "model": c.model,
                "time": time.to_string(), "pts": r.pts, "seq": r.seq,
            });
            emit(Message {
                topic: self.topics.caption(&r.camera),
                payload: payload.to_string().into_bytes(),
                retain: true,
                reliable: true,
            });
        }
        for q in &r.queries {
            let Some(state) = &q.state else { continue };
            // With expire_after, state and attributes go out at least twice per period.
            let every = q
                .expire_after
                .map_or(ATTRIBUTES_EVERY, |e| ATTRIBUTES_EVERY.min(e / 2));
            let taught = q.taught.as_ref().map_or(0, |t| Arc::as_ptr(t) as usize);
            let sent = self
                .attributes_sent
                .get(&*r.camera)
                .and_then(|sent| sent.get(&*q.id));
            let due = sent.is_none_or(|(t, _)| t.elapsed() >= every);
            // A label trained a new head: its examples and accuracy go out at once.
            let relabelled = sent.is_some_and(|(_, was)| *was != taught);
            if q.change.is_some() || due || relabelled {
                let since = q
                    .since
                    .map(|s| humantime::format_rfc3339_millis(s).to_string());
                let mut attrs = json!({
                    "score": q.score, "since": since, "frame_time": time.to_string(), "pts": r.pts,
                    "model": q.model, "region": q.region, "kind": q.kind,
                });
                if let Some(map) = attrs.as_object_mut() {
                    if let Answer::Text(text) = state {
                        map.insert("text".into(), json!(text));
                    }
                    if let Some(c) = q.confidence {
                        map.insert("confidence".into(), json!(c));
                    }
                    if let Some(from) = q.score_from {
                        map.insert("score_from".into(), json!(from));
                    }
                    if let Some(t) = &q.taught {
                        map.insert("examples".into(), json!(t.examples));
                        map.insert("accuracy".into(), json!(t.accuracy));
                    }
                }
                emit(Message {
                    topic: self.topics.attributes(&r.camera, &q.id),
                    payload: attrs.to_string().into_bytes(),
                    retain: true,
                    reliable: true,
                });
                self.attributes_sent
                    .entry(r.camera.clone())
                    .or_default()
                    .insert(q.id.clone(), (Instant::now(), taught));
            }
            let refresh = due && q.expire_after.is_some();
            if q.change.is_some() || refresh {
                emit(Message {
                    topic: self.topics.state(&r.camera, &q.id),
                    payload: state_payload(state),
                    retain: true,
                    reliable: true,
                });
            }
            let Some(change) = &q.change else { continue };
            if change.from.is_some() {
                let event = json!({
                    "id": crate::query::event_id(&r.camera, &q.id, r.time),
                    "event_type": q.id,
                    "camera": r.camera, "query": q.id, "from": change.from, "to": change.to,
                    "score": q.score, "time": time.to_string(), "pts": r.pts, "seq": r.seq,
                    "model": q.model, "region": q.region,
                    "snapshot": r.snapshot.as_ref().map(|s| json!({
                        "topic": self.topics.snapshot(&r.camera), "file": s.file,
                    })),
                });
                emit(Message {
                    topic: self.topics.events(&r.camera),
                    payload: event.to_string().into_bytes(),
                    retain: false,
                    reliable: true,
                });
            }
        }
    }
}

/// The state topic's payload: the answer, text cut to [`MAX_STATE_CHARS`] characters.
fn state_payload(state: &Answer) -> Vec<u8> {
    let text = state.to_string();
    match text.char_indices().nth(MAX_STATE_CHARS) {
        Some((end, _)) => text.as_bytes()[..end].to_vec(),
        None => text.into_bytes(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::query::{Caption, Evaluation, QueryKind};

    fn text_report(text: &str) -> FrameReport {
        let mut r = FrameReport::new(Arc::from("cam"));
        let state = Answer::Text(Arc::from(text));
        r.queries.push(Evaluation {
            id: Arc::from("scene"),
            kind: QueryKind::Caption,
            model: Arc::from("vlm"),
            region: None,
            score: f32::NAN,
            state: Some(state.clone()),
            confidence: None,
            score_from: None,
            taught: None,
            change: Some(crate::query::ChangeOut {
                from: None,
                to: state,
            }),
            since: None,
            expire_after: None,
        });
        r.captions.push(Caption {
            query: Arc::from("scene"),
            model: Arc::from("vlm"),
            text: Arc::from(text),
        });
        r
    }

    fn messages(r: &FrameReport) -> Vec<Message> {
        let mut enc = Encoder::new(Topics::new("ocellus"), true);
        let mut out = Vec::new();
        enc.frame(r, &mut |m| out.push(m));
        out
    }

    #[test]
    fn long_text_states_are_cut_to_255_characters_and_kept_whole_in_the_attributes() {
        let text = "é".repeat(300);
        let out = messages(&text_report(&text));
        let find = |t: &str| out.iter().find(|m| m.topic == t).unwrap();
        let state =
            String::from_utf8(find("ocellus/cam/query/scene/state").payload.clone()).unwrap();
        assert_eq!(state.chars().count(), 255);
        let attrs: serde_json::Value =
            serde_json::from_slice(&find("ocellus/cam/query/scene/attributes").payload).unwrap();
        assert_eq!(attrs["text"], text.as_str());
        assert!(
            attrs["score"].is_null(),
            "no score for generated text: {attrs}"
        );
        let caption = find("ocellus/cam/caption");
        assert!(caption.retain && caption.reliable);
        let c: serde_json::Value = serde_json::from_slice(&caption.payload).unwrap();
        assert_eq!(
            (c["text"].as_str(), c["query"].as_str()),
            (Some(text.as_str()), Some("scene"))
        );
    }
}
