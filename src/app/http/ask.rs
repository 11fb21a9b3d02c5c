//! `POST /api/cameras/<cam>/ask`: a one-shot question on the camera's current frame
//! with any loaded model — a query spec (as for `PUT /api/queries/...`), checked as a
//! runtime change is, answered once by a fresh evaluator on a copy of the frame, off
//! the camera's own evaluator. The answer comes with the frame it was asked on, its
//! boxes and the time each step took: how a user tries a question before making it
//! a standing one.
//!
//! ```text
//! curl -s -X POST 127.0.0.1:9380/api/cameras/door/ask \
//!      -d '{"ask":"a person?","kind":"yes_no","model":"coco","label":"person"}'
//! ```

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use base64::Engine as _;
use serde_json::{Value, json};

use super::daemon::ask_daemon;
use super::live::web;
use super::reply::{Ids, error, spec_body};
use crate::app::control;
use crate::app::status::Status;
use crate::app::web::jpeg_of;
use crate::cache::EmbeddingCache;
use crate::eval::{CameraWorker, WorkerContext};
use crate::kit::metrics::CameraMetrics;
use crate::kit::{Frame, PixelFormat, Pixels, QueryCommand, Sample};
use crate::model::Registry;
use crate::query::{FrameReport, QueryConfig};
use crate::source::CameraConfig;

/// How long a question waits for the camera's next frame.
const FRAME_WITHIN: Duration = Duration::from_secs(5);
/// The answer's picture: long side and JPEG quality.
const PICTURE_SIDE: u32 = 960;
const PICTURE_QUALITY: u8 = 85;

pub(super) async fn ask(
    State(shared): State<Arc<Status>>,
    Ids(camera): Ids<String>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match spec_body(body) {
        Ok(body) => body,
        Err(res) => return *res,
    };
    let web = match web(&shared) {
        Ok(w) => w.clone(),
        Err(res) => return *res,
    };
    let Some(view) = shared.cameras().get(&camera).cloned() else {
        return error(StatusCode::NOT_FOUND, format!("no camera {camera:?}"));
    };
    let id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("id")?.as_str().map(str::to_string))
        .unwrap_or_else(|| "ask".to_string());
    let (reply, answer) = tokio::sync::oneshot::channel();
    let request = control::Request::Check {
        cmd: QueryCommand {
            camera: camera.clone(),
            query: id,
            payload: body.to_vec(),
        },
        reply,
    };
    let (query, models) = match ask_daemon(&shared, request, answer).await {
        Ok(Ok(checked)) => checked,
        Ok(Err(reason)) => return error(StatusCode::BAD_REQUEST, reason),
        Err(res) => return res,
    };
    // The camera's next frame with pixels, copied for this question.
    let tile = web.tiles.tile(&camera);
    let before = tile.frame.copies();
    tile.frame.want();
    view.progress.tuning.refresh();
    let deadline = Instant::now() + FRAME_WITHIN;
    while tile.frame.copies() == before && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let Some(frame) = tile.frame.with(|f| f.copy_into(Vec::new())) else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "camera {camera} delivered no frame within {} s",
                FRAME_WITHIN.as_secs()
            ),
        );
    };
    let lessons = shared.lessons.clone();
    let cam = view.config.clone();
    let done =
        tokio::task::spawn_blocking(move || answer_once(cam, query, &models, lessons, frame)).await;
    match done {
        Ok(Ok(body)) => Json(body).into_response(),
        Ok(Err(reason)) => error(StatusCode::BAD_REQUEST, reason),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "answering the question failed (see the daemon's log)".into(),
        ),
    }
}

/// `frame` as packed RGB, for a model that needs it when the camera delivers I420.
fn rgb_frame(frame: &Frame) -> Result<Frame, String> {
    let mut rgb = Vec::new();
    crate::snapshot::to_rgb(frame, &mut rgb)
        .map_err(|e| format!("the camera's frame cannot be read as RGB: {e}"))?;
    let mut out = Frame::from_rgb(frame.width, frame.height, frame.width as usize * 3, rgb);
    out.seq = frame.seq;
    out.pts = frame.pts;
    out.captured = frame.captured;
    out.decoded_at = frame.decoded_at;
    Ok(out)
}

fn ms(d: Duration) -> f64 {
    (d.as_secs_f64() * 1e5).round() / 100.0
}

/// Answers `query` once on `frame` with a fresh evaluator of camera `cam`.
fn answer_once(
    mut cam: CameraConfig,
    mut query: QueryConfig,
    models: &Registry,
    lessons: Arc<crate::teach::Lessons>,
    frame: Frame,
) -> Result<Value, String> {
    // A question asked once files no review item and escalates nothing.
    query.review_below = None;
    query.escalate = None;
    cam.queries = vec![query.clone()];
    let metrics = Arc::new(CameraMetrics::default());
    let ctx = WorkerContext {
        cache: Arc::new(EmbeddingCache::new(0)),
        metrics: metrics.clone(),
        lessons,
    };
    let t0 = Instant::now();
    let mut worker = CameraWorker::new(&cam, models, ctx);
    if worker.failed_queries() > 0 {
        return Err(format!(
            "query {} cannot run on model {} (the daemon's log says why)",
            query.id, query.model
        ));
    }
    let prepared = t0.elapsed();
    let frame = match (worker.pixels(), frame.format) {
        (Pixels::Rgb, PixelFormat::I420(_)) => rgb_frame(&frame)?,
        _ => frame,
    };
    let picture = jpeg_of(&frame, PICTURE_SIDE, PICTURE_QUALITY).map(|j| {
        format!(
            "data:image/jpeg;base64,{}",
            base64::engine::general_purpose::STANDARD.encode(j)
        )
    });
    let (seq, width, height, time) = (frame.seq, frame.width, frame.height, frame.captured);
    let mut report = FrameReport::new(worker.camera().clone());
    let t1 = Instant::now();
    worker.evaluate(&Sample::Frame(frame), &mut report);
    let answered = t1.elapsed();
    let q = report.queries.iter().find(|e| *e.id == *query.id);
    let answer = q.map(|e| {
        let mut a = json!({
            "state": e.state.as_ref().map(|s| s.to_string()), "score": e.score,
            "confidence": e.confidence, "model": e.model, "kind": e.kind,
        });
        if let Some(crate::query::Answer::Text(t)) = &e.state {
            a["text"] = json!(t);
        }
        a
    });
    Ok(json!({
        "camera": cam.id,
        "query": query,
        "answer": answer,
        "detections": report.detections,
        "captions": report.captions,
        "errors": report.errors,
        "timings": {
            "total_ms": ms(prepared + answered),
            "prepare_ms": ms(prepared),
            "answer_ms": ms(answered),
            "preprocess_ms": ms(metrics.preprocess.sum()),
            "infer_ms": ms(metrics.infer.sum()),
            "postprocess_ms": ms(metrics.postprocess.sum()),
            "slow_ms": ms(metrics.slow_query.sum()),
        },
        "frame": {
            "seq": seq, "width": width, "height": height,
            "time": humantime::format_rfc3339_millis(time).to_string(),
        },
        "image": picture,
    }))
}
