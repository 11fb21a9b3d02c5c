//! The routes of the HTTP endpoints and the web interface, their Host/Origin check
//! (`guard`) and their authorisation (`session`: the bearer token or a browser
//! session).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::{get, post, put};
use serde_json::{Value, json};

use super::daemon::ask_daemon;
use super::guard::Guard;
use super::reply::{Ids, error, spec_body};
use super::session::{self, Sessions};
use super::{health, render};
use crate::app::control;
use crate::app::control::limits::MAX_SPEC_BYTES;
use crate::app::status::Status;
use crate::kit::QueryCommand;

pub(super) fn router(shared: Arc<Status>, sessions: Arc<Sessions>, guard: Guard) -> Router {
    let guard = Arc::new(guard);
    let keys = sessions.clone();
    let ui = shared.web.as_ref().is_some_and(|w| w.cfg.enabled);
    let pages = if ui {
        super::ui::routes()
    } else {
        Router::new()
    };
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
        .route("/api/system", get(super::system::system))
        .route(
            "/api/cameras/{camera}/ask",
            post(super::ask::ask).layer(DefaultBodyLimit::max(MAX_SPEC_BYTES)),
        )
        .merge(super::teach::routes())
        .merge(super::live::routes())
        .merge(pages)
        .layer(Extension(sessions))
        .layer(middleware::from_fn(move |req: Request, next: Next| {
            let (keys, guard) = (keys.clone(), guard.clone());
            async move {
                if let Err(refused) = guard.check(req.method(), req.uri(), req.headers()) {
                    return refused.into_response();
                }
                authorize(&keys, ui, req, next).await
            }
        }))
        .with_state(shared)
}

/// Lets the request through when it is authorised (see `session`): the bearer token
/// or a session (with its CSRF token on changes), or no token configured. The login
/// form and its stylesheet answer everyone; a page asked for without a session is
/// redirected to the login form.
async fn authorize(sessions: &Sessions, ui: bool, mut req: Request, next: Next) -> Response {
    let (method, path) = (req.method().clone(), req.uri().path().to_string());
    match sessions.access(req.headers()) {
        Some(access) => {
            if !session::csrf_ok(&access, &method, req.headers()) {
                return session::no_csrf();
            }
            req.extensions_mut().insert(access);
            next.run(req).await
        }
        None if ui && super::ui::public(&method, &path) => next.run(req).await,
        None if ui && super::ui::is_page(&method, &path) => super::ui::to_login(req.uri()),
        None => session::unauthorised(),
    }
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
    let body = match spec_body(body) {
        Ok(body) => body,
        Err(res) => return *res,
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
    match ask_daemon(shared, request, answer).await {
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
    match ask_daemon(
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
