//! The teach routes: a taught query's examples (list, label, forget, their crops)
//! and a camera's review items (uncertain answers waiting for a label). Behind the
//! same Host/Origin check and bearer token as every other route; a label goes to
//! the daemon's teacher, the same queue as MQTT's `.../label`.
//!
//! ```text
//! curl -X POST localhost:9380/api/cameras/door/queries/open/examples -d '{"state":"ON"}'
//! curl -X POST 'localhost:9380/api/cameras/door/queries/open/examples?state=OFF' -H 'Content-Type: image/jpeg' --data-binary @shut.jpg
//! curl localhost:9380/api/cameras/door/review
//! curl -X POST localhost:9380/api/cameras/door/queries/open/examples -d '{"state":"OFF","review":"r-..."}'
//! curl -X DELETE localhost:9380/api/cameras/door/queries/open/examples/20261203T101500.123Z-0
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use serde_json::{Value, json};

use super::reply::{Ids, body_within, error};
use crate::app::status::Status;
use crate::app::teacher::Job;
use crate::kit::LabelCommand;
use crate::teach::{Example, Lesson, MAX_LABEL_BYTES, Source, TeachError};

/// The most bytes an uploaded picture may have (a label alone: `MAX_LABEL_BYTES`).
pub(super) const MAX_PICTURE_BYTES: usize = 8 << 20;

/// How long a label may wait for the teacher before the request gives up.
const LABEL_WITHIN: Duration = Duration::from_secs(30);

pub(super) fn routes() -> Router<Arc<Status>> {
    Router::new()
        .route(
            "/api/cameras/{camera}/queries/{query}/examples",
            get(list)
                .post(label)
                .layer(DefaultBodyLimit::max(MAX_PICTURE_BYTES)),
        )
        .route(
            "/api/cameras/{camera}/queries/{query}/examples/{id}",
            axum::routing::delete(forget),
        )
        .route(
            "/api/cameras/{camera}/queries/{query}/examples/{id}/image.jpg",
            get(example_image),
        )
        .route("/api/cameras/{camera}/review", get(review))
        .route(
            "/api/cameras/{camera}/review/{id}/image.jpg",
            get(review_image),
        )
}

/// An example as the API shows it (its embedding left out).
fn shown(ex: &Example) -> Value {
    json!({
        "id": ex.id, "state": ex.state, "time": ex.time, "source": ex.source, "by": ex.by,
        "media": ex.media, "region": ex.region,
    })
}

fn summary(lesson: &Lesson) -> Value {
    json!(*lesson.trained().summary)
}

/// The HTTP status of a teach error.
fn status_of(e: &TeachError) -> StatusCode {
    match e {
        TeachError::NotTaught { .. }
        | TeachError::NoExample { .. }
        | TeachError::NoReview { .. }
        | TeachError::NoEvent { .. } => StatusCode::NOT_FOUND,
        TeachError::UnknownState { .. }
        | TeachError::Label(_)
        | TeachError::Image { .. }
        | TeachError::NotTeachable { .. } => StatusCode::BAD_REQUEST,
        TeachError::Full { .. } | TeachError::NoFrame { .. } => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

fn refused(e: &TeachError) -> Response {
    error(status_of(e), e.to_string())
}

async fn list(
    State(shared): State<Arc<Status>>,
    Ids((camera, query)): Ids<(String, String)>,
) -> Response {
    match shared.lessons.lesson_of(&camera, &query) {
        Ok(lesson) => {
            let examples: Vec<Value> = lesson.examples().iter().map(shown).collect();
            Json(json!({
                "camera": camera, "query": query, "summary": summary(&lesson),
                "states": lesson.spec().states, "examples": examples,
            }))
            .into_response()
        }
        Err(e) => refused(&e),
    }
}

/// The state of an uploaded picture: `?state=ON` (letters, digits, `_-.` and `%20`).
fn state_param(uri: &Uri) -> Option<String> {
    let q = uri.query()?;
    let raw = q.split('&').find_map(|kv| kv.strip_prefix("state="))?;
    Some(raw.replace("%20", " ").replace('+', " "))
}

async fn label(
    State(shared): State<Arc<Status>>,
    Ids((camera, query)): Ids<(String, String)>,
    uri: Uri,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body_within(body, || {
        format!("the body is larger than {MAX_PICTURE_BYTES} bytes, the most a picture may have")
    }) {
        Ok(body) => body,
        Err(res) => return *res,
    };
    let picture = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("image/"));
    let (payload, picture) = if picture {
        let Some(state) = state_param(&uri) else {
            return error(
                StatusCode::BAD_REQUEST,
                "an uploaded picture needs its state: POST .../examples?state=ON".into(),
            );
        };
        (state.into_bytes(), Some(body.to_vec()))
    } else if body.len() > MAX_LABEL_BYTES {
        return error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("the label is larger than {MAX_LABEL_BYTES} bytes"),
        );
    } else {
        (body.to_vec(), None)
    };
    let Some(teacher) = &shared.teacher else {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "this daemon takes no labels".into(),
        );
    };
    let (reply, answer) = tokio::sync::oneshot::channel();
    let job = Job {
        cmd: LabelCommand {
            camera: camera.clone(),
            query: query.clone(),
            payload,
        },
        source: Source::Http,
        picture,
        reply: Some(reply),
    };
    if teacher.send(job).is_err() {
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many labels at once; try again".into(),
        );
    }
    match tokio::time::timeout(LABEL_WITHIN, answer).await {
        Ok(Ok(Ok(ex))) => {
            let summary = shared
                .lessons
                .find(&camera, &query)
                .map(|l| summary(&l))
                .unwrap_or(Value::Null);
            let body = json!({"camera": camera, "query": query, "example": shown(&ex), "summary": summary});
            (StatusCode::CREATED, Json(body)).into_response()
        }
        Ok(Ok(Err(e))) => refused(&e),
        Ok(Err(_)) => error(
            StatusCode::SERVICE_UNAVAILABLE,
            "the daemon is stopping".into(),
        ),
        Err(_) => error(
            StatusCode::GATEWAY_TIMEOUT,
            "the label was not applied within 30 s".into(),
        ),
    }
}

async fn forget(
    State(shared): State<Arc<Status>>,
    Ids((camera, query, id)): Ids<(String, String, String)>,
) -> Response {
    let lessons = shared.lessons.clone();
    let (c, q, i) = (camera.clone(), query.clone(), id.clone());
    let done = tokio::task::spawn_blocking(move || {
        lessons.forget(&c, &q, &i)?;
        lessons.lesson_of(&c, &q)
    })
    .await;
    match done {
        Ok(Ok(lesson)) => Json(json!({
            "camera": camera, "query": query, "forgot": id, "summary": summary(&lesson),
        }))
        .into_response(),
        Ok(Err(e)) => refused(&e),
        Err(_) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "forgetting the example failed".into(),
        ),
    }
}

fn jpeg(bytes: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    (headers, bytes).into_response()
}

async fn example_image(
    State(shared): State<Arc<Status>>,
    Ids((camera, query, id)): Ids<(String, String, String)>,
) -> Response {
    let lesson = match shared.lessons.lesson_of(&camera, &query) {
        Ok(l) => l,
        Err(e) => return refused(&e),
    };
    let known = lesson.examples().iter().any(|e| e.id == id);
    let wanted = id.clone();
    let picture =
        tokio::task::spawn_blocking(move || known.then(|| lesson.jpeg(&wanted)).flatten())
            .await
            .ok()
            .flatten();
    match picture {
        Some(bytes) => jpeg(bytes),
        None => refused(&TeachError::NoExample {
            camera,
            query,
            id: crate::kit::shown(&id).to_string(),
        }),
    }
}

async fn review(State(shared): State<Arc<Status>>, Ids(camera): Ids<String>) -> Response {
    if !shared.cameras().contains_key(&camera) {
        return error(StatusCode::NOT_FOUND, format!("no camera {camera:?}"));
    }
    let items = shared.lessons.reviews(&camera);
    Json(json!({"camera": camera, "review": items})).into_response()
}

async fn review_image(
    State(shared): State<Arc<Status>>,
    Ids((camera, id)): Ids<(String, String)>,
) -> Response {
    match shared.lessons.review(&camera, &id) {
        Some(item) => jpeg(item.jpeg.to_vec()),
        None => refused(&TeachError::NoReview {
            camera,
            id: crate::kit::shown(&id).to_string(),
        }),
    }
}
