//! What the source hands the evaluator: a decoded RGB frame still inside its
//! GStreamer buffer (no copy), or the timing of a sampled frame the change gate found
//! unchanged (no pixels: it was never converted).

use std::time::{Duration, Instant, SystemTime};

use gstreamer as gst;

use crate::kit::I420Layout;
use crate::kit::{Plane, Thumb, Verdict};

/// Which pixels a camera's frames should arrive in: RGB for models that need it
/// (the dual encoders' Pillow-exact preprocessing), the decoder's own I420 otherwise
/// (detectors convert only the pixels of their input, and a frame is half the size).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pixels {
    /// Packed 8-bit RGB, converted by GStreamer (the default).
    #[default]
    Rgb,
    /// Planar YUV 4:2:0 as the decoder produced it.
    I420,
}

impl Pixels {
    /// Whether a frame laid out as `format` is in these pixels.
    pub fn matches(self, format: PixelFormat) -> bool {
        matches!(
            (self, format),
            (Pixels::Rgb, PixelFormat::Rgb) | (Pixels::I420, PixelFormat::I420(_))
        )
    }
}

/// How a frame's bytes are laid out.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum PixelFormat {
    /// Packed RGB rows `Frame::stride` bytes apart.
    Rgb,
    /// Planar YUV 4:2:0.
    I420(I420Layout),
}

/// One sampled frame, as it leaves the gate.
// Not boxed: a box per frame would be a heap allocation per frame, and samples only
// travel through short bounded queues.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Sample {
    /// The frame is to be encoded.
    Frame(Frame),
    /// Nothing changed: the last answers hold for this frame.
    Unchanged(Unchanged),
}

impl Sample {
    /// The per-camera sequence number of the sampled frame, with or without pixels.
    pub fn seq(&self) -> u64 {
        match self {
            Sample::Frame(f) => f.seq,
            Sample::Unchanged(u) => u.seq,
        }
    }
}

/// A sampled frame without pixels (see [`Sample::Unchanged`]).
#[derive(Debug, Clone, Copy)]
pub struct Unchanged {
    /// Per-camera sequence number, counting from 0 across reconnects (as [`Frame::seq`]).
    pub seq: u64,
    /// Presentation time from the stream (as [`Frame::pts`]).
    pub pts: Duration,
    /// Wall-clock time at which the frame left the decoder.
    pub captured: SystemTime,
    /// Monotonic time at which the frame left the decoder (latency measurement).
    pub decoded_at: Instant,
    /// The change gate's score for it.
    pub score: f32,
}

/// One decoded frame: packed RGB rows of `stride` bytes (GStreamer pads RGB rows to a
/// multiple of 4 bytes, so `stride` may exceed `3 * width`), or I420 planes.
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
    /// Width in pixels.
    pub width: u32,
    /// Height in pixels.
    pub height: u32,
    /// Bytes from the start of one row of the first plane to the next: packed RGB
    /// rows (>= `3 * width`), or the Y plane of I420 (all three planes' strides are in
    /// [`PixelFormat::I420`]'s layout).
    pub stride: usize,
    /// How the bytes are laid out: packed RGB or I420 planes.
    pub format: PixelFormat,
    /// Luma thumbnail computed by the gate (`None` for a format it cannot read).
    pub thumb: Option<Thumb>,
    /// Why the gate let the frame through.
    pub verdict: Verdict,
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
        (width, height): (u32, u32),
        stride: usize,
        format: PixelFormat,
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
            format,
            thumb: None,
            verdict: Verdict::First,
            data: FrameData::Gst(buffer),
        }
    }

    /// A frame from packed RGB bytes (tests and benchmarks); its thumbnail is taken
    /// from the green channel.
    pub fn from_rgb(width: u32, height: u32, stride: usize, data: Vec<u8>) -> Self {
        let thumb = Thumb::of(&Plane {
            data: &data,
            width: width as usize,
            height: height as usize,
            stride,
            offset: 1,
            step: 3,
        });
        Self {
            seq: 0,
            pts: Duration::ZERO,
            captured: SystemTime::now(),
            decoded_at: Instant::now(),
            width,
            height,
            stride,
            format: PixelFormat::Rgb,
            thumb,
            verdict: Verdict::First,
            data: FrameData::Owned(data),
        }
    }

    /// A copy that owns its pixels, written into `buf` (its capacity is reused), for
    /// work that outlives the decoder's buffer (the slow lane).
    pub fn copy_into(&self, mut buf: Vec<u8>) -> Frame {
        buf.clear();
        buf.extend_from_slice(self.data());
        Frame {
            seq: self.seq,
            pts: self.pts,
            captured: self.captured,
            decoded_at: self.decoded_at,
            width: self.width,
            height: self.height,
            stride: self.stride,
            format: self.format,
            thumb: self.thumb,
            verdict: self.verdict,
            data: FrameData::Owned(buf),
        }
    }

    /// Gives back the pixel buffer of a frame made by [`Frame::copy_into`] (`None` for
    /// a decoder buffer).
    pub fn into_buffer(self) -> Option<Vec<u8>> {
        match self.data {
            FrameData::Owned(v) => Some(v),
            FrameData::Gst(_) => None,
        }
    }

    /// All bytes (see `format`).
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
            .field("format", &self.format)
            .field("verdict", &self.verdict)
            .finish()
    }
}
