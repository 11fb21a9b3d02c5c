//! Home Assistant MQTT discovery, device-based form: one retained
//! `<discovery>/device/ocellus_<cam>/config` per camera declaring a `binary_sensor` per
//! `yes_no` query, a `sensor` per query with a number or text for a state, an
//! `event` entity for the camera's alerts and an `image` of the last alert's snapshot, all available while the daemon (last
//! will) and the camera are online. Republished on Home Assistant's birth message;
//! a device or component announced before that the config no longer has is removed
//! (an empty config, or a component reduced to its `platform`).
//!
//! A device config over `mqtt.max_packet_size` (a camera with huge query names, say)
//! is never published: the device keeps the last config that fit (or, if none did,
//! is not announced and left as it is), with a rate-limited error and a count in
//! `ocellus_mqtt_refused_total`; the other devices and all other output go on.
//!
//! ```
//! use ocellus::publish::{Discovery, Topics};
//! let cam: ocellus::source::CameraConfig = toml::from_str(r#"
//! id = "door"
//! url = "rtsp://cam/1"
//! [[queries]]
//! id = "person"
//! ask = "is there a person at the door?"
//! kind = "yes_no"
//! model = "coco"
//! label = "person"
//! "#).unwrap();
//! let d = Discovery::new("homeassistant", &Topics::new("ocellus"), &[cam], false);
//! let config = &d.messages()[0];
//! assert_eq!(config.topic, "homeassistant/device/ocellus_door/config");
//! ```

use std::collections::{BTreeMap, BTreeSet};

use std::sync::Arc;

use serde_json::{Value, json};

use super::limits::{DEFAULT_MAX_PACKET, packet_size};
use super::{Message, Topics};
use crate::kit::RateLimit;
use crate::kit::metrics::PublisherMetrics;
use crate::query::{QueryConfig, QueryKind};
use crate::source::CameraConfig;

/// The discovery messages of every camera, and what to do with Home Assistant's.
pub struct Discovery {
    prefix: String,
    availability: String,
    devices: BTreeMap<String, Device>,
    topics: Topics,
    snapshots: bool,
    /// The served models, whose queries' entities follow the model's availability too.
    remote: BTreeSet<String>,
    /// The cameras as last configured (their devices are made again when a served
    /// model is first seen).
    cameras: Vec<CameraConfig>,
    /// `mqtt.max_packet_size`.
    max_packet: usize,
    refusals: RateLimit,
    metrics: Arc<PublisherMetrics>,
}

struct Device {
    topic: String,
    /// The last config that fit in a packet (`Null`: none did; not announced).
    config: Value,
}

impl Discovery {
    /// `snapshots`: whether cameras publish snapshots (an `image` entity each).
    pub fn new(prefix: &str, topics: &Topics, cameras: &[CameraConfig], snapshots: bool) -> Self {
        let prefix = prefix.trim_end_matches('/').to_string();
        let devices = cameras
            .iter()
            .map(|cam| {
                let id = topics.device_id(&cam.id);
                let topic = format!("{prefix}/device/{id}/config");
                (
                    id,
                    Device {
                        topic,
                        config: device_config(cam, topics, snapshots, &BTreeSet::new()),
                    },
                )
            })
            .collect();
        Self {
            availability: topics.status(),
            prefix,
            devices,
            topics: topics.clone(),
            snapshots,
            remote: BTreeSet::new(),
            cameras: cameras.to_vec(),
            max_packet: DEFAULT_MAX_PACKET,
            refusals: RateLimit::new(),
            metrics: Arc::default(),
        }
    }

    /// Limits packets to `max_packet` bytes (default `limits::DEFAULT_MAX_PACKET`):
    /// a device whose config does not fit is not announced; refusals are counted in
    /// `metrics`.
    pub fn with_limit(mut self, max_packet: usize, metrics: Arc<PublisherMetrics>) -> Self {
        self.max_packet = max_packet;
        self.metrics = metrics;
        let ids: Vec<String> = self.devices.keys().cloned().collect();
        for id in ids {
            let Some(d) = self.devices.get(&id) else {
                continue;
            };
            let size = packet_size(&d.topic, d.config.to_string().len());
            if size > max_packet {
                self.refuse(&id, size, "it is not announced");
                if let Some(d) = self.devices.get_mut(&id) {
                    d.config = Value::Null;
                }
            }
        }
        self
    }

    /// Whether `config` fits in a packet on `topic`; when not, the refusal is logged
    /// (rate-limited) and counted.
    fn fits(&mut self, id: &str, topic: &str, config: &str, otherwise: &str) -> bool {
        let size = packet_size(topic, config.len());
        if size <= self.max_packet {
            return true;
        }
        self.refuse(id, size, otherwise);
        false
    }

    fn refuse(&mut self, id: &str, size: usize, otherwise: &str) {
        self.metrics.on_refused();
        if let Some(s) = self.refusals.allow() {
            tracing::error!(
                suppressed = s.count(),
                "home assistant: not publishing the config of device {id}: {size} bytes, over \
                 mqtt.max_packet_size ({} bytes); {otherwise}{s}",
                self.max_packet,
            );
        }
    }

    /// A camera's queries changed at runtime: its new config, in which an entity that
    /// went away stays as its `platform` alone (Home Assistant's removal, also seen by
    /// a Home Assistant that starts later). An entity whose platform changed is first
    /// removed by a message that is not retained (a retained one would coalesce with
    /// the config behind it while the broker is away).
    pub fn update(&mut self, cam: &CameraConfig) -> Vec<Message> {
        match self.cameras.iter_mut().find(|c| c.id == cam.id) {
            Some(c) => *c = cam.clone(),
            None => self.cameras.push(cam.clone()),
        }
        let id = self.topics.device_id(&cam.id);
        let mut config = device_config(cam, &self.topics, self.snapshots, &self.remote);
        let Some(topic) = self.devices.get(&id).map(|d| d.topic.clone()) else {
            return Vec::new();
        };
        if !self.fits(
            &id,
            &topic,
            &config.to_string(),
            "it keeps its previous config",
        ) {
            return Vec::new();
        }
        let Some(device) = self.devices.get_mut(&id) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        if let Some(old) = device.config["components"].as_object() {
            let mut removal = device.config.clone();
            let mut changed = false;
            for (k, v) in old {
                let platform = &v["platform"];
                let gone = json!({ "platform": platform });
                match config["components"].get(k) {
                    None => {
                        if *v != gone {
                            tracing::info!("home assistant: removing entity {k} of device {id}");
                        }
                        config["components"][k] = gone;
                    }
                    Some(now) if now["platform"] != *platform => {
                        tracing::info!("home assistant: replacing entity {k} of device {id}");
                        removal["components"][k] = gone;
                        changed = true;
                    }
                    Some(_) => {}
                }
            }
            if changed {
                let mut m = retained(&device.topic, removal.to_string().into_bytes());
                m.retain = false;
                out.push(m);
            }
        }
        out.push(retained(&device.topic, config.to_string().into_bytes()));
        device.config = config;
        out
    }

    /// The cameras after a reload: each camera's config as in [`Discovery::update`],
    /// a new camera's device announced, and a removed camera's device removed (an
    /// empty config).
    pub fn set_cameras(&mut self, cameras: &[CameraConfig]) -> Vec<Message> {
        self.cameras = cameras.to_vec();
        let mut out = Vec::new();
        let ids: Vec<String> = cameras
            .iter()
            .map(|c| self.topics.device_id(&c.id))
            .collect();
        let gone: Vec<String> = self
            .devices
            .keys()
            .filter(|k| !ids.contains(k))
            .cloned()
            .collect();
        for id in gone {
            if let Some(d) = self.devices.remove(&id) {
                tracing::info!("home assistant: removing device {id} (camera removed)");
                out.push(retained(&d.topic, Vec::new()));
            }
        }
        for cam in cameras {
            let id = self.topics.device_id(&cam.id);
            if self.devices.contains_key(&id) {
                out.extend(self.update(cam));
            } else {
                let mut device = Device {
                    topic: format!("{}/device/{id}/config", self.prefix),
                    config: device_config(cam, &self.topics, self.snapshots, &self.remote),
                };
                let payload = device.config.to_string();
                if self.fits(&id, &device.topic, &payload, "it is not announced") {
                    out.push(retained(&device.topic, payload.into_bytes()));
                } else {
                    device.config = Value::Null;
                }
                self.devices.insert(id, device);
            }
        }
        out
    }

    /// `model` is a served model (its status was published): the first time, the
    /// devices with queries on it are made again, their entities following its status.
    pub fn served(&mut self, model: &str) -> Vec<Message> {
        if !self.remote.insert(model.to_string()) {
            return Vec::new();
        }
        let using: Vec<CameraConfig> = self
            .cameras
            .iter()
            .filter(|c| c.queries.iter().any(|q| q.model == model))
            .cloned()
            .collect();
        using.iter().flat_map(|cam| self.update(cam)).collect()
    }

    /// The retained config of every camera.
    pub fn messages(&self) -> Vec<Message> {
        self.devices
            .values()
            .filter(|d| !d.config.is_null())
            .map(|d| retained(&d.topic, d.config.to_string().into_bytes()))
            .collect()
    }

    /// Home Assistant's birth / last-will topic.
    pub fn birth_topic(&self) -> String {
        format!("{}/status", self.prefix)
    }

    /// Where the retained device configs (ours from earlier runs included) live.
    pub fn configs_filter(&self) -> String {
        format!("{}/device/+/config", self.prefix)
    }

    /// What to publish on an incoming message: the configs again after Home
    /// Assistant's birth message; a removal for a device config of this daemon (same
    /// availability topic) that names a camera or component the config no longer has.
    pub fn on_message(&self, topic: &str, payload: &[u8]) -> Vec<Message> {
        if topic == self.birth_topic() {
            return if payload == b"online" {
                self.messages()
            } else {
                Vec::new()
            };
        }
        let Some(id) = topic
            .strip_prefix(&format!("{}/device/", self.prefix))
            .and_then(|t| t.strip_suffix("/config"))
        else {
            return Vec::new();
        };
        let Ok(old) = serde_json::from_slice::<Value>(payload) else {
            return Vec::new();
        };
        let ours = old["availability"]
            .as_array()
            .and_then(|a| a.first())
            .is_some_and(|a| a["topic"] == self.availability.as_str());
        if !ours || !id.starts_with(&format!("{}_", self.topics.node())) {
            return Vec::new();
        }
        let Some(device) = self.devices.get(id) else {
            tracing::info!("home assistant: removing device {id} (camera no longer configured)");
            return vec![retained(topic, Vec::new())];
        };
        let (Some(old_components), Some(now)) = (
            old["components"].as_object(),
            device.config["components"].as_object(),
        ) else {
            return Vec::new();
        };
        let gone: Vec<(&String, &Value)> = old_components
            .iter()
            .filter(|(k, v)| !now.contains_key(*k) && v.as_object().is_some_and(|o| o.len() > 1))
            .collect();
        if gone.is_empty() {
            return Vec::new();
        }
        let mut config = device.config.clone();
        for (k, v) in gone {
            tracing::info!("home assistant: removing entity {k} of device {id}");
            config["components"][k] = json!({"platform": v["platform"]});
        }
        vec![retained(topic, config.to_string().into_bytes())]
    }
}

fn retained(topic: &str, payload: Vec<u8>) -> Message {
    Message {
        topic: topic.to_string(),
        payload,
        retain: true,
        reliable: true,
    }
}

fn device_config(
    cam: &CameraConfig,
    topics: &Topics,
    snapshots: bool,
    remote: &BTreeSet<String>,
) -> Value {
    let id = topics.device_id(&cam.id);
    let mut components = serde_json::Map::new();
    for q in &cam.queries {
        let (key, mut component) = component(&id, &cam.id, q, topics);
        if remote.contains(&q.model)
            && let Some(c) = component.as_object_mut()
        {
            // A component's own availability replaces the device's: both, and the model's.
            let mut availability = availability(cam, topics);
            availability.push(json!({
                "topic": topics.model_status(&q.model),
                "payload_available": "online",
                "payload_not_available": "offline",
            }));
            c.insert("availability".into(), Value::Array(availability));
            c.insert("availability_mode".into(), json!("all"));
        }
        components.insert(key, component);
    }
    components.insert(
        format!("{id}_events"),
        json!({
            "platform": "event",
            "unique_id": format!("{id}_events"),
            "name": "Alerts",
            "state_topic": topics.events(&cam.id),
            "event_types": cam.queries.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
        }),
    );
    // Queries a person reviews (`review_below`): the picture to review, and a
    // button per state that labels the camera's current frame.
    let reviewed: Vec<&QueryConfig> = cam
        .queries
        .iter()
        .filter(|q| q.review_below.is_some())
        .collect();
    if !reviewed.is_empty() {
        components.insert(
            format!("{id}_review"),
            json!({
                "platform": "image",
                "unique_id": format!("{id}_review"),
                "name": "To review",
                "image_topic": topics.review_image(&cam.id),
                "content_type": "image/jpeg",
            }),
        );
        components.insert(
            format!("{id}_review_event"),
            json!({
                "platform": "event",
                "unique_id": format!("{id}_review_event"),
                "name": "Review requests",
                "state_topic": topics.review(&cam.id),
                "event_types": ["review"],
            }),
        );
    }
    for q in reviewed {
        let states: Vec<&str> = match q.kind {
            QueryKind::YesNo => vec!["ON", "OFF"],
            _ => q.labels.iter().map(String::as_str).collect(),
        };
        for state in states {
            let key = format!("{id}_{}_teach_{}", q.id, state);
            components.insert(
                key.clone(),
                json!({
                    "platform": "button",
                    "unique_id": key,
                    "name": format!("Teach {}: {state}", q.name.as_deref().unwrap_or(&q.id)),
                    "command_topic": topics.query_label(&cam.id, &q.id),
                    "payload_press": state,
                    "entity_category": "config",
                }),
            );
        }
    }
    if snapshots {
        components.insert(
            format!("{id}_snapshot"),
            json!({
                "platform": "image",
                "unique_id": format!("{id}_snapshot"),
                "name": "Last alert",
                "image_topic": topics.snapshot(&cam.id),
                "content_type": "image/jpeg",
            }),
        );
    }
    for (key, c) in components.iter_mut() {
        name_entity(key, c);
    }
    json!({
        "device": {
            "identifiers": [id],
            "name": cam.name.as_deref().unwrap_or(&cam.id),
            "manufacturer": "ocellus",
            "model": "camera",
            "sw_version": env!("CARGO_PKG_VERSION"),
        },
        "origin": {
            "name": "ocellus",
            "sw_version": env!("CARGO_PKG_VERSION"),
        },
        "availability": availability(cam, topics),
        "availability_mode": "all",
        "qos": 1,
        "components": components,
    })
}

/// Gives an entity (keyed `key` in `components`, its `unique_id` too) its entity id,
/// `<platform>.<object id>`: object ids are lowercase `[a-z0-9_]`, so a camera
/// `front-door` under prefix `site-a` gives `binary_sensor.site_a_front_door_...`.
///
/// Both ways of asking for it go out. `default_entity_id` (the full id) came with Home
/// Assistant 2025.10 (home-assistant/core#151775, docs home-assistant.io#40749) to
/// replace `object_id` (the part after the dot), which those versions deprecate (a
/// warning, "will stop working in 2026.4") and, with `default_entity_id` beside it,
/// ignore. Home Assistant 2025.4 to 2025.9 (device-based discovery, no
/// `default_entity_id`) read only `object_id`: without it they name the entity from
/// the device and entity names (`binary_sensor.porch_person`, not
/// `binary_sensor.ocellus_porch_person`). Discovery schemas drop keys they do not
/// know, so a Home Assistant that no longer has `object_id` passes over it.
fn name_entity(key: &str, component: &mut Value) {
    let Some(platform) = component["platform"].as_str().map(str::to_string) else {
        return;
    };
    let Some(c) = component.as_object_mut() else {
        return;
    };
    let object: String = key
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    c.insert(
        "default_entity_id".into(),
        json!(format!("{platform}.{object}")),
    );
    c.insert("object_id".into(), json!(object));
}

/// The device's availability: the daemon's and the camera's.
fn availability(cam: &CameraConfig, topics: &Topics) -> Vec<Value> {
    vec![
        json!({"topic": topics.status(), "payload_available": "online", "payload_not_available": "offline"}),
        json!({
            "topic": topics.camera_status(&cam.id),
            "value_template": "{{ 'online' if value == 'online' else 'offline' }}",
            "payload_available": "online",
            "payload_not_available": "offline",
        }),
    ]
}

/// One query's entity: its key in `components` and its config.
fn component(device: &str, camera: &str, q: &QueryConfig, topics: &Topics) -> (String, Value) {
    let key = format!("{device}_{}", q.id);
    let numeric = matches!(
        q.kind,
        QueryKind::Count | QueryKind::Detect | QueryKind::Ground
    ) || (q.kind == QueryKind::Read && q.pattern.is_some());
    let platform = if q.kind == QueryKind::YesNo {
        "binary_sensor"
    } else {
        "sensor"
    };
    let mut c = serde_json::Map::new();
    let mut set = |k: &str, v: Value| {
        c.insert(k.into(), v);
    };
    set("platform", json!(platform));
    set("unique_id", json!(key));
    set("name", json!(q.name.as_deref().unwrap_or(&q.id)));
    set("state_topic", json!(topics.state(camera, &q.id)));
    set(
        "json_attributes_topic",
        json!(topics.attributes(camera, &q.id)),
    );
    if let Some(e) = q.expire_after {
        set("expire_after", json!(e.as_secs().max(1)));
    }
    if q.kind == QueryKind::YesNo {
        set("payload_on", json!("ON"));
        set("payload_off", json!("OFF"));
    } else if numeric {
        set("state_class", json!("measurement"));
        if let Some(unit) = &q.unit {
            set("unit_of_measurement", json!(unit));
        }
    } else if q.kind == QueryKind::Classify {
        set("device_class", json!("enum"));
        set("options", json!(q.labels));
    }
    (key, Value::Object(c))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn camera(name: &str) -> CameraConfig {
        toml::from_str(&format!(
            "id = \"door\"\nurl = \"rtsp://cam/1\"\n[[queries]]\nid = \"person\"\n\
             ask = \"is there a person?\"\nkind = \"yes_no\"\nmodel = \"coco\"\n\
             label = \"person\"\nname = \"{name}\"\n"
        ))
        .unwrap()
    }

    #[test]
    fn a_served_model_seen_after_start_joins_its_entities_availability() {
        let topics = Topics::new("ocellus");
        let mut d = Discovery::new("homeassistant", &topics, &[camera("Person")], false);
        let availability = |d: &Discovery| {
            let config: Value = serde_json::from_slice(&d.messages()[0].payload).unwrap();
            config["components"]["ocellus_door_person"]["availability"].clone()
        };
        assert!(
            availability(&d).is_null(),
            "not served: the device's availability"
        );
        assert!(d.served("other").is_empty(), "no query uses it");
        let out = d.served("coco");
        assert_eq!(out.len(), 1, "the device is announced again");
        let a = availability(&d);
        assert_eq!(a[2]["topic"], "ocellus/models/coco/status", "{a}");
        assert!(d.served("coco").is_empty(), "once");
    }

    #[test]
    fn a_config_over_the_packet_limit_is_refused_and_the_last_that_fit_stays() {
        let metrics = Arc::new(PublisherMetrics::default());
        let topics = Topics::new("ocellus");
        let mut d = Discovery::new("homeassistant", &topics, &[camera("Person")], false)
            .with_limit(8 << 10, metrics.clone());
        let before = d.messages();
        assert_eq!(before.len(), 1);
        // Huge query names: the new config is refused, the old one stays.
        assert!(d.update(&camera(&"n".repeat(10_000))).is_empty());
        assert_eq!(d.messages(), before);
        assert_eq!(metrics.refused(), 1);
        // A device that never fit is not announced, nor removed when seen.
        let big = Discovery::new(
            "homeassistant",
            &topics,
            &[camera(&"n".repeat(10_000))],
            false,
        )
        .with_limit(8 << 10, metrics.clone());
        assert!(big.messages().is_empty());
        assert_eq!(metrics.refused(), 2);
        let ours = before[0].payload.clone();
        assert!(big.on_message(&before[0].topic, &ours).is_empty());
    }

    #[test]
    fn a_reviewed_query_gets_the_review_picture_and_a_teach_button_per_state() {
        let cam: CameraConfig = toml::from_str(
            "id = \"desk\"\nurl = \"rtsp://cam/1\"\n[[queries]]\nid = \"cat\"\n\
             ask = \"is the cat there?\"\nkind = \"yes_no\"\nmodel = \"look\"\nreview_below = 0.8\n\
             [[queries]]\nid = \"lamp\"\nask = \"which colour?\"\nkind = \"classify\"\n\
             model = \"look\"\nlabels = [\"red\", \"green\"]\n",
        )
        .unwrap();
        let topics = Topics::new("ocellus");
        let config = device_config(&cam, &topics, false, &BTreeSet::new());
        let c = config["components"].as_object().unwrap();
        let review = &c["ocellus_desk_review"];
        assert_eq!(review["platform"], "image");
        assert_eq!(review["image_topic"], "ocellus/desk/review/image");
        let event = &c["ocellus_desk_review_event"];
        assert_eq!(
            (&event["platform"], &event["state_topic"]),
            (&json!("event"), &json!("ocellus/desk/review"))
        );
        for state in ["ON", "OFF"] {
            let b = &c[&format!("ocellus_desk_cat_teach_{state}")];
            assert_eq!(b["platform"], "button");
            assert_eq!(b["command_topic"], "ocellus/desk/query/cat/label");
            assert_eq!(b["payload_press"], state);
        }
        // Only queries under review get buttons.
        assert!(!c.keys().any(|k| k.contains("lamp_teach")), "{c:?}");
    }

    #[test]
    fn every_entity_names_its_id_both_ways_for_old_and_new_home_assistant() {
        let cam: CameraConfig = toml::from_str(
            "id = \"front-door\"\nurl = \"rtsp://cam/1\"\n[[queries]]\nid = \"person\"\n\
             ask = \"anyone?\"\nkind = \"yes_no\"\nmodel = \"coco\"\nlabel = \"person\"\n\
             review_below = 0.8\n[[queries]]\nid = \"cups\"\nask = \"how many cups?\"\n\
             kind = \"count\"\nmodel = \"coco\"\nlabel = \"cup\"\n",
        )
        .unwrap();
        let config = device_config(&cam, &Topics::new("site-a"), true, &BTreeSet::new());
        let c = config["components"].as_object().unwrap();
        let person = &c["site-a_front-door_person"];
        // Home Assistant 2025.10 on: default_entity_id; 2025.4 to 2025.9: object_id.
        assert_eq!(
            person["default_entity_id"],
            "binary_sensor.site_a_front_door_person"
        );
        assert_eq!(person["object_id"], "site_a_front_door_person");
        assert_eq!(
            c["site-a_front-door_cups"]["object_id"],
            "site_a_front_door_cups"
        );
        assert_eq!(c.len(), 8, "{c:?}");
        for (key, e) in c {
            let object = e["object_id"]
                .as_str()
                .unwrap_or_else(|| panic!("{key}: {e}"));
            assert_eq!(
                e["default_entity_id"],
                format!("{}.{object}", e["platform"].as_str().unwrap()),
                "{key}"
            );
            assert_eq!(object, key.to_lowercase().replace('-', "_"), "{key}");
        }
    }
}
