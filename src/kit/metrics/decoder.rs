//! Which video decoder a camera's pipeline runs, and its fallbacks from hardware to
//! software: shown on `/metrics` (`ocellus_camera_decoder_info`,
//! `ocellus_camera_decoder_fallbacks_total`) and read by the source when it builds
//! the camera's next pipeline (a camera that fell back stays on software).
//!
//! ```
//! use ocellus::kit::metrics::DecoderMetrics;
//! let d = DecoderMetrics::default();
//! assert!(d.used("avdec_h264", "software", "nvidia"));
//! assert!(!d.used("avdec_h264", "software", "nvidia"));
//! assert!(d.fall_back());
//! assert!(!d.fall_back());
//! assert_eq!(d.fallbacks.get(), 1);
//! assert_eq!(d.chosen().unwrap().factory, "avdec_h264");
//! ```

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use super::counter::Counter;

/// The decoder a camera's pipeline plugged in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChosenDecoder {
    /// Its element factory (`avdec_h264`, `nvh264dec`, ...).
    pub factory: String,
    /// What it is: `software`, `nvidia`, `vaapi`, `v4l2` or `hardware` (another kind).
    pub kind: &'static str,
    /// What the camera's `decoder` setting asked for (`auto`, `software`, `nvidia`, ...).
    pub wanted: &'static str,
}

/// A camera's decoder: the one in use and how often hardware decoding fell back.
#[derive(Debug, Default)]
pub struct DecoderMetrics {
    /// Times the wanted hardware decoder was missing or failed and software took over
    /// (at most once per camera start: the camera then stays on software).
    pub fallbacks: Counter,
    chosen: Mutex<Option<ChosenDecoder>>,
    /// Set by the first fallback: the camera's later pipelines decode in software.
    software_only: AtomicBool,
    /// Why the current pipeline's hardware decoder failed, noted when it posted its
    /// error (taken by the source to fall back).
    failure: Mutex<Option<String>>,
}

impl DecoderMetrics {
    /// The decoder in use, once a pipeline has plugged one.
    pub fn chosen(&self) -> Option<ChosenDecoder> {
        self.chosen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// Notes the decoder a pipeline plugged; true when it differs from the one noted
    /// before (the first, or another after a fallback), i.e. when it is worth a line.
    pub fn used(&self, factory: &str, kind: &'static str, wanted: &'static str) -> bool {
        let mut chosen = self.chosen.lock().unwrap_or_else(|e| e.into_inner());
        let new = ChosenDecoder {
            factory: factory.to_string(),
            kind,
            wanted,
        };
        if chosen.as_ref() == Some(&new) {
            return false;
        }
        *chosen = Some(new);
        true
    }

    /// Records a fallback to software: true (and counted) the first time only.
    pub fn fall_back(&self) -> bool {
        let first = !self.software_only.swap(true, Ordering::AcqRel);
        if first {
            self.fallbacks.inc();
        }
        first
    }

    /// Whether the camera fell back to software (its pipelines decode in software).
    pub fn software_only(&self) -> bool {
        self.software_only.load(Ordering::Acquire)
    }

    /// Notes why the current pipeline's hardware decoder failed (the first reason).
    pub fn failed(&self, why: String) {
        let mut slot = self.failure.lock().unwrap_or_else(|e| e.into_inner());
        slot.get_or_insert(why);
    }

    /// Why the pipeline's hardware decoder failed, if it did (taken once).
    pub fn take_failure(&self) -> Option<String> {
        self.failure
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }
}
