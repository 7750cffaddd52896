//! MLIR's GPU runtime ABI (`mgpu*`) and memref allocation functions, for the host code that
//! MLIR's `gpu-to-llvm` lowering and LLVM translation generate and the JIT runs.
//!
//! Contract:
//! - Each function has the C signature the generated LLVM IR declares (in the doc line
//!   above it); [`symbols`] lists them all by name for the JIT's symbol map.
//! - Generated code cannot handle errors. The first error (a failed driver call, a bad
//!   argument, or no GPU at all) is recorded; from then on the GPU calls do nothing and
//!   return null, and allocations fall back to host memory so the JIT code can run to its
//!   end. [`take_error`] returns and clears the recorded error: the backend calls it after
//!   each run. The state is process-wide, so runs must not overlap.
//! - Kernel faults are asynchronous: they are reported by the `mgpuStreamSynchronize` that
//!   follows the launch, with the last launched kernel named.
//! - There is one stream: `mgpuStreamCreate` returns the same one every time (created once
//!   with flags 0), and `mgpuStreamDestroy` does nothing. The generated code creates,
//!   synchronises and destroys a stream around every launch; reusing one saves two driver
//!   calls per launch and keeps all GPU work in one order, which the allocation cache
//!   relies on.
//! - All memory (`mgpuMemAlloc`, `_mlir_memref_to_llvm_alloc`) comes from the cache in
//!   `pool`: managed memory, so host code and kernels can both touch every buffer, or
//!   device memory while `pool::set_device_memory` is on (for host code that touches no
//!   buffer). `mgpuMemAlloc`'s `isHostShared` is ignored.
//! - [`set_sync_launches`]`(false)` makes every wait of this crate's functions return at
//!   once (launches, products, copies): for host code that reads no buffer, and while a
//!   CUDA graph is captured.

use std::collections::HashMap;
use std::ffi::{c_char, c_void, CStr};
use std::ptr::null_mut;
use std::sync::{LazyLock, Mutex, MutexGuard, OnceLock};

use crate::driver::{CUfunction, CUmodule, CUstream, CU_JIT_OPTIMIZATION_LEVEL};
use crate::{cuda, pool, Cuda, CudaError, Launch};

static ERROR: Mutex<Option<CudaError>> = Mutex::new(None);
/// Kernel names by function handle, for error messages.
static KERNEL_NAMES: LazyLock<Mutex<HashMap<usize, String>>> = LazyLock::new(Mutex::default);
/// The last launch, described for errors reported when its stream is synchronised.
static LAST_LAUNCH: Mutex<String> = Mutex::new(String::new());
/// The one stream (as an address), or why it could not be created.
static STREAM: OnceLock<Result<usize, CudaError>> = OnceLock::new();

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every value guarded here is valid between statements, so a poisoned lock is usable.
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// The first error since the last call, if any; clears it so the next run can use the GPU.
pub fn take_error() -> Option<CudaError> {
    lock(&ERROR).take()
}

/// Keeps `error` unless an earlier one is pending.
pub(crate) fn record(error: CudaError) {
    lock(&ERROR).get_or_insert(error);
}

/// Whether an error is pending (from then on the GPU calls do nothing).
pub(crate) fn failed() -> bool {
    lock(&ERROR).is_some()
}

/// The process's one stream (see the module doc), created on first use.
pub(crate) fn stream(cuda: &Cuda) -> Result<CUstream, CudaError> {
    let stream = STREAM.get_or_init(|| cuda.create_stream_raw().map(|stream| stream as usize));
    stream.clone().map(|address| address as CUstream)
}

/// Runs `call` unless an error is pending; records its error and returns `fallback` then.
fn guarded<T>(fallback: T, call: impl FnOnce(&'static Cuda) -> Result<T, CudaError>) -> T {
    if failed() {
        return fallback;
    }
    match cuda().and_then(call) {
        Ok(value) => value,
        Err(error) => {
            record(error);
            fallback
        }
    }
}

/// Every symbol of this module with its address, for the JIT's symbol map (the crate's
/// [`crate::symbols`] adds the matrix products and `memrefCopy`).
pub fn symbols() -> Vec<(&'static str, *mut ())> {
    vec![
        ("mgpuModuleLoadJIT", mgpuModuleLoadJIT as *mut ()),
        ("mgpuModuleLoad", mgpuModuleLoad as *mut ()),
        ("mgpuModuleUnload", mgpuModuleUnload as *mut ()),
        ("mgpuModuleGetFunction", mgpuModuleGetFunction as *mut ()),
        ("mgpuStreamCreate", mgpuStreamCreate as *mut ()),
        ("mgpuStreamSynchronize", mgpuStreamSynchronize as *mut ()),
        ("mgpuStreamDestroy", mgpuStreamDestroy as *mut ()),
        ("mgpuLaunchKernel", mgpuLaunchKernel as *mut ()),
        ("mgpuMemAlloc", mgpuMemAlloc as *mut ()),
        ("mgpuMemFree", mgpuMemFree as *mut ()),
        ("mgpuMemcpy", mgpuMemcpy as *mut ()),
        ("mgpuMemset32", mgpuMemset32 as *mut ()),
        ("_mlir_memref_to_llvm_alloc", _mlir_memref_to_llvm_alloc as *mut ()),
        ("_mlir_memref_to_llvm_free", _mlir_memref_to_llvm_free as *mut ()),
    ]
}

/// `ptr mgpuModuleLoadJIT(ptr data, i32 optLevel)`: JIT-compiles NUL-terminated PTX text
/// at the given optimisation level (0..=4). Null after an error.
///
/// # Safety
/// `data` is null or points to NUL-terminated PTX text.
#[allow(non_snake_case)]
pub unsafe extern "C" fn mgpuModuleLoadJIT(data: *const c_void, optLevel: i32) -> CUmodule {
    guarded(null_mut(), |cuda| {
        if data.is_null() {
            return Err(CudaError::Internal("mgpuModuleLoadJIT: null PTX".into()));
        }
        let level = optLevel as isize as *mut c_void;
        cuda.load_image(data, &[(CU_JIT_OPTIMIZATION_LEVEL, level)])
    })
}

/// `ptr mgpuModuleLoad(ptr data, i64 size)`: loads a cubin, fatbin or PTX image of `size`
/// bytes. PTX without its terminating NUL gets one. Null after an error.
///
/// # Safety
/// `data` is null or points to `size` readable bytes.
#[allow(non_snake_case)]
pub unsafe extern "C" fn mgpuModuleLoad(data: *const c_void, size: i64) -> CUmodule {
    guarded(null_mut(), |cuda| {
        let size = usize::try_from(size).ok().filter(|_| !data.is_null());
        let bad = || CudaError::Internal(format!("mgpuModuleLoad: bad image ({data:?}, {size:?} bytes)"));
        let size = size.ok_or_else(bad)?;
        // SAFETY: the caller promises `size` readable bytes at `data`.
        let bytes = unsafe { std::slice::from_raw_parts(data.cast::<u8>(), size) };
        let image = terminated_image(bytes);
        cuda.load_image(image.as_ptr().cast(), &[])
    })
}

/// The image to hand the driver: binaries (ELF cubin, fatbin) as they are, PTX text with a
/// terminating NUL.
fn terminated_image(bytes: &[u8]) -> Vec<u8> {
    const ELF: &[u8] = b"\x7fELF";
    const FATBIN: &[u8] = &0xBA55_ED50u32.to_le_bytes();
    let mut image = bytes.to_vec();
    let binary = bytes.starts_with(ELF) || bytes.starts_with(FATBIN);
    if !binary && image.last() != Some(&0) {
        image.push(0);
    }
    image
}

/// `void mgpuModuleUnload(ptr module)`.
///
/// # Safety
/// `module` came from `mgpuModuleLoad*` and is not used afterwards.
#[allow(non_snake_case)]
pub unsafe extern "C" fn mgpuModuleUnload(module: CUmodule) {
    if module.is_null() {
        return;
    }
    guarded((), |cuda| cuda.unload(module))
}

/// `ptr mgpuModuleGetFunction(ptr module, ptr name)`: the kernel `name` (NUL-terminated).
/// Null after an error, a missing kernel included.
///
/// # Safety
/// `module` came from `mgpuModuleLoad*`; `name` is null or NUL-terminated.
#[allow(non_snake_case)]
pub unsafe extern "C" fn mgpuModuleGetFunction(module: CUmodule, name: *const c_char) -> CUfunction {
    guarded(null_mut(), |cuda| {
        if name.is_null() {
            return Err(CudaError::Internal("mgpuModuleGetFunction: null kernel name".into()));
        }
        // SAFETY: non-null and NUL-terminated, by the caller's promise.
        let name = unsafe { CStr::from_ptr(name) };
        let function = cuda.get_function(module, name)?;
        lock(&KERNEL_NAMES).insert(function as usize, name.to_string_lossy().into_owned());
        Ok(function)
    })
}

/// `ptr mgpuStreamCreate()`: the process's one stream (see the module doc).
#[allow(non_snake_case)]
pub extern "C" fn mgpuStreamCreate() -> CUstream {
    guarded(null_mut(), stream)
}

/// `void mgpuStreamSynchronize(ptr stream)`: waits for the stream; reports the failure of
/// any kernel queued on it.
///
/// # Safety
/// `stream` came from `mgpuStreamCreate` (or is null, the default stream).
#[allow(non_snake_case)]
pub unsafe extern "C" fn mgpuStreamSynchronize(stream: CUstream) {
    if !host_waits() {
        return;
    }
    crate::stats::bump(crate::stats::Counter::Wait);
    guarded((), |cuda| {
        let after = |e: CudaError| e.with_detail(format_args!("after the launch of {}", lock(&LAST_LAUNCH)));
        cuda.stream_synchronize_raw(stream).map_err(after)
    })
}

/// Whether the host waits for GPU work as soon as it is queued: `mgpuStreamSynchronize`
/// (which generated code calls after every launch), and the products' and copies' final
/// waits.
static SYNC_LAUNCHES: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(true);

/// Makes the generated code's per-launch synchronisations wait (`true`, the default) or
/// return at once. Skipping them is correct only when the host touches no buffer the GPU
/// uses until the caller synchronises: everything on the one stream is ordered, and the
/// runtime's own host-side paths (fallback products and copies) synchronise first.
/// While a CUDA graph is captured, nothing may wait: the caller turns this off.
pub fn set_sync_launches(sync: bool) {
    SYNC_LAUNCHES.store(sync, std::sync::atomic::Ordering::Relaxed);
}

/// Whether the runtime's own calls wait for their queued work before returning (see
/// [`set_sync_launches`]).
pub(crate) fn host_waits() -> bool {
    SYNC_LAUNCHES.load(std::sync::atomic::Ordering::Relaxed)
}

/// `void mgpuStreamDestroy(ptr stream)`: nothing; the one stream lives as long as the
/// process (see the module doc).
#[allow(non_snake_case)]
pub extern "C" fn mgpuStreamDestroy(_stream: CUstream) {}

/// `void mgpuLaunchKernel(ptr function, i64 gridX, i64 gridY, i64 gridZ, i64 blockX,
/// i64 blockY, i64 blockZ, i32 smem, ptr stream, ptr params, ptr extra, i64 paramsCount)`.
/// `params` is an array of pointers, one to each argument's value; the driver knows the
/// count from the kernel, so `paramsCount` is not used.
///
/// # Safety
/// `function` came from `mgpuModuleGetFunction`, and `params` (or `extra`) matches the
/// kernel's parameters, as `cuLaunchKernel` requires.
#[allow(non_snake_case, clippy::too_many_arguments)]
pub unsafe extern "C" fn mgpuLaunchKernel(
    function: CUfunction,
    gridX: i64,
    gridY: i64,
    gridZ: i64,
    blockX: i64,
    blockY: i64,
    blockZ: i64,
    smem: i32,
    stream: CUstream,
    params: *mut *mut c_void,
    extra: *mut *mut c_void,
    _paramsCount: i64,
) {
    guarded((), |cuda| {
        if [gridX, gridY, gridZ, blockX, blockY, blockZ].contains(&0) {
            // An empty iteration space (a loop over a zero-sized dimension): nothing to run,
            // and the driver rejects zero-sized launches.
            return Ok(());
        }
        let what = describe_launch(function, [gridX, gridY, gridZ], [blockX, blockY, blockZ]);
        let bad = CudaError::Internal;
        let launch = Launch {
            function,
            grid: dims([gridX, gridY, gridZ]).ok_or_else(|| bad(format!("bad grid in the launch of {what}")))?,
            block: dims([blockX, blockY, blockZ]).ok_or_else(|| bad(format!("bad block in the launch of {what}")))?,
            shared_bytes: u32::try_from(smem).map_err(|_| bad(format!("bad shared memory size {smem} for {what}")))?,
            stream,
        };
        let label = || kernel_label([gridX, gridY, gridZ], [blockX, blockY, blockZ]);
        // SAFETY: forwarded from this function's contract.
        let result = crate::timing::timed(cuda, stream, label, || unsafe { cuda.launch_raw(&launch, params, extra) });
        crate::stats::bump(crate::stats::Counter::Launch);
        result.map_err(|e| e.with_detail(&what))?;
        *lock(&LAST_LAUNCH) = what;
        Ok(())
    })
}

/// `kernel NAME, grid [x, y, z], block [x, y, z]`, for error messages.
fn describe_launch(function: CUfunction, grid: [i64; 3], block: [i64; 3]) -> String {
    let names = lock(&KERNEL_NAMES);
    let name = names.get(&(function as usize)).map_or("<unknown>", String::as_str);
    format!("kernel {name}, grid {grid:?}, block {block:?}")
}

/// `launch N (grid [x, y, z], block [x, y, z])` for timing reports, `N` counting the
/// launches since the last `timing::take` (one run): generated kernels share one name,
/// and a train step launches each once, in the order `--emit ptx` lists them.
fn kernel_label(grid: [i64; 3], block: [i64; 3]) -> String {
    format!("launch {} (grid {grid:?}, block {block:?})", crate::timing::next_launch())
}

/// Launch dimensions as the driver takes them: each in `1..=u32::MAX`.
fn dims(values: [i64; 3]) -> Option<[u32; 3]> {
    let [x, y, z] = values.map(|v| u32::try_from(v).ok().filter(|&v| v > 0));
    Some([x?, y?, z?])
}

/// `ptr mgpuMemAlloc(i64 bytes, ptr stream, i1 isHostShared)`: managed memory, whatever
/// `isHostShared` says (taken as a byte, since an `i1` argument's upper bits are undefined).
#[allow(non_snake_case)]
pub extern "C" fn mgpuMemAlloc(bytes: i64, _stream: CUstream, _isHostShared: u8) -> *mut c_void {
    allocate(bytes)
}

/// `void mgpuMemFree(ptr p, ptr stream)`: returns `p` to the cache.
///
/// # Safety
/// `p` came from `mgpuMemAlloc` or `_mlir_memref_to_llvm_alloc` and is not used afterwards.
#[allow(non_snake_case)]
pub unsafe extern "C" fn mgpuMemFree(p: *mut c_void, _stream: CUstream) {
    deallocate(p)
}

/// `void mgpuMemcpy(ptr dst, ptr src, i64 bytes, ptr stream)`: queued on `stream`; host
/// and device addresses alike (unified addressing).
///
/// # Safety
/// `bytes` are readable at `src` and writable at `dst` until the stream is synchronised.
#[allow(non_snake_case)]
pub unsafe extern "C" fn mgpuMemcpy(dst: *mut c_void, src: *const c_void, bytes: i64, stream: CUstream) {
    guarded((), |cuda| {
        let bytes = usize::try_from(bytes).map_err(|_| CudaError::Internal(format!("mgpuMemcpy: bad size {bytes}")))?;
        if bytes == 0 {
            return Ok(());
        }
        cuda.memcpy_async(dst as usize as u64, src as usize as u64, bytes, stream)
    })
}

/// `void mgpuMemset32(ptr dst, i32 value, i64 count, ptr stream)`: fills `count` 32-bit
/// words, queued on `stream` (`cuMemsetD32Async`, which works on managed memory too).
///
/// # Safety
/// `4 * count` bytes are writable at `dst`, which is 4-byte aligned.
#[allow(non_snake_case)]
pub unsafe extern "C" fn mgpuMemset32(dst: *mut c_void, value: i32, count: i64, stream: CUstream) {
    guarded((), |cuda| {
        let count =
            usize::try_from(count).map_err(|_| CudaError::Internal(format!("mgpuMemset32: bad count {count}")))?;
        if count == 0 {
            return Ok(());
        }
        cuda.memset32_async(dst as usize as u64, value as u32, count, stream)
    })
}

/// `ptr _mlir_memref_to_llvm_alloc(i64 bytes)`: managed memory from the cache; host
/// memory after an error (see the module doc).
#[allow(non_snake_case)]
pub extern "C" fn _mlir_memref_to_llvm_alloc(bytes: i64) -> *mut c_void {
    allocate(bytes)
}

/// `void _mlir_memref_to_llvm_free(ptr p)`: returns `p` to the cache.
///
/// # Safety
/// `p` came from `mgpuMemAlloc` or `_mlir_memref_to_llvm_alloc` and is not used afterwards.
#[allow(non_snake_case)]
pub unsafe extern "C" fn _mlir_memref_to_llvm_free(p: *mut c_void) {
    deallocate(p)
}

fn allocate(bytes: i64) -> *mut c_void {
    let bytes = usize::try_from(bytes).unwrap_or_else(|_| {
        record(CudaError::Internal(format!("allocation of {bytes} bytes")));
        0
    });
    let gpu = guarded(None, |_| pool::alloc(bytes).map(Some));
    gpu.unwrap_or_else(|| pool::alloc_host(bytes)).cast()
}

fn deallocate(p: *mut c_void) {
    if let Err(error) = pool::free(p.cast()) {
        record(error);
    }
}
