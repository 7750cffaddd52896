//! Device-memory runs of GPU host code, optionally replayed as a CUDA graph.
//!
//! Contract:
//! - A [`Slot`] serves one set of input shapes: one device buffer holding every input and
//!   output (each at a 256-byte aligned offset, inputs first), and a page-locked host
//!   buffer of the same layout. A run copies the inputs into the host buffer, queues one
//!   host-to-device copy, runs the entry (or replays its graph), queues one device-to-host
//!   copy of the outputs, waits once, and copies the outputs out.
//! - The entry runs with the pool's device memory on and the runtime's waits off: only for
//!   host code that touches no buffer (see `super::needs_sync`). A runtime path that would
//!   have the host touch device memory records an `archc_cuda::CudaError::NeedsHostMemory`
//!   instead, and the caller reruns with managed memory.
//! - Resident state (`super::state`): a bound argument or result is not in the slot; its
//!   descriptor points at the state's device buffer ([`Slot::descriptors_with`]), and the
//!   copies that move written results home are queued after the entry (captured with it).
//! - Check records (`archc_cuda::checks`): the entry's copies of them land in the slot's
//!   page-locked [`Records`], from direct runs and captures alike; after the final wait the
//!   runner reads them ([`Slot::refusal`]).
//! - Graphs (`capture`): the entry's work is captured once from the stream into a CUDA
//!   graph, which is then replayed for every later run of the slot. The graph bakes in
//!   the slot's buffers, the pool blocks the entry used (owned by the graph until it is
//!   dropped, see `archc_cuda::Owned`), the parameter globals' addresses and the seed, so
//!   only modules without random ops are captured. A capture that fails leaves no graph;
//!   the caller runs the entry directly.

use crate::abi::{data_ptr, Descriptors};
use archc_cuda::checks::Records;
use archc_cuda::{Cuda, CudaError, Graph, Owned, Stream};
use archc_runtime::tensor::Tensor;

use super::{take_error, HostCode};
use crate::error::Result;

/// Alignment of each tensor in a slot's buffers.
const ALIGN: usize = 256;

/// Offsets of `sizes` (bytes) packed one after another at `ALIGN`ed offsets, and the
/// total length.
pub(crate) fn layout(sizes: &[usize]) -> (Vec<usize>, usize) {
    let mut offsets = Vec::with_capacity(sizes.len());
    let mut end = 0usize;
    for &bytes in sizes {
        offsets.push(end);
        end += bytes.div_ceil(ALIGN).max(1) * ALIGN;
    }
    (offsets, end)
}

/// The buffers (and graph) of one set of input shapes.
pub(crate) struct Slot {
    cuda: &'static Cuda,
    device: *mut u8,
    host: *mut u8,
    /// Byte offset and length of each input, then each output.
    parts: Vec<(usize, usize)>,
    inputs: usize,
    shapes: Vec<Vec<usize>>,
    pub runs: u64,
    /// Where the entry's check records land (a captured graph copies into them too).
    pub checks: Records,
    pub graph: Option<Captured>,
    /// Set when a capture failed: this slot runs the entry directly from then on.
    pub no_graph: bool,
}

/// A captured graph and the pool blocks its replays use.
pub(crate) struct Captured {
    // Field order: the graph is destroyed before its blocks return to the pool.
    graph: Graph,
    _blocks: Owned,
}

impl Slot {
    /// Buffers for `inputs` and `outputs` (shapes and byte sizes as given).
    pub fn new(cuda: &'static Cuda, inputs: &[&Tensor], outputs: &[Tensor]) -> Result<Slot, CudaError> {
        let tensors = inputs.iter().copied().chain(outputs.iter());
        let (bytes, shapes): (Vec<usize>, Vec<Vec<usize>>) =
            tensors.map(|t| (super::tensor_bytes(t), t.shape().to_vec())).unzip();
        let (offsets, total) = layout(&bytes);
        let device = cuda.alloc_device(total)?;
        let host = cuda.alloc_pinned(total).inspect_err(|_| {
            let _ = cuda.free(device);
        })?;
        let checks = Records::new(cuda).inspect_err(|_| {
            let _ = cuda.free(device);
            let _ = cuda.free_pinned(host);
        })?;
        let parts = offsets.into_iter().zip(bytes).collect();
        let inputs = inputs.len();
        Ok(Slot { cuda, device, host, parts, inputs, shapes, runs: 0, checks, graph: None, no_graph: false })
    }

    /// Queues the inputs' upload: through the page-locked buffer, in one copy.
    pub fn upload(&self, inputs: &[&Tensor], stream: Stream) -> Result<(), CudaError> {
        for (t, &(offset, bytes)) in inputs.iter().zip(&self.parts) {
            // SAFETY: the host buffer has `bytes` bytes at `offset` (the layout), and the
            // tensor's storage holds `bytes` bytes (same shape and dtype as at creation).
            unsafe { std::ptr::copy_nonoverlapping(data_ptr(t), self.host.add(offset), bytes) };
        }
        let end = self.input_end();
        if end == 0 {
            return Ok(());
        }
        // SAFETY: both buffers hold `end` bytes; the host buffer is not written again
        // before the stream is waited for (`download`).
        unsafe { self.cuda.copy_to_device(self.device, self.host, end, stream) }
    }

    /// Queues the outputs' download, waits for the stream and copies them into `outputs`.
    pub fn download(&self, outputs: &mut [Tensor], stream: Stream) -> Result<(), CudaError> {
        let start = self.input_end();
        let end = self.parts.last().map_or(start, |&(offset, bytes)| offset + bytes);
        if end > start {
            // SAFETY: both buffers hold `end` bytes.
            unsafe { self.cuda.copy_to_host(self.host.add(start), self.device.add(start), end - start, stream)? };
        }
        archc_cuda::stats::bump(archc_cuda::stats::Counter::Wait);
        self.cuda.stream_synchronize(stream)?;
        for (t, &(offset, bytes)) in outputs.iter_mut().zip(&self.parts[self.inputs..]) {
            // SAFETY: the host buffer holds the downloaded output; the tensor was made with
            // this shape and dtype, so it has `bytes` bytes.
            unsafe { std::ptr::copy_nonoverlapping(self.host.add(offset), data_ptr(t), bytes) };
        }
        Ok(())
    }

    /// After the final wait of a run: the first refusal its check records hold, recorded
    /// on this thread as compiled code's refusals are (`runtime::rt::archc_fail`).
    pub fn refusal(&self) {
        refuse(&self.checks);
    }

    /// Where the inputs end in the buffers (the outputs start at the next offset).
    fn input_end(&self) -> usize {
        match self.parts.get(self.inputs) {
            Some(&(offset, _)) => offset,
            None => self.parts.last().map_or(0, |&(offset, bytes)| offset + bytes),
        }
    }

    /// The entry's arguments over the device buffer: one descriptor per input and output.
    pub fn descriptors(&self) -> Descriptors {
        self.descriptors_with(&vec![None; self.parts.len()])
    }

    /// The entry's arguments, inputs then outputs: `outside[i]` is the device buffer and
    /// shape of the `i`-th where it lives outside the slot (resident state), `None` for
    /// the slot's next part.
    pub fn descriptors_with(&self, outside: &[Option<(*mut u8, &[usize])>]) -> Descriptors {
        let mut descs = Descriptors::default();
        let mut parts = self.parts.iter().zip(&self.shapes);
        for place in outside {
            match place {
                Some((ptr, shape)) => descs.push_raw(*ptr, shape),
                None => {
                    let (&(offset, _), shape) = parts.next().expect("a part per argument in the slot");
                    // SAFETY (of later use): the device buffer holds the tensor at `offset`.
                    descs.push_raw(self.device.wrapping_add(offset), shape);
                }
            }
        }
        descs
    }

    /// Replays the slot's graph on `stream`, if it has one.
    pub fn replay(&self, stream: Stream) -> Option<Result<(), CudaError>> {
        let captured = self.graph.as_ref()?;
        archc_cuda::stats::bump(archc_cuda::stats::Counter::GraphLaunch);
        Some(captured.graph.launch(stream))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        // Nothing is left to clean up after a failed free.
        self.graph = None;
        let _ = self.cuda.free(self.device);
        let _ = self.cuda.free_pinned(self.host);
    }
}

/// Records the first refusal among `records` (read after the run's final wait) as the
/// run's failure.
pub(crate) fn refuse(records: &Records) {
    if let Some([kind, a, b, c]) = records.first_refusal() {
        crate::runtime::rt::archc_fail(kind, a, b, c);
    }
}

/// Runs the entry with device memory and without waits (see the module doc).
///
/// # Safety
/// `args` follow the entry's packed convention, over buffers of its declared types.
pub(crate) unsafe fn invoke_on_device(code: &dyn HostCode, args: &mut [*mut ()]) -> Result<()> {
    archc_cuda::set_device_memory(true);
    archc_cuda::set_sync_launches(false);
    // SAFETY: forwarded from this function's contract.
    let ran = unsafe { code.invoke("archc_entry", args) };
    archc_cuda::set_sync_launches(true);
    archc_cuda::set_device_memory(false);
    ran?;
    Ok(take_error()?)
}

/// Captures the entry's work on `stream`, then what `after` queues, into a graph (see the
/// module doc). Nothing runs: the caller replays the graph to compute.
///
/// # Safety
/// As [`invoke_on_device`].
pub(crate) unsafe fn capture(
    cuda: &'static Cuda,
    code: &dyn HostCode,
    args: &mut [*mut ()],
    stream: Stream,
    after: &dyn Fn(Stream) -> Result<(), CudaError>,
) -> Result<Captured> {
    take_error()?;
    archc_cuda::begin_capture()?;
    if let Err(e) = cuda.begin_capture(stream) {
        drop(archc_cuda::end_capture());
        return Err(e.into());
    }
    // SAFETY: forwarded from this function's contract.
    let ran = unsafe { invoke_on_device(code, args) }.and_then(|()| Ok(after(stream)?));
    // The stream must leave capture mode whatever happened.
    let graph = cuda.end_capture(stream);
    let blocks = archc_cuda::end_capture();
    ran?;
    Ok(Captured { graph: graph?, _blocks: blocks })
}

#[cfg(test)]
mod tests {
    use super::layout;

    #[test]
    fn parts_are_aligned_and_disjoint() {
        let (offsets, total) = layout(&[4, 0, 300, 256]);
        assert_eq!(offsets, vec![0, 256, 512, 1024]);
        assert_eq!(total, 1280);
    }
}
