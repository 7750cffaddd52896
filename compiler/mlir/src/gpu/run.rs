//! Running GPU host code however it was compiled (JIT-compiled by `jit`, or a shared
//! object of an ahead-of-time artifact): inputs copied into managed buffers, the entry
//! run, the first CUDA error the runtime recorded reported, outputs copied back;
//! parameter globals (host memory) registered with the driver so kernels can read them.
//! No LLVM needed.

use crate::abi::{data_ptr, output_tensors, param_descriptors, Descriptors};
use crate::emit::Module as Emitted;
use archc_cuda::copy::UnrankedMemRef;
use archc_cuda::Cuda;
use archc_runtime::tensor::Tensor;

/// Compiled host code: its symbols' addresses and its packed entry points.
pub trait HostCode {
    /// The address of a global or function (0 when missing).
    fn lookup(&self, symbol: &str) -> usize;
    /// Calls the packed entry point of `func` (`archc_entry`, `archc_set_params`).
    ///
    /// # Safety
    /// `args` must follow `func`'s packed convention (see [`crate::abi`]).
    unsafe fn invoke(&self, func: &str, args: &mut [*mut ()]) -> Result<(), String>;
}

/// The run-time state of one GPU module (see the module docs). Drop it before the code:
/// dropping unregisters the globals' pages, which the code's unloading frees.
pub struct GpuRunner {
    cuda: &'static Cuda,
    /// The start of the host range registered for the parameter globals.
    registered: Option<*mut u8>,
    /// Whether launches must synchronise: some compute, or a random fill, stays on the
    /// host and reads or writes buffers the GPU uses (or `ARCHC_GPU_ASYNC` is not set).
    sync_launches: bool,
    pub sig: Emitted,
}

/// Whether a module's launches must synchronise (see [`GpuRunner`]): host loads or
/// stores left after outlining, or random fills on the host.
pub fn needs_sync(host_ops: usize, module_text: &str) -> bool {
    host_ops > 0 || module_text.contains("archc_rand_fill")
}

/// Bytes per element of a dtype as compiled code stores it.
fn elem_bytes(dtype: archc_compiler::tir::DType) -> usize {
    use archc_compiler::tir::DType;
    match dtype {
        DType::F32 => 4,
        DType::F64 | DType::I64 | DType::C64 => 8,
        DType::Bool => 1,
    }
}

impl GpuRunner {
    /// Registers `code`'s parameter globals; `needs_sync` as [`needs_sync`] gave it.
    pub fn new(sig: Emitted, needs_sync: bool, code: &dyn HostCode) -> Result<GpuRunner, String> {
        let cuda = archc_cuda::cuda()?;
        take_error()?;
        let sync_launches = needs_sync || !async_enabled();
        let mut runner = GpuRunner { cuda, registered: None, sync_launches, sig };
        runner.registered = runner.register_globals(code)?;
        Ok(runner)
    }

    /// Makes the parameter globals (data in host memory) readable by kernels: the pages
    /// spanning all of them are registered with the driver at once (globals share pages,
    /// and a page can be registered only once).
    fn register_globals(&self, code: &dyn HostCode) -> Result<Option<*mut u8>, String> {
        const PAGE: usize = 4096;
        let (mut lo, mut hi) = (usize::MAX, 0usize);
        for ((name, (dt, shape)), global) in self.sig.params.iter().zip(&self.sig.param_globals) {
            let addr = code.lookup(global);
            if addr == 0 {
                return Err(format!("parameter @{name}: its global is missing from the compiled module"));
            }
            let bytes = shape.iter().product::<usize>().max(1) * elem_bytes(*dt);
            lo = lo.min(addr);
            hi = hi.max(addr + bytes);
        }
        if hi == 0 {
            return Ok(None);
        }
        let (lo, hi) = (lo / PAGE * PAGE, hi.div_ceil(PAGE) * PAGE);
        self.cuda.register_host(lo as *mut u8, hi - lo).map_err(|e| format!("parameters: {e}"))?;
        Ok(Some(lo as *mut u8))
    }

    /// Copies parameter values into the module's globals (in `sig.params` order).
    pub fn set_params(&self, code: &dyn HostCode, values: &[&Tensor]) -> Result<(), String> {
        let mut descs = param_descriptors(&self.sig, values)?;
        let mut args = descs.packed();
        // SAFETY: one descriptor per memref argument of archc_set_params, each over a live
        // tensor of the declared type; the setter only runs host code.
        unsafe { code.invoke("archc_set_params", &mut args) }?;
        take_error()
    }

    /// Runs the entry on `inputs` with random seed `seed`.
    pub fn run(&self, code: &dyn HostCode, inputs: &[&Tensor], seed: u64) -> Result<Vec<Tensor>, String> {
        let mut outputs = output_tensors(&self.sig, inputs)?;
        let buffers = Buffers::new(self.cuda, inputs.iter().copied().chain(outputs.iter()))?;
        let mut descs = Descriptors::default();
        for (t, &(ptr, _)) in inputs.iter().copied().chain(outputs.iter()).zip(&buffers.0) {
            descs.push_raw(ptr, t.shape());
        }
        let mut seed = seed as i64;
        let mut args = vec![&mut seed as *mut i64 as *mut ()];
        args.extend(descs.packed());
        archc_cuda::set_sync_launches(self.sync_launches);
        // SAFETY: the arguments follow archc_entry's C interface: the seed, then one
        // descriptor per memref over a managed buffer of the declared shape.
        let ran = unsafe { code.invoke("archc_entry", &mut args) };
        archc_cuda::set_sync_launches(true);
        ran?;
        // The runtime's first error names the launch or call that failed; a fault the
        // launches did not report shows at the final synchronisation.
        take_error()?;
        self.cuda.synchronize()?;
        let n_in = inputs.len();
        for (t, &(ptr, bytes)) in outputs.iter_mut().zip(&buffers.0[n_in..]) {
            // SAFETY: the buffer holds `bytes` bytes written by the entry; the tensor was
            // created with the same dtype and shape, so its storage has `bytes` bytes.
            unsafe { std::ptr::copy_nonoverlapping(ptr, data_ptr(t), bytes) };
        }
        Ok(outputs)
    }
}

impl Drop for GpuRunner {
    /// Unregisters the globals' pages before the code frees them (a stale registration
    /// would map reused addresses to the old pages).
    fn drop(&mut self) {
        if let Some(p) = self.registered.take() {
            let _ = self.cuda.unregister_host(p);
        }
    }
}

macro_rules! gpu_copy {
    ($name:ident, $bytes:expr) => {
        /// A routed `memref.copy` of one element type, on the GPU runtime's stream.
        ///
        /// # Safety
        /// As `archc_cuda::copy::memrefCopy`.
        unsafe extern "C" fn $name(src: *const UnrankedMemRef, dst: *const UnrankedMemRef) {
            unsafe { archc_cuda::copy::memrefCopy($bytes, src, dst) }
        }
    };
}

gpu_copy!(gpu_copy_4, 4);
gpu_copy!(gpu_copy_8, 8);
gpu_copy!(gpu_copy_1, 1);

/// The runtime symbols of GPU modules: the GPU copies, `archc-cuda`'s, and the CPU
/// runtime's for the names they do not provide (a symbol is defined once in the JIT).
pub fn gpu_symbols() -> Vec<(&'static str, *mut ())> {
    let mut symbols: Vec<(&'static str, *mut ())> = vec![
        ("_mlir_ciface_archc_copy_f32", gpu_copy_4 as *mut ()),
        ("_mlir_ciface_archc_copy_i32", gpu_copy_4 as *mut ()),
        ("_mlir_ciface_archc_copy_f64", gpu_copy_8 as *mut ()),
        ("_mlir_ciface_archc_copy_i64", gpu_copy_8 as *mut ()),
        ("_mlir_ciface_archc_copy_c64", gpu_copy_8 as *mut ()),
        ("_mlir_ciface_archc_copy_index", gpu_copy_8 as *mut ()),
        ("_mlir_ciface_archc_copy_i1", gpu_copy_1 as *mut ()),
    ];
    symbols.extend(archc_cuda::symbols());
    let cpu: Vec<_> = crate::rt::symbols().into_iter().filter(|(n, _)| symbols.iter().all(|(m, _)| m != n)).collect();
    symbols.extend(cpu);
    symbols
}

/// `ARCHC_GPU_ASYNC=1`: launches do not synchronise when no host code touches buffers
/// (the runtime's calls synchronise themselves). Off by default: a GPU run found an inline
/// host `memcpy` this missed (now routed through the runtime), and the fix has not run on
/// a GPU yet.
fn async_enabled() -> bool {
    std::env::var("ARCHC_GPU_ASYNC").is_ok_and(|v| v == "1")
}

/// The first CUDA error the runtime recorded, as an error.
pub fn take_error() -> Result<(), String> {
    match archc_cuda::take_error() {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Managed copies of tensors (pointer, bytes), freed on drop.
struct Buffers(Vec<(*mut u8, usize)>, &'static Cuda);

impl Buffers {
    fn new<'t>(cuda: &'static Cuda, tensors: impl Iterator<Item = &'t Tensor>) -> Result<Buffers, String> {
        let mut b = Buffers(Vec::new(), cuda);
        for t in tensors {
            let bytes = t.numel() * elem_bytes(t.dtype());
            let ptr = cuda.alloc_managed(bytes)?;
            // SAFETY: `ptr` has room for `bytes` bytes; the tensor's storage holds them.
            unsafe { std::ptr::copy_nonoverlapping(data_ptr(t), ptr, bytes) };
            b.0.push((ptr, bytes));
        }
        Ok(b)
    }
}

impl Drop for Buffers {
    fn drop(&mut self) {
        for &(p, _) in &self.0 {
            let _ = self.1.free(p);
        }
    }
}
