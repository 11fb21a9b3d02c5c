//! What can go wrong managing models, each as one line naming the model, file, URL or
//! path (never a token).

use std::path::PathBuf;

use thiserror::Error;

use super::layout::LayoutError;

/// A failed HTTP transfer of one URL (the caller adds model and file).
#[derive(Debug, Error)]
pub enum FetchError {
    /// DNS, TCP, TLS or a time-out: the server was not reached.
    #[error("{url}: unreachable ({})", unreachable(source))]
    Unreachable {
        url: String,
        #[source]
        source: ureq::Error,
    },
    #[error("{url}: HTTP {status}{hint}")]
    Status {
        url: String,
        status: u16,
        hint: &'static str,
    },
    /// The server answered with something else than HTTP this client speaks.
    #[error("{url}: {source}")]
    Http {
        url: String,
        #[source]
        source: ureq::Error,
    },
    /// The answers do not lead to the file (a redirect without a location, ...).
    #[error("{url}: {detail}")]
    Protocol { url: String, detail: String },
    /// The answer is (or says it is) larger than the file may be.
    #[error("{url}: {detail}")]
    TooLarge { url: String, detail: String },
    #[error(
        "{url}: interrupted after {have} of {total} bytes ({source}); the .part file is kept: pull again to resume"
    )]
    Interrupted {
        url: String,
        have: u64,
        total: String,
        #[source]
        source: Interruption,
    },
}

/// What a ureq error that did not reach the server says.
fn unreachable(e: &ureq::Error) -> String {
    match e {
        ureq::Error::Timeout(t) => format!("timed out: {t}"),
        ureq::Error::HostNotFound => "host not found".into(),
        ureq::Error::ConnectionFailed => "connection failed".into(),
        ureq::Error::Io(io) => io.to_string(),
        other => other.to_string(),
    }
}

/// Why a body stopped before its end.
#[derive(Debug, Error)]
pub enum Interruption {
    #[error("{0}")]
    Io(#[source] std::io::Error),
    #[error("connection closed early")]
    ClosedEarly,
}

/// What is wrong with a catalogue ([`HubError::Catalog`] names it).
#[derive(Debug, Error)]
pub enum CatalogError {
    #[error("{0}")]
    Read(#[source] std::io::Error),
    /// TOML's message, on one line.
    #[error("{}", one_line(&.0.to_string()))]
    Syntax(#[source] toml::de::Error),
    #[error("model[{index}] {name}: {source}")]
    Entry {
        index: usize,
        name: String,
        #[source]
        source: EntryProblem,
    },
    #[error("model[{index}]: name {name} is used twice")]
    NameTwice { index: usize, name: String },
}

/// What is wrong with one catalogue entry.
#[derive(Debug, Error)]
pub enum EntryProblem {
    #[error("name must be letters, digits, '-' or '_'")]
    Name,
    #[error("family {family:?} is not one of {}", known.join(", "))]
    Family {
        family: String,
        known: &'static [&'static str],
    },
    #[error("repo {repo:?} must be owner/name")]
    Repo { repo: String },
    #[error("needs `repo` (Hugging Face) or `source`")]
    NoSource,
    #[error("revision {revision:?} is not a commit, tag or branch")]
    Revision { revision: String },
    #[error("has no [[model.file]]")]
    NoFiles,
    #[error("file {path:?}: {source}")]
    File {
        path: String,
        #[source]
        source: FileProblem,
    },
    #[error("file {path:?} is listed twice")]
    FileTwice { path: String },
    #[error("config: {0}")]
    Config(#[source] LayoutError),
}

/// What is wrong with one `[[model.file]]` of an entry.
#[derive(Debug, Error)]
pub enum FileProblem {
    #[error("{0}")]
    Path(#[from] BadPath),
    #[error("remote: {0}")]
    Remote(#[source] BadPath),
    #[error("has both `url` and `inline`")]
    UrlAndInline,
    #[error("needs `url` or `inline` (no repo)")]
    NoUrl,
    #[error("`remote` only applies to repository files")]
    RemoteOutsideRepo,
    #[error("url {url:?} is not http(s)")]
    NotHttp { url: String },
    #[error("sha256 must be 64 lowercase hex digits")]
    Sha256,
    #[error("size must be > 0")]
    ZeroSize,
    #[error("inline text hashes to {actual}, not {pinned}")]
    InlineHash { actual: String, pinned: String },
    #[error("inline text is {len} bytes, not {size}")]
    InlineSize { len: usize, size: u64 },
}

/// A path in a catalogue that could leave the model folder (or clash with the
/// manifest or a `.part`).
#[derive(Debug, Error)]
#[error("path must be relative, of letters, digits, '.', '-', '_' and '/'")]
pub struct BadPath;

/// TOML errors come with a source excerpt over several lines: keep the message, on
/// one line (a carriage return or other control character quoted from the file too).
pub(super) fn one_line(s: &str) -> String {
    let s: String = s
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect();
    s.lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::trim)
        .collect::<Vec<_>>()
        .join(" ")
}

/// Which hash disagreed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    Sha256,
    GitBlobSha1,
}

impl std::fmt::Display for HashKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            HashKind::Sha256 => "sha256",
            HashKind::GitBlobSha1 => "git blob sha1",
        })
    }
}

/// What was done about a bad file, said at the end of its error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Aftermath {
    /// The `.part` was deleted.
    Deleted,
    /// An import stopped before writing its manifest.
    NotImported,
}

impl std::fmt::Display for Aftermath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Aftermath::Deleted => "; the download was deleted",
            Aftermath::NotImported => "; nothing was imported",
        })
    }
}

/// An error of `ocellus models` (library side; the CLI prints it as one line).
#[derive(Debug, Error)]
pub enum HubError {
    #[error("unknown model {name:?}{hint}; see `ocellus models list`")]
    UnknownModel { name: String, hint: String },
    #[error("catalogue {origin}: {source}")]
    Catalog {
        origin: String,
        #[source]
        source: Box<CatalogError>,
    },
    #[error("model {model}: {file}: {source}")]
    Fetch {
        model: String,
        file: String,
        #[source]
        source: Box<FetchError>,
    },
    #[error("model {model}: {file}: {what} mismatch (expected {expected}, got {actual}){after}")]
    Mismatch {
        model: String,
        file: String,
        what: HashKind,
        expected: String,
        actual: String,
        after: Aftermath,
    },
    #[error(
        "model {model}: {file}: size mismatch (expected {expected} bytes, got {actual}){after}"
    )]
    Size {
        model: String,
        file: String,
        expected: u64,
        actual: u64,
        after: Aftermath,
    },
    #[error(
        "model {model}: {file}: {url} states no hash and the catalogue pins none; refused (pull --allow-unverified accepts it)"
    )]
    Unverifiable {
        model: String,
        file: String,
        url: String,
    },
    #[error("{}: {cause}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    #[error("model {model}: {}: missing {file} (needed by family {family})", dir.display())]
    Missing {
        model: String,
        dir: PathBuf,
        file: String,
        family: String,
    },
    #[error("{}: {detail}", dir.display())]
    Unidentified { dir: PathBuf, detail: String },
    #[error("{}: {source}", path.display())]
    Manifest {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },
    #[error("token file {}: {cause}", path.display())]
    Token {
        path: PathBuf,
        #[source]
        cause: std::io::Error,
    },
    /// What the family needs of a model folder cannot be told (its config is bad).
    #[error("model {model}: {source}")]
    Layout {
        model: String,
        #[source]
        source: LayoutError,
    },
    #[error("model {model}: {detail}")]
    Model { model: String, detail: String },
}

impl HubError {
    /// `Io` for `path`.
    pub fn io(path: impl Into<PathBuf>, cause: std::io::Error) -> Self {
        HubError::Io {
            path: path.into(),
            cause,
        }
    }
}
