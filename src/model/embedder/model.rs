//! [`Embedder`]: loading an image embedder (its input checked against the
//! preprocessor, its output found) and embedding frame regions on its engine thread.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use super::config::EmbedderConfig;
use super::error::EmbedderError;
use crate::engine::{
    self, BatchClient, BatchSpec, Batcher, EngineConfig, Rect, RgbView, SharedSession,
};
use crate::kit::Frame;
use crate::model::ModelError;
use crate::model::clip::{ClipImage, Embedding, ImageSpec, embed_on};

/// The embedder's contract; its session is held by the caller.
pub struct Embedder {
    name: String,
    spec: ImageSpec,
    output: String,
    /// What the embeddings depend on: the file's name and content hash, the output.
    identity: String,
    dim: usize,
}

impl Embedder {
    /// Opens the model file and checks its input and output.
    pub fn load(
        name: &str,
        cfg: &EmbedderConfig,
        env: &ort::environment::Environment,
    ) -> Result<(Self, SharedSession), ModelError> {
        let file = match &cfg.file {
            Some(f) => f.clone(),
            None => default_file(&cfg.dir).map_err(|e| ModelError::load(name, &cfg.dir, e))?,
        };
        let bad = |e: EmbedderError| ModelError::load(name, &file, e);
        let spec = ImageSpec::from_file(&cfg.preprocessor)
            .map_err(|e| ModelError::load(name, &cfg.preprocessor, e))?;
        let session = engine::open(env, name, &file, &cfg.providers, cfg.threads)?;
        let dim = {
            let s = session.lock();
            let Some(out) = s.outputs().iter().find(|o| o.name() == cfg.output) else {
                let found: Vec<&str> = s.outputs().iter().map(|o| o.name()).collect();
                return Err(bad(EmbedderError::NoOutput {
                    want: cfg.output.clone(),
                    found: found.join(", "),
                }));
            };
            let dims = out
                .dtype()
                .tensor_shape()
                .map(|d| d.to_vec())
                .unwrap_or_default();
            let dim = dims.iter().skip(1).filter(|&&d| d > 0).product::<i64>();
            if let Some(input) = s.inputs().first() {
                let dims = input
                    .dtype()
                    .tensor_shape()
                    .map(|d| d.to_vec())
                    .unwrap_or_default();
                let [_, 3, h, w] = dims[..] else {
                    return Err(bad(EmbedderError::InputShape {
                        name: input.name().into(),
                        dims,
                    }));
                };
                if let Some(gives) = spec.output_size()
                    && h > 0
                    && w > 0
                    && (i64::from(gives.0), i64::from(gives.1)) != (w, h)
                {
                    return Err(ModelError::load(
                        name,
                        &cfg.preprocessor,
                        EmbedderError::ImageSize {
                            gives,
                            takes: (w, h),
                        },
                    ));
                }
            }
            usize::try_from(dim).unwrap_or(0)
        };
        let identity =
            identity(&file, &cfg.output).map_err(|e| ModelError::load(name, &file, e))?;
        tracing::debug!(model = %name, file = %file.display(), dim, "embedder loaded");
        let model = Self {
            name: name.into(),
            spec,
            output: cfg.output.clone(),
            identity,
            dim,
        };
        Ok((model, session))
    }

    /// The engine thread that runs the model for every camera.
    pub fn engine(
        &self,
        session: &SharedSession,
        cfg: &EngineConfig,
    ) -> Result<Batcher, ModelError> {
        Ok(Batcher::spawn(
            session.clone(),
            BatchSpec {
                model: self.name.clone(),
                output: Some(self.output.clone()),
                max_batch: cfg.max_batch,
                max_wait: cfg.max_wait,
            },
        )?)
    }

    /// What the embeddings depend on (the file's name and sha256, the output): a
    /// stored example whose identity differs is embedded again from its crop.
    pub fn identity(&self) -> &str {
        &self.identity
    }

    /// The embedding's length, when the model's output shape says it (0 otherwise).
    pub fn dim(&self) -> usize {
        self.dim
    }

    /// The image preprocessing, from `preprocessor_config.json`.
    pub fn spec(&self) -> &ImageSpec {
        &self.spec
    }

    /// The unit-length embedding of `region` of `frame` (the whole frame for `None`),
    /// run on the model's engine thread (batched with other cameras).
    pub fn embed_image(
        &self,
        engine: &mut BatchClient,
        frame: &Frame,
        region: Option<[f32; 4]>,
        scratch: &mut ClipImage,
    ) -> Result<Embedding, ModelError> {
        let view = RgbView::of(frame)?;
        let crop = Rect::of_region(region, frame.width, frame.height);
        self.embed_view(engine, &view, crop, scratch)
    }

    /// As [`Embedder::embed_image`], for any RGB view and pixel rectangle.
    pub fn embed_view(
        &self,
        engine: &mut BatchClient,
        view: &RgbView<'_>,
        crop: Rect,
        scratch: &mut ClipImage,
    ) -> Result<Embedding, ModelError> {
        embed_on(engine, view, crop, &self.spec, scratch, &self.name, |out| {
            (out.is_empty() || out.iter().all(|&x| x == 0.0)).then(|| {
                ModelError::run(&self.name, EmbedderError::EmptyOutput(self.output.clone()))
            })
        })
    }
}

/// The folder's model file when the config names none (see the module docs).
fn default_file(dir: &Path) -> Result<PathBuf, EmbedderError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| EmbedderError::NoFile(format!("cannot list the folder: {e}")))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "onnx"))
        .collect();
    found.sort();
    let named = |p: &PathBuf, part: &str| {
        p.file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.contains(part))
    };
    if let [only] = &found[..] {
        return Ok(only.clone());
    }
    let pick = found
        .iter()
        .find(|p| named(p, "u8u8") && named(p, "embed"))
        .or_else(|| found.iter().find(|p| named(p, "embed")));
    match pick {
        Some(p) => Ok(p.clone()),
        None if found.is_empty() => {
            Err(EmbedderError::NoFile("no .onnx file in the folder".into()))
        }
        None => Err(EmbedderError::NoFile(
            "several .onnx files and none named *embed*; name one with `file`".into(),
        )),
    }
}

/// `<file name>:<sha256, 16 hex>:<output>`.
fn identity(file: &Path, output: &str) -> Result<String, std::io::Error> {
    let bytes = std::fs::read(file)?;
    let hash = Sha256::digest(&bytes);
    let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
    let name = file
        .file_name()
        .map(|n| n.to_string_lossy())
        .unwrap_or_default();
    Ok(format!("{name}:{hex}:{output}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_portable_embed_file_is_the_default_of_several() {
        let dir = tempfile::tempdir().unwrap();
        for f in ["m-int8.onnx", "m-int8-embed.onnx", "m-u8u8-embed.onnx"] {
            std::fs::write(dir.path().join(f), b"").unwrap();
        }
        assert!(
            default_file(dir.path())
                .unwrap()
                .ends_with("m-u8u8-embed.onnx")
        );
        std::fs::remove_file(dir.path().join("m-u8u8-embed.onnx")).unwrap();
        assert!(
            default_file(dir.path())
                .unwrap()
                .ends_with("m-int8-embed.onnx")
        );
        std::fs::remove_file(dir.path().join("m-int8-embed.onnx")).unwrap();
        assert!(default_file(dir.path()).unwrap().ends_with("m-int8.onnx"));
        let empty = tempfile::tempdir().unwrap();
        assert_eq!(
            default_file(empty.path()).unwrap_err().to_string(),
            "no .onnx file in the folder"
        );
    }
}
