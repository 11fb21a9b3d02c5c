//! [`Store`]: a query's examples on disk — `<dir>/<camera>/<query>/<id>.json` (the
//! example) beside `<id>.jpg` (its crop). Each file is written to a temporary name
//! and renamed, so a crash leaves the old set or the new one. A file that cannot be
//! read is reported (one line naming it) and skipped: the others still load.

use std::path::{Path, PathBuf};

use super::error::TeachError;
use super::example::Example;

/// One query's folder of examples.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// The folder of `camera`'s `query` under `root`.
    pub fn new(root: &Path, camera: &str, query: &str) -> Self {
        Self {
            dir: root.join(camera).join(query),
        }
    }

    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The crop of example `id`.
    pub fn jpeg_path(&self, id: &str) -> PathBuf {
        self.dir.join(format!("{id}.jpg"))
    }

    /// Every readable example, in id order, and the problems of the others.
    pub fn load(&self) -> (Vec<Example>, Vec<TeachError>) {
        let mut problems = Vec::new();
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), problems),
            Err(e) => return (Vec::new(), vec![TeachError::io(&self.dir, e)]),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut examples = Vec::new();
        for file in files {
            let text = match std::fs::read(&file) {
                Ok(t) => t,
                Err(e) => {
                    problems.push(TeachError::io(&file, e));
                    continue;
                }
            };
            match serde_json::from_slice::<Example>(&text) {
                Ok(ex) if file.file_stem().is_some_and(|s| *s == *ex.id) => examples.push(ex),
                Ok(ex) => problems.push(TeachError::Image {
                    file: file.clone(),
                    why: format!("holds example {:?}, not the one its name says", ex.id),
                }),
                Err(source) => problems.push(TeachError::Corrupt { file, source }),
            }
        }
        (examples, problems)
    }

    /// Writes `example` and its crop.
    pub fn save(&self, example: &Example, jpeg: Option<&[u8]>) -> Result<(), TeachError> {
        std::fs::create_dir_all(&self.dir).map_err(|e| TeachError::io(&self.dir, e))?;
        if let Some(jpeg) = jpeg {
            write_atomic(&self.jpeg_path(&example.id), jpeg)?;
        }
        let json = serde_json::to_vec(example).map_err(|source| TeachError::Corrupt {
            file: self.dir.join(format!("{}.json", example.id)),
            source,
        })?;
        write_atomic(&self.dir.join(format!("{}.json", example.id)), &json)
    }

    /// Removes example `id` (its JSON first: a crop alone is never loaded).
    pub fn remove(&self, id: &str) -> Result<(), TeachError> {
        let json = self.dir.join(format!("{id}.json"));
        std::fs::remove_file(&json).map_err(|e| TeachError::io(&json, e))?;
        let _ = std::fs::remove_file(self.jpeg_path(id));
        Ok(())
    }
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), TeachError> {
    let tmp = path.with_extension("partial");
    std::fs::write(&tmp, bytes).map_err(|e| TeachError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| TeachError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::teach::Source;

    fn example(id: &str) -> Example {
        Example {
            id: id.into(),
            state: "ON".into(),
            time: "2026-12-02T00:00:00Z".into(),
            source: Source::Cli,
            by: "person".into(),
            media: None,
            region: None,
            embedder: "m".into(),
            embedding: vec![1.0, 0.0],
        }
    }

    #[test]
    fn a_corrupt_file_is_reported_and_the_others_load() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::new(dir.path(), "door", "open");
        store.save(&example("a"), Some(b"jpeg")).unwrap();
        store.save(&example("b"), None).unwrap();
        std::fs::write(store.dir().join("c.json"), b"{\"id\": \"c\", \"sta").unwrap();
        let (examples, problems) = store.load();
        assert_eq!(
            examples.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
            ["a", "b"]
        );
        assert_eq!(problems.len(), 1);
        assert!(
            problems[0].to_string().contains("c.json"),
            "{}",
            problems[0]
        );
        store.remove("a").unwrap();
        assert!(!store.jpeg_path("a").exists());
        assert_eq!(store.load().0.len(), 1);
    }
}
