//! The image prefix: a frame's preprocessing, vision encoder run and ONE decoder run
//! over `<|im_start|>User:` + its image tokens, kept as the KV cache every question on
//! that frame starts from.
//!
//! ```no_run
//! # use ocellus::model::smolvlm::{SmolVlm, SmolVlmConfig};
//! # let cfg: SmolVlmConfig = toml::from_str(r#"dir = "/models/smolvlm""#).unwrap();
//! # let env = ocellus::engine::environment(&Default::default()).unwrap();
//! # let (vlm, s) = SmolVlm::load("vqa", &cfg, env).unwrap();
//! # let frame = ocellus::kit::Frame::from_rgb(64, 64, 192, vec![0; 64 * 64 * 3]);
//! let prefix = vlm.prefix(&s, &frame, Some([0.5, 0.0, 1.0, 0.5])).unwrap();
//! println!("{} tokens, vision {:?}", prefix.len(), prefix.timings.vision);
//! ```

use std::time::Instant;

use ort::value::{DynValue, TensorRef};

use super::error::SmolVlmError;
use super::model::{SmolVlm, SmolVlmSessions};
use crate::engine::{Rect, RgbView};
use crate::kit::Frame;
use crate::model::kv_decoder::{self, PrefixTimings};
use crate::model::{Cancel, ModelError};

/// The KV cache of the prompt prefix of one frame (or region); read-only once built,
/// so any number of questions can share it.
pub struct ImagePrefix {
    /// `present.{i}.key/value` of the prefix run, in the decoder's cache order.
    pub(crate) kv: Vec<DynValue>,
    len: usize,
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
}

impl SmolVlm {
    /// The `[3, S, S]` pixel values of `region` of `frame` (the whole frame for `None`).
    pub fn pixel_values(
        &self,
        frame: &Frame,
        region: Option<[f32; 4]>,
    ) -> Result<Vec<f32>, ModelError> {
        let view = RgbView::of(frame)?;
        let crop = Rect::of_region(region, frame.width, frame.height);
        let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
        Ok(scratch.fill(&view, crop, &self.spec)?.to_vec())
    }

    /// Preprocesses `region` of `frame` (the whole frame for `None`), encodes it and
    /// runs the decoder over the image prefix once.
    pub fn prefix(
        &self,
        s: &SmolVlmSessions,
        frame: &Frame,
        region: Option<[f32; 4]>,
    ) -> Result<ImagePrefix, ModelError> {
        self.prefix_with(s, frame, region, Cancel::never())
    }

    /// [`SmolVlm::prefix`], its ONNX runs terminated when `cancel` is raised.
    pub fn prefix_with(
        &self,
        s: &SmolVlmSessions,
        frame: &Frame,
        region: Option<[f32; 4]>,
        cancel: &Cancel,
    ) -> Result<ImagePrefix, ModelError> {
        let t0 = Instant::now();
        let view = RgbView::of(frame)?;
        let crop = Rect::of_region(region, frame.width, frame.height);
        let side = self.spec.square as usize;
        let mut embeds = self.prefix_embeds.clone();
        let t1;
        {
            let mut scratch = self.scratch.lock().unwrap_or_else(|e| e.into_inner());
            let pixels = {
                let _s = tracing::trace_span!("smolvlm.pre", model = %self.name).entered();
                scratch.fill(&view, crop, &self.spec)?
            };
            t1 = Instant::now();
            let _s = tracing::trace_span!("smolvlm.vision", model = %self.name).entered();
            let mask = vec![true; side * side];
            let pv = TensorRef::from_array_view(([1usize, 1, 3, side, side], pixels))
                .map_err(|e| self.run_error(e))?;
            let pm = TensorRef::from_array_view(([1usize, 1, side, side], &mask[..]))
                .map_err(|e| self.run_error(e))?;
            let mut session = s.vision.lock();
            let outputs = cancel
                .run(
                    &mut session,
                    ort::inputs!["pixel_values" => pv, "pixel_attention_mask" => pm],
                )
                .map_err(|e| self.run_failed(e))?;
            let value = outputs.get(&self.vision_output).ok_or_else(|| {
                self.run_error(SmolVlmError::MissingOutput(self.vision_output.clone()))
            })?;
            let (_, features) = value
                .try_extract_tensor::<f32>()
                .map_err(|e| self.run_error(e))?;
            kv_decoder::merge_image(
                &self.name,
                &mut embeds,
                features,
                &self.prefix_ids,
                self.image_token_id,
                self.hidden,
            )?;
        }
        let t2 = Instant::now();
        cancel.check(&self.name)?;
        let step = {
            let _s = tracing::trace_span!("smolvlm.prefill", model = %self.name).entered();
            let mut session = s.decoder.lock();
            self.run_decoder(&mut session, &embeds, &[], 0, false, cancel)?
        };
        Ok(ImagePrefix {
            kv: step.kv,
            len: self.prefix_ids.len(),
            timings: PrefixTimings {
                preprocess: t1 - t0,
                vision: t2 - t1,
                prefill: t2.elapsed(),
            },
        })
    }
}
