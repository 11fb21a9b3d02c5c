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
//! Input and output tensors are allocated once per batch size and reused. A camera
//! fills an input buffer borrowed from the engine's small pool (a few batches' worth,
//! however many cameras there are), so memory grows with the batch size, not with
//! the number of cameras, and the steady state allocates nothing.
//!
//! ```no_run
//! use std::time::Duration;
//! use ocellus::engine::{self, Batcher, BatchSpec, Job};
//! let env = engine::environment(&Default::default()).unwrap();
//! let session = engine::open(env, "coco", "yolox.onnx".as_ref(), &[engine::Provider::Cpu], None).unwrap();
//! let batcher = Batcher::spawn(session, BatchSpec { model: "coco".into(), output: None, max_batch: 4, max_wait: Duration::from_millis(5) }).unwrap();
//! let mut client = batcher.client();
//! let len = batcher.input_len();
//! let values = client
//!     .infer(|input| Ok(input.resize(len, 0.0)), |output| output.len())
//!     .unwrap();
//! println!("{values} output values");
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions};
use ort::value::Tensor;

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

/// One camera's request: its preprocessed input (one item, without the batch
/// dimension) and, after the run, its output (one item).
#[derive(Debug, Default)]
pub struct Job {
    pub input: Vec<f32>,
    pub output: Vec<f32>,
}

struct Request {
    job: Job,
    /// When this camera was last served (stalest-first order).
    served: Instant,
    queued: Instant,
    reply: Sender<(Job, Result<(), Arc<BatchError>>)>,
}

/// The engine thread of one model; dropping every handle and client stops it.
pub struct Batcher {
    tx: Sender<Request>,
    clients: Arc<AtomicUsize>,
    shape: Arc<Shapes>,
    pool: Arc<JobPool>,
    pub metrics: Arc<ModelMetrics>,
}

/// Input/output buffers lent to cameras: at most `limit` exist.
struct JobPool {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    made: AtomicUsize,
    limit: usize,
}

impl JobPool {
    fn new(limit: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(limit);
        Self {
            tx,
            rx,
            made: AtomicUsize::new(0),
            limit,
        }
    }

    /// An idle job; a new one while fewer than `limit` exist, else waits for one.
    fn take(&self) -> Job {
        if let Ok(job) = self.rx.try_recv() {
            return job;
        }
        if self
            .made
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .is_ok()
        {
            return Job::default();
        }
        self.rx.recv().unwrap_or_default()
    }

    fn give_back(&self, job: Job) {
        let _ = self.tx.try_send(job);
    }
}

/// A camera's connection to a batcher (one request in flight at a time).
pub struct BatchClient {
    tx: Sender<Request>,
    pool: Arc<JobPool>,
    reply_tx: Sender<(Job, Result<(), Arc<BatchError>>)>,
    reply_rx: Receiver<(Job, Result<(), Arc<BatchError>>)>,
    served: Instant,
    clients: Arc<AtomicUsize>,
    model: Arc<Shapes>,
}

/// Input/output geometry read from the session.
#[derive(Debug)]
struct Shapes {
    model: String,
    input: String,
    output: String,
    /// Item shape of the input, without the batch dimension.
    item_in: Vec<usize>,
    item_in_len: usize,
    /// Item shape of the output when fully known (for preallocation).
    item_out: Option<Vec<usize>>,
    max_batch: usize,
    max_wait: Duration,
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
        // Two batches in flight (one running, one gathering) plus slack.
        let pool = Arc::new(JobPool::new(2 * shape.max_batch + 2));
        let worker = Worker {
            session,
            shape: shape.clone(),
            clients: clients.clone(),
            metrics: metrics.clone(),
            tensors: Vec::new(),
        };
        std::thread::Builder::new()
            .name(format!("engine-{}", spec.model))
            .spawn(move || worker.serve(&rx))
            .map_err(|e| bad(RunError::Thread(e)))?;
        Ok(Self {
            tx,
            clients,
            shape,
            pool,
            metrics,
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
    /// Runs one item: `fill` writes the input into a buffer lent by the engine (it
    /// waits for one when all are in use), then `read` gets the output. Blocks until
    /// done.
    pub fn infer<T>(
        &mut self,
        fill: impl FnOnce(&mut Vec<f32>) -> Result<(), EngineError>,
        read: impl FnOnce(&[f32]) -> T,
    ) -> Result<T, EngineError> {
        let mut job = self.pool.take();
        let result = fill(&mut job.input)
            .and_then(|()| self.run(&mut job))
            .map(|()| read(&job.output));
        self.pool.give_back(job);
        result
    }

    /// Runs `job.input` (one item) and fills `job.output`. Blocks until done.
    pub fn run(&mut self, job: &mut Job) -> Result<(), EngineError> {
        let fail = |source: RunError| EngineError::Run {
            model: self.model.model.clone(),
            source,
        };
        if job.input.len() != self.model.item_in_len {
            return Err(fail(RunError::InputLength {
                got: job.input.len(),
                input: self.model.input.clone(),
                want: self.model.item_in_len,
                shape: self.model.item_in.clone(),
            }));
        }
        let request = Request {
            job: std::mem::take(job),
            served: self.served,
            queued: Instant::now(),
            reply: self.reply_tx.clone(),
        };
        if let Err(e) = self.tx.send(request) {
            *job = e.into_inner().job;
            return Err(fail(RunError::Stopped));
        }
        let (back, result) = self.reply_rx.recv().map_err(|_| fail(RunError::Stopped))?;
        *job = back;
        self.served = Instant::now();
        result.map_err(|e| fail(RunError::Batch(e)))
    }
}

impl Drop for BatchClient {
    fn drop(&mut self) {
        self.clients.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Reused input tensor and output-preallocating run options for one batch size.
struct Slot {
    input: Tensor<f32>,
    options: RunOptions<HasSelectedOutputs>,
}

struct Worker {
    session: SharedSession,
    shape: Arc<Shapes>,
    clients: Arc<AtomicUsize>,
    metrics: Arc<ModelMetrics>,
    /// `tensors[n - 1]`: the slot for batches of `n`.
    tensors: Vec<Option<Slot>>,
}

impl Worker {
    fn serve(mut self, rx: &Receiver<Request>) {
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
        let n = batch.len();
        let shape = self.shape.clone();
        let session = self.session.clone();
        let slot = self.slot(n)?;
        let (_, data) = slot.input.extract_tensor_mut();
        for (i, r) in batch.iter().enumerate() {
            data[i * shape.item_in_len..(i + 1) * shape.item_in_len].copy_from_slice(&r.job.input);
        }
        let mut session = session.lock();
        let _span = tracing::trace_span!("engine.run", model = %shape.model, batch = n).entered();
        let outputs = session.run_with_options(ort::inputs![&slot.input], &slot.options)?;
        let (_, out) = outputs[0].try_extract_tensor::<f32>()?;
        let per_item = out.len() / n.max(1);
        if per_item == 0 || per_item * n != out.len() {
            return Err(BatchError::OutputLength {
                output: shape.output.clone(),
                values: out.len(),
                batch: n,
            });
        }
        for (i, r) in batch.iter_mut().enumerate() {
            r.job.output.clear();
            r.job
                .output
                .extend_from_slice(&out[i * per_item..(i + 1) * per_item]);
        }
        Ok(())
    }

    /// The tensors for a batch of `n`, made on first use.
    fn slot(&mut self, n: usize) -> Result<&mut Slot, BatchError> {
        if self.tensors.len() < n {
            self.tensors.resize_with(n, || None);
        }
        let slot = match self.tensors[n - 1].take() {
            Some(slot) => slot,
            None => Slot::new(&self.shape, n)?,
        };
        Ok(self.tensors[n - 1].insert(slot))
    }
}

impl Slot {
    /// The input tensor and run options for batches of `n`.
    fn new(shape: &Shapes, n: usize) -> Result<Self, BatchError> {
        let mut dims = vec![n];
        dims.extend_from_slice(&shape.item_in);
        let input = Tensor::from_array((dims, vec![0f32; n * shape.item_in_len]))?;
        // Only the wanted output is computed, into a reused tensor when its shape is
        // known.
        let mut selector = OutputSelector::no_default().with(shape.output.clone());
        if let Some(item) = &shape.item_out {
            let mut dims = vec![n];
            dims.extend_from_slice(item);
            let len = dims.iter().product();
            let output = Tensor::from_array((dims, vec![0f32; len]))?;
            selector = selector.preallocate(shape.output.clone(), output);
        }
        let options = RunOptions::new()?.with_outputs(selector);
        Ok(Self { input, options })
    }
}
