//! Running a GPU-lowered module: the host code is JIT-compiled by MLIR's ExecutionEngine
//! with the `mgpu*` runtime symbols of `archc-cuda`; kernels are PTX loaded by the driver
//! when the module initialises. Buffers, parameters and errors are [`GpuRunner`]'s.
//!
//! Contract: [`GpuCompiled::new`] fails with one clear line when there is no CUDA device.
//! It runs with the process's GPU options ([`crate::exec::gpu::options`]);
//! [`GpuCompiled::with_options`] takes them explicitly.

use super::{compile, Lowered};
use crate::emit::Module as Emitted;
use crate::error::{Error, Result};
use crate::exec::gpu::state::DeviceState;
use crate::exec::gpu::{gpu_symbols, needs_sync, options, take_error, GpuOptions, GpuRunner, HostCode};
use crate::jit::{jit_error, opt_level, Timings};
use archc_runtime::resident::Bindings;
use archc_runtime::tensor::Tensor;
use melior::ExecutionEngine;
use std::time::Instant;

/// A module compiled for the GPU, ready to run.
pub struct GpuCompiled {
    // Field order: the runner (which unregisters the globals) drops before the engine.
    runner: GpuRunner,
    engine: ExecutionEngine,
    _lowered: Lowered,
    pub sig: Emitted,
    pub timings: Timings,
}

impl HostCode for ExecutionEngine {
    fn lookup(&self, symbol: &str) -> usize {
        ExecutionEngine::lookup(self, symbol) as usize
    }

    unsafe fn invoke(&self, func: &str, args: &mut [*mut ()]) -> Result<()> {
        let mut args = args.to_vec();
        // SAFETY: as the caller guarantees.
        unsafe { self.invoke_packed(func, &mut args) }.map_err(jit_error)
    }
}

impl GpuCompiled {
    pub fn new(sig: Emitted, arch: &str) -> Result<GpuCompiled> {
        GpuCompiled::with_options(sig, arch, options())
    }

    /// [`GpuCompiled::new`] with these options (see [`GpuRunner::with_options`]).
    pub fn with_options(sig: Emitted, arch: &str, options: &GpuOptions) -> Result<GpuCompiled> {
        archc_cuda::configure(options.cuda.clone())?;
        archc_cuda::cuda()?;
        let lowered = compile(&sig.text, arch)?;
        let t = Instant::now();
        let engine = ExecutionEngine::new(&lowered.module, opt_level(), &[], false, false);
        for (name, ptr) in gpu_symbols() {
            // SAFETY: each pointer is an `extern "C"` function with the signature the
            // generated code declares for it.
            unsafe { engine.register_symbol(name, ptr) };
        }
        if engine.lookup("archc_entry").is_null() {
            return Err(Error::Jit("the JIT could not compile the module (no archc_entry symbol)".into()));
        }
        take_error()?;
        let timings = Timings { parse_verify: lowered.parse_verify, passes: lowered.passes, jit: t.elapsed() };
        let runner =
            GpuRunner::with_options(sig.clone(), needs_sync(lowered.host_ops, lowered.random_fills), &engine, options)?;
        Ok(GpuCompiled { runner, engine, _lowered: lowered, sig, timings })
    }

    /// Copies parameter values into the module's globals (in `sig.params` order).
    pub fn set_params(&self, values: &[&Tensor]) -> Result<()> {
        self.runner.set_params(&self.engine, values)
    }

    /// Runs the entry on `inputs` with random seed `seed`.
    pub fn run(&self, inputs: &[&Tensor], seed: u64) -> Result<Vec<Tensor>> {
        self.runner.run(&self.engine, inputs, seed)
    }

    /// Runs the entry with arguments and results in resident state (see
    /// [`GpuRunner::run_bound`]).
    pub fn run_bound(
        &self,
        state: &mut DeviceState,
        bindings: &Bindings,
        given: &[&Tensor],
        seed: u64,
    ) -> Result<Vec<Tensor>> {
        self.runner.run_bound(&self.engine, state, bindings, given, seed)
    }
}
