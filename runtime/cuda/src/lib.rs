//! The GPU runtime of the mlir-gpu backend: CUDA through the driver API, opened at run time.
//!
//! Contract:
//! - Building and testing need no CUDA toolkit and no driver: `libcuda.so.1` is opened with
//!   `dlopen` on the first call to [`cuda`]. Without it, [`cuda`] returns a [`CudaError`]
//!   that reads as one line (`no CUDA driver (...)`, `CUDA: no device (...)`,
//!   `CUDA error NAME (text) in cuXxx`; [`CudaError::is_no_gpu`] tells), and nothing panics.
//! - The crate reads no environment variable: its options ([`CudaOptions`]: the device,
//!   where cuBLAS is, products and copies on the host) are set once by its user with
//!   [`configure`] before CUDA starts (the `archc` CLI maps its environment variables to
//!   them), else they are the defaults.
//! - [`cuda`] initialises the process-wide state once (driver, `cuInit`, the device the
//!   options choose, else device 0, its primary context) and makes that context current on
//!   every thread that calls it.
//! - [`mgpu`] implements MLIR's GPU runtime ABI (`mgpu*`, `_mlir_memref_to_llvm_alloc/free`)
//!   for JIT-compiled host code; [`symbols`] lists them by name for the JIT. Those functions
//!   cannot return errors: the first one is kept, later GPU calls become no-ops, and the
//!   caller collects it with [`take_error`] after each run.
//! - [`blas`] and [`copy`] replace CPU runtime functions of the generated host code
//!   (`_mlir_ciface_archc_matmul_*`, `_mlir_ciface_archc_bmm_*`, `memrefCopy`) with GPU
//!   versions (cuBLAS, opened at run time, and driver copies) on the same stream, so that
//!   the host never touches managed memory between kernels; [`symbols`] lists them too.
//! - [`checks`]: the records of refusals GPU code computes (an index out of range), copied
//!   to page-locked memory on the stream and read by the runner after the run.
//! - Every `CUresult` is checked; errors are [`CudaError`]s naming the failing driver call.

pub mod blas;
pub mod checks;
pub mod copy;
mod driver;
mod error;
pub mod mgpu;
mod options;
mod pool;
pub mod stats;
pub mod timing;

use std::cell::Cell;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr::null_mut;
use std::sync::OnceLock;

pub use blas::{gemm_backend, MemRef};
pub use copy::UnrankedMemRef;
use driver::{CUcontext, CUdevice, CUdeviceptr, CUjitOption, Driver};
pub use driver::{CUfunction, CUmodule, CUstream};
pub use error::CudaError;
pub use mgpu::{set_sync_launches, take_error};
pub use options::{configure, options, CudaOptions, DeviceChoice};
pub use pool::{begin_capture, end_capture, set_device_memory, trim_cache, Owned};

/// Every runtime symbol of this crate with its address, for the JIT's symbol map: the
/// `mgpu*` ABI and allocation functions, the matrix products and `memrefCopy`.
pub fn symbols() -> Vec<(&'static str, *mut ())> {
    let mut symbols = mgpu::symbols();
    symbols.extend(blas::symbols());
    symbols.extend(copy::symbols());
    symbols.extend(checks::symbols());
    symbols
}

/// The runtime's one stream: the one generated code's launches, products and copies use.
pub fn runtime_stream() -> Result<Stream, CudaError> {
    let cuda = cuda()?;
    mgpu::stream(cuda).map(Stream)
}

/// The process-wide CUDA state: the driver, one device and its primary context.
pub struct Cuda {
    pub(crate) driver: Driver,
    device: CUdevice,
    context: CUcontext,
    name: String,
    capability: (i32, i32),
    total_mem: usize,
    driver_version: i32,
}

// SAFETY: the driver API is thread-safe, and a context handle may be made current and used
// on any thread; `Cuda` is never mutated after initialisation.
unsafe impl Send for Cuda {}
// SAFETY: as above; all methods take `&self` and only pass the handles to the driver.
unsafe impl Sync for Cuda {}

static CUDA: OnceLock<Result<Cuda, CudaError>> = OnceLock::new();

thread_local! {
    /// Whether this thread has made the primary context current.
    static CONTEXT_CURRENT: Cell<bool> = const { Cell::new(false) };
}

/// The CUDA state, initialised on first use, with its context current on this thread.
pub fn cuda() -> Result<&'static Cuda, CudaError> {
    let cuda = CUDA.get_or_init(Cuda::init).as_ref().map_err(CudaError::clone)?;
    cuda.make_current()?;
    Ok(cuda)
}

impl Cuda {
    fn init() -> Result<Cuda, CudaError> {
        let driver = Driver::load()?;
        // SAFETY: cuInit takes flags, which must be 0.
        driver.check(unsafe { (driver.cu_init)(0) }, "cuInit")?;
        let device = pick_device(&driver, options().device.as_ref())?;
        let mut context = null_mut();
        // SAFETY: `context` is a valid out-pointer; `device` came from cuDeviceGet.
        let status = unsafe { (driver.cu_device_primary_ctx_retain)(&mut context, device) };
        driver.check(status, "cuDevicePrimaryCtxRetain")?;
        let (name, capability) = (device_name(&driver, device)?, compute_capability(&driver, device)?);
        let (total_mem, driver_version) = (total_mem(&driver, device)?, driver_version(&driver)?);
        Ok(Cuda { driver, device, context, name, capability, total_mem, driver_version })
    }

    fn make_current(&self) -> Result<(), CudaError> {
        if CONTEXT_CURRENT.with(Cell::get) {
            return Ok(());
        }
        // SAFETY: `context` is the retained primary context, valid for the process's life.
        self.check(unsafe { (self.driver.cu_ctx_set_current)(self.context) }, "cuCtxSetCurrent")?;
        CONTEXT_CURRENT.with(|flag| flag.set(true));
        Ok(())
    }

    pub(crate) fn check(&self, status: c_int, call: &'static str) -> Result<(), CudaError> {
        self.driver.check(status, call)
    }

    /// The device's name, e.g. `NVIDIA H100 80GB HBM3`.
    pub fn device_name(&self) -> &str {
        &self.name
    }

    /// The device's ordinal (0 unless [`CudaOptions::device`] says otherwise).
    pub fn device_index(&self) -> i32 {
        self.device
    }

    /// `(major, minor)`, e.g. `(9, 0)` for an H100.
    pub fn compute_capability(&self) -> (i32, i32) {
        self.capability
    }

    /// The device's memory in bytes.
    pub fn total_mem(&self) -> usize {
        self.total_mem
    }

    /// The driver's CUDA version as `1000 * major + 10 * minor`, e.g. 13000.
    pub fn driver_version(&self) -> i32 {
        self.driver_version
    }

    /// Managed (unified) memory, usable by host code and kernels alike. A request for 0
    /// bytes allocates 1, so every successful result is a real, freeable allocation.
    pub fn alloc_managed(&self, bytes: usize) -> Result<*mut u8, CudaError> {
        let mut address: CUdeviceptr = 0;
        let flags = driver::CU_MEM_ATTACH_GLOBAL;
        // SAFETY: `address` is a valid out-pointer.
        let status = unsafe { (self.driver.cu_mem_alloc_managed)(&mut address, bytes.max(1), flags) };
        self.check(status, "cuMemAllocManaged").map_err(|e| e.with_detail(format_args!("{bytes} bytes")))?;
        Ok(address as usize as *mut u8)
    }

    /// Device memory, usable only by kernels and copies. 0 bytes allocates 1, as above.
    pub fn alloc_device(&self, bytes: usize) -> Result<*mut u8, CudaError> {
        let mut address: CUdeviceptr = 0;
        // SAFETY: `address` is a valid out-pointer.
        let status = unsafe { (self.driver.cu_mem_alloc)(&mut address, bytes.max(1)) };
        self.check(status, "cuMemAlloc").map_err(|e| e.with_detail(format_args!("{bytes} bytes")))?;
        Ok(address as usize as *mut u8)
    }

    /// Frees memory from `alloc_managed` or `alloc_device`; null is ignored. The driver
    /// synchronises the device first.
    pub fn free(&self, ptr: *mut u8) -> Result<(), CudaError> {
        if ptr.is_null() {
            return Ok(());
        }
        // SAFETY: the driver validates the address and reports unknown ones as errors.
        self.check(unsafe { (self.driver.cu_mem_free)(ptr as usize as CUdeviceptr) }, "cuMemFree")
    }

    /// Waits for all work on the device (`cuCtxSynchronize`); reports asynchronous errors.
    pub fn synchronize(&self) -> Result<(), CudaError> {
        // SAFETY: no arguments; the context is current on this thread.
        self.check(unsafe { (self.driver.cu_ctx_synchronize)() }, "cuCtxSynchronize")
    }

    /// Copies `bytes` between any two addresses the driver can see (host or device) and
    /// waits for the copy.
    pub fn memcpy(&self, dst: *mut u8, src: *const u8, bytes: usize) -> Result<(), CudaError> {
        // SAFETY: with unified addressing the driver infers where each pointer lives; the
        // caller promises `bytes` readable at `src` and writable at `dst`.
        let status = unsafe { (self.driver.cu_memcpy)(dst as usize as u64, src as usize as u64, bytes) };
        self.check(status, "cuMemcpy")
    }

    /// Page-locks host memory and maps it for the device, so kernels can read it.
    /// Memory registered already counts as success.
    pub fn register_host(&self, ptr: *mut u8, bytes: usize) -> Result<(), CudaError> {
        let flags = driver::CU_MEMHOSTREGISTER_PORTABLE | driver::CU_MEMHOSTREGISTER_DEVICEMAP;
        // SAFETY: the driver checks that the range is mapped host memory.
        let status = unsafe { (self.driver.cu_mem_host_register)(ptr.cast(), bytes, flags) };
        if status == driver::CUDA_ERROR_HOST_MEMORY_ALREADY_REGISTERED {
            return Ok(());
        }
        self.check(status, "cuMemHostRegister")
    }

    /// Undoes `register_host` for the range starting at `ptr`.
    pub fn unregister_host(&self, ptr: *mut u8) -> Result<(), CudaError> {
        // SAFETY: the driver reports pointers it did not register as errors.
        self.check(unsafe { (self.driver.cu_mem_host_unregister)(ptr.cast()) }, "cuMemHostUnregister")
    }

    /// JIT-compiles PTX text into a module; a failure carries the JIT's error log.
    pub fn load_ptx(&'static self, ptx: &str) -> Result<Module, CudaError> {
        let text = CString::new(ptx).map_err(|_| CudaError::Internal("PTX text contains a NUL byte".into()))?;
        let raw = self.load_image(text.as_ptr().cast(), &[])?;
        Ok(Module { cuda: self, raw })
    }

    /// Launches `function` on `stream`. Returns once queued:
    /// faults in the kernel surface at the next synchronisation.
    ///
    /// # Safety
    /// `params` must hold one pointer per kernel parameter, each to a value of that
    /// parameter's type, and every address those values hold must be valid for the kernel.
    pub unsafe fn launch(
        &self,
        function: Function,
        grid: [u32; 3],
        block: [u32; 3],
        shared_bytes: u32,
        stream: Stream,
        params: &mut [*mut c_void],
    ) -> Result<(), CudaError> {
        let launch = Launch { function: function.0, grid, block, shared_bytes, stream: stream.0 };
        // SAFETY: forwarded from this function's contract.
        unsafe { self.launch_raw(&launch, params.as_mut_ptr(), null_mut()) }
    }

    /// `cuLaunchKernel` with MLIR's raw parameter and `extra` arrays.
    ///
    /// # Safety
    /// As `launch`; `params` (or `extra`) must be laid out as `cuLaunchKernel` requires.
    pub(crate) unsafe fn launch_raw(
        &self,
        launch: &Launch,
        params: *mut *mut c_void,
        extra: *mut *mut c_void,
    ) -> Result<(), CudaError> {
        let ([gx, gy, gz], [bx, by, bz]) = (launch.grid, launch.block);
        let (function, shared, stream) = (launch.function, launch.shared_bytes, launch.stream);
        // SAFETY: the caller vouches for the function handle and the parameters.
        let status =
            unsafe { (self.driver.cu_launch_kernel)(function, gx, gy, gz, bx, by, bz, shared, stream, params, extra) };
        self.check(status, "cuLaunchKernel")
    }

    /// Loads a PTX (NUL-terminated), cubin or fatbin image with extra JIT `options`,
    /// always asking for the JIT's error log.
    pub(crate) fn load_image(
        &self,
        image: *const c_void,
        options: &[(CUjitOption, *mut c_void)],
    ) -> Result<CUmodule, CudaError> {
        let mut log = vec![0u8; 16 * 1024];
        let mut keys = vec![driver::CU_JIT_ERROR_LOG_BUFFER, driver::CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES];
        let mut values: Vec<*mut c_void> = vec![log.as_mut_ptr().cast(), log.len() as *mut c_void];
        keys.extend(options.iter().map(|&(key, _)| key));
        values.extend(options.iter().map(|&(_, value)| value));
        let mut module = null_mut();
        // SAFETY: `keys` and `values` have equal lengths; the log buffer outlives the call
        // and its size is the one passed; the caller vouches for `image`.
        let status = unsafe {
            (self.driver.cu_module_load_data_ex)(
                &mut module,
                image,
                keys.len() as u32,
                keys.as_mut_ptr(),
                values.as_mut_ptr(),
            )
        };
        self.check(status, "cuModuleLoadDataEx").map_err(|e| with_log(e, &log))?;
        Ok(module)
    }

    pub(crate) fn unload(&self, module: CUmodule) -> Result<(), CudaError> {
        // SAFETY: the driver rejects handles it does not know.
        self.check(unsafe { (self.driver.cu_module_unload)(module) }, "cuModuleUnload")
    }

    pub(crate) fn get_function(&self, module: CUmodule, name: &CStr) -> Result<CUfunction, CudaError> {
        let mut function = null_mut();
        // SAFETY: `function` is a valid out-pointer and `name` is NUL-terminated.
        let status = unsafe { (self.driver.cu_module_get_function)(&mut function, module, name.as_ptr()) };
        self.check(status, "cuModuleGetFunction")
            .map_err(|e| e.with_detail(format_args!("kernel {}", name.to_string_lossy())))?;
        Ok(function)
    }

    /// A new stream (flags 0: it synchronises with the legacy default stream).
    pub fn create_stream(&self) -> Result<Stream, CudaError> {
        self.create_stream_raw().map(Stream)
    }

    /// Waits for the work queued on `stream`; reports its asynchronous errors.
    pub fn stream_synchronize(&self, stream: Stream) -> Result<(), CudaError> {
        self.stream_synchronize_raw(stream.0)
    }

    /// Destroys a stream from `create_stream` once its queued work is done.
    pub fn destroy_stream(&self, stream: Stream) -> Result<(), CudaError> {
        if stream.0.is_null() {
            return Ok(());
        }
        // SAFETY: `Stream`s are made only by `create_stream` (or are the default stream).
        self.check(unsafe { (self.driver.cu_stream_destroy)(stream.0) }, "cuStreamDestroy")
    }

    pub(crate) fn create_stream_raw(&self) -> Result<CUstream, CudaError> {
        let mut stream = null_mut();
        // SAFETY: `stream` is a valid out-pointer; flags 0 is CU_STREAM_DEFAULT.
        self.check(unsafe { (self.driver.cu_stream_create)(&mut stream, 0) }, "cuStreamCreate")?;
        Ok(stream)
    }

    pub(crate) fn stream_synchronize_raw(&self, stream: CUstream) -> Result<(), CudaError> {
        // SAFETY: `stream` is null or a handle from cuStreamCreate (the callers' promise).
        self.check(unsafe { (self.driver.cu_stream_synchronize)(stream) }, "cuStreamSynchronize")
    }

    /// Queues a copy of `bytes` on `stream` (host or device addresses alike).
    pub(crate) fn memcpy_async(&self, dst: u64, src: u64, bytes: usize, stream: CUstream) -> Result<(), CudaError> {
        // SAFETY: the caller (generated code) vouches for both ranges.
        self.check(unsafe { (self.driver.cu_memcpy_async)(dst, src, bytes, stream) }, "cuMemcpyAsync")
    }

    /// Queues a 2-D copy described by `copy` on `stream`.
    pub(crate) fn memcpy_2d_async(&self, copy: &driver::CudaMemcpy2D, stream: CUstream) -> Result<(), CudaError> {
        // SAFETY: `copy` is a complete CUDA_MEMCPY2D; the caller vouches for its ranges.
        self.check(unsafe { (self.driver.cu_memcpy_2d_async)(copy, stream) }, "cuMemcpy2DAsync")
    }

    /// Queues filling `height` rows of `width` 32-bit words, `pitch` bytes apart, at `dst`
    /// with `value` on `stream`.
    pub(crate) fn memset2d32_async(
        &self,
        dst: u64,
        pitch: usize,
        value: u32,
        width: usize,
        height: usize,
        stream: CUstream,
    ) -> Result<(), CudaError> {
        // SAFETY: the caller vouches for the rows.
        let status = unsafe { (self.driver.cu_memset_d2d32_async)(dst, pitch, value, width, height, stream) };
        self.check(status, "cuMemsetD2D32Async")
    }

    /// Whether the driver knows `address` (device, managed or registered host memory), so
    /// that kernels can use it; plain pageable host memory is not known.
    pub(crate) fn knows_address(&self, address: u64) -> bool {
        self.pointer_attribute(address, driver::CU_POINTER_ATTRIBUTE_MEMORY_TYPE).is_some_and(|kind| kind != 0)
    }

    /// Whether the host may dereference `address`: plain host memory (unknown to the
    /// driver), registered or page-locked host memory, or managed memory. Device memory
    /// (`alloc_device`, the pool's device blocks) is the one kind it may not.
    pub fn host_accessible(&self, address: u64) -> bool {
        let Some(kind) = self.pointer_attribute(address, driver::CU_POINTER_ATTRIBUTE_MEMORY_TYPE) else {
            return true;
        };
        kind == 0
            || kind == driver::CU_MEMORYTYPE_HOST
            || self.pointer_attribute(address, driver::CU_POINTER_ATTRIBUTE_IS_MANAGED).is_some_and(|m| m != 0)
    }

    /// A 32-bit pointer attribute of `address`, or `None` when the driver does not know it.
    fn pointer_attribute(&self, address: u64, attribute: c_int) -> Option<u32> {
        let mut value: std::ffi::c_uint = 0;
        // SAFETY: `value` is a valid out-pointer for the 32-bit attributes asked for here;
        // unknown addresses are reported as errors, not faults.
        let status =
            unsafe { (self.driver.cu_pointer_get_attribute)((&mut value as *mut u32).cast(), attribute, address) };
        (status == driver::CUDA_SUCCESS).then_some(value)
    }

    /// Page-locked host memory of `bytes` (at least 1), for fast asynchronous copies.
    pub fn alloc_pinned(&self, bytes: usize) -> Result<*mut u8, CudaError> {
        let mut ptr = null_mut();
        // SAFETY: `ptr` is a valid out-pointer.
        let status = unsafe { (self.driver.cu_mem_alloc_host)(&mut ptr, bytes.max(1)) };
        self.check(status, "cuMemAllocHost").map_err(|e| e.with_detail(format_args!("{bytes} bytes")))?;
        Ok(ptr.cast())
    }

    /// Frees memory from `alloc_pinned`; null is ignored.
    pub fn free_pinned(&self, ptr: *mut u8) -> Result<(), CudaError> {
        if ptr.is_null() {
            return Ok(());
        }
        // SAFETY: the driver reports pointers it did not allocate as errors.
        self.check(unsafe { (self.driver.cu_mem_free_host)(ptr.cast()) }, "cuMemFreeHost")
    }

    /// Queues a copy of `bytes` from host memory at `src` to the device at `dst`.
    ///
    /// # Safety
    /// `bytes` are readable at `src` until the stream reaches the copy, and writable at
    /// `dst` (device or managed memory).
    pub unsafe fn copy_to_device(
        &self,
        dst: *mut u8,
        src: *const u8,
        bytes: usize,
        stream: Stream,
    ) -> Result<(), CudaError> {
        // SAFETY: forwarded from this function's contract.
        let status = unsafe { (self.driver.cu_memcpy_htod_async)(dst as usize as u64, src.cast(), bytes, stream.0) };
        stats::add(stats::Counter::Uploaded, bytes as u64);
        self.check(status, "cuMemcpyHtoDAsync")
    }

    /// Queues a copy of `bytes` between two device buffers.
    ///
    /// # Safety
    /// `bytes` are readable at `src` and writable at `dst` (device or managed memory)
    /// until the stream reaches the copy, and the ranges do not overlap.
    pub unsafe fn copy_on_device(
        &self,
        dst: *mut u8,
        src: *const u8,
        bytes: usize,
        stream: Stream,
    ) -> Result<(), CudaError> {
        // SAFETY: forwarded from this function's contract.
        let status =
            unsafe { (self.driver.cu_memcpy_async)(dst as usize as u64, src as usize as u64, bytes, stream.0) };
        self.check(status, "cuMemcpyAsync")
    }

    /// Queues a copy of `bytes` from the device at `src` to host memory at `dst`.
    ///
    /// # Safety
    /// `bytes` are readable at `src` (device or managed memory) and writable at `dst`
    /// until the stream reaches the copy.
    pub unsafe fn copy_to_host(
        &self,
        dst: *mut u8,
        src: *const u8,
        bytes: usize,
        stream: Stream,
    ) -> Result<(), CudaError> {
        // SAFETY: forwarded from this function's contract.
        let status = unsafe { (self.driver.cu_memcpy_dtoh_async)(dst.cast(), src as usize as u64, bytes, stream.0) };
        stats::add(stats::Counter::Downloaded, bytes as u64);
        self.check(status, "cuMemcpyDtoHAsync")
    }

    /// Starts capturing `stream`: work queued on it is recorded, not run, until
    /// [`Cuda::end_capture`]. Relaxed mode: other CUDA calls stay allowed.
    pub fn begin_capture(&self, stream: Stream) -> Result<(), CudaError> {
        let mode = driver::CU_STREAM_CAPTURE_MODE_RELAXED;
        // SAFETY: the driver validates the stream handle.
        self.check(unsafe { (self.driver.cu_stream_begin_capture)(stream.0, mode) }, "cuStreamBeginCapture")?;
        timing::set_capturing(true);
        Ok(())
    }

    /// Ends the capture of `stream` and instantiates what it recorded.
    pub fn end_capture(&'static self, stream: Stream) -> Result<Graph, CudaError> {
        let mut graph = null_mut();
        timing::set_capturing(false);
        // SAFETY: `graph` is a valid out-pointer; the driver validates the stream.
        self.check(unsafe { (self.driver.cu_stream_end_capture)(stream.0, &mut graph) }, "cuStreamEndCapture")?;
        let mut exec = null_mut();
        // SAFETY: `exec` is a valid out-pointer and `graph` came from the capture.
        let status = unsafe { (self.driver.cu_graph_instantiate)(&mut exec, graph, 0) };
        let instantiated = self.check(status, "cuGraphInstantiateWithFlags");
        // SAFETY: the instantiated graph does not refer to its template.
        let destroyed = self.check(unsafe { (self.driver.cu_graph_destroy)(graph) }, "cuGraphDestroy");
        instantiated.and(destroyed)?;
        Ok(Graph { cuda: self, exec })
    }

    /// Queues filling `count` 32-bit words at `dst` with `value` on `stream`.
    pub(crate) fn memset32_async(&self, dst: u64, value: u32, count: usize, stream: CUstream) -> Result<(), CudaError> {
        // SAFETY: the caller (generated code) vouches for the range.
        self.check(unsafe { (self.driver.cu_memset_d32_async)(dst, value, count, stream) }, "cuMemsetD32Async")
    }
}

/// Appends the JIT's error log, if it wrote one, to `error`, on one line.
fn with_log(error: CudaError, log: &[u8]) -> CudaError {
    let end = log.iter().position(|&b| b == 0).unwrap_or(log.len());
    let text = String::from_utf8_lossy(&log[..end]);
    let lines: Vec<&str> = text.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
    if lines.is_empty() {
        return error;
    }
    error.append(&format!("; JIT log: {}", lines.join(" | ")))
}

/// One kernel launch's configuration.
pub(crate) struct Launch {
    pub function: CUfunction,
    pub grid: [u32; 3],
    pub block: [u32; 3],
    pub shared_bytes: u32,
    pub stream: CUstream,
}

/// A loaded module; unloaded on drop.
pub struct Module {
    cuda: &'static Cuda,
    raw: CUmodule,
}

// SAFETY: module handles belong to the context, not to a thread.
unsafe impl Send for Module {}
// SAFETY: as above; `Module` only passes its handle to the thread-safe driver.
unsafe impl Sync for Module {}

impl Module {
    /// The kernel called `name` (its PTX `.entry` name).
    pub fn function(&self, name: &str) -> Result<Function, CudaError> {
        let name = CString::new(name).map_err(|_| CudaError::Internal("kernel name contains a NUL byte".into()))?;
        self.cuda.get_function(self.raw, &name).map(Function)
    }

    /// The raw `CUmodule` handle.
    pub fn raw(&self) -> CUmodule {
        self.raw
    }
}

impl Drop for Module {
    fn drop(&mut self) {
        // An unload error leaves nothing to clean up, so it is dropped here.
        let _ = self.cuda.unload(self.raw);
    }
}

/// A kernel handle; valid while its `Module` is loaded.
#[derive(Clone, Copy, Debug)]
pub struct Function(CUfunction);

// SAFETY: function handles belong to the context, not to a thread.
unsafe impl Send for Function {}
// SAFETY: as above.
unsafe impl Sync for Function {}

impl Function {
    /// The raw `CUfunction` handle.
    pub fn raw(&self) -> CUfunction {
        self.0
    }
}

/// A stream from `Cuda::create_stream`, or `Stream::DEFAULT` (the legacy default stream).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stream(CUstream);

// SAFETY: stream handles belong to the context, not to a thread.
unsafe impl Send for Stream {}
// SAFETY: as above.
unsafe impl Sync for Stream {}

impl Stream {
    /// The legacy default stream (the null handle).
    pub const DEFAULT: Stream = Stream(std::ptr::null_mut());

    /// The raw `CUstream` handle.
    pub fn raw(&self) -> CUstream {
        self.0
    }
}

/// An instantiated CUDA graph (from [`Cuda::end_capture`]); destroyed on drop.
pub struct Graph {
    cuda: &'static Cuda,
    exec: driver::CUgraphExec,
}

// SAFETY: graph handles belong to the context, not to a thread.
unsafe impl Send for Graph {}
// SAFETY: as above; `Graph` only passes its handle to the thread-safe driver.
unsafe impl Sync for Graph {}

impl Graph {
    /// Queues one replay of the graph on `stream`.
    pub fn launch(&self, stream: Stream) -> Result<(), CudaError> {
        timing::timed(
            self.cuda,
            stream.0,
            || "graph replay".to_string(),
            || {
                // SAFETY: `exec` is a live instantiated graph.
                self.cuda.check(unsafe { (self.cuda.driver.cu_graph_launch)(self.exec, stream.0) }, "cuGraphLaunch")
            },
        )
    }
}

impl Drop for Graph {
    fn drop(&mut self) {
        // Nothing is left to clean up after a failed destroy, so its error is dropped.
        // SAFETY: `exec` is a live instantiated graph, destroyed once.
        let _ = unsafe { (self.cuda.driver.cu_graph_exec_destroy)(self.exec) };
    }
}

/// Device 0, or the one `choice` numbers.
fn pick_device(driver: &Driver, choice: Option<&DeviceChoice>) -> Result<CUdevice, CudaError> {
    let mut count = 0;
    // SAFETY: `count` is a valid out-pointer.
    driver.check(unsafe { (driver.cu_device_get_count)(&mut count) }, "cuDeviceGetCount")?;
    if count == 0 {
        return Err(CudaError::NoDevice);
    }
    let index = match choice {
        Some(choice) => choice
            .index
            .filter(|i| (0..count).contains(i))
            .ok_or_else(|| CudaError::NoSuchDevice { setting: choice.setting.clone(), count })?,
        None => 0,
    };
    let mut device = 0;
    // SAFETY: `device` is a valid out-pointer and `index` is below the device count.
    driver.check(unsafe { (driver.cu_device_get)(&mut device, index) }, "cuDeviceGet")?;
    Ok(device)
}

fn device_name(driver: &Driver, device: CUdevice) -> Result<String, CudaError> {
    let mut name = [0 as c_char; 256];
    // SAFETY: the buffer holds `name.len()` bytes; the driver NUL-terminates within it.
    let status = unsafe { (driver.cu_device_get_name)(name.as_mut_ptr(), name.len() as c_int, device) };
    driver.check(status, "cuDeviceGetName")?;
    // SAFETY: NUL-terminated within the buffer (checked call above).
    Ok(unsafe { CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned())
}

fn compute_capability(driver: &Driver, device: CUdevice) -> Result<(i32, i32), CudaError> {
    let major = attribute(driver, device, driver::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR)?;
    let minor = attribute(driver, device, driver::CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR)?;
    Ok((major, minor))
}

fn attribute(driver: &Driver, device: CUdevice, attribute: c_int) -> Result<i32, CudaError> {
    let mut value = 0;
    // SAFETY: `value` is a valid out-pointer.
    let status = unsafe { (driver.cu_device_get_attribute)(&mut value, attribute, device) };
    driver.check(status, "cuDeviceGetAttribute")?;
    Ok(value)
}

fn total_mem(driver: &Driver, device: CUdevice) -> Result<usize, CudaError> {
    let mut bytes = 0;
    // SAFETY: `bytes` is a valid out-pointer.
    driver.check(unsafe { (driver.cu_device_total_mem)(&mut bytes, device) }, "cuDeviceTotalMem")?;
    Ok(bytes)
}

fn driver_version(driver: &Driver) -> Result<i32, CudaError> {
    let mut version = 0;
    // SAFETY: `version` is a valid out-pointer.
    driver.check(unsafe { (driver.cu_driver_get_version)(&mut version) }, "cuDriverGetVersion")?;
    Ok(version)
}
