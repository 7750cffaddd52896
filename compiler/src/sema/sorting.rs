//! Sorting and selection builtins, written with the `argsort` op and gathers (so their
//! values carry gradients to the elements they pick), and `stop_gradient`.
//!
//! - `argsort(x, axis = -1, descending = false)`: i64 indices that sort `axis`; stable,
//!   NaN the largest value (the `argsort` op).
//! - `sort(x, axis = -1, descending = false)`: `take_along(x, argsort(x, ...), axis)`.
//! - `argtopk(x, k, axis = -1, largest = true)`: the first `k` indices of
//!   `argsort(x, descending = largest)`; `topk` their values.
//! - `argmin(x, axis = -1, keepdim = false)`: the first minimum, as `argmax(-x)` (floats;
//!   a NaN wins, as in `argmax`) or `argmax(-1 - x)` (i64, where it cannot overflow).
//! - `take_along(x, idx, axis = -1)`: `out[.., i, ..] = x[.., idx[.., i, ..], ..]` (numpy's
//!   `take_along_axis`); `idx` has `x`'s shape except along `axis`; a negative index
//!   counts from the end; one outside `[-n, n)` is a run-time error (it becomes an index
//!   the gather refuses).
//! - `stop_gradient(x)`: `x`, through which no gradient flows.

use super::args::ArgReader;
use super::builtins::{norm_axis, permute};
use super::resample::full;
use super::value::{TVal, Value};
use super::{Checker, R};
use crate::diag::Diagnostic;
use crate::tir::{BinaryOp, DType, Dim, Op, TensorType, UnaryOp};
use archc_grammar::span::Span;

/// The builtins of this module.
pub const NAMES: &[&str] = &["argsort", "sort", "topk", "argtopk", "argmin", "take_along", "stop_gradient"];

pub fn call(c: &mut Checker, name: &str, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    if name == "stop_gradient" {
        return match a.req("x")? {
            (Value::Tensor(x), _) => c.emit(Op::StopGradient, &[&x], None, span).map(Value::Tensor),
            (v, _) => Ok(v),
        };
    }
    let x = a.tensor("x")?;
    let t = |v: TVal| Ok(Value::Tensor(v));
    match name {
        "argmin" => {
            let axis = norm_axis(a.int_or("axis", -1)?, x.ty.rank(), span)?;
            let keepdim = a.bool_or("keepdim", false)?;
            let flipped = flip(c, &x, span)?;
            t(c.emit(Op::ArgMax { axis, keepdim }, &[&flipped], None, span)?)
        }
        "take_along" => {
            let idx = a.tensor("idx")?;
            let axis = norm_axis(a.int_or("axis", -1)?, x.ty.rank(), span)?;
            t(take_along(c, &x, &idx, axis, span)?)
        }
        "argsort" | "sort" => {
            let axis = norm_axis(a.int_or("axis", -1)?, x.ty.rank(), span)?;
            let descending = a.bool_or("descending", false)?;
            let idx = c.emit(Op::ArgSort { axis, descending }, &[&x], None, span)?;
            t(if name == "sort" { take_along(c, &x, &idx, axis, span)? } else { idx })
        }
        _ => {
            let k = a.dim("k")?;
            let axis = norm_axis(a.int_or("axis", -1)?, x.ty.rank(), span)?;
            let largest = a.bool_or("largest", true)?;
            let idx = top_indices(c, &x, &k, axis, largest, span)?;
            t(if name == "topk" { take_along(c, &x, &idx, axis, span)? } else { idx })
        }
    }
}

/// An order-reversing map: `-x` for floats, `-1 - x` for i64.
fn flip(c: &mut Checker, x: &TVal, span: Span) -> R<TVal> {
    match x.ty.dtype {
        DType::F32 | DType::F64 => c.emit(Op::Unary(UnaryOp::Neg), &[x], None, span),
        DType::I64 => {
            let minus_one = full(c, -1.0, DType::I64, &x.ty.shape, span)?;
            c.emit(Op::Binary(BinaryOp::Sub), &[&minus_one, x], None, span)
        }
        other => Err(Diagnostic::error(format!("argmin needs f32, f64 or i64 values, found {other}"), span)),
    }
}

/// The first `k` indices along `axis` of the sort (descending when `largest`).
fn top_indices(c: &mut Checker, x: &TVal, k: &Dim, axis: usize, largest: bool, span: Span) -> R<TVal> {
    let n = &x.ty.shape[axis];
    let too_many = match (k.as_const(), n.as_const()) {
        (Some(k), _) if k < 0 => true,
        (Some(k), Some(n)) => k > n,
        _ => false,
    };
    if too_many {
        return Err(Diagnostic::error(
            format!("topk of {k} values along axis {axis} of {}, which has {n}", x.ty),
            span,
        ));
    }
    let sorted = c.emit(Op::ArgSort { axis, descending: largest }, &[x], None, span)?;
    let r = x.ty.rank();
    let start = vec![Dim::constant(0); r];
    let mut end = x.ty.shape.clone();
    end[axis] = k.clone();
    let mut shape = x.ty.shape.clone();
    shape[axis] = k.clone();
    let op = Op::Slice { start, end, step: vec![1; r] };
    c.emit(op, &[&sorted], Some(TensorType::new(DType::I64, shape)), span)
}

/// `x` along `axis` at `idx` (see the module docs): both moved to `[rows, n]` and
/// `[rows, k]`, the indices offset by their row's start in the flattened `x`.
pub fn take_along(c: &mut Checker, x: &TVal, idx: &TVal, axis: usize, span: Span) -> R<TVal> {
    let r = x.ty.rank();
    let fits = idx.ty.rank() == r && (0..r).all(|i| i == axis || idx.ty.shape[i] == x.ty.shape[i]);
    if idx.ty.dtype != DType::I64 || !fits {
        return Err(Diagnostic::error(
            format!(
                "take_along needs i64 indices with the shape of {} except along axis {axis}, found {}",
                x.ty, idx.ty
            ),
            span,
        ));
    }
    let perm: Vec<usize> = (0..r).filter(|&i| i != axis).chain([axis]).collect();
    let (xp, ip) = (permute(c, x, perm.clone(), span)?, permute(c, idx, perm.clone(), span)?);
    let rows = xp.ty.shape[..r - 1].iter().fold(Dim::constant(1), |acc, d| acc.mul(d));
    let (n, k) = (x.ty.shape[axis].clone(), idx.ty.shape[axis].clone());
    let flat_x = c.reshape(&xp, vec![rows.mul(&n)], span)?;
    let grid = vec![rows.clone(), k.clone()];
    let flat_i = c.reshape(&ip, grid.clone(), span)?;
    let picked = flat_index(c, &flat_i, &n, &grid, span)?;
    let g = c.emit(Op::Gather { axis: 0 }, &[&flat_x, &picked], None, span)?;
    let mut moved = xp.ty.shape.clone();
    moved[r - 1] = k;
    let back = c.reshape(&g, moved, span)?;
    let mut inverse = vec![0; r];
    for (i, &p) in perm.iter().enumerate() {
        inverse[p] = i;
    }
    permute(c, &back, inverse, span)
}

/// Row `i`'s indices `idx[i, :]` into the flattened `[rows * n]`: `i * n + idx` (a
/// negative index counting from the row's end), and `i64::MIN` where out of range.
fn flat_index(c: &mut Checker, idx: &TVal, n: &Dim, grid: &[Dim], span: Span) -> R<TVal> {
    let n_b = super::resample::size_of(c, n, grid, span)?;
    let zero = full(c, 0.0, DType::I64, grid, span)?;
    let bin = |c: &mut Checker, op, a: &TVal, b: &TVal| c.emit(Op::Binary(op), &[a, b], None, span);
    let negative = bin(c, BinaryOp::Lt, idx, &zero)?;
    let wrapped = bin(c, BinaryOp::Add, idx, &n_b)?;
    let norm = c.emit(Op::Select, &[&negative, &wrapped, idx], None, span)?;
    let low = bin(c, BinaryOp::Ge, &norm, &zero)?;
    let high = bin(c, BinaryOp::Lt, &norm, &n_b)?;
    let valid = bin(c, BinaryOp::And, &low, &high)?;
    let row = c.emit(Op::Iota { axis: 0 }, &[], Some(TensorType::new(DType::I64, grid.to_vec())), span)?;
    let start = bin(c, BinaryOp::Mul, &row, &n_b)?;
    let flat = bin(c, BinaryOp::Add, &start, &norm)?;
    let refused = full(c, i64::MIN as f64, DType::I64, grid, span)?;
    c.emit(Op::Select, &[&valid, &flat, &refused], None, span)
}
