//! A size-class cache of managed allocations, for the buffers generated code allocates and
//! frees every step (`cuMemAllocManaged` is slow and `cuMemFree` synchronises the device).
//!
//! Contract:
//! - Sizes round up to a power of two, at least 256 bytes; a 0-byte request gets 256.
//! - `free` puts a managed block on its class's free list; `alloc_managed` reuses the most
//!   recently freed block of its class before asking the driver. A reused block may still
//!   be read by a kernel queued before its free: this is safe because all GPU work goes to
//!   one stream (see `mgpu`), and the generated code synchronises it after every launch.
//! - `alloc_host` is the fallback after a CUDA error (or without a GPU): plain host memory,
//!   256-byte aligned, so JIT code can run to its end; `free` tells the two apart.
//! - Every live pointer's block is recorded; freeing an unknown pointer is an error, and a
//!   null pointer is ignored.
//! - `trim_cache` synchronises and returns every cached block to the driver.

use std::alloc::Layout;
use std::collections::HashMap;
use std::sync::{LazyLock, Mutex, MutexGuard};

use crate::cuda;

const MIN_BLOCK: usize = 256;
const HOST_ALIGN: usize = 256;

/// A live block: its size class and where it came from.
#[derive(Clone, Copy)]
struct Block {
    class: usize,
    host: bool,
}

#[derive(Default)]
struct Pool {
    /// Live pointers (as addresses) to their blocks.
    live: HashMap<usize, Block>,
    /// Cached managed blocks by size class.
    free: HashMap<usize, Vec<usize>>,
}

static POOL: LazyLock<Mutex<Pool>> = LazyLock::new(Mutex::default);

fn pool() -> MutexGuard<'static, Pool> {
    // The pool's maps stay consistent between statements, so a poisoned lock is usable.
    POOL.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The block size serving a request of `bytes`.
fn size_class(bytes: usize) -> Result<usize, String> {
    bytes.max(MIN_BLOCK).checked_next_power_of_two().ok_or_else(|| format!("allocation of {bytes} bytes is too large"))
}

/// Managed memory for `bytes`, from the cache or the driver.
pub(crate) fn alloc_managed(bytes: usize) -> Result<*mut u8, String> {
    let class = size_class(bytes)?;
    let mut pool = pool();
    let address = match pool.free.get_mut(&class).and_then(Vec::pop) {
        Some(address) => address,
        None => fresh_managed(&mut pool, class)?,
    };
    pool.live.insert(address, Block { class, host: false });
    Ok(address as *mut u8)
}

/// A new managed block; when the device is out of memory, empties the cache and retries.
fn fresh_managed(pool: &mut Pool, class: usize) -> Result<usize, String> {
    let cuda = cuda()?;
    match cuda.alloc_managed(class) {
        Ok(ptr) => Ok(ptr as usize),
        Err(e) if e.contains("CUDA_ERROR_OUT_OF_MEMORY") && !pool.free.is_empty() => {
            release(pool)?;
            cuda.alloc_managed(class).map(|ptr| ptr as usize)
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
        pool().live.insert(ptr as usize, Block { class: layout.size(), host: true });
    }
    ptr
}

/// Returns a block from `alloc_managed` or `alloc_host`; null is ignored.
pub(crate) fn free(ptr: *mut u8) -> Result<(), String> {
    if ptr.is_null() {
        return Ok(());
    }
    let mut pool = pool();
    let block =
        pool.live.remove(&(ptr as usize)).ok_or_else(|| format!("free of {ptr:?}, which was not allocated here"))?;
    if block.host {
        // SAFETY: allocated by `alloc_host` with exactly this layout, and freed only once
        // (it has just left `live`).
        unsafe { std::alloc::dealloc(ptr, Layout::from_size_align_unchecked(block.class, HOST_ALIGN)) };
    } else {
        pool.free.entry(block.class).or_default().push(ptr as usize);
    }
    Ok(())
}

/// Returns every cached managed block to the driver (after synchronising the device).
pub fn trim_cache() -> Result<(), String> {
    release(&mut pool())
}

fn release(pool: &mut Pool) -> Result<(), String> {
    if pool.free.values().all(Vec::is_empty) {
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
