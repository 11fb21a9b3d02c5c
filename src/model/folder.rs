//! A model folder's default files: [`single_file`] finds the one file of a kind (the
//! `.onnx`, the labels' `.txt`) when the config names none.
//!
//! ```
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("nano.onnx"), b"").unwrap();
//! std::fs::write(dir.path().join("README.txt"), b"").unwrap();
//! let found = ocellus::model::single_file("people", dir.path(), "onnx").unwrap();
//! assert!(found.ends_with("nano.onnx"));
//! let e = ocellus::model::single_file("people", dir.path(), "txt").unwrap_err();
//! assert!(e.to_string().ends_with("no .txt file in the folder"), "{e}");
//! ```

use std::path::{Path, PathBuf};

use super::error::ModelError;

/// Why a folder has no single file of a kind.
#[derive(Debug, thiserror::Error)]
pub enum FolderError {
    #[error(transparent)]
    Read(#[from] std::io::Error),
    #[error("no .{ext} file in the folder")]
    None { ext: String },
    #[error("several .{ext} files; name one with `file`/`labels`")]
    Several { ext: String },
}

/// The one file with extension `ext` in `dir` (a model folder's default); a manifest
/// or readme does not count.
pub fn single_file(model: &str, dir: &Path, ext: &str) -> Result<PathBuf, ModelError> {
    let err = |e: FolderError| ModelError::load(model, dir, e);
    let entries = std::fs::read_dir(dir).map_err(|e| err(e.into()))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .filter(|p| {
            !p.file_stem().is_some_and(|s| {
                s.eq_ignore_ascii_case("manifest") || s.eq_ignore_ascii_case("readme")
            })
        })
        .collect();
    found.sort();
    match found.len() {
        1 => Ok(found.remove(0)),
        0 => Err(err(FolderError::None { ext: ext.into() })),
        _ => Err(err(FolderError::Several { ext: ext.into() })),
    }
}
