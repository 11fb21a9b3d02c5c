//! The routes of the HTTP endpoints, their Host/Origin check (`guard`) and their
//! bearer-token check.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::guard::Guard;
use super::reply::{Ids, error};
use super::{health, render};
use crate::app::control;
use crate::app::control::limits::MAX_SPEC_BYTES;
use crate::app::status::Status;
use crate::kit::QueryCommand;

/// How long a change may wait for the daemon before the request gives up.
const ANSWER_WITHIN: Duration = Duration::from_secs(60);

pub(super) fn router(shared: Arc<Status>, token: Option<String>, guard: Guard) -> Router {
    let token = token.map(Arc::<str>::from);
    let guard = Arc::new(guard);
    Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .route("/api/cameras", get(cameras))
        .route("/api/cameras/{id}/snapshot.jpg", get(snapshot))
        .route("/api/queries", get(queries))
        .route(
            "/api/queries/{camera}/{query}",
            put(set_query)
                .delete(delete_query)
                .layer(DefaultBodyLimit::max(MAX_SPEC_BYTES)),
        )
        .route("/api/reload", post(reload))
        .merge(super::teach::routes())
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let (token, guard) = (token.clone(), guard.clone());
            async move {
                if let Err(refused) = guard.check(req.method(), req.uri(), req.headers()) {
                    return refused.into_response();
                }
                authorize(token.as_deref(), req, next).await
            }
        }))
        .with_state(shared)
}

/// With a token configured, every request must carry `Authorization: Bearer TOKEN`.
async fn authorize(token: Option<&str>, req: Request, next: Next) -> Response {
    if let Some(token) = token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if !given.is_some_and(|g| same(g.as_bytes(), token.as_bytes())) {
            let mut res = (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "a valid bearer token is required"})),
            )
                .into_response();
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return res;
        }
    }
    next.run(req).await
}

/// Compares in time that depends on the length only, not on where they differ.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn healthz(State(shared): State<Arc<Status>>) -> Response {
    let h = health(&shared);
    let code = if h.healthy {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (code, Json(h.body)).into_response()
}

async fn metrics(State(shared): State<Arc<Status>>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
    );
    (headers, render(&shared)).into_response()
}

async fn cameras(State(shared): State<Arc<Status>>) -> Json<Value> {
    let list: Vec<Value> = shared
        .cameras()
        .iter()
        .map(|(id, v)| {
            json!({
                "id": id,
                "name": v.config.name,
                "url": crate::source::redact(&v.config.url),
                "status": if v.ended.load(std::sync::atomic::Ordering::Relaxed) { "ended" } else { v.status.name() },
                "frames": v.progress.frames.load(std::sync::atomic::Ordering::Relaxed),
                "queries": v.config.queries.iter().map(|q| q.id.as_str()).collect::<Vec<_>>(),
            })
        })
        .collect();
    Json(json!({ "cameras": list }))
}

async fn snapshot(State(shared): State<Arc<Status>>, Ids(id): Ids<String>) -> Response {
    match shared.snapshot(&id) {
        Some(jpeg) => {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
            (headers, jpeg.to_vec()).into_response()
        }
        None if shared.cameras().contains_key(&id) => error(
            StatusCode::NOT_FOUND,
            format!("camera {id} has no snapshot yet"),
        ),
        None => error(StatusCode::NOT_FOUND, format!("no camera {id:?}")),
    }
}

async fn queries(State(shared): State<Arc<Status>>) -> Json<Value> {
    let map: serde_json::Map<String, Value> = shared
        .cameras()
        .iter()
        .map(|(id, v)| (id.clone(), json!(v.config.queries)))
        .collect();
    Json(json!({ "cameras": map }))
}

async fn set_query(
    State(shared): State<Arc<Status>>,
    Ids((camera, query)): Ids<(String, String)>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    // A body over the limit is refused before it is read whole.
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return error(
                e.status(),
                format!(
                    "the spec is larger than {MAX_SPEC_BYTES} bytes, the most a query spec may have"
                ),
            );
        }
        Err(e) => return error(e.status(), e.body_text()),
    };
    if body.iter().all(u8::is_ascii_whitespace) {
        return error(
            StatusCode::BAD_REQUEST,
            "the body must be a query spec (DELETE removes a query)".into(),
        );
    }
    change_query(&shared, camera, query, body.to_vec()).await
}

async fn delete_query(
    State(shared): State<Arc<Status>>,
    Ids((camera, query)): Ids<(String, String)>,
) -> Response {
    change_query(&shared, camera, query, Vec::new()).await
}

async fn change_query(
    shared: &Status,
    camera: String,
    query: String,
    payload: Vec<u8>,
) -> Response {
    if !shared.cameras().contains_key(&camera) {
        return error(StatusCode::NOT_FOUND, format!("no camera {camera:?}"));
    }
    let (reply, answer) = tokio::sync::oneshot::channel();
    let cmd = QueryCommand {
        camera: camera.clone(),
        query: query.clone(),
        payload,
    };
    let request = control::Request::Query {
        cmd,
        reply: Some(reply),
    };
    match ask(shared, request, answer).await {
        Ok(Ok(Some(cam))) => {
            let q = cam.queries.iter().find(|q| q.id == query);
            Json(json!({"camera": camera, "query": query, "config": q, "deleted": q.is_none()}))
                .into_response()
        }
        Ok(Ok(None)) => {
            Json(json!({"camera": camera, "query": query, "unchanged": true})).into_response()
        }
        Ok(Err(reason)) => error(StatusCode::BAD_REQUEST, reason),
        Err(res) => res,
    }
}

async fn reload(State(shared): State<Arc<Status>>) -> Response {
    let (reply, answer) = tokio::sync::oneshot::channel();
    match ask(
        &shared,
        control::Request::Reload { reply: Some(reply) },
        answer,
    )
    .await
    {
        Ok(Ok(summary)) => Json(json!({ "reloaded": summary })).into_response(),
        Ok(Err(reason)) => error(StatusCode::BAD_REQUEST, reason),
        Err(res) => res,
    }
}

/// Hands `request` to the daemon's supervisor and waits for its answer.
async fn ask<T>(
    shared: &Status,
    request: control::Request,
    answer: tokio::sync::oneshot::Receiver<Result<T, String>>,
) -> Result<Result<T, String>, Response> {
    if shared.requests.try_send(request).is_err() {
        return Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is busy or stopping; try again".into(),
        ));
    }
    match tokio::time::timeout(ANSWER_WITHIN, answer).await {
        Ok(Ok(result)) => Ok(result),
        Ok(Err(_)) => Err(error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping".into(),
        )),
        Err(_) => Err(error(
            StatusCode::GATEWAY_TIMEOUT,
            "no answer from the daemon within 60 s".into(),
        )),
    }
}
