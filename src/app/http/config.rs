//! `[http]`: the health, metrics and control endpoints.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::kit::Problem;

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
/// The `[http]` section: where the endpoints listen, the token that guards them, the host names they answer to.
pub struct HttpConfig {
    /// Address to listen on; loopback by default. Any other address needs a token.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Bearer token required on every request (from `${ENV}`); never logged.
    #[serde(default)]
    pub token: Option<String>,
    /// File holding the bearer token (first line).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Host names, besides `localhost` and IP addresses, that requests may name in
    /// their `Host` header (and state-changing ones in `Origin`): the name a reverse
    /// proxy forwards, or the box's own name (`cam-box.local`). Any other name is
    /// refused, so that a web page cannot reach the API by DNS rebinding.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// The web interface (`[http.web]`).
    #[serde(default)]
    pub web: super::WebConfig,
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 9380))
}

impl Default for HttpConfig {
    fn default() -> Self {
        Self {
            listen: default_listen(),
            token: None,
            token_file: None,
            allowed_hosts: Vec::new(),
            web: super::WebConfig::default(),
        }
    }
}

// The token never appears in logs or `{:?}` output.
impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpConfig")
            .field("listen", &self.listen)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("token_file", &self.token_file)
            .field("allowed_hosts", &self.allowed_hosts)
            .field("web", &self.web)
            .finish()
    }
}

/// Why a bearer token cannot be used, without quoting it: empty (e.g. an unset or
/// empty `${TOK}`), or characters a client cannot send in an `Authorization` header
/// as they are (spaces, control characters, non-ASCII).
fn token_problem(token: &str) -> Option<&'static str> {
    if token.trim().is_empty() {
        Some("is empty")
    } else if !token.bytes().all(|b| b.is_ascii_graphic()) {
        Some("must be visible ASCII characters without spaces (as sent in an Authorization header)")
    } else {
        None
    }
}

impl HttpConfig {
    /// Makes `token_file` absolute, relative to the config file's folder `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        self.token_file = self
            .token_file
            .as_ref()
            .map(|f| crate::kit::resolve(base, f));
    }

    /// The problems of this section that need no file read (see `config::validate`
    /// for the listen address, and `config::preflight` for the token file's content).
    pub fn problems(&self) -> Vec<Problem> {
        let mut problems = Vec::new();
        if let Some(why) = self.token.as_deref().and_then(token_problem) {
            let hint = if why == "is empty" {
                " (an unset or empty ${VAR}?): set a token, or leave token out for no token on loopback"
            } else {
                ""
            };
            problems.push(Problem::new("http.token", format!("{why}{hint}")));
        }
        for (i, name) in self.allowed_hosts.iter().enumerate() {
            if !is_host_name(name) {
                problems.push(Problem::new(
                    format!("http.allowed_hosts[{i}]"),
                    format!(
                        "{name:?} must be a host name such as \"ocellus.example.com\" \
                         (no scheme, port or path)"
                    ),
                ));
            }
        }
        problems
    }

    /// Whether a request must carry a token: always when one is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some() || self.token_file.is_some()
    }

    /// The token, read from `token` or the first line of `token_file`; an empty or
    /// unusable one is an error (never the token's text).
    pub fn read_token(&self) -> Result<Option<String>, TokenError> {
        match (&self.token, &self.token_file) {
            (Some(t), _) => match token_problem(t) {
                Some(why) => Err(TokenError::Token(why)),
                None => Ok(Some(t.clone())),
            },
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|source| TokenError::Read {
                    path: f.clone(),
                    source,
                })
                .and_then(|text| {
                    let token = text.lines().next().unwrap_or_default().trim().to_string();
                    match token_problem(&token) {
                        Some(why) => Err(TokenError::File {
                            path: f.clone(),
                            why,
                        }),
                        None => Ok(Some(token)),
                    }
                }),
            (None, None) => Ok(None),
        }
    }
}

/// Why the HTTP token could not be had.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("http.token: {0}")]
    /// `token` is unusable; the reason.
    Token(&'static str),
    #[error("http.token_file {}: {source}", path.display())]
    /// `token_file` could not be read.
    Read {
        /// The token file.
        path: PathBuf,
        #[source]
        /// What the read failed with.
        source: std::io::Error,
    },
    #[error("http.token_file {}: {why}", path.display())]
    /// `token_file`'s first line is unusable.
    File {
        /// The token file.
        path: PathBuf,
        /// What is wrong with its first line.
        why: &'static str,
    },
}

/// A DNS name or an IPv4 address: labels of letters, digits, `-` and `_`, separated
/// by dots (one trailing dot allowed), at most 253 characters.
pub(super) fn is_host_name(name: &str) -> bool {
    let name = name.strip_suffix('.').unwrap_or(name);
    !name.is_empty()
        && name.len() <= 253
        && name.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
}

impl HttpConfig {
    /// The problems of `[http]` about its listen address and token settings.
    pub fn check(&self, problems: &mut Vec<Problem>) {
        self.web.check(problems);
        if self.token.is_some() && self.token_file.is_some() {
            problems.push(Problem::new(
                "http.token_file",
                "give either token or token_file, not both",
            ));
        }
        if !self.listen.ip().is_loopback() && !self.has_token() {
            problems.push(Problem::new(
            "http.listen",
            format!(
                "{} is not a loopback address: set token_file (or token) so requests must carry it",
                self.listen
            ),
        ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::HttpConfig;

    fn with_token(token: &str) -> HttpConfig {
        HttpConfig {
            token: Some(token.into()),
            ..HttpConfig::default()
        }
    }

    #[test]
    fn empty_blank_or_unsendable_tokens_are_refused_without_being_quoted() {
        for bad in ["", "   ", "\t", "two words", "tab\there", "naïve"] {
            let c = with_token(bad);
            let p = c.problems();
            assert_eq!(p.len(), 1, "{bad:?}: {p:?}");
            assert_eq!(p[0].path, "http.token");
            let e = c.read_token().unwrap_err().to_string();
            if bad.trim().len() > 1 {
                assert!(!e.contains(bad) && !p[0].message.contains(bad), "{e}");
            }
        }
        let c = with_token("s3cret-T0ken_+/=");
        assert!(c.problems().is_empty());
        assert_eq!(c.read_token().unwrap().as_deref(), Some("s3cret-T0ken_+/="));
    }

    #[test]
    fn an_empty_token_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("token");
        for text in ["", "\n", "   \nsecond-line\n"] {
            std::fs::write(&f, text).unwrap();
            let c = HttpConfig {
                token_file: Some(f.clone()),
                ..HttpConfig::default()
            };
            let e = c.read_token().unwrap_err().to_string();
            assert!(e.contains("is empty"), "{text:?}: {e}");
        }
        std::fs::write(&f, "tok-1\n").unwrap();
        let c = HttpConfig {
            token_file: Some(f),
            ..HttpConfig::default()
        };
        assert_eq!(c.read_token().unwrap().as_deref(), Some("tok-1"));
    }
}
