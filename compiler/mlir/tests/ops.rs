//! Differential tests of the MLIR CPU backend, op by op: every TIR primitive op (forward,
//! on every dtype the type rules allow) and the gradient programs of the differentiable
//! ones are JIT-compiled by MLIR and run against the reference interpreter.
//!
//! Agreement: integer and bool outputs are equal; float and complex outputs have a
//! scaled error `max |a - b| / max(max |b|, 1e-6)` below 1e-5 (the scale over the
//! interpreter's finite elements; NaNs at the same position and equal infinities count as
//! equal). Many ops share one program (one compile) and every intermediate value of
//! interest is a result, so a mismatch names the op that caused it.
//!
//! Every comparison also runs once on edge inputs (each float and complex input filled
//! from [`EDGE`]: signed zeros, tiny and huge magnitudes, infinities, NaN), where a run
//! the interpreter refuses must be refused by the backend too. Dedicated cases cover the
//! refusals (indices out of range, slices past an axis, reductions over nothing) and long
//! transforms.

#![cfg(feature = "llvm")]

use archc_compiler::autodiff::expand::inline_calls;
use archc_compiler::autodiff::{gradient, FuncTable};
use archc_compiler::tir::ops::{binary_name, unary_name, BINARY_OPS, UNARY_OPS};
use archc_compiler::tir::testutil::{sample_program, ty, FuncBuilder};
use archc_compiler::tir::{
    infer, verify, BinaryOp, DType, Dim, Func, Init, Op, ParamDecl, PoolOp, Program, ReduceOp, TensorType, UnaryOp,
    ValueId,
};
use archc_mlir::backend::{MlirCpu, MlirGpu, MlirGpuStagingOnCpu};
use archc_runtime::elem::C64;
use archc_runtime::{Executor, Interpreter, Tensor};

/// The backend under test: `mlir-cpu`; `mlir-gpu` when `ARCHC_OPS_BACKEND=mlir-gpu` (a
/// GPU run of the same tests, with the GPU tolerance; see `scripts/gpu-check.sh`); the
/// GPU path's staging lowered for the CPU when `ARCHC_OPS_BACKEND=gpu-staging`.
fn on_gpu() -> bool {
    std::env::var("ARCHC_OPS_BACKEND").as_deref() == Ok("mlir-gpu")
}

fn gpu_staging() -> bool {
    std::env::var("ARCHC_OPS_BACKEND").as_deref() == Ok("gpu-staging")
}

/// Scaled-error bound: 1e-5 on the CPU, 1e-4 on the GPU.
fn tol() -> f64 {
    if on_gpu() {
        1e-4
    } else {
        1e-5
    }
}

/// The GPU options `scripts/gpu-check.sh` asks for through the environment
/// (`ARCHC_GPU_MEMORY=managed`, `ARCHC_GPU_ASYNC=1`), set once for the process (the
/// library reads no environment variable; the CLI maps these the same way).
fn gpu_options_from_env() {
    use archc_mlir::exec::gpu::{configure, GpuOptions};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let options = GpuOptions::from_vars(&|name| std::env::var_os(name), Default::default());
        configure(options.expect("GPU variables")).expect("GPU options");
    });
}

/// A fresh executor of the backend under test, parameters initialised from `seed`.
fn backend(p: &Program, seed: u64) -> Box<dyn Executor + '_> {
    if on_gpu() {
        gpu_options_from_env();
        let mut jit = MlirGpu::new(p);
        jit.init_params(seed).expect("backend parameters");
        Box::new(jit)
    } else if gpu_staging() {
        let mut jit = MlirGpuStagingOnCpu::new(p);
        jit.init_params(seed).expect("backend parameters");
        Box::new(jit)
    } else {
        let mut jit = MlirCpu::new(p);
        jit.init_params(seed).expect("backend parameters");
        Box::new(jit)
    }
}

// ---------------------------------------------------------------------------------------
// Comparison

/// The backend in messages.
const BACKEND: &str = "MLIR backend";

/// A run of the backend under test that fails when compiled code recorded a failure
/// (`archc_mlir::runtime::rt::take_failure`), whether or not the executor reports it itself.
fn run_checked(jit: &mut dyn Executor, func: &str, inputs: &[Tensor], seed: u64) -> Result<Vec<Tensor>, String> {
    archc_mlir::runtime::rt::take_failure();
    let out = jit.run_func(func, inputs, seed).map_err(|e| e.to_string())?;
    match archc_mlir::runtime::rt::take_failure() {
        Some(e) => Err(e),
        None => Ok(out),
    }
}

/// How a slice past a shorter input's end is refused.
const SHORT_SLICE: &str = "the declared type needs 16";

/// Every target runs the 65,536-point transform (bounded memory everywhere).
fn long_ffts() -> bool {
    true
}

/// The GPU target folds long reductions in stages (here 8192 rows in chunks of 32, then
/// 32, then 8: first `[1, 256, 32, 3]`; axes 0 and 2 of `[8, 6, 1024]` as axis 2 in
/// chunks of 32, first `[48, 32, 32, 1]`, then axis 0), the CPU in one.
fn check_long_reductions(p: &Program, inputs: &[Tensor]) {
    let shapes: Vec<_> = inputs.iter().map(|t| (t.dtype(), t.shape().to_vec())).collect();
    let text = |target| archc_mlir::emit::emit_module_for(p, "main", &shapes, None, target).expect("emits").text;
    assert!(text(archc_mlir::emit::Target::Gpu).contains("tensor<1x256x32x3xf32>"));
    assert!(text(archc_mlir::emit::Target::Gpu).contains("tensor<1x8x32x3xf64>"));
    assert!(text(archc_mlir::emit::Target::Gpu).contains("tensor<48x32x32x1xf32>"));
    assert!(!text(archc_mlir::emit::Target::Cpu).contains("tensor<1x256x32x3xf32>"));
}

/// Long real transforms never build a DFT matrix (a 65,536-point table would take 17 GB):
/// on the CPU they call the runtime's FFT; on the GPU target each table entry is computed
/// where a reduction uses it (`[2, 4098]` f64 sums for the 4096-point rfft).
fn check_long_ffts(p: &Program, inputs: &[Tensor]) {
    let shapes: Vec<_> = inputs.iter().map(|t| (t.dtype(), t.shape().to_vec())).collect();
    let text = |target| archc_mlir::emit::emit_module_for(p, "main", &shapes, None, target).expect("emits").text;
    let cpu = text(archc_mlir::emit::Target::Cpu);
    for sym in ["archc_rfft_f32", "archc_irfft_f32", "archc_rfft_f64", "archc_irfft_f64"] {
        assert!(cpu.contains(&format!("func.call @{sym}(")), "{sym} is not called");
    }
    let gpu = text(archc_mlir::emit::Target::Gpu);
    assert!(!gpu.contains("archc_rfft"), "the GPU target calls the host FFT");
    assert!(gpu.contains("tensor<2x4098xf64>"), "the 4096-point rfft is not one reduction");
    for t in [&cpu, &gpu] {
        assert!(!t.contains("4096x4098") && !t.contains("65536x32"), "a long DFT table is built");
    }
}

include!("shared/op_cases.rs");
