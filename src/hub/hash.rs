//! Content hashes of model files: sha256 (what catalogues pin and Hugging Face states
//! for LFS files in `X-Linked-Etag`) and git blob sha1 (Hugging Face's `ETag` of a
//! small file kept in git: sha1 of `"blob <len>\0"` + content).
//!
//! ```
//! use ocellus::hub::hash::{git_blob_sha1_of, hex, sha256_of};
//! assert_eq!(
//!     hex(&sha256_of(b"")),
//!     "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
//! );
//! // `git hash-object` of an empty file
//! assert_eq!(git_blob_sha1_of(b""), "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391");
//! ```

use std::fs::File;
use std::io::Read;
use std::path::Path;

use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::HubError;

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// sha256 of a byte string.
pub fn sha256_of(bytes: &[u8]) -> Vec<u8> {
    Sha256::digest(bytes).to_vec()
}

/// Git blob sha1 of a byte string, hex.
pub fn git_blob_sha1_of(bytes: &[u8]) -> String {
    let mut h = Sha1::new();
    h.update(format!("blob {}\0", bytes.len()).as_bytes());
    h.update(bytes);
    hex(&h.finalize())
}

/// The hashes of one file on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHashes {
    pub size: u64,
    pub sha256: String,
    /// Only computed when asked for (`want_git`).
    pub git_sha1: Option<String>,
}

/// Reads `path` once and returns its size, sha256 and (with `want_git`) git blob sha1.
pub fn hash_file(path: &Path, want_git: bool) -> Result<FileHashes, HubError> {
    let mut file = File::open(path).map_err(|e| HubError::io(path, e))?;
    let size = file.metadata().map_err(|e| HubError::io(path, e))?.len();
    let mut sha256 = Sha256::new();
    let mut git = want_git.then(|| {
        let mut h = Sha1::new();
        h.update(format!("blob {size}\0").as_bytes());
        h
    });
    let mut buf = vec![0u8; 1 << 20];
    let mut read = 0u64;
    loop {
        let n = file.read(&mut buf).map_err(|e| HubError::io(path, e))?;
        if n == 0 {
            break;
        }
        read += n as u64;
        sha256.update(&buf[..n]);
        if let Some(g) = git.as_mut() {
            g.update(&buf[..n]);
        }
    }
    if read != size {
        return Err(HubError::io(
            path,
            std::io::Error::other(format!("changed while hashing ({size} bytes, read {read})")),
        ));
    }
    Ok(FileHashes {
        size,
        sha256: hex(&sha256.finalize()),
        git_sha1: git.map(|g| hex(&g.finalize())),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_hashes_match_the_in_memory_ones() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("f");
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 7 % 251) as u8).collect();
        std::fs::write(&p, &data).unwrap();
        let h = hash_file(&p, true).unwrap();
        assert_eq!(h.size, data.len() as u64);
        assert_eq!(h.sha256, hex(&sha256_of(&data)));
        assert_eq!(
            h.git_sha1.as_deref(),
            Some(git_blob_sha1_of(&data).as_str())
        );
        // `printf 'hello\n' | git hash-object --stdin`
        assert_eq!(
            git_blob_sha1_of(b"hello\n"),
            "ce013625030ba8dba906f756967f9e9ca394464a"
        );
    }
}
