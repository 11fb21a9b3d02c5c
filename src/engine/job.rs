//! [`Job`]: the buffers of one camera's request, lent by its engine. The camera
//! writes its preprocessed frame straight into the job's input tensor; a run of the
//! job alone reads that tensor and writes the job's own preallocated output, which
//! the camera then reads in place: no copy on either side. A run of several jobs
//! (a batch) copies each input into the batch's tensor and each item's output rows
//! back into its job. [`JobPool`] keeps at most a few batches' worth of jobs,
//! however many cameras there are.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use ort::session::{HasSelectedOutputs, OutputSelector, RunOptions};
use ort::value::{DynValue, Tensor};

/// Input/output geometry of a batched model, read from its session.
#[derive(Debug)]
pub(super) struct Shapes {
    pub(super) model: String,
    pub(super) input: String,
    pub(super) output: String,
    /// Item shape of the input, without the batch dimension.
    pub(super) item_in: Vec<usize>,
    pub(super) item_in_len: usize,
    /// Item shape of the output when fully known (for preallocation).
    pub(super) item_out: Option<Vec<usize>>,
    pub(super) max_batch: usize,
    pub(super) max_wait: Duration,
}

/// One camera's request buffers (see the module doc).
pub struct Job {
    /// `[1, item...]`, written by the camera.
    pub(super) input: Tensor<f32>,
    /// Options of a run of this job alone: only the wanted output, into this job's
    /// own preallocated tensor when its shape is known.
    pub(super) options: RunOptions<HasSelectedOutputs>,
    /// The output of the job's last run alone (the preallocated tensor itself).
    pub(super) output: Option<DynValue>,
    /// The job's rows of the last batch it ran in.
    pub(super) rows: Vec<f32>,
    /// Whether the last run was a batch (the output is in `rows`).
    pub(super) batched: bool,
}

impl Job {
    pub(super) fn new(shape: &Shapes) -> ort::Result<Self> {
        let mut dims = vec![1];
        dims.extend_from_slice(&shape.item_in);
        let input = Tensor::from_array((dims, vec![0f32; shape.item_in_len]))?;
        let mut selector = OutputSelector::no_default().with(shape.output.clone());
        if let Some(item) = &shape.item_out {
            let mut dims = vec![1];
            dims.extend_from_slice(item);
            let len = item.iter().product();
            selector = selector.preallocate(
                shape.output.clone(),
                Tensor::from_array((dims, vec![0f32; len]))?,
            );
        }
        Ok(Self {
            input,
            options: RunOptions::new()?.with_outputs(selector),
            output: None,
            rows: Vec::new(),
            batched: false,
        })
    }

    /// The input item, to be written by the camera.
    pub fn input_mut(&mut self) -> &mut [f32] {
        self.input.extract_tensor_mut().1
    }

    /// The input item.
    pub fn input(&self) -> &[f32] {
        self.input.extract_tensor().1
    }

    /// The output item of the last run (empty before the first).
    pub fn output(&self) -> &[f32] {
        if self.batched {
            return &self.rows;
        }
        self.output
            .as_ref()
            .and_then(|v| v.try_extract_tensor::<f32>().ok())
            .map_or(&[], |(_, data)| data)
    }
}

/// Jobs lent to cameras: at most `limit` exist.
pub(super) struct JobPool {
    tx: Sender<Job>,
    rx: Receiver<Job>,
    made: AtomicUsize,
    limit: usize,
}

impl JobPool {
    pub(super) fn new(limit: usize) -> Self {
        let (tx, rx) = crossbeam_channel::bounded(limit);
        Self {
            tx,
            rx,
            made: AtomicUsize::new(0),
            limit,
        }
    }

    /// An idle job; a new one while fewer than `limit` exist, else waits for one.
    pub(super) fn take(&self, shape: &Shapes) -> ort::Result<Job> {
        if let Ok(job) = self.rx.try_recv() {
            return Ok(job);
        }
        if self
            .made
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < self.limit).then_some(n + 1)
            })
            .is_ok()
        {
            return Job::new(shape).inspect_err(|_| {
                self.made.fetch_sub(1, Ordering::AcqRel);
            });
        }
        match self.rx.recv() {
            Ok(job) => Ok(job),
            Err(_) => Job::new(shape),
        }
    }

    /// Returns a job; one lost on the way (an engine that stopped) may be made again.
    pub(super) fn give_back(&self, job: Job) {
        let _ = self.tx.try_send(job);
    }

    /// A job that will not come back (its request was lost).
    pub(super) fn lost(&self) {
        self.made.fetch_sub(1, Ordering::AcqRel);
    }
}
