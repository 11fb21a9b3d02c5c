//! `GET /api/system`: what the system page shows — each model with the execution
//! provider each of its sessions runs on, each camera's rates and counters, the
//! broker's connection and outbox, the live tiles, and the health verdict. Read from
//! the same status `/metrics` and `/healthz` read.
//!
//! ```text
//! curl -s 127.0.0.1:9380/api/system | jq '.cameras[] | {id, fps}'
//! ```

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::extract::State;
use axum::response::Json;
use serde_json::{Value, json};

use super::health;
use crate::app::status::Status;

/// When a camera's counters were read, and its decoded and evaluated frames then.
type Reading = (Instant, u64, u64);

/// Each camera's counters at the previous request, for its rates.
static LAST: Mutex<Option<HashMap<String, Reading>>> = Mutex::new(None);

pub(super) async fn system(State(shared): State<Arc<Status>>) -> Json<Value> {
    let h = health(&shared);
    let providers = crate::engine::chosen_providers();
    let models: Vec<Value> = shared
        .models()
        .iter()
        .map(|(name, m)| {
            let on: Vec<Value> = providers
                .iter()
                .filter(|(model, _, _)| model == name)
                .map(|(_, file, provider)| json!({"file": file, "provider": provider}))
                .collect();
            let state = match (&m.error, &m.remote) {
                (Some(_), _) => "failed",
                (None, Some(r)) if !r.available() => "unavailable",
                _ => "loaded",
            };
            let mut v = json!({
                "name": name, "family": m.family, "state": state, "error": m.error,
                "providers": on,
            });
            if let Some(e) = &m.metrics {
                v["runs"] = json!(e.runs.get());
                v["run_p50_ms"] = json!(e.run.quantile_ms(0.5));
            }
            if let Some(r) = &m.remote {
                v["requests"] = json!(r.requests.get());
                v["failures"] = json!(r.failures.get());
            }
            v
        })
        .collect();
    let now = Instant::now();
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    let last = last.get_or_insert_with(HashMap::new);
    // Cameras a reload removed leave no reading behind.
    last.retain(|id, _| shared.cameras().contains_key(id));
    let cameras: Vec<Value> = shared
        .cameras()
        .iter()
        .map(|(id, v)| {
            let m = &v.metrics;
            let (decoded, evaluated) = (m.decoded.get(), m.evaluated.get());
            let rate = |then: u64, now_n: u64, secs: f64| {
                (secs > 0.0).then(|| now_n.saturating_sub(then) as f64 / secs)
            };
            let (fps, eval_fps) = match last.insert(id.clone(), (now, decoded, evaluated)) {
                Some((t, d, e)) => {
                    let secs = now.duration_since(t).as_secs_f64();
                    (rate(d, decoded, secs), rate(e, evaluated, secs))
                }
                None => (None, None),
            };
            let frames = v.progress.frames.load(Ordering::Relaxed);
            json!({
                "id": id, "name": v.config.name,
                "status": if v.ended.load(Ordering::Relaxed) { "ended" } else { v.status.name() },
                "fps": fps, "evaluated_fps": eval_fps,
                "decoded": decoded, "sampled": m.sampled.get(), "unchanged": m.unchanged.get(),
                "encoded": m.encoded.get(), "evaluated": evaluated, "dropped": m.dropped.get(),
                "frames": frames,
                "frame_age_s": (frames > 0).then(|| v.progress.frame_age().as_secs_f64()),
                "latency_p50_ms": m.latency.quantile_ms(0.5),
                "queries": v.config.queries.len(),
            })
        })
        .collect();
    let mqtt = shared.publisher.as_ref().map(|p| {
        json!({
            "connected": p.connected(), "queued": p.queued(),
            "oldest_s": p.oldest_age().map(|a| a.as_secs_f64()), "dropped": p.dropped(),
            "reconnects": p.reconnects(), "events_raised": p.events_raised(),
            "events_acknowledged": p.events_acknowledged(),
        })
    });
    let web = shared.web.as_ref().map(|w| {
        let (watched, dropped) = w.tiles.counts();
        json!({
            "pages": w.hub.pages(), "tiles_watched": watched, "tiles_encoded": w.tiles.encoded.get(),
            "tile_encode_ms": w.tiles.encode_us.get() as f64 / 1000.0, "tiles_dropped": dropped,
        })
    });
    Json(json!({
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_s": shared.started.elapsed().as_secs(),
        "healthy": h.healthy,
        "health": h.body,
        "models": models,
        "cameras": cameras,
        "mqtt": mqtt,
        "web": web,
    }))
}
