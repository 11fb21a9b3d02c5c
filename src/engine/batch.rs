//! Batching across cameras. Each batched model has one engine thread that owns the
//! runs of its session: cameras submit preprocessed input tensors, the thread
//! gathers up to `max_batch` of them (waiting at most `max_wait` for more, and not
//! at all when every camera is already waiting), runs them as one batch and hands
//! each camera its rows of the output. When more requests wait than one batch takes,
//! the camera served longest ago goes first (stalest-first); cameras waiting for an
//! input buffer (below) are woken in arrival order. A camera has at most one request
//! in flight, and what its frames do meanwhile is its queue's explicit policy
//! (drop-oldest for live sources, counted). Models whose batch dimension is fixed run
//! one frame at a time.
//!
//! A camera writes its preprocessed frame straight into the input tensor of a
//! [`Job`] borrowed from the engine's small pool (a few batches' worth, however many
//! cameras there are). A run of one frame (always, for a fixed batch dimension) uses
//! the job's own tensors: the input as written, the output preallocated in the job
//! and read there in place, so nothing is copied. A batch of several copies each
//! input into one reused tensor and each item's rows back into its job. Memory grows
//! with the batch size, not with the number of cameras, and the steady state of a
//! fixed-batch model allocates nothing.
//!
//! ```no_run
//! use std::time::Duration;
//! use ocellus::engine::{self, Batcher, BatchSpec};
//! let env = engine::environment(&Default::default()).unwrap();
//! let session = engine::open(env, "coco", "yolox.onnx".as_ref(), &[engine::Provider::Cpu], None).unwrap();
//! let batcher = Batcher::spawn(session, BatchSpec { model: "coco".into(), output: None, max_batch: 4, max_wait: Duration::from_millis(5) }).unwrap();
//! let mut client = batcher.client();
//! let values = client
//!     .infer(|input| Ok(input.fill(0.5)), |output| output.len())
//!     .unwrap();
//! println!("{values} output values");
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions};
use ort::value::TensorRef;

use super::job::{Job, JobPool, Shapes};
use super::{BatchError, EngineError, RunError, SharedSession};
use crate::kit::metrics::ModelMetrics;

/// How a model is batched.
#[derive(Debug, Clone)]
pub struct BatchSpec {
    /// Model name (messages, thread name).
    pub model: String,
    /// The output to return (default: the first); the others are not computed.
    pub output: Option<String>,
    pub max_batch: usize,
    pub max_wait: Duration,
}

/// The longest dropping a [`Batcher`] waits for its warm-up run.
const WARM_UP_WAIT: Duration = Duration::from_secs(10);

/// What a camera's request gets back: its job, and whether its run succeeded.
type Reply = (Job, Result<(), Arc<BatchError>>);

struct Request {
    job: Job,
    /// When this camera was last served (stalest-first order).
    served: Instant,
    queued: Instant,
    reply: Sender<Reply>,
}

/// The engine thread of one model; dropping every handle and client stops it.
pub struct Batcher {
    tx: Sender<Request>,
    clients: Arc<AtomicUsize>,
    shape: Arc<Shapes>,
    pool: Arc<JobPool>,
    pub metrics: Arc<ModelMetrics>,
    /// Disconnected once the engine thread's warm-up run is over (see `Drop`).
    warmed: Receiver<()>,
}

/// A camera's connection to a batcher (one request in flight at a time).
pub struct BatchClient {
    tx: Sender<Request>,
    pool: Arc<JobPool>,
    reply_tx: Sender<Reply>,
    reply_rx: Receiver<Reply>,
    served: Instant,
    clients: Arc<AtomicUsize>,
    model: Arc<Shapes>,
}

impl Batcher {
    /// Starts the engine thread for `session`, which must have one input whose
    /// non-batch dimensions are fixed and whose first output is the result.
    pub fn spawn(session: SharedSession, spec: BatchSpec) -> Result<Self, EngineError> {
        let bad = |source: RunError| EngineError::Run {
            model: spec.model.clone(),
            source,
        };
        let shapes = {
            let s = session.lock();
            let output = match &spec.output {
                Some(name) => s.outputs().iter().find(|o| o.name() == name),
                None => s.outputs().first(),
            };
            let (Some(input), Some(output)) = (s.inputs().first(), output) else {
                return Err(bad(RunError::NoInputOrOutput {
                    named: spec.output.clone(),
                }));
            };
            let dims = input
                .dtype()
                .tensor_shape()
                .map(|d| d.to_vec())
                .unwrap_or_default();
            let Some((&batch, item)) = dims.split_first() else {
                return Err(bad(RunError::NoBatchDimension {
                    input: input.name().to_string(),
                }));
            };
            if item.iter().any(|&d| d <= 0) {
                return Err(bad(RunError::VaryingShape {
                    input: input.name().to_string(),
                    dims,
                }));
            }
            let out_dims = output
                .dtype()
                .tensor_shape()
                .map(|d| d.to_vec())
                .unwrap_or_default();
            let item_out = out_dims
                .split_first()
                .filter(|(_, rest)| rest.iter().all(|&d| d > 0))
                .map(|(_, rest)| rest.iter().map(|&d| d as usize).collect());
            let item_in: Vec<usize> = item.iter().map(|&d| d as usize).collect();
            Shapes {
                model: spec.model.clone(),
                input: input.name().to_string(),
                output: output.name().to_string(),
                item_in_len: item_in.iter().product(),
                item_in,
                item_out,
                // A fixed batch dimension (e.g. 1) runs one frame at a time.
                max_batch: if batch > 0 { 1 } else { spec.max_batch.max(1) },
                max_wait: spec.max_wait,
            }
        };
        let shape = Arc::new(shapes);
        // Each camera has at most one request in flight: this never fills up in
        // practice, and if it did the camera would wait (its queue policy applies).
        let (tx, rx) = crossbeam_channel::bounded(1024);
        let clients = Arc::new(AtomicUsize::new(0));
        let metrics = Arc::new(ModelMetrics::default());
        // One batch running, one gathering, plus slack.
        let pool = Arc::new(JobPool::new(2 * shape.max_batch + 2));
        let worker = Worker {
            session,
            shape: shape.clone(),
            clients: clients.clone(),
            metrics: metrics.clone(),
            batch_input: Vec::new(),
            batch_options: None,
        };
        let (warming, warmed) = crossbeam_channel::bounded(0);
        std::thread::Builder::new()
            .name(format!("engine-{}", spec.model))
            .spawn(move || worker.serve(&rx, warming))
            .map_err(|e| bad(RunError::Thread(e)))?;
        Ok(Self {
            tx,
            clients,
            shape,
            pool,
            metrics,
            warmed,
        })
    }

    /// A new camera connection.
    pub fn client(&self) -> BatchClient {
        self.clients.fetch_add(1, Ordering::Relaxed);
        let (reply_tx, reply_rx) = crossbeam_channel::bounded(1);
        BatchClient {
            tx: self.tx.clone(),
            pool: self.pool.clone(),
            reply_tx,
            reply_rx,
            served: Instant::now(),
            clients: self.clients.clone(),
            model: self.shape.clone(),
        }
    }

    /// Values of one input item (e.g. 3 * 416 * 416).
    pub fn input_len(&self) -> usize {
        self.shape.item_in_len
    }

    /// Shape of one input item, without the batch dimension.
    pub fn input_shape(&self) -> &[usize] {
        &self.shape.item_in
    }

    /// The most frames one run takes (1 for a fixed batch dimension).
    pub fn max_batch(&self) -> usize {
        self.shape.max_batch
    }
}

impl BatchClient {
    /// Runs one item: `fill` writes the input straight into the input tensor of a
    /// job lent by the engine (it waits for one when all are in use), then `read`
    /// gets the output where the run wrote it. Blocks until done.
    pub fn infer<T>(
        &mut self,
        fill: impl FnOnce(&mut [f32]) -> Result<(), EngineError>,
        read: impl FnOnce(&[f32]) -> T,
    ) -> Result<T, EngineError> {
        let mut job = self
            .pool
            .take(&self.model)
            .map_err(|e| self.fail(RunError::Buffers(e)))?;
        if let Err(e) = fill(job.input_mut()) {
            self.pool.give_back(job);
            return Err(e);
        }
        let (job, result) = self.submit(job);
        let result = match (&job, result) {
            (Some(job), Ok(())) => Ok(read(job.output())),
            (None, Ok(())) => Err(self.fail(RunError::Stopped)),
            (_, Err(e)) => Err(e),
        };
        match job {
            Some(job) => self.pool.give_back(job),
            None => self.pool.lost(),
        }
        result
    }

    /// Runs `input` (one item, copied into a lent job) and returns a copy of its
    /// output: for callers that hold their input elsewhere (tests, tools).
    pub fn run(&mut self, input: &[f32]) -> Result<Vec<f32>, EngineError> {
        let want = self.model.item_in_len;
        if input.len() != want {
            return Err(self.fail(RunError::InputLength {
                got: input.len(),
                input: self.model.input.clone(),
                want,
                shape: self.model.item_in.clone(),
            }));
        }
        self.infer(
            |buf| {
                buf.copy_from_slice(input);
                Ok(())
            },
            <[f32]>::to_vec,
        )
    }

    fn fail(&self, source: RunError) -> EngineError {
        EngineError::Run {
            model: self.model.model.clone(),
            source,
        }
    }

    /// Sends `job` to the engine thread and waits for it; the job comes back unless
    /// the engine has stopped.
    fn submit(&mut self, job: Job) -> (Option<Job>, Result<(), EngineError>) {
        let request = Request {
            job,
            served: self.served,
            queued: Instant::now(),
            reply: self.reply_tx.clone(),
        };
        if let Err(e) = self.tx.send(request) {
            return (Some(e.into_inner().job), Err(self.fail(RunError::Stopped)));
        }
        let Ok((back, result)) = self.reply_rx.recv() else {
            return (None, Err(self.fail(RunError::Stopped)));
        };
        self.served = Instant::now();
        (
            Some(back),
            result.map_err(|e| self.fail(RunError::Batch(e))),
        )
    }
}

impl Drop for Batcher {
    /// Waits (at most 10 s) for the warm-up run if it is still going: a
    /// process that exits (say, `ask` on a camera that failed at once) must not tear
    /// ONNX Runtime down under a run, which fails with an error of its own on the way
    /// out. The bound keeps a long TensorRT engine build from holding up a shutdown.
    fn drop(&mut self) {
        let _ = self.warmed.recv_timeout(WARM_UP_WAIT);
    }
}

impl Drop for BatchClient {
    fn drop(&mut self) {
        self.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

struct Worker {
    session: SharedSession,
    shape: Arc<Shapes>,
    clients: Arc<AtomicUsize>,
    metrics: Arc<ModelMetrics>,
    /// The inputs of a batch of several jobs, side by side (`max_batch` items once
    /// the first batch ran).
    batch_input: Vec<f32>,
    /// A batch's run options (only the wanted output).
    batch_options: Option<RunOptions<HasSelectedOutputs>>,
}

impl Worker {
    fn serve(mut self, rx: &Receiver<Request>, warming: Sender<()>) {
        self.warm_up();
        drop(warming);
        let mut pending: Vec<Request> = Vec::with_capacity(64);
        let mut batch: Vec<Request> = Vec::with_capacity(self.shape.max_batch);
        loop {
            if pending.is_empty() {
                match rx.recv() {
                    Ok(r) => pending.push(r),
                    Err(_) => return,
                }
            }
            self.gather(rx, &mut pending);
            // Stalest first: the cameras served longest ago (no allocation).
            pending.sort_unstable_by_key(|r| r.served);
            let n = pending.len().min(self.shape.max_batch);
            batch.extend(pending.drain(..n));
            let started = Instant::now();
            for r in &batch {
                self.metrics.wait.record(started - r.queued);
            }
            let result = self.run(&mut batch).map_err(Arc::new);
            self.metrics.run.record(started.elapsed());
            self.metrics.runs.inc();
            self.metrics.items.add(batch.len() as u64);
            if result.is_err() {
                self.metrics.failures.add(batch.len() as u64);
            }
            for r in batch.drain(..) {
                let _ = r.reply.send((r.job, result.clone()));
            }
        }
    }

    /// Takes whatever is waiting and, while the batch is not full and some camera is
    /// not yet waiting, waits up to `max_wait` after the first request for more.
    fn gather(&self, rx: &Receiver<Request>, pending: &mut Vec<Request>) {
        while let Ok(r) = rx.try_recv() {
            pending.push(r);
        }
        if self.shape.max_batch <= 1 {
            return;
        }
        let deadline = pending
            .iter()
            .map(|r| r.queued)
            .min()
            .unwrap_or_else(Instant::now)
            + self.shape.max_wait;
        while pending.len() < self.shape.max_batch
            && pending.len() < self.clients.load(Ordering::Relaxed)
        {
            match rx.recv_deadline(deadline) {
                Ok(r) => pending.push(r),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
            }
        }
    }

    fn run(&mut self, batch: &mut [Request]) -> Result<(), BatchError> {
        if let [one] = batch {
            return self.run_alone(&mut one.job);
        }
        let n = batch.len();
        let shape = self.shape.clone();
        let len = shape.item_in_len;
        self.batch_input.resize(shape.max_batch.max(n) * len, 0.0);
        for (i, r) in batch.iter().enumerate() {
            self.batch_input[i * len..(i + 1) * len].copy_from_slice(r.job.input());
        }
        let options = match self.batch_options.take() {
            Some(o) => o,
            None => RunOptions::new()?
                .with_outputs(OutputSelector::no_default().with(shape.output.clone())),
        };
        let options = &*self.batch_options.insert(options);
        let mut dims = Vec::with_capacity(1 + shape.item_in.len());
        dims.push(n);
        dims.extend_from_slice(&shape.item_in);
        let input = TensorRef::from_array_view((dims, &self.batch_input[..n * len]))?;
        let mut session = self.session.lock();
        let _span = tracing::trace_span!("engine.run", model = %shape.model, batch = n).entered();
        let outputs = session.run_with_options(ort::inputs![input], options)?;
        let out = match outputs.get(shape.output.as_str()) {
            Some(v) => v.try_extract_tensor::<f32>()?.1,
            None => &[],
        };
        let per_item = out.len() / n;
        if per_item == 0 || per_item * n != out.len() {
            return Err(BatchError::OutputLength {
                output: shape.output.clone(),
                values: out.len(),
                batch: n,
            });
        }
        for (i, r) in batch.iter_mut().enumerate() {
            r.job.rows.clear();
            r.job
                .rows
                .extend_from_slice(&out[i * per_item..(i + 1) * per_item]);
            r.job.batched = true;
        }
        Ok(())
    }

    /// One run on zeros before the first frame: the session's first run allocates
    /// and plans (and, on TensorRT, builds its engine), which should not delay a
    /// camera's first answer. A failure is only logged: real frames will say why.
    fn warm_up(&self) {
        let started = Instant::now();
        let result = Job::new(&self.shape)
            .map_err(BatchError::from)
            .and_then(|mut job| self.run_alone(&mut job));
        match result {
            Ok(()) => tracing::debug!(
                model = %self.shape.model,
                "model {}: warm-up run took {:.1} ms",
                self.shape.model,
                started.elapsed().as_secs_f64() * 1e3
            ),
            Err(e) => tracing::debug!(
                model = %self.shape.model,
                "model {}: warm-up run failed: {e}",
                self.shape.model
            ),
        }
    }

    /// Runs one job on its own tensors: the input as the camera wrote it, the output
    /// into the job's preallocated tensor (no copy).
    fn run_alone(&self, job: &mut Job) -> Result<(), BatchError> {
        let shape = &self.shape;
        let mut session = self.session.lock();
        let _span = tracing::trace_span!("engine.run", model = %shape.model, batch = 1).entered();
        let Job {
            input,
            options,
            output,
            batched,
            ..
        } = job;
        let value = session
            .run_with_options(ort::inputs![&*input], options)?
            .remove(shape.output.as_str());
        let values = match &value {
            Some(v) => v.try_extract_tensor::<f32>()?.1.len(),
            None => 0,
        };
        let want = shape.item_out.as_ref().map(|d| d.iter().product::<usize>());
        if values == 0 || want.is_some_and(|w| w != values) {
            return Err(BatchError::OutputLength {
                output: shape.output.clone(),
                values,
                batch: 1,
            });
        }
        *output = value;
        *batched = false;
        Ok(())
    }
}
