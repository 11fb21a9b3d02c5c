//! What can go wrong managing models, each as one line naming the model, file, URL or
//! path (never a token).

use std::path::PathBuf;

use thiserror::Error;

/// A failed HTTP transfer of one URL (the caller adds model and file).
#[derive(Debug, Error)]
pub enum FetchError {
    #[error("{url}: unreachable ({cause})")]
    Unreachable { url: String, cause: String },
    #[error("{url}: HTTP {status}{hint}")]
    Status {
        url: String,
        status: u16,
        hint: &'static str,
    },
    #[error("{url}: {cause}")]
    Protocol { url: String, cause: String },
    /// The answer is (or says it is) larger than the file may be.
    #[error("{url}: {detail}")]
    TooLarge { url: String, detail: String },
    #[error(
        "{url}: interrupted after {have} of {total} bytes ({cause}); the .part file is kept: pull again to resume"
    )]
    Interrupted {
        url: String,
        have: u64,
        total: String,
        cause: String,
    },
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
    #[error("catalogue {origin}: {cause}")]
    Catalog { origin: String, cause: String },
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
    #[error("{}: {cause}", path.display())]
    Manifest { path: PathBuf, cause: String },
    #[error("token file {}: {cause}", path.display())]
    Token {
        path: PathBuf,
        cause: std::io::Error,
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
