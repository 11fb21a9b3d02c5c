//! The snapshot folder of one camera: `<time>-<query>.jpg` files, the oldest removed
//! once more than `keep` files or `max_bytes` bytes are there. Every writer of a
//! camera's snapshots (its evaluator and its slow lane) shares one
//! [`Folder`], so writes and the retention pass never interleave.

use std::path::PathBuf;
use std::sync::Mutex;
use std::time::SystemTime;

use super::error::SnapshotError;

/// A camera's snapshot folder and its retention limit.
#[derive(Debug)]
pub(super) struct Folder {
    dir: PathBuf,
    keep: usize,
    max_bytes: u64,
    /// Held while a file is written and the folder trimmed.
    lock: Mutex<()>,
}

impl Folder {
    pub(super) fn new(dir: PathBuf, (keep, max_bytes): (usize, u64)) -> Self {
        Self {
            dir,
            keep,
            max_bytes,
            lock: Mutex::new(()),
        }
    }

    /// Writes `jpeg` and applies the retention limit; returns the file's name.
    pub(super) fn write(
        &self,
        jpeg: &[u8],
        time: SystemTime,
        query: &str,
    ) -> Result<String, SnapshotError> {
        let _held = self.lock.lock().unwrap_or_else(|e| e.into_inner());
        let (dir, keep, max_bytes) = (&self.dir, self.keep, self.max_bytes);
        let err = |source: std::io::Error| SnapshotError::Folder {
            dir: dir.clone(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(err)?;
        // RFC 3339 in UTC sorts by time; ':' is avoided for other file systems.
        let stamp = humantime::format_rfc3339_millis(time)
            .to_string()
            .replace(':', "-");
        let name = format!("{stamp}-{query}.jpg");
        std::fs::write(dir.join(&name), jpeg).map_err(err)?;
        let mut files: Vec<(String, u64)> = std::fs::read_dir(dir)
            .map_err(err)?
            .filter_map(Result::ok)
            .filter_map(|e| {
                let name = e.file_name().into_string().ok()?;
                let len = e.metadata().ok()?.len();
                name.ends_with(".jpg").then_some((name, len))
            })
            .collect();
        files.sort();
        let mut total: u64 = files.iter().map(|(_, len)| len).sum();
        let mut count = files.len();
        for (old, len) in &files {
            if (count <= keep && total <= max_bytes) || *old == name {
                break;
            }
            if std::fs::remove_file(dir.join(old)).is_ok() {
                count -= 1;
                total = total.saturating_sub(*len);
            }
        }
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn the_oldest_files_go_beyond_the_limits() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let folder = Folder::new(dir.path().to_path_buf(), (3, 10_000));
        let mut names = Vec::new();
        for i in 0..5 {
            let t = t0 + Duration::from_secs(i);
            names.push(folder.write(&[0u8; 100], t, "person").unwrap());
        }
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, names[2..].to_vec());
        // A byte limit of 250 keeps two 100-byte files.
        Folder::new(dir.path().to_path_buf(), (10, 250))
            .write(&[0u8; 100], t0 + Duration::from_secs(9), "person")
            .unwrap();
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 2);
    }
}
