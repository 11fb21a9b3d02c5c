//! The web interface's pages: `/` (the single-page app; its views are chosen by the
//! URL's `#/...`), its files under `/ui/...` (embedded in the binary: see
//! [`ASSETS`]), and the login form (`GET`/`POST /login`, `POST /logout`) that opens
//! and closes a browser session (see `session`).
//!
//! ```text
//! xdg-open http://127.0.0.1:9380/          # cameras; #/camera/door, #/events, #/ask, #/system
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Extension, Form};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use super::reply::error;
use super::session::Sessions;
use crate::app::status::Status;

use crate::app::web::ASSETS;

/// The most a login form may hold (a token and where to go next).
const MAX_LOGIN_BYTES: usize = 4096;

/// How long a failed login waits before it answers (guessing is slow).
const FAILED_LOGIN_DELAY: Duration = Duration::from_millis(500);

pub(super) fn routes() -> Router<Arc<Status>> {
    Router::new()
        .route("/", get(index))
        .route("/ui/{*path}", get(asset))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route(
            "/login",
            get(login_form)
                .post(login)
                .layer(axum::extract::DefaultBodyLimit::max(MAX_LOGIN_BYTES)),
        )
        .route("/logout", post(logout))
}

/// Routes that answer without a session: the login form and what it loads.
pub(super) fn public(method: &Method, path: &str) -> bool {
    matches!(
        (method.as_str(), path),
        (
            "GET" | "HEAD",
            "/login" | "/ui/app.css" | "/ui/js/login.js" | "/favicon.ico"
        ) | ("POST", "/login")
    )
}

/// Whether a request is for a page (redirected to the login form without a session).
pub(super) fn is_page(method: &Method, path: &str) -> bool {
    matches!(*method, Method::GET | Method::HEAD) && (path == "/" || path.starts_with("/ui/"))
}

/// 303 to the login form, coming back to `uri` after it.
pub(super) fn to_login(uri: &Uri) -> Response {
    let next = uri.path();
    see_other(&format!("/login?next={}", encode(next)))
}

fn see_other(location: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(location) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

/// Percent-encodes what is not unreserved.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn file(path: &str) -> Response {
    match ASSETS.iter().find(|(p, _, _)| *p == path) {
        Some((_, mime, bytes)) => {
            let mut headers = HeaderMap::new();
            headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(mime));
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
            headers.insert(
                header::CONTENT_SECURITY_POLICY,
                HeaderValue::from_static(
                    "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; frame-ancestors 'none'",
                ),
            );
            (headers, *bytes).into_response()
        }
        None => error(StatusCode::NOT_FOUND, format!("no file /ui/{path}")),
    }
}

async fn index() -> Response {
    file("index.html")
}

async fn asset(axum::extract::Path(path): axum::extract::Path<String>) -> Response {
    file(&path)
}

async fn login_form() -> Response {
    file("login.html")
}

#[derive(Deserialize)]
struct Login {
    token: String,
    #[serde(default)]
    next: String,
}

/// Where to go after logging in: a path of this daemon, never another site.
fn next_of(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.contains('\\') {
        next
    } else {
        "/"
    }
}

async fn login(
    Extension(sessions): Extension<Arc<Sessions>>,
    headers: HeaderMap,
    Form(form): Form<Login>,
) -> Response {
    if !sessions.guarded() {
        return see_other(next_of(&form.next));
    }
    if !sessions.is_token(form.token.trim()) {
        tokio::time::sleep(FAILED_LOGIN_DELAY).await;
        tracing::warn!("http: a login with a wrong token was refused");
        return see_other(&format!(
            "/login?failed=1&next={}",
            encode(next_of(&form.next))
        ));
    }
    // Behind a TLS-terminating proxy the cookie is marked Secure.
    let secure = headers
        .get("x-forwarded-proto")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"https"));
    match sessions.open(secure) {
        Ok(cookie) => {
            let mut res = see_other(next_of(&form.next));
            if let Ok(v) = HeaderValue::from_str(&cookie) {
                res.headers_mut().insert(header::SET_COOKIE, v);
            }
            res
        }
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("cannot open a session: no randomness from the system ({e})"),
        ),
    }
}

async fn logout(Extension(sessions): Extension<Arc<Sessions>>, headers: HeaderMap) -> Response {
    let cookie = sessions.close(&headers);
    let mut res = see_other("/login");
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(header::SET_COOKIE, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn login_goes_back_only_to_this_daemon() {
        assert_eq!(next_of("/"), "/");
        assert_eq!(next_of("/ui/x"), "/ui/x");
        for bad in [
            "//evil.example/",
            "https://evil.example",
            "",
            "/\\evil",
            "javascript:x",
        ] {
            assert_eq!(next_of(bad), "/", "{bad}");
        }
        assert_eq!(encode("/a b?c"), "/a%20b%3Fc");
    }
}
