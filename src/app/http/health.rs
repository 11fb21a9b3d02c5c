//! `/healthz`: healthy when every running camera delivered a frame within its
//! `frame_timeout`, the broker (when there is one) is connected and every configured
//! model loaded, and no watched loop (evaluator, slow lane, publisher,
//! supervisor) has stalled. A camera whose file played out is `ended`, not unhealthy.

use std::sync::atomic::Ordering;

use serde_json::{Map, Value, json};

use crate::app::status::Status;

/// The verdict and the JSON body that explains it.
pub struct Health {
    /// Whether every camera and the broker are well (HTTP 200, else 503).
    pub healthy: bool,
    /// The JSON body: the daemon's, each camera's and the broker's state.
    pub body: Value,
}

/// The health of the daemon as `status` shows it now.
pub fn health(shared: &Status) -> Health {
    let mut problems: Vec<String> = Vec::new();
    let mut cameras = Map::new();
    for (id, view) in shared.cameras().iter() {
        let ended = view.ended.load(Ordering::Relaxed);
        let frames = view.progress.frames.load(Ordering::Relaxed);
        let age = view.progress.frame_age();
        let status = if ended { "ended" } else { view.status.name() };
        if !ended && age > view.config.frame_timeout {
            problems.push(if frames == 0 {
                format!("camera {id}: no frame yet after {:.1} s", age.as_secs_f64())
            } else {
                format!("camera {id}: no frame for {:.1} s", age.as_secs_f64())
            });
        }
        cameras.insert(
            id.clone(),
            json!({
                "status": status,
                "frames": frames,
                "frame_age_s": (frames > 0).then_some(age.as_secs_f64()),
            }),
        );
    }
    let broker = shared.publisher.as_ref().map(|p| {
        if !p.connected() {
            problems.push("broker: not connected".into());
        }
        json!({
            "connected": p.connected(),
            "queued": p.queued(),
            "oldest_queued_s": p.oldest_age().map(|a| a.as_secs_f64()),
        })
    });
    let mut models = Map::new();
    for (name, m) in shared.models().iter() {
        if let Some(e) = &m.error {
            problems.push(format!("model {name}: {e}"));
        }
        let mut view = json!({"family": m.family, "loaded": m.error.is_none(), "error": m.error});
        if let Some(r) = &m.remote {
            if !r.available() {
                problems.push(format!(
                    "model {name}: unavailable (its server failed {} calls; probing it again)",
                    r.failures.get()
                ));
            }
            view["available"] = json!(r.available());
        }
        models.insert(name.clone(), view);
    }
    let stalls = shared.watchdog.stalls();
    problems.extend(stalls.iter().map(|s| s.to_string()));
    let healthy = problems.is_empty();
    Health {
        healthy,
        body: json!({
            "status": if healthy { "ok" } else { "unhealthy" },
            "problems": problems,
            "uptime_s": shared.started.elapsed().as_secs(),
            "cameras": cameras,
            "broker": broker,
            "models": models,
        }),
    }
}
