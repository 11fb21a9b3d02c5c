//! What every route answers with: the ids of its path, and its JSON error.

use axum::extract::{FromRequestParts, Path};
use axum::http::StatusCode;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use crate::app::control::limits::MAX_SPEC_BYTES;

/// The ids of a path (`Path`), a bad one (percent escapes that are not UTF-8, say)
/// refused with the API's JSON error rather than axum's plain text.
pub(super) struct Ids<T>(pub(super) T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned + Send> FromRequestParts<S> for Ids<T> {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Response> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(ids)) => Ok(Ids(ids)),
            Err(e) => Err(error(e.status(), e.body_text())),
        }
    }
}

/// The body of a request whose route caps its size, or the API's error: `too_large`
/// (the cap, said as a phrase) when it is over the cap, refused before it is read
/// whole (boxed: a response is large).
pub(super) fn body_within(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
    too_large: impl FnOnce() -> String,
) -> Result<axum::body::Bytes, Box<Response>> {
    match body {
        Ok(body) => Ok(body),
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            Err(Box::new(error(e.status(), too_large())))
        }
        Err(e) => Err(Box::new(error(e.status(), e.body_text()))),
    }
}

/// The body of a request that carries a query spec (`PUT /api/queries/...`,
/// `POST .../ask`), refused when it is over [`MAX_SPEC_BYTES`].
pub(super) fn spec_body(
    body: Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<axum::body::Bytes, Box<Response>> {
    body_within(body, || {
        format!("the spec is larger than {MAX_SPEC_BYTES} bytes, the most a query spec may have")
    })
}

/// `{"error": reason}` with `code`.
pub(super) fn error(code: StatusCode, reason: String) -> Response {
    (code, Json(json!({ "error": reason }))).into_response()
}
