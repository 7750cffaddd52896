//! GPU time of each piece of work on the stream (kernel launches, cuBLAS products,
//! copies), measured with CUDA events, for kernel profiles (the CLI's
//! `ARCHC_GPU_PROFILE=kernels`): where a step's device time goes.
//!
//! Contract: off unless [`set_enabled`]`(true)`. While on and no capture is in progress,
//! [`timed`] brackets one piece of queued work with two events recorded on its stream
//! and keeps them under a label; [`take`] waits for the recorded events, returns every
//! labelled time (in milliseconds, in queue order) and forgets them. During a stream
//! capture nothing is recorded (an event recorded there would become part of the graph).
//! Kernel launches are numbered from 0 after each [`take`] ([`next_launch`]).
//! Event errors are reported by [`take`]; the work itself runs either way.

use std::ptr::null_mut;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use crate::driver::{CUevent, CUstream};
use crate::{Cuda, CudaError};

static ENABLED: AtomicBool = AtomicBool::new(false);
static CAPTURING: AtomicBool = AtomicBool::new(false);
static LAUNCHES: AtomicUsize = AtomicUsize::new(0);

/// A bracketed piece of work: its label and its start and end events (as addresses).
struct Record {
    label: String,
    start: usize,
    end: usize,
}

static RECORDS: Mutex<Vec<Record>> = Mutex::new(Vec::new());
static ERROR: Mutex<Option<CudaError>> = Mutex::new(None);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// Turns timing on or off (for the whole process).
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

/// Whether timing is on.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Marks a stream capture in progress (no events are recorded meanwhile).
pub(crate) fn set_capturing(on: bool) {
    CAPTURING.store(on, Ordering::Relaxed);
}

/// The number of the next timed kernel launch since the last [`take`] (from 0).
pub(crate) fn next_launch() -> usize {
    LAUNCHES.fetch_add(1, Ordering::Relaxed)
}

/// Runs `work` (which queues something on `stream`), bracketed by two events when timing
/// is on; `label` names it in the report.
pub(crate) fn timed<T>(cuda: &Cuda, stream: CUstream, label: impl FnOnce() -> String, work: impl FnOnce() -> T) -> T {
    if !enabled() || CAPTURING.load(Ordering::Relaxed) {
        return work();
    }
    let start = record(cuda, stream);
    let out = work();
    let end = record(cuda, stream);
    match (start, end) {
        (Ok(start), Ok(end)) => lock(&RECORDS).push(Record { label: label(), start, end }),
        (start, end) => {
            for e in [start.err(), end.err()].into_iter().flatten() {
                lock(&ERROR).get_or_insert(e);
            }
        }
    }
    out
}

/// A new event recorded on `stream` (its address).
fn record(cuda: &Cuda, stream: CUstream) -> Result<usize, CudaError> {
    let mut event: CUevent = null_mut();
    // SAFETY: `event` is a valid out-pointer.
    cuda.check(unsafe { (cuda.driver.cu_event_create)(&mut event, 0) }, "cuEventCreate")?;
    // SAFETY: the event was just created; the driver validates the stream.
    cuda.check(unsafe { (cuda.driver.cu_event_record)(event, stream) }, "cuEventRecord")?;
    Ok(event as usize)
}

/// Every labelled time since the last call (milliseconds, in queue order), after waiting
/// for the last event; the events are destroyed.
pub fn take(cuda: &Cuda) -> Result<Vec<(String, f64)>, CudaError> {
    let records = std::mem::take(&mut *lock(&RECORDS));
    LAUNCHES.store(0, Ordering::Relaxed);
    if let Some(e) = lock(&ERROR).take() {
        return Err(e);
    }
    let mut out = Vec::with_capacity(records.len());
    let mut first_error = None;
    for r in records {
        let (start, end) = (r.start as CUevent, r.end as CUevent);
        let mut ms = 0f32;
        // SAFETY: both events came from `record` and are destroyed only below.
        let measured =
            cuda.check(unsafe { (cuda.driver.cu_event_synchronize)(end) }, "cuEventSynchronize").and_then(|()| {
                cuda.check(unsafe { (cuda.driver.cu_event_elapsed_time)(&mut ms, start, end) }, "cuEventElapsedTime")
            });
        // SAFETY: as above; not used afterwards.
        unsafe {
            (cuda.driver.cu_event_destroy)(start);
            (cuda.driver.cu_event_destroy)(end);
        }
        match measured {
            Ok(()) => out.push((r.label, ms as f64)),
            Err(e) => {
                first_error.get_or_insert(e);
            }
        }
    }
    first_error.map_or(Ok(out), Err)
}
