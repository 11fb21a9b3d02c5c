//! `[models.NAME]` of `family = "openai"` or `family = "ollama"`: which server, which
//! of its models, the key, and the bounds a user relies on (timeout, concurrency, an
//! hourly call budget, the circuit breaker), with their checks beside them.
//!
//! ```
//! use ocellus::model::remote::RemoteConfig;
//! let cfg: RemoteConfig = toml::from_str(r#"
//! url = "http://gpu-box:8000/v1"
//! model = "meta-llama/Llama-3.2-11B-Vision-Instruct"
//! max_calls_per_hour = 600
//! "#).unwrap();
//! let mut problems = Vec::new();
//! cfg.check("llama", &mut problems);
//! assert!(problems.is_empty(), "{problems:?}");
//! assert_eq!(cfg.timeout, std::time::Duration::from_secs(30));
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

use crate::kit::Problem;

/// Most calls an hour a budget may allow (the budget keeps one instant per call).
pub const MAX_CALLS_PER_HOUR: u32 = 100_000;

/// A served VLM behind an OpenAI-compatible `/v1/chat/completions` (vLLM, llama.cpp's
/// server, LM Studio, lmdeploy, SGLang, OpenRouter, Gemini's compatible endpoint) or
/// Ollama's native `/api/chat`.
#[derive(Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteConfig {
    /// The server's base URL: `http://host:8000/v1` for OpenAI-compatible servers
    /// (requests go to `{url}/chat/completions`), `http://host:11434` for Ollama
    /// (`{url}/api/chat`).
    pub url: String,
    /// The server's name of the model (`llama3.2-vision`, `Qwen/Qwen2.5-VL-7B-Instruct`).
    pub model: String,
    /// The API key, usually as `${ENV}` (takes precedence over `api_key_file`); sent
    /// as `Authorization: Bearer`, never logged.
    #[serde(default)]
    pub api_key: Option<String>,
    /// File holding the API key (trailing newline ignored).
    #[serde(default)]
    pub api_key_file: Option<PathBuf>,
    /// Longest one call may take, retries not included (default 30 s).
    #[serde(
        default = "default_timeout",
        deserialize_with = "crate::kit::duration::de"
    )]
    pub timeout: Duration,
    /// The region is sent as a JPEG scaled to at most this many pixels a side.
    #[serde(default = "default_max_side")]
    pub max_side: u32,
    /// JPEG quality of the image sent (1–100).
    #[serde(default = "default_quality")]
    pub jpeg_quality: u8,
    /// Calls in flight at once, over every camera (the others wait their turn).
    #[serde(default = "default_concurrency")]
    pub max_concurrency: usize,
    /// Calls an hour, over every camera; beyond it a query waits for its next due
    /// frame (counted in `ocellus_remote_over_budget_total`). Default: no budget.
    #[serde(default)]
    pub max_calls_per_hour: Option<u32>,
    /// Most tokens of a generated answer (caption, answer, read, detect).
    #[serde(default = "default_max_tokens")]
    pub max_tokens: usize,
    /// Retries of a call that met a 429, a 5xx, a timeout or a refused connection.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// Failed calls in a row (after their retries) that mark the model unavailable.
    #[serde(default = "default_breaker_failures")]
    pub breaker_failures: u32,
    /// How long the model stays unavailable before one call probes it again (doubled
    /// after each failed probe, up to 16 times this).
    #[serde(
        default = "default_breaker_cooldown",
        deserialize_with = "crate::kit::duration::de"
    )]
    pub breaker_cooldown: Duration,
    /// How `yes_no` gets p(yes): `auto` (token log-probabilities when the server
    /// returns them, else a JSON answer with a confidence), `logprobs`, or `json`.
    #[serde(default)]
    pub yes_no: YesNoVia,
}

/// How a remote yes/no answer is scored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum YesNoVia {
    /// Log-probabilities when the server returns them, else JSON.
    #[default]
    Auto,
    /// Softmax over the yes/no variants among the first answer token's top
    /// log-probabilities.
    Logprobs,
    /// A schema-constrained `{"answer": "yes"|"no", "confidence": 0..1}`.
    Json,
}

impl std::fmt::Debug for RemoteConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RemoteConfig")
            .field("url", &crate::source::redact(&self.url))
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "<redacted>"))
            .field("api_key_file", &self.api_key_file)
            .field("timeout", &self.timeout)
            .field("max_side", &self.max_side)
            .field("max_concurrency", &self.max_concurrency)
            .field("max_calls_per_hour", &self.max_calls_per_hour)
            .finish_non_exhaustive()
    }
}

fn default_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_side() -> u32 {
    768
}
fn default_quality() -> u8 {
    85
}
fn default_concurrency() -> usize {
    2
}
fn default_max_tokens() -> usize {
    128
}
fn default_retries() -> u32 {
    2
}
fn default_breaker_failures() -> u32 {
    3
}
fn default_breaker_cooldown() -> Duration {
    Duration::from_secs(30)
}

impl RemoteConfig {
    /// Makes `api_key_file` absolute, relative to the config's folder `base`.
    pub fn resolve_paths(&mut self, base: &Path) {
        self.api_key_file = self
            .api_key_file
            .as_ref()
            .map(|f| crate::kit::resolve(base, f));
    }

    /// The problems of `[models.<name>]`, pushed to `problems`.
    pub fn check(&self, name: &str, problems: &mut Vec<Problem>) {
        let mut bad = |field: &str, message: String| {
            problems.push(Problem::new(format!("models.{name}.{field}"), message));
        };
        if let Some(why) = url_problem(&self.url) {
            bad("url", why);
        }
        if self.model.trim().is_empty() {
            bad("model", "must name the server's model".into());
        } else if let Some(why) = crate::kit::text_problem(&self.model, 256, false) {
            bad("model", why);
        }
        if self.timeout.is_zero() || self.timeout > Duration::from_secs(600) {
            bad("timeout", "must be within 1ms..10m".into());
        }
        if !(64..=4096).contains(&self.max_side) {
            bad("max_side", "must be within 64..4096".into());
        }
        if !(1..=100).contains(&self.jpeg_quality) {
            bad("jpeg_quality", "must be within 1..100".into());
        }
        if !(1..=64).contains(&self.max_concurrency) {
            bad("max_concurrency", "must be within 1..64".into());
        }
        if let Some(n) = self.max_calls_per_hour
            && !(1..=MAX_CALLS_PER_HOUR).contains(&n)
        {
            bad(
                "max_calls_per_hour",
                format!("must be within 1..{MAX_CALLS_PER_HOUR}"),
            );
        }
        if !(1..=4096).contains(&self.max_tokens) {
            bad("max_tokens", "must be within 1..4096".into());
        }
        if self.retries > 10 {
            bad("retries", "must be at most 10".into());
        }
        if !(1..=100).contains(&self.breaker_failures) {
            bad("breaker_failures", "must be within 1..100".into());
        }
        if self.breaker_cooldown < Duration::from_millis(10)
            || self.breaker_cooldown > Duration::from_secs(3600)
        {
            bad("breaker_cooldown", "must be within 10ms..1h".into());
        }
        if self.api_key.as_deref().is_some_and(|k| k.trim().is_empty()) {
            bad(
                "api_key",
                "is empty (an unset ${VAR}?); leave it out for a server without a key".into(),
            );
        }
    }
}

/// Why `url` cannot be a server's base URL: not http(s), no host, or credentials,
/// a query or a fragment in it.
fn url_problem(url: &str) -> Option<String> {
    let shown = crate::kit::shown(&crate::source::redact(url));
    let Ok(uri) = url.parse::<ureq::http::Uri>() else {
        return Some(format!("{shown} is not a URL"));
    };
    match uri.scheme_str() {
        Some("http" | "https") => {}
        _ => {
            return Some(format!(
                "{shown} is not an http:// or https:// URL (e.g. http://127.0.0.1:11434)"
            ));
        }
    }
    let Some(authority) = uri.authority() else {
        return Some(format!("{shown} has no host"));
    };
    if authority.as_str().contains('@') {
        return Some(format!(
            "{shown} holds credentials: put the key in api_key_file or api_key = \"${{VAR}}\""
        ));
    }
    if uri.query().is_some() || url.contains('#') {
        return Some(format!("{shown} must not have a query or a fragment"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(extra: &str) -> Vec<String> {
        let cfg: RemoteConfig = toml::from_str(&format!(
            "url = \"http://127.0.0.1:1/v1\"\nmodel = \"m\"\n{extra}"
        ))
        .unwrap();
        let mut p = Vec::new();
        cfg.check("vlm", &mut p);
        p.into_iter().map(|p| p.to_string()).collect()
    }

    #[test]
    fn each_bound_is_checked_with_its_path() {
        assert!(problems("").is_empty());
        assert_eq!(
            problems("max_side = 10\nmax_concurrency = 0\nmax_calls_per_hour = 0"),
            [
                "models.vlm.max_side: must be within 64..4096",
                "models.vlm.max_concurrency: must be within 1..64",
                "models.vlm.max_calls_per_hour: must be within 1..100000",
            ]
        );
        assert_eq!(
            problems("api_key = \" \""),
            [
                "models.vlm.api_key: is empty (an unset ${VAR}?); leave it out for a server without a key"
            ]
        );
    }

    #[test]
    fn only_plain_http_urls_are_taken() {
        assert_eq!(url_problem("https://api.openrouter.ai/api/v1"), None);
        assert_eq!(url_problem("http://[::1]:11434"), None);
        let ftp = url_problem("ftp://host/v1").unwrap();
        assert!(ftp.contains("not an http:// or https:// URL"), "{ftp}");
        assert!(url_problem("localhost:11434").is_some());
        let creds = url_problem("http://user:secret@host/v1").unwrap();
        assert!(
            creds.contains("holds credentials") && !creds.contains("secret"),
            "{creds}"
        );
        assert!(url_problem("http://host/v1?key=x").is_some());
    }

    #[test]
    fn the_key_is_never_in_debug_output() {
        let cfg: RemoteConfig =
            toml::from_str("url = \"http://h/v1\"\nmodel = \"m\"\napi_key = \"sk-top-secret\"")
                .unwrap();
        let shown = format!("{cfg:?}");
        assert!(
            !shown.contains("sk-top-secret") && shown.contains("<redacted>"),
            "{shown}"
        );
    }
}
