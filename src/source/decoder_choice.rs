//! The `decoder` setting (`[decode]` for every camera, `[[cameras]]` for one) and what
//! kind of decoder each GStreamer element factory is; `decoder.rs` applies the choice
//! to a camera's pipeline.

use serde::Deserialize;

/// A camera's `decoder` setting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DecoderChoice {
    /// Whatever GStreamer's ranks choose (FFmpeg's `avdec_*` on most machines).
    #[default]
    Auto,
    /// Software decoders only (`avdec_*`, `openh264dec`, `jpegdec`, ...), never a
    /// hardware one.
    Software,
    /// NVIDIA: NVDEC (`nvh264dec`, `nvh265dec`, ...) or Jetson's `nvv4l2decoder`.
    Nvidia,
    /// Intel and AMD through VA-API (`vah264dec`, ... of `va`; `vaapih264dec`, ... of
    /// `vaapi`).
    Vaapi,
    /// V4L2 memory-to-memory decoders (`v4l2h264dec`, `v4l2slh264dec`, ...; Jetson's
    /// `nvv4l2decoder` too).
    V4l2,
}

impl DecoderChoice {
    /// The setting as written in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            DecoderChoice::Auto => "auto",
            DecoderChoice::Software => "software",
            DecoderChoice::Nvidia => "nvidia",
            DecoderChoice::Vaapi => "vaapi",
            DecoderChoice::V4l2 => "v4l2",
        }
    }

    /// Whether it asks for a hardware decoder.
    pub fn is_hardware(self) -> bool {
        matches!(
            self,
            DecoderChoice::Nvidia | DecoderChoice::Vaapi | DecoderChoice::V4l2
        )
    }

    /// Whether a decoder of `factory` (of `kind`) is one this choice takes.
    pub(super) fn accepts(self, factory: &str, kind: DecoderKind) -> bool {
        match self {
            DecoderChoice::Auto => true,
            DecoderChoice::Software => kind == DecoderKind::Software,
            DecoderChoice::Nvidia => kind == DecoderKind::Nvidia,
            DecoderChoice::Vaapi => kind == DecoderKind::Vaapi,
            // Jetson's decoder is a V4L2 memory-to-memory device with NVIDIA's name.
            DecoderChoice::V4l2 => kind == DecoderKind::V4l2 || factory == "nvv4l2decoder",
        }
    }
}

/// `[decode]`: how every camera decodes video unless it says otherwise.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecodeConfig {
    /// The decoder of every camera without a `decoder` of its own (default auto).
    #[serde(default)]
    pub decoder: DecoderChoice,
}

/// What a decoder element is, by its factory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum DecoderKind {
    /// Runs on the CPU.
    Software,
    /// NVDEC or Jetson's `nvv4l2decoder`.
    Nvidia,
    /// VA-API (`va` or `vaapi` plugins).
    Vaapi,
    /// V4L2 memory-to-memory (stateful or stateless).
    V4l2,
    /// Another hardware decoder (Direct3D, Quick Sync, VideoToolbox, OpenMAX,
    /// Rockchip MPP, Vulkan, ...).
    OtherHardware,
}

impl DecoderKind {
    /// The kind as shown on `/metrics` and in the log.
    pub(super) fn as_str(self) -> &'static str {
        match self {
            DecoderKind::Software => "software",
            DecoderKind::Nvidia => "nvidia",
            DecoderKind::Vaapi => "vaapi",
            DecoderKind::V4l2 => "v4l2",
            DecoderKind::OtherHardware => "hardware",
        }
    }
}

/// Name prefixes of hardware decoders that are none of the kinds a camera can ask for.
const OTHER_HARDWARE: [&str; 12] = [
    "d3d11", "d3d12", "msdk", "qsv", "vtdec", "amc", "omx", "mpp", "vulkan", "imx", "mfh", "mfv",
];

/// The kind of the decoder `factory` (an element factory name; `klass` its class
/// metadata, e.g. `Codec/Decoder/Video/Hardware`).
pub(super) fn classify(factory: &str, klass: &str) -> DecoderKind {
    let decodes = factory.ends_with("dec") || factory.ends_with("decoder");
    if factory.starts_with("nv") && decodes {
        DecoderKind::Nvidia
    } else if factory.starts_with("vaapi") || (factory.starts_with("va") && decodes) {
        DecoderKind::Vaapi
    } else if factory.starts_with("v4l2") {
        DecoderKind::V4l2
    } else if OTHER_HARDWARE.iter().any(|p| factory.starts_with(p))
        || klass.split('/').any(|k| k == "Hardware")
    {
        DecoderKind::OtherHardware
    } else {
        DecoderKind::Software
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn factories_are_classified_by_name_and_class() {
        let video = "Codec/Decoder/Video";
        let hw = "Codec/Decoder/Video/Hardware";
        for (name, klass, kind) in [
            ("avdec_h264", video, DecoderKind::Software),
            ("avdec_h265", video, DecoderKind::Software),
            ("avdec_mjpeg", video, DecoderKind::Software),
            ("openh264dec", video, DecoderKind::Software),
            ("libde265dec", video, DecoderKind::Software),
            ("dav1ddec", video, DecoderKind::Software),
            ("vp9dec", video, DecoderKind::Software),
            ("jpegdec", "Codec/Decoder/Image", DecoderKind::Software),
            ("pngdec", "Codec/Decoder/Image", DecoderKind::Software),
            ("nvh264dec", hw, DecoderKind::Nvidia),
            ("nvh265dec", hw, DecoderKind::Nvidia),
            ("nvh264sldec", video, DecoderKind::Nvidia),
            ("nvav1dec", hw, DecoderKind::Nvidia),
            ("nvjpegdec", hw, DecoderKind::Nvidia),
            ("nvh264device1dec", hw, DecoderKind::Nvidia),
            ("nvv4l2decoder", video, DecoderKind::Nvidia),
            ("vaapih264dec", video, DecoderKind::Vaapi),
            ("vaapidecodebin", video, DecoderKind::Vaapi),
            ("vah264dec", hw, DecoderKind::Vaapi),
            ("vah265dec", hw, DecoderKind::Vaapi),
            ("varenderD129h264dec", hw, DecoderKind::Vaapi),
            ("vajpegdec", hw, DecoderKind::Vaapi),
            ("v4l2h264dec", video, DecoderKind::V4l2),
            ("v4l2slh264dec", hw, DecoderKind::V4l2),
            ("v4l2jpegdec", video, DecoderKind::V4l2),
            ("d3d11h264dec", hw, DecoderKind::OtherHardware),
            ("msdkh264dec", video, DecoderKind::OtherHardware),
            ("qsvh264dec", hw, DecoderKind::OtherHardware),
            ("vtdec_hw", video, DecoderKind::OtherHardware),
            ("omxh264dec", video, DecoderKind::OtherHardware),
            ("somenewh264dec", hw, DecoderKind::OtherHardware),
        ] {
            assert_eq!(classify(name, klass), kind, "{name}");
        }
    }

    #[test]
    fn each_choice_takes_its_own_kind_only() {
        use DecoderChoice::*;
        let all = [
            ("avdec_h264", DecoderKind::Software),
            ("nvh264dec", DecoderKind::Nvidia),
            ("nvv4l2decoder", DecoderKind::Nvidia),
            ("vah264dec", DecoderKind::Vaapi),
            ("v4l2h264dec", DecoderKind::V4l2),
            ("d3d11h264dec", DecoderKind::OtherHardware),
        ];
        let takes = |choice: DecoderChoice| -> Vec<&str> {
            all.iter()
                .filter(|(n, k)| choice.accepts(n, *k))
                .map(|(n, _)| *n)
                .collect()
        };
        assert_eq!(takes(Auto).len(), all.len());
        assert_eq!(takes(Software), ["avdec_h264"]);
        assert_eq!(takes(Nvidia), ["nvh264dec", "nvv4l2decoder"]);
        assert_eq!(takes(Vaapi), ["vah264dec"]);
        assert_eq!(takes(V4l2), ["nvv4l2decoder", "v4l2h264dec"]);
        assert!(!Auto.is_hardware() && !Software.is_hardware());
        assert!(Nvidia.is_hardware() && Vaapi.is_hardware() && V4l2.is_hardware());
    }

    #[test]
    fn choices_parse_from_their_config_names_only() {
        for choice in [
            DecoderChoice::Auto,
            DecoderChoice::Software,
            DecoderChoice::Nvidia,
            DecoderChoice::Vaapi,
            DecoderChoice::V4l2,
        ] {
            let config: DecodeConfig =
                toml::from_str(&format!("decoder = {:?}", choice.as_str())).unwrap();
            assert_eq!(config.decoder, choice);
        }
        assert_eq!(
            toml::from_str::<DecodeConfig>("").unwrap().decoder,
            DecoderChoice::Auto
        );
        let e = toml::from_str::<DecodeConfig>("decoder = \"cuda\"").unwrap_err();
        assert!(e.to_string().contains("unknown variant `cuda`"), "{e}");
    }
}
