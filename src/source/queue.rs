//! Bounded queue of samples between a decoder and its evaluator, with a named overflow
//! policy and a drop counter.

use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, RecvTimeoutError, SendTimeoutError, Sender, TrySendError};

use crate::kit::Sample;
use crate::kit::metrics::Counter;

/// What a full queue does with a new frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenFull {
    /// Wait for room (files: back-pressure, nothing is lost).
    Block,
    /// Discard the oldest queued frame (live sources: stay current).
    DropOldest,
}

/// Producer half. Cloning shares the counters.
#[derive(Clone)]
pub struct FrameSender {
    tx: Sender<Sample>,
    // Held only to pop the oldest frame under `DropOldest`.
    rx: Receiver<Sample>,
    policy: WhenFull,
    dropped: Counter,
}

/// Every sender is gone and the queue is empty: the source has ended.
#[derive(Debug, PartialEq, Eq)]
pub struct Closed;

/// Consumer half.
pub struct FrameReceiver {
    rx: Receiver<Sample>,
    dropped: Counter,
}

/// Makes a queue of `capacity` frames.
pub fn frame_queue(capacity: usize, policy: WhenFull) -> (FrameSender, FrameReceiver) {
    frame_queue_counting(capacity, policy, Counter::default())
}

/// As [`frame_queue`], counting drops in `dropped` (e.g. the camera's metrics).
pub fn frame_queue_counting(
    capacity: usize,
    policy: WhenFull,
    dropped: Counter,
) -> (FrameSender, FrameReceiver) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    (
        FrameSender {
            tx,
            rx: rx.clone(),
            policy,
            dropped: dropped.clone(),
        },
        FrameReceiver { rx, dropped },
    )
}

/// Why a frame was not queued.
#[derive(Debug, PartialEq, Eq)]
pub enum SendError {
    /// The evaluator is gone.
    Closed,
    /// `stop` was raised while waiting for room.
    Stopped,
}

impl FrameSender {
    /// Queues `frame` under the policy. `Block` waits, checking `stop` every 50 ms.
    pub fn send(&self, mut frame: Sample, stop: &AtomicBool) -> Result<(), SendError> {
        match self.policy {
            WhenFull::Block => loop {
                match self.tx.send_timeout(frame, Duration::from_millis(50)) {
                    Ok(()) => return Ok(()),
                    Err(SendTimeoutError::Disconnected(_)) => return Err(SendError::Closed),
                    Err(SendTimeoutError::Timeout(f)) => {
                        if stop.load(Ordering::Relaxed) {
                            return Err(SendError::Stopped);
                        }
                        frame = f;
                    }
                }
            },
            WhenFull::DropOldest => loop {
                match self.tx.try_send(frame) {
                    Ok(()) => return Ok(()),
                    Err(TrySendError::Disconnected(_)) => return Err(SendError::Closed),
                    Err(TrySendError::Full(f)) => {
                        if self.rx.try_recv().is_ok() {
                            self.dropped.inc();
                        }
                        frame = f;
                    }
                }
            },
        }
    }
}

impl FrameReceiver {
    /// Next frame, `Ok(None)` on timeout, `Err(Closed)` once the source has ended.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Option<Sample>, Closed> {
        match self.rx.recv_timeout(timeout) {
            Ok(f) => Ok(Some(f)),
            Err(RecvTimeoutError::Timeout) => Ok(None),
            Err(RecvTimeoutError::Disconnected) => Err(Closed),
        }
    }

    /// Frames discarded by `DropOldest` so far.
    pub fn dropped(&self) -> u64 {
        self.dropped.get()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(seq: u64) -> Sample {
        let mut f = crate::kit::Frame::from_rgb(1, 1, 3, vec![0; 3]);
        f.seq = seq;
        Sample::Frame(f)
    }

    #[test]
    fn drop_oldest_keeps_the_newest_and_counts() {
        let (tx, rx) = frame_queue(2, WhenFull::DropOldest);
        let stop = AtomicBool::new(false);
        for seq in 0..5 {
            tx.send(frame(seq), &stop).unwrap();
        }
        assert_eq!(rx.dropped(), 3);
        let got: Vec<u64> = std::iter::from_fn(|| rx.recv_timeout(Duration::ZERO).ok().flatten())
            .map(|f| f.seq())
            .collect();
        assert_eq!(got, vec![3, 4]);
    }

    #[test]
    fn block_waits_and_stops_on_request() {
        let (tx, rx) = frame_queue(1, WhenFull::Block);
        let stop = AtomicBool::new(false);
        tx.send(frame(0), &stop).unwrap();
        stop.store(true, Ordering::Relaxed);
        assert_eq!(tx.send(frame(1), &stop), Err(SendError::Stopped));
        assert_eq!(rx.dropped(), 0);
        assert_eq!(rx.recv_timeout(Duration::ZERO).unwrap().unwrap().seq(), 0);
    }
}
