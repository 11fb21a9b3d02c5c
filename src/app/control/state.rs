//! The runtime changes to the config file's queries, and the file that keeps them
//! across restarts (`<state_dir>/queries.json`, replaced atomically on each change,
//! at most [`MAX_STATE_FILE_BYTES`]; a file that cannot be read is moved aside to
//! `queries.json.bad-<UTC time>` rather than overwritten).

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use super::error::StateError;
use super::limits::MAX_STATE_FILE_BYTES;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Every camera's runtime changes.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Overrides {
    #[serde(default)]
    /// Each camera's changes, by camera id.
    pub cameras: BTreeMap<String, CameraOverrides>,
}

/// One camera's runtime changes.
#[derive(Debug, Default, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraOverrides {
    /// Queries added or replaced at runtime: their JSON specs as received (id set).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub set: BTreeMap<String, Value>,
    /// Queries of the config file deleted at runtime.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub deleted: BTreeSet<String>,
}

impl CameraOverrides {
    /// Whether the camera has no runtime change.
    pub fn is_empty(&self) -> bool {
        self.set.is_empty() && self.deleted.is_empty()
    }
}

/// `<state_dir>/queries.json`.
#[derive(Debug, Clone)]
pub struct StateFile {
    path: PathBuf,
}

impl StateFile {
    /// The file `queries.json` in `dir` (the `[mqtt] state_dir`).
    pub fn in_dir(dir: &Path) -> Self {
        Self {
            path: dir.join("queries.json"),
        }
    }

    /// Where the file is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The saved overrides; none when the file does not exist yet. A file over
    /// [`MAX_STATE_FILE_BYTES`] is not read (it is not one this daemon wrote).
    pub fn load(&self) -> Result<Overrides, StateError> {
        let path = || self.path.clone();
        let file = match std::fs::File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Overrides::default());
            }
            Err(source) => {
                return Err(StateError::Read {
                    path: path(),
                    source,
                });
            }
        };
        let mut bytes = Vec::new();
        file.take(MAX_STATE_FILE_BYTES as u64 + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| StateError::Read {
                path: path(),
                source,
            })?;
        if bytes.len() > MAX_STATE_FILE_BYTES {
            return Err(StateError::TooLargeToRead { path: path() });
        }
        serde_json::from_slice(&bytes).map_err(|source| StateError::Parse {
            path: path(),
            source,
        })
    }

    /// Renames the file to `queries.json.bad-<UTC time>` (kept for its owner, out of
    /// the way of the next save); where it went.
    pub fn set_aside(&self) -> std::io::Result<PathBuf> {
        let stamp: String = humantime::format_rfc3339_seconds(std::time::SystemTime::now())
            .to_string()
            .chars()
            .filter(|c| !matches!(c, '-' | ':'))
            .collect();
        let name = |n: u32| {
            let mut s = self.path.as_os_str().to_owned();
            s.push(format!(".bad-{stamp}"));
            if n > 0 {
                s.push(format!("-{n}"));
            }
            PathBuf::from(s)
        };
        let to = (0..100)
            .map(name)
            .find(|p| !p.exists())
            .unwrap_or_else(|| name(100));
        std::fs::rename(&self.path, &to)?;
        Ok(to)
    }

    /// Writes `overrides` to a temporary file, syncs it and renames it over the old
    /// one, so a crash leaves either the old or the new file, never a torn one.
    pub fn save(&self, overrides: &Overrides) -> Result<(), StateError> {
        let fail = |what: &'static str, source: std::io::Error| StateError::Write {
            path: self.path.clone(),
            what,
            source,
        };
        if let Some(dir) = self.path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| fail("create its folder", e))?;
        }
        let tmp = self.path.with_extension("json.tmp");
        let text = serde_json::to_vec_pretty(overrides).map_err(StateError::Encode)?;
        if text.len() > MAX_STATE_FILE_BYTES {
            return Err(StateError::TooLargeToWrite {
                path: self.path.clone(),
                bytes: text.len(),
            });
        }
        let mut file = std::fs::File::create(&tmp).map_err(|e| fail("write", e))?;
        file.write_all(&text)
            .and_then(|()| file.sync_all())
            .map_err(|e| fail("write", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| fail("replace", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_missing_file() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(&dir.path().join("nested"));
        assert_eq!(file.load().unwrap(), Overrides::default());
        let mut o = Overrides::default();
        let cam = o.cameras.entry("door".into()).or_default();
        cam.set.insert(
            "cup".into(),
            serde_json::json!({"id": "cup", "ask": "a cup?", "kind": "count"}),
        );
        cam.deleted.insert("person".into());
        file.save(&o).unwrap();
        assert_eq!(file.load().unwrap(), o);
        assert!(!file.path().with_extension("json.tmp").exists());
    }

    #[test]
    fn a_damaged_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path());
        std::fs::write(file.path(), b"{\"cameras\": [").unwrap();
        let e = file.load().unwrap_err().to_string();
        assert!(e.contains("queries.json"), "{e}");
        let to = file.set_aside().unwrap();
        assert!(!file.path().exists());
        assert_eq!(std::fs::read(&to).unwrap(), b"{\"cameras\": [");
        // A second one in the same second gets its own name.
        std::fs::write(file.path(), b"x").unwrap();
        let again = file.set_aside().unwrap();
        assert_ne!(again, to);
        assert!(again.to_string_lossy().contains("queries.json.bad-"));
    }

    #[test]
    fn an_oversized_file_is_not_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = StateFile::in_dir(dir.path());
        std::fs::write(file.path(), vec![b' '; MAX_STATE_FILE_BYTES + 1]).unwrap();
        let e = file.load().unwrap_err().to_string();
        assert!(e.contains("larger than its limit"), "{e}");
    }
}
