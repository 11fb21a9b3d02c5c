//! A decoded RGB frame, still inside its GStreamer buffer (no copy).

use std::time::{Duration, Instant, SystemTime};

use gstreamer as gst;

/// One decoded frame: packed RGB rows of `stride` bytes (GStreamer pads RGB rows to a
/// multiple of 4 bytes, so `stride` may exceed `3 * width`).
pub struct Frame {
    /// Per-camera sequence number, counting from 0 across reconnects.
    pub seq: u64,
    /// Presentation time from the stream (position in a file), never derived from the
    /// container's frame-rate field.
    pub pts: Duration,
    /// Wall-clock time at which the frame left the decoder.
    pub captured: SystemTime,
    /// Monotonic time at which the frame left the decoder (latency measurement).
    pub decoded_at: Instant,
    pub width: u32,
    pub height: u32,
    pub stride: usize,
    data: FrameData,
}

enum FrameData {
    Gst(gst::MappedBuffer<gst::buffer::Readable>),
    Owned(Vec<u8>),
}

impl Frame {
    /// Wraps a mapped GStreamer buffer.
    pub fn from_gst(
        seq: u64,
        pts: Duration,
        width: u32,
        height: u32,
        stride: usize,
        buffer: gst::MappedBuffer<gst::buffer::Readable>,
    ) -> Self {
        Self {
            seq,
            pts,
            captured: SystemTime::now(),
            decoded_at: Instant::now(),
            width,
            height,
            stride,
            data: FrameData::Gst(buffer),
        }
    }

    /// A frame from packed RGB bytes (tests and benchmarks).
    pub fn from_rgb(width: u32, height: u32, stride: usize, data: Vec<u8>) -> Self {
        Self {
            seq: 0,
            pts: Duration::ZERO,
            captured: SystemTime::now(),
            decoded_at: Instant::now(),
            width,
            height,
            stride,
            data: FrameData::Owned(data),
        }
    }

    /// All bytes, rows `stride` apart.
    pub fn data(&self) -> &[u8] {
        match &self.data {
            FrameData::Gst(b) => b.as_slice(),
            FrameData::Owned(v) => v,
        }
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Frame")
            .field("seq", &self.seq)
            .field("pts", &self.pts)
            .field("width", &self.width)
            .field("height", &self.height)
            .field("stride", &self.stride)
            .finish()
    }
}
