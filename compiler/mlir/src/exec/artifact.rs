//! Running an artifact's compiled functions (no LLVM): [`Loaded`] loads one function's
//! shared object, [`AotExecutor`] runs a program's functions from an artifact behind the
//! [`Executor`] trait. What an artifact is, and how it is read and checked, is
//! [`crate::aot`]'s.
//!
//! Contract:
//! - [`AotExecutor::new`] loads nothing before the program rebuilt from the sources has
//!   the artifact's hash and every manifest signature is the rebuilt program's
//!   ([`crate::aot::signature`]).
//! - [`Loaded::load`] checks that the running CPU has the features the artifact's CPU
//!   implies before it loads any code (an error naming the missing features, never an
//!   illegal instruction), writes the object into a private fresh folder
//!   ([`crate::aot::scratch`]) only while it is `dlopen`ed, fills every
//!   `archc_slot.<symbol>` from [`runtime_symbols`], then runs the object's constructors
//!   (`archc_init`); its destructors (`archc_fini`) run when it is dropped. A CUDA
//!   function runs behind a [`GpuRunner`], like the JIT's.
//! - An object that cannot be loaded, or lacks what the loader fills or calls, is an
//!   [`ArtifactError::Load`]; a refusal of compiled code at run time an
//!   [`Error::Refused`].

use crate::abi::{output_tensors, param_descriptors, Descriptors};
use crate::aot::{manifest, program_hash, scratch, signature, AotTarget, Artifact, FuncEntry, HostCpu};
use crate::emit::Module;
use crate::error::{ArtifactError, Error, Result};
use crate::exec::gpu::{gpu_symbols, GpuRunner, HostCode};
use archc_runtime::{Executor, HostState, RunError, Tensor};
use std::collections::HashMap;

/// Every runtime function compiled code for `target` may call, by symbol.
pub fn runtime_symbols(target: &AotTarget) -> HashMap<&'static str, *mut ()> {
    match target {
        AotTarget::Cpu => crate::runtime::rt::symbols()
            .into_iter()
            .chain(crate::runtime::alloc::symbols())
            .chain(crate::runtime::omp::symbols())
            .collect(),
        AotTarget::Cuda(_) => gpu_symbols().into_iter().collect(),
    }
}

/// A loaded function of an artifact.
pub struct Loaded {
    pub sig: Module,
    /// CUDA: the buffers, parameters and errors of the GPU path (dropped before the code).
    gpu: Option<GpuRunner>,
    code: Code,
}

/// A loaded shared object and its packed entry points.
struct Code {
    entry: unsafe extern "C" fn(*mut *mut ()),
    set_params: unsafe extern "C" fn(*mut *mut ()),
    /// The object's destructors (`archc_fini`: a CUDA module's kernels unloaded), run on
    /// drop, before the library closes.
    fini: Option<unsafe extern "C" fn()>,
    lib: libloading::Library,
}

impl Drop for Code {
    fn drop(&mut self) {
        if let Some(fini) = self.fini {
            // SAFETY: generated with this signature; run once, after every use.
            unsafe { fini() };
        }
    }
}

impl HostCode for Code {
    fn lookup(&self, symbol: &str) -> usize {
        // SAFETY: only the address is taken.
        unsafe { self.lib.get::<*mut u8>(symbol.as_bytes()).map(|s| *s as usize).unwrap_or(0) }
    }

    unsafe fn invoke(&self, func: &str, args: &mut [*mut ()]) -> Result<()> {
        let f = match func {
            "archc_entry" => self.entry,
            "archc_set_params" => self.set_params,
            other => return Err(Error::Abi(format!("no packed entry point {other}"))),
        };
        // SAFETY: as the caller guarantees.
        unsafe { f(args.as_mut_ptr()) };
        Ok(())
    }
}

impl Loaded {
    /// Loads `f`'s shared object (through a temporary file) and fills its runtime slots,
    /// after checking that this CPU runs code for `cpu`; for CUDA, also sets up the
    /// device (a clear error without one).
    pub fn load(f: &FuncEntry, target: &AotTarget, cpu: &HostCpu) -> Result<Loaded> {
        cpu.check_host()?;
        if let AotTarget::Cuda(_) = target {
            archc_cuda::cuda()?;
        }
        manifest::check_func_name(&f.name)?;
        manifest::check_signature(&f.name, &f.sig)?;
        let dir = scratch::private_dir("archc-aot-")?;
        let path = scratch::write_new(dir.path(), &manifest::object_member(&f.name), &f.object)?;
        // SAFETY: the object was built by `build` for this target: its initialisers do
        // nothing but set up its own globals (and, for CUDA, load its kernels). An
        // artifact is native code; `Artifact::read` verified its digests, not its origin.
        let lib =
            unsafe { libloading::Library::new(&path) }.map_err(|e| load_error(format!("cannot load {}: {e}", f.name)));
        // The mapping outlives the file.
        drop(dir);
        let lib = lib?;
        fill_slots(&lib, &f.name, target)?;
        // SAFETY: both are generated with exactly this signature (see the module docs).
        let (entry, set_params) = unsafe {
            let e = lib.get::<unsafe extern "C" fn(*mut *mut ())>(b"archc_packed_archc_entry");
            let s = lib.get::<unsafe extern "C" fn(*mut *mut ())>(b"archc_packed_archc_set_params");
            (*e.map_err(|e| load_error(e.to_string()))?, *s.map_err(|e| load_error(e.to_string()))?)
        };
        // The object's constructors, which would have run when it was loaded, before its
        // slots were filled (see `loadable`).
        // SAFETY: generated with this signature, taking no arguments.
        let (init, fini) = unsafe {
            let init = lib.get::<unsafe extern "C" fn()>(b"archc_init").map(|f| *f);
            let fini = lib.get::<unsafe extern "C" fn()>(b"archc_fini").map(|f| *f);
            (init.map_err(|e| load_error(format!("{}: no archc_init ({e})", f.name)))?, fini.ok())
        };
        // SAFETY: the slots are filled, so the constructors' runtime calls are served.
        unsafe { init() };
        let code = Code { entry, set_params, fini, lib };
        let gpu = match target {
            AotTarget::Cpu => None,
            AotTarget::Cuda(_) => Some(GpuRunner::new(f.sig.clone(), f.sync, &code)?),
        };
        Ok(Loaded { sig: f.sig.clone(), gpu, code })
    }

    /// Copies parameter values into the module's globals (in `sig.params` order).
    pub fn set_params(&self, values: &[&Tensor]) -> Result<()> {
        if let Some(gpu) = &self.gpu {
            return gpu.set_params(&self.code, values);
        }
        let mut descs = param_descriptors(&self.sig, values)?;
        let mut args = descs.packed();
        // SAFETY: one descriptor per memref argument of archc_set_params, each over a
        // live tensor of the declared type.
        unsafe { (self.code.set_params)(args.as_mut_ptr()) };
        Ok(())
    }

    /// Runs the entry on `inputs` with random seed `seed`.
    pub fn run(&self, inputs: &[&Tensor], seed: u64) -> Result<Vec<Tensor>> {
        if let Some(gpu) = &self.gpu {
            return gpu.run(&self.code, inputs, seed);
        }
        let outputs = output_tensors(&self.sig, inputs)?;
        let mut descs = Descriptors::default();
        for t in inputs.iter().copied().chain(outputs.iter()) {
            descs.push(t);
        }
        let mut seed = seed as i64;
        let mut args = vec![&mut seed as *mut i64 as *mut ()];
        args.extend(descs.packed());
        // A refusal of an earlier run is not this one's.
        let _ = crate::runtime::rt::take_failure();
        // SAFETY: the seed, then one descriptor per memref, over live buffers of the
        // entry's types (checked by `output_tensors`); outputs are fresh tensors.
        unsafe { (self.code.entry)(args.as_mut_ptr()) };
        match crate::runtime::rt::take_failure() {
            Some(refused) => Err(Error::Refused(refused)),
            None => Ok(outputs),
        }
    }
}

/// A function's object that cannot be loaded as an artifact's.
fn load_error(message: String) -> Error {
    Error::Artifact(ArtifactError::Load(message))
}

/// Points every `archc_slot.<symbol>` of `lib` at archc's runtime function `<symbol>`.
fn fill_slots(lib: &libloading::Library, name: &str, target: &AotTarget) -> Result<()> {
    // SAFETY: `archc_slots` is generated as a null-terminated array of C strings.
    let names: Vec<String> = unsafe {
        let table = lib
            .get::<*const *const std::ffi::c_char>(b"archc_slot_names")
            .map_err(|e| load_error(format!("{name}: no slot table: {e}")))?;
        let mut v = Vec::new();
        let mut p = *table;
        while !(*p).is_null() {
            v.push(std::ffi::CStr::from_ptr(*p).to_string_lossy().into_owned());
            p = p.add(1);
        }
        v
    };
    let symbols = runtime_symbols(target);
    for sym in names {
        let f =
            symbols.get(sym.as_str()).ok_or_else(|| load_error(format!("{name}: unknown runtime function {sym}")))?;
        let slot = format!("archc_slot.{sym}");
        // SAFETY: each slot is a pointer-sized global the generated trampolines call.
        unsafe {
            let s = lib.get::<*mut *mut ()>(slot.as_bytes()).map_err(|e| load_error(format!("{name}: {e}")))?;
            **s = *f;
        }
    }
    Ok(())
}

/// An [`Executor`] over an artifact's functions, with parameters held by name.
pub struct AotExecutor<'p> {
    program: &'p archc_compiler::tir::Program,
    funcs: HashMap<String, (Loaded, Option<u64>)>,
    params: HashMap<String, Tensor>,
    generation: u64,
    /// Resident state, in host memory (see `archc_runtime::resident`).
    state: HostState,
}

impl<'p> AotExecutor<'p> {
    /// Loads every function of `art`, which must have been built from `program`.
    pub fn new(program: &'p archc_compiler::tir::Program, art: &Artifact) -> Result<Self> {
        if program_hash(program) != art.program_hash {
            return Err(ArtifactError::OtherProgram.into());
        }
        signature::check(program, art)?;
        let mut funcs = HashMap::new();
        for f in &art.funcs {
            funcs.insert(f.name.clone(), (Loaded::load(f, &art.target, &art.cpu)?, None));
        }
        Ok(AotExecutor { program, funcs, params: HashMap::new(), generation: 0, state: HostState::default() })
    }

    /// Every declared parameter at its initial value.
    pub fn init_params(&mut self, seed: u64) -> Result<(), RunError> {
        for decl in &self.program.params {
            let value = archc_runtime::interp::random::init_param(decl, seed)
                .map_err(|message| RunError::Param { name: decl.name.clone(), message })?;
            self.params.insert(decl.name.clone(), value);
        }
        self.generation += 1;
        Ok(())
    }
}

impl Executor for AotExecutor<'_> {
    fn run_func(&mut self, func: &str, inputs: &[Tensor], seed: u64) -> Result<Vec<Tensor>, RunError> {
        let err = |message: String| RunError::Backend { func: func.to_string(), message };
        let Some((loaded, params_at)) = self.funcs.get_mut(func) else {
            return Err(err(format!("the artifact has no compiled @{func}")));
        };
        if *params_at != Some(self.generation) && !loaded.sig.params.is_empty() {
            let values: Vec<&Tensor> = loaded
                .sig
                .params
                .iter()
                .map(|(n, _)| {
                    self.params.get(n).ok_or_else(|| RunError::Param { name: n.clone(), message: "not set".into() })
                })
                .collect::<Result<_, _>>()?;
            loaded.set_params(&values).map_err(|e| err(e.to_string()))?;
        }
        *params_at = Some(self.generation);
        let refs: Vec<&Tensor> = inputs.iter().collect();
        loaded.run(&refs, seed).map_err(|m| err(format!("{m} (artifact built for {})", signature(&loaded.sig))))
    }

    fn set_param_value(&mut self, name: &str, value: Tensor) -> Result<(), RunError> {
        let e = |message: String| RunError::Param { name: name.to_string(), message };
        let decl = self.program.param(name).ok_or_else(|| e("not declared by the program".into()))?;
        let shape = archc_runtime::interp::random::param_shape(decl).map_err(e)?;
        if value.dtype() != decl.ty.dtype || value.shape() != shape.as_slice() {
            return Err(e(format!("value is {}, declared {}", value.type_string(), decl.ty)));
        }
        self.params.insert(name.to_string(), value);
        self.generation += 1;
        Ok(())
    }

    fn host_state(&mut self) -> Option<&mut HostState> {
        Some(&mut self.state)
    }
}

/// `(f32[B, 784], i64[B])`.
fn signature(sig: &Module) -> String {
    let ty =
        |(dt, dims): &crate::emit::Ty| archc_compiler::tir::TensorType { dtype: *dt, shape: dims.clone() }.to_string();
    format!("({})", sig.inputs.iter().map(ty).collect::<Vec<_>>().join(", "))
}
