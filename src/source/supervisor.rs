//! Keeps one camera's pipeline running: starts it, watches its bus and frame age,
//! restarts live sources with capped exponential backoff, and reports status.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use gstreamer as gst;
use gstreamer::prelude::*;

use super::diagnose;
use super::pipeline::{self, Progress};
use super::queue::FrameSender;
use super::{CameraConfig, CameraStatus, Tuning, redact, redact_in};
use crate::kit::metrics::CameraMetrics;
use crate::kit::shutdown::Shutdown;
use crate::kit::{Pixels, RateLimit, RateLimits};

/// How a camera's source ended.
#[derive(Debug, Clone, PartialEq)]
pub enum Ended {
    /// A file played to its end (`repeat = false`).
    Finished {
        /// Frames delivered over the camera's lifetime.
        frames: u64,
    },
    /// The source cannot go on (bad file, bad URL, missing plugin…); the message is
    /// the one line that was logged.
    Failed(String),
    /// Shutdown was requested.
    Shutdown,
}

/// A running source thread.
pub struct SourceHandle {
    /// The camera's counters, shared with the pipeline (frames, last frame, metrics).
    pub progress: Arc<Progress>,
    thread: JoinHandle<Ended>,
}

impl SourceHandle {
    /// Waits for the source thread to end and says how it ended (a panic becomes
    /// [`Ended::Failed`]).
    pub fn join(self) -> Ended {
        self.thread
            .join()
            .unwrap_or_else(|_| Ended::Failed("source thread panicked".into()))
    }

    /// Whether the source thread has ended (so [`join`](Self::join) will not block).
    pub fn is_finished(&self) -> bool {
        self.thread.is_finished()
    }
}

/// Whether a live source that fails is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retry {
    /// Reconnect with capped exponential backoff (the daemon).
    Forever,
    /// Give up at the first failure (one-shot `ask`).
    Never,
}

/// Starts the camera's source on its own thread, delivering frames in `pixels`.
pub fn spawn(
    cam: CameraConfig,
    pixels: Pixels,
    tx: FrameSender,
    on_status: impl Fn(CameraStatus) + Send + 'static,
    shutdown: Shutdown,
    retry: Retry,
    metrics: Arc<CameraMetrics>,
) -> SourceHandle {
    let tuning = Tuning::new(cam.queries.iter().map(|q| q.region).collect(), pixels);
    let progress = Arc::new(Progress::new(metrics, tuning));
    let p = progress.clone();
    let thread = std::thread::Builder::new()
        .name(format!("src-{}", cam.id))
        .spawn(move || supervise(&cam, tx, &on_status, &shutdown, &p, retry))
        .unwrap_or_else(|e| panic!("cannot spawn a thread: {e}"));
    SourceHandle { progress, thread }
}

enum Outcome {
    /// The evaluator asked for another pixel format.
    Rebuild,
    Eos,
    Error(String),
    Stalled(Duration),
    Shutdown,
}

fn supervise(
    cam: &CameraConfig,
    tx: FrameSender,
    on_status: &dyn Fn(CameraStatus),
    shutdown: &Shutdown,
    progress: &Arc<Progress>,
    retry: Retry,
) -> Ended {
    // Report changes only (a repeating file comes back online at every loop).
    let last = std::cell::Cell::new(None);
    let on_status = &|status: CameraStatus| {
        if last.replace(Some(status)) != Some(status) {
            on_status(status);
        }
    };
    let what = format!("camera {}: {}", cam.id, redact(&cam.url));
    let live = cam.is_live() && retry == Retry::Forever;
    let mut backoff = Duration::from_secs(1);
    // Each kind of reconnect is logged at once, then once a minute (with the count).
    let (eos_warned, error_warned, stall_warned) =
        (RateLimit::new(), RateLimit::new(), RateLimit::new());
    let ended = loop {
        if shutdown.is_triggered() {
            break Ended::Shutdown;
        }
        let frames_before = progress.frames.load(Ordering::Relaxed);
        let outcome = match pipeline::build(cam, tx.clone(), progress.clone()) {
            Ok(pipeline) => run_once(&Attempt {
                cam,
                pipeline: &pipeline,
                progress,
                shutdown,
                on_status,
                frames_before,
            }),
            Err(e) => Outcome::Error(e.to_string()),
        };
        // GStreamer's messages may quote the URL (souphttpsrc: "URL: http://...").
        let outcome = match outcome {
            Outcome::Error(e) => Outcome::Error(redact_in(&e, &cam.url)),
            other => other,
        };
        let frames = progress.frames.load(Ordering::Relaxed);
        let got_frames = frames > frames_before;
        // A hardware decoder that failed before the first frame: software, at once.
        if matches!(outcome, Outcome::Error(_))
            && !got_frames
            && super::decoder::fall_back_after_failure(cam, &progress.metrics.decoder)
        {
            continue;
        }
        // GStreamer does not always say why a network source failed: name the
        // unknown host or refused port when that is the cause.
        let outcome = match outcome {
            Outcome::Error(e) if !got_frames => match diagnose::unreachable(cam) {
                Some(cause) => Outcome::Error(cause),
                None => Outcome::Error(e),
            },
            other => other,
        };
        match outcome {
            Outcome::Shutdown => break Ended::Shutdown,
            Outcome::Rebuild => {
                tracing::info!(
                    camera = %cam.id,
                    "{what}: restarting the pipeline for {:?} frames",
                    progress.tuning.pixels()
                );
                continue;
            }
            Outcome::Eos if !live && cam.repeat && got_frames => {
                // One frame and no length: a still image, a still camera. It is shown
                // again (evaluated as the change gate says) once per max_staleness, or
                // at once when a viewer asks for a fresh frame.
                let still = frames == frames_before + 1
                    && progress.duration_ms.load(Ordering::Relaxed) == 0;
                let pause = if still {
                    let waited = Instant::now();
                    if wait_for_still(cam.max_staleness, progress, shutdown) {
                        break Ended::Shutdown;
                    }
                    waited.elapsed()
                } else {
                    Duration::ZERO
                };
                progress.continue_timeline(pause);
                continue;
            }
            Outcome::Eos if !live => break Ended::Finished { frames },
            Outcome::Error(e) if !live => {
                let line = if got_frames {
                    let at = progress.last_pts_ms.load(Ordering::Relaxed) as f64 / 1000.0;
                    format!(
                        "{what}: stopped after {frames} frames at {at:.1} s (damaged or truncated?): {e}"
                    )
                } else {
                    format!("{what}: {e}")
                };
                tracing::error!(camera = %cam.id, "{line}");
                break Ended::Failed(line);
            }
            Outcome::Eos => {
                if let Some(s) = eos_warned.allow() {
                    tracing::warn!(
                        camera = %cam.id,
                        suppressed = s.count(),
                        "{what}: stream ended; reconnecting{s}"
                    );
                }
            }
            Outcome::Error(e) => {
                if let Some(s) = error_warned.allow() {
                    tracing::warn!(
                        camera = %cam.id,
                        suppressed = s.count(),
                        "{what}: {e}; reconnecting in {backoff:?}{s}"
                    );
                }
            }
            Outcome::Stalled(age) => {
                if let Some(s) = stall_warned.allow() {
                    tracing::warn!(
                        camera = %cam.id,
                        suppressed = s.count(),
                        "{what}: no frame for {age:.1?}; reconnecting in {backoff:?}{s}"
                    );
                }
            }
        }
        on_status(CameraStatus::Reconnecting);
        if got_frames {
            backoff = Duration::from_secs(1);
        }
        if sleep_unless_shutdown(backoff, shutdown) {
            break Ended::Shutdown;
        }
        backoff = (backoff * 2).min(cam.reconnect_max.max(Duration::from_secs(1)));
    };
    on_status(CameraStatus::Offline);
    ended
}

/// Waits `for_` (a still camera between two showings), less when the evaluator asks
/// for a fresh frame (its tuning changes: a viewer, a runtime query change); true
/// on shutdown.
fn wait_for_still(for_: Duration, progress: &Progress, shutdown: &Shutdown) -> bool {
    let generation = progress.tuning.generation();
    let until = Instant::now() + for_;
    while Instant::now() < until {
        if shutdown.is_triggered() {
            return true;
        }
        if progress.tuning.generation() != generation {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20).min(until - Instant::now()));
    }
    shutdown.is_triggered()
}

/// What one play of a pipeline needs.
struct Attempt<'a> {
    cam: &'a CameraConfig,
    pipeline: &'a gst::Pipeline,
    progress: &'a Progress,
    shutdown: &'a Shutdown,
    on_status: &'a dyn Fn(CameraStatus),
    /// Frames delivered before this attempt (to notice the first new one).
    frames_before: u64,
}

/// Plays the pipeline until it ends, fails, stalls or shutdown; always leaves it Null.
fn run_once(a: &Attempt<'_>) -> Outcome {
    let (cam, pipeline, progress) = (a.cam, a.pipeline, a.progress);
    progress.stop.store(false, Ordering::Relaxed);
    let outcome = match pipeline.set_state(gst::State::Playing) {
        Err(_) => first_error(pipeline)
            .unwrap_or_else(|| Outcome::Error("cannot start the pipeline".into())),
        Ok(_) => watch(a),
    };
    let duration = pipeline.query_duration::<gst::ClockTime>();
    progress
        .duration_ms
        .store(duration.map_or(0, |d| d.mseconds()), Ordering::Relaxed);
    progress.stop.store(true, Ordering::Relaxed);
    let _ = pipeline.set_state(gst::State::Null);
    if let (Outcome::Eos, Some(total)) = (&outcome, duration) {
        let last = Duration::from_millis(progress.last_pts_ms.load(Ordering::Relaxed));
        let total = Duration::from_nanos(total.nseconds());
        static TRUNCATED: RateLimits = RateLimits::new();
        if last + Duration::from_secs(1) < total
            && let Some(s) = TRUNCATED.allow(&cam.id)
        {
            tracing::warn!(
                camera = %cam.id,
                suppressed = s.count(),
                "camera {}: {}: ended at {:.1} s of {:.1} s (truncated?){s}",
                cam.id,
                redact(&cam.url),
                last.as_secs_f64(),
                total.as_secs_f64()
            );
        }
    }
    outcome
}

fn watch(a: &Attempt<'_>) -> Outcome {
    let (cam, pipeline, progress, shutdown, on_status) =
        (a.cam, a.pipeline, a.progress, a.shutdown, a.on_status);
    let (frames_before, started) = (a.frames_before, Instant::now());
    let Some(bus) = pipeline.bus() else {
        return Outcome::Error("pipeline has no bus".into());
    };
    let mut online = false;
    loop {
        if shutdown.is_triggered() {
            return Outcome::Shutdown;
        }
        if progress.tuning.take_rebuild() {
            return Outcome::Rebuild;
        }
        if let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
            match msg.view() {
                gst::MessageView::Eos(_) => return Outcome::Eos,
                gst::MessageView::Error(err) => {
                    let line = progress
                        .take_refusal()
                        .or_else(|| no_video(progress))
                        .unwrap_or_else(|| describe(err));
                    return Outcome::Error(line);
                }
                gst::MessageView::Warning(w) => {
                    let warning = w.error().to_string();
                    tracing::debug!(camera = %cam.id, "GStreamer warning: {}", redact_in(&warning, &cam.url))
                }
                _ => {}
            }
        }
        let frames = progress.frames.load(Ordering::Relaxed);
        if !online && frames > frames_before {
            online = true;
            on_status(CameraStatus::Online);
        }
        if cam.is_live() {
            let age = if online {
                progress.frame_age()
            } else {
                started.elapsed()
            };
            if age > cam.frame_timeout {
                return Outcome::Stalled(age);
            }
        }
    }
}

/// "No video stream" when the source's streams were all skipped (audio only).
fn no_video(progress: &Progress) -> Option<String> {
    let skipped = progress.skipped_streams();
    if progress.video_linked.load(Ordering::Relaxed) || skipped.is_empty() {
        return None;
    }
    Some(format!("no video stream (only {})", skipped.join(", ")))
}

fn first_error(pipeline: &gst::Pipeline) -> Option<Outcome> {
    let bus = pipeline.bus()?;
    let msg = bus.timed_pop_filtered(
        gst::ClockTime::from_mseconds(500),
        &[gst::MessageType::Error],
    )?;
    match msg.view() {
        gst::MessageView::Error(err) => Some(Outcome::Error(describe(err))),
        _ => None,
    }
}

/// One line for a GStreamer error: the message and, when it adds something, the
/// first line of its debug text.
fn describe(err: &gst::message::Error) -> String {
    let mut line = err.error().to_string();
    if let Some(debug) = err.debug()
        && let Some(first) = debug.lines().last()
        && !first.is_empty()
        && !line.contains(first)
    {
        let detail = first.rsplit("):").next().unwrap_or(first).trim();
        if !detail.is_empty() && !detail.starts_with("/Gst") {
            line = format!("{line} ({detail})"); // redacted by `supervise`
        }
    }
    line
}

/// Sleeps in small steps; true if shutdown came first.
fn sleep_unless_shutdown(d: Duration, shutdown: &Shutdown) -> bool {
    let end = Instant::now() + d;
    while Instant::now() < end {
        if shutdown.is_triggered() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50).min(end - Instant::now()));
    }
    shutdown.is_triggered()
}
