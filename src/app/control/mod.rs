//! Runtime queries: a standing query is added, replaced or deleted while the daemon
//! runs. Its JSON spec (the fields of a `[[cameras.queries]]` table) published on
//! `ocellus/<cam>/query/<q>/set` adds or replaces query `q`; an empty payload deletes
//! it. A spec is checked as strictly as the config file, within the bounds of
//! [`limits`] (its size before it is parsed, every string and list, the queries per
//! camera, the changes per second per camera), and bound to its model before
//! anything changes; a refused one changes nothing and its reason goes to
//! `ocellus/<cam>/query/<q>/error` (or the HTTP reply). Binding (embedding a dual
//! encoder's prompts) is the daemon's work off its supervisor thread: [`Control::plan`]
//! checks, [`bind`] binds, [`Control::commit`] saves. Accepted changes are saved in
//! `<state_dir>/queries.json` (at most [`limits::MAX_STATE_FILE_BYTES`]; a change that
//! would outgrow it is refused) and applied again at the next start; a file that
//! cannot be read there is moved aside, not overwritten. The camera takes them over
//! between two frames, keeping the state of its unchanged queries.
//!
//! ```
//! use ocellus::app::control::Control;
//! use ocellus::kit::QueryCommand;
//! let mut config = ocellus::app::config::parse(r#"
//! [models.coco]
//! family = "yolox"
//! dir = "/models/yolox_nano_coco"
//! [[cameras]]
//! id = "door"
//! url = "rtsp://127.0.0.1/door"
//! "#, "/etc/ocellus.toml".as_ref()).unwrap();
//! let mut control = Control::new(&config, None);
//! config.cameras = control.cameras();
//! let unknown = QueryCommand { camera: "gate".into(), query: "cup".into(), payload: vec![] };
//! let refused = control.check(&unknown).unwrap_err().to_string();
//! assert_eq!(refused, "no camera \"gate\" is configured (known: door)");
//! ```
//!
//! Shell, with the daemon running:
//! `mosquitto_pub -t ocellus/door/query/people/set -m '{"ask":"how many people?","kind":"count","model":"coco","label":"person"}'`

mod error;
pub mod limits;
mod spec;
mod state;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

pub use error::{Refusal, SpecError, StateError};
pub use state::{CameraOverrides, Overrides, StateFile};

use crate::app::config::Config;
use crate::eval::slow::MAX_SLOW_QUERIES;
use crate::kit::QueryCommand;
use crate::kit::RateLimit;
use crate::model::Registry;
use crate::query::limits::MAX_QUERIES_PER_CAMERA;
use crate::query::{BindError, QueryConfig};
use crate::source::CameraConfig;
use limits::{ChangeRate, MAX_SPEC_BYTES};

/// What an accepted command changes.
#[derive(Debug, Clone, PartialEq)]
pub enum QueryEdit {
    /// Add or replace the query: the checked config, and the spec as given (saved to `queries.json`).
    Set(Box<QueryConfig>, serde_json::Value),
    /// Delete the query.
    Delete,
}

/// The config file's cameras with the runtime changes on top.
pub struct Control {
    config: Config,
    cameras: BTreeMap<String, Camera>,
    /// Saved changes for cameras the config no longer has (kept in the file).
    orphans: BTreeMap<String, CameraOverrides>,
    file: Option<StateFile>,
    /// Why changes cannot be saved: the state file could not be read at the start
    /// and could not be moved aside either (so it is not overwritten).
    blocked: Option<PathBuf>,
    /// Each camera's change rate (kept over reloads).
    rates: BTreeMap<String, ChangeRate>,
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

/// Binds the query of `change` to its loaded model as a camera would (a dual
/// encoder's prompts are embedded into the shared prompt cache, so the camera that
/// takes the query over does not embed them again); the error says why it cannot
/// run. The one expensive step of a change: the daemon runs it off its supervisor.
pub fn bind(change: &QueryEdit, models: &Registry) -> Result<(), BindError> {
    match change {
        QueryEdit::Set(query, _) => spec::prepare(query, models),
        QueryEdit::Delete => Ok(()),
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
            blocked: None,
            rates: BTreeMap::new(),
        }
    }

    /// Applies the changes saved in the state file. A saved change that no longer
    /// holds (its model is gone, say) is logged with the file and left out. A file
    /// that cannot be read or parsed is moved aside (one line says where), so the
    /// next change does not overwrite it.
    pub fn restore(&mut self, models: &Registry) {
        let Some(file) = &self.file else { return };
        match file.load() {
            Ok(saved) => {
                let from = file.path().display().to_string();
                self.adopt(saved, models, &from);
            }
            Err(e) => match file.set_aside() {
                Ok(to) => tracing::error!(
                    "{e}; moved aside to {}; starting without the runtime queries",
                    to.display()
                ),
                Err(why) => {
                    tracing::error!(
                        "{e}; cannot move it aside ({why}); starting without the runtime queries, \
                         and runtime query changes are refused until it is fixed"
                    );
                    self.blocked = Some(file.path().to_path_buf());
                }
            },
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
        let (file, blocked, rates) = (
            self.file.take(),
            self.blocked.take(),
            std::mem::take(&mut self.rates),
        );
        *self = Self::new(config, file);
        self.blocked = blocked;
        self.rates = rates;
        self.adopt(kept, models, "runtime queries");
    }

    fn adopt(&mut self, saved: Overrides, models: &Registry, from: &str) {
        for (id, overrides) in saved.cameras {
            let Some(cam) = self.cameras.get_mut(&id) else {
                tracing::warn!(
                    camera = %id,
                    "{from}: the camera is not in the config; its runtime queries wait"
                );
                self.orphans.insert(id, overrides);
                continue;
            };
            for (q, spec) in &overrides.set {
                let parsed = spec::parse(q, spec.to_string().as_bytes(), &self.config)
                    .map_err(Refusal::from)
                    .and_then(|(query, _)| {
                        spec::prepare(&query, models)
                            .map(|()| query)
                            .map_err(Refusal::from)
                    });
                match parsed {
                    Ok(query) => {
                        cam.set.insert(q.clone(), query);
                        cam.overrides.set.insert(q.clone(), spec.clone());
                    }
                    Err(e) => tracing::error!(camera = %id, query = %q, "{from}: {e}; left out"),
                }
            }
            cam.overrides.deleted = overrides.deleted;
            let n = cam.overrides.set.len() + cam.overrides.deleted.len();
            if n > 0 {
                tracing::info!(
                    camera = %id,
                    "camera {id}: {n} runtime query change(s) restored from {from}"
                );
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

    /// Checks a command without models: the camera, the query and the spec (its size
    /// first, then its fields), and the number of queries the camera would run.
    pub fn check(&self, cmd: &QueryCommand) -> Result<QueryEdit, Refusal> {
        let Some(cam) = self.cameras.get(&cmd.camera) else {
            let known: Vec<&str> = self.cameras.keys().map(String::as_str).collect();
            return Err(Refusal::NoCamera {
                camera: cmd.camera.clone(),
                known: known.join(", "),
            });
        };
        if cmd.payload.len() > MAX_SPEC_BYTES {
            return Err(Refusal::TooLarge {
                bytes: cmd.payload.len(),
            });
        }
        let now = cam.effective();
        if cmd.payload.trim_ascii().is_empty() {
            return if now.queries.iter().any(|q| q.id == cmd.query) {
                Ok(QueryEdit::Delete)
            } else {
                Err(Refusal::NoQuery {
                    camera: cmd.camera.clone(),
                    query: cmd.query.clone(),
                })
            };
        }
        let (query, spec) = spec::parse(&cmd.query, &cmd.payload, &self.config)?;
        if now.queries.len() >= MAX_QUERIES_PER_CAMERA
            && !now.queries.iter().any(|q| q.id == query.id)
        {
            return Err(Refusal::TooManyQueries {
                camera: cmd.camera.clone(),
                queries: now.queries.len(),
            });
        }
        Ok(QueryEdit::Set(Box::new(query), spec))
    }

    /// Checks `cmd` against the loaded `models` as well (the slow queries a camera
    /// may run), without binding: what it would change, `None` when the query is
    /// already as given. Cheap: no prompt is embedded here.
    pub fn plan(
        &self,
        cmd: &QueryCommand,
        models: &Registry,
    ) -> Result<Option<QueryEdit>, Refusal> {
        if let Some(path) = &self.blocked {
            return Err(Refusal::Blocked { path: path.clone() });
        }
        let change = self.check(cmd)?;
        let QueryEdit::Set(query, _) = &change else {
            return Ok(Some(change));
        };
        let now = self
            .cameras
            .get(&cmd.camera)
            .map(Camera::effective)
            .ok_or_else(|| self.no_camera(&cmd.camera))?;
        if now.queries.iter().any(|q| q == query.as_ref()) {
            return Ok(None);
        }
        let slow = |q: &QueryConfig| models.get(&q.model).is_some_and(|m| m.is_slow());
        let others = now
            .queries
            .iter()
            .filter(|q| q.id != query.id && slow(q))
            .count();
        if slow(query) && others >= MAX_SLOW_QUERIES {
            return Err(Refusal::TooManySlow {
                camera: cmd.camera.clone(),
            });
        }
        Ok(Some(change))
    }

    /// Takes one of `camera`'s query changes from its rate: [`limits::CHANGE_BURST`]
    /// at once, then one per [`limits::CHANGE_EVERY`].
    pub fn admit(&mut self, camera: &str, now: Instant) -> Result<(), Refusal> {
        let rate = self
            .rates
            .entry(camera.to_string())
            .or_insert_with(|| ChangeRate::new(now));
        rate.admit(now).map_err(|wait| Refusal::TooFast {
            camera: camera.to_string(),
            wait_s: wait.as_secs_f64(),
        })
    }

    /// Saves a change that [`Control::plan`] accepted (and [`bind`] bound) and
    /// returns the camera's new config. Refused, changing nothing, when the state
    /// file cannot be written or would grow over its limit.
    pub fn commit(
        &mut self,
        cmd: &QueryCommand,
        change: &QueryEdit,
    ) -> Result<CameraConfig, Refusal> {
        if let Some(path) = &self.blocked {
            return Err(Refusal::Blocked { path: path.clone() });
        }
        let Some(cam) = self.cameras.get(&cmd.camera) else {
            return Err(self.no_camera(&cmd.camera));
        };
        let mut overrides = cam.overrides.clone();
        let mut set = cam.set.clone();
        match change {
            QueryEdit::Delete => {
                overrides.set.remove(&cmd.query);
                set.remove(&cmd.query);
                if cam.base.queries.iter().any(|q| q.id == cmd.query) {
                    overrides.deleted.insert(cmd.query.clone());
                }
            }
            QueryEdit::Set(query, spec) => {
                overrides.deleted.remove(&cmd.query);
                overrides.set.insert(cmd.query.clone(), spec.clone());
                set.insert(cmd.query.clone(), (**query).clone());
            }
        }
        self.save(&cmd.camera, &overrides)?;
        let Some(cam) = self.cameras.get_mut(&cmd.camera) else {
            return Err(self.no_camera(&cmd.camera));
        };
        cam.overrides = overrides;
        cam.set = set;
        Ok(cam.effective())
    }

    /// Checks, binds (here, on the caller's thread) and commits `cmd`: the camera's
    /// new config, `None` when the query is already as given. The daemon does these
    /// steps itself so that binding runs off its supervisor.
    pub fn apply(
        &mut self,
        cmd: &QueryCommand,
        models: &Registry,
    ) -> Result<Option<CameraConfig>, Refusal> {
        let Some(change) = self.plan(cmd, models)? else {
            return Ok(None);
        };
        self.admit(&cmd.camera, Instant::now())?;
        bind(&change, models)?;
        self.commit(cmd, &change).map(Some)
    }

    fn no_camera(&self, camera: &str) -> Refusal {
        let known: Vec<&str> = self.cameras.keys().map(String::as_str).collect();
        Refusal::NoCamera {
            camera: camera.to_string(),
            known: known.join(", "),
        }
    }

    /// Writes every camera's changes, with `camera`'s replaced by `overrides`.
    fn save(&self, camera: &str, overrides: &CameraOverrides) -> Result<(), StateError> {
        let Some(file) = &self.file else {
            static NOT_SAVED: RateLimit = RateLimit::new();
            if let Some(s) = NOT_SAVED.allow() {
                tracing::warn!(
                    camera = %camera,
                    suppressed = s.count(),
                    "runtime query change not saved: set [mqtt] state_dir to keep it over a \
                     restart{s}"
                );
            }
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
        /// The command as received.
        cmd: QueryCommand,
        /// Where the outcome goes: the camera's new config, `None` when nothing changed.
        reply: Option<Reply<Option<CameraConfig>>>,
    },
    /// Check a query spec as a change would be checked, without making it: the checked
    /// config and the models to answer it with (a one-shot question, `POST .../ask`).
    Check {
        /// The command as received (its payload is the spec).
        cmd: QueryCommand,
        /// Where the checked query and the loaded models go.
        reply: Reply<(QueryConfig, std::sync::Arc<Registry>)>,
    },
    /// Re-read the config file and apply what changed.
    Reload {
        /// Where the outcome goes: a summary of what changed, or why nothing did.
        reply: Option<Reply<String>>,
    },
}

/// Where the outcome of a request goes: the result, or the refusal as the one line a
/// client is answered with (on MQTT `.../error`, in the HTTP reply).
pub type Reply<T> = tokio::sync::oneshot::Sender<Result<T, String>>;

#[cfg(test)]
mod tests {
    use super::*;

    fn control(dir: &std::path::Path) -> Control {
        Control::new(&spec::tests::config(), Some(StateFile::in_dir(dir)))
    }

    fn cmd(query: &str, payload: &str) -> QueryCommand {
        QueryCommand {
            camera: "door".into(),
            query: query.into(),
            payload: payload.into(),
        }
    }

    const COUNT: &str =
        r#"{"ask": "people?", "kind": "count", "model": "coco", "label": "person"}"#;

    #[test]
    fn an_oversized_spec_is_refused_before_it_is_parsed() {
        let dir = tempfile::tempdir().unwrap();
        let c = control(dir.path());
        // Not JSON at all: the size is what is reported.
        let e = c
            .check(&cmd("q", &"x".repeat(MAX_SPEC_BYTES + 1)))
            .unwrap_err()
            .to_string();
        assert!(e.contains("at most 65536"), "{e}");
    }

    #[test]
    fn a_camera_runs_a_bounded_number_of_queries() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = control(dir.path());
        for i in 0..MAX_QUERIES_PER_CAMERA {
            let change = c.check(&cmd(&format!("q{i}"), COUNT)).unwrap();
            c.commit(&cmd(&format!("q{i}"), COUNT), &change).unwrap();
        }
        let e = c.check(&cmd("one_more", COUNT)).unwrap_err().to_string();
        assert!(e.contains("already runs 32 queries"), "{e}");
        // Replacing one of them is still fine.
        let other = COUNT.replace("people?", "persons?");
        assert!(c.check(&cmd("q0", &other)).is_ok());
    }

    #[test]
    fn the_state_file_has_a_size_limit() {
        let dir = tempfile::tempdir().unwrap();
        let mut c = control(dir.path());
        // A spec of about 61 KB: the longest prompts, 3 bytes a character.
        let labels: Vec<String> = (0..crate::query::limits::MAX_PROMPTS)
            .map(|i| {
                format!(
                    "{i:0>3}{}",
                    "€".repeat(crate::query::limits::MAX_PROMPT_CHARS - 3)
                )
            })
            .collect();
        let big = serde_json::json!({
            "ask": "€".repeat(crate::query::limits::MAX_ASK_CHARS), "kind": "count", "model": "coco",
            "label": "person", "labels": labels, "yes": labels, "no": labels,
        })
        .to_string();
        let mut refused = None;
        for i in 0..MAX_QUERIES_PER_CAMERA {
            let q = cmd(&format!("q{i}"), &big);
            let change = c.check(&q).unwrap();
            if let Err(e) = c.commit(&q, &change) {
                refused = Some((i, e.to_string()));
                break;
            }
        }
        let (i, e) = refused.expect("the file filled up");
        assert!(e.contains("over its limit"), "{e}");
        let size = std::fs::metadata(dir.path().join("queries.json"))
            .unwrap()
            .len();
        assert!(size as usize <= limits::MAX_STATE_FILE_BYTES);
        // The refused change changed nothing; deleting still works.
        assert_eq!(c.cameras()[0].queries.len(), i);
        let del = cmd("q0", "");
        let change = c.check(&del).unwrap();
        c.commit(&del, &change).unwrap();
    }

    #[test]
    fn a_damaged_state_file_is_moved_aside_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("queries.json");
        std::fs::write(&path, b"{\"cameras\": [").unwrap();
        let mut c = control(dir.path());
        let config = c.config.clone();
        let models = Registry::load(
            &config.models,
            &config.engine,
            crate::engine::environment(&config.engine).unwrap(),
            &Default::default(),
        );
        c.restore(&models);
        let aside: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with("queries.json.bad-"))
            .collect();
        assert_eq!(aside.len(), 1, "{aside:?}");
        let kept = std::fs::read(dir.path().join(&aside[0])).unwrap();
        assert_eq!(kept, b"{\"cameras\": [");
        assert!(!path.exists());
    }
}
