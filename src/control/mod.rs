//! Runtime queries: a standing query is added, replaced or deleted while the daemon
//! runs. Its JSON spec (the fields of a `[[cameras.queries]]` table) published on
//! `ocellus/<cam>/query/<q>/set` adds or replaces query `q`; an empty payload deletes
//! it. A spec is checked as strictly as the config file and bound to its model
//! before anything changes; a refused one changes nothing and its reason goes to
//! `ocellus/<cam>/query/<q>/error`. Accepted changes are saved in
//! `<state_dir>/queries.json` and applied again at the next start; the camera takes
//! them over between two frames, keeping the state of its unchanged queries.
//!
//! ```
//! use ocellus::control::{Command, Control};
//! let mut config = ocellus::config::parse(r#"
//! [models.coco]
//! family = "yolox"
//! dir = "/models/yolox_nano_coco"
//! [[cameras]]
//! id = "door"
//! url = "rtsp://127.0.0.1/door"
//! "#, "/etc/ocellus.toml".as_ref()).unwrap();
//! let mut control = Control::new(&config, None);
//! config.cameras = control.cameras();
//! let unknown = Command { camera: "gate".into(), query: "cup".into(), payload: vec![] };
//! let refused = control.check(&unknown).unwrap_err();
//! assert_eq!(refused, "no camera \"gate\" is configured (known: door)");
//! ```
//!
//! Shell, with the daemon running:
//! `mosquitto_pub -t ocellus/door/query/people/set -m '{"ask":"how many people?","kind":"count","model":"coco","label":"person"}'`

mod spec;
mod state;

use std::collections::BTreeMap;

pub use state::{CameraOverrides, Overrides, StateFile};

use crate::config::Config;
use crate::daemon::generative::MAX_SLOW_QUERIES;
use crate::model::Registry;
use crate::query::QueryConfig;
use crate::source::CameraConfig;

/// A spec (or an empty payload: delete) received for query `query` of `camera`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub camera: String,
    pub query: String,
    pub payload: Vec<u8>,
}

/// What an accepted command changes.
#[derive(Debug, Clone, PartialEq)]
pub enum Change {
    Set(Box<QueryConfig>, serde_json::Value),
    Delete,
}

/// The config file's cameras with the runtime changes on top.
pub struct Control {
    config: Config,
    cameras: BTreeMap<String, Camera>,
    /// Saved changes for cameras the config no longer has (kept in the file).
    orphans: BTreeMap<String, CameraOverrides>,
    file: Option<StateFile>,
}

struct Camera {
    /// As in the config file.
    base: CameraConfig,
    overrides: CameraOverrides,
    /// `overrides.set`, parsed.
    set: BTreeMap<String, QueryConfig>,
}

impl Camera {
    /// The file's queries (deleted ones left out, replaced ones replaced) followed by
    /// the ones added at runtime.
    fn effective(&self) -> CameraConfig {
        let mut cam = self.base.clone();
        cam.queries = self
            .base
            .queries
            .iter()
            .filter(|q| !self.overrides.deleted.contains(&q.id))
            .map(|q| self.set.get(&q.id).unwrap_or(q).clone())
            .collect();
        let added = self
            .set
            .values()
            .filter(|q| !self.base.queries.iter().any(|b| b.id == q.id));
        cam.queries.extend(added.cloned());
        cam
    }
}

impl Control {
    /// The cameras of `config` with no runtime changes; `file` keeps future ones.
    pub fn new(config: &Config, file: Option<StateFile>) -> Self {
        let cameras = config
            .cameras
            .iter()
            .map(|c| {
                let camera = Camera {
                    base: c.clone(),
                    overrides: CameraOverrides::default(),
                    set: BTreeMap::new(),
                };
                (c.id.clone(), camera)
            })
            .collect();
        Self {
            config: config.clone(),
            cameras,
            orphans: BTreeMap::new(),
            file,
        }
    }

    /// Applies the changes saved in the state file. A saved change that no longer
    /// holds (its model is gone, say) is logged with the file and left out.
    pub fn restore(&mut self, models: &Registry) {
        let Some(file) = &self.file else { return };
        match file.load() {
            Ok(saved) => {
                let from = file.path().display().to_string();
                self.adopt(saved, models, &from);
            }
            Err(e) => tracing::error!("{e}; starting without the runtime queries"),
        }
    }

    /// Takes a new config file's cameras (a reload), keeping the runtime changes of
    /// every camera it still has.
    pub fn rebase(&mut self, config: &Config, models: &Registry) {
        let mut kept = Overrides {
            cameras: std::mem::take(&mut self.orphans),
        };
        for (id, cam) in std::mem::take(&mut self.cameras) {
            if !cam.overrides.is_empty() {
                kept.cameras.insert(id, cam.overrides);
            }
        }
        let file = self.file.take();
        *self = Self::new(config, file);
        self.adopt(kept, models, "runtime queries");
    }

    fn adopt(&mut self, saved: Overrides, models: &Registry, from: &str) {
        for (id, overrides) in saved.cameras {
            let Some(cam) = self.cameras.get_mut(&id) else {
                tracing::warn!(
                    "{from}: camera {id} is not in the config; its runtime queries wait"
                );
                self.orphans.insert(id, overrides);
                continue;
            };
            for (q, spec) in &overrides.set {
                let parsed = spec::parse(q, spec.to_string().as_bytes(), &self.config)
                    .and_then(|(query, _)| spec::prepare(&query, models).map(|()| query));
                match parsed {
                    Ok(query) => {
                        cam.set.insert(q.clone(), query);
                        cam.overrides.set.insert(q.clone(), spec.clone());
                    }
                    Err(e) => tracing::error!("{from}: camera {id}: query {q}: {e}; left out"),
                }
            }
            cam.overrides.deleted = overrides.deleted;
            let n = cam.overrides.set.len() + cam.overrides.deleted.len();
            if n > 0 {
                tracing::info!("camera {id}: {n} runtime query change(s) restored from {from}");
            }
        }
    }

    /// Every camera as it runs now.
    pub fn cameras(&self) -> Vec<CameraConfig> {
        self.config
            .cameras
            .iter()
            .filter_map(|c| self.cameras.get(&c.id))
            .map(Camera::effective)
            .collect()
    }

    /// Checks a command without models: the camera, the query and the spec.
    pub fn check(&self, cmd: &Command) -> Result<Change, String> {
        let Some(cam) = self.cameras.get(&cmd.camera) else {
            let known: Vec<&str> = self.cameras.keys().map(String::as_str).collect();
            return Err(format!(
                "no camera {:?} is configured (known: {})",
                cmd.camera,
                known.join(", ")
            ));
        };
        if cmd.payload.trim_ascii().is_empty() {
            return if cam.effective().queries.iter().any(|q| q.id == cmd.query) {
                Ok(Change::Delete)
            } else {
                Err(format!(
                    "camera {} has no query {:?} to delete",
                    cmd.camera, cmd.query
                ))
            };
        }
        let (query, spec) = spec::parse(&cmd.query, &cmd.payload, &self.config)?;
        Ok(Change::Set(Box::new(query), spec))
    }

    /// Checks `cmd`, binds a new query to its model, saves the change and returns the
    /// camera's new config (`None` when the query is already as given). A refused
    /// command changes nothing.
    pub fn apply(
        &mut self,
        cmd: &Command,
        models: &Registry,
    ) -> Result<Option<CameraConfig>, String> {
        let change = self.check(cmd)?;
        let Some(cam) = self.cameras.get(&cmd.camera) else {
            return Err(format!("no camera {:?} is configured", cmd.camera));
        };
        let mut overrides = cam.overrides.clone();
        let mut set = cam.set.clone();
        match &change {
            Change::Delete => {
                overrides.set.remove(&cmd.query);
                set.remove(&cmd.query);
                if cam.base.queries.iter().any(|q| q.id == cmd.query) {
                    overrides.deleted.insert(cmd.query.clone());
                }
            }
            Change::Set(query, spec) => {
                let now = cam.effective();
                if now.queries.iter().any(|q| q == query.as_ref()) {
                    return Ok(None);
                }
                spec::prepare(query, models)?;
                let slow = |q: &QueryConfig| models.get(&q.model).is_some_and(|m| m.is_slow());
                let others = now
                    .queries
                    .iter()
                    .filter(|q| q.id != query.id && slow(q))
                    .count();
                if slow(query) && others >= MAX_SLOW_QUERIES {
                    return Err(format!(
                        "camera {} already has {MAX_SLOW_QUERIES} slow queries",
                        cmd.camera
                    ));
                }
                overrides.deleted.remove(&cmd.query);
                overrides.set.insert(cmd.query.clone(), spec.clone());
                set.insert(cmd.query.clone(), (**query).clone());
            }
        }
        self.save(&cmd.camera, &overrides)?;
        let Some(cam) = self.cameras.get_mut(&cmd.camera) else {
            return Err(format!("no camera {:?} is configured", cmd.camera));
        };
        cam.overrides = overrides;
        cam.set = set;
        Ok(Some(cam.effective()))
    }

    /// Writes every camera's changes, with `camera`'s replaced by `overrides`.
    fn save(&self, camera: &str, overrides: &CameraOverrides) -> Result<(), String> {
        let Some(file) = &self.file else {
            tracing::warn!(
                "camera {camera}: runtime query change not saved: set [mqtt] state_dir to keep it over a restart"
            );
            return Ok(());
        };
        let mut all = Overrides {
            cameras: self.orphans.clone(),
        };
        for (id, cam) in &self.cameras {
            let o = if id == camera {
                overrides
            } else {
                &cam.overrides
            };
            if !o.is_empty() {
                all.cameras.insert(id.clone(), o.clone());
            }
        }
        file.save(&all)
    }
}

/// What the daemon's supervisor is asked to do: MQTT commands, HTTP requests and
/// SIGHUP all come this way, one at a time.
pub enum Request {
    /// Add, replace or delete a query (`reply` answers HTTP; MQTT has none).
    Query {
        cmd: Command,
        reply: Option<Reply<Option<CameraConfig>>>,
    },
    /// Re-read the config file and apply what changed.
    Reload { reply: Option<Reply<String>> },
}

/// Where the outcome of a request goes.
pub type Reply<T> = tokio::sync::oneshot::Sender<Result<T, String>>;
