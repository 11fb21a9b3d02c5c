//! The daemon's supervisor: owns the running cameras and models and serves one
//! request at a time — a runtime query change (MQTT or HTTP) or a reload (SIGHUP or
//! HTTP) — between noticing cameras that ended.
//!
//! A query change is checked here (cheap, bounded: `control::limits`) and
//! rate-limited per camera; binding it to its model (embedding a dual encoder's
//! prompts) runs on the `query-binder` thread, and the change is saved and handed to
//! its camera when that is done, so the supervisor keeps serving other requests
//! meanwhile. Changes of one camera stay in order: while one is being bound, the
//! next ones wait (at most `MAX_PENDING_CHANGES`).
//!
//! A reload reads and validates the whole file first; a bad file changes nothing and
//! says why. Then a model whose config is unchanged keeps running, a camera whose
//! config and models are unchanged keeps streaming, a camera whose queries alone
//! changed takes them between two frames, and only cameras that are new, gone or
//! otherwise changed are started or stopped.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender};

use super::camera::{CameraEnv, RunningCamera};
use crate::app::config::{self, Config};
use crate::app::control::limits::{MAX_PENDING_CHANGES, short_reason};
use crate::app::control::{self, Control, QueryEdit, Refusal, Reply, Request};
use crate::app::status::{ModelView, Status};
use crate::cache::PromptCache;
use crate::kit::QueryCommand;
use crate::kit::{RateLimit, RateLimits};
use crate::model::Registry;
use crate::publish::Outgoing;
use crate::source::{CameraConfig, Ended};

/// A query change waiting for its camera's previous one.
struct Pending {
    cmd: QueryCommand,
    reply: Option<Reply<Option<CameraConfig>>>,
}

/// A change to bind to its model off the supervisor, and (coming back) the outcome.
pub(super) struct Bound {
    cmd: QueryCommand,
    change: QueryEdit,
    reply: Option<Reply<Option<CameraConfig>>>,
    /// The models it was bound with (a reload in between means binding again).
    models: Arc<Registry>,
    result: Result<(), Refusal>,
}

/// Which of the camera's counters a refusal counts in.
#[derive(Clone, Copy)]
enum Counted {
    /// The spec or the command is wrong.
    Invalid,
    /// A limit: the change rate, the changes waiting, the state file's size.
    Limited,
}

/// The thread that binds queries to their models, one change at a time.
struct Binder {
    jobs: Option<Sender<Bound>>,
    /// Outcomes (also used to bind inline when the thread is gone).
    done_tx: Sender<Bound>,
    done: Receiver<Bound>,
}

impl Binder {
    fn spawn() -> Self {
        let (done_tx, done) = crossbeam_channel::unbounded::<Bound>();
        // Unbounded, yet at most one job per camera is ever in flight.
        let (jobs_tx, jobs) = crossbeam_channel::unbounded::<Bound>();
        let out = done_tx.clone();
        let spawned = std::thread::Builder::new()
            .name("query-binder".into())
            .spawn(move || {
                for mut job in jobs {
                    job.result = bind_caught(&job.change, &job.models);
                    if out.send(job).is_err() {
                        break;
                    }
                }
            });
        let jobs = match spawned {
            Ok(_) => Some(jobs_tx),
            Err(e) => {
                tracing::error!("cannot start the query binder thread ({e}); binding inline");
                None
            }
        };
        Self {
            jobs,
            done_tx,
            done,
        }
    }

    fn bind(&self, job: Bound) {
        let job = match &self.jobs {
            Some(jobs) => match jobs.send(job) {
                Ok(()) => return,
                Err(e) => e.into_inner(),
            },
            None => job,
        };
        let mut job = job;
        job.result = bind_caught(&job.change, &job.models);
        let _ = self.done_tx.send(job);
    }
}

/// `control::bind`, with a panic turned into a refusal (the camera's later changes
/// must not wait forever).
fn bind_caught(change: &QueryEdit, models: &Registry) -> Result<(), Refusal> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        control::bind(change, models).map_err(Refusal::from)
    }))
    .unwrap_or(Err(Refusal::BindPanicked))
}

pub(super) struct Supervisor {
    /// The config file as last loaded (runtime query changes live in `control`).
    config: Config,
    env: &'static ort::environment::Environment,
    prompts: Arc<PromptCache>,
    control: Control,
    cameras: BTreeMap<String, RunningCamera>,
    camera_env: CameraEnv,
    shared: Arc<Status>,
    /// Cameras whose source failed for good.
    failed: usize,
    binder: Binder,
    /// Cameras with a change being bound, and the changes waiting behind it.
    busy: BTreeMap<String, VecDeque<Pending>>,
    /// A flood of bad commands is logged once a minute (each is still answered and
    /// counted).
    refusals: RateLimit,
}

impl Supervisor {
    /// Starts every camera of `control` with `camera_env`'s models.
    pub(super) fn start(
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
            binder: Binder::spawn(),
            busy: BTreeMap::new(),
            refusals: RateLimit::new(),
        };
        s.show_models();
        for cam in s.control.cameras() {
            s.start_camera(&cam);
        }
        s
    }

    /// Where bound changes come back (for [`Supervisor::finish`]).
    pub(super) fn bound(&self) -> Receiver<Bound> {
        self.binder.done.clone()
    }

    pub(super) fn handle(&mut self, request: Request) {
        match request {
            Request::Query { cmd, reply } => match self.busy.get_mut(&cmd.camera) {
                Some(waiting) if waiting.len() >= MAX_PENDING_CHANGES => {
                    let reason = Refusal::Busy {
                        camera: cmd.camera.clone(),
                    };
                    self.refuse(&cmd, reply, reason, Counted::Limited);
                }
                Some(waiting) => waiting.push_back(Pending { cmd, reply }),
                None => self.start_query(cmd, reply, true),
            },
            Request::Check { cmd, reply } => {
                let result = match self.control.check(&cmd) {
                    Ok(control::QueryEdit::Set(query, _)) => {
                        Ok((*query, self.camera_env.models.clone()))
                    }
                    Ok(control::QueryEdit::Delete) => {
                        Err("the body must be a query spec (the question to ask)".to_string())
                    }
                    Err(refusal) => Err(short_reason(&refusal.to_string())),
                };
                let _ = reply.send(result);
            }
            Request::Reload { reply } => {
                let result = self.reload().map_err(|e| e.one_line());
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

    /// Checks a query change and, unless it needs no binding, sends it to the
    /// binder; `charge`: whether it takes from the camera's change rate (not again
    /// when it is bound again after a reload).
    fn start_query(
        &mut self,
        cmd: QueryCommand,
        reply: Option<Reply<Option<CameraConfig>>>,
        charge: bool,
    ) {
        let models = self.camera_env.models.clone();
        let change = match self.control.plan(&cmd, &models) {
            Ok(Some(change)) => change,
            Ok(None) => {
                tracing::info!(camera = %cmd.camera, query = %cmd.query, "query unchanged");
                if let Some(reply) = reply {
                    let _ = reply.send(Ok(None));
                }
                return;
            }
            Err(reason) => return self.refuse(&cmd, reply, reason, Counted::Invalid),
        };
        if charge && let Err(reason) = self.control.admit(&cmd.camera, Instant::now()) {
            return self.refuse(&cmd, reply, reason, Counted::Limited);
        }
        if change == QueryEdit::Delete {
            return self.commit(cmd, &change, reply);
        }
        self.busy.insert(cmd.camera.clone(), VecDeque::new());
        self.binder.bind(Bound {
            cmd,
            change,
            reply,
            models,
            result: Ok(()),
        });
    }

    /// A change came back from the binder: saves and applies it (or refuses it),
    /// then serves the camera's changes that waited for it.
    pub(super) fn finish(&mut self, bound: Bound) {
        let camera = bound.cmd.camera.clone();
        let waiting = self.busy.remove(&camera).unwrap_or_default();
        if !Arc::ptr_eq(&bound.models, &self.camera_env.models) {
            // The models were reloaded meanwhile: check and bind it again.
            self.start_query(bound.cmd, bound.reply, false);
        } else {
            match bound.result {
                Ok(()) => self.commit(bound.cmd, &bound.change, bound.reply),
                Err(reason) => self.refuse(&bound.cmd, bound.reply, reason, Counted::Invalid),
            }
        }
        let mut waiting = waiting;
        while let Some(p) = waiting.pop_front() {
            if let Some(queue) = self.busy.get_mut(&camera) {
                queue.push_back(p);
                continue;
            }
            self.start_query(p.cmd, p.reply, true);
        }
    }

    /// Saves an accepted, bound change and hands the camera its new queries.
    fn commit(
        &mut self,
        cmd: QueryCommand,
        change: &QueryEdit,
        reply: Option<Reply<Option<CameraConfig>>>,
    ) {
        let cam = match self.control.commit(&cmd, change) {
            Ok(cam) => cam,
            Err(reason) => return self.refuse(&cmd, reply, reason, Counted::Limited),
        };
        match cam.queries.iter().find(|q| q.id == cmd.query) {
            Some(q) => tracing::info!(
                camera = %cmd.camera,
                query = %cmd.query,
                model = %q.model,
                "query set at runtime ({} on {})",
                q.kind.name(),
                q.model
            ),
            None => tracing::info!(
                camera = %cmd.camera,
                query = %cmd.query,
                "query deleted at runtime"
            ),
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
            static NOT_RUNNING: RateLimits = RateLimits::new();
            if let Some(s) = NOT_RUNNING.allow(&cmd.camera) {
                tracing::warn!(
                    camera = %cmd.camera,
                    query = %cmd.query,
                    suppressed = s.count(),
                    "query change saved, but the camera is not running; it applies at the next \
                     start{s}"
                );
            }
        }
        if let Some(reply) = reply {
            let _ = reply.send(Ok(Some(cam)));
        }
    }

    /// Refuses a change: logged, counted, published on the query's error topic and
    /// answered (HTTP), with the reason on one short line.
    fn refuse(
        &mut self,
        cmd: &QueryCommand,
        reply: Option<Reply<Option<CameraConfig>>>,
        reason: Refusal,
        why: Counted,
    ) {
        let reason = short_reason(&reason.to_string());
        if let Some(s) = self.refusals.allow() {
            tracing::warn!(
                camera = %cut_id(&cmd.camera),
                query = %cut_id(&cmd.query),
                suppressed = s.count(),
                "query change refused: {reason}{s}"
            );
        }
        if let Some(running) = self.cameras.get(&cmd.camera) {
            let m = &running.view.metrics;
            match why {
                Counted::Invalid => m.query_changes_refused.inc(),
                Counted::Limited => m.query_changes_limited.inc(),
            }
        }
        let _ = self.camera_env.tx.blocking_send(Outgoing::Rejected {
            camera: cmd.camera.clone(),
            query: cmd.query.clone(),
            reason: reason.clone(),
        });
        if let Some(reply) = reply {
            let _ = reply.send(Err(reason));
        }
    }

    /// Re-reads the config file and applies what changed (see the module docs).
    fn reload(&mut self) -> Result<String, config::ConfigError> {
        let new = config::load(&self.config.path)?;
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
                .reload(&new.models, &new.engine, self.env, &self.prompts);
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
            tracing::info!(camera = %id, "camera {id}: stopped for the reload ({end:?})");
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
                let remote = match models.get(name).map(|l| l.as_ref()) {
                    Some(crate::model::Loaded::Remote { model }) => {
                        // Weak: the model (kept by whoever holds it) must not keep the
                        // publisher's channel open at shutdown.
                        let tx = self.camera_env.tx.downgrade();
                        let model_name: Arc<str> = Arc::from(name.as_str());
                        let send = move |available| {
                            if let Some(tx) = tx.upgrade() {
                                let _ = tx.blocking_send(Outgoing::Model {
                                    model: model_name.clone(),
                                    available,
                                });
                            }
                        };
                        send(model.metrics().available());
                        model.watch(Box::new(send));
                        Some(model.metrics().clone())
                    }
                    _ => None,
                };
                let view = ModelView {
                    family: cfg.family(),
                    error: models.failed().get(name).cloned(),
                    metrics: models
                        .get(name)
                        .and_then(|l| Some(l.engine()?.metrics.clone())),
                    remote,
                    unreadable: match models.get(name).map(|l| l.as_ref()) {
                        Some(crate::model::Loaded::Qwen2vl { model, .. }) => {
                            Some(model.grounding_counter().clone())
                        }
                        _ => None,
                    },
                };
                (name.clone(), view)
            })
            .collect::<BTreeMap<String, ModelView>>();
        // A served model the new config no longer has: its retained status goes.
        let gone: Vec<String> = self
            .shared
            .models()
            .iter()
            .filter(|(name, old)| {
                old.remote.is_some() && views.get(*name).is_none_or(|v| v.remote.is_none())
            })
            .map(|(name, _)| name.clone())
            .collect();
        for model in gone {
            let _ = self.camera_env.tx.blocking_send(Outgoing::ModelRemoved {
                model: Arc::from(model.as_str()),
            });
        }
        self.shared.set_models(views);
    }

    /// One line for systemd's `STATUS=`.
    pub(super) fn status(&self) -> String {
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
    pub(super) fn reap(&mut self) -> bool {
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
    pub(super) fn stop_all(mut self) -> usize {
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
            end => tracing::info!(camera = %id, "camera {id}: {end:?}"),
        }
    }
}

/// An id from a topic or a URL path, cut for the log.
fn cut_id(id: &str) -> String {
    // Control characters (a NUL or a newline in a topic or a percent-escaped path)
    // would forge or split log lines: they are written escaped.
    let mut out: String = id
        .chars()
        .take(64)
        .flat_map(|c| {
            let escaped = c.is_control().then(|| c.escape_default().to_string());
            escaped
                .unwrap_or_else(|| c.to_string())
                .chars()
                .collect::<Vec<_>>()
        })
        .collect();
    if id.chars().nth(64).is_some() {
        out.push('…');
    }
    out
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

#[cfg(test)]
mod tests {
    #[test]
    fn ids_in_log_lines_cannot_split_or_forge_them() {
        assert_eq!(super::cut_id("door"), "door");
        assert_eq!(super::cut_id("a\nb\0c"), "a\\nb\\u{0}c");
        let long = "x".repeat(100);
        assert_eq!(super::cut_id(&long), format!("{}…", "x".repeat(64)));
    }
}
