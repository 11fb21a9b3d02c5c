//! The daemon's supervisor: owns the running cameras and models and serves one
//! request at a time — a runtime query change (MQTT or HTTP) or a reload (SIGHUP or
//! HTTP) — between noticing cameras that ended.
//!
//! A reload reads and validates the whole file first; a bad file changes nothing and
//! says why. Then a model whose config is unchanged keeps running, a camera whose
//! config and models are unchanged keeps streaming, a camera whose queries alone
//! changed takes them between two frames, and only cameras that are new, gone or
//! otherwise changed are started or stopped.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use super::camera::{CameraEnv, RunningCamera};
use crate::api::{ModelView, Shared};
use crate::cache::PromptCache;
use crate::config::{self, Config};
use crate::control::{Command, Control, Request};
use crate::publish::Outgoing;
use crate::source::{CameraConfig, Ended};

pub struct Supervisor {
    /// The config file as last loaded (runtime query changes live in `control`).
    config: Config,
    env: &'static ort::environment::Environment,
    prompts: Arc<PromptCache>,
    control: Control,
    cameras: BTreeMap<String, RunningCamera>,
    camera_env: CameraEnv,
    shared: Arc<Shared>,
    /// Cameras whose source failed for good.
    failed: usize,
}

impl Supervisor {
    /// Starts every camera of `control` with `camera_env`'s models.
    pub fn start(
        config: Config,
        env: &'static ort::environment::Environment,
        prompts: Arc<PromptCache>,
        control: Control,
        camera_env: CameraEnv,
    ) -> Self {
        let shared = camera_env.shared.clone();
        let mut s = Self {
            config,
            env,
            prompts,
            control,
            cameras: BTreeMap::new(),
            camera_env,
            shared,
            failed: 0,
        };
        s.show_models();
        for cam in s.control.cameras() {
            s.start_camera(&cam);
        }
        s
    }

    pub fn handle(&mut self, request: Request) {
        match request {
            Request::Query { cmd, reply } => {
                let result = self.query(&cmd);
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
            Request::Reload { reply } => {
                let result = self.reload();
                match &result {
                    Ok(summary) => tracing::info!("reload: {summary}"),
                    Err(e) => tracing::error!("reload: {e}; nothing changed"),
                }
                if let Some(reply) = reply {
                    let _ = reply.send(result);
                }
            }
        }
    }

    /// Applies a runtime query change; a refused one is also published on the
    /// query's error topic.
    fn query(&mut self, cmd: &Command) -> Result<Option<CameraConfig>, String> {
        let what = format!("camera {}: query {}", cmd.camera, cmd.query);
        let models = self.camera_env.models.clone();
        match self.control.apply(cmd, &models) {
            Ok(None) => {
                tracing::info!("{what}: unchanged");
                Ok(None)
            }
            Ok(Some(cam)) => {
                match cam.queries.iter().find(|q| q.id == cmd.query) {
                    Some(q) => {
                        tracing::info!("{what}: set at runtime ({} on {})", q.kind.name(), q.model)
                    }
                    None => tracing::info!("{what}: deleted at runtime"),
                }
                let delivered = self
                    .cameras
                    .get_mut(&cmd.camera)
                    .is_some_and(|running| running.change_queries(cam.clone()));
                if delivered {
                    if let Some(v) = self.shared.cameras_mut().get_mut(&cmd.camera) {
                        v.config = cam.clone();
                    }
                } else {
                    tracing::warn!(
                        "{what}: saved, but the camera is not running; it applies at the next start"
                    );
                }
                Ok(Some(cam))
            }
            Err(reason) => {
                tracing::warn!("{what}: refused: {reason}");
                let _ = self.camera_env.tx.blocking_send(Outgoing::Rejected {
                    camera: cmd.camera.clone(),
                    query: cmd.query.clone(),
                    reason: reason.clone(),
                });
                Err(reason)
            }
        }
    }

    /// Re-reads the config file and applies what changed (see the module docs).
    fn reload(&mut self) -> Result<String, String> {
        let new = config::load(&self.config.path).map_err(|e| e.one_line())?;
        let fixed = [
            ("engine", self.config.engine != new.engine),
            ("cache", self.config.cache != new.cache),
            ("mqtt", self.config.mqtt != new.mqtt),
            ("http", self.config.http != new.http),
            ("snapshots", self.config.snapshots != new.snapshots),
        ];
        for (section, differs) in fixed {
            if differs && section != "engine" {
                tracing::warn!("reload: [{section}] changed; it applies at the next start");
            }
        }
        let (models, changed) =
            self.camera_env
                .models
                .reload(&self.config, &new, self.env, &self.prompts);
        let models = Arc::new(models);
        self.control.rebase(&new, &models);
        let wanted = self.control.cameras();
        self.camera_env.models = models;
        self.config = new;
        self.show_models();

        let (mut stop, mut requery) = (Vec::new(), Vec::new());
        for (id, running) in &self.cameras {
            match wanted.iter().find(|c| c.id == *id) {
                None => stop.push(id.clone()),
                Some(cam) if must_restart(&running.view.config, cam, &changed) => {
                    stop.push(id.clone())
                }
                Some(cam) if running.view.config.queries != cam.queries => {
                    requery.push(cam.clone())
                }
                Some(_) => {}
            }
        }
        // Stop first (all at once), then start: a restarted camera's old pipeline has
        // released its source before the new one opens it.
        let stopping: Vec<RunningCamera> = stop
            .iter()
            .filter_map(|id| self.cameras.remove(id))
            .collect();
        for c in &stopping {
            c.stop();
        }
        let mut removed = Vec::new();
        for c in stopping {
            let id = c.view.config.id.clone();
            if !wanted.iter().any(|w| w.id == id) {
                removed.push(c.view.config.clone());
            }
            let end = c.join();
            tracing::info!("camera {id}: stopped for the reload ({end:?})");
            self.shared.cameras_mut().remove(&id);
        }
        for cam in &requery {
            if let Some(running) = self.cameras.get_mut(&cam.id)
                && running.change_queries(cam.clone())
                && let Some(v) = self.shared.cameras_mut().get_mut(&cam.id)
            {
                v.config = cam.clone();
            }
        }
        let mut started = 0;
        for cam in &wanted {
            if !self.cameras.contains_key(&cam.id) {
                self.start_camera(cam);
                started += 1;
            }
        }
        let _ = self.camera_env.tx.blocking_send(Outgoing::Cameras {
            cameras: wanted.clone(),
            removed: removed.clone(),
        });
        let restarted = stop.len() - removed.len();
        Ok(format!(
            "{} camera(s) started ({restarted} of them restarted), {} stopped, {} with new queries, \
             {} left running; model(s) loaded or removed: {}",
            started,
            removed.len(),
            requery.len(),
            self.cameras.len() - started - requery.len(),
            if changed.is_empty() {
                "none".to_string()
            } else {
                changed.into_iter().collect::<Vec<_>>().join(", ")
            }
        ))
    }

    fn start_camera(&mut self, cam: &CameraConfig) {
        let running = RunningCamera::start(cam, &self.camera_env);
        self.shared
            .cameras_mut()
            .insert(cam.id.clone(), running.view.clone());
        self.cameras.insert(cam.id.clone(), running);
    }

    fn show_models(&self) {
        let models = &self.camera_env.models;
        let views = self
            .config
            .models
            .iter()
            .map(|(name, cfg)| {
                let view = ModelView {
                    family: cfg.family(),
                    error: models.failed().get(name).cloned(),
                    metrics: models
                        .get(name)
                        .and_then(|l| Some(l.engine()?.metrics.clone())),
                };
                (name.clone(), view)
            })
            .collect();
        self.shared.set_models(views);
    }

    /// One line for systemd's `STATUS=`.
    pub fn status(&self) -> String {
        let failed = self.camera_env.models.failed().len();
        format!(
            "{} camera(s) running, {} model(s) loaded{}",
            self.cameras.len(),
            self.config.models.len() - failed,
            if failed > 0 {
                format!(", {failed} failed")
            } else {
                String::new()
            }
        )
    }

    /// Joins the cameras that ended; false once none is running.
    pub fn reap(&mut self) -> bool {
        let done: Vec<String> = self
            .cameras
            .iter()
            .filter(|(_, c)| c.is_finished())
            .map(|(id, _)| id.clone())
            .collect();
        for id in done {
            if let Some(c) = self.cameras.remove(&id) {
                self.note_end(&id, c.join());
            }
        }
        !self.cameras.is_empty()
    }

    /// Stops every camera and waits for them; how many failed.
    pub fn stop_all(mut self) -> usize {
        for c in self.cameras.values() {
            c.stop();
        }
        for (id, c) in std::mem::take(&mut self.cameras) {
            let end = c.join();
            self.note_end(&id, end);
        }
        self.failed
    }

    fn note_end(&mut self, id: &str, end: Ended) {
        match end {
            Ended::Failed(_) => self.failed += 1,
            end => tracing::info!("camera {id}: {end:?}"),
        }
    }
}

/// Whether a camera must be restarted: its settings (not just its queries) changed,
/// or one of its models was reloaded.
fn must_restart(old: &CameraConfig, new: &CameraConfig, models: &BTreeSet<String>) -> bool {
    let bare = |c: &CameraConfig| CameraConfig {
        queries: Vec::new(),
        ..c.clone()
    };
    bare(old) != bare(new)
        || old
            .queries
            .iter()
            .chain(&new.queries)
            .any(|q| models.contains(&q.model))
}
