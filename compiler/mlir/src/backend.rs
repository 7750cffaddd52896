//! The `mlir-cpu` and `mlir-gpu` backends: an [`Executor`] that JIT-compiles each
//! (function, input shapes) once and caches it, with parameters held by name and copied
//! into a compiled module's globals when they changed since that module last ran. The
//! two differ only in how a module is compiled and run ([`Target`]).

use crate::emit::{emit_module_for, Module, Shape, Target};
use crate::gpu::jit::GpuCompiled;
use crate::jit::{Compiled, Timings};
use archc_compiler::tir::Program;
use archc_runtime::interp::random::{init_param, param_shape};
use archc_runtime::{Executor, RunError, Tensor};
use std::collections::HashMap;

/// A compiled module of one target.
pub trait Unit: Sized {
    const TARGET: Target;
    fn compile(sig: Module) -> Result<Self, String>;
    fn sig(&self) -> &Module;
    fn timings(&self) -> &Timings;
    fn set_params(&self, values: &[&Tensor]) -> Result<(), String>;
    fn run(&self, inputs: &[&Tensor], seed: u64) -> Result<Vec<Tensor>, String>;
}

/// `Unit` for a type whose module, timings, parameter setter and run are those of the
/// compiled module `$inner` reached from `$s` (inherent methods of the same names).
macro_rules! unit {
    ($ty:ty, $target:expr, $compile:expr, |$s:ident| $inner:expr) => {
        impl Unit for $ty {
            const TARGET: Target = $target;
            fn compile(sig: Module) -> Result<Self, String> {
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
            fn set_params(&self, values: &[&Tensor]) -> Result<(), String> {
                let $s = self;
                $inner.set_params(values)
            }
            fn run(&self, inputs: &[&Tensor], seed: u64) -> Result<Vec<Tensor>, String> {
                let $s = self;
                $inner.run(inputs, seed)
            }
        }
    };
}

unit!(Compiled, Target::Cpu, Compiled::new, |s| s);
unit!(GpuCompiled, Target::Gpu, compile_for_the_device, |s| s);
unit!(GpuStagingOnCpu, Target::Gpu, |sig| Compiled::gpu_staging_on_cpu(sig).map(GpuStagingOnCpu), |s| s.0);

/// Compiles for the CUDA device's own architecture.
fn compile_for_the_device(sig: Module) -> Result<GpuCompiled, String> {
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

pub struct Mlir<'p, U> {
    program: &'p Program,
    cache: HashMap<(String, Vec<Shape>), Entry<U>>,
    params: HashMap<String, Tensor>,
    generation: u64,
    /// Compile times of every module compiled so far, in order.
    pub timings: Vec<(String, Timings)>,
}

impl<'p, U: Unit> Mlir<'p, U> {
    pub fn new(program: &'p Program) -> Self {
        crate::rt::tune_allocator();
        Mlir { program, cache: HashMap::new(), params: HashMap::new(), generation: 0, timings: Vec::new() }
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

    /// Compiles (or finds) the module for `func` on inputs of these types.
    pub fn prepare(&mut self, func: &str, inputs: &[Shape]) -> Result<&U, RunError> {
        let err = |message: String| RunError::Backend { func: func.to_string(), message };
        let key = (func.to_string(), inputs.to_vec());
        if !self.cache.contains_key(&key) {
            let sig = emit_module_for(self.program, func, inputs, None, U::TARGET).map_err(|e| err(e.0))?;
            let compiled = U::compile(sig).map_err(err)?;
            self.timings.push((func.to_string(), compiled.timings().clone()));
            self.cache.insert(key.clone(), Entry { compiled, params_at: None });
        }
        Ok(&self.cache[&key].compiled)
    }
}

impl<U: Unit> Executor for Mlir<'_, U> {
    fn run_func(&mut self, func: &str, inputs: &[Tensor], seed: u64) -> Result<Vec<Tensor>, RunError> {
        let err = |message: String| RunError::Backend { func: func.to_string(), message };
        let shapes: Vec<Shape> = inputs.iter().map(|t| (t.dtype(), t.shape().to_vec())).collect();
        if let Some(f) = self.program.func(func) {
            // The interpreter's argument check gives the same message for bad inputs.
            let s: Vec<_> = shapes.iter().map(|(d, s)| (*d, s.as_slice())).collect();
            archc_runtime::interp::bind::bind_shapes(f, &s)
                .map_err(|message| RunError::Input { func: func.to_string(), message })?;
        } else {
            return Err(RunError::UnknownFunc(func.to_string()));
        }
        self.prepare(func, &shapes)?;
        let generation = self.generation;
        let entry = self.cache.get_mut(&(func.to_string(), shapes)).expect("prepared");
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
            entry.compiled.set_params(&values).map_err(err)?;
        }
        entry.params_at = Some(generation);
        let refs: Vec<&Tensor> = inputs.iter().collect();
        entry.compiled.run(&refs, seed).map_err(err)
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
}
