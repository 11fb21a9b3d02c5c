//! `ocellus-model.json`: what an install put in a model folder (name, family, source,
//! revision and the commit the server reported, each file's size and sha256 and how it
//! was checked), so that `verify` can re-hash it later and a pull can be reproduced.
//!
//! ```no_run
//! use ocellus::hub::manifest::Manifest;
//! let dir = std::path::Path::new("/var/lib/ocellus/models/clip-vit-b32");
//! if let Some(m) = Manifest::read(dir).unwrap() {
//!     println!("{} @ {}: {} files", m.name, m.commit.as_deref().unwrap_or(&m.revision), m.files.len());
//! }
//! ```

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::HubError;
use super::catalog::Entry;
use super::layout;
pub use super::layout::MANIFEST_FILE;

/// How a file's hash was established at install time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Check {
    /// Equal to the catalogue's pinned sha256.
    Pinned,
    /// Equal to the sha256 the server stated (`X-Linked-Etag`).
    ServerSha256,
    /// Equal to the git blob sha1 the server stated (`ETag`).
    ServerGitSha1,
    /// Nothing to compare with (`--allow-unverified`, or an import of an unpinned file):
    /// the recorded sha256 is what arrived.
    None,
}

impl Check {
    pub fn verified(self) -> bool {
        self != Check::None
    }
}

/// One installed file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ManifestFile {
    pub path: String,
    pub size: u64,
    pub sha256: String,
    pub check: Check,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

/// The contents of `ocellus-model.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub name: String,
    pub family: String,
    pub licence: String,
    /// `Hugging Face owner/repo` or the catalogue's source.
    pub source: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub repo: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The revision asked for (catalogue or `--revision`).
    pub revision: String,
    /// The commit the server reported (`X-Repo-Commit`): pull it again with `--revision`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// `pull` or `import`.
    pub installed_by: String,
    /// RFC 3339, UTC.
    pub time: String,
    /// Extra keys of the `[models.NAME]` snippet.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub config: BTreeMap<String, String>,
    pub files: Vec<ManifestFile>,
}

impl Manifest {
    /// The manifest of catalogue `entry` installed now by `installed_by` (`pull` or
    /// `import`) with `files`, at the catalogue's revision (a pull then records its
    /// endpoint, the revision it asked for and the commit it got).
    pub fn for_entry(entry: &Entry, installed_by: &str, files: Vec<ManifestFile>) -> Self {
        Self {
            name: entry.name.clone(),
            family: entry.family.clone(),
            licence: entry.licence.clone(),
            source: entry.source_label(),
            repo: entry.repo.clone(),
            endpoint: None,
            revision: entry.revision.clone(),
            commit: None,
            installed_by: installed_by.into(),
            time: now(),
            config: entry.config.clone(),
            files,
        }
    }

    pub fn path(dir: &Path) -> PathBuf {
        dir.join(MANIFEST_FILE)
    }

    /// The manifest in `dir`, `None` when there is none.
    pub fn read(dir: &Path) -> Result<Option<Manifest>, HubError> {
        let path = Self::path(dir);
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(HubError::io(path, e)),
        };
        serde_json::from_str(&text)
            .map(Some)
            .map_err(|source| HubError::Manifest { path, source })
    }

    /// Writes the manifest into `dir` (through a temporary file, so a reader never
    /// sees half of one).
    pub fn write(&self, dir: &Path) -> Result<(), HubError> {
        let path = Self::path(dir);
        let tmp = dir.join(format!("{MANIFEST_FILE}.tmp"));
        let mut text = serde_json::to_string_pretty(self).map_err(|source| HubError::Manifest {
            path: path.clone(),
            source,
        })?;
        text.push('\n');
        let mut f = std::fs::File::create(&tmp).map_err(|e| HubError::io(&tmp, e))?;
        f.write_all(text.as_bytes())
            .and_then(|_| f.sync_all())
            .map_err(|e| HubError::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| HubError::io(&path, e))
    }

    /// The `[models.NAME]` table that uses the folder `dir`.
    pub fn snippet(&self, dir: &Path) -> String {
        layout::snippet(&self.name, &self.family, dir, &self.config)
    }

    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }
}

/// A model folder and its manifest.
#[derive(Debug, Clone)]
pub struct Installed {
    pub dir: PathBuf,
    pub manifest: Manifest,
}

impl Installed {
    /// The `[models.NAME]` table that uses this folder.
    pub fn snippet(&self) -> String {
        self.manifest.snippet(&self.dir)
    }
}

/// Now, as RFC 3339 UTC to the second.
pub fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_unknown_fields() {
        let dir = tempfile::tempdir().unwrap();
        let m = Manifest {
            name: "x".into(),
            family: "yolox".into(),
            licence: "MIT".into(),
            source: "here".into(),
            repo: None,
            endpoint: None,
            revision: "main".into(),
            commit: Some("c".repeat(40)),
            installed_by: "pull".into(),
            time: now(),
            config: BTreeMap::new(),
            files: vec![ManifestFile {
                path: "a.onnx".into(),
                size: 3,
                sha256: "0".repeat(64),
                check: Check::ServerGitSha1,
                url: None,
            }],
        };
        m.write(dir.path()).unwrap();
        assert_eq!(Manifest::read(dir.path()).unwrap(), Some(m));
        let text = std::fs::read_to_string(Manifest::path(dir.path())).unwrap();
        assert!(text.contains("\"check\": \"server-git-sha1\""), "{text}");
        std::fs::write(
            Manifest::path(dir.path()),
            text.replace("\"name\"", "\"nom\""),
        )
        .unwrap();
        let e = Manifest::read(dir.path()).unwrap_err().to_string();
        assert!(e.contains("ocellus-model.json: unknown field `nom`"), "{e}");
        assert_eq!(Manifest::read(&dir.path().join("none")).unwrap(), None);
    }
}
