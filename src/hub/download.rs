//! HTTP(S) GETs of model files (ureq on rustls with the ring provider and the system's
//! root certificates): optional `Range: bytes=N-` to resume, redirects followed by hand
//! so that Hugging Face's headers on the first answer are kept (`X-Repo-Commit`,
//! `X-Linked-Etag` = sha256 of an LFS file, `X-Linked-Size`; then a 302 to the CDN),
//! and a bearer token sent only to the origin it was given for (never to a CDN,
//! never logged).
//!
//! ```no_run
//! use ocellus::hub::download::{Client, ClientOptions};
//! let client = Client::new(&ClientOptions::default()).unwrap();
//! let url = "https://huggingface.co/Xenova/clip-vit-base-patch32/resolve/main/onnx/vision_model.onnx";
//! let resp = client.get(url, 0).unwrap();
//! println!("{} sha256 {:?} commit {:?}", resp.status, resp.meta.sha256, resp.meta.commit);
//! ```

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::Duration;

use ureq::Agent;
use ureq::http::HeaderMap;
use ureq::tls::{Certificate, RootCerts, TlsConfig, TlsProvider};

use super::FetchError;

/// Redirects followed before giving up (Hugging Face: at most a rename and the CDN).
const MAX_REDIRECTS: usize = 10;

/// How the client talks to servers.
#[derive(Clone)]
pub struct ClientOptions {
    /// Sent as `Authorization: Bearer …` to the origin of the first URL of a request.
    pub token: Option<String>,
    /// Connecting (DNS, TCP, TLS).
    pub connect_timeout: Duration,
    /// Waiting for an answer, and for each read of the body.
    pub read_timeout: Duration,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            token: None,
            connect_timeout: Duration::from_secs(15),
            read_timeout: Duration::from_secs(30),
        }
    }
}

impl std::fmt::Debug for ClientOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientOptions")
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("connect_timeout", &self.connect_timeout)
            .field("read_timeout", &self.read_timeout)
            .finish()
    }
}

/// What the server said about a file along the redirect chain (first value wins).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Meta {
    /// `X-Repo-Commit`: the commit the revision resolved to.
    pub commit: Option<String>,
    /// `X-Linked-Etag`: sha256 of an LFS file.
    pub sha256: Option<String>,
    /// `ETag` of a file served by the origin itself (a small git file): its git blob sha1.
    pub git_sha1: Option<String>,
    /// `X-Linked-Size`: the size of an LFS file.
    pub size: Option<u64>,
}

/// The final answer of a GET: 200 (whole file), 206 (from the offset) or 416.
pub struct Response {
    pub meta: Meta,
    pub status: u16,
    /// `Content-Length` of this answer.
    pub length: Option<u64>,
    /// `Content-Range`: first byte (206) and total size (206, or 416's `bytes */N`).
    pub range: Option<(Option<u64>, Option<u64>)>,
    body: ureq::Body,
}

impl Response {
    /// Copies the body into `out`, calling `progress` with each chunk's length; returns
    /// the bytes copied. At most `limit` bytes are accepted: reading stops at the first
    /// byte past it ([`CopyError::TooLarge`], with `limit` bytes in `out`). An error
    /// after some bytes were copied leaves them in `out`.
    pub fn copy_to(
        self,
        out: &mut impl Write,
        limit: u64,
        mut progress: impl FnMut(u64),
    ) -> Result<u64, CopyError> {
        let mut reader = self.body.into_reader().take(limit.saturating_add(1));
        let mut buf = vec![0u8; 256 * 1024];
        let mut total = 0u64;
        loop {
            let n = match reader.read(&mut buf) {
                Ok(0) => return Ok(total),
                Ok(n) => n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(CopyError::Io(total, e)),
            };
            let room = usize::try_from(limit - total).unwrap_or(usize::MAX);
            let keep = n.min(room);
            out.write_all(&buf[..keep])
                .map_err(|e| CopyError::Io(total, e))?;
            total += keep as u64;
            progress(keep as u64);
            if keep < n {
                return Err(CopyError::TooLarge(limit));
            }
        }
    }
}

/// Why [`Response::copy_to`] stopped early.
#[derive(Debug)]
pub enum CopyError {
    /// Reading or writing failed after this many bytes.
    Io(u64, std::io::Error),
    /// The body runs past this many bytes.
    TooLarge(u64),
}

/// The outcome of [`Client::get_unless`].
pub enum Fetched {
    /// The final answer, body unread.
    Response(Response),
    /// Stopped at a redirect: the headers so far identify a file already on disk.
    Known(Meta),
}

/// An HTTP client for model files.
pub struct Client {
    agent: Agent,
    token: Option<String>,
}

impl Client {
    pub fn new(opts: &ClientOptions) -> Result<Self, FetchError> {
        let roots: Vec<Certificate<'static>> = rustls_native_certs::load_native_certs()
            .certs
            .iter()
            .map(|c| Certificate::from_der(c.as_ref()).to_owned())
            .collect();
        let tls = TlsConfig::builder()
            .provider(TlsProvider::Rustls)
            .root_certs(RootCerts::new_with_certs(&roots))
            .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .build();
        let config = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_resolve(Some(opts.connect_timeout))
            .timeout_connect(Some(opts.connect_timeout))
            .timeout_recv_response(Some(opts.read_timeout))
            .timeout_per_read(Some(opts.read_timeout))
            .user_agent(format!("ocellus/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(tls)
            .build();
        Ok(Client {
            agent: config.into(),
            token: opts.token.clone().filter(|t| !t.is_empty()),
        })
    }

    /// GET `url` (from byte `offset` when > 0), following redirects by hand.
    pub fn get(&self, url: &str, offset: u64) -> Result<Response, FetchError> {
        match self.get_unless(url, offset, |_| false)? {
            Fetched::Response(r) => Ok(r),
            Fetched::Known(_) => Err(FetchError::Protocol {
                url: url.into(),
                detail: "stopped at a redirect".into(),
            }),
        }
    }

    /// Like [`Client::get`], but stops at a redirect once `known` says the headers seen
    /// so far identify a file already on disk (its bytes are then not fetched).
    pub fn get_unless(
        &self,
        url: &str,
        offset: u64,
        known: impl Fn(&Meta) -> bool,
    ) -> Result<Fetched, FetchError> {
        let home = origin(url).ok_or_else(|| FetchError::Protocol {
            url: url.into(),
            detail: "not an http(s) URL".into(),
        })?;
        let mut meta = Meta::default();
        let mut current = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let at_home = origin(&current).as_deref() == Some(home.as_str());
            let mut req = self.agent.get(&current);
            if offset > 0 {
                req = req.header("Range", format!("bytes={offset}-"));
            }
            if let (Some(token), true) = (&self.token, at_home) {
                req = req.header("Authorization", format!("Bearer {token}"));
            }
            let resp = req.call().map_err(|e| call_error(url, &current, e))?;
            let status = resp.status().as_u16();
            absorb(
                &mut meta,
                resp.headers(),
                at_home && !(300..400).contains(&status),
            );
            match status {
                301 | 302 | 303 | 307 | 308 => {
                    if known(&meta) {
                        return Ok(Fetched::Known(meta));
                    }
                    let location =
                        header(resp.headers(), "location").ok_or_else(|| FetchError::Protocol {
                            url: url.into(),
                            detail: format!("HTTP {status} without Location"),
                        })?;
                    current = join(&current, &location).ok_or_else(|| FetchError::Protocol {
                        url: url.into(),
                        detail: format!("bad redirect Location {location:?}"),
                    })?;
                }
                200 | 206 | 416 => {
                    let length =
                        header(resp.headers(), "content-length").and_then(|v| v.parse().ok());
                    let range =
                        header(resp.headers(), "content-range").and_then(|v| content_range(&v));
                    return Ok(Fetched::Response(Response {
                        meta,
                        status,
                        length,
                        range,
                        body: resp.into_body(),
                    }));
                }
                _ => {
                    return Err(FetchError::Status {
                        url: via(url, &current),
                        status,
                        hint: status_hint(status),
                    });
                }
            }
        }
        Err(FetchError::Protocol {
            url: url.into(),
            detail: format!("more than {MAX_REDIRECTS} redirects"),
        })
    }
}

fn status_hint(status: u16) -> &'static str {
    match status {
        401 | 403 => {
            " (gated or private? set HF_TOKEN or --token-file; accept the licence on the model page)"
        }
        404 => " Not Found",
        429 => " Too Many Requests (try again later)",
        500..=599 => " (server error; try again later)",
        _ => "",
    }
}

/// The URL to name in an error: the one asked for, plus the host it ended on.
fn via(url: &str, current: &str) -> String {
    match (origin(url), origin(current)) {
        (Some(a), Some(b)) if a != b => format!("{url} (redirected to {b})"),
        _ => url.to_string(),
    }
}

fn call_error(url: &str, current: &str, source: ureq::Error) -> FetchError {
    let url = via(url, current);
    match source {
        ureq::Error::Timeout(_)
        | ureq::Error::HostNotFound
        | ureq::Error::ConnectionFailed
        | ureq::Error::Io(_) => FetchError::Unreachable { url, source },
        source => FetchError::Http { url, source },
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)?.to_str().ok().map(|s| s.trim().to_string())
}

/// `W/"abc"` → `abc`.
fn etag_value(v: &str) -> String {
    v.trim()
        .trim_start_matches("W/")
        .trim_matches('"')
        .to_ascii_lowercase()
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit())
}

fn absorb(meta: &mut Meta, h: &HeaderMap, own_etag: bool) {
    if meta.commit.is_none() {
        meta.commit = header(h, "x-repo-commit").filter(|c| !c.is_empty());
    }
    if meta.sha256.is_none() {
        meta.sha256 = header(h, "x-linked-etag")
            .map(|v| etag_value(&v))
            .filter(|v| is_hex(v, 64));
    }
    if meta.size.is_none() {
        meta.size = header(h, "x-linked-size").and_then(|v| v.parse().ok());
    }
    // A CDN's ETag is not a content hash we know how to check; only the origin's
    // ETag of a file it serves itself is a git blob sha1.
    if own_etag && meta.sha256.is_none() && meta.git_sha1.is_none() {
        meta.git_sha1 = header(h, "etag")
            .map(|v| etag_value(&v))
            .filter(|v| is_hex(v, 40));
    }
}

/// `bytes 100-199/1000` → (Some(100), Some(1000)); `bytes 100-199/*` → (Some(100),
/// None); `bytes */1000` → (None, Some(1000)).
fn content_range(v: &str) -> Option<(Option<u64>, Option<u64>)> {
    let rest = v.trim().strip_prefix("bytes ")?;
    let (span, total) = rest.split_once('/')?;
    let start = span
        .split_once('-')
        .and_then(|(s, _)| s.trim().parse().ok());
    Some((start, total.trim().parse().ok()))
}

/// `scheme://authority` of an http(s) URL.
fn origin(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "http" && scheme != "https" {
        return None;
    }
    let authority = rest.split(['/', '?', '#']).next()?;
    (!authority.is_empty()).then(|| format!("{scheme}://{}", authority.to_ascii_lowercase()))
}

/// Resolves a redirect `Location` against the URL that answered it.
fn join(base: &str, location: &str) -> Option<String> {
    if origin(location).is_some() {
        return Some(location.to_string());
    }
    let home = origin(base)?;
    if let Some(rest) = location.strip_prefix("//") {
        let scheme = home.split_once("://")?.0;
        return Some(format!("{scheme}://{rest}"));
    }
    if location.starts_with('/') {
        return Some(format!("{home}{location}"));
    }
    let path = base[home.len()..].split(['?', '#']).next().unwrap_or("/");
    let dir = path.rsplit_once('/').map_or("", |(d, _)| d);
    Some(format!("{home}{dir}/{location}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redirects_resolve_like_a_browser() {
        let base = "https://huggingface.co/a/b/resolve/main/onnx/m.onnx";
        assert_eq!(
            join(base, "https://cdn.example/x?sig=1").unwrap(),
            "https://cdn.example/x?sig=1"
        );
        assert_eq!(
            join(base, "/api/resolve-cache/x").unwrap(),
            "https://huggingface.co/api/resolve-cache/x"
        );
        assert_eq!(
            join(base, "other.onnx").unwrap(),
            "https://huggingface.co/a/b/resolve/main/onnx/other.onnx"
        );
        assert_eq!(
            join(base, "//cdn.example/y").unwrap(),
            "https://cdn.example/y"
        );
        assert_eq!(
            origin("http://127.0.0.1:8080/x").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(origin("ftp://x/y"), None);
    }

    #[test]
    fn hugging_face_headers_are_read_and_cdn_etags_ignored() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-repo-commit",
            "d15189d7028b43f1d3e65039190477f6af591c2a".parse().unwrap(),
        );
        h.insert(
            "x-linked-etag",
            "\"fd6e1402a588279d1723c7534d4bcba5bc0b14b47dfab0e46f8c47b8270d7d40\""
                .parse()
                .unwrap(),
        );
        h.insert("x-linked-size", "351685709".parse().unwrap());
        let mut meta = Meta::default();
        absorb(&mut meta, &h, false);
        assert_eq!(meta.size, Some(351_685_709));
        assert!(meta.sha256.as_deref().unwrap().starts_with("fd6e1402"));
        // The CDN's answer comes next: its ETag must not count.
        let mut cdn = HeaderMap::new();
        cdn.insert(
            "etag",
            "\"0123456789012345678901234567890123456789\""
                .parse()
                .unwrap(),
        );
        absorb(&mut meta, &cdn, false);
        assert_eq!(meta.git_sha1, None);
        let mut small = HeaderMap::new();
        small.insert(
            "etag",
            "W/\"ce013625030ba8dba906f756967f9e9ca394464a\""
                .parse()
                .unwrap(),
        );
        let mut m2 = Meta::default();
        absorb(&mut m2, &small, true);
        assert_eq!(
            m2.git_sha1.as_deref(),
            Some("ce013625030ba8dba906f756967f9e9ca394464a")
        );
        assert_eq!(
            content_range("bytes 100-199/1000"),
            Some((Some(100), Some(1000)))
        );
        assert_eq!(content_range("bytes 5-9/*"), Some((Some(5), None)));
        assert_eq!(content_range("bytes */77"), Some((None, Some(77))));
    }

    #[test]
    fn the_token_never_shows_in_debug_output() {
        let o = ClientOptions {
            token: Some("hf_secret".into()),
            ..Default::default()
        };
        assert!(!format!("{o:?}").contains("hf_secret"));
    }
}
