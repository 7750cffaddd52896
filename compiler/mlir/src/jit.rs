//! Compiling emitted MLIR with melior (LLVM/MLIR 22) and running it.
//!
//! Contract: [`Compiled::new`] parses the module text, verifies it (a failure is an
//! internal error naming MLIR's diagnostics: [`Error::Parse`], [`Error::Verify`]), runs
//! [`cpu_pipeline`] (bufferization, lowering to loops, the choice of parallel loops,
//! lowering to the LLVM dialect), and JIT-compiles it with the ExecutionEngine (LLVM -O2, [`opt_level`]),
//! registering the runtime symbols of [`crate::runtime::rt`], [`crate::runtime::alloc`] and [`crate::runtime::omp`].
//! [`Compiled::run`] passes tensors as memref descriptors (inputs read in place, outputs
//! written into fresh tensors). [`CpuOptions`] (set by the CLI) choose the parallel-loop
//! threshold, LLVM's level and IR dumps.

use crate::abi::{param_descriptors, Descriptors};
use crate::emit::{Module as Emitted, Shape};
use crate::error::{Error, Result};
use crate::passes::{pipelines, RunOptions};
use archc_compiler::tir::DType;
use archc_runtime::tensor::{Data, Tensor};
use melior::dialect::DialectRegistry;
use melior::ir::operation::OperationLike;
use melior::ir::Module;
use melior::utility::{register_all_dialects, register_all_llvm_translations, register_all_passes};
use melior::{Context, ExecutionEngine};
use std::cell::RefCell;
use std::mem::MaybeUninit;
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::{Once, RwLock};
use std::time::{Duration, Instant};

/// The CPU backend's options. The library reads no environment variable: the CLI sets
/// these once at start-up ([`configure`]) from `ARCHC_PAR_MIN`, `ARCHC_LLVM_OPT`,
/// `ARCHC_MLIR_DUMP` and `CC`; unset, they are the defaults.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuOptions {
    /// The work from which a loop runs on several cores (`None`: every loop on one core).
    pub parallel_min_work: Option<u64>,
    /// LLVM's optimisation level for the JIT (0-3).
    pub llvm_opt: usize,
    /// Writes the module before and after every MLIR pass into this folder (also for the
    /// GPU path's pipelines).
    pub dump: Option<PathBuf>,
    /// The C compiler that links artifacts' objects (`CC`, default `cc`).
    pub cc: String,
    /// Prints MLIR's per-pass time report of every pipeline run (`build --timings`).
    pub pass_timing: bool,
}

impl Default for CpuOptions {
    fn default() -> CpuOptions {
        CpuOptions {
            parallel_min_work: Some(crate::passes::parallel_loops::MIN_WORK),
            llvm_opt: 2,
            dump: None,
            cc: "cc".to_string(),
            pass_timing: false,
        }
    }
}

static CPU_OPTIONS: RwLock<Option<CpuOptions>> = RwLock::new(None);

/// Sets the process's CPU options (the CLI, at start-up; a test may set them again).
pub fn configure(options: CpuOptions) {
    *CPU_OPTIONS.write().unwrap_or_else(|e| e.into_inner()) = Some(options);
}

/// The process's CPU options: those [`configure`] set, else the defaults.
pub fn cpu_options() -> CpuOptions {
    CPU_OPTIONS.read().unwrap_or_else(|e| e.into_inner()).clone().unwrap_or_default()
}

/// The work from which a CPU loop runs on several cores ([`CpuOptions::parallel_min_work`]).
pub fn parallel_min_work() -> Option<u64> {
    cpu_options().parallel_min_work
}

/// How pipelines run: IR dumps into [`CpuOptions::dump`].
pub fn run_options() -> RunOptions {
    let options = cpu_options();
    RunOptions { dump: options.dump, pass_timing: options.pass_timing }
}

/// The CPU pipeline ([`pipelines::cpu`]) on `module`.
pub fn cpu_pipeline(context: &Context, module: &mut Module) -> Result<()> {
    pipelines::cpu(parallel_min_work()).run(context, module, &run_options())
}

/// Where compile time went.
#[derive(Clone, Debug, Default)]
pub struct Timings {
    pub parse_verify: Duration,
    pub passes: Duration,
    pub jit: Duration,
}

/// A JIT-compiled module ready to run.
pub struct Compiled {
    engine: ExecutionEngine,
    _context: Context,
    pub sig: Emitted,
    pub timings: Timings,
}

/// An MLIR context with every dialect, pass and LLVM translation registered.
pub fn context() -> Context {
    static PASSES: Once = Once::new();
    PASSES.call_once(|| {
        register_all_passes();
        llvm_options();
    });
    let registry = DialectRegistry::new();
    register_all_dialects(&registry);
    let context = Context::new();
    context.append_dialect_registry(&registry);
    context.load_all_available_dialects();
    register_all_llvm_translations(&context);
    context
}

unsafe extern "C" {
    /// LLVM's C API for its command-line options (`llvm-c/Support.h`).
    fn LLVMParseCommandLineOptions(argc: i32, argv: *const *const std::ffi::c_char, overview: *const std::ffi::c_char);
}

/// LLVM options for the JIT, set once per process: no merging of adjacent stores in
/// instruction selection (`-combiner-store-merging=0`), whose candidate search is
/// quadratic in a block's stores and took most of the compile time of large train steps
/// (FNO-1d: 20 s of 22).
fn llvm_options() {
    let args = [c"archc".as_ptr(), c"-combiner-store-merging=0".as_ptr()];
    // SAFETY: two valid NUL-terminated strings; called once, before any compilation.
    unsafe { LLVMParseCommandLineOptions(args.len() as i32, args.as_ptr(), c"".as_ptr()) };
}

/// Collects MLIR diagnostics as text while `f` runs.
pub(crate) fn with_diagnostics<T>(context: &Context, f: impl FnOnce() -> T) -> (T, String) {
    let log = Rc::new(RefCell::new(String::new()));
    let sink = log.clone();
    let id = context.attach_diagnostic_handler(move |d| {
        sink.borrow_mut().push_str(&format!("{}: {d}\n", d.location()));
        true
    });
    let out = f();
    context.detach_diagnostic_handler(id);
    let text = log.borrow().clone();
    (out, text)
}

impl Compiled {
    pub fn new(sig: Emitted) -> Result<Compiled> {
        Self::staged(sig, &|context, module| cpu_pipeline(context, module))
    }

    /// The GPU path's transformations (the GPU target's module, [`pipelines::gpu_loops`]
    /// and [`pipelines::gpu_fuse`], then [`pipelines::staged_to_llvm`]) compiled for the
    /// CPU: tests check them against the interpreter on machines without a GPU.
    pub fn gpu_staging_on_cpu(sig: Emitted) -> Result<Compiled> {
        Self::staged(sig, &|context, module| {
            pipelines::gpu_loops().run(context, module, &run_options())?;
            let staged = std::mem::replace(module, Module::new(melior::ir::Location::unknown(context)));
            *module = crate::gpu::fused(context, staged)?;
            pipelines::staged_to_llvm().run(context, module, &run_options())
        })
    }

    /// Parses and verifies `sig`, lowers it to the LLVM dialect with `lower`, and JITs it.
    fn staged(sig: Emitted, lower: &dyn for<'c> Fn(&'c Context, &mut Module<'c>) -> Result<()>) -> Result<Compiled> {
        let context = context();
        let t0 = Instant::now();
        let mut module = parse_verified(&context, &sig.text, "emitted MLIR")?;
        let t1 = Instant::now();
        lower(&context, &mut module)?;
        let t2 = Instant::now();
        let engine = ExecutionEngine::new(&module, opt_level(), &[], false, false);
        for (name, ptr) in crate::runtime::rt::symbols()
            .into_iter()
            .chain(crate::runtime::alloc::symbols())
            .chain(crate::runtime::omp::symbols())
        {
            // SAFETY: each pointer is an `extern "C"` function with the signature the
            // emitted declarations give it.
            unsafe { engine.register_symbol(name, ptr) };
        }
        if engine.lookup("archc_entry").is_null() {
            return Err(Error::Jit("the JIT could not compile the module (no archc_entry symbol)".into()));
        }
        let timings = Timings { parse_verify: t1 - t0, passes: t2 - t1, jit: t2.elapsed() };
        drop(module);
        Ok(Compiled { engine, _context: context, sig, timings })
    }

    /// Copies parameter values into the module's globals (in `sig.params` order).
    pub fn set_params(&self, values: &[&Tensor]) -> Result<()> {
        let mut descs = param_descriptors(&self.sig, values)?;
        let mut args = descs.packed();
        // SAFETY: one descriptor per memref argument of archc_set_params, each pointing
        // at a live tensor of the declared type.
        unsafe { self.engine.invoke_packed("archc_set_params", &mut args) }.map_err(jit_error)
    }

    /// Runs the entry on `inputs` with random seed `seed`.
    pub fn run(&self, inputs: &[&Tensor], seed: u64) -> Result<Vec<Tensor>> {
        let shapes: Vec<Shape> = inputs.iter().map(|t| (t.dtype(), t.shape().to_vec())).collect();
        let out_shapes = crate::abi::output_shapes(&self.sig, &shapes)?;
        let mut descs = Descriptors::default();
        for t in inputs {
            descs.push(t);
        }
        let mut outputs: Vec<Fresh> = out_shapes.iter().map(|(d, s)| Fresh::new(*d, s)).collect();
        for t in &mut outputs {
            descs.push_raw(t.ptr(), &t.shape);
        }
        let mut seed = seed as i64;
        let mut args = vec![&mut seed as *mut i64 as *mut ()];
        args.extend(descs.packed());
        // A refusal of an earlier run is not this one's.
        let _ = crate::runtime::rt::take_failure();
        // SAFETY: the arguments follow archc_entry's C interface: the seed, then one
        // descriptor per memref, each over a live buffer of the declared shape; outputs
        // are distinct fresh tensors.
        unsafe { self.engine.invoke_packed("archc_entry", &mut args) }.map_err(jit_error)?;
        if let Some(refused) = crate::runtime::rt::take_failure() {
            return Err(Error::Refused(refused));
        }
        // SAFETY: the entry writes every element of its outputs.
        Ok(outputs.into_iter().map(|t| unsafe { t.assume_init() }).collect())
    }
}

/// A failed call of a JIT-compiled entry point.
pub(crate) fn jit_error(e: melior::Error) -> Error {
    Error::Jit(e.to_string())
}

/// MLIR text parsed and verified in `context`; `what` names the text in errors
/// (`emitted MLIR`, `MLIR`).
pub(crate) fn parse_verified<'c>(context: &'c Context, text: &str, what: &'static str) -> Result<Module<'c>> {
    let (module, diagnostics) = with_diagnostics(context, || Module::parse(context, text));
    let module = module.ok_or(Error::Parse { what, diagnostics })?;
    let (ok, diagnostics) = with_diagnostics(context, || module.as_operation().verify());
    if !ok {
        return Err(Error::Verify { what, diagnostics });
    }
    Ok(module)
}

/// MLIR text parsed (not verified) in `context`, as [`parse_verified`] names it.
pub(crate) fn parsed<'c>(context: &'c Context, text: &str, what: &'static str) -> Result<Module<'c>> {
    let (module, diagnostics) = with_diagnostics(context, || Module::parse(context, text));
    module.ok_or(Error::Parse { what, diagnostics })
}

/// An output buffer for compiled code, left uninitialised (the entry writes every
/// element of its outputs, so zero-filling them first only cost time: 2.4 MB per
/// mnist_5k train step).
struct Fresh {
    shape: Vec<usize>,
    data: FreshData,
}

enum FreshData {
    F32(Vec<MaybeUninit<f32>>),
    F64(Vec<MaybeUninit<f64>>),
    I64(Vec<MaybeUninit<i64>>),
    Bool(Vec<MaybeUninit<bool>>),
    C64(Vec<MaybeUninit<archc_runtime::elem::C64>>),
}

fn uninit<T>(n: usize) -> Vec<MaybeUninit<T>> {
    let mut v = Vec::with_capacity(n);
    // SAFETY: MaybeUninit elements need no initialisation.
    unsafe { v.set_len(n) };
    v
}

/// # Safety
/// Every element of `v` must have been initialised.
unsafe fn init<T>(v: Vec<MaybeUninit<T>>) -> Vec<T> {
    let mut v = std::mem::ManuallyDrop::new(v);
    // SAFETY: same allocation, length and capacity; MaybeUninit<T> has T's layout, and
    // the caller vouches for the elements.
    unsafe { Vec::from_raw_parts(v.as_mut_ptr() as *mut T, v.len(), v.capacity()) }
}

impl Fresh {
    fn new(dtype: DType, shape: &[usize]) -> Fresh {
        let n = shape.iter().product();
        let data = match dtype {
            DType::F32 => FreshData::F32(uninit(n)),
            DType::F64 => FreshData::F64(uninit(n)),
            DType::I64 => FreshData::I64(uninit(n)),
            DType::Bool => FreshData::Bool(uninit(n)),
            DType::C64 => FreshData::C64(uninit(n)),
        };
        Fresh { shape: shape.to_vec(), data }
    }

    fn ptr(&mut self) -> *mut u8 {
        match &mut self.data {
            FreshData::F32(v) => v.as_mut_ptr() as *mut u8,
            FreshData::F64(v) => v.as_mut_ptr() as *mut u8,
            FreshData::I64(v) => v.as_mut_ptr() as *mut u8,
            FreshData::Bool(v) => v.as_mut_ptr() as *mut u8,
            FreshData::C64(v) => v.as_mut_ptr() as *mut u8,
        }
    }

    /// # Safety
    /// Every element must have been written.
    unsafe fn assume_init(self) -> Tensor {
        // SAFETY: forwarded.
        let data = unsafe {
            match self.data {
                FreshData::F32(v) => Data::F32(init(v)),
                FreshData::F64(v) => Data::F64(init(v)),
                FreshData::I64(v) => Data::I64(init(v)),
                FreshData::Bool(v) => Data::Bool(init(v)),
                FreshData::C64(v) => Data::C64(init(v)),
            }
        };
        Tensor { shape: self.shape, data }
    }
}

/// LLVM's optimisation level for the JIT ([`CpuOptions::llvm_opt`]).
pub(crate) fn opt_level() -> usize {
    cpu_options().llvm_opt.min(3)
}

/// A stage of compilation that `archc build --emit` can print.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Stage {
    /// After [`pipelines::cpu`]: the LLVM dialect.
    Optimized,
    /// LLVM IR, as translated from the LLVM dialect.
    LlvmIr,
}

/// The text of `module` at `stage`.
pub fn lower_to(module_text: &str, stage: Stage) -> Result<String> {
    let context = context();
    let mut module = parsed(&context, module_text, "emitted MLIR")?;
    cpu_pipeline(&context, &mut module)?;
    match stage {
        Stage::Optimized => Ok(format!("{}\n", module.as_operation())),
        Stage::LlvmIr => llvm_ir(&module),
    }
}

/// The LLVM IR of a module in the LLVM dialect.
pub fn llvm_ir(module: &Module) -> Result<String> {
    // SAFETY: the module is a verified LLVM-dialect module; the returned C string is
    // malloc'd by MLIR and freed here after copying.
    unsafe {
        let raw = mlir_sys::mlirTranslateModuleToLLVMIRToString(module.as_operation().to_raw());
        if raw.is_null() {
            return Err(Error::Translate("translation to LLVM IR failed".into()));
        }
        let text = std::ffi::CStr::from_ptr(raw).to_string_lossy().into_owned();
        libc_free(raw as *mut std::ffi::c_void);
        Ok(text)
    }
}

extern "C" {
    #[link_name = "free"]
    fn libc_free(p: *mut std::ffi::c_void);
}

/// Parses and verifies MLIR text; the error carries MLIR's diagnostics.
pub fn verify(module_text: &str) -> Result<()> {
    parse_verified(&context(), module_text, "MLIR").map(drop)
}
