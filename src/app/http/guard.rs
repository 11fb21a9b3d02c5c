//! Host and Origin checks, so that a web page open in a browser on the same machine
//! (or network) cannot use the API.
//!
//! - `Host` (and an absolute request target) must name this daemon: an IP address,
//!   `localhost`, or a name in `[http] allowed_hosts`. A page cannot make its own name
//!   resolve to the daemon's address and then read from it (DNS rebinding): that needs
//!   a name the attacker controls, which is not on the list. IP addresses are always
//!   allowed, as a browser sends one only when it connected to that address itself.
//!   The port is not compared (a proxy or a port forward may change it). No `Host`
//!   (HTTP/1.0) cannot come from a browser and passes. Refused with 421.
//! - A request that changes something (any method but GET, HEAD and OPTIONS) that
//!   carries `Origin` — every browser sends it on those — must come from the daemon's
//!   own origin (the `Host` it names) or from a name in `allowed_hosts`; anything else,
//!   including `Origin: null`, is refused with 403. Without `Origin` the client is not
//!   a browser page and passes (curl, Home Assistant, scripts).
//!
//! Both checks run before the bearer token's, on every route.

use std::net::IpAddr;

use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use super::HttpConfig;
use super::config::is_host_name;
use crate::kit::RateLimit;

/// A header value is quoted in a refusal up to this many characters: enough for any
/// real host name (253) to be recognisable, short enough to keep the reply one line.
const QUOTE_AT_MOST: usize = 100;

/// Which requests may reach the routes, by `Host` and `Origin`.
#[derive(Debug)]
pub(super) struct Guard {
    /// `allowed_hosts`, lower-case, without a trailing dot.
    names: Vec<String>,
    /// The first refusal of each kind is logged as a warning, then one a minute
    /// (saying how many it stands for); the others at debug.
    warned_host: RateLimit,
    warned_origin: RateLimit,
}

impl Guard {
    pub(super) fn new(cfg: &HttpConfig) -> Self {
        Self {
            names: cfg.allowed_hosts.iter().map(|n| normalise(n)).collect(),
            warned_host: RateLimit::new(),
            warned_origin: RateLimit::new(),
        }
    }

    /// `Ok` when the request may go on; else why not.
    pub(super) fn check(
        &self,
        method: &Method,
        uri: &Uri,
        headers: &HeaderMap,
    ) -> Result<(), Refused> {
        let hosts: Vec<&str> = headers
            .get_all(header::HOST)
            .iter()
            .map(|v| v.to_str().unwrap_or("\u{fffd}"))
            .chain(uri.authority().map(|a| a.as_str()))
            .collect();
        for host in &hosts {
            if !self.host_allowed(host) {
                return Err(self.refuse_host(host));
            }
        }
        if hosts.len() > 1 && !hosts.windows(2).all(|w| w[0].eq_ignore_ascii_case(w[1])) {
            return Err(self.refuse_host(&hosts.join(", ")));
        }
        if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
            return Ok(());
        }
        for origin in headers.get_all(header::ORIGIN) {
            let origin = origin.to_str().unwrap_or("\u{fffd}");
            if !self.origin_allowed(origin, hosts.first().copied()) {
                return Err(self.refuse_origin(origin));
            }
        }
        Ok(())
    }

    fn host_allowed(&self, authority: &str) -> bool {
        host_of(authority).is_some_and(|h| self.name_allowed(&h) || h.parse::<IpAddr>().is_ok())
    }

    fn name_allowed(&self, host: &str) -> bool {
        host == "localhost" || self.names.iter().any(|n| n == host)
    }

    /// `Origin: scheme://host[:port]` of the daemon's own origin (the `Host` the
    /// request names), or of a configured name.
    fn origin_allowed(&self, origin: &str, host: Option<&str>) -> bool {
        let Some((_, authority)) = origin.split_once("://") else {
            return false; // "null" (sandboxed frames, file: pages, redirects) or junk
        };
        if authority.contains(['/', '?', '#']) {
            return false;
        }
        if host.is_some_and(|h| h.eq_ignore_ascii_case(authority)) {
            return true;
        }
        host_of(authority).is_some_and(|h| self.names.contains(&h))
    }

    fn refuse_host(&self, host: &str) -> Refused {
        let reason = format!(
            "Host {:?} is not a name of this daemon: use its IP address or localhost, or add the name to [http] allowed_hosts",
            quote(host)
        );
        log_refusal(&self.warned_host, &reason);
        Refused {
            status: StatusCode::MISDIRECTED_REQUEST,
            reason,
        }
    }

    fn refuse_origin(&self, origin: &str) -> Refused {
        let reason = format!(
            "Origin {:?} may not change anything here: only requests without Origin (not from a web page), from this daemon's own origin or from [http] allowed_hosts",
            quote(origin)
        );
        log_refusal(&self.warned_origin, &reason);
        Refused {
            status: StatusCode::FORBIDDEN,
            reason,
        }
    }
}

fn log_refusal(warned: &RateLimit, reason: &str) {
    match warned.allow() {
        Some(s) => tracing::warn!(
            suppressed = s.count(),
            "http: refused: {reason}{s} (repeats within a minute are logged at debug level)"
        ),
        None => tracing::debug!("http: refused: {reason}"),
    }
}

/// A refused request: 421 (Host) or 403 (Origin), and the reason as `{"error": ...}`.
#[derive(Debug)]
pub(super) struct Refused {
    pub status: StatusCode,
    pub reason: String,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        (self.status, Json(json!({ "error": self.reason }))).into_response()
    }
}

fn quote(s: &str) -> String {
    s.chars().take(QUOTE_AT_MOST).collect()
}

fn normalise(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

/// The host of `host[:port]` / `[v6][:port]`, normalised; `None` when it is not one.
fn host_of(authority: &str) -> Option<String> {
    let (host, port) = match authority.strip_prefix('[') {
        Some(v6) => {
            let (h, after) = v6.split_once(']')?;
            h.parse::<std::net::Ipv6Addr>().ok()?;
            match after {
                "" => (h, None),
                _ => (h, Some(after.strip_prefix(':')?)),
            }
        }
        None => {
            let (h, p) = match authority.split_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            };
            if !is_host_name(h) {
                return None;
            }
            (h, p)
        }
    };
    if port.is_some_and(|p| p.is_empty() || !p.bytes().all(|b| b.is_ascii_digit())) {
        return None;
    }
    Some(normalise(host))
}

#[cfg(test)]
mod tests {
    use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};

    use super::{Guard, host_of, is_host_name};
    use crate::app::http::HttpConfig;

    fn guard(names: &[&str]) -> Guard {
        Guard::new(&HttpConfig {
            allowed_hosts: names.iter().map(|n| n.to_string()).collect(),
            ..HttpConfig::default()
        })
    }

    fn status(g: &Guard, method: Method, host: Option<&str>, origin: Option<&str>) -> u16 {
        let mut h = HeaderMap::new();
        if let Some(host) = host {
            h.insert(header::HOST, HeaderValue::from_str(host).unwrap());
        }
        if let Some(o) = origin {
            h.insert(header::ORIGIN, HeaderValue::from_str(o).unwrap());
        }
        match g.check(&method, &Uri::from_static("/api/reload"), &h) {
            Ok(()) => 200,
            Err(r) => r.status.as_u16(),
        }
    }

    #[test]
    fn hosts_are_ip_addresses_localhost_or_configured_names() {
        let g = guard(&["Cam-Box.local", "ocellus.example.com."]);
        for ok in [
            "127.0.0.1:9380",
            "127.0.0.1",
            "[::1]:9380",
            "[::1]",
            "localhost:9380",
            "LOCALHOST",
            "10.0.0.5:80",
            "cam-box.local:9380",
            "ocellus.example.com",
            "ocellus.example.com.",
        ] {
            assert_eq!(status(&g, Method::GET, Some(ok), None), 200, "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:9380",
            "localhost.attacker.example",
            "127.0.0.1.nip.io:9380",
            "[::1",
            "::1",
            "127.0.0.1:x",
            "127.0.0.1:",
            "user@127.0.0.1",
            "",
        ] {
            assert_eq!(
                status(&g, Method::GET, Some(bad), None),
                StatusCode::MISDIRECTED_REQUEST.as_u16(),
                "{bad}"
            );
        }
        assert_eq!(
            status(&g, Method::GET, None, None),
            200,
            "no Host: no browser"
        );
    }

    #[test]
    fn an_absolute_target_is_checked_like_host() {
        let g = guard(&[]);
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:9380"));
        let uri = Uri::from_static("http://attacker.example/api/reload");
        assert!(g.check(&Method::GET, &uri, &h).is_err());
        let uri = Uri::from_static("http://127.0.0.1:9380/api/reload");
        assert!(g.check(&Method::GET, &uri, &h).is_ok());
    }

    #[test]
    fn changes_from_a_web_page_need_the_daemons_own_origin() {
        let g = guard(&["ocellus.example.com"]);
        let host = Some("127.0.0.1:9380");
        for m in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
            assert_eq!(status(&g, m.clone(), host, None), 200, "{m}: no Origin");
            assert_eq!(
                status(&g, m.clone(), host, Some("http://127.0.0.1:9380")),
                200,
                "{m}"
            );
            assert_eq!(
                status(&g, m.clone(), host, Some("https://ocellus.example.com")),
                200,
                "{m}: a configured name (behind a proxy)"
            );
            for bad in [
                "http://attacker.example",
                "http://localhost:3000",
                "http://127.0.0.1:9381",
                "null",
                "http://127.0.0.1:9380/x",
            ] {
                assert_eq!(status(&g, m.clone(), host, Some(bad)), 403, "{m} {bad}");
            }
        }
        // Reading is not changing: cross-origin reads are the browser's to block.
        assert_eq!(
            status(&g, Method::GET, host, Some("http://attacker.example")),
            200
        );
    }

    #[test]
    fn host_names_are_checked() {
        assert!(is_host_name("cam-box.local"));
        assert!(is_host_name("a_b.example.com."));
        assert!(is_host_name("10.0.0.5"));
        for bad in [
            "",
            "http://x",
            "x:80",
            "x/y",
            "a..b",
            "*.example.com",
            "a b",
        ] {
            assert!(!is_host_name(bad), "{bad}");
        }
        assert_eq!(host_of("[::1]:1").as_deref(), Some("::1"));
        assert_eq!(host_of("Box.Local.:9380").as_deref(), Some("box.local"));
    }
}
