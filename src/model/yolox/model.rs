//! [`Yolox`]: loading the detector (its input and output shapes checked against the
//! YOLOX contract and its labels) and detecting the objects of a frame on its engine
//! thread.

use std::cell::Cell;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use super::decode::{self, nms};
use super::error::YoloxError;
use super::preprocess::Letterbox;
use crate::engine::{self, BatchClient, BatchSpec, Batcher, EngineConfig, Provider, SharedSession};
use crate::kit::Frame;
use crate::model::{Detection, ModelError, StepTimes, YoloxConfig, single_file};

/// The detector's contract; its session is held by the caller.
pub struct Yolox {
    name: String,
    labels: Vec<Arc<str>>,
    /// Model input width and height.
    size: (u32, u32),
    output: String,
    /// (grid x, grid y, stride) for every output row.
    grid: Vec<(f32, f32, f32)>,
    score_threshold: f32,
    nms_iou: f32,
    /// Most frames one run takes (1 when the session's batch is fixed).
    max_batch: usize,
    max_wait: std::time::Duration,
}

/// Per-camera buffers, reused frame after frame.
#[derive(Default)]
pub struct YoloxScratch {
    letterbox: Letterbox,
    candidates: Vec<Detection>,
    /// How long the last call's steps took.
    pub stages: StepTimes,
}

impl Yolox {
    /// Opens the model and checks its input/output shapes against the YOLOX contract.
    /// An export with a fixed batch of 1 that will run on the CPU with `max_batch`
    /// over 1 is opened with its batch dimension freed
    /// ([`engine::free_batch`]); if that cannot be done, the file runs as it is
    /// (one line says why).
    pub fn load(
        name: &str,
        cfg: &YoloxConfig,
        env: &ort::environment::Environment,
        engine_cfg: &EngineConfig,
    ) -> Result<(Self, SharedSession), ModelError> {
        let file = match &cfg.file {
            Some(f) => f.clone(),
            None => single_file(name, &cfg.dir, "onnx")?,
        };
        let labels_file = match &cfg.labels {
            Some(f) => f.clone(),
            None => single_file(name, &cfg.dir, "txt")?,
        };
        let labels = read_labels(name, &labels_file)?;
        let on_cpu = engine::first_available(&cfg.providers) == Some(Provider::Cpu);
        // One frame a run unless asked: batching YOLOX-nano on the CPU measured +12 %
        // frames per CPU-second for busy cameras but +80 MB with 16 cameras at 1 Hz,
        // which it made no cheaper (`cargo bench --bench pipeline`, batch, cameras).
        let max_batch = cfg.max_batch.unwrap_or(1);
        let session = match (on_cpu && max_batch > 1)
            .then(|| freed(name, &file))
            .flatten()
        {
            Some(graph) => {
                engine::open_bytes(env, name, &file, &graph, &cfg.providers, cfg.threads)?
            }
            None => engine::open(env, name, &file, &cfg.providers, cfg.threads)?,
        };
        let bad = |e: YoloxError| ModelError::load(name, &file, e);
        let (size, output, rows, cols) = {
            let s = session.lock();
            let [inp] = s.inputs() else {
                return Err(bad(YoloxError::Inputs(s.inputs().len())));
            };
            let [out] = s.outputs() else {
                return Err(bad(YoloxError::Outputs(s.outputs().len())));
            };
            let dims = inp
                .dtype()
                .tensor_shape()
                .map(|d| d.to_vec())
                .unwrap_or_default();
            let [_, 3, h, w] = dims[..] else {
                return Err(bad(YoloxError::InputShape {
                    name: inp.name().into(),
                    dims,
                }));
            };
            let odims = out
                .dtype()
                .tensor_shape()
                .map(|d| d.to_vec())
                .unwrap_or_default();
            let [_, rows, cols] = odims[..] else {
                return Err(bad(YoloxError::OutputShape {
                    name: out.name().into(),
                    dims: odims,
                }));
            };
            ((w as u32, h as u32), out.name().to_string(), rows, cols)
        };
        if size.0 == 0 || size.1 == 0 || size.0 % 32 != 0 || size.1 % 32 != 0 {
            return Err(bad(YoloxError::InputSize {
                width: size.0,
                height: size.1,
            }));
        }
        if cols != 5 + labels.len() as i64 {
            return Err(bad(YoloxError::Columns {
                cols,
                labels_file,
                labels: labels.len(),
            }));
        }
        let grid = decode::grid(size.0, size.1);
        if rows != grid.len() as i64 {
            return Err(bad(YoloxError::Rows {
                rows,
                expected: grid.len(),
                width: size.0,
                height: size.1,
            }));
        }
        let model = Self {
            name: name.into(),
            labels,
            size,
            output,
            grid,
            score_threshold: cfg.score_threshold,
            nms_iou: cfg.nms_iou,
            max_batch,
            max_wait: engine_cfg.max_wait,
        };
        Ok((model, session))
    }

    pub fn labels(&self) -> &[Arc<str>] {
        &self.labels
    }

    /// The engine thread that runs this model's session for every camera.
    pub fn engine(&self, session: SharedSession) -> Result<Batcher, ModelError> {
        Ok(Batcher::spawn(
            session,
            BatchSpec {
                model: self.name.clone(),
                output: Some(self.output.clone()),
                max_batch: self.max_batch,
                max_wait: self.max_wait,
            },
        )?)
    }

    /// Detects objects in the whole frame; `out` is cleared first.
    pub fn detect(
        &self,
        engine: &mut BatchClient,
        frame: &Frame,
        scratch: &mut YoloxScratch,
        out: &mut Vec<Detection>,
    ) -> Result<(), ModelError> {
        out.clear();
        let t0 = Instant::now();
        // Both closures exist at once: what the first learns goes through cells.
        let (t1, t2, scale) = (Cell::new(t0), Cell::new(t0), Cell::new(1.0f32));
        let YoloxScratch {
            letterbox,
            candidates,
            stages,
        } = scratch;
        let decoded = engine.infer(
            |input| {
                let _s = tracing::trace_span!("yolox.pre", model = %self.name).entered();
                scale.set(letterbox.fill(frame, self.size, input)?);
                t1.set(Instant::now());
                Ok(())
            },
            |rows| {
                t2.set(Instant::now());
                let _s = tracing::trace_span!("yolox.post", model = %self.name).entered();
                if rows.len() != self.grid.len() * (5 + self.labels.len()) {
                    return Err(self.run_error(YoloxError::OutputValues {
                        name: self.output.clone(),
                        values: rows.len(),
                        rows: self.grid.len(),
                        cols: 5 + self.labels.len(),
                    }));
                }
                decode::candidates(
                    rows,
                    &self.grid,
                    &self.labels,
                    self.score_threshold,
                    scale.get(),
                    (frame.width, frame.height),
                    candidates,
                );
                nms(candidates, self.nms_iou, out);
                Ok(())
            },
        )?;
        decoded?;
        *stages = StepTimes {
            preprocess: t1.get() - t0,
            infer: t2.get() - t1.get(),
            postprocess: t2.get().elapsed(),
        };
        Ok(())
    }

    fn run_error(&self, e: impl std::error::Error + Send + Sync + 'static) -> ModelError {
        ModelError::run(&self.name, e)
    }
}

/// `file` with its batch dimension freed; `None` (one line says why) when it is
/// already free or cannot be freed, and the file is to run as it is.
fn freed(model: &str, file: &Path) -> Option<Vec<u8>> {
    let bytes = match std::fs::read(file) {
        Ok(b) => b,
        Err(e) => {
            tracing::warn!(model = %model, "model {model}: {}: {e}", file.display());
            return None;
        }
    };
    match engine::free_batch(&bytes) {
        Ok(graph) => {
            tracing::info!(
                model = %model,
                "model {model}: {}: batch dimension freed (frames of several cameras run together)",
                file.display()
            );
            Some(graph)
        }
        Err(engine::FreeBatchError::AlreadyFree) => None,
        Err(e) => {
            tracing::warn!(
                model = %model,
                "model {model}: {}: runs one frame at a time: {e}",
                file.display()
            );
            None
        }
    }
}

fn read_labels(model: &str, file: &Path) -> Result<Vec<Arc<str>>, ModelError> {
    let text = std::fs::read_to_string(file).map_err(|e| ModelError::load(model, file, e))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(Arc::from)
        .collect())
}
