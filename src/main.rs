//! The `ocellus` command line: `run`, `check`, `ask`, `teach`, `dataset`, `models`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use ocellus::app::config;
use ocellus::app::{self, AskOptions, RunOptions};

#[derive(Parser)]
#[command(
    name = "ocellus",
    version,
    about = "Standing questions over camera feeds, answered on MQTT"
)]
struct Cli {
    /// Log lines on stderr: `text`, or `json` (one object a line, for log shippers).
    #[arg(
        long,
        global = true,
        value_enum,
        env = "OCELLUS_LOG_FORMAT",
        default_value = "text"
    )]
    log_format: LogFormat,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum LogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon until SIGINT/SIGTERM.
    Run {
        #[arg(short, long)]
        config: PathBuf,
        /// Broker URL, overriding [mqtt] url (e.g. mqtt://127.0.0.1:1883).
        #[arg(long)]
        mqtt_url: Option<String>,
    },
    /// Validate a config and print every problem with its path.
    Check {
        #[arg(short, long)]
        config: PathBuf,
    },
    /// Run a camera's queries over an image, clip or URL; one JSON line per frame.
    Ask {
        /// Image or clip path, or a URL (rtsp://, http://, file://).
        media: String,
        #[arg(short, long)]
        config: PathBuf,
        /// Camera whose queries to use (needed when the config has several).
        #[arg(long)]
        camera: Option<String>,
        /// Frames a second to evaluate (default: the camera's sample_fps).
        #[arg(long)]
        sample_fps: Option<f64>,
    },
    /// Label frames of images or clips as a query's states; list or forget examples.
    Teach {
        #[arg(short, long)]
        config: PathBuf,
        /// Camera of the query (needed when the config has several).
        #[arg(long)]
        camera: Option<String>,
        /// The query to teach.
        #[arg(long)]
        query: String,
        /// The state the media show: ON/OFF (yes/no) for yes_no, a label for classify.
        #[arg(long)]
        state: Option<String>,
        /// Print the query's examples (id, state, who, when, media).
        #[arg(long)]
        list: bool,
        /// Remove the example with this id.
        #[arg(long, value_name = "ID")]
        forget: Option<String>,
        /// Remove every example of the query.
        #[arg(long)]
        all: bool,
        /// Images or clips; `CLIP@SECONDS` takes the frame nearest that time.
        media: Vec<String>,
    },
    /// Labelled examples for fine-tuning elsewhere.
    Dataset {
        #[command(subcommand)]
        command: DatasetCommand,
    },
    /// Model files: list, pull (download and verify), import, verify.
    Models {
        #[command(subcommand)]
        command: ocellus::hub::cli::ModelsCommand,
    },
}

#[derive(Subcommand)]
enum DatasetCommand {
    /// Write a query's examples: a folder per state, or JSONL (image, prompt, answer).
    Export {
        #[arg(short, long)]
        config: PathBuf,
        #[arg(long)]
        camera: Option<String>,
        #[arg(long)]
        query: String,
        /// Folder to write (created).
        #[arg(long)]
        out: PathBuf,
        #[arg(long, value_enum, default_value = "folders")]
        format: Format,
    },
}

#[derive(Clone, Copy, clap::ValueEnum)]
enum Format {
    Folders,
    Jsonl,
}

fn main() -> ExitCode {
    tune_malloc();
    let cli = Cli::parse();
    init_logs(cli.log_format);
    match cli.command {
        Command::Models { command } => ocellus::hub::cli::run(command),
        Command::Check { config } => check(&config),
        Command::Run { config, mqtt_url } => {
            let Some(config) = load(&config) else {
                return ExitCode::from(1);
            };
            finish(app::run(config, RunOptions { mqtt_url }))
        }
        Command::Teach {
            config,
            camera,
            query,
            state,
            list,
            forget,
            all,
            media,
        } => {
            let Some(config) = load(&config) else {
                return ExitCode::from(1);
            };
            let opts = app::teach::TeachOptions {
                camera,
                query,
                state,
                media,
                list,
                forget,
                all,
            };
            finish(app::teach::teach(config, opts))
        }
        Command::Dataset {
            command:
                DatasetCommand::Export {
                    config,
                    camera,
                    query,
                    out,
                    format,
                },
        } => {
            let Some(config) = load(&config) else {
                return ExitCode::from(1);
            };
            let format = match format {
                Format::Folders => app::teach::ExportFormat::Folders,
                Format::Jsonl => app::teach::ExportFormat::Jsonl,
            };
            finish(app::teach::export(
                config,
                camera.as_deref(),
                &query,
                &out,
                format,
            ))
        }
        Command::Ask {
            media,
            config,
            camera,
            sample_fps,
        } => {
            let Some(config) = load(&config) else {
                return ExitCode::from(1);
            };
            finish(app::ask(config, &media, AskOptions { camera, sample_fps }))
        }
    }
}

/// Logs to stderr, filtered by `$OCELLUS_LOG`. Under journald (stderr is the stream
/// `$JOURNAL_STREAM` names) text lines carry no timestamp or colour: the journal
/// stamps each line itself.
/// glibc's allocator for a daemon of a hundred threads (16 cameras: 121), the settings
/// `systemd/ocellus.service` has always set, now also without it: at most 2 arenas
/// (glibc's default is 8 per core; every thread that allocates may get one of its own,
/// and the pages it touched stay resident: 16 × 720p cameras 365 → 347 MB peak RSS),
/// and blocks of 128 KiB and more always mapped, returned to the system when freed
/// (without it, after the first large free such blocks stay in the arenas: the frame
/// buffers of every rebuilt pipeline, RSS +41 % over 60 RTSP reconnects). Each setting
/// is left alone when its `MALLOC_ARENA_MAX` / `MALLOC_MMAP_THRESHOLD_` variable or a
/// `GLIBC_TUNABLES` entry sets it, and both with `OCELLUS_MALLOC=glibc`.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(unsafe_code)]
fn tune_malloc() {
    const ARENA_MAX: libc::c_int = 2;
    const MMAP_THRESHOLD: libc::c_int = 128 * 1024;
    if std::env::var_os("OCELLUS_MALLOC").is_some_and(|v| v == "glibc") {
        return;
    }
    let tunables = std::env::var("GLIBC_TUNABLES").unwrap_or_default();
    let set =
        |var: &str, tunable: &str| std::env::var_os(var).is_some() || tunables.contains(tunable);
    for (param, value, var, tunable) in [
        (
            libc::M_ARENA_MAX,
            ARENA_MAX,
            "MALLOC_ARENA_MAX",
            "glibc.malloc.arena_max",
        ),
        (
            libc::M_MMAP_THRESHOLD,
            MMAP_THRESHOLD,
            "MALLOC_MMAP_THRESHOLD_",
            "glibc.malloc.mmap_threshold",
        ),
    ] {
        if !set(var, tunable) {
            // SAFETY: mallopt only sets a parameter of glibc's allocator (it takes the
            // allocator's own lock); this runs first in main, before any other thread.
            unsafe { libc::mallopt(param, value) };
        }
    }
}

/// Other platforms keep their allocator's defaults.
#[cfg(not(all(target_os = "linux", target_env = "gnu")))]
fn tune_malloc() {}

fn init_logs(format: LogFormat) {
    let filter =
        EnvFilter::try_from_env("OCELLUS_LOG").unwrap_or_else(|_| EnvFilter::new("info,ort=warn"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // A closed stderr (a pipe whose reader left) must not panic the thread that
        // logs: tracing-subscriber would otherwise report it with eprintln!.
        .log_internal_errors(false);
    match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .init(),
        LogFormat::Text if stderr_is_journal() => builder
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_target(false)
            .init(),
    }
}

/// Whether stderr is the journal stream systemd connected (`$JOURNAL_STREAM` is its
/// `device:inode`).
fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Ok(stream) = std::env::var("JOURNAL_STREAM") else {
        return false;
    };
    let Ok(meta) = std::fs::metadata("/proc/self/fd/2") else {
        return false;
    };
    stream == format!("{}:{}", meta.dev(), meta.ino())
}

fn load(path: &Path) -> Option<config::Config> {
    match config::load(path) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("{e}");
            None
        }
    }
}

fn finish(result: Result<i32, app::DaemonError>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

fn check(path: &Path) -> ExitCode {
    match config::check(path) {
        Ok(c) => {
            let queries: usize = c.cameras.iter().map(|c| c.queries.len()).sum();
            println!(
                "{}: ok ({} cameras, {} queries, {} models)",
                path.display(),
                c.cameras.len(),
                queries,
                c.models.len()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            println!("{e}");
            ExitCode::from(1)
        }
    }
}
