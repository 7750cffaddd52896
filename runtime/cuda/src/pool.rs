//! A size-class cache of GPU allocations, for the buffers generated code allocates and
//! frees every step (`cuMemAlloc*` is slow and `cuMemFree` synchronises the device).
//!
//! Contract:
//! - Sizes round up to a power of two, at least 256 bytes; a 0-byte request gets 256.
//! - Blocks are of one [`Kind`]: managed memory (host code and kernels alike), device
//!   memory (kernels and driver copies only), or host memory (the fallback after a CUDA
//!   error or without a GPU, 256-byte aligned, so JIT code can run to its end).
//!   [`alloc`] gives generated code device memory while [`set_device_memory`] is on and
//!   managed memory otherwise; `alloc_managed` always gives managed memory.
//! - `free` puts a managed or device block on its class's free list; allocation reuses
//!   the most recently freed block of its kind and class before asking the driver. A
//!   reused block may still be read by work queued before its free: this is safe because
//!   all GPU work goes to one stream (see `mgpu`), which orders the new user after it.
//! - Capture ([`begin_capture`] .. [`end_capture`]): while a CUDA graph is captured, every
//!   block allocated or freed belongs to the capture: a freed one is reused only within
//!   the capture, and `end_capture` hands all of them to the caller ([`Owned`]), because
//!   the graph replays with those addresses baked in. Dropping `Owned` returns them to the
//!   free lists. While capturing, the cache is never trimmed (that would synchronise).
//! - Every live pointer's block is recorded; freeing an unknown pointer is an error, and a
//!   null pointer is ignored.
//! - `trim_cache` synchronises and returns every cached block to the driver.

use std::alloc::Layout;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{LazyLock, Mutex, MutexGuard};

use crate::{cuda, CudaError};

const MIN_BLOCK: usize = 256;
const HOST_ALIGN: usize = 256;

/// Where a block lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    Managed,
    Device,
    Host,
}

/// A live block: its size class and kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Block {
    class: usize,
    kind: Kind,
}

/// The free lists and live blocks, and a capture's own blocks while one runs.
#[derive(Default)]
struct Pool {
    /// Live pointers (as addresses) to their blocks.
    live: HashMap<usize, Block>,
    /// Cached blocks by kind and size class.
    free: HashMap<(Kind, usize), Vec<usize>>,
    /// While a capture runs: every block it allocated, and its own free lists.
    capture: Option<Capture>,
}

#[derive(Default)]
struct Capture {
    blocks: Vec<(usize, Block)>,
    free: HashMap<(Kind, usize), Vec<usize>>,
}

static POOL: LazyLock<Mutex<Pool>> = LazyLock::new(Mutex::default);
static DEVICE_MEMORY: AtomicBool = AtomicBool::new(false);

fn pool() -> MutexGuard<'static, Pool> {
    // The pool's maps stay consistent between statements, so a poisoned lock is usable.
    POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Makes [`alloc`] (the allocation functions of generated code) give device memory
/// (`true`) or managed memory (`false`, the default).
pub fn set_device_memory(on: bool) {
    DEVICE_MEMORY.store(on, Ordering::Relaxed);
}

/// The block size serving a request of `bytes`.
fn size_class(bytes: usize) -> Result<usize, CudaError> {
    let class = bytes.max(MIN_BLOCK).checked_next_power_of_two();
    class.ok_or_else(|| CudaError::Internal(format!("allocation of {bytes} bytes is too large")))
}

/// Memory for generated code: device or managed (see [`set_device_memory`]).
pub(crate) fn alloc(bytes: usize) -> Result<*mut u8, CudaError> {
    let kind = if DEVICE_MEMORY.load(Ordering::Relaxed) { Kind::Device } else { Kind::Managed };
    alloc_kind(bytes, kind)
}

/// Managed memory for `bytes`, from the cache or the driver.
pub(crate) fn alloc_managed(bytes: usize) -> Result<*mut u8, CudaError> {
    alloc_kind(bytes, Kind::Managed)
}

fn alloc_kind(bytes: usize, kind: Kind) -> Result<*mut u8, CudaError> {
    let block = Block { class: size_class(bytes)?, kind };
    let mut guard = pool();
    let pool = &mut *guard;
    let key = (kind, block.class);
    let cached = match &mut pool.capture {
        Some(capture) => capture.free.get_mut(&key).and_then(Vec::pop),
        None => None,
    };
    let address = match cached.or_else(|| pool.free.get_mut(&key).and_then(Vec::pop)) {
        Some(address) => address,
        None => fresh(pool, block)?,
    };
    pool.live.insert(address, block);
    if let Some(capture) = &mut pool.capture {
        if capture.blocks.iter().all(|&(a, _)| a != address) {
            capture.blocks.push((address, block));
        }
    }
    Ok(address as *mut u8)
}

/// A new block from the driver; when the device is out of memory (and no capture runs),
/// empties the cache and retries.
fn fresh(pool: &mut Pool, block: Block) -> Result<usize, CudaError> {
    let cuda = cuda()?;
    crate::stats::bump(crate::stats::Counter::FreshAlloc);
    let get = || match block.kind {
        Kind::Device => cuda.alloc_device(block.class),
        _ => cuda.alloc_managed(block.class),
    };
    match get() {
        Ok(ptr) => Ok(ptr as usize),
        Err(CudaError::OutOfMemory { .. }) if pool.capture.is_none() && !pool.free.is_empty() => {
            release(pool)?;
            get().map(|ptr| ptr as usize)
        }
        Err(e) => Err(e),
    }
}

/// Host memory for `bytes` (see the module doc); null only if the host is out of memory.
pub(crate) fn alloc_host(bytes: usize) -> *mut u8 {
    let Some(layout) = size_class(bytes).ok().and_then(|class| Layout::from_size_align(class, HOST_ALIGN).ok()) else {
        return std::ptr::null_mut();
    };
    // SAFETY: the layout's size is at least MIN_BLOCK, never zero.
    let ptr = unsafe { std::alloc::alloc(layout) };
    if !ptr.is_null() {
        pool().live.insert(ptr as usize, Block { class: layout.size(), kind: Kind::Host });
    }
    ptr
}

/// Returns a block from any `alloc*`; null is ignored.
pub(crate) fn free(ptr: *mut u8) -> Result<(), CudaError> {
    if ptr.is_null() {
        return Ok(());
    }
    let mut guard = pool();
    let pool = &mut *guard;
    let block = pool
        .live
        .remove(&(ptr as usize))
        .ok_or_else(|| CudaError::Internal(format!("free of {ptr:?}, which was not allocated here")))?;
    let key = (block.kind, block.class);
    match (block.kind, &mut pool.capture) {
        // SAFETY: allocated by `alloc_host` with exactly this layout, and freed only once
        // (it has just left `live`).
        (Kind::Host, _) => unsafe {
            std::alloc::dealloc(ptr, Layout::from_size_align_unchecked(block.class, HOST_ALIGN))
        },
        (_, Some(capture)) => {
            if capture.blocks.iter().all(|&(a, _)| a != ptr as usize) {
                capture.blocks.push((ptr as usize, block));
            }
            capture.free.entry(key).or_default().push(ptr as usize);
        }
        (_, None) => pool.free.entry(key).or_default().push(ptr as usize),
    }
    Ok(())
}

/// Starts a capture (see the module doc); an error if one runs already.
pub fn begin_capture() -> Result<(), CudaError> {
    let mut pool = pool();
    if pool.capture.is_some() {
        return Err(CudaError::Internal("a CUDA graph capture is already running".into()));
    }
    pool.capture = Some(Capture::default());
    Ok(())
}

/// Ends the capture: the blocks it used, owned by the caller until dropped. Blocks still
/// live (allocated in the capture and not freed) stay live; they are owned too.
pub fn end_capture() -> Owned {
    let capture = pool().capture.take().unwrap_or_default();
    Owned(capture.blocks.into_iter().map(|(address, block)| (address, block.kind, block.class)).collect())
}

/// Blocks owned by a captured graph: (address, kind, size class). Dropping returns those
/// no longer live to the free lists.
#[derive(Debug, Default)]
pub struct Owned(Vec<(usize, Kind, usize)>);

impl Owned {
    /// How many blocks, and their bytes.
    pub fn size(&self) -> (usize, usize) {
        (self.0.len(), self.0.iter().map(|&(_, _, class)| class).sum())
    }
}

impl Drop for Owned {
    fn drop(&mut self) {
        let mut pool = pool();
        for &(address, kind, class) in &self.0 {
            if !pool.live.contains_key(&address) {
                pool.free.entry((kind, class)).or_default().push(address);
            }
        }
    }
}

/// Returns every cached block to the driver (after synchronising the device).
pub fn trim_cache() -> Result<(), CudaError> {
    release(&mut pool())
}

fn release(pool: &mut Pool) -> Result<(), CudaError> {
    if pool.free.values().all(Vec::is_empty) || pool.capture.is_some() {
        return Ok(());
    }
    let cuda = cuda()?;
    cuda.synchronize()?;
    let mut first_error = Ok(());
    for address in pool.free.drain().flat_map(|(_, blocks)| blocks) {
        let result = cuda.free(address as *mut u8);
        first_error = first_error.and(result);
    }
    first_error
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The capture bookkeeping with host blocks standing in for GPU ones (no driver).
    /// Tests share the process-wide pool, so this is the only test that captures.
    #[test]
    fn a_capture_owns_its_blocks_until_dropped() {
        let put = |pool: &mut Pool, address: usize| {
            pool.free.entry((Kind::Device, 256)).or_default().push(address);
        };
        put(&mut pool(), 0x1000);
        begin_capture().unwrap();
        assert!(begin_capture().is_err(), "captures do not nest");
        let a = alloc_kind(100, Kind::Device).unwrap() as usize;
        assert_eq!(a, 0x1000, "a cached block is taken");
        free(a as *mut u8).unwrap();
        let b = alloc_kind(200, Kind::Device).unwrap() as usize;
        assert_eq!(b, a, "a block freed in the capture is reused within it");
        free(b as *mut u8).unwrap();
        let owned = end_capture();
        assert_eq!(owned.size(), (1, 256));
        assert!(pool().free.get(&(Kind::Device, 256)).is_none_or(Vec::is_empty), "not free while owned");
        drop(owned);
        assert_eq!(pool().free[&(Kind::Device, 256)], vec![0x1000], "free again once dropped");
        pool().free.clear();
    }
}
