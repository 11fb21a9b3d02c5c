//! Model management (`ocellus models list|pull|import|verify`): a catalogue of the
//! models ocellus can run ([`catalog`], data in `catalog.toml`), downloads from Hugging
//! Face or direct URLs with resume and sha256 verification ([`download`], [`pull`]),
//! registration of folders copied by hand ([`import`]), and re-hashing of installed
//! models against the manifest each install writes ([`manifest`], [`verify`]).
//!
//! A model lands in `<dir>/<name>/` with the repository's relative paths (the layout
//! the family loaders expect) plus `ocellus-model.json`; `<dir>` is `--dir`, else
//! `$OCELLUS_MODELS`, else `/var/lib/ocellus/models`.
//!
//! ```no_run
//! use ocellus::hub::{catalog::Catalog, pull::{pull, PullOptions}};
//! let catalog = Catalog::builtin().unwrap();
//! let entry = catalog.get("yolox-nano").unwrap();
//! let dir = ocellus::hub::default_dir();
//! let installed = pull(entry, &dir, &PullOptions::default()).unwrap();
//! println!("{}", installed.snippet());
//! ```

pub mod catalog;
pub mod cli;
pub mod download;
mod error;
pub mod hash;
pub mod import;
pub mod layout;
pub mod manifest;
mod progress;
pub mod pull;
pub mod verify;

use std::path::PathBuf;

pub use error::{
    Aftermath, BadPath, CatalogError, EntryProblem, FetchError, FileProblem, HashKind, HubError,
    Interruption,
};

/// Where models go without `--dir`: `$OCELLUS_MODELS`, else the systemd
/// StateDirectory `/var/lib/ocellus/models`.
pub fn default_dir() -> PathBuf {
    match std::env::var_os("OCELLUS_MODELS") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => PathBuf::from("/var/lib/ocellus/models"),
    }
}

/// `1.5 MB`, `351.7 MB`, `2.1 GB` (decimal units, as download sizes are quoted).
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["kB", "MB", "GB", "TB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut v = bytes as f64 / 1000.0;
    let mut unit = 0;
    while v >= 1000.0 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::human_size;

    #[test]
    fn sizes_read_like_download_sizes() {
        assert_eq!(human_size(621), "621 B");
        assert_eq!(human_size(3_660_092), "3.7 MB");
        assert_eq!(human_size(351_685_709), "351.7 MB");
        assert_eq!(human_size(2_000_000_000), "2.0 GB");
    }
}
