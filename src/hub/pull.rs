//! `ocellus models pull`: downloads a catalogue entry into `<dir>/<name>/`, file by
//! file. Bytes go to `<file>.part`; a later pull resumes with `Range: bytes=N-`
//! (appending on 206, starting over on 200); every file is hashed and compared with the
//! catalogue's pin, else with the hash the server states, before it is renamed into
//! place; a mismatch deletes the `.part`. On a branch revision (`main`) the commit the
//! server reports for the first file is used for the others and recorded in the
//! manifest.
//!
//! ```no_run
//! use ocellus::hub::{catalog::Catalog, pull::{pull, PullOptions}};
//! let catalog = Catalog::builtin().unwrap();
//! let opts = PullOptions { allow_unverified: false, ..PullOptions::default() };
//! let m = pull(catalog.get("ppocr-v4").unwrap(), "/var/lib/ocellus/models".as_ref(), &opts).unwrap();
//! print!("{}", m.snippet());
//! ```

use std::fs::{self, File, OpenOptions};
use std::path::{Path, PathBuf};
use std::time::Instant;

use super::catalog::{Entry, FileSpec, is_commit};
use super::download::{Client, ClientOptions, CopyError, Fetched, Meta};
use super::hash::{FileHashes, hash_file};
use super::manifest::{Check, Installed, Manifest, ManifestFile};
use super::progress::Progress;
use super::{Aftermath, FetchError, HashKind, HubError, human_size};

/// The most bytes accepted for a file whose size nobody states (no pin, no
/// `X-Linked-Size`, no `Content-Length`): 16 GiB. One ONNX protobuf cannot pass
/// 2 GiB and no catalogue file comes near 16 GiB, yet a server that never stops
/// sending cannot fill the disk past it.
pub const MAX_UNSIZED_FILE: u64 = 16 << 30;

/// Hugging Face's public endpoint.
pub const DEFAULT_ENDPOINT: &str = "https://huggingface.co";

/// `$HF_ENDPOINT` (as huggingface_hub reads it), else huggingface.co.
pub fn endpoint_from_env() -> String {
    match std::env::var("HF_ENDPOINT") {
        Ok(e) if !e.trim().is_empty() => e.trim().trim_end_matches('/').to_string(),
        _ => DEFAULT_ENDPOINT.into(),
    }
}

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// Hugging Face endpoint (a mirror): `{endpoint}/{repo}/resolve/{revision}/{path}`.
    pub endpoint: String,
    pub client: ClientOptions,
    /// Accept files that neither the catalogue nor the server gives a hash for.
    pub allow_unverified: bool,
    /// Pull this revision instead of the catalogue's (e.g. a manifest's commit).
    pub revision: Option<String>,
}

impl Default for PullOptions {
    fn default() -> Self {
        PullOptions {
            endpoint: endpoint_from_env(),
            client: ClientOptions::default(),
            allow_unverified: false,
            revision: None,
        }
    }
}

/// Pulls `entry` into `<models_dir>/<name>/` and writes its manifest.
pub fn pull(entry: &Entry, models_dir: &Path, opts: &PullOptions) -> Result<Installed, HubError> {
    let dir = models_dir.join(&entry.name);
    fs::create_dir_all(&dir).map_err(|e| HubError::io(&dir, e))?;
    let client = Client::new(&opts.client).map_err(|source| HubError::Fetch {
        model: entry.name.clone(),
        file: "-".into(),
        source: Box::new(source),
    })?;
    let asked = opts
        .revision
        .clone()
        .unwrap_or_else(|| entry.revision.clone());
    let mut puller = Puller {
        entry,
        dir: &dir,
        opts,
        client,
        revision: asked.clone(),
        commit: None,
    };
    let started = Instant::now();
    let mut files = Vec::new();
    for f in &entry.files {
        match puller.file(f) {
            Ok(Some(record)) => files.push(record),
            Ok(None) => {}
            Err(e) => {
                remove_empty_dirs(&dir);
                return Err(e);
            }
        }
    }
    let manifest = Manifest {
        endpoint: entry.repo.as_ref().map(|_| opts.endpoint.clone()),
        revision: asked,
        commit: puller.commit.clone(),
        ..Manifest::for_entry(entry, "pull", files)
    };
    manifest.write(&dir)?;
    tracing::info!(
        "model {}: installed in {} ({} files, {}{}) in {:.1} s",
        entry.name,
        dir.display(),
        manifest.files.len(),
        human_size(manifest.total_size()),
        manifest
            .commit
            .as_deref()
            .map(|c| format!(", commit {c}"))
            .unwrap_or_default(),
        started.elapsed().as_secs_f64()
    );
    Ok(Installed { dir, manifest })
}

struct Puller<'a> {
    entry: &'a Entry,
    dir: &'a Path,
    opts: &'a PullOptions,
    client: Client,
    /// The revision files are fetched at (becomes the reported commit on a branch).
    revision: String,
    commit: Option<String>,
}

/// The hash a downloaded file must have, and where it came from.
#[derive(Debug, Clone)]
enum Expected {
    Sha256(String, Check),
    GitSha1(String),
    Nothing,
}

impl Expected {
    fn of(f: &FileSpec, meta: &Meta) -> Self {
        match (&f.sha256, &meta.sha256, &meta.git_sha1) {
            (Some(pin), _, _) => Expected::Sha256(pin.clone(), Check::Pinned),
            (None, Some(s), _) => Expected::Sha256(s.clone(), Check::ServerSha256),
            (None, None, Some(g)) => Expected::GitSha1(g.clone()),
            (None, None, None) => Expected::Nothing,
        }
    }

    fn check(&self) -> Check {
        match self {
            Expected::Sha256(_, c) => *c,
            Expected::GitSha1(_) => Check::ServerGitSha1,
            Expected::Nothing => Check::None,
        }
    }

    /// Whether a file with these hashes is the expected one.
    fn matches(&self, h: &FileHashes) -> bool {
        match self {
            Expected::Sha256(want, _) => h.sha256 == *want,
            Expected::GitSha1(want) => h.git_sha1.as_deref() == Some(want.as_str()),
            Expected::Nothing => false,
        }
    }
}

fn part_path(dest: &Path) -> PathBuf {
    let mut name = dest.file_name().unwrap_or_default().to_os_string();
    name.push(".part");
    dest.with_file_name(name)
}

impl Puller<'_> {
    fn fetch_err(&self, f: &FileSpec, source: FetchError) -> HubError {
        HubError::Fetch {
            model: self.entry.name.clone(),
            file: f.path.clone(),
            source: Box::new(source),
        }
    }

    fn record(
        f: &FileSpec,
        size: u64,
        sha256: String,
        check: Check,
        url: Option<String>,
    ) -> ManifestFile {
        ManifestFile {
            path: f.path.clone(),
            size,
            sha256,
            check,
            url,
        }
    }

    /// Installs one file; `None` for an optional file the server does not have.
    fn file(&mut self, f: &FileSpec) -> Result<Option<ManifestFile>, HubError> {
        let model = self.entry.name.as_str();
        let dest = self.dir.join(&f.path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| HubError::io(parent, e))?;
        }
        let part = part_path(&dest);
        if let Some(text) = &f.inline {
            return self.inline(f, text, &dest, &part).map(Some);
        }
        let Some(url) = self.entry.url_for(f, &self.opts.endpoint, &self.revision) else {
            return Err(HubError::Model {
                model: model.into(),
                detail: format!("{}: no URL (no repo and no url)", f.path),
            });
        };
        // Already in place with the pinned hash: nothing to ask the server.
        if let (Some(pin), true) = (&f.sha256, dest.is_file()) {
            let h = hash_file(&dest, false)?;
            if h.sha256 == *pin {
                tracing::info!(
                    "model {model}: {}: already in place, sha256 matches the pin",
                    f.path
                );
                return Ok(Some(Self::record(
                    f,
                    h.size,
                    h.sha256,
                    Check::Pinned,
                    Some(url),
                )));
            }
        }
        let mut offset = fs::metadata(&part).map(|m| m.len()).unwrap_or(0);
        if let (Some(_), Some(size)) = (&f.sha256, f.size) {
            if offset > size {
                remove(&part)?;
                offset = 0;
            } else if offset == size && size > 0 {
                // A complete .part of a pinned file: verify it without the network.
                let expected =
                    Expected::Sha256(f.sha256.clone().unwrap_or_default(), Check::Pinned);
                return self
                    .finish(f, &url, &part, &dest, &expected, Some(size))
                    .map(Some);
            }
        }
        // Unpinned and already there: the server's stated hash decides, before its
        // redirect to the bytes is followed.
        let existing = match (&f.sha256, dest.is_file()) {
            (None, true) => Some(hash_file(&dest, true)?),
            _ => None,
        };
        let started = Instant::now();
        let resumed_from = offset;
        let mut restarted = false;
        let (expected, total) = loop {
            let known = |m: &Meta| {
                existing
                    .as_ref()
                    .is_some_and(|h| m.sha256.as_ref() == Some(&h.sha256))
            };
            let fetched = self.client.get_unless(&url, offset, known);
            let resp = match fetched {
                Ok(Fetched::Response(r)) => r,
                Ok(Fetched::Known(meta)) => {
                    self.note_commit(f, &meta)?;
                    let Some(h) = &existing else {
                        let cause = "stopped at a redirect".into();
                        return Err(self.fetch_err(f, FetchError::Protocol { url, cause }));
                    };
                    tracing::info!(
                        "model {model}: {}: already in place, matches the server's hash",
                        f.path
                    );
                    let (size, sha256) = (h.size, h.sha256.clone());
                    return Ok(Some(Self::record(
                        f,
                        size,
                        sha256,
                        Check::ServerSha256,
                        Some(url),
                    )));
                }
                Err(FetchError::Status { status: 404, .. }) if f.optional => {
                    tracing::info!(
                        "model {model}: {}: not on the server (optional), skipped",
                        f.path
                    );
                    return Ok(None);
                }
                Err(e) => return Err(self.fetch_err(f, e)),
            };
            let meta = resp.meta.clone();
            self.note_commit(f, &meta)?;
            let expected = Expected::of(f, &meta);
            if let Some(h) = &existing
                && expected.matches(h)
            {
                tracing::info!(
                    "model {model}: {}: already in place, matches the server's hash",
                    f.path
                );
                return Ok(Some(Self::record(
                    f,
                    h.size,
                    h.sha256.clone(),
                    expected.check(),
                    Some(url),
                )));
            }
            if matches!(expected, Expected::Nothing) && !self.opts.allow_unverified {
                return Err(HubError::Unverifiable {
                    model: model.into(),
                    file: f.path.clone(),
                    url,
                });
            }
            let total = f.size.or(meta.size).or(match resp.status {
                200 => resp.length,
                206 => resp
                    .range
                    .and_then(|(_, t)| t)
                    .or(resp.length.map(|n| n + offset)),
                _ => resp.range.and_then(|(_, t)| t),
            });
            // A stated size over the pin (or over the size the server stated first)
            // is refused before a byte of the body is read.
            let stated = match resp.status {
                200 => resp.length,
                206 => resp.length.map(|n| n + offset),
                _ => None,
            };
            if let (Some(limit), Some(stated)) = (f.size.or(meta.size), stated)
                && stated > limit
            {
                let whose = if f.size.is_some() { "pinned" } else { "stated" };
                return Err(self.fetch_err(
                    f,
                    FetchError::TooLarge {
                        url,
                        detail: format!(
                            "the answer is {stated} bytes, more than the {limit} bytes {whose}; refused before reading it"
                        ),
                    },
                ));
            }
            match resp.status {
                416 if total == Some(offset) => break (expected, total),
                206 if resp.range.and_then(|(s, _)| s) == Some(offset) => {
                    let mut out = open_part(&part, true)?;
                    self.copy(f, &url, resp, &mut out, offset, total)?;
                    break (expected, total);
                }
                200 => {
                    if offset > 0 {
                        tracing::info!(
                            "model {model}: {}: the server sent the whole file instead of bytes {offset}-; starting over",
                            f.path
                        );
                    }
                    offset = 0;
                    let mut out = open_part(&part, false)?;
                    self.copy(f, &url, resp, &mut out, 0, total)?;
                    break (expected, total);
                }
                status if !restarted && offset > 0 => {
                    tracing::info!(
                        "model {model}: {}: HTTP {status} to a resume from byte {offset}; starting over",
                        f.path
                    );
                    remove(&part)?;
                    offset = 0;
                    restarted = true;
                }
                status => {
                    return Err(self.fetch_err(
                        f,
                        FetchError::Protocol {
                            url,
                            cause: format!(
                                "unexpected HTTP {status} to a request from byte {offset}"
                            ),
                        },
                    ));
                }
            }
        };
        let record = self.finish(f, &url, &part, &dest, &expected, total)?;
        let how = if resumed_from > 0 && !restarted && offset > 0 {
            format!(", resumed at {}", human_size(resumed_from))
        } else {
            String::new()
        };
        tracing::info!(
            "model {model}: {}: {} in {:.1} s{how}, {}",
            f.path,
            human_size(record.size),
            started.elapsed().as_secs_f64(),
            match record.check {
                Check::Pinned => "sha256 matches the pin",
                Check::ServerSha256 => "sha256 matches the server's X-Linked-Etag",
                Check::ServerGitSha1 => "git blob sha1 matches the server's ETag",
                Check::None => "NOT verified (--allow-unverified)",
            }
        );
        Ok(Some(record))
    }

    /// Records the commit the server reports and moves later files onto it.
    fn note_commit(&mut self, f: &FileSpec, meta: &Meta) -> Result<(), HubError> {
        let (Some(reported), true) = (&meta.commit, f.url.is_none() && self.entry.repo.is_some())
        else {
            return Ok(());
        };
        match &self.commit {
            None => {
                self.commit = Some(reported.clone());
                if !is_commit(&self.revision) && is_commit(reported) {
                    self.revision = reported.clone();
                } else if is_commit(&self.revision) && *reported != self.revision {
                    tracing::warn!(
                        "model {}: {}: asked for commit {} but the server reports {reported}",
                        self.entry.name,
                        f.path,
                        self.revision
                    );
                }
                Ok(())
            }
            Some(c) if c != reported => Err(HubError::Model {
                model: self.entry.name.clone(),
                detail: format!(
                    "{}: the server reports commit {reported}, the files before came from {c}",
                    f.path
                ),
            }),
            Some(_) => Ok(()),
        }
    }

    fn copy(
        &self,
        f: &FileSpec,
        url: &str,
        resp: super::download::Response,
        out: &mut File,
        start: u64,
        total: Option<u64>,
    ) -> Result<(), HubError> {
        let progress = Progress::start(&format!("{} {}", self.entry.name, f.path), total, start);
        // Never more than the expected size: one byte past it stops the read.
        let limit = total.unwrap_or(MAX_UNSIZED_FILE);
        let copied = resp.copy_to(out, limit.saturating_sub(start), |n| progress.add(n));
        progress.finish();
        let part = part_path(&self.dir.join(&f.path));
        if let Err(CopyError::TooLarge(_)) = copied {
            remove(&part)?;
            let whose = match (f.size, total) {
                (Some(_), _) => "pinned",
                (None, Some(_)) => "stated",
                (None, None) => "allowed for a file of unknown size",
            };
            return Err(self.fetch_err(
                f,
                FetchError::TooLarge {
                    url: url.into(),
                    detail: format!(
                        "the body runs past the {limit} bytes {whose}; stopped reading, the download was deleted"
                    ),
                },
            ));
        }
        let synced = out.sync_all().map_err(|e| HubError::io(&part, e));
        let interrupted = |have: u64, cause: String| {
            self.fetch_err(
                f,
                FetchError::Interrupted {
                    url: url.into(),
                    have,
                    total: total.map_or("?".into(), |t| t.to_string()),
                    cause,
                },
            )
        };
        match copied {
            Err(CopyError::Io(n, e)) => Err(interrupted(start + n, e.to_string())),
            Err(CopyError::TooLarge(_)) => Ok(()),
            Ok(n) => {
                synced?;
                match total {
                    Some(t) if start + n < t => {
                        Err(interrupted(start + n, "connection closed early".into()))
                    }
                    _ => Ok(()),
                }
            }
        }
    }

    /// Verifies the `.part` and renames it into place (or deletes it on a mismatch).
    #[allow(clippy::too_many_arguments)]
    fn finish(
        &self,
        f: &FileSpec,
        url: &str,
        part: &Path,
        dest: &Path,
        expected: &Expected,
        total: Option<u64>,
    ) -> Result<ManifestFile, HubError> {
        let model = self.entry.name.clone();
        let h = hash_file(part, matches!(expected, Expected::GitSha1(_)))?;
        let deleted = Aftermath::Deleted;
        if let Some(t) = f.size.or(total)
            && h.size != t
        {
            remove(part)?;
            return Err(HubError::Size {
                model,
                file: f.path.clone(),
                expected: t,
                actual: h.size,
                after: deleted,
            });
        }
        let mismatch = match expected {
            Expected::Sha256(want, _) if h.sha256 != *want => {
                Some((HashKind::Sha256, want.clone(), h.sha256.clone()))
            }
            Expected::GitSha1(want) if h.git_sha1.as_deref() != Some(want.as_str()) => Some((
                HashKind::GitBlobSha1,
                want.clone(),
                h.git_sha1.clone().unwrap_or_default(),
            )),
            _ => None,
        };
        if let Some((what, expected, actual)) = mismatch {
            remove(part)?;
            return Err(HubError::Mismatch {
                model,
                file: f.path.clone(),
                what,
                expected,
                actual,
                after: deleted,
            });
        }
        if matches!(expected, Expected::Nothing) {
            tracing::warn!(
                "model {model}: {}: no hash to check against (--allow-unverified); recorded sha256 {}",
                f.path,
                h.sha256
            );
        }
        fs::rename(part, dest).map_err(|e| HubError::io(dest, e))?;
        Ok(Self::record(
            f,
            h.size,
            h.sha256,
            expected.check(),
            Some(url.into()),
        ))
    }

    /// Writes a catalogue-inline file (unless it is already there, byte for byte).
    fn inline(
        &self,
        f: &FileSpec,
        text: &str,
        dest: &Path,
        part: &Path,
    ) -> Result<ManifestFile, HubError> {
        let same = fs::read(dest).is_ok_and(|b| b == text.as_bytes());
        if !same {
            fs::write(part, text).map_err(|e| HubError::io(part, e))?;
            fs::rename(part, dest).map_err(|e| HubError::io(dest, e))?;
        }
        let h = hash_file(dest, false)?;
        tracing::info!(
            "model {}: {}: written from the catalogue",
            self.entry.name,
            f.path
        );
        Ok(Self::record(f, h.size, h.sha256, Check::Pinned, None))
    }
}

fn open_part(part: &Path, append: bool) -> Result<File, HubError> {
    let mut o = OpenOptions::new();
    o.create(true);
    if append {
        o.append(true);
    } else {
        o.write(true).truncate(true);
    }
    o.open(part).map_err(|e| HubError::io(part, e))
}

fn remove(path: &Path) -> Result<(), HubError> {
    match fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(HubError::io(path, e)),
    }
}

/// Removes the folders a failed pull created and left empty (a kept `.part` keeps its
/// folder).
fn remove_empty_dirs(dir: &Path) {
    if let Ok(rd) = fs::read_dir(dir) {
        for e in rd.filter_map(Result::ok) {
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                remove_empty_dirs(&e.path());
            }
        }
    }
    let _ = fs::remove_dir(dir);
}
