//! What one model's engine did: runs, batch sizes, failures and timings.

use super::counter::Counter;
use super::histogram::Histogram;

/// What one model's engine did.
#[derive(Debug, Default)]
pub struct ModelMetrics {
    /// Inference runs.
    pub runs: Counter,
    /// Frames those runs took (runs × batch size).
    pub items: Counter,
    /// Requests whose run failed.
    pub failures: Counter,
    /// One inference run (the whole batch).
    pub run: Histogram,
    /// Time a request waited in the engine queue before its run began.
    pub wait: Histogram,
}

impl ModelMetrics {
    /// One log line: runs, frames and mean batch size, failures, and run and queue-wait
    /// quantiles (ms, as bucket upper bounds).
    pub fn summary(&self) -> String {
        let runs = self.runs.get();
        format!(
            "{runs} runs, {} frames (mean batch {:.2}), {} failed; run p50 {:.1} ms, queue wait p50 {:.1} ms p99 {:.1} ms",
            self.items.get(),
            if runs == 0 {
                0.0
            } else {
                self.items.get() as f64 / runs as f64
            },
            self.failures.get(),
            self.run.quantile_ms(0.5),
            self.wait.quantile_ms(0.5),
            self.wait.quantile_ms(0.99),
        )
    }
}
