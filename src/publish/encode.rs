//! Turns daemon output (camera status, frame reports) into MQTT messages.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::{Message, Outgoing, Topics};
use crate::query::{Answer, FrameReport};

/// With `expire_after`, a query's state is re-sent this often while it holds (or twice
/// per `expire_after` when that is shorter): Home Assistant restarts the expiry on
/// every state message. The state goes alone: an attributes message with a new
/// `frame_time` or score would make Home Assistant's recorder write a row each time.
const REFRESH_EVERY: Duration = Duration::from_secs(10);

/// Longest text state payload: Home Assistant drops sensor states over 255
/// characters; the whole text goes in the attributes.
const MAX_STATE_CHARS: usize = 255;

/// What went out last for one query.
struct Sent {
    /// When its state last went out.
    state: Instant,
    /// The address of the taught summary its last attributes carried (0 for none).
    taught: usize,
}

/// Turns what the daemon hands the publisher ([`Outgoing`]) into MQTT messages on the
/// contract's topics.
///
/// A query's attributes describe its state: they go out with each change of state, with
/// the first state it has (after a start, or once a query replaced at runtime answers),
/// and when a label trains a new head (new `examples` and `accuracy`), never again
/// only to stay fresh. The score moves every frame; re-sending it would cost Home
/// Assistant's recorder a row per entity each time, and the score that matters to an
/// automation is the one behind the change. Live scores are in the frame reports
/// (`/api/live`, the web pages).
///
/// Order: a change between two states sends its attributes, then its state, so an
/// automation triggered by the new state reads the attributes of the frame behind
/// it. A first state goes before its attributes: the retained state Home Assistant
/// still shows then is an earlier run's or the replaced query's, and new attributes
/// beside it would pair that old state with the new query's score.
pub struct Encoder {
    topics: Topics,
    detections: bool,
    /// What last went out for each (camera, query) with a state.
    /// Looked up by borrowed names, so the per-frame check touches no refcount.
    sent: HashMap<Arc<str>, HashMap<Arc<str>, Sent>>,
}

impl Encoder {
    /// An encoder for the topics of `topics`; `detections` publishes every evaluated
    /// frame's detections (`mqtt.detections`).
    pub fn new(topics: Topics, detections: bool) -> Self {
        Self {
            topics,
            detections,
            sent: HashMap::new(),
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
                    if let Some(sent) = self.sent.get_mut(camera.id.as_str()) {
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
                    self.sent.remove(cam.id.as_str());
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
            let taught = q.taught.as_ref().map_or(0, |t| Arc::as_ptr(t) as usize);
            let sent = self.sent.get(&*r.camera).and_then(|sent| sent.get(&*q.id));
            // No state of this query went out yet, or its state is its first (a start,
            // a query replaced at runtime): the retained state is not this query's.
            let first = sent.is_none() || q.change.as_ref().is_some_and(|c| c.from.is_none());
            // A label trained a new head: its examples and accuracy go out at once.
            let relabelled = sent.is_some_and(|s| s.taught != taught);
            // With expire_after, the state goes out at least twice per period.
            let refresh = q.expire_after.is_some_and(|e| {
                sent.is_some_and(|s| s.state.elapsed() >= REFRESH_EVERY.min(e / 2))
            });
            let changed = q.change.is_some() || first;
            let state_msg = (changed || refresh).then(|| Message {
                topic: self.topics.state(&r.camera, &q.id),
                payload: state_payload(state),
                retain: true,
                reliable: true,
            });
            let attributes = (changed || relabelled).then(|| self.attributes(r, q, state, &time));
            let state_sent = state_msg.is_some();
            let attributes_sent = attributes.is_some();
            if first {
                state_msg.into_iter().chain(attributes).for_each(&mut *emit);
            } else {
                attributes.into_iter().chain(state_msg).for_each(&mut *emit);
            }
            if state_sent || attributes_sent {
                let now = Instant::now();
                let entry = self
                    .sent
                    .entry(r.camera.clone())
                    .or_default()
                    .entry(q.id.clone())
                    .or_insert(Sent { state: now, taught });
                if state_sent {
                    entry.state = now;
                }
                if attributes_sent {
                    entry.taught = taught;
                }
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

    /// Query `q`'s attributes message: what the frame behind its state said.
    fn attributes(
        &self,
        r: &FrameReport,
        q: &crate::query::Evaluation,
        state: &Answer,
        time: &humantime::Rfc3339Timestamp,
    ) -> Message {
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
        Message {
            topic: self.topics.attributes(&r.camera, &q.id),
            payload: attrs.to_string().into_bytes(),
            retain: true,
            reliable: true,
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

    /// A report of query `person` (yes_no) in state `to`, changed from `from` when
    /// `changed`, with `expire_after`.
    fn yes_no(
        to: &str,
        from: Option<&str>,
        changed: bool,
        expire_after: Option<Duration>,
    ) -> FrameReport {
        let answer = |s: &str| Answer::YesNo(s == "ON");
        let mut r = FrameReport::new(Arc::from("cam"));
        r.queries.push(Evaluation {
            id: Arc::from("person"),
            kind: QueryKind::YesNo,
            model: Arc::from("coco"),
            region: None,
            score: 0.9,
            state: Some(answer(to)),
            confidence: None,
            score_from: None,
            taught: None,
            change: changed.then(|| crate::query::ChangeOut {
                from: from.map(answer),
                to: answer(to),
            }),
            since: None,
            expire_after,
        });
        r
    }

    /// The last path segment of each message's topic (`state`, `attributes`, `events`).
    fn kinds(enc: &mut Encoder, r: &FrameReport) -> Vec<String> {
        let mut out = Vec::new();
        enc.frame(r, &mut |m| {
            out.push(m.topic.rsplit('/').next().unwrap_or_default().to_string())
        });
        out
    }

    #[test]
    fn a_first_state_goes_before_its_attributes_and_a_change_after_them() {
        let mut enc = Encoder::new(Topics::new("ocellus"), false);
        // The first state (a start): the retained state Home Assistant holds is not
        // this query's, so the state goes first.
        assert_eq!(
            kinds(&mut enc, &yes_no("OFF", None, true, None)),
            ["state", "attributes"]
        );
        // A change between two states: the attributes first (an automation triggered
        // by the state reads them), then the state and the event.
        assert_eq!(
            kinds(&mut enc, &yes_no("ON", Some("OFF"), true, None)),
            ["attributes", "state", "events"]
        );
        // The query is replaced at runtime: its first state goes before its attributes.
        let cam: crate::source::CameraConfig = toml::from_str(
            "id = \"cam\"\nurl = \"rtsp://cam/1\"\n[[queries]]\nid = \"person\"\n\
             ask = \"anyone?\"\nkind = \"yes_no\"\nmodel = \"coco\"\nlabel = \"person\"\n",
        )
        .unwrap();
        enc.encode(
            &Outgoing::Queries {
                camera: Box::new(cam),
                removed: Vec::new(),
            },
            |_| {},
        );
        assert_eq!(
            kinds(&mut enc, &yes_no("OFF", None, true, None)),
            ["state", "attributes"]
        );
    }

    #[test]
    fn a_held_state_is_refreshed_alone_for_expire_after_and_its_attributes_are_not_resent() {
        let expire = Some(Duration::from_millis(400));
        let mut enc = Encoder::new(Topics::new("ocellus"), false);
        assert_eq!(
            kinds(&mut enc, &yes_no("ON", None, true, expire)),
            ["state", "attributes"]
        );
        // Within half the expiry: nothing.
        assert!(kinds(&mut enc, &yes_no("ON", None, false, expire)).is_empty());
        // Past it: the state alone (Home Assistant restarts the expiry on it), no
        // attributes with a new frame time for the recorder to store.
        std::thread::sleep(Duration::from_millis(250));
        assert_eq!(
            kinds(&mut enc, &yes_no("ON", None, false, expire)),
            ["state"]
        );
        assert!(kinds(&mut enc, &yes_no("ON", None, false, expire)).is_empty());
        // Without expire_after a held state sends nothing at all.
        let mut enc = Encoder::new(Topics::new("ocellus"), false);
        kinds(&mut enc, &yes_no("ON", None, true, None));
        std::thread::sleep(Duration::from_millis(250));
        assert!(kinds(&mut enc, &yes_no("ON", None, false, None)).is_empty());
    }

    #[test]
    fn a_label_that_trains_a_new_head_sends_the_attributes_alone() {
        let mut enc = Encoder::new(Topics::new("ocellus"), false);
        let summary = |on: usize| {
            Arc::new(crate::teach::Summary {
                examples: [("ON".to_string(), on), ("OFF".to_string(), 2)].into(),
                accuracy: None,
                candidates: 0,
            })
        };
        // A head is told apart by its summary's address (one Arc per training).
        let head = summary(1);
        let mut r = yes_no("ON", None, true, None);
        r.queries[0].taught = Some(head.clone());
        kinds(&mut enc, &r);
        let mut r = yes_no("ON", None, false, None);
        r.queries[0].taught = Some(head);
        assert!(kinds(&mut enc, &r).is_empty(), "the same head");
        r.queries[0].taught = Some(summary(2));
        let mut out = Vec::new();
        enc.frame(&r, &mut |m| out.push(m));
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(out[0].topic, "ocellus/cam/query/person/attributes");
        let attrs: serde_json::Value = serde_json::from_slice(&out[0].payload).unwrap();
        assert_eq!(attrs["examples"]["ON"], 2, "{attrs}");
    }
}
