//! Check records: refusals that GPU code computes where the data lies (an index out of
//! range) and the host reads after the run.
//!
//! Contract:
//! - Compiled code has `archc_check_begin` zero a fresh device buffer (a fill queued on the
//!   stream, [`archc_check_begin`]), computes a record `[kind, a, b, c]` (four `i64`; kind
//!   0: nothing to report) into it and calls `archc_check_record` with it
//!   ([`archc_check_record`]). (The zeroing matters where kernels write nothing, as on the
//!   stand-in driver of the tests: a record never read as written stays "nothing".) That function only queues a copy of the record into the next
//!   slot of the [`Records`] collecting on this thread ([`Records::collect`]): no wait, so a
//!   CUDA graph captures the copy with the kernels, and a replay writes the same slots.
//! - After the stream was waited for, [`Records::first_refusal`] is the first record
//!   whose kind is not 0. A record handed over while no `Records` collect records an error
//!   for [`crate::take_error`] instead.
//! - The slots are page-locked host memory owned by the `Records`, in blocks of
//!   [`CAPACITY`] (a run that hands over more, a gather in a long host loop, gets another
//!   block; blocks never move, since a captured graph copies into them); whoever replays
//!   a graph that copies into them keeps them alive as long as the graph.

use std::cell::Cell;
use std::ptr::null_mut;

use crate::{mgpu, Cuda, CudaError, UnrankedMemRef};

/// Records per block of slots.
pub const CAPACITY: usize = 256;

/// One record: `[kind, a, b, c]`.
pub type Record = [i64; 4];

thread_local! {
    /// The records collecting on this thread, if any.
    static ACTIVE: Cell<*mut Records> = const { Cell::new(null_mut()) };
}

/// Blocks of [`CAPACITY`] slots of page-locked memory and how many slots the last run
/// used.
pub struct Records {
    cuda: &'static Cuda,
    blocks: Vec<*mut Record>,
    used: usize,
}

impl Records {
    /// One block of zeroed slots.
    pub fn new(cuda: &'static Cuda) -> Result<Records, CudaError> {
        let mut records = Records { cuda, blocks: Vec::new(), used: 0 };
        records.grow()?;
        Ok(records)
    }

    /// Another block of zeroed slots.
    fn grow(&mut self) -> Result<(), CudaError> {
        let bytes = CAPACITY * std::mem::size_of::<Record>();
        let block = self.cuda.alloc_pinned(bytes)?.cast::<Record>();
        // SAFETY: `alloc_pinned` returned `bytes` writable bytes.
        unsafe { std::ptr::write_bytes(block, 0, CAPACITY) };
        self.blocks.push(block);
        Ok(())
    }

    /// Slot `i` (inside the blocks).
    fn slot(&self, i: usize) -> *mut Record {
        // SAFETY (of later use): block `i / CAPACITY` exists and holds `CAPACITY` slots.
        self.blocks[i / CAPACITY].wrapping_add(i % CAPACITY)
    }

    /// Runs `f` (which runs or captures compiled code) with these slots receiving the
    /// records it hands over, counted from 0.
    pub fn collect<R>(&mut self, f: impl FnOnce() -> R) -> R {
        self.used = 0;
        let before = ACTIVE.with(|a| a.replace(self as *mut Records));
        let r = f();
        ACTIVE.with(|a| a.set(before));
        r
    }

    /// How many records the last collected run handed over (a graph's replays write as
    /// many).
    pub fn used(&self) -> usize {
        self.used
    }

    /// The first record of the last run whose kind is not 0. Only after the stream that
    /// runs the copies was waited for.
    pub fn first_refusal(&self) -> Option<Record> {
        // SAFETY: the first `used` slots lie in the blocks, and no copy into them is
        // pending (the caller waited for the stream).
        (0..self.used).map(|i| unsafe { *self.slot(i) }).find(|r| r[0] != 0)
    }

    /// Queues the copy of the record at `src` (device or managed memory) into the next slot.
    fn queue(&mut self, src: *const u8) -> Result<(), CudaError> {
        if self.used == self.blocks.len() * CAPACITY {
            self.grow()?;
        }
        let stream = crate::runtime_stream()?;
        let bytes = std::mem::size_of::<Record>();
        // SAFETY: the slot holds one record; the source is the compiled code's live
        // record buffer, which the stream reads before any later kernel reuses it.
        unsafe { self.cuda.copy_to_host(self.slot(self.used).cast(), src, bytes, stream)? };
        self.used += 1;
        Ok(())
    }
}

impl Drop for Records {
    fn drop(&mut self) {
        for &block in &self.blocks {
            let _ = self.cuda.free_pinned(block.cast());
        }
    }
}

/// `void archc_check_begin(memref<4xi64>)` (C interface): queues the zeroing of a fresh
/// record buffer (see the module doc).
///
/// # Safety
/// `rec` must describe a live, contiguous buffer of four `i64`.
pub unsafe extern "C" fn archc_check_begin(rec: *const UnrankedMemRef) {
    // SAFETY: forwarded from this function's contract.
    let dst = unsafe { (*rec).element_zero(8) };
    let zeroed = crate::runtime_stream().map(|stream| {
        let words = (std::mem::size_of::<Record>() / 4) as i64;
        // SAFETY: the buffer holds one record, 8-byte aligned.
        unsafe { crate::mgpu::mgpuMemset32(dst.cast(), 0, words, stream.raw()) };
    });
    if let Err(e) = zeroed {
        mgpu::record(e.context("archc_check_begin"));
    }
}

/// `void archc_check_record(memref<4xi64>)` (C interface): see the module doc.
///
/// # Safety
/// `rec` must describe a live, contiguous buffer of four `i64`.
pub unsafe extern "C" fn archc_check_record(rec: *const UnrankedMemRef) {
    if mgpu::failed() {
        return;
    }
    // SAFETY: forwarded from this function's contract.
    let src = unsafe { (*rec).element_zero(8) };
    let active = ACTIVE.with(Cell::get);
    let queued = if active.is_null() {
        Err(CudaError::Internal("a check record outside a collecting run".into()))
    } else {
        // SAFETY: `collect` set the pointer from a live `&mut Records` for the duration of
        // the run this call belongs to, on this thread.
        unsafe { (*active).queue(src) }
    };
    if let Err(e) = queued {
        mgpu::record(e.context("archc_check_record"));
    }
}

/// This module's symbols, for the JIT's symbol map.
pub fn symbols() -> Vec<(&'static str, *mut ())> {
    vec![
        ("_mlir_ciface_archc_check_begin", archc_check_begin as *mut ()),
        ("_mlir_ciface_archc_check_record", archc_check_record as *mut ()),
    ]
}
