//! `ocellus models import DIR`: registers a model folder copied by hand (air-gapped
//! boxes). The folder is identified by `--name` or by matching its files to the
//! catalogue, checked for every file its family needs, hashed, compared with the
//! catalogue's pins (a mismatch is an error), and given the same manifest a pull writes.
//!
//! ```no_run
//! use ocellus::hub::{catalog::Catalog, import::import};
//! let catalog = Catalog::builtin().unwrap();
//! let m = import(&catalog, "/media/usb/clip-vit-b32".as_ref(), None).unwrap();
//! print!("{}", m.snippet());
//! ```

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::catalog::{Catalog, Entry};
use super::hash::hash_file;
use super::layout::{self, Need};
use super::manifest::{Check, Installed, Manifest, ManifestFile};
use super::{Aftermath, HashKind, HubError, human_size};
use crate::model::single_file;

/// Imports the model folder `dir` (as catalogue entry `name`, or the entry its files match).
pub fn import(catalog: &Catalog, dir: &Path, name: Option<&str>) -> Result<Installed, HubError> {
    let dir = dir.canonicalize().map_err(|e| HubError::io(dir, e))?;
    if !dir.is_dir() {
        return Err(HubError::io(&dir, std::io::Error::other("not a directory")));
    }
    let mut hashes = Hashes::default();
    let entry = match name {
        Some(n) => catalog.get(n)?,
        None => identify(catalog, &dir, &mut hashes)?,
    };
    let missing =
        layout::missing(&entry.name, &entry.family, &dir, &entry.config).map_err(|source| {
            HubError::Layout {
                model: entry.name.clone(),
                source,
            }
        })?;
    if !missing.is_empty() {
        return Err(HubError::Missing {
            model: entry.name.clone(),
            dir,
            file: missing.join(", "),
            family: entry.family.clone(),
        });
    }
    let mut files = Vec::new();
    for f in &entry.files {
        let path = dir.join(&f.path);
        if !path.is_file() {
            tracing::warn!(
                "model {}: {}: not in {} (the family does not need it by that name), not recorded",
                entry.name,
                f.path,
                dir.display()
            );
            continue;
        }
        let (size, sha256) = hashes.of(&path)?;
        let pin = f.sha256.as_ref();
        if let Some(pin) = pin
            && *pin != sha256
        {
            return Err(HubError::Mismatch {
                model: entry.name.clone(),
                file: f.path.clone(),
                what: HashKind::Sha256,
                expected: pin.clone(),
                actual: sha256,
                after: Aftermath::NotImported,
            });
        }
        if let Some(want) = f.size
            && want != size
        {
            return Err(HubError::Size {
                model: entry.name.clone(),
                file: f.path.clone(),
                expected: want,
                actual: size,
                after: Aftermath::NotImported,
            });
        }
        let check = if pin.is_some() {
            Check::Pinned
        } else {
            Check::None
        };
        files.push(ManifestFile {
            path: f.path.clone(),
            size,
            sha256,
            check,
            url: None,
        });
    }
    // Files the family needs that the entry names differently (a YOLOX's own labels).
    for need in layout::needs(&entry.family, &entry.config).unwrap_or_default() {
        let rel = match need {
            Need::File(p) => p,
            Need::OneOf(ext) => match single_file(&entry.name, &dir, ext) {
                Ok(p) => p
                    .strip_prefix(&dir)
                    .map(|r| r.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                Err(_) => continue,
            },
        };
        if rel.is_empty() || files.iter().any(|f| f.path == rel) {
            continue;
        }
        let (size, sha256) = hashes.of(&dir.join(&rel))?;
        files.push(ManifestFile {
            path: rel,
            size,
            sha256,
            check: Check::None,
            url: None,
        });
    }
    let manifest = Manifest::for_entry(entry, "import", files);
    manifest.write(&dir)?;
    let pinned = manifest
        .files
        .iter()
        .filter(|f| f.check == Check::Pinned)
        .count();
    tracing::info!(
        "model {}: imported {} ({} files, {}; {pinned} match catalogue pins, {} have none)",
        entry.name,
        dir.display(),
        manifest.files.len(),
        human_size(manifest.total_size()),
        manifest.files.len() - pinned
    );
    Ok(Installed { dir, manifest })
}

/// sha256 of each file, computed once.
#[derive(Default)]
struct Hashes(HashMap<PathBuf, (u64, String)>);

impl Hashes {
    fn of(&mut self, path: &Path) -> Result<(u64, String), HubError> {
        if let Some(h) = self.0.get(path) {
            return Ok(h.clone());
        }
        let h = hash_file(path, false)?;
        let v = (h.size, h.sha256);
        self.0.insert(path.to_path_buf(), v.clone());
        Ok(v)
    }
}

/// The catalogue entry whose files `dir` holds (several with the same layout are told
/// apart by their pinned hashes).
fn identify<'c>(
    catalog: &'c Catalog,
    dir: &Path,
    hashes: &mut Hashes,
) -> Result<&'c Entry, HubError> {
    let present = |e: &Entry| {
        e.files
            .iter()
            .filter(|f| !f.optional && dir.join(&f.path).is_file())
            .count()
    };
    let needed = |e: &Entry| e.files.iter().filter(|f| !f.optional).count();
    let candidates: Vec<&Entry> = catalog
        .entries()
        .iter()
        .filter(|e| present(e) == needed(e))
        .collect();
    let unidentified = |detail: String| HubError::Unidentified {
        dir: dir.to_path_buf(),
        detail,
    };
    match candidates.as_slice() {
        [] => {
            let closest = catalog.entries().iter().rev().max_by_key(|e| present(e));
            let detail = match closest {
                Some(e) if present(e) > 0 => {
                    let lacking: Vec<&str> = e
                        .files
                        .iter()
                        .filter(|f| !f.optional && !dir.join(&f.path).is_file())
                        .map(|f| f.path.as_str())
                        .collect();
                    format!(
                        "matches no catalogue entry (closest: {}, which also has {}); name it with --name",
                        e.name,
                        lacking.join(", ")
                    )
                }
                _ => "matches no catalogue entry; name it with --name (see `ocellus models list`)"
                    .into(),
            };
            Err(unidentified(detail))
        }
        [one] => Ok(one),
        many => {
            let mut by_pins = Vec::new();
            for e in many {
                let pinned: Vec<_> = e.files.iter().filter(|f| f.sha256.is_some()).collect();
                let mut all = !pinned.is_empty();
                for f in pinned {
                    let p = dir.join(&f.path);
                    if !p.is_file() || Some(&hashes.of(&p)?.1) != f.sha256.as_ref() {
                        all = false;
                        break;
                    }
                }
                if all {
                    by_pins.push(*e);
                }
            }
            match by_pins.as_slice() {
                [one] => Ok(one),
                _ => {
                    let names: Vec<&str> = many.iter().map(|e| e.name.as_str()).collect();
                    Err(unidentified(format!(
                        "could be any of {} (same files, no pinned hash decides); name it with --name",
                        names.join(", ")
                    )))
                }
            }
        }
    }
}
