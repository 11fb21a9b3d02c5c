//! What one camera's frames went through: counters and latency histograms per stage.

use super::counter::Counter;
use super::decoder::DecoderMetrics;
use super::histogram::Histogram;

/// What one camera's frames went through.
#[derive(Debug, Default)]
pub struct CameraMetrics {
    /// Frames out of the decoder.
    pub decoded: Counter,
    /// Frames admitted by the sample-rate cap.
    pub sampled: Counter,
    /// Sampled frames the change gate found unchanged (last answers reused).
    pub unchanged: Counter,
    /// Frames that ran at least one model.
    pub encoded: Counter,
    /// Model outputs taken from the embedding cache instead of the encoder.
    pub cache_hits: Counter,
    /// Model outputs the embedding cache did not have.
    pub cache_misses: Counter,
    /// Frames discarded by the camera's queue (drop-oldest).
    pub dropped: Counter,
    /// Frames evaluated (encoded, cached or reused) and reported.
    pub evaluated: Counter,
    /// Decoder → report ready.
    pub latency: Histogram,
    /// Preprocessing (resize, tensor fill) per model run.
    pub preprocess: Histogram,
    /// Waiting for and running inference (batched with other cameras).
    pub infer: Histogram,
    /// Decoding model outputs (boxes, NMS, normalising).
    pub postprocess: Histogram,
    /// Evaluating every query of the frame.
    pub queries: Histogram,
    /// Frames the slow lane ran its due queries on.
    pub slow_jobs: Counter,
    /// Frames handed to the slow lane that a newer frame replaced before
    /// it was free (newest wins).
    pub slow_replaced: Counter,
    /// Encoding one (model, region) for the slow queries: vision encoder (and the
    /// image-prefix pass), or the whole OCR pipeline.
    pub slow_encode: Histogram,
    /// One slow query on already-encoded features (prompt suffix and decoding).
    pub slow_query: Histogram,
    /// Runtime query changes refused as invalid (spec, size, unknown model, ...).
    pub query_changes_refused: Counter,
    /// Runtime query changes refused by a limit (change rate, changes waiting,
    /// `queries.json` full).
    pub query_changes_limited: Counter,
    /// The video decoder in use and the fallbacks from hardware to software.
    pub decoder: DecoderMetrics,
}

impl CameraMetrics {
    /// One line: the counters and the latency quantiles.
    pub fn summary(&self) -> String {
        let mut line = format!(
            "{} decoded, {} sampled, {} unchanged, {} encoded, {} cache hits, {} dropped; \
             latency p50 {:.1} ms p99 {:.1} ms; infer p50 {:.1} ms, preprocess p50 {:.2} ms, queries p50 {:.3} ms",
            self.decoded.get(),
            self.sampled.get(),
            self.unchanged.get(),
            self.encoded.get(),
            self.cache_hits.get(),
            self.dropped.get(),
            self.latency.quantile_ms(0.5),
            self.latency.quantile_ms(0.99),
            self.infer.quantile_ms(0.5),
            self.preprocess.quantile_ms(0.5),
            self.queries.quantile_ms(0.5),
        );
        let jobs = self.slow_jobs.get();
        if jobs > 0 || self.slow_replaced.get() > 0 {
            line.push_str(&format!(
                "; generative: {jobs} frames, {} replaced, encode p50 {:.1} ms, query p50 {:.1} ms",
                self.slow_replaced.get(),
                self.slow_encode.quantile_ms(0.5),
                self.slow_query.quantile_ms(0.5),
            ));
        }
        line
    }
}
