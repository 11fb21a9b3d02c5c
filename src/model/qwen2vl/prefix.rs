//! The image prefix: a frame's smart resize and patches, the vision encoder run and
//! ONE decoder run over the chat template up to the image's `<|vision_end|>` (system
//! prompt, user turn, `<|vision_start|>`, the image tokens), kept as the KV cache every
//! question on that frame starts from, with the frame's M-RoPE `rope_delta`.
//!
//! M-RoPE positions (transformers' `get_rope_index` for one image): the text before
//! the image counts 0, 1, ... in all three rows; image token `(r, c)` of the merged
//! `rows x cols` grid is `(st, st + r, st + c)` after `st` text tokens; the text after
//! it continues at `st + max(rows, cols)` in all three rows, so every position after
//! the image is its sequence index plus `rope_delta = max(rows, cols) - rows * cols`.
//!
//! ```
//! use ocellus::model::qwen2vl::mrope_prefix_positions;
//! // Two text tokens, a 1 x 2 grid of image tokens, <|vision_end|>.
//! let p = mrope_prefix_positions(2, 1, 2);
//! assert_eq!(p, [0, 1, 2, 2, 4,   0, 1, 2, 2, 4,   0, 1, 2, 3, 4]);
//! ```

use std::time::Instant;

use ort::value::{DynValue, TensorRef};

use super::error::Qwen2VlError;
use super::model::{Qwen2Vl, Qwen2VlSessions};
use crate::engine::{Rect, RgbView};
use crate::kit::Frame;
use crate::model::kv_decoder::{KvDecoderError, PrefixTimings};
use crate::model::{Cancel, ModelError};

/// The KV cache of the prompt prefix of one frame (or region); read-only once built,
/// so any number of questions can share it.
pub struct ImagePrefix {
    /// `present.{i}.key/value` of the prefix run, in the decoder's cache order.
    pub(crate) kv: Vec<DynValue>,
    len: usize,
    /// Position of every token after the image = its index + `rope_delta`.
    pub(crate) rope_delta: i64,
    image_tokens: usize,
    /// The resized image's `(width, height)`: what Qwen's boxes are in.
    pub(crate) resized: (u32, u32),
    pub timings: PrefixTimings,
}

impl ImagePrefix {
    /// Tokens the prefix covers.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The image's tokens (after the merger).
    pub fn image_tokens(&self) -> usize {
        self.image_tokens
    }

    /// transformers' `rope_deltas` of this image.
    pub fn rope_delta(&self) -> i64 {
        self.rope_delta
    }

    /// The resized image's `(width, height)` in pixels.
    pub fn resized(&self) -> (u32, u32) {
        self.resized
    }
}

/// The M-RoPE positions (`[3, n]`, flattened: temporal, height, width rows) of `head`
/// text tokens, a `rows x cols` grid of image tokens and `<|vision_end|>`.
pub fn mrope_prefix_positions(head: usize, rows: usize, cols: usize) -> Vec<i64> {
    let n = head + rows * cols + 1;
    let mut p = vec![0i64; 3 * n];
    let st = head as i64;
    for i in 0..head {
        for row in 0..3 {
            p[row * n + i] = i as i64;
        }
    }
    for j in 0..rows * cols {
        let (r, c) = ((j / cols) as i64, (j % cols) as i64);
        p[head + j] = st;
        p[n + head + j] = st + r;
        p[2 * n + head + j] = st + c;
    }
    let end = st + rows.max(cols) as i64;
    for row in 0..3 {
        p[row * n + n - 1] = end;
    }
    p
}

/// A frame's patches as the vision encoder takes them (owned: see [`Patches`] for the
/// borrowed form the prefix uses).
///
/// [`Patches`]: super::Patches
#[derive(Debug, Clone)]
pub struct PixelValues {
    /// `[patches, 3 * temporal * patch * patch]`, flattened.
    pub pixels: Vec<f32>,
    /// `grid_thw`: `[t, rows, columns]` of patches.
    pub grid: [i64; 3],
    /// The resized `(width, height)` in pixels.
    pub resized: (u32, u32),
}

impl Qwen2Vl {
    /// The patches, `grid_thw` and resized size of `region` of `frame` (the whole
    /// frame for `None`).
    pub fn pixel_values(
        &self,
        frame: &Frame,
        region: Option<[f32; 4]>,
    ) -> Result<PixelValues, ModelError> {
        let view = RgbView::of(frame)?;
        let crop = Rect::of_region(region, frame.width, frame.height);
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        let p = scratch
            .fill(&view, crop, &self.spec)
            .map_err(|e| self.run_error(e))?;
        Ok(PixelValues {
            pixels: p.pixels.to_vec(),
            grid: p.grid,
            resized: p.resized,
        })
    }

    /// Preprocesses `region` of `frame` (the whole frame for `None`), encodes it and
    /// runs the decoder over the image prefix once.
    pub fn prefix(
        &self,
        s: &Qwen2VlSessions,
        frame: &Frame,
        region: Option<[f32; 4]>,
    ) -> Result<ImagePrefix, ModelError> {
        self.prefix_with(s, frame, region, Cancel::never())
    }

    /// [`Qwen2Vl::prefix`], its ONNX runs terminated when `cancel` is raised.
    pub fn prefix_with(
        &self,
        s: &Qwen2VlSessions,
        frame: &Frame,
        region: Option<[f32; 4]>,
        cancel: &Cancel,
    ) -> Result<ImagePrefix, ModelError> {
        let t0 = Instant::now();
        let view = RgbView::of(frame)?;
        let crop = Rect::of_region(region, frame.width, frame.height);
        let d = self.hidden;
        let m = self.spec.merge as usize;
        let mut embeds = self.head_embeds.clone();
        let (t1, grid, resized);
        {
            let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
            let patches = {
                let _s = tracing::trace_span!("qwen2vl.pre", model = %self.name).entered();
                scratch
                    .fill(&view, crop, &self.spec)
                    .map_err(|e| self.run_error(e))?
            };
            t1 = Instant::now();
            (grid, resized) = (patches.grid, patches.resized);
            let _s = tracing::trace_span!("qwen2vl.vision", model = %self.name).entered();
            let n = (grid[1] * grid[2]) as usize;
            let row = patches.pixels.len() / n.max(1);
            let pv = TensorRef::from_array_view(([n, row], patches.pixels))
                .map_err(|e| self.run_error(e))?;
            let g = TensorRef::from_array_view(([1usize, 3], &grid[..]))
                .map_err(|e| self.run_error(e))?;
            let mut session = s.vision.lock();
            let outputs = cancel
                .run(
                    &mut session,
                    ort::inputs!["pixel_values" => pv, "grid_thw" => g],
                )
                .map_err(|e| self.run_failed(e))?;
            let value = outputs.get(&self.vision_output).ok_or_else(|| {
                self.run_error(Qwen2VlError::MissingOutput(self.vision_output.clone()))
            })?;
            let (_, features) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| self.run_error(e))?;
            let tokens = n / (m * m);
            if features.len() != tokens * d {
                return Err(self.run_error(KvDecoderError::FeaturesCount {
                    values: features.len(),
                    tokens,
                    hidden: d,
                }));
            }
            embeds.extend_from_slice(features);
        }
        embeds.extend_from_slice(&self.end_embed);
        let t2 = Instant::now();
        cancel.check(&self.name)?;
        let (rows, cols) = (grid[1] as usize / m, grid[2] as usize / m);
        let positions = mrope_prefix_positions(self.head_ids.len(), rows, cols);
        let step = {
            let _s = tracing::trace_span!("qwen2vl.prefill", model = %self.name).entered();
            let mut session = s.decoder.lock();
            self.run_decoder(&mut session, &embeds, &[], 0, &positions, false, cancel)?
        };
        let image_tokens = rows * cols;
        Ok(ImagePrefix {
            kv: step.kv,
            len: self.head_ids.len() + image_tokens + 1,
            rope_delta: rows.max(cols) as i64 - image_tokens as i64,
            image_tokens,
            resized,
            timings: PrefixTimings {
                preprocess: t1 - t0,
                vision: t2 - t1,
                prefill: t2.elapsed(),
            },
        })
    }
}
