//! The web interface's live routes: the session's facts (`GET /api/session`), the
//! live stream (`GET /api/live`, Server-Sent Events), a camera's live picture
//! (`GET /api/cameras/<cam>/live.jpg`), a query's score history and the latest
//! events with their pictures.
//!
//! ```text
//! curl -N 127.0.0.1:9380/api/live            # event: mqtt / event: frame, as they happen
//! curl -o door.jpg '127.0.0.1:9380/api/cameras/door/live.jpg'
//! curl '127.0.0.1:9380/api/events?camera=door&limit=20'
//! ```

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use futures_util::StreamExt;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use super::reply::{Ids, error};
use super::session::Access;
use crate::app::status::Status;
use crate::app::web::{LiveEvent, Web};

/// How long one picture request keeps its camera watched: a tile asks again well
/// within it, and a closed page stops the copying this long after.
const LEASE: Duration = Duration::from_secs(3);

/// How long a request for a camera's first picture waits for it.
const FIRST_PICTURE_WITHIN: Duration = Duration::from_secs(3);

pub(super) fn routes() -> Router<Arc<Status>> {
    Router::new()
        .route("/api/session", get(session))
        .route("/api/live", get(live))
        .route("/api/cameras/{camera}/live.jpg", get(picture))
        .route(
            "/api/cameras/{camera}/queries/{query}/history",
            get(history),
        )
        .route("/api/events", get(events))
        .route("/api/events/{id}/image.jpg", get(event_image))
}

/// The daemon's web parts, or the 404 that says they are off (boxed: a response is large).
pub(super) fn web(shared: &Status) -> Result<&Arc<Web>, Box<Response>> {
    shared.web.as_ref().ok_or_else(|| {
        Box::new(error(
            StatusCode::NOT_FOUND,
            "the web interface's live parts are off in this daemon".into(),
        ))
    })
}

async fn session(
    State(shared): State<Arc<Status>>,
    access: Option<axum::Extension<Access>>,
) -> Response {
    let access = access.map_or(Access::Open, |a| a.0);
    let csrf = match &access {
        Access::Session { csrf } => Some(csrf.to_string()),
        _ => None,
    };
    let (prefix, fps) = shared
        .web
        .as_ref()
        .map_or(("ocellus", 2.0), |w| (w.prefix.as_str(), w.cfg.tile_fps));
    Json(json!({
        "auth": access.name(), "csrf": csrf, "prefix": prefix, "tile_fps": fps,
        "version": env!("CARGO_PKG_VERSION"),
    }))
    .into_response()
}

fn sse(e: &LiveEvent) -> Result<Event, Infallible> {
    Ok(Event::default().event(e.name).data(&e.data))
}

async fn live(State(shared): State<Arc<Status>>) -> Response {
    let web = match web(&shared) {
        Ok(w) => w,
        Err(res) => return *res,
    };
    // Subscribed before the retained ones are read: nothing falls in between (a
    // retained message may come twice, which a page takes as it is).
    let rx = web.hub.subscribe();
    let first: Vec<Result<Event, Infallible>> = web.hub.retained().iter().map(|e| sse(e)).collect();
    let rest = futures_util::stream::unfold(rx, |mut rx| async move {
        match rx.recv().await {
            Ok(e) => Some((sse(&e), rx)),
            // A page that fell behind is told, and reloads its state.
            Err(RecvError::Lagged(n)) => {
                let e = LiveEvent {
                    name: "lagged",
                    data: json!({ "missed": n }).to_string(),
                };
                Some((sse(&e), rx))
            }
            Err(RecvError::Closed) => None,
        }
    });
    Sse::new(futures_util::stream::iter(first).chain(rest))
        .keep_alive(KeepAlive::default())
        .into_response()
}

fn jpeg(bytes: Arc<[u8]>, seq: Option<u64>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("image/jpeg"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    if let Some(seq) = seq
        && let Ok(v) = HeaderValue::from_str(&seq.to_string())
    {
        headers.insert("x-frame-seq", v);
    }
    (headers, bytes.to_vec()).into_response()
}

#[derive(Deserialize)]
struct After {
    /// The sequence number of the picture the tile shows.
    after: Option<u64>,
}

/// The camera's latest picture; `204` when it is the one the tile shows already
/// (`?after=<its x-frame-seq>`) or when the camera has delivered no frame yet. Each request keeps the camera watched for [`LEASE`].
async fn picture(
    State(shared): State<Arc<Status>>,
    Ids(camera): Ids<String>,
    Query(after): Query<After>,
) -> Response {
    let web = match web(&shared) {
        Ok(w) => w.clone(),
        Err(res) => return *res,
    };
    let progress = match shared.cameras().get(&camera) {
        Some(view) => view.progress.clone(),
        None => return error(StatusCode::NOT_FOUND, format!("no camera {camera:?}")),
    };
    let tile = web.tiles.tile(&camera);
    let was_watched = tile.frame.watched();
    tile.frame.lease(LEASE);
    let mut pictures = tile.pictures();
    let current = pictures.borrow_and_update().clone();
    if was_watched && let Some(p) = current {
        return if after.after.is_some_and(|a| a >= p.seq) {
            StatusCode::NO_CONTENT.into_response()
        } else {
            jpeg(p.jpeg, Some(p.seq))
        };
    }
    // Not watched until now: the picture (if any) may be old. The next frame passes
    // the change gate and is copied; the old picture is the answer only if none comes.
    let shown = current.as_ref().map(|p| p.seq);
    tile.frame.want();
    progress.tuning.refresh();
    let waited = tokio::time::timeout(FIRST_PICTURE_WITHIN, async {
        loop {
            if pictures.changed().await.is_err() {
                return None;
            }
            if let Some(p) = pictures.borrow_and_update().clone()
                && shown.is_none_or(|s| p.seq > s)
            {
                return Some(p);
            }
        }
    })
    .await;
    match waited.ok().flatten().or(current) {
        Some(p) => jpeg(p.jpeg, Some(p.seq)),
        // No frame yet (a camera still connecting): the tile asks again.
        None => StatusCode::NO_CONTENT.into_response(),
    }
}

async fn history(
    State(shared): State<Arc<Status>>,
    Ids((camera, query)): Ids<(String, String)>,
) -> Response {
    let web = match web(&shared) {
        Ok(w) => w,
        Err(res) => return *res,
    };
    let known = shared
        .cameras()
        .get(&camera)
        .map(|v| v.config.queries.iter().any(|q| q.id == query));
    match known {
        None => error(StatusCode::NOT_FOUND, format!("no camera {camera:?}")),
        Some(false) => error(
            StatusCode::NOT_FOUND,
            format!("camera {camera} has no query {query:?}"),
        ),
        Some(true) => {
            let points: Vec<Value> = web
                .hub
                .history(&camera, &query)
                .into_iter()
                .map(|(t, s)| json!([t, s]))
                .collect();
            Json(json!({"camera": camera, "query": query, "points": points})).into_response()
        }
    }
}

#[derive(Deserialize)]
struct Filter {
    camera: Option<String>,
    query: Option<String>,
    limit: Option<usize>,
}

/// The image URL of an event, when it has a picture.
fn image_of(shared: &Status, e: &crate::app::web::StoredEvent) -> Option<String> {
    let has = e.jpeg.is_some() || shared.lessons.event(&e.camera, &e.id).is_some();
    // Event ids hold `/` (`<cam>/<query>/<unix ms>`): one path segment, escaped.
    has.then(|| format!("/api/events/{}/image.jpg", e.id.replace('/', "%2F")))
}

async fn events(State(shared): State<Arc<Status>>, Query(f): Query<Filter>) -> Response {
    let web = match web(&shared) {
        Ok(w) => w,
        Err(res) => return *res,
    };
    let limit = f.limit.unwrap_or(100).min(web.cfg.events);
    let list: Vec<Value> = web
        .hub
        .events(f.camera.as_deref(), f.query.as_deref(), limit)
        .iter()
        .map(|e| {
            let mut v = (*e.json).clone();
            if let Some(obj) = v.as_object_mut() {
                obj.insert("image".into(), json!(image_of(&shared, e)));
            }
            v
        })
        .collect();
    Json(json!({ "events": list })).into_response()
}

async fn event_image(State(shared): State<Arc<Status>>, Ids(id): Ids<String>) -> Response {
    let web = match web(&shared) {
        Ok(w) => w,
        Err(res) => return *res,
    };
    let Some(e) = web.hub.event(&id) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no event {:?} is kept", crate::kit::shown(&id)),
        );
    };
    if let Some(jpeg) = e.jpeg {
        return self::jpeg(jpeg, None);
    }
    match shared.lessons.event(&e.camera, &e.id) {
        Some(item) => self::jpeg(item.jpeg.clone(), None),
        None => error(
            StatusCode::NOT_FOUND,
            format!("event {id} has no picture (turn [snapshots] on to keep one)"),
        ),
    }
}
