//! The model catalogue: which models `ocellus models` knows, where each file comes from
//! and what it must hash to. Built in from `catalog.toml`; a site catalogue (`--catalog
//! FILE` or `$OCELLUS_MODELS_CATALOG`) adds entries or replaces built-in ones by name
//! (a mirror with its own pins, a test server's fixtures).
//!
//! ```
//! use ocellus::hub::catalog::Catalog;
//! let catalog = Catalog::builtin().unwrap();
//! let clip = catalog.get("clip-vit-b32").unwrap();
//! assert_eq!(clip.family, "clip");
//! assert!(clip.files.iter().any(|f| f.path == "onnx/vision_model.onnx"));
//! ```

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::Deserialize;

use super::hash::{hex, sha256_of};
use super::layout;
use super::{BadPath, CatalogError, EntryProblem, FileProblem, HubError};

const BUILTIN: &str = include_str!("catalog.toml");

/// The ocellus model families an entry may name (`[models.X] family = ...`).
pub const FAMILIES: [&str; 7] = [
    "clip",
    "florence2",
    "smolvlm",
    "paligemma",
    "qwen2vl",
    "yolox",
    "ppocr",
];

/// A catalogue file: `[[model]]` tables.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CatalogFile {
    #[serde(default)]
    model: Vec<Entry>,
}

/// One model: a folder of files for one family.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Entry {
    /// Folder name and suggested `[models.NAME]` key.
    pub name: String,
    pub family: String,
    /// One line saying what it is.
    pub title: String,
    pub licence: String,
    /// Hugging Face repository (`owner/name`) the files without `url` come from.
    #[serde(default)]
    pub repo: Option<String>,
    /// Where the files come from, for entries without `repo`.
    #[serde(default)]
    pub source: Option<String>,
    /// Commit id, tag or branch (`main` = not pinned).
    #[serde(default = "default_revision")]
    pub revision: String,
    /// Extra keys of the `[models.NAME]` snippet (non-default file names).
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(rename = "file")]
    pub files: Vec<FileSpec>,
}

/// One file of an entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSpec {
    /// Relative path inside the model folder.
    pub path: String,
    /// Path inside the repository when it differs from `path`.
    #[serde(default)]
    pub remote: Option<String>,
    /// Direct URL (instead of the repository).
    #[serde(default)]
    pub url: Option<String>,
    /// The file's text, shipped in the catalogue itself.
    #[serde(default)]
    pub inline: Option<String>,
    /// Pinned sha256 (lowercase hex).
    #[serde(default)]
    pub sha256: Option<String>,
    /// Size in bytes, when known.
    #[serde(default)]
    pub size: Option<u64>,
    /// A 404 skips the file instead of failing the pull.
    #[serde(default)]
    pub optional: bool,
}

fn default_revision() -> String {
    "main".into()
}

/// Whether `s` is a full git commit id (40 lowercase hex digits).
pub fn is_commit(s: &str) -> bool {
    s.len() == 40
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn is_sha256(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

impl Entry {
    /// `Hugging Face Xenova/clip-vit-base-patch32` or the entry's `source`.
    pub fn source_label(&self) -> String {
        match (&self.repo, &self.source) {
            (Some(repo), _) => format!("Hugging Face {repo}"),
            (None, Some(s)) => s.clone(),
            (None, None) => "(no source)".into(),
        }
    }

    /// Whether the revision is an immutable commit id (Hugging Face entries) or, for
    /// entries of direct URLs, whether every downloaded file has a pinned hash.
    pub fn revision_pinned(&self) -> bool {
        match self.repo {
            Some(_) => is_commit(&self.revision),
            None => self
                .files
                .iter()
                .all(|f| f.inline.is_some() || f.sha256.is_some()),
        }
    }

    /// Sum of the known file sizes (saturating: a catalogue file may state any
    /// size) and how many files have no known size.
    pub fn known_size(&self) -> (u64, usize) {
        let known = self
            .files
            .iter()
            .filter_map(|f| f.size)
            .fold(0u64, u64::saturating_add);
        let unknown = self.files.iter().filter(|f| f.size.is_none()).count();
        (known, unknown)
    }

    /// The URL of `file` at `revision` (Hugging Face: `{endpoint}/{repo}/resolve/{rev}/{path}`).
    pub fn url_for(&self, file: &FileSpec, endpoint: &str, revision: &str) -> Option<String> {
        if let Some(url) = &file.url {
            return Some(url.clone());
        }
        let repo = self.repo.as_ref()?;
        let remote = file.remote.as_deref().unwrap_or(&file.path);
        Some(format!(
            "{}/{repo}/resolve/{revision}/{remote}",
            endpoint.trim_end_matches('/')
        ))
    }

    fn check(&self) -> Result<(), EntryProblem> {
        let bad_name = self.name.is_empty()
            || !self
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if bad_name {
            return Err(EntryProblem::Name);
        }
        if !FAMILIES.contains(&self.family.as_str()) {
            return Err(EntryProblem::Family {
                family: self.family.clone(),
                known: &FAMILIES,
            });
        }
        match (&self.repo, &self.source) {
            (Some(repo), _) => {
                let parts: Vec<&str> = repo.split('/').collect();
                if parts.len() != 2 || parts.iter().any(|p| !safe_segment(p)) {
                    return Err(EntryProblem::Repo { repo: repo.clone() });
                }
            }
            (None, Some(_)) => {}
            (None, None) => return Err(EntryProblem::NoSource),
        }
        if !safe_segment(&self.revision) {
            return Err(EntryProblem::Revision {
                revision: self.revision.clone(),
            });
        }
        if self.files.is_empty() {
            return Err(EntryProblem::NoFiles);
        }
        let mut seen = HashSet::new();
        for f in &self.files {
            f.check(self.repo.is_some())
                .map_err(|source| EntryProblem::File {
                    path: f.path.clone(),
                    source,
                })?;
            if !seen.insert(f.path.as_str()) {
                return Err(EntryProblem::FileTwice {
                    path: f.path.clone(),
                });
            }
        }
        let dir = Path::new("/catalogue-check");
        layout::model_config(&self.family, dir, &self.config).map_err(EntryProblem::Config)?;
        Ok(())
    }
}

impl FileSpec {
    fn check(&self, has_repo: bool) -> Result<(), FileProblem> {
        check_rel_path(&self.path)?;
        if let Some(r) = &self.remote {
            check_rel_path(r).map_err(FileProblem::Remote)?;
        }
        let sources = [self.url.is_some(), self.inline.is_some()];
        match sources {
            [true, true] => return Err(FileProblem::UrlAndInline),
            [false, false] if !has_repo => return Err(FileProblem::NoUrl),
            _ => {}
        }
        if self.remote.is_some() && (self.url.is_some() || self.inline.is_some()) {
            return Err(FileProblem::RemoteOutsideRepo);
        }
        if let Some(url) = &self.url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            return Err(FileProblem::NotHttp { url: url.clone() });
        }
        if let Some(h) = &self.sha256
            && !is_sha256(h)
        {
            return Err(FileProblem::Sha256);
        }
        if self.size == Some(0) {
            return Err(FileProblem::ZeroSize);
        }
        if let Some(text) = &self.inline {
            let actual = hex(&sha256_of(text.as_bytes()));
            if let Some(h) = &self.sha256
                && *h != actual
            {
                return Err(FileProblem::InlineHash {
                    actual,
                    pinned: h.clone(),
                });
            }
            if let Some(n) = self.size
                && n != text.len() as u64
            {
                return Err(FileProblem::InlineSize {
                    len: text.len(),
                    size: n,
                });
            }
        }
        Ok(())
    }
}

/// Repository, revision and path segments: no separators, no dot-dot tricks.
fn safe_segment(s: &str) -> bool {
    !s.is_empty()
        && s != "."
        && s != ".."
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

fn check_rel_path(p: &str) -> Result<(), BadPath> {
    if p.split('/').all(safe_segment) && !p.ends_with(".part") && p != layout::MANIFEST_FILE {
        Ok(())
    } else {
        Err(BadPath)
    }
}

/// The built-in catalogue plus any site catalogue.
#[derive(Debug, Clone)]
pub struct Catalog {
    entries: Vec<Entry>,
}

impl Catalog {
    /// The catalogue compiled into ocellus.
    pub fn builtin() -> Result<Self, HubError> {
        Ok(Catalog {
            entries: parse(BUILTIN, "(built in)")?,
        })
    }

    /// The built-in catalogue with `extra`'s entries added (same name: replaced).
    pub fn load(extra: Option<&Path>) -> Result<Self, HubError> {
        let mut catalog = Self::builtin()?;
        if let Some(path) = extra {
            let text = std::fs::read_to_string(path).map_err(|e| HubError::Catalog {
                origin: path.display().to_string(),
                source: Box::new(CatalogError::Read(e)),
            })?;
            for entry in parse(&text, &path.display().to_string())? {
                match catalog.entries.iter_mut().find(|e| e.name == entry.name) {
                    Some(slot) => *slot = entry,
                    None => catalog.entries.push(entry),
                }
            }
        }
        Ok(catalog)
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry called `name`, or an error that suggests close names.
    pub fn get(&self, name: &str) -> Result<&Entry, HubError> {
        if let Some(e) = self.entries.iter().find(|e| e.name == name) {
            return Ok(e);
        }
        let wanted = name.to_ascii_lowercase();
        let close: Vec<&str> = self
            .entries
            .iter()
            .map(|e| e.name.as_str())
            .filter(|n| n.contains(&wanted) || wanted.contains(n.split('-').next().unwrap_or(n)))
            .collect();
        let hint = if close.is_empty() {
            String::new()
        } else {
            format!(" (did you mean {}?)", close.join(", "))
        };
        Err(HubError::UnknownModel {
            name: name.into(),
            hint,
        })
    }
}

/// Parses and checks a catalogue's text; `origin` names it in errors.
pub fn parse(text: &str, origin: &str) -> Result<Vec<Entry>, HubError> {
    let err = |source: CatalogError| HubError::Catalog {
        origin: origin.into(),
        source: Box::new(source),
    };
    let file: CatalogFile = toml::from_str(text).map_err(|e| err(CatalogError::Syntax(e)))?;
    let mut names = HashSet::new();
    for (index, entry) in file.model.iter().enumerate() {
        entry.check().map_err(|source| {
            err(CatalogError::Entry {
                index,
                name: entry.name.clone(),
                source,
            })
        })?;
        if !names.insert(entry.name.as_str()) {
            return Err(err(CatalogError::NameTwice {
                index,
                name: entry.name.clone(),
            }));
        }
    }
    Ok(file.model)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn builtin() -> Vec<Entry> {
        Catalog::builtin().expect("built-in catalogue").entries
    }

    #[test]
    fn every_builtin_entry_parses_with_a_known_family_and_a_unique_name() {
        let entries = builtin();
        let mut names = HashSet::new();
        for e in &entries {
            assert!(FAMILIES.contains(&e.family.as_str()), "{}", e.name);
            assert!(names.insert(e.name.clone()), "{} twice", e.name);
            assert!(!e.licence.is_empty() && !e.title.is_empty(), "{}", e.name);
        }
        for name in [
            "clip-vit-b32",
            "siglip-base-p16-224",
            "mobileclip-s0",
            "mobileclip-s2",
            "florence2-base",
            "florence2-base-ft",
            "smolvlm-256m-instruct",
            "smolvlm-500m-instruct",
            "paligemma2-3b-pt-224",
            "yolox-nano",
            "yolox-s",
            "ppocr-v4",
            "qwen2-vl-2b-instruct",
        ] {
            assert!(names.contains(name), "{name} missing from the catalogue");
        }
    }

    #[test]
    fn sizes_and_pins_are_consistent() {
        for e in builtin() {
            let (known, unknown) = e.known_size();
            assert_eq!(unknown, e.files.iter().filter(|f| f.size.is_none()).count());
            assert!(known > 0 || unknown == e.files.len(), "{}", e.name);
            for f in &e.files {
                // A pinned direct-URL file also pins its size, so that a resume
                // knows when it is complete and `list` can add it up.
                if f.url.is_some() && f.sha256.is_some() {
                    assert!(
                        f.size.is_some(),
                        "{} {}: pinned without size",
                        e.name,
                        f.path
                    );
                }
                if let Some(text) = &f.inline {
                    assert_eq!(f.size, Some(text.len() as u64), "{} {}", e.name, f.path);
                    assert!(
                        f.sha256.is_some(),
                        "{} {}: inline without sha256",
                        e.name,
                        f.path
                    );
                }
            }
            if e.repo.is_some() && e.revision != "main" {
                assert!(
                    is_commit(&e.revision),
                    "{}: revision {}",
                    e.name,
                    e.revision
                );
            }
        }
    }

    #[test]
    fn every_builtin_entry_ships_what_its_family_loader_needs() {
        for e in builtin() {
            let paths: Vec<&str> = e
                .files
                .iter()
                .filter(|f| !f.optional)
                .map(|f| f.path.as_str())
                .collect();
            for need in layout::needs(&e.family, &e.config).expect("layout") {
                assert!(
                    need.satisfied_by(&paths),
                    "{}: catalogue lacks {}",
                    e.name,
                    need.describe()
                );
            }
        }
    }

    #[test]
    fn a_site_catalogue_replaces_by_name_and_adds() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("site.toml");
        std::fs::write(
            &path,
            r#"
[[model]]
name = "yolox-nano"
family = "yolox"
title = "mirror"
licence = "Apache-2.0"
source = "site mirror"
[[model.file]]
path = "m.onnx"
url = "https://mirror.example/m.onnx"
[[model.file]]
path = "labels.txt"
inline = "person\n"

[[model]]
name = "site-clip"
family = "clip"
title = "ours"
licence = "MIT"
repo = "site/clip"
[[model.file]]
path = "onnx/vision_model.onnx"
[[model.file]]
path = "onnx/text_model.onnx"
[[model.file]]
path = "tokenizer.json"
[[model.file]]
path = "preprocessor_config.json"
"#,
        )
        .unwrap();
        let c = Catalog::load(Some(&path)).unwrap();
        assert_eq!(c.get("yolox-nano").unwrap().title, "mirror");
        assert_eq!(c.get("site-clip").unwrap().revision, "main");
        assert_eq!(c.entries().len(), builtin().len() + 1);
    }

    #[test]
    fn bad_entries_are_refused_with_where() {
        let base = "[[model]]\nname = \"x\"\nfamily = \"clip\"\ntitle = \"t\"\nlicence = \"l\"\nrepo = \"a/b\"\n";
        let cases = [
            ("family = \"vit\"", "family \"vit\""),
            ("[[model.file]]\npath = \"../x\"", "path must be relative"),
            (
                "[[model.file]]\npath = \"a\"\nsha256 = \"ABC\"",
                "sha256 must be",
            ),
            ("[[model.file]]\npath = \"a\"\nbogus = 1", "unknown field"),
            (
                "[[model.file]]\npath = \"a\"\ninline = \"x\"\nsize = 3",
                "inline text is 1 bytes",
            ),
        ];
        for (extra, want) in cases {
            let text = if extra.starts_with("family") {
                base.replace("family = \"clip\"", extra) + "[[model.file]]\npath = \"a\"\n"
            } else {
                format!("{base}{extra}\n")
            };
            let e = parse(&text, "t.toml").unwrap_err().to_string();
            assert!(e.starts_with("catalogue t.toml: "), "{e}");
            assert!(e.contains(want), "{e:?} lacks {want:?}");
            assert!(!e.contains('\n'), "{e:?}");
        }
    }

    #[test]
    fn unknown_names_suggest_close_ones() {
        let c = Catalog::builtin().unwrap();
        let e = c.get("yolox").unwrap_err().to_string();
        assert!(
            e.contains("yolox-nano") && e.contains("ocellus models list"),
            "{e}"
        );
        let e = c.get("nothing-like-it").unwrap_err().to_string();
        assert_eq!(
            e,
            "unknown model \"nothing-like-it\"; see `ocellus models list`"
        );
    }

    #[test]
    fn urls_follow_the_hugging_face_layout() {
        let c = Catalog::builtin().unwrap();
        let e = c.get("clip-vit-b32").unwrap();
        let f = &e.files[0];
        assert_eq!(
            e.url_for(f, "https://huggingface.co/", &e.revision)
                .unwrap(),
            "https://huggingface.co/Xenova/clip-vit-base-patch32/resolve/d15189d7028b43f1d3e65039190477f6af591c2a/onnx/vision_model.onnx"
        );
    }
}
