//! `[http]`: the health, metrics and control endpoints.

use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
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
            .finish()
    }
}

impl HttpConfig {
    pub fn resolve_paths(&mut self, base: &Path) {
        self.token_file = self
            .token_file
            .as_ref()
            .map(|f| crate::config::resolve(base, f));
    }

    /// Whether a request must carry a token: always when one is configured.
    pub fn has_token(&self) -> bool {
        self.token.is_some() || self.token_file.is_some()
    }

    /// The token, read from `token` or the first line of `token_file`.
    pub fn read_token(&self) -> Result<Option<String>, String> {
        match (&self.token, &self.token_file) {
            (Some(t), _) => Ok(Some(t.clone())),
            (None, Some(f)) => std::fs::read_to_string(f)
                .map_err(|e| format!("http.token_file {}: {e}", f.display()))
                .and_then(|text| {
                    let token = text.lines().next().unwrap_or_default().trim().to_string();
                    if token.is_empty() {
                        Err(format!("http.token_file {}: is empty", f.display()))
                    } else {
                        Ok(Some(token))
                    }
                }),
            (None, None) => Ok(None),
        }
    }
}
