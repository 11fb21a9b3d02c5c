//! The error of loading a config: it could not be read, or it has problems.

use std::path::PathBuf;

use crate::kit::Problem;

#[derive(Debug, thiserror::Error)]
/// Why a config could not be loaded.
pub enum ConfigError {
    #[error("config {}: cannot read: {source}", path.display())]
    /// The file could not be read.
    Read {
        /// The config file.
        path: PathBuf,
        /// What the read failed with.
        source: std::io::Error,
    },
    #[error("config {}: {} problem(s):\n{}", path.display(), problems.len(), list(problems))]
    /// The file was read, and has the problems listed.
    Invalid {
        /// The config file.
        path: PathBuf,
        /// Every problem found, each with its path in the file.
        problems: Vec<Problem>,
    },
}

impl ConfigError {
    /// The individual problems (empty for a read error).
    pub fn problems(&self) -> &[Problem] {
        match self {
            ConfigError::Read { .. } => &[],
            ConfigError::Invalid { problems, .. } => problems,
        }
    }

    /// The error on one line (problems joined with `; `), for a log line or a reply.
    pub fn one_line(&self) -> String {
        match self {
            ConfigError::Read { .. } => self.to_string(),
            ConfigError::Invalid { path, problems } => format!(
                "config {}: {}",
                path.display(),
                problems
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }
    }
}

fn list(problems: &[Problem]) -> String {
    problems
        .iter()
        .map(|p| format!("  {p}"))
        .collect::<Vec<_>>()
        .join("\n")
}
