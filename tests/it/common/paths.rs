//! Where things are: the shared read-only material (`shared_dir`, `models_dir`,
//! `media`) and programs on `PATH` (`find_program`).

use std::path::{Path, PathBuf};

/// The shared read-only material: `$OCELLUS_SHARED`, or `<crate>/../shared`.
pub fn shared_dir() -> PathBuf {
    let dir = match std::env::var_os("OCELLUS_SHARED") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join("shared"),
    };
    dir.canonicalize().unwrap_or(dir)
}

/// The ONNX models: `$OCELLUS_MODELS`, or `<shared>/models`.
pub fn models_dir() -> PathBuf {
    let dir = match std::env::var_os("OCELLUS_MODELS") {
        Some(p) if !p.is_empty() => PathBuf::from(p),
        _ => shared_dir().join("models"),
    };
    dir.canonicalize().unwrap_or(dir)
}

/// A file under `<shared>/media`; panics with a clear message when it is missing.
pub fn media(name: &str) -> PathBuf {
    let p = shared_dir().join("media").join(name);
    assert!(
        p.is_file(),
        "shared media file {} not found (set OCELLUS_SHARED to the shared folder)",
        p.display()
    );
    p
}

/// Finds a program on `PATH`, then in the given fallback directories.
pub fn find_program(name: &str, fallbacks: &[&str]) -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(fallbacks.iter().map(PathBuf::from))
        .map(|d| d.join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} not found on PATH (run deploy/setup.sh to install it)"))
}
