//! The `mlir-cpu` and `mlir-gpu` backends: an [`Executor`] that JIT-compiles each
//! (function, input shapes) once and caches it, with parameters held by name and copied
//! into a compiled module's globals when they changed since that module last ran. The
//! two differ only in how a module is compiled and run ([`Target`]).
//!
//! Resident state (`archc_runtime::resident`) lives where the target computes: in host
//! memory for the CPU ([`HostState`]), in device memory for the GPU
//! ([`crate::exec::gpu::state::DeviceState`]); a bound call compiles (or finds) the module for
//! the state's types and the given inputs' like any other call.
//!
//! Shapes: a function is first compiled for the concrete shapes it is called with. When
//! it is called again with other values of some size symbols (a smaller last batch, an
//! evaluation batch), a target that supports dynamic sizes compiles one more module with
//! those symbols dynamic, which then serves every value of them (the static module keeps
//! serving its own shapes, at full speed); where a function cannot be lowered with
//! dynamic sizes, the new shapes get a static module of their own.
//!
//! Errors: units and stores return this crate's [`Error`]; the executor turns them into
//! `RunError`s with their messages (`RunError::Backend` for compiling and running,
//! `RunError::Internal` where the error's kind says it is archc's own bug,
//! `RunError::State` for resident state).

use crate::emit::{emit_module_dynamic, emit_module_for, Module, Shape, Target};
use crate::error::{Error, Result};
use crate::exec::gpu::state::DeviceState;
use crate::gpu::jit::GpuCompiled;
use crate::jit::{Compiled, Timings};
use archc_compiler::tir::Program;
use archc_runtime::interp::bind::{bind_shapes, DimEnv};
use archc_runtime::interp::random::{init_param, param_shape};
use archc_runtime::resident::Bindings;
use archc_runtime::{CompileTime, Executor, HostState, RunError, Tensor};
use std::collections::HashMap;

/// A compiled module of one target.
pub trait Unit: Sized {
    const TARGET: Target;
    /// Whether modules with dynamic sizes may be compiled for this target.
    const DYNAMIC: bool = false;
    fn compile(sig: Module) -> Result<Self>;
    fn sig(&self) -> &Module;
    fn timings(&self) -> &Timings;
    fn set_params(&self, values: &[&Tensor]) -> Result<()>;
    fn run(&self, inputs: &[&Tensor], seed: u64) -> Result<Vec<Tensor>>;
    /// Where this target keeps resident state.
    type Store: Store;
    /// Runs with the arguments and results `bindings` places in `store` (see
    /// [`Executor::run_bound`]).
    fn run_bound(
        &self,
        func: &str,
        store: &mut Self::Store,
        bindings: &Bindings,
        given: Vec<Tensor>,
        seed: u64,
    ) -> Result<Vec<Tensor>, RunError>;
}

/// Resident state of one target (see the module docs).
pub trait Store: Default {
    fn put(&mut self, name: &str, value: Tensor) -> Result<()>;
    fn read(&mut self, name: &str) -> Result<Tensor>;
    /// The dtype and shape of the state `name`.
    fn shape(&self, name: &str) -> Option<Shape>;
    fn non_finite(&mut self, names: &[String]) -> Result<Option<String>>;
}

impl Store for HostState {
    fn put(&mut self, name: &str, value: Tensor) -> Result<()> {
        HostState::put(self, name, value);
        Ok(())
    }
    fn read(&mut self, name: &str) -> Result<Tensor> {
        self.get(name).cloned().map_err(|e| Error::State(e.to_string()))
    }
    fn shape(&self, name: &str) -> Option<Shape> {
        self.get(name).ok().map(|t| (t.dtype(), t.shape().to_vec()))
    }
    fn non_finite(&mut self, names: &[String]) -> Result<Option<String>> {
        self.first_non_finite(names).map_err(|e| Error::State(e.to_string()))
    }
}

impl Store for DeviceState {
    fn put(&mut self, name: &str, value: Tensor) -> Result<()> {
        DeviceState::put(self, name, &value)
    }
    fn read(&mut self, name: &str) -> Result<Tensor> {
        DeviceState::read(self, name)
    }
    fn shape(&self, name: &str) -> Option<Shape> {
        self.get(name).map(|t| (t.dtype, t.shape.clone()))
    }
    fn non_finite(&mut self, names: &[String]) -> Result<Option<String>> {
        DeviceState::non_finite(self, names)
    }
}

/// [`Unit::run_bound`] of a unit whose state is in host memory.
fn run_bound_on_host<U: Unit>(
    unit: &U,
    func: &str,
    store: &mut HostState,
    bindings: &Bindings,
    given: Vec<Tensor>,
    seed: u64,
) -> Result<Vec<Tensor>, RunError> {
    store.call(bindings, given, |args| {
        let refs: Vec<&Tensor> = args.iter().collect();
        unit.run(&refs, seed).map_err(|e| backend_error(func, e))
    })
}

/// A unit's error as the executor reports it: `RunError::Internal` where it is archc's
/// own bug, else `RunError::Backend`.
fn backend_error(func: &str, e: impl Into<Error>) -> RunError {
    let e = e.into();
    let (func, message) = (func.to_string(), e.to_string());
    match e.is_internal() {
        true => RunError::Internal { func, message },
        false => RunError::Backend { func, message },
    }
}

/// `Unit` for a type whose module, timings, parameter setter and run are those of the
/// compiled module `$inner` reached from `$s` (inherent methods of the same names), with
/// resident state in a `$store` and bound runs by `$bound`.
macro_rules! unit {
    ($ty:ty, $target:expr, $dynamic:expr, $compile:expr, |$s:ident| $inner:expr, $store:ty, $bound:path) => {
        impl Unit for $ty {
            const TARGET: Target = $target;
            const DYNAMIC: bool = $dynamic;
            fn compile(sig: Module) -> Result<Self> {
                $compile(sig)
            }
            fn sig(&self) -> &Module {
                let $s = self;
                &$inner.sig
            }
            fn timings(&self) -> &Timings {
                let $s = self;
                &$inner.timings
            }
            fn set_params(&self, values: &[&Tensor]) -> Result<()> {
                let $s = self;
                $inner.set_params(values)
            }
            fn run(&self, inputs: &[&Tensor], seed: u64) -> Result<Vec<Tensor>> {
                let $s = self;
                $inner.run(inputs, seed)
            }
            type Store = $store;
            fn run_bound(
                &self,
                func: &str,
                store: &mut $store,
                bindings: &Bindings,
                given: Vec<Tensor>,
                seed: u64,
            ) -> Result<Vec<Tensor>, RunError> {
                $bound(self, func, store, bindings, given, seed)
            }
        }
    };
}

unit!(Compiled, Target::Cpu, true, Compiled::new, |s| s, HostState, run_bound_on_host);
unit!(GpuCompiled, Target::Gpu, false, compile_for_the_device, |s| s, DeviceState, run_bound_on_device);
// Dynamic sizes pass the GPU path's staging (checked on the CPU by the tests; CUDA
// artifacts use them), but the JIT GPU backend compiles static modules until they have
// been run on a device.
unit!(
    GpuStagingOnCpu,
    Target::Gpu,
    true,
    |sig| Compiled::gpu_staging_on_cpu(sig).map(GpuStagingOnCpu),
    |s| s.0,
    HostState,
    run_bound_on_host
);

/// [`Unit::run_bound`] of the GPU: the state stays in device memory.
fn run_bound_on_device(
    unit: &GpuCompiled,
    func: &str,
    store: &mut DeviceState,
    bindings: &Bindings,
    given: Vec<Tensor>,
    seed: u64,
) -> Result<Vec<Tensor>, RunError> {
    let refs: Vec<&Tensor> = given.iter().collect();
    unit.run_bound(store, bindings, &refs, seed).map_err(|e| backend_error(func, e))
}

/// Compiles for the CUDA device's own architecture.
fn compile_for_the_device(sig: Module) -> Result<GpuCompiled> {
    let (major, minor) = archc_cuda::cuda()?.compute_capability();
    GpuCompiled::new(sig, &format!("sm_{major}{minor}"))
}

/// A module of the GPU target, staged like the GPU path (parallel loops, host compute
/// wrapped into one-iteration parallel loops) but lowered for the CPU: a check of the
/// GPU path's own transformations that needs no GPU.
pub struct GpuStagingOnCpu(Compiled);

/// The MLIR CPU backend.
pub type MlirCpu<'p> = Mlir<'p, Compiled>;
/// [`GpuStagingOnCpu`] as an executor (tests).
pub type MlirGpuStagingOnCpu<'p> = Mlir<'p, GpuStagingOnCpu>;
/// The MLIR GPU backend (CUDA).
pub type MlirGpu<'p> = Mlir<'p, GpuCompiled>;

struct Entry<U> {
    compiled: U,
    /// The parameter generation last copied into this module.
    params_at: Option<u64>,
}

pub struct Mlir<'p, U: Unit> {
    program: &'p Program,
    cache: HashMap<(String, Vec<Shape>), Entry<U>>,
    /// Per function: the module with dynamic sizes and its dynamic symbols.
    dynamic: HashMap<String, (Vec<String>, Entry<U>)>,
    /// Symbols to keep dynamic from the first compilation on (see [`Mlir::with_dynamic`]).
    eager_dynamic: Vec<String>,
    params: HashMap<String, Tensor>,
    generation: u64,
    /// Compile times of every module compiled so far, in order.
    pub timings: Vec<(String, Timings)>,
    /// Resident state (see the module docs).
    store: U::Store,
}

impl<'p, U: Unit> Mlir<'p, U> {
    pub fn new(program: &'p Program) -> Self {
        crate::runtime::rt::prepare_host();
        Mlir {
            program,
            cache: HashMap::new(),
            dynamic: HashMap::new(),
            eager_dynamic: Vec::new(),
            params: HashMap::new(),
            generation: 0,
            timings: Vec::new(),
            store: U::Store::default(),
        }
    }

    /// Compiles every function with the size symbols `syms` dynamic from its first call
    /// on (where the function has them as input sizes and can be lowered so), instead of
    /// waiting for a second value.
    pub fn with_dynamic(mut self, syms: &[&str]) -> Self {
        self.eager_dynamic = syms.iter().map(|s| s.to_string()).collect();
        self
    }

    /// How many modules have been compiled with dynamic sizes.
    pub fn dynamic_modules(&self) -> usize {
        self.dynamic.len()
    }

    /// Materialises every declared parameter by its `Init` (the interpreter's values).
    pub fn init_params(&mut self, seed: u64) -> Result<(), RunError> {
        for decl in &self.program.params {
            let value =
                init_param(decl, seed).map_err(|message| RunError::Param { name: decl.name.clone(), message })?;
            self.params.insert(decl.name.clone(), value);
        }
        self.generation += 1;
        Ok(())
    }

    /// Takes over a module compiled elsewhere (another thread) for `func` on `inputs`,
    /// which must be the module [`emit_module_for`] gives for them.
    pub fn adopt(&mut self, func: &str, inputs: Vec<Shape>, compiled: U) {
        self.timings.push((func.to_string(), compiled.timings().clone()));
        self.cache.insert((func.to_string(), inputs), Entry { compiled, params_at: None });
    }

    /// Compiles (or finds) the module for `func` on inputs of these types.
    pub fn prepare(&mut self, func: &str, inputs: &[Shape]) -> Result<&U, RunError> {
        let slot = self.slot(func, inputs)?;
        Ok(&entry_at(&mut self.cache, &mut self.dynamic, &slot).compiled)
    }

    /// Where the module that runs `func` on `inputs` is: the static one for these
    /// shapes, else the function's dynamic one if it accepts them, else a new one (see
    /// the module docs).
    fn slot(&mut self, func: &str, inputs: &[Shape]) -> Result<Slot, RunError> {
        let key = (func.to_string(), inputs.to_vec());
        if self.cache.contains_key(&key) {
            return Ok(Slot::Static(key));
        }
        let accepts = |(_, e): &(Vec<String>, Entry<U>)| e.compiled.sig().output_shapes(inputs).is_ok();
        if self.dynamic.get(func).is_some_and(accepts) {
            return Ok(Slot::Dynamic(func.to_string()));
        }
        let syms = self.symbols_to_free(func, inputs);
        if U::DYNAMIC && !syms.is_empty() {
            if let Ok(sig) = emit_module_dynamic(self.program, func, inputs, &syms, None, U::TARGET) {
                let compiled = self.compile(func, sig)?;
                self.dynamic.insert(func.to_string(), (syms, Entry { compiled, params_at: None }));
                return Ok(Slot::Dynamic(func.to_string()));
            }
        }
        let sig = emit_module_for(self.program, func, inputs, None, U::TARGET).map_err(|e| backend_error(func, e))?;
        let compiled = self.compile(func, sig)?;
        self.cache.insert(key.clone(), Entry { compiled, params_at: None });
        Ok(Slot::Static(key))
    }

    fn compile(&mut self, func: &str, sig: Module) -> Result<U, RunError> {
        let compiled = U::compile(sig).map_err(|e| backend_error(func, e))?;
        self.timings.push((func.to_string(), compiled.timings().clone()));
        Ok(compiled)
    }

    /// The symbols a module for `inputs` should leave dynamic: those asked for up front,
    /// those already dynamic, and those whose values differ from an earlier call's; each
    /// only if it is the size of some input axis.
    fn symbols_to_free(&self, func: &str, inputs: &[Shape]) -> Vec<String> {
        let Some(f) = self.program.func(func) else { return Vec::new() };
        let bind = |shapes: &[Shape]| -> Option<DimEnv> {
            let s: Vec<_> = shapes.iter().map(|(d, s)| (*d, s.as_slice())).collect();
            bind_shapes(f, &s).ok()
        };
        let Some(now) = bind(inputs) else { return Vec::new() };
        let mut syms: Vec<String> = self.eager_dynamic.clone();
        syms.extend(self.dynamic.get(func).map(|(s, _)| s.clone()).unwrap_or_default());
        for ((name, shapes), _) in &self.cache {
            if name != func {
                continue;
            }
            for (sym, v) in bind(shapes).unwrap_or_default() {
                if now.get(&sym) != Some(&v) {
                    syms.push(sym);
                }
            }
        }
        let is_input_size = |s: &String| {
            f.args.iter().any(|(_, ty)| ty.shape.iter().any(|d| *d == archc_compiler::tir::Dim::sym(s.clone())))
        };
        syms.sort();
        syms.dedup();
        syms.retain(is_input_size);
        syms
    }
}

impl<U: Unit> Mlir<'_, U> {
    /// The module that runs `func` on inputs of these types, compiled if need be, with
    /// the parameters set.
    fn ready(&mut self, func: &str, shapes: &[Shape]) -> Result<Slot, RunError> {
        if let Some(f) = self.program.func(func) {
            // The interpreter's argument check gives the same message for bad inputs.
            let s: Vec<_> = shapes.iter().map(|(d, s)| (*d, s.as_slice())).collect();
            archc_runtime::interp::bind::bind_shapes(f, &s)
                .map_err(|message| RunError::Input { func: func.to_string(), message })?;
        } else {
            return Err(RunError::UnknownFunc(func.to_string()));
        }
        let slot = self.slot(func, shapes)?;
        let generation = self.generation;
        let entry = entry_at(&mut self.cache, &mut self.dynamic, &slot);
        if entry.params_at != Some(generation) && !entry.compiled.sig().params.is_empty() {
            let values: Vec<&Tensor> = entry
                .compiled
                .sig()
                .params
                .iter()
                .map(|(n, _)| {
                    self.params.get(n).ok_or_else(|| RunError::Param { name: n.clone(), message: "not set".into() })
                })
                .collect::<Result<_, _>>()?;
            entry.compiled.set_params(&values).map_err(|e| backend_error(func, e))?;
        }
        entry.params_at = Some(generation);
        Ok(slot)
    }
}

impl<U: Unit> Executor for Mlir<'_, U> {
    fn run_func(&mut self, func: &str, inputs: &[Tensor], seed: u64) -> Result<Vec<Tensor>, RunError> {
        let shapes: Vec<Shape> = inputs.iter().map(|t| (t.dtype(), t.shape().to_vec())).collect();
        let slot = self.ready(func, &shapes)?;
        let entry = entry_at(&mut self.cache, &mut self.dynamic, &slot);
        let refs: Vec<&Tensor> = inputs.iter().collect();
        entry.compiled.run(&refs, seed).map_err(|e| backend_error(func, e))
    }

    fn compile_times(&self) -> Vec<CompileTime> {
        let tier = match U::TARGET {
            Target::Cpu => "mlir-cpu",
            Target::Gpu => "mlir-gpu",
        };
        self.timings.iter().map(|(func, t)| compile_time(tier, func, t)).collect()
    }

    fn set_param_value(&mut self, name: &str, value: Tensor) -> Result<(), RunError> {
        let e = |message: String| RunError::Param { name: name.to_string(), message };
        let decl = self.program.param(name).ok_or_else(|| e("not declared by the program".into()))?;
        let shape = param_shape(decl).map_err(e)?;
        if value.dtype() != decl.ty.dtype || value.shape() != shape.as_slice() {
            return Err(e(format!("value is {}, declared {}", value.type_string(), decl.ty)));
        }
        self.params.insert(name.to_string(), value);
        self.generation += 1;
        Ok(())
    }

    fn put_state(&mut self, name: &str, value: Tensor) -> Result<(), RunError> {
        self.store.put(name, value).map_err(|e| state_error(name, e.to_string()))
    }

    fn read_state(&mut self, name: &str) -> Result<Tensor, RunError> {
        self.store.read(name).map_err(|e| state_error(name, e.to_string()))
    }

    fn non_finite_state(&mut self, names: &[String]) -> Result<Option<String>, RunError> {
        self.store.non_finite(names).map_err(|e| state_error("", e.to_string()))
    }

    fn run_bound(
        &mut self,
        func: &str,
        bindings: &Bindings,
        given: Vec<Tensor>,
        seed: u64,
    ) -> Result<Vec<Tensor>, RunError> {
        let input = |message: String| RunError::Input { func: func.to_string(), message };
        if given.len() != bindings.given() {
            return Err(input(format!("{} inputs given, the bindings take {}", given.len(), bindings.given())));
        }
        let mut shapes = Vec::with_capacity(bindings.args.len());
        let mut given_shapes = given.iter().map(|t| (t.dtype(), t.shape().to_vec()));
        for a in &bindings.args {
            shapes.push(match a {
                Some(name) => self.store.shape(name).ok_or_else(|| state_error(name, "no such state".into()))?,
                None => given_shapes.next().expect("counted above"),
            });
        }
        let slot = self.ready(func, &shapes)?;
        let entry = entry_at(&mut self.cache, &mut self.dynamic, &slot);
        entry.compiled.run_bound(func, &mut self.store, bindings, given, seed)
    }
}

/// A resident-state error (the name may be empty).
fn state_error(name: &str, message: String) -> RunError {
    RunError::State { name: name.to_string(), message }
}

/// Where a compiled module is kept.
enum Slot {
    Static((String, Vec<Shape>)),
    Dynamic(String),
}

/// The module at `slot` (a field-level borrow, so callers may read other fields).
fn entry_at<'a, U>(
    cache: &'a mut HashMap<(String, Vec<Shape>), Entry<U>>,
    dynamic: &'a mut HashMap<String, (Vec<String>, Entry<U>)>,
    slot: &Slot,
) -> &'a mut Entry<U> {
    match slot {
        Slot::Static(key) => cache.get_mut(key).expect("compiled"),
        Slot::Dynamic(func) => &mut dynamic.get_mut(func).expect("compiled").1,
    }
}

/// A module's compile time as `--timings` reports it, with its phases.
pub fn compile_time(tier: &'static str, func: &str, t: &Timings) -> CompileTime {
    let ms = |d: std::time::Duration| d.as_secs_f64() * 1e3;
    CompileTime {
        tier,
        func: func.to_string(),
        time: t.parse_verify + t.passes + t.jit,
        detail: format!(
            "parse + verify {:.1} ms, passes {:.1} ms, LLVM {:.1} ms",
            ms(t.parse_verify),
            ms(t.passes),
            ms(t.jit)
        ),
    }
}
