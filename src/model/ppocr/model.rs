//! [`Ppocr`]: loading the three models and reading the text lines of a frame
//! (detection, crops, the angle classifier, recognition six lines at a time).

use std::path::Path;
use std::time::{Duration, Instant};

use ort::value::TensorRef;

use super::config::PpocrConfig;
use super::crop::{self, Crop};
use super::detect::{self, DetParams};
use super::error::PpocrError;
use super::recognize::{self, Charset};
use super::{classify, geometry};
use crate::engine::{self, LinearResize, Rect, RgbView, SharedSession};
use crate::kit::Frame;
use crate::model::{Cancel, ModelError, RunError, StepTimes};

/// The sessions of the three models; `cls` is `None` when the classifier is off.
#[derive(Clone)]
pub struct PpocrSessions {
    pub det: SharedSession,
    pub rec: SharedSession,
    pub cls: Option<SharedSession>,
}

/// One line of text; `bbox` is normalised `[x0, y0, x1, y1]` in the frame.
#[derive(Debug, Clone, PartialEq)]
pub struct TextLine {
    pub text: String,
    pub score: f32,
    pub bbox: [f32; 4],
}

/// How long each model ran in one read.
#[derive(Debug, Clone, Copy, Default)]
pub struct RunTimes {
    pub det: Duration,
    pub cls: Duration,
    pub rec: Duration,
}

/// The lines read off a frame, in reading order.
#[derive(Debug, Clone, Default)]
pub struct Reading {
    pub lines: Vec<TextLine>,
    pub stages: StepTimes,
    /// The `infer` stage, model by model.
    pub runs: RunTimes,
}

impl Reading {
    /// The lines joined with `'\n'`.
    pub fn text(&self) -> String {
        let lines: Vec<&str> = self.lines.iter().map(|l| l.text.as_str()).collect();
        lines.join("\n")
    }
}

/// A model's input and output names.
#[derive(Debug, Clone)]
struct Io {
    input: String,
    output: String,
}

/// The reader's contract and parameters; sessions are held by the caller.
pub struct Ppocr {
    name: String,
    det_io: Io,
    rec_io: Io,
    cls_io: Option<Io>,
    charset: Charset,
    params: DetParams,
    max_side: u32,
    min_score: f32,
}

impl Ppocr {
    /// Opens the detector, the recogniser and (unless disabled) the classifier, and
    /// reads the recogniser's characters.
    pub fn load(
        name: &str,
        cfg: &PpocrConfig,
        env: &ort::environment::Environment,
    ) -> Result<(Self, PpocrSessions), ModelError> {
        let open = |file: &Path| engine::open(env, name, file, &cfg.providers, cfg.threads);
        let det = open(&cfg.det)?;
        let rec = open(&cfg.rec)?;
        let cls = cfg.cls.as_deref().map(open).transpose()?;
        let err = |file: &Path, e: PpocrError| ModelError::load(name, file, e);
        let det_io = io(&det).ok_or_else(|| err(&cfg.det, PpocrError::Io))?;
        let rec_io = io(&rec).ok_or_else(|| err(&cfg.rec, PpocrError::Io))?;
        let cls_io = match (&cls, &cfg.cls) {
            (Some(s), Some(f)) => Some(io(s).ok_or_else(|| err(f, PpocrError::Io))?),
            _ => None,
        };
        let charset = match std::fs::read_to_string(&cfg.keys) {
            Ok(text) => Charset::from_lines(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let s = rec.lock();
                let keys = s.metadata().ok().and_then(|m| m.custom("character"));
                let keys = keys.ok_or_else(|| err(&cfg.keys, PpocrError::NoKeys))?;
                Charset::from_lines(&keys)
            }
            Err(e) => return Err(ModelError::load(name, &cfg.keys, e)),
        };
        let classes = {
            let s = rec.lock();
            s.outputs()
                .first()
                .and_then(|o| o.dtype().tensor_shape().and_then(|d| d.last().copied()))
                .unwrap_or(-1)
        };
        if classes > 0 && classes as usize != charset.len() {
            return Err(err(
                &cfg.keys,
                PpocrError::Classes {
                    characters: charset.len() - 2,
                    total: charset.len(),
                    classes,
                },
            ));
        }
        let model = Self {
            name: name.into(),
            det_io,
            rec_io,
            cls_io,
            charset,
            params: DetParams {
                threshold: cfg.det_threshold,
                box_threshold: cfg.box_threshold,
                unclip_ratio: cfg.unclip_ratio,
            },
            max_side: cfg.max_side.max(32),
            min_score: cfg.min_score,
        };
        Ok((model, PpocrSessions { det, rec, cls }))
    }

    /// Reads the text lines of `region` of `frame` (normalised `[x0, y0, x1, y1]`;
    /// the whole frame for `None`). Lines scoring below `min_score` are dropped.
    pub fn read(
        &self,
        s: &PpocrSessions,
        frame: &Frame,
        region: Option<[f32; 4]>,
    ) -> Result<Reading, ModelError> {
        self.read_with(s, frame, region, Cancel::never())
    }

    /// [`Ppocr::read`], checking `cancel` between its runs (up to 1000 lines are
    /// recognised six at a time) and terminating a run in progress when it is raised.
    pub fn read_with(
        &self,
        s: &PpocrSessions,
        frame: &Frame,
        region: Option<[f32; 4]>,
        cancel: &Cancel,
    ) -> Result<Reading, ModelError> {
        let t0 = Instant::now();
        let mut reading = Reading::default();
        let (mut pre, mut post) = (Duration::ZERO, Duration::ZERO);
        let full = RgbView::of(frame)?;
        let (x0, y0, view) = region_view(frame, &full, region)?;
        let mut resize = LinearResize::default();
        let mut tensor = Vec::new();

        // Detection.
        let size = {
            let _s = tracing::trace_span!("ppocr.pre", model = %self.name, step = "det").entered();
            let size = detect::input_size(view.width(), view.height(), self.max_side);
            detect::fill(&view, size, &mut resize, &mut tensor)?;
            size
        };
        pre += t0.elapsed();
        let (w, h) = (size.0 as usize, size.1 as usize);
        let t = Instant::now();
        let (_, prob) = self.run(&s.det, &self.det_io, [1, 3, h, w], &tensor, "det", cancel)?;
        reading.runs.det = t.elapsed();
        let t = Instant::now();
        let quads = {
            let _s = tracing::trace_span!("ppocr.post", model = %self.name, step = "det").entered();
            if prob.len() < w * h {
                return Err(self.run_error(PpocrError::DetValues {
                    values: prob.len(),
                    expected: w * h,
                }));
            }
            detect::boxes(&prob, (w, h), (view.width(), view.height()), &self.params)
        };
        post += t.elapsed();

        // Crops, then the angle classifier.
        let t = Instant::now();
        let mut crops: Vec<(geometry::Quad, Crop)> = {
            let _s = tracing::trace_span!("ppocr.pre", model = %self.name, step = "crop").entered();
            quads
                .iter()
                .filter_map(|q| Crop::warp(&view, q).map(|c| (*q, c)))
                .collect()
        };
        pre += t.elapsed();
        if let (Some(cls), Some(cls_io)) = (&s.cls, &self.cls_io)
            && !crops.is_empty()
        {
            let t = Instant::now();
            let images: Vec<Crop> = crops.iter().map(|(_, c)| c.clone()).collect();
            {
                let _s =
                    tracing::trace_span!("ppocr.pre", model = %self.name, step = "cls").entered();
                classify::fill(&images, &mut resize, &mut tensor)?;
            }
            pre += t.elapsed();
            let t = Instant::now();
            let shape = [
                images.len(),
                3,
                crop::LINE_HEIGHT as usize,
                classify::WIDTH as usize,
            ];
            let (_, out) = self.run(cls, cls_io, shape, &tensor, "cls", cancel)?;
            reading.runs.cls = t.elapsed();
            for ((_, c), flip) in crops.iter_mut().zip(classify::flips(&out, images.len())) {
                if flip {
                    c.rot180();
                }
            }
        }

        // Recognition, six lines at a time in order of aspect ratio.
        let images: Vec<Crop> = crops.iter().map(|(_, c)| c.clone()).collect();
        let order = recognize::order(&images);
        let mut texts: Vec<(String, f32)> = vec![(String::new(), 0.0); images.len()];
        for batch in order.chunks(recognize::BATCH) {
            cancel.check(&self.name)?;
            let t = Instant::now();
            let items: Vec<&Crop> = batch.iter().map(|&i| &images[i]).collect();
            let width = recognize::batch_width(&items);
            {
                let _s =
                    tracing::trace_span!("ppocr.pre", model = %self.name, step = "rec").entered();
                recognize::fill(&items, width, &mut resize, &mut tensor)?;
            }
            pre += t.elapsed();
            let t = Instant::now();
            let shape = [items.len(), 3, crop::LINE_HEIGHT as usize, width as usize];
            let (oshape, out) = self.run(&s.rec, &self.rec_io, shape, &tensor, "rec", cancel)?;
            reading.runs.rec += t.elapsed();
            let t = Instant::now();
            let _s = tracing::trace_span!("ppocr.post", model = %self.name, step = "rec").entered();
            let classes = self.charset.len();
            let [n, steps, c] = oshape[..] else {
                return Err(self.run_error(PpocrError::RecShape(oshape)));
            };
            if n != items.len() || c != classes || out.len() < n * steps * c {
                return Err(self.run_error(PpocrError::RecClasses {
                    shape: oshape,
                    lines: items.len(),
                    classes,
                }));
            }
            for (&i, probs) in batch.iter().zip(out.chunks_exact(steps * classes)) {
                texts[i] = self.charset.decode(probs, classes);
            }
            post += t.elapsed();
        }

        let t = Instant::now();
        let (fw, fh) = (frame.width as f32, frame.height as f32);
        for ((quad, _), (text, score)) in crops.iter().zip(texts) {
            if score < self.min_score {
                continue;
            }
            let xs = quad.map(|p| p[0] as f32 + x0 as f32);
            let ys = quad.map(|p| p[1] as f32 + y0 as f32);
            let min = |v: [f32; 4]| v.iter().copied().fold(f32::MAX, f32::min);
            let max = |v: [f32; 4]| v.iter().copied().fold(f32::MIN, f32::max);
            reading.lines.push(TextLine {
                text,
                score,
                bbox: [min(xs) / fw, min(ys) / fh, max(xs) / fw, max(ys) / fh],
            });
        }
        post += t.elapsed();
        let infer = reading.runs.det + reading.runs.cls + reading.runs.rec;
        reading.stages = StepTimes {
            preprocess: pre,
            infer,
            postprocess: post,
        };
        tracing::trace!(model = %self.name, lines = reading.lines.len(), ?infer, "ppocr read");
        Ok(reading)
    }

    /// Runs one model on a `[n, 3, h, w]` input; its first output's shape and values.
    fn run(
        &self,
        session: &SharedSession,
        io: &Io,
        shape: [usize; 4],
        data: &[f32],
        step: &'static str,
        cancel: &Cancel,
    ) -> Result<(Vec<usize>, Vec<f32>), ModelError> {
        let _s = tracing::trace_span!("ppocr.infer", model = %self.name, step).entered();
        let input = TensorRef::from_array_view((shape, data)).map_err(|e| self.run_error(e))?;
        let mut session = session.lock();
        let outputs = cancel
            .run(&mut session, ort::inputs![io.input.as_str() => input])
            .map_err(|e| match e {
                RunError::Cancelled => ModelError::of_run(&self.name, e),
                RunError::Ort(source) => self.run_error(PpocrError::Step { step, source }),
            })?;
        let value = outputs.get(io.output.as_str()).ok_or_else(|| {
            self.run_error(PpocrError::NoOutput {
                step,
                output: io.output.clone(),
            })
        })?;
        let (shape, values) = value
            .try_extract_tensor::<f32>()
            .map_err(|source| self.run_error(PpocrError::Step { step, source }))?;
        Ok((
            shape.iter().map(|&d| d.max(0) as usize).collect(),
            values.to_vec(),
        ))
    }

    fn run_error(&self, e: impl std::error::Error + Send + Sync + 'static) -> ModelError {
        ModelError::run(&self.name, e)
    }
}

/// The single input's and output's names.
fn io(session: &SharedSession) -> Option<Io> {
    let s = session.lock();
    let ([input], [output]) = (s.inputs(), s.outputs()) else {
        return None;
    };
    Some(Io {
        input: input.name().to_string(),
        output: output.name().to_string(),
    })
}

/// The pixel-aligned view of `region` (whole pixels covering it) and its top-left.
fn region_view<'a>(
    frame: &'a Frame,
    full: &RgbView<'a>,
    region: Option<[f32; 4]>,
) -> Result<(u32, u32, RgbView<'a>), ModelError> {
    let (w, h) = (full.width(), full.height());
    let Some(_) = region else {
        return Ok((0, 0, RgbView::new(frame.data(), w, h, frame.stride)?));
    };
    let r = Rect::of_region(region, w, h);
    let x0 = (r.x.floor().max(0.0) as u32).min(w.saturating_sub(1));
    let y0 = (r.y.floor().max(0.0) as u32).min(h.saturating_sub(1));
    let x1 = ((r.x + r.w).ceil() as u32).clamp(x0 + 1, w);
    let y1 = ((r.y + r.h).ceil() as u32).clamp(y0 + 1, h);
    let start = y0 as usize * frame.stride + x0 as usize * 3;
    let data = frame.data().get(start..).unwrap_or_default();
    Ok((x0, y0, RgbView::new(data, x1 - x0, y1 - y0, frame.stride)?))
}
