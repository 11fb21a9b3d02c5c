//! The `ocellus` command line: `run`, `check`, `ask`, `models`.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;

use ocellus::config::{self, ConfigError};
use ocellus::daemon::{self, AskOptions, RunOptions};

#[derive(Parser)]
#[command(
    name = "ocellus",
    version,
    about = "Standing questions over camera feeds, answered on MQTT"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
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
    /// Model files: list, pull (download and verify), import, verify.
    Models {
        #[command(subcommand)]
        command: ocellus::hub::cli::ModelsCommand,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter =
        EnvFilter::try_from_env("OCELLUS_LOG").unwrap_or_else(|_| EnvFilter::new("info,ort=warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A closed stderr (a pipe whose reader left) must not panic the thread that
        // logs: tracing-subscriber would otherwise report it with eprintln!.
        .log_internal_errors(false)
        .with_target(false)
        .init();
    match cli.command {
        Command::Models { command } => ocellus::hub::cli::run(command),
        Command::Check { config } => check(&config),
        Command::Run { config, mqtt_url } => {
            let Some(config) = load(&config) else {
                return ExitCode::from(1);
            };
            finish(daemon::run(config, RunOptions { mqtt_url }))
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
            finish(daemon::ask(
                config,
                &media,
                AskOptions { camera, sample_fps },
            ))
        }
    }
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

fn finish(result: Result<i32, daemon::DaemonError>) -> ExitCode {
    match result {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            tracing::error!("{e}");
            ExitCode::from(1)
        }
    }
}

fn check(path: &Path) -> ExitCode {
    match config::load(path) {
        Ok(c) => {
            let problems = config::preflight(&c);
            if problems.is_empty() {
                let queries: usize = c.cameras.iter().map(|c| c.queries.len()).sum();
                println!(
                    "{}: ok ({} cameras, {} queries, {} models)",
                    path.display(),
                    c.cameras.len(),
                    queries,
                    c.models.len()
                );
                ExitCode::SUCCESS
            } else {
                let e = ConfigError::Invalid {
                    path: path.to_path_buf(),
                    problems,
                };
                println!("{e}");
                ExitCode::from(1)
            }
        }
        Err(e) => {
            println!("{e}");
            ExitCode::from(1)
        }
    }
}
