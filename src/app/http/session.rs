//! Who may use the endpoints, and browser sessions.
//!
//! - No token configured (loopback only): every request may; the Host/Origin guard
//!   keeps other web pages out.
//! - A token configured: a request carries `Authorization: Bearer TOKEN` (scripts,
//!   Home Assistant), or the session cookie a browser got by logging in with the
//!   token at `/login` (`HttpOnly`, `SameSite=Strict`). A request that changes
//!   something and is authorised by the cookie must also carry its session's CSRF
//!   token in `X-CSRF-Token` (a page gets it from `GET /api/session`; another site's
//!   page can neither read it nor set the header). Without either, a page (`/`,
//!   `/ui/...`) is redirected to the login form, anything else answers 401.
//!
//! ```text
//! curl -si -X POST 127.0.0.1:9380/login -d "token=$(cat /etc/ocellus/http-token)&next=/"
//! # HTTP/1.1 303 See Other ... set-cookie: ocellus_session=...; HttpOnly; SameSite=Strict; Path=/
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

/// The session cookie's name.
pub(super) const COOKIE: &str = "ocellus_session";
/// The header a cookie-authorised change carries its CSRF token in.
pub(super) const CSRF_HEADER: &str = "x-csrf-token";
/// Sessions kept at most (the oldest goes first).
const MAX_SESSIONS: usize = 256;

/// How a request was authorised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Access {
    /// No token is configured.
    Open,
    /// The bearer token.
    Bearer,
    /// A browser session; its CSRF token.
    Session { csrf: Arc<str> },
}

impl Access {
    /// `none`, `bearer` or `session`, as `GET /api/session` says.
    pub(super) fn name(&self) -> &'static str {
        match self {
            Access::Open => "none",
            Access::Bearer => "bearer",
            Access::Session { .. } => "session",
        }
    }
}

struct Session {
    csrf: Arc<str>,
    expires: Instant,
}

/// The token and the open browser sessions.
pub(super) struct Sessions {
    token: Option<Arc<str>>,
    ttl: Duration,
    open: Mutex<HashMap<String, Session>>,
}

/// 32 random bytes as hex.
fn random_hex() -> Result<String, getrandom::Error> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes)?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// Compares in time that depends on the length only, not on where they differ.
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn cookie_of<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|kv| kv.trim().strip_prefix(name)?.strip_prefix('='))
}

impl Sessions {
    pub(super) fn new(token: Option<String>, ttl: Duration) -> Self {
        Self {
            token: token.map(Arc::from),
            ttl,
            open: Mutex::default(),
        }
    }

    /// Whether a token is configured (and so logging in means something).
    pub(super) fn guarded(&self) -> bool {
        self.token.is_some()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.open.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// How the request with `headers` is authorised, if it is.
    pub(super) fn access(&self, headers: &HeaderMap) -> Option<Access> {
        let Some(token) = &self.token else {
            return Some(Access::Open);
        };
        let bearer = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "));
        if bearer.is_some_and(|g| same(g.as_bytes(), token.as_bytes())) {
            return Some(Access::Bearer);
        }
        let id = cookie_of(headers, COOKIE)?;
        let mut open = self.lock();
        match open.get(id) {
            Some(s) if s.expires > Instant::now() => Some(Access::Session {
                csrf: s.csrf.clone(),
            }),
            Some(_) => {
                open.remove(id);
                None
            }
            None => None,
        }
    }

    /// Whether `given` is the token.
    pub(super) fn is_token(&self, given: &str) -> bool {
        self.token
            .as_ref()
            .is_some_and(|t| same(given.as_bytes(), t.as_bytes()))
    }

    /// Opens a session: its `Set-Cookie` value.
    pub(super) fn open(&self, secure: bool) -> Result<String, getrandom::Error> {
        let (id, csrf) = (random_hex()?, random_hex()?);
        let mut open = self.lock();
        let now = Instant::now();
        open.retain(|_, s| s.expires > now);
        while open.len() >= MAX_SESSIONS {
            let Some(oldest) = open
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            open.remove(&oldest);
        }
        open.insert(
            id.clone(),
            Session {
                csrf: Arc::from(csrf),
                expires: now + self.ttl,
            },
        );
        Ok(format!(
            "{COOKIE}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
            self.ttl.as_secs(),
            if secure { "; Secure" } else { "" }
        ))
    }

    /// Closes the session of `headers`, if any: the `Set-Cookie` value that clears it.
    pub(super) fn close(&self, headers: &HeaderMap) -> String {
        if let Some(id) = cookie_of(headers, COOKIE) {
            self.lock().remove(id);
        }
        format!("{COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
    }
}

/// Whether `method` changes something.
pub(super) fn changes(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// Whether a cookie-authorised change carries its session's CSRF token.
pub(super) fn csrf_ok(access: &Access, method: &Method, headers: &HeaderMap) -> bool {
    match access {
        Access::Session { csrf } if changes(method) => headers
            .get(CSRF_HEADER)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|given| same(given.as_bytes(), csrf.as_bytes())),
        _ => true,
    }
}

/// 401 with the API's JSON error.
pub(super) fn unauthorised() -> Response {
    let mut res = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"error": "a valid bearer token or a session (log in at /login) is required"})),
    )
        .into_response();
    res.headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    res
}

/// 403 for a cookie-authorised change without its CSRF token.
pub(super) fn no_csrf() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({"error": "a change made with a session cookie needs its X-CSRF-Token header (from GET /api/session)"})),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                axum::http::HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    #[test]
    fn a_session_needs_its_cookie_and_its_csrf_token_for_changes() {
        let s = Sessions::new(Some("tok".into()), Duration::from_secs(60));
        assert_eq!(s.access(&headers(&[])), None);
        assert_eq!(
            s.access(&headers(&[("authorization", "Bearer tok")])),
            Some(Access::Bearer)
        );
        assert_eq!(
            s.access(&headers(&[("authorization", "Bearer tok2")])),
            None
        );
        let cookie = s.open(false).unwrap();
        assert!(
            cookie.contains("HttpOnly; SameSite=Strict; Path=/"),
            "{cookie}"
        );
        let id = cookie.split(';').next().unwrap();
        assert_eq!(
            s.access(&headers(&[("cookie", "ocellus_session=nope")])),
            None
        );
        let h = headers(&[("cookie", &format!("a=b; {id}"))]);
        let Some(access @ Access::Session { .. }) = s.access(&h) else {
            panic!("the cookie opens the session")
        };
        let Access::Session { csrf } = &access else {
            unreachable!()
        };
        assert!(csrf_ok(&access, &Method::GET, &h));
        assert!(!csrf_ok(&access, &Method::POST, &h));
        let with = headers(&[("x-csrf-token", csrf)]);
        assert!(csrf_ok(&access, &Method::PUT, &with));
        assert!(!csrf_ok(
            &access,
            &Method::DELETE,
            &headers(&[("x-csrf-token", "x")])
        ));
        s.close(&h);
        assert_eq!(s.access(&h), None, "logged out");
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let s = Sessions::new(Some("tok".into()), Duration::ZERO);
        let cookie = s.open(false).unwrap();
        let id = cookie.split(';').next().unwrap();
        assert_eq!(s.access(&headers(&[("cookie", id)])), None, "expired");
        let s = Sessions::new(Some("tok".into()), Duration::from_secs(60));
        for _ in 0..MAX_SESSIONS + 10 {
            s.open(true).unwrap();
        }
        assert_eq!(s.lock().len(), MAX_SESSIONS);
        assert_eq!(
            Sessions::new(None, Duration::ZERO).access(&headers(&[])),
            Some(Access::Open)
        );
    }
}
