//! Differential tests of the Cranelift tier, op by op: every TIR primitive op (forward,
//! on every dtype the type rules allow) and the gradient programs of the differentiable
//! ones are JIT-compiled by Cranelift and run against the reference interpreter (the
//! cases of the MLIR backend's `compiler/mlir/tests/ops.rs`, which runs the same
//! programs).
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

use archc_clif::ClifCpu;
use archc_compiler::autodiff::expand::inline_calls;
use archc_compiler::autodiff::{gradient, FuncTable};
use archc_compiler::tir::ops::{binary_name, unary_name, BINARY_OPS, UNARY_OPS};
use archc_compiler::tir::testutil::{sample_program, ty, FuncBuilder};
use archc_compiler::tir::{
    infer, verify, BinaryOp, DType, Dim, Func, Init, Op, ParamDecl, PoolOp, Program, ReduceOp, TensorType, UnaryOp,
    ValueId,
};
use archc_runtime::elem::C64;
use archc_runtime::{Executor, Interpreter, Tensor};

/// Scaled-error bound.
fn tol() -> f64 {
    1e-5
}

/// A fresh executor of the tier, parameters initialised from `seed`.
fn backend(p: &Program, seed: u64) -> Box<dyn Executor + '_> {
    let mut jit = ClifCpu::new(p);
    jit.init_params(seed).expect("backend parameters");
    Box::new(jit)
}

// ---------------------------------------------------------------------------------------
// Comparison

/// The backend in messages.
const BACKEND: &str = "Cranelift tier";

/// A run of the tier (its refusals are the run's errors).
fn run_checked(jit: &mut dyn Executor, func: &str, inputs: &[Tensor], seed: u64) -> Result<Vec<Tensor>, String> {
    jit.run_func(func, inputs, seed).map_err(|e| e.to_string())
}

/// How a slice past a shorter input's end is refused.
const SHORT_SLICE: &str = "declared f32[2, 16]";

/// The 65,536-point transform runs (the interpreter's FFT, row by row).
fn long_ffts() -> bool {
    true
}

/// Long reductions are plain loops: nothing to check beyond the values.
fn check_long_reductions(_: &Program, _: &[Tensor]) {}

/// Long transforms run the interpreter's FFT: nothing to check beyond the values.
fn check_long_ffts(_: &Program, _: &[Tensor]) {}

include!("../../mlir/tests/shared/op_cases.rs");
