//! Download progress: a bar on stderr when it is a terminal (indicatif), and one log
//! line per file either way (tracing, stderr).

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The progress of one file's transfer.
pub(super) struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// Starts showing `label`'s transfer of `total` bytes (when known), `done` of them
    /// already on disk.
    pub(super) fn start(label: &str, total: Option<u64>, done: u64) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None };
        }
        let bar = ProgressBar::with_draw_target(total, ProgressDrawTarget::stderr());
        let template = if total.is_some() {
            "{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}"
        } else {
            "{msg} {bytes} {bytes_per_sec}"
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_message(label.to_string());
        bar.set_position(done);
        Progress { bar: Some(bar) }
    }

    pub(super) fn add(&self, n: u64) {
        if let Some(b) = &self.bar {
            b.inc(n);
        }
    }

    /// Removes the bar (the caller logs the file's line).
    pub(super) fn finish(&self) {
        if let Some(b) = &self.bar {
            b.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}
