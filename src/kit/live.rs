//! A camera's live picture for the people watching it: the evaluator copies a frame
//! into [`LiveFrame`] only while someone watches (a web tile holds a lease that each
//! of its requests renews; a one-shot `ask` wants one frame), at most once per
//! `every`, into a reused buffer, and hands the camera's id to the encoder's queue. Encoding to JPEG happens on the encoder's thread, never on the
//! evaluator's: the per-frame cost while watched is one copy of the frame, and
//! nothing (one atomic load) while no one watches.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use ocellus::kit::{Frame, LiveFrame};
//! let (ready, queued) = crossbeam_channel::bounded(4);
//! let live = LiveFrame::new(Arc::from("door"), ready);
//! let frame = Frame::from_rgb(4, 2, 12, vec![7; 24]);
//! live.offer(&frame); // no one watches: nothing is copied
//! assert!(queued.try_recv().is_err());
//! live.lease(Duration::from_secs(3)); // a tile asked for a picture
//! live.offer(&frame);
//! assert_eq!(&*queued.try_recv().unwrap(), "door");
//! assert_eq!(live.with(|f| f.width), Some(4));
//! ```

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use std::time::{Duration, Instant};

use crossbeam_channel::{Sender, TrySendError};

use super::Frame;
use super::metrics::Counter;

/// How a full encoder queue is handled: the camera's id is not queued again (its
/// slot keeps the newest frame, which the encoder takes when it gets to it).
pub const LIVE_OVERFLOW_POLICY: &str = "drop-newest (the slot keeps the newest frame)";

/// One camera's live picture (see the module docs).
pub struct LiveFrame {
    camera: Arc<str>,
    /// Watched until then, in ms since `zero` (each tile request renews it).
    leased_until_ms: AtomicU64,
    /// A one-shot request for the next frame, watched or not (`ask`, "label now").
    wanted: AtomicBool,
    /// The camera's id is in the encoder's queue (taken off by [`LiveFrame::take`]).
    queued: AtomicBool,
    /// When the last copy was made, in ms since `zero`.
    copied_ms: AtomicU64,
    zero: Instant,
    /// How many frames were copied (the encoder compares it with what it encoded).
    copies: AtomicU64,
    slot: Mutex<Option<Frame>>,
    ready: Sender<Arc<str>>,
    /// Frames not queued for encoding because the encoder's queue was full.
    pub dropped: Counter,
}

impl LiveFrame {
    /// The live picture of `camera`; `ready` is the encoder's queue (it gets the
    /// camera's id after a copy, unless it holds it already).
    pub fn new(camera: Arc<str>, ready: Sender<Arc<str>>) -> Self {
        Self {
            camera,
            leased_until_ms: AtomicU64::new(0),
            wanted: AtomicBool::new(false),
            queued: AtomicBool::new(false),
            copied_ms: AtomicU64::new(0),
            zero: Instant::now(),
            copies: AtomicU64::new(0),
            slot: Mutex::new(None),
            ready,
            dropped: Counter::default(),
        }
    }

    /// The camera's id.
    pub fn camera(&self) -> &Arc<str> {
        &self.camera
    }

    fn now_ms(&self) -> u64 {
        (self.zero.elapsed().as_millis() as u64).max(1)
    }

    /// Watched for `d` from now (a tile asked for a picture).
    pub fn lease(&self, d: Duration) {
        let until = self.now_ms() + d.as_millis() as u64;
        self.leased_until_ms.fetch_max(until, Ordering::AcqRel);
    }

    /// Whether someone watches now.
    pub fn watched(&self) -> bool {
        self.now_ms() < self.leased_until_ms.load(Ordering::Acquire)
    }

    /// Asks for the next frame with pixels, watched or not.
    pub fn want(&self) {
        self.wanted.store(true, Ordering::Release);
    }

    /// How many frames have been copied so far.
    pub fn copies(&self) -> u64 {
        self.copies.load(Ordering::Acquire)
    }

    /// Called by the evaluator with each frame that has pixels: copied (into the
    /// slot's reused buffer) while watched or wanted.
    pub fn offer(&self, frame: &Frame) {
        if !self.wanted.load(Ordering::Acquire) && !self.watched() {
            return;
        }
        self.wanted.store(false, Ordering::Release);
        {
            let mut slot = self.slot.lock().unwrap_or_else(|e| e.into_inner());
            let buf = slot.take().and_then(Frame::into_buffer).unwrap_or_default();
            *slot = Some(frame.copy_into(buf));
        }
        self.copies.fetch_add(1, Ordering::AcqRel);
        self.copied_ms.store(self.now_ms(), Ordering::Release);
        if self.queued.swap(true, Ordering::AcqRel) {
            return; // the encoder will take this newer copy
        }
        match self.ready.try_send(self.camera.clone()) {
            Ok(()) => {}
            Err(TrySendError::Disconnected(_)) => self.queued.store(false, Ordering::Release),
            Err(TrySendError::Full(_)) => {
                self.queued.store(false, Ordering::Release);
                self.dropped.inc();
            }
        }
    }

    /// Runs `f` on the last copied frame for the encoder, which takes the camera's
    /// id off its queue: a copy made from now on queues it again.
    pub fn take<T>(&self, f: impl FnOnce(&Frame) -> T) -> Option<T> {
        self.queued.store(false, Ordering::Release);
        self.with(f)
    }

    /// Frees the kept frame's buffer once no one has watched the camera for `idle`
    /// and no copy was made meanwhile (a closed page leaves no frame behind); true
    /// when it did.
    pub fn release_if_idle(&self, idle: Duration) -> bool {
        let idle = idle.as_millis() as u64;
        let now = self.now_ms();
        let lapsed = |at: &AtomicU64| now.saturating_sub(at.load(Ordering::Acquire)) >= idle;
        if !lapsed(&self.leased_until_ms)
            || !lapsed(&self.copied_ms)
            || self.queued.load(Ordering::Acquire)
        {
            return false;
        }
        self.slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .is_some()
    }

    /// Runs `f` on the last copied frame; `None` before the first.
    pub fn with<T>(&self, f: impl FnOnce(&Frame) -> T) -> Option<T> {
        self.slot
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn watched_frames_are_copied_and_queued_once_until_the_encoder_takes_them() {
        let (ready, queued) = crossbeam_channel::bounded(1);
        let live = Arc::new(LiveFrame::new(Arc::from("cam"), ready));
        let frame = Frame::from_rgb(2, 2, 6, vec![1; 12]);
        live.lease(Duration::from_secs(60));
        assert!(live.watched());
        live.offer(&frame);
        live.offer(&frame);
        assert_eq!(live.copies(), 2, "every frame with pixels is copied");
        assert_eq!(queued.len(), 1, "queued once");
        assert_eq!(live.dropped.get(), 0);
        assert!(queued.try_recv().is_ok());
        assert_eq!(live.take(|f| f.width), Some(2));
        live.offer(&frame);
        assert_eq!(queued.len(), 1, "taken: queued again");
        let unwatched = LiveFrame::new(Arc::from("cam"), live.ready.clone());
        unwatched.lease(Duration::ZERO);
        assert!(!unwatched.watched());
        unwatched.offer(&frame);
        assert_eq!(
            unwatched.copies(),
            0,
            "no lease, not wanted: nothing copied"
        );
        unwatched.want();
        unwatched.offer(&frame);
        assert_eq!(unwatched.copies(), 1, "wanted: copied once");
        unwatched.offer(&frame);
        assert_eq!(unwatched.copies(), 1);
        assert!(
            !unwatched.release_if_idle(Duration::from_secs(60)),
            "copied just now"
        );
        assert!(
            unwatched.release_if_idle(Duration::ZERO),
            "idle: the buffer goes"
        );
        assert_eq!(unwatched.with(|f| f.width), None);
    }
}
