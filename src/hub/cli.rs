//! The `ocellus models` subcommand: argument parsing and what each verb prints
//! (results on stdout, progress and errors as one line each on stderr). Exit 0 when
//! everything worked, 1 otherwise.
//!
//! ```no_run
//! use clap::Parser;
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(subcommand)]
//!     models: ocellus::hub::cli::ModelsCommand,
//! }
//! let cli = Cli::parse_from(["x", "list", "--dir", "/tmp/models"]);
//! std::process::exit(if ocellus::hub::cli::run(cli.models) == std::process::ExitCode::SUCCESS { 0 } else { 1 });
//! ```

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};

use super::catalog::{Catalog, Entry};
use super::download::ClientOptions;
use super::manifest::{Installed, Manifest};
use super::pull::{PullOptions, endpoint_from_env, pull};
use super::verify::{installed, verify_dir};
use super::{HubError, default_dir, human_size, import::import};

/// Where models live and which catalogue to use.
#[derive(Debug, Clone, Args)]
pub struct Where {
    /// Models directory (default: $OCELLUS_MODELS, else /var/lib/ocellus/models).
    #[arg(long)]
    pub dir: Option<PathBuf>,
    /// Extra catalogue (TOML) whose entries add to or replace the built-in ones
    /// (default: $OCELLUS_MODELS_CATALOG).
    #[arg(long)]
    pub catalog: Option<PathBuf>,
}

impl Where {
    /// Absolute, so that the printed snippet works from any config file.
    fn dir(&self) -> PathBuf {
        let d = self.dir.clone().unwrap_or_else(default_dir);
        std::path::absolute(&d).unwrap_or(d)
    }

    fn catalog(&self) -> Result<Catalog, HubError> {
        let extra = self.catalog.clone().or_else(|| {
            std::env::var_os("OCELLUS_MODELS_CATALOG")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        });
        Catalog::load(extra.as_deref())
    }
}

/// `ocellus models ...`
#[derive(Debug, Clone, Subcommand)]
pub enum ModelsCommand {
    /// The known models: family, size, licence, source, pins, and whether each is
    /// installed in DIR.
    List {
        #[command(flatten)]
        at: Where,
    },
    /// Download a model into DIR/NAME (resumable; every file hash-checked).
    Pull {
        /// A name from `ocellus models list`.
        name: String,
        #[command(flatten)]
        at: Where,
        /// Hugging Face endpoint or mirror (default: $HF_ENDPOINT, else <https://huggingface.co>).
        #[arg(long)]
        endpoint: Option<String>,
        /// File holding a Hugging Face token for gated repos (default: $HF_TOKEN).
        #[arg(long)]
        token_file: Option<PathBuf>,
        /// Revision to pull instead of the catalogue's (e.g. a manifest's commit).
        #[arg(long)]
        revision: Option<String>,
        /// Accept files that neither the catalogue nor the server gives a hash for.
        #[arg(long)]
        allow_unverified: bool,
        /// Seconds to wait for a connection, an answer or the next bytes.
        #[arg(long, default_value_t = 30)]
        timeout: u64,
    },
    /// Register a model folder copied by hand (hash it, check it, write its manifest).
    Import {
        /// The model folder.
        dir: PathBuf,
        /// Catalogue name (default: the entry the folder's files match).
        #[arg(long)]
        name: Option<String>,
        /// Extra catalogue (default: $OCELLUS_MODELS_CATALOG).
        #[arg(long)]
        catalog: Option<PathBuf>,
    },
    /// Re-hash installed models against their manifest; exit 1 on any problem.
    Verify {
        #[command(flatten)]
        at: Where,
        /// Model names (folders in DIR) or paths (with a '/'); default: all in DIR.
        targets: Vec<String>,
    },
}

/// Runs one `ocellus models` verb.
pub fn run(cmd: ModelsCommand) -> ExitCode {
    let result = match cmd {
        ModelsCommand::List { at } => list(&at),
        ModelsCommand::Pull {
            name,
            at,
            endpoint,
            token_file,
            revision,
            allow_unverified,
            timeout,
        } => pull_cmd(
            &name,
            &at,
            endpoint,
            token_file.as_deref(),
            revision,
            allow_unverified,
            timeout,
        ),
        ModelsCommand::Import { dir, name, catalog } => {
            let at = Where { dir: None, catalog };
            at.catalog()
                .and_then(|c| import(&c, &dir, name.as_deref()))
                .map(|m| {
                    print_snippet(&m);
                    true
                })
        }
        ModelsCommand::Verify { at, targets } => verify_cmd(&at, &targets),
    };
    match result {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

fn print_snippet(m: &Installed) {
    println!("# add to the ocellus config (rename the table as you like):");
    print!("{}", m.snippet());
}

fn token(file: Option<&Path>) -> Result<Option<String>, HubError> {
    let raw = match file {
        Some(path) => std::fs::read_to_string(path).map_err(|cause| HubError::Token {
            path: path.to_path_buf(),
            cause,
        })?,
        None => std::env::var("HF_TOKEN").unwrap_or_default(),
    };
    let t = raw.trim();
    Ok((!t.is_empty()).then(|| t.to_string()))
}

fn pull_cmd(
    name: &str,
    at: &Where,
    endpoint: Option<String>,
    token_file: Option<&Path>,
    revision: Option<String>,
    allow_unverified: bool,
    timeout: u64,
) -> Result<bool, HubError> {
    let catalog = at.catalog()?;
    let entry = catalog.get(name)?;
    let timeout = Duration::from_secs(timeout.max(1));
    let opts = PullOptions {
        endpoint: endpoint
            .map(|e| e.trim_end_matches('/').to_string())
            .unwrap_or_else(endpoint_from_env),
        client: ClientOptions {
            token: token(token_file)?,
            connect_timeout: timeout,
            read_timeout: timeout,
        },
        allow_unverified,
        revision,
    };
    let m = pull(entry, &at.dir(), &opts)?;
    print_snippet(&m);
    Ok(true)
}

/// `installed, verified` / `not installed` / what is wrong, from the manifest and the
/// files' sizes (cheap; `verify` re-hashes).
fn state(entry: &Entry, dir: &Path) -> String {
    let folder = dir.join(&entry.name);
    let m = match Manifest::read(&folder) {
        Ok(Some(m)) => m,
        Ok(None) => return "not installed".into(),
        Err(e) => return format!("manifest unreadable: {e}"),
    };
    let damaged = m
        .files
        .iter()
        .filter(|f| {
            std::fs::metadata(folder.join(&f.path))
                .map(|md| md.len())
                .ok()
                != Some(f.size)
        })
        .count();
    let unverified = m.files.iter().filter(|f| !f.check.verified()).count();
    let at = m
        .commit
        .as_deref()
        .map(|c| format!(", commit {c}"))
        .unwrap_or_default();
    if damaged > 0 {
        format!(
            "installed, DAMAGED ({damaged} files missing or resized; run `ocellus models verify {}`)",
            entry.name
        )
    } else if unverified > 0 {
        format!(
            "installed by {} ({unverified} file(s) without a pin or server hash{at})",
            m.installed_by
        )
    } else {
        format!("installed, verified{at}")
    }
}

fn list(at: &Where) -> Result<bool, HubError> {
    let catalog = at.catalog()?;
    let dir = at.dir();
    println!(
        "models in {} (catalogue: built in{})",
        dir.display(),
        at.catalog
            .as_ref()
            .map(|p| format!(" + {}", p.display()))
            .unwrap_or_default()
    );
    for e in catalog.entries() {
        let (known, unknown) = e.known_size();
        let size = match (known, unknown) {
            (_, u) if u == e.files.len() => "size unknown".to_string(),
            (k, 0) => human_size(k),
            (k, u) => format!("{} + {u} file(s) of unknown size", human_size(k)),
        };
        println!();
        println!(
            "{}  [{}]  {}  licence {}",
            e.name, e.family, size, e.licence
        );
        println!("  {}", e.title);
        println!("  source:   {}", e.source_label());
        let pinned = if e.revision_pinned() {
            ""
        } else {
            " (not pinned)"
        };
        println!("  revision: {}{pinned}", e.revision);
        for f in &e.files {
            let size = f.size.map_or("size ?".into(), human_size);
            let hash = match (&f.sha256, &f.inline) {
                (Some(h), _) => format!("sha256 {h}"),
                (None, Some(_)) => "from the catalogue".into(),
                (None, None) if e.repo.is_some() && f.url.is_none() => {
                    "sha256 not pinned (checked against the server's stated hash)".into()
                }
                (None, None) => "sha256 not pinned (needs --allow-unverified)".into(),
            };
            let optional = if f.optional { " (optional)" } else { "" };
            println!("    {}{optional}  {size}  {hash}", f.path);
        }
        println!("  state:    {}", state(e, &dir));
    }
    Ok(true)
}

fn verify_cmd(at: &Where, targets: &[String]) -> Result<bool, HubError> {
    let catalog = at.catalog()?;
    let models = at.dir();
    let dirs: Vec<PathBuf> = if targets.is_empty() {
        let found = installed(&models);
        if found.is_empty() {
            println!("no installed models in {}", models.display());
            return Ok(true);
        }
        found
    } else {
        targets
            .iter()
            .map(|t| {
                if t.contains('/') || t.starts_with('.') {
                    PathBuf::from(t)
                } else {
                    models.join(t)
                }
            })
            .collect()
    };
    let mut all_ok = true;
    for d in dirs {
        let r = verify_dir(&d, &catalog);
        if r.ok() {
            let note = if r.unverified > 0 {
                format!(
                    "; {} file(s) were never checked against a pin or server hash",
                    r.unverified
                )
            } else {
                String::new()
            };
            println!(
                "{}: ok ({} files, {}{note})",
                r.name,
                r.files,
                human_size(r.bytes)
            );
        } else {
            all_ok = false;
            for p in &r.problems {
                println!("{}: {p}", r.name);
            }
        }
    }
    Ok(all_ok)
}
