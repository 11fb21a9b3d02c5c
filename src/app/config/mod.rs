//! Config: the TOML file that names the broker, the models, the cameras and their
//! standing queries.
//!
//! Loading reads and parses the file, expands `${VAR}` / `${VAR:-default}` from the
//! environment in its string values (after parsing, so that no value can change the
//! file's structure, see `env`), deserialises each section separately (so that a typo in one camera does not hide
//! the problems of another), resolves relative paths against the file's folder, and
//! validates everything at once. Every problem carries its path, e.g.
//! `cameras[1].queries[0].on: must be greater than off (0.5)`.
//!
//! ```no_run
//! let config = ocellus::app::config::load(std::path::Path::new("pipelines/demo.toml"))
//!     .map_err(|e| e.to_string())?;
//! println!("{} cameras", config.cameras.len());
//! # Ok::<(), String>(())
//! ```

mod aggregate;
mod env;
mod error;
mod sections;
mod validate;

use std::path::{Path, PathBuf};

pub use aggregate::Config;
pub use error::ConfigError;

use crate::app::http::TokenError;
pub use validate::check_runtime_query;

use crate::kit::Problem;

/// Reads, expands, parses and validates the config at `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    parse(&text, path)
}

/// Parses config text; `path` names it in messages and anchors relative paths.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    match parse_all(text, path) {
        (Some(config), problems) if problems.is_empty() => Ok(config),
        (_, problems) => Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        }),
    }
}

/// What `ocellus check` reports: [`load`] and [`preflight`] together, so that every
/// problem of the file, structural, semantic or a missing file, is listed at once.
pub fn check(path: &Path) -> Result<Config, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read {
        path: path.to_path_buf(),
        source: e,
    })?;
    let (config, mut problems) = parse_all(&text, path);
    if let Some(config) = &config {
        problems.extend(preflight(config));
    }
    match config {
        Some(config) if problems.is_empty() => Ok(config),
        _ => Err(ConfigError::Invalid {
            path: path.to_path_buf(),
            problems,
        }),
    }
}

/// The config as far as it could be read, and every problem found in it; no config
/// only for a TOML syntax error.
fn parse_all(text: &str, path: &Path) -> (Option<Config>, Vec<Problem>) {
    let mut problems = Vec::new();
    let mut table: toml::Table = match toml::from_str(text) {
        Ok(t) => t,
        Err(e) => {
            problems.push(Problem::new("", syntax_error(text, &e)));
            return (None, problems);
        }
    };
    // After parsing: a value from the environment can hold any character without
    // changing the file's structure.
    let from_env = env::expand_table(&mut table, &mut problems);
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let base = absolute
        .parent()
        .map(Path::to_path_buf)
        .unwrap_or_else(|| PathBuf::from("/"));
    // Structural problems (unknown keys, wrong types) leave the key out; what could be
    // read is still checked, so every problem of the file is reported at once.
    let config = sections::build(table, path, &base, &from_env, &mut problems);
    validate::check(&config, &mut problems);
    if let Some(m) = &config.mqtt {
        problems.extend(m.problems());
    }
    if let Some(h) = &config.http {
        problems.extend(h.problems());
    }
    (Some(config), problems)
}

/// A TOML syntax error as `line L, column C: what`, without the source line that
/// toml's own message quotes (it may hold a secret written in the file).
fn syntax_error(text: &str, e: &toml::de::Error) -> String {
    let what: String = e
        .message()
        .trim()
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    match e.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("TOML syntax error at line {line}, column {column}: {what}")
        }
        None => format!("TOML syntax error: {what}"),
    }
}

#[cfg(test)]
mod tests;

/// Checks that what the config points at exists: model folders and files, file
/// cameras' media, secret files (and that the HTTP token file holds a token). `check` reports these; `run` tolerates them (the
/// affected camera or model fails alone, with its own error line).
pub fn preflight(config: &Config) -> Vec<Problem> {
    let mut problems = Vec::new();
    let mut exists = |at: String, p: &Path| {
        if !p.exists() {
            problems.push(Problem::new(at, format!("{} does not exist", p.display())));
        }
    };
    for (name, m) in &config.models {
        if let Some(dir) = m.dir() {
            exists(format!("models.{name}.dir"), dir);
        }
        if m.dir().is_none_or(Path::is_dir) {
            for (field, file) in m.required_files() {
                exists(format!("models.{name}.{field}"), file);
            }
        }
    }
    for (i, cam) in config.cameras.iter().enumerate() {
        if cam.kind() == Some(crate::source::SourceKind::File) {
            let path = cam.url.strip_prefix("file://").unwrap_or(&cam.url);
            exists(format!("cameras[{i}].url"), Path::new(path));
        }
    }
    if let Some(m) = &config.mqtt {
        for (field, p) in [
            ("password_file", &m.password_file),
            ("ca_file", &m.ca_file),
            ("cert_file", &m.cert_file),
            ("key_file", &m.key_file),
        ] {
            if let Some(p) = p {
                exists(format!("mqtt.{field}"), p);
            }
        }
    }
    if let Some(http) = &config.http
        && let Some(f) = &http.token_file
    {
        exists("http.token_file".into(), f);
        // An empty (or unreadable) token file would leave the endpoints off at `run`.
        if f.exists()
            && let Err(e) = http.read_token()
        {
            let why = match &e {
                TokenError::Read { path, source } => format!("{}: {source}", path.display()),
                TokenError::File { path, why } => format!("{}: {why}", path.display()),
                TokenError::Token(why) => why.to_string(),
            };
            problems.push(Problem::new("http.token_file", why));
        }
    }
    problems
}
