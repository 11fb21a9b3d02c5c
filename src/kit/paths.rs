//! Paths in a config: relative ones are taken from the config file's folder.

use std::path::{Path, PathBuf};

/// Resolves `p` against `base` when it is relative, folding `.` and `..` (lexically,
/// so messages show the path the user meant).
pub fn resolve(base: &Path, p: &Path) -> PathBuf {
    use std::path::Component;
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        base.join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir if out.file_name().is_some() => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}
