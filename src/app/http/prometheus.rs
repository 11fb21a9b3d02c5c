//! `/metrics` in Prometheus' text exposition format (0.0.4): per camera the frame
//! counters of every stage and the latency histograms, per model its engine's runs
//! and latencies and the execution provider each session runs on, the embedding
//! and prompt caches, and the MQTT outbox.

use std::fmt::Write;
use std::sync::atomic::Ordering;

use crate::app::status::{CameraView, ModelView, Status};
use crate::kit::metrics::{CameraMetrics, Counter, Histogram, ModelMetrics, RemoteMetrics};

/// The whole exposition.
pub fn render(shared: &Status) -> String {
    let mut w = Writer::default();
    cameras(&mut w, shared);
    models(&mut w, shared);
    let cache = &shared.cache;
    w.single(
        "ocellus_cache_hits_total",
        "Image embeddings served from the cache.",
        "counter",
        cache.hits() as f64,
    );
    w.single(
        "ocellus_cache_misses_total",
        "Image embeddings the cache did not have.",
        "counter",
        cache.misses() as f64,
    );
    w.single(
        "ocellus_cache_evictions_total",
        "Cache entries evicted for room.",
        "counter",
        cache.evictions() as f64,
    );
    w.single(
        "ocellus_cache_bytes",
        "Bytes held by the embedding cache.",
        "gauge",
        cache.bytes() as f64,
    );
    let prompts = &shared.prompts;
    w.single(
        "ocellus_prompt_cache_hits_total",
        "Prompt embeddings served from the prompt cache.",
        "counter",
        prompts.hits() as f64,
    );
    w.single(
        "ocellus_prompt_cache_misses_total",
        "Prompt embeddings the prompt cache did not have (embedded).",
        "counter",
        prompts.misses() as f64,
    );
    w.single(
        "ocellus_prompt_cache_evictions_total",
        "Prompt embeddings evicted for room (least recently used first).",
        "counter",
        prompts.evictions() as f64,
    );
    w.single(
        "ocellus_prompt_cache_bytes",
        "Bytes held by the prompt cache.",
        "gauge",
        prompts.bytes() as f64,
    );
    w.single(
        "ocellus_prompt_cache_entries",
        "Prompt embeddings held.",
        "gauge",
        prompts.len() as f64,
    );
    if let Some(p) = &shared.publisher {
        let rows: [(&str, &str, &str, f64); 12] = [
            (
                "ocellus_mqtt_connected",
                "1 while the broker is connected.",
                "gauge",
                f64::from(u8::from(p.connected())),
            ),
            (
                "ocellus_mqtt_queued_messages",
                "Messages in the outbox (queued or awaiting PUBACK).",
                "gauge",
                p.queued() as f64,
            ),
            (
                "ocellus_mqtt_oldest_queued_seconds",
                "Age of the oldest message in the outbox.",
                "gauge",
                p.oldest_age().map_or(0.0, |a| a.as_secs_f64()),
            ),
            (
                "ocellus_mqtt_dropped_total",
                "Messages the full outbox dropped (drop-oldest, best-effort first).",
                "counter",
                p.dropped() as f64,
            ),
            (
                "ocellus_mqtt_events_raised_total",
                "Events handed to the outbox.",
                "counter",
                p.events_raised() as f64,
            ),
            (
                "ocellus_mqtt_events_acknowledged_total",
                "Events the broker acknowledged.",
                "counter",
                p.events_acknowledged() as f64,
            ),
            (
                "ocellus_mqtt_journal_lines_total",
                "Messages written to the outage journal.",
                "counter",
                p.journal_lines() as f64,
            ),
            (
                "ocellus_mqtt_journal_bytes",
                "Bytes in the outage journal file (capped by mqtt.journal_max_bytes).",
                "gauge",
                p.journal_bytes() as f64,
            ),
            (
                "ocellus_mqtt_journal_dropped_total",
                "Messages left out of the full outage journal (drop-oldest; kept in memory).",
                "counter",
                p.journal_dropped() as f64,
            ),
            (
                "ocellus_mqtt_incoming_dropped_total",
                "Incoming messages discarded for being over the daemon's limit for their topic.",
                "counter",
                p.incoming_dropped() as f64,
            ),
            (
                "ocellus_mqtt_refused_total",
                "Outgoing messages refused: over mqtt.max_packet_size, or closed the connection each time sent.",
                "counter",
                p.refused() as f64,
            ),
            (
                "ocellus_mqtt_reconnects_total",
                "Connections to the broker after the first.",
                "counter",
                p.reconnects() as f64,
            ),
        ];
        for (name, help, kind, v) in rows {
            w.single(name, help, kind, v);
        }
    }
    w.single(
        "ocellus_uptime_seconds",
        "Seconds since the daemon started.",
        "gauge",
        shared.started.elapsed().as_secs_f64(),
    );
    w.out
}

type CameraCounter = fn(&CameraMetrics) -> &Counter;
type CameraHistogram = fn(&CameraMetrics) -> &Histogram;
type ModelCounter = fn(&ModelMetrics) -> &Counter;
type ModelHistogram = fn(&ModelMetrics) -> &Histogram;

fn cameras(w: &mut Writer, shared: &Status) {
    let cams = shared.cameras();
    let counters: [(&str, &str, CameraCounter); 10] = [
        ("decoded", "Frames out of the decoder.", |m| &m.decoded),
        ("sampled", "Frames admitted by the sample-rate cap.", |m| {
            &m.sampled
        }),
        (
            "unchanged",
            "Sampled frames the change gate held back.",
            |m| &m.unchanged,
        ),
        ("encoded", "Frames that ran at least one model.", |m| {
            &m.encoded
        }),
        (
            "cache_hits",
            "Model outputs taken from the embedding cache.",
            |m| &m.cache_hits,
        ),
        (
            "cache_misses",
            "Model outputs the embedding cache did not have.",
            |m| &m.cache_misses,
        ),
        (
            "dropped",
            "Frames the camera's queue dropped (drop-oldest).",
            |m| &m.dropped,
        ),
        ("evaluated", "Frames evaluated and reported.", |m| {
            &m.evaluated
        }),
        ("slow_jobs", "Frames the slow lane answered.", |m| {
            &m.slow_jobs
        }),
        (
            "slow_replaced",
            "Frames for the slow lane replaced by newer ones.",
            |m| &m.slow_replaced,
        ),
    ];
    for (stage, help, get) in counters {
        let name = format!("ocellus_camera_{stage}_frames_total");
        w.header(&name, help, "counter");
        for (id, v) in cams.iter() {
            w.sample(&name, &[("camera", id)], get(&v.metrics).get() as f64);
        }
    }
    let name = "ocellus_camera_query_changes_refused_total";
    w.header(
        name,
        "Runtime query changes refused: invalid, or by a limit (rate, queue, queries.json size).",
        "counter",
    );
    for (id, v) in cams.iter() {
        let m = &v.metrics;
        w.sample(
            name,
            &[("camera", id), ("reason", "invalid")],
            m.query_changes_refused.get() as f64,
        );
        w.sample(
            name,
            &[("camera", id), ("reason", "limited")],
            m.query_changes_limited.get() as f64,
        );
    }
    w.header(
        "ocellus_camera_frame_age_seconds",
        "Seconds since the camera's last frame (since its start before the first).",
        "gauge",
    );
    for (id, v) in cams.iter() {
        let age = v.progress.frame_age().as_secs_f64();
        w.sample("ocellus_camera_frame_age_seconds", &[("camera", id)], age);
    }
    w.header(
        "ocellus_camera_up",
        "1 while the camera's source is online.",
        "gauge",
    );
    for (id, v) in cams.iter() {
        let up = v.status.name() == "online" && !v.ended.load(Ordering::Relaxed);
        w.sample(
            "ocellus_camera_up",
            &[("camera", id)],
            f64::from(u8::from(up)),
        );
    }
    decoders(w, &cams);
    let histograms: [(&str, &str, CameraHistogram); 7] = [
        ("latency", "Decoder to report ready.", |m| &m.latency),
        ("preprocess", "Preprocessing per model run.", |m| {
            &m.preprocess
        }),
        ("infer", "Waiting for and running inference.", |m| &m.infer),
        ("postprocess", "Decoding model outputs.", |m| &m.postprocess),
        ("queries", "Evaluating every query of a frame.", |m| {
            &m.queries
        }),
        (
            "slow_encode",
            "Encoding a frame for the slow queries.",
            |m| &m.slow_encode,
        ),
        ("slow_query", "One slow query on encoded features.", |m| {
            &m.slow_query
        }),
    ];
    for (stage, help, get) in histograms {
        let name = format!("ocellus_camera_{stage}_seconds");
        w.header(&name, help, "histogram");
        for (id, v) in cams.iter() {
            w.histogram(&name, &[("camera", id)], get(&v.metrics));
        }
    }
}

/// The decoder each camera's pipeline plugged in, and its fallbacks to software.
fn decoders(w: &mut Writer, cams: &std::collections::BTreeMap<String, CameraView>) {
    let name = "ocellus_camera_decoder_info";
    w.header(
        name,
        "The video decoder the camera's pipeline plugged in (element factory, its kind, the kind its decoder setting asked for).",
        "gauge",
    );
    for (id, v) in cams.iter() {
        if let Some(d) = v.metrics.decoder.chosen() {
            let labels = [
                ("camera", id.as_str()),
                ("decoder", &d.factory),
                ("kind", d.kind),
                ("wanted", d.wanted),
            ];
            w.sample(name, &labels, 1.0);
        }
    }
    let name = "ocellus_camera_decoder_fallbacks_total";
    w.header(
        name,
        "Times the wanted hardware decoder was missing or failed and software decoding took over.",
        "counter",
    );
    for (id, v) in cams.iter() {
        let n = v.metrics.decoder.fallbacks.get() as f64;
        w.sample(name, &[("camera", id)], n);
    }
}

fn models(w: &mut Writer, shared: &Status) {
    let models = shared.models();
    w.header(
        "ocellus_model_loaded",
        "1 when the model loaded, 0 when it failed (see the log or /healthz).",
        "gauge",
    );
    for (name, m) in models.iter() {
        let loaded = f64::from(u8::from(m.error.is_none()));
        w.sample(
            "ocellus_model_loaded",
            &[("model", name), ("family", m.family)],
            loaded,
        );
    }
    w.header(
        "ocellus_model_provider_info",
        "The execution provider each of a model's sessions runs on.",
        "gauge",
    );
    for (model, file, provider) in crate::engine::chosen_providers() {
        if models.contains_key(&model) {
            let labels = [
                ("model", model.as_str()),
                ("file", &file),
                ("provider", provider),
            ];
            w.sample("ocellus_model_provider_info", &labels, 1.0);
        }
    }
    let engines: Vec<(&String, &ModelMetrics)> = models
        .iter()
        .filter_map(|(n, m)| Some((n, m.metrics.as_deref()?)))
        .collect();
    let counters: [(&str, &str, ModelCounter); 3] = [
        ("ocellus_model_runs_total", "Inference runs.", |m| &m.runs),
        (
            "ocellus_model_frames_total",
            "Frames those runs took.",
            |m| &m.items,
        ),
        (
            "ocellus_model_failures_total",
            "Requests whose run failed.",
            |m| &m.failures,
        ),
    ];
    for (name, help, get) in counters {
        w.header(name, help, "counter");
        for (model, m) in &engines {
            w.sample(name, &[("model", model)], get(m).get() as f64);
        }
    }
    let histograms: [(&str, &str, ModelHistogram); 2] = [
        (
            "ocellus_model_run_seconds",
            "One inference run (the whole batch).",
            |m| &m.run,
        ),
        (
            "ocellus_model_queue_wait_seconds",
            "Time a request waited for its run.",
            |m| &m.wait,
        ),
    ];
    for (name, help, get) in histograms {
        w.header(name, help, "histogram");
        for (model, m) in &engines {
            w.histogram(name, &[("model", model)], get(m));
        }
    }
    w.header(
        "ocellus_model_unreadable_answers_total",
        "Answers a generative model gave that could not be read (qwen2vl grounding that is not JSON).",
        "counter",
    );
    for (name, m) in models.iter() {
        if let Some(c) = &m.unreadable {
            let n = c.get() as f64;
            w.sample(
                "ocellus_model_unreadable_answers_total",
                &[("model", name)],
                n,
            );
        }
    }
    remotes(w, &models);
}

type RemoteCounter = fn(&RemoteMetrics) -> &Counter;

/// The served models' clients: requests, answers, failures by cause, the calls the
/// budget and the breaker refused, call times, availability.
fn remotes(w: &mut Writer, models: &std::collections::BTreeMap<String, ModelView>) {
    let remotes: Vec<(&String, &RemoteMetrics)> = models
        .iter()
        .filter_map(|(n, m)| Some((n, m.remote.as_deref()?)))
        .collect();
    if remotes.is_empty() {
        return;
    }
    w.header(
        "ocellus_remote_available",
        "1 while the served model answers, 0 while its circuit breaker has it unavailable.",
        "gauge",
    );
    for (model, m) in &remotes {
        let up = f64::from(u8::from(m.available()));
        w.sample("ocellus_remote_available", &[("model", model)], up);
    }
    w.header(
        "ocellus_remote_budget_used",
        "Requests counted against max_calls_per_hour in the last hour.",
        "gauge",
    );
    for (model, m) in &remotes {
        let used = m.budget_used() as f64;
        w.sample("ocellus_remote_budget_used", &[("model", model)], used);
    }
    let counters: [(&str, &str, RemoteCounter); 8] = [
        (
            "ocellus_remote_requests_total",
            "HTTP requests sent, retries included.",
            |m| &m.requests,
        ),
        (
            "ocellus_remote_answered_total",
            "Calls that got an answer.",
            |m| &m.answered,
        ),
        (
            "ocellus_remote_failures_total",
            "Calls that failed after their retries.",
            |m| &m.failures,
        ),
        (
            "ocellus_remote_timeouts_total",
            "Requests that ran out of time.",
            |m| &m.timeouts,
        ),
        (
            "ocellus_remote_malformed_total",
            "Replies unlike the documented shape or the asked schema.",
            |m| &m.malformed,
        ),
        (
            "ocellus_remote_retries_total",
            "Requests retried (429, 5xx, timeout, refused).",
            |m| &m.retries,
        ),
        (
            "ocellus_remote_over_budget_total",
            "Calls not made: max_calls_per_hour was spent.",
            |m| &m.over_budget,
        ),
        (
            "ocellus_remote_refused_total",
            "Calls not made: the model was unavailable.",
            |m| &m.refused,
        ),
    ];
    for (name, help, get) in counters {
        w.header(name, help, "counter");
        for (model, m) in &remotes {
            w.sample(name, &[("model", model)], get(m).get() as f64);
        }
    }
    w.header(
        "ocellus_remote_call_seconds",
        "One call to a served model, retries and waits included.",
        "histogram",
    );
    for (model, m) in &remotes {
        w.histogram("ocellus_remote_call_seconds", &[("model", model)], &m.call);
    }
}

#[derive(Default)]
struct Writer {
    out: String,
}

impl Writer {
    fn header(&mut self, name: &str, help: &str, kind: &str) {
        let _ = writeln!(self.out, "# HELP {name} {help}");
        let _ = writeln!(self.out, "# TYPE {name} {kind}");
    }

    fn single(&mut self, name: &str, help: &str, kind: &str, value: f64) {
        self.header(name, help, kind);
        self.sample(name, &[], value);
    }

    fn sample(&mut self, name: &str, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(name);
        self.labels(labels, None);
        let _ = writeln!(self.out, " {value}");
    }

    /// Cumulative `_bucket`s in seconds, then `_sum` and `_count`.
    fn histogram(&mut self, name: &str, labels: &[(&str, &str)], h: &Histogram) {
        let counts = h.buckets();
        let mut seen = 0u64;
        for (i, c) in counts.iter().enumerate().take(counts.len() - 1) {
            seen += c;
            let le = format!("{}", Histogram::bound(i).as_secs_f64());
            let _ = write!(self.out, "{name}_bucket");
            self.labels(labels, Some(&le));
            let _ = writeln!(self.out, " {seen}");
        }
        let total: u64 = counts.iter().sum();
        let _ = write!(self.out, "{name}_bucket");
        self.labels(labels, Some("+Inf"));
        let _ = writeln!(self.out, " {total}");
        let _ = write!(self.out, "{name}_sum");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {}", h.sum().as_secs_f64());
        let _ = write!(self.out, "{name}_count");
        self.labels(labels, None);
        let _ = writeln!(self.out, " {total}");
    }

    fn labels(&mut self, labels: &[(&str, &str)], le: Option<&str>) {
        if labels.is_empty() && le.is_none() {
            return;
        }
        self.out.push('{');
        let mut first = true;
        for (k, v) in labels.iter().copied().chain(le.map(|l| ("le", l))) {
            if !first {
                self.out.push(',');
            }
            first = false;
            let _ = write!(self.out, "{k}=\"{}\"", escape(v));
        }
        self.out.push('}');
    }
}

/// Label values escape backslash, double quote and newline.
fn escape(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn histograms_are_cumulative_and_end_with_inf() {
        let h = Histogram::default();
        h.record(Duration::from_micros(10));
        h.record(Duration::from_millis(3));
        let mut w = Writer::default();
        w.histogram("x_seconds", &[("camera", "a\"b")], &h);
        let lines: Vec<&str> = w.out.lines().collect();
        assert_eq!(
            lines[0],
            "x_seconds_bucket{camera=\"a\\\"b\",le=\"0.000016\"} 1"
        );
        assert!(lines.contains(&"x_seconds_bucket{camera=\"a\\\"b\",le=\"+Inf\"} 2"));
        assert!(lines.contains(&"x_seconds_count{camera=\"a\\\"b\"} 2"));
        let last_bucket = lines[lines.len() - 4];
        assert!(last_bucket.ends_with(" 2"), "{last_bucket}");
    }
}
