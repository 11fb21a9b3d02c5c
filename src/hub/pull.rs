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
use super::download::{Client, ClientOptions, CopyError, Fetched, Meta, Response};
use super::hash::{FileHashes, hash_file};
use super::manifest::{Check, Installed, Manifest, ManifestFile};
use super::progress::Progress;
use super::{Aftermath, FetchError, HashKind, HubError, Interruption, human_size};

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

/// Where a download starts.
enum Resume {
    /// From this byte (the length of an earlier pull's `.part`, or 0).
    From(u64),
    /// The `.part` of a pinned file is already complete: only its hash is left to
    /// check.
    Complete { pin: String, size: u64 },
}

/// Where the download of `f` into `part` starts: after the bytes of an earlier pull,
/// from scratch when they are more than the pinned size.
fn resume_point(f: &FileSpec, part: &Path) -> Result<Resume, HubError> {
    let offset = fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if let (Some(pin), Some(size)) = (&f.sha256, f.size) {
        if offset > size {
            remove(part)?;
            return Ok(Resume::From(0));
        }
        if offset == size && size > 0 {
            return Ok(Resume::Complete {
                pin: pin.clone(),
                size,
            });
        }
    }
    Ok(Resume::From(offset))
}

/// The size the whole file will have: pinned, else stated by the server (its
/// `X-Linked-Size`, else this answer's length or range).
fn total_size(f: &FileSpec, resp: &Response, offset: u64) -> Option<u64> {
    f.size.or(resp.meta.size).or(match resp.status {
        200 => resp.length,
        206 => resp
            .range
            .and_then(|(_, t)| t)
            .or(resp.length.map(|n| n + offset)),
        _ => resp.range.and_then(|(_, t)| t),
    })
}

/// What a request for a file's bytes came to.
enum Answer {
    /// The server sends them (body unread).
    Bytes(Response),
    /// Nothing to download: the file in place is the one (its record), or an optional
    /// file the server does not have (`None`).
    Settled(Option<ManifestFile>),
}

/// What downloading a file came to.
enum Download {
    /// The `.part` holds the bytes, still to be verified.
    Part(PartDone),
    /// Nothing was downloaded (see [`Answer::Settled`]).
    Settled(Option<ManifestFile>),
}

/// A downloaded `.part`: the hash it must have and its expected size.
struct PartDone {
    expected: Expected,
    total: Option<u64>,
    /// The byte an earlier pull's `.part` was resumed at.
    resumed_from: Option<u64>,
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
        let (dest, part) = self.paths(f)?;
        if let Some(text) = &f.inline {
            return self.inline(f, text, &dest, &part).map(Some);
        }
        let url = self.resolve(f)?;
        if let Some(record) = self.pinned_in_place(f, &dest, &url)? {
            return Ok(Some(record));
        }
        let offset = match resume_point(f, &part)? {
            Resume::From(offset) => offset,
            // A complete .part of a pinned file: verify it without the network.
            Resume::Complete { pin, size } => {
                let expected = Expected::Sha256(pin, Check::Pinned);
                return self
                    .finish(f, &url, &part, &dest, &expected, Some(size))
                    .map(Some);
            }
        };
        // Unpinned and already there: the server's stated hash decides, before its
        // redirect to the bytes is followed.
        let existing = match (&f.sha256, dest.is_file()) {
            (None, true) => Some(hash_file(&dest, true)?),
            _ => None,
        };
        let started = Instant::now();
        let part_done = match self.download(f, &url, &part, offset, existing.as_ref())? {
            Download::Part(done) => done,
            Download::Settled(record) => return Ok(record),
        };
        let record = self.finish(f, &url, &part, &dest, &part_done.expected, part_done.total)?;
        self.installed(f, &record, started, part_done.resumed_from);
        Ok(Some(record))
    }

    /// Where `f` goes in the model folder (its parent made) and its `.part` beside it.
    fn paths(&self, f: &FileSpec) -> Result<(PathBuf, PathBuf), HubError> {
        let dest = self.dir.join(&f.path);
        if let Some(parent) = dest.parent() {
            fs::create_dir_all(parent).map_err(|e| HubError::io(parent, e))?;
        }
        let part = part_path(&dest);
        Ok((dest, part))
    }

    /// The URL `f` is fetched from, at the revision files are fetched at now.
    fn resolve(&self, f: &FileSpec) -> Result<String, HubError> {
        self.entry
            .url_for(f, &self.opts.endpoint, &self.revision)
            .ok_or_else(|| HubError::Model {
                model: self.entry.name.clone(),
                detail: format!("{}: no URL (no repo and no url)", f.path),
            })
    }

    /// The record of `f` when it is already in place with its pinned hash (nothing to
    /// ask the server).
    fn pinned_in_place(
        &self,
        f: &FileSpec,
        dest: &Path,
        url: &str,
    ) -> Result<Option<ManifestFile>, HubError> {
        let (Some(pin), true) = (&f.sha256, dest.is_file()) else {
            return Ok(None);
        };
        let h = hash_file(dest, false)?;
        if h.sha256 != *pin {
            return Ok(None);
        }
        tracing::info!(
            "model {}: {}: already in place, sha256 matches the pin",
            self.entry.name,
            f.path
        );
        Ok(Some(Self::record(
            f,
            h.size,
            h.sha256,
            Check::Pinned,
            Some(url.into()),
        )))
    }

    /// Downloads `f` into `part` from byte `offset` (starting over when the server
    /// will not resume), unless the server's answer settles it first: the file in
    /// place (`existing`) is the one it states, or an optional file is not there.
    fn download(
        &mut self,
        f: &FileSpec,
        url: &str,
        part: &Path,
        mut offset: u64,
        existing: Option<&FileHashes>,
    ) -> Result<Download, HubError> {
        let model = self.entry.name.clone();
        let resumed_from = offset;
        let mut restarted = false;
        loop {
            let resp = match self.request(f, url, offset, existing)? {
                Answer::Bytes(resp) => resp,
                Answer::Settled(record) => return Ok(Download::Settled(record)),
            };
            let expected = Expected::of(f, &resp.meta);
            if let Some(h) = existing
                && expected.matches(h)
            {
                tracing::info!(
                    "model {model}: {}: already in place, matches the server's hash",
                    f.path
                );
                return Ok(Download::Settled(Some(Self::record(
                    f,
                    h.size,
                    h.sha256.clone(),
                    expected.check(),
                    Some(url.into()),
                ))));
            }
            if matches!(expected, Expected::Nothing) && !self.opts.allow_unverified {
                return Err(HubError::Unverifiable {
                    model,
                    file: f.path.clone(),
                    url: url.into(),
                });
            }
            let total = total_size(f, &resp, offset);
            self.refuse_oversized(f, url, &resp, offset)?;
            match resp.status {
                416 if total == Some(offset) => {}
                206 if resp.range.and_then(|(s, _)| s) == Some(offset) => {
                    let mut out = open_part(part, true)?;
                    self.copy(f, url, resp, &mut out, offset, total)?;
                }
                200 => {
                    if offset > 0 {
                        tracing::info!(
                            "model {model}: {}: the server sent the whole file instead of bytes {offset}-; starting over",
                            f.path
                        );
                    }
                    offset = 0;
                    let mut out = open_part(part, false)?;
                    self.copy(f, url, resp, &mut out, 0, total)?;
                }
                status if !restarted && offset > 0 => {
                    tracing::info!(
                        "model {model}: {}: HTTP {status} to a resume from byte {offset}; starting over",
                        f.path
                    );
                    remove(part)?;
                    offset = 0;
                    restarted = true;
                    continue;
                }
                status => {
                    return Err(self.fetch_err(
                        f,
                        FetchError::Protocol {
                            url: url.into(),
                            detail: format!(
                                "unexpected HTTP {status} to a request from byte {offset}"
                            ),
                        },
                    ));
                }
            }
            let resumed = resumed_from > 0 && !restarted && offset > 0;
            return Ok(Download::Part(PartDone {
                expected,
                total,
                resumed_from: resumed.then_some(resumed_from),
            }));
        }
    }

    /// Asks the server for `f`'s bytes from `offset`, noting the commit it reports;
    /// a redirect whose headers identify the file in place (`existing`) or a 404 of an
    /// optional file settles the file instead.
    fn request(
        &mut self,
        f: &FileSpec,
        url: &str,
        offset: u64,
        existing: Option<&FileHashes>,
    ) -> Result<Answer, HubError> {
        let known = |m: &Meta| existing.is_some_and(|h| m.sha256.as_ref() == Some(&h.sha256));
        match self.client.get_unless(url, offset, known) {
            Ok(Fetched::Response(resp)) => {
                self.note_commit(f, &resp.meta)?;
                Ok(Answer::Bytes(resp))
            }
            Ok(Fetched::Known(meta)) => {
                self.note_commit(f, &meta)?;
                let Some(h) = existing else {
                    let detail = "stopped at a redirect".into();
                    let url = url.into();
                    return Err(self.fetch_err(f, FetchError::Protocol { url, detail }));
                };
                tracing::info!(
                    "model {}: {}: already in place, matches the server's hash",
                    self.entry.name,
                    f.path
                );
                Ok(Answer::Settled(Some(Self::record(
                    f,
                    h.size,
                    h.sha256.clone(),
                    Check::ServerSha256,
                    Some(url.into()),
                ))))
            }
            Err(FetchError::Status { status: 404, .. }) if f.optional => {
                tracing::info!(
                    "model {}: {}: not on the server (optional), skipped",
                    self.entry.name,
                    f.path
                );
                Ok(Answer::Settled(None))
            }
            Err(e) => Err(self.fetch_err(f, e)),
        }
    }

    /// Refuses an answer whose stated size is over the pin (or over the size the
    /// server stated first), before a byte of the body is read.
    fn refuse_oversized(
        &self,
        f: &FileSpec,
        url: &str,
        resp: &Response,
        offset: u64,
    ) -> Result<(), HubError> {
        let stated = match resp.status {
            200 => resp.length,
            206 => resp.length.map(|n| n + offset),
            _ => None,
        };
        if let (Some(limit), Some(stated)) = (f.size.or(resp.meta.size), stated)
            && stated > limit
        {
            let whose = if f.size.is_some() { "pinned" } else { "stated" };
            return Err(self.fetch_err(
                f,
                FetchError::TooLarge {
                    url: url.into(),
                    detail: format!(
                        "the answer is {stated} bytes, more than the {limit} bytes {whose}; refused before reading it"
                    ),
                },
            ));
        }
        Ok(())
    }

    /// Logs a downloaded file's installation: size, time, resume and check.
    fn installed(
        &self,
        f: &FileSpec,
        record: &ManifestFile,
        started: Instant,
        resumed_from: Option<u64>,
    ) {
        let how = resumed_from
            .map(|n| format!(", resumed at {}", human_size(n)))
            .unwrap_or_default();
        tracing::info!(
            "model {}: {}: {} in {:.1} s{how}, {}",
            self.entry.name,
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
        resp: Response,
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
        let interrupted = |have: u64, source: Interruption| {
            self.fetch_err(
                f,
                FetchError::Interrupted {
                    url: url.into(),
                    have,
                    total: total.map_or("?".into(), |t| t.to_string()),
                    source,
                },
            )
        };
        match copied {
            Err(CopyError::Io(n, e)) => Err(interrupted(start + n, Interruption::Io(e))),
            Err(CopyError::TooLarge(_)) => Ok(()),
            Ok(n) => {
                synced?;
                match total {
                    Some(t) if start + n < t => {
                        Err(interrupted(start + n, Interruption::ClosedEarly))
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
