//! `ocellus models verify`: re-hashes installed model folders against their manifest
//! (and the catalogue's pins for the same revision) and checks that every file the
//! family needs is still there.
//!
//! ```no_run
//! use ocellus::hub::{catalog::Catalog, verify::verify_dir};
//! let report = verify_dir("/var/lib/ocellus/models/yolox-nano".as_ref(), &Catalog::builtin().unwrap());
//! for p in &report.problems {
//!     println!("{}: {p}", report.name);
//! }
//! ```

use std::path::{Path, PathBuf};

use super::catalog::Catalog;
use super::hash::hash_file;
use super::layout;
use super::manifest::{MANIFEST_FILE, Manifest};

/// What `verify` found in one model folder.
#[derive(Debug, Clone)]
pub struct Report {
    /// The manifest's name (the folder name without one).
    pub name: String,
    pub dir: PathBuf,
    /// One line each: `onnx/x.onnx: sha256 mismatch (expected …, got …)`.
    pub problems: Vec<String>,
    pub files: usize,
    pub bytes: u64,
    /// Files whose hash was only recorded, never checked against a pin or the server.
    pub unverified: usize,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }
}

/// The folders under `models_dir` that hold a manifest, sorted.
pub fn installed(models_dir: &Path) -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = std::fs::read_dir(models_dir)
        .map(|rd| {
            rd.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.join(MANIFEST_FILE).is_file())
                .collect()
        })
        .unwrap_or_default();
    dirs.sort();
    dirs
}

/// Re-hashes the model folder `dir`.
pub fn verify_dir(dir: &Path, catalog: &Catalog) -> Report {
    let folder_name = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| dir.display().to_string());
    let mut report = Report {
        name: folder_name,
        dir: dir.to_path_buf(),
        problems: Vec::new(),
        files: 0,
        bytes: 0,
        unverified: 0,
    };
    let manifest = match Manifest::read(dir) {
        Ok(Some(m)) => m,
        Ok(None) => {
            report.problems.push(format!(
                "not installed (no {MANIFEST_FILE} in {})",
                dir.display()
            ));
            return report;
        }
        Err(e) => {
            report.problems.push(e.to_string());
            return report;
        }
    };
    report.name = manifest.name.clone();
    let entry = catalog
        .entries()
        .iter()
        .find(|e| e.name == manifest.name && e.revision == manifest.revision);
    for f in &manifest.files {
        let path = dir.join(&f.path);
        report.files += 1;
        if !f.check.verified() {
            report.unverified += 1;
        }
        let size = match std::fs::metadata(&path) {
            Ok(m) if m.is_file() => m.len(),
            _ => {
                report.problems.push(format!("{}: missing", f.path));
                continue;
            }
        };
        if size != f.size {
            report.problems.push(format!(
                "{}: size {size} bytes, expected {}",
                f.path, f.size
            ));
            continue;
        }
        let actual = match hash_file(&path, false) {
            Ok(h) => h.sha256,
            Err(e) => {
                report.problems.push(e.to_string());
                continue;
            }
        };
        report.bytes += size;
        let pin = entry
            .and_then(|e| e.files.iter().find(|c| c.path == f.path))
            .and_then(|c| c.sha256.as_ref());
        if actual != f.sha256 {
            report.problems.push(format!(
                "{}: sha256 mismatch (expected {}, got {actual})",
                f.path, f.sha256
            ));
        } else if let Some(pin) = pin
            && *pin != actual
        {
            report.problems.push(format!(
                "{}: sha256 mismatch (expected {pin} as the catalogue pins, got {actual})",
                f.path
            ));
        }
    }
    match layout::missing(&manifest.name, &manifest.family, dir, &manifest.config) {
        Ok(missing) => {
            for m in missing {
                if !report
                    .problems
                    .iter()
                    .any(|p| p.starts_with(&format!("{m}:")))
                {
                    report.problems.push(format!(
                        "{m}: missing (needed by family {})",
                        manifest.family
                    ));
                }
            }
        }
        Err(e) => report.problems.push(format!("{MANIFEST_FILE}: {e}")),
    }
    report
}
