//! Reductions: `reduce.{sum,mean,max,min}` over a set of axes, and `argmax`.
//!
//! Contract: axes are distinct and in range; `keepdim` keeps reduced axes as size 1.
//! The reduced axes are moved last (a copy) so each output element reduces one
//! contiguous run. Coverage and numerics:
//! - sum: f32 (accumulated in f64, rounded once), f64, i64 (wrapping), c64 (in c128).
//! - mean: f32 (in f64), f64, c64; the mean of zero elements is NaN.
//! - max/min: f32, f64 (NaN propagates), i64, bool; zero elements are an error.
//! - argmax: f32, f64, i64, bool; the first maximum wins, a NaN counts as the maximum
//!   (the first NaN wins, like numpy and PyTorch); result i64.

use super::movement::{axis_last_perm, permute_unchecked};
use crate::elem::{Num, C64};
use crate::tensor::{Data, Tensor};
use archc_compiler::tir::ReduceOp;

pub fn reduce(op: ReduceOp, x: &Tensor, axes: &[usize], keepdim: bool) -> Result<Tensor, String> {
    let mut seen = vec![false; x.rank()];
    for &a in axes {
        if a >= x.rank() || std::mem::replace(&mut seen[a], true) {
            return Err(format!("bad reduction axes {axes:?} for {}", x.type_string()));
        }
    }
    let kept: Vec<usize> = (0..x.rank()).filter(|a| !seen[*a]).collect();
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let moved = permute_unchecked(x, &perm);
    let inner: usize = axes.iter().map(|&a| x.shape[a]).product();
    let outer: usize = kept.iter().map(|&a| x.shape[a]).product();
    let data = reduce_runs(op, &moved.data, inner, outer)?;
    let shape = x.shape.iter().enumerate().filter_map(|(i, &d)| reduced_size(seen[i], d, keepdim)).collect();
    Ok(Tensor { shape, data })
}

fn reduced_size(reduced: bool, size: usize, keepdim: bool) -> Option<usize> {
    match (reduced, keepdim) {
        (false, _) => Some(size),
        (true, true) => Some(1),
        (true, false) => None,
    }
}

/// Reduces each of the `outer` runs of `inner` consecutive elements of `data`.
fn reduce_runs(op: ReduceOp, data: &Data, inner: usize, outer: usize) -> Result<Data, String> {
    match op {
        ReduceOp::Sum => sum(data, inner, outer),
        ReduceOp::Mean => mean(data, inner, outer),
        ReduceOp::Max | ReduceOp::Min => extreme(op == ReduceOp::Max, data, inner),
    }
    .ok_or_else(|| {
        let name = archc_compiler::tir::ops::reduce_name(op);
        if inner == 0 && matches!(op, ReduceOp::Max | ReduceOp::Min) {
            format!("reduce.{name} over zero elements")
        } else {
            format!("reduce.{name} is not defined on {}", data.dtype())
        }
    })
}

/// Sums of runs in the accumulator type. `outer` covers `inner == 0`.
fn sums<T: Num>(v: &[T], inner: usize, outer: usize) -> Vec<T::Acc> {
    if inner == 0 {
        return vec![T::zero(); outer];
    }
    v.chunks(inner).map(|run| run.iter().fold(T::zero(), |acc, &x| acc + x.acc())).collect()
}

fn sum(data: &Data, inner: usize, outer: usize) -> Option<Data> {
    Some(match data {
        Data::F32(v) => Data::F32(sums(v, inner, outer).into_iter().map(f32::from_acc).collect()),
        Data::F64(v) => Data::F64(sums(v, inner, outer)),
        Data::I64(v) => Data::I64(sums(v, inner, outer).into_iter().map(i64::from_acc).collect()),
        Data::C64(v) => Data::C64(sums(v, inner, outer).into_iter().map(C64::from_acc).collect()),
        Data::Bool(_) => return None,
    })
}

fn mean(data: &Data, inner: usize, outer: usize) -> Option<Data> {
    let n = inner as f64;
    Some(match data {
        Data::F32(v) => Data::F32(sums(v, inner, outer).into_iter().map(|s| (s / n) as f32).collect()),
        Data::F64(v) => Data::F64(sums(v, inner, outer).into_iter().map(|s| s / n).collect()),
        Data::C64(v) => Data::C64(sums(v, inner, outer).into_iter().map(|s| C64::from_acc(s / n)).collect()),
        _ => return None,
    })
}

/// `x != x` is true only for NaN (false for integers and bools).
#[allow(clippy::eq_op)]
fn is_nan<T: PartialOrd>(x: &T) -> bool {
    x != x
}

/// Max (or min) of runs; NaN propagates. `None` for empty runs or complex data.
fn extreme(max: bool, data: &Data, inner: usize) -> Option<Data> {
    fn runs<T: Copy + PartialOrd>(v: &[T], inner: usize, max: bool) -> Vec<T> {
        let better = |a: T, b: T| is_nan(&a) || (if max { a >= b } else { a <= b });
        v.chunks(inner)
            .map(|run| run.iter().copied().reduce(|a, b| if better(a, b) { a } else { b }).unwrap())
            .collect()
    }
    if inner == 0 {
        return None;
    }
    Some(match data {
        Data::F32(v) => Data::F32(runs(v, inner, max)),
        Data::F64(v) => Data::F64(runs(v, inner, max)),
        Data::I64(v) => Data::I64(runs(v, inner, max)),
        Data::Bool(v) => Data::Bool(runs(v, inner, max)),
        Data::C64(_) => return None,
    })
}

/// Index of the first maximum along `axis` (a NaN is the maximum).
pub fn argmax(x: &Tensor, axis: usize, keepdim: bool) -> Result<Tensor, String> {
    if axis >= x.rank() {
        return Err(format!("argmax over axis {axis} of {}", x.type_string()));
    }
    if x.shape[axis] == 0 {
        return Err(format!("argmax over zero elements (axis {axis} of {})", x.type_string()));
    }
    let moved = permute_unchecked(x, &axis_last_perm(x.rank(), axis));
    let n = x.shape[axis];
    fn first_max<T: Copy + PartialOrd>(v: &[T], n: usize) -> Vec<i64> {
        let pick = |run: &[T]| {
            let mut best = 0;
            for (i, x) in run.iter().enumerate() {
                if is_nan(x) {
                    return i;
                }
                if *x > run[best] {
                    best = i;
                }
            }
            best
        };
        v.chunks(n).map(|run| pick(run) as i64).collect()
    }
    let idx = match &moved.data {
        Data::F32(v) => first_max(v, n),
        Data::F64(v) => first_max(v, n),
        Data::I64(v) => first_max(v, n),
        Data::Bool(v) => first_max(v, n),
        Data::C64(_) => return Err("argmax is not defined on c64".into()),
    };
    let shape = x.shape.iter().enumerate().filter_map(|(i, &d)| reduced_size(i == axis, d, keepdim)).collect();
    Ok(Tensor { shape, data: Data::I64(idx) })
}
