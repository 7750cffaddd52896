//! Reductions as `linalg` ops: sums, products, extrema and `argmax`. Reductions of f32
//! accumulate in f64 like the interpreter; on the CPU those f64 sums may be reassociated
//! (`fastmath<reassoc>`), so LLVM vectorises them with several partial sums (a strict
//! order cannot be vectorised; any order of f64 sums of f32 terms rounds to the same f32
//! within the interpreter's bounds); on the GPU, reductions of many elements into few
//! results run in stages (see [`stages_for_threads`]).

use super::builder::{product, Iter, Operand, V};
use super::lower::FnLower;
use super::reshape::dims;
use super::scalar;
use super::{EmitError, EmitResult, Ty};
use archc_compiler::tir::{BinaryOp, DType, Dim, ReduceOp};

/// What a reduction folds with: the combining op, the accumulator dtype, its start value.
pub(super) struct Fold {
    combine: BinaryOp,
    acc: DType,
    init: f64,
}

impl FnLower<'_, '_, '_> {
    /// `reduce.*` over `axes`; the result before `keepdim` drops the reduced axes.
    pub fn reduce(&mut self, op: ReduceOp, axes: &[usize], keepdim: bool, x: &V, out: &Ty) -> EmitResult<V> {
        if axes.is_empty() {
            // Reducing no axis is the identity (and a generic without a reduction loop
            // must not read its init: see `contract`).
            return Ok(x.clone());
        }
        let count = product(axes.iter().map(|&i| &x.shape[i]));
        let acc = match (op, x.dtype) {
            (ReduceOp::Sum | ReduceOp::Mean, DType::F32) => DType::F64,
            (_, d) => d,
        };
        let init_value = match (op, acc) {
            (ReduceOp::Sum | ReduceOp::Mean, _) => 0.0,
            (ReduceOp::Max, DType::I64) => i64::MIN as f64,
            (ReduceOp::Min, DType::I64) => i64::MAX as f64,
            (ReduceOp::Max, DType::Bool) => 0.0,
            (ReduceOp::Min, DType::Bool) => 1.0,
            (ReduceOp::Max, _) => f64::NEG_INFINITY,
            (ReduceOp::Min, _) => f64::INFINITY,
        };
        if x.dtype == DType::C64 && matches!(op, ReduceOp::Max | ReduceOp::Min) {
            return Err(EmitError::Unsupported("max/min reductions are not defined on c64".into()));
        }
        if matches!(op, ReduceOp::Max | ReduceOp::Min) {
            self.refuse_empty(&count, if op == ReduceOp::Max { 0 } else { 1 })?;
        }
        let combine = match op {
            ReduceOp::Sum | ReduceOp::Mean => BinaryOp::Add,
            ReduceOp::Max => BinaryOp::Max,
            ReduceOp::Min => BinaryOp::Min,
        };
        let fold = Fold { combine, acc, init: init_value };
        let mut v = match self.em.target {
            super::Target::Gpu => self.reduce_on_gpu(&fold, x, axes)?,
            super::Target::Cpu => self.fold(&fold, x, axes),
        };
        if op == ReduceOp::Mean {
            let n = match count.as_const() {
                Some(c) => Ok(c as f64),
                None => Err(self.b.size(&count)),
            };
            v = self.b.map(&[&v], acc, |b, a| {
                let c = match n {
                    Ok(n) => b.scalar(n, acc),
                    Err(size) => {
                        let i = b.assign(format!("arith.index_cast {size} : index to i64"));
                        scalar::cast(b, DType::I64, acc, &i)
                    }
                };
                scalar::binary(b, BinaryOp::Div, acc, &a[0], &c).expect("division of a float")
            });
        }
        if acc != out.0 {
            v = self.cast(&v, out.0);
        }
        Ok(if keepdim { self.reshape(&v, &out.1)? } else { v })
    }

    /// Refuses a `max` (`op` 0), `min` (1) or `argmax` (2) over `count` elements when
    /// `count` is 0 (as the interpreter does): an error when it is constant, a run-time
    /// failure otherwise.
    pub(super) fn refuse_empty(&mut self, count: &Dim, op: i64) -> EmitResult<()> {
        match count.as_const() {
            Some(0) => Err(EmitError::Refused(crate::runtime::rt::Failure::message(3, op, 0, 0))),
            Some(_) => Ok(()),
            None => {
                let (n, zero) = (self.b.size(count), self.b.index(0));
                let bad = self.b.assign(format!("arith.cmpi eq, {n}, {zero} : index"));
                let code = self.b.i64c(op);
                let z = self.b.i64c(0);
                self.fail_if(&bad, crate::runtime::rt::Failure::EmptyReduction, [&code, &z, &z]);
                Ok(())
            }
        }
    }

    /// `x` folded over `axes` into the accumulator dtype (the reduced axes dropped).
    ///
    /// The loops follow `x`'s axes on the CPU (rows stay contiguous). On the GPU the kept
    /// axes come first and the reduced ones last: lowered to loops, a reduced axis before
    /// a kept one would be a host loop launching one kernel per index (a bias gradient's
    /// sum over the batch: one launch per row), where this way each thread folds its
    /// result's elements in one kernel.
    pub(super) fn fold(&mut self, fold: &Fold, x: &V, axes: &[usize]) -> V {
        let kept: Vec<usize> = (0..x.rank()).filter(|i| !axes.contains(i)).collect();
        let shape: Vec<Dim> = kept.iter().map(|&i| x.shape[i].clone()).collect();
        let init = self.b.filled(fold.init, fold.acc, &shape);
        let (input, iters, output): (_, Vec<Iter>, _) = match self.em.target {
            super::Target::Cpu => {
                let iters = (0..x.rank()).map(|i| if axes.contains(&i) { Iter::Red } else { Iter::Par }).collect();
                (Operand::identity(x), iters, dims(kept))
            }
            super::Target::Gpu => {
                // Loop `l` runs over axis `order[l]`: the kept axes, then the reduced ones.
                let order: Vec<usize> =
                    kept.iter().copied().chain((0..x.rank()).filter(|i| axes.contains(i))).collect();
                let map =
                    (0..x.rank()).map(|axis| format!("d{}", order.iter().position(|&a| a == axis).unwrap_or(axis)));
                let iters = (0..x.rank()).map(|l| if l < kept.len() { Iter::Par } else { Iter::Red }).collect();
                (Operand::new(x, map.collect()), iters, dims(0..kept.len()))
            }
        };
        let (xd, acc, combine) = (x.dtype, fold.acc, fold.combine);
        let reassoc = self.em.target == super::Target::Cpu && combine == BinaryOp::Add && acc == DType::F64;
        let mut r = self.b.generic(&[input], &[Operand::new(&init, output)], &iters, |b, a| {
            let v = scalar::cast(b, xd, acc, &a[0]);
            if reassoc {
                // Any order of the f64 partial sums is as good as the interpreter's.
                return vec![b.assign(format!("arith.addf {}, {v} fastmath<reassoc> : f64", a[1]))];
            }
            vec![scalar::binary(b, combine, acc, &a[1], &v).expect("sum/max/min of a checked dtype")]
        });
        r.remove(0)
    }

    /// `x` folded over `axes` on the GPU: the axes in runs of adjacent ones, the innermost
    /// run first (the reduced axes dropped after each), each run in stages where
    /// [`stages_for_threads`] says so. A bias gradient's sum over the batch and length axes
    /// of `[B, C, N]` is a sum over `N` into `[B, C]`, then over `B`: many threads in
    /// both, where one fold over both axes gives one thread per channel.
    pub(super) fn reduce_on_gpu(&mut self, fold: &Fold, x: &V, axes: &[usize]) -> EmitResult<V> {
        let mut v = x.clone();
        for run in adjacent_runs(axes).iter().rev() {
            let kept: Vec<Dim> = (0..v.rank()).filter(|i| !run.contains(i)).map(|i| v.shape[i].clone()).collect();
            v = match stages_for_threads(&v.shape, run) {
                Some(stages) => self.reduce_in_stages(fold, &v, &stages, &kept)?,
                None => self.fold(fold, &v, run),
            };
        }
        Ok(v)
    }

    /// A reduction in stages (see [`stages_for_threads`]): `x` as `[outer, reduced,
    /// inner]`, its reduced axis folded a chunk at a time (the innermost part of the
    /// index first), then shaped as `shape`.
    pub(super) fn reduce_in_stages(&mut self, fold: &Fold, x: &V, stages: &Stages, shape: &[Dim]) -> EmitResult<V> {
        let dim = |n: usize| Dim::from(n as i64);
        let mut rest: usize = stages.chunks.iter().product();
        let mut v = x.clone();
        for &chunk in &stages.chunks {
            rest /= chunk;
            let four = vec![dim(stages.outer), dim(rest), dim(chunk), dim(stages.inner)];
            let x4 = self.reshape(&v, &four)?;
            v = self.fold(fold, &x4, &[2]);
        }
        self.reshape(&v, shape)
    }

    /// Index of the first maximum along `axis` (a NaN counts as the maximum).
    pub fn argmax(&mut self, axis: usize, keepdim: bool, x: &V, out: &Ty) -> EmitResult<V> {
        self.refuse_empty(&x.shape[axis].clone(), 2)?;
        let kept: Vec<usize> = (0..x.rank()).filter(|&i| i != axis).collect();
        let shape: Vec<Dim> = kept.iter().map(|&i| x.shape[i].clone()).collect();
        let vd = if x.dtype == DType::Bool { DType::I64 } else { x.dtype };
        let lowest = if vd == DType::I64 { i64::MIN as f64 } else { f64::NEG_INFINITY };
        let best = self.b.filled(lowest, vd, &shape);
        let idx = self.b.filled(0.0, DType::I64, &shape);
        let iters: Vec<Iter> = (0..x.rank()).map(|i| if i == axis { Iter::Red } else { Iter::Par }).collect();
        let xd = x.dtype;
        let outs = [Operand::new(&best, dims(kept.clone())), Operand::new(&idx, dims(kept.clone()))];
        let mut r = self.b.generic(&[Operand::identity(x)], &outs, &iters, |b, a| {
            let v = scalar::cast(b, xd, vd, &a[0]);
            let i = b.loop_index(axis);
            let i = b.assign(format!("arith.index_cast {i} : index to i64"));
            let t = super::types::elem(vd);
            let take = if vd == DType::I64 {
                b.assign(format!("arith.cmpi sgt, {v}, {} : i64", a[1]))
            } else {
                let gt = b.assign(format!("arith.cmpf ogt, {v}, {} : {t}", a[1]));
                let vnan = b.assign(format!("arith.cmpf uno, {v}, {v} : {t}"));
                let bnan = b.assign(format!("arith.cmpf uno, {0}, {0} : {t}", a[1]));
                let either = b.assign(format!("arith.ori {gt}, {vnan} : i1"));
                let tr = b.scalar(1.0, DType::Bool);
                let bok = b.assign(format!("arith.xori {bnan}, {tr} : i1"));
                b.assign(format!("arith.andi {either}, {bok} : i1"))
            };
            let nb = b.assign(format!("arith.select {take}, {v}, {} : {t}", a[1]));
            let ni = b.assign(format!("arith.select {take}, {i}, {} : i64", a[2]));
            vec![nb, ni]
        });
        let v = r.remove(1);
        if keepdim {
            self.reshape(&v, &out.1)
        } else {
            Ok(v)
        }
    }
}

/// `axes` (in any order) as runs of adjacent axes, in increasing order.
pub(super) fn adjacent_runs(axes: &[usize]) -> Vec<Vec<usize>> {
    let mut sorted = axes.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut runs: Vec<Vec<usize>> = Vec::new();
    for a in sorted {
        match runs.last_mut() {
            Some(run) if run.last() == Some(&(a - 1)) => run.push(a),
            _ => runs.push(vec![a]),
        }
    }
    runs
}

/// How a GPU reduction runs in stages: `x` as `[outer, reduced, inner]`, `reduced` the
/// product of `chunks`, folded first to last.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(super) struct Stages {
    outer: usize,
    chunks: Vec<usize>,
    inner: usize,
}

/// The longest run of elements one thread folds in a stage (apart from the last).
pub(super) const CHAIN: usize = 32;
/// Reductions into at least this many results run in one stage: enough threads to hide
/// the latency of each one's loads. Rows (reductions over the innermost axis, whose
/// loads hit the cache line the previous one fetched) need fewer.
pub(super) const MANY_RESULTS: usize = 1 << 17;
pub(super) const MANY_ROWS: usize = 1 << 13;

/// How to reduce `axes` of a tensor of `shape` in stages on the GPU, or `None`.
/// A GPU kernel runs one thread per result, which folds its elements one after another,
/// each load waiting for memory: a reduction of many elements into few results (a
/// loss's mean, a bias gradient's sum over the batch) is a long chain of waits on a
/// handful of threads. Folding chunks of at most [`CHAIN`] elements per thread, stage
/// after stage, gives far more threads and short chains. Applies when the reduced axes
/// are adjacent and every size is constant, and their product has divisors in
/// `4..=CHAIN`.
pub(super) fn stages_for_threads(shape: &[Dim], axes: &[usize]) -> Option<Stages> {
    let sizes: Vec<usize> =
        shape.iter().map(|d| d.as_const().and_then(|c| usize::try_from(c).ok())).collect::<Option<_>>()?;
    let (&first, &last) = (axes.iter().min()?, axes.iter().max()?);
    if last - first + 1 != axes.len() {
        return None;
    }
    let outer: usize = sizes[..first].iter().product();
    let inner: usize = sizes[last + 1..].iter().product();
    let many = if inner == 1 { MANY_ROWS } else { MANY_RESULTS };
    let mut rest: usize = sizes[first..=last].iter().product();
    if outer * inner >= many {
        return None;
    }
    let mut chunks = Vec::new();
    while rest > 2 * CHAIN {
        let Some(chunk) = (4..=CHAIN).rev().find(|c| rest % c == 0) else { break };
        chunks.push(chunk);
        rest /= chunk;
    }
    if chunks.is_empty() {
        return None;
    }
    chunks.push(rest);
    Some(Stages { outer, chunks, inner })
}

#[cfg(test)]
mod split_tests {
    use super::{stages_for_threads, Stages};
    use archc_compiler::tir::Dim;

    pub(super) fn shape(sizes: &[i64]) -> Vec<Dim> {
        sizes.iter().map(|&n| Dim::from(n)).collect()
    }

    pub(super) fn stages(outer: usize, chunks: &[usize], inner: usize) -> Option<Stages> {
        Some(Stages { outer, chunks: chunks.to_vec(), inner })
    }

    #[test]
    pub(super) fn long_reductions_fold_in_chunks_of_at_most_32() {
        let full = stages_for_threads(&shape(&[32, 256, 256]), &[0, 1, 2]);
        assert_eq!(full, stages(1, &[32, 32, 32, 64], 1), "2M elements into one");
        let bias = stages_for_threads(&shape(&[256, 256]), &[0]);
        assert_eq!(bias, stages(1, &[32, 8], 256), "a bias gradient over a batch of 256");
        let rows = stages_for_threads(&shape(&[32, 784]), &[1]);
        assert_eq!(rows, stages(32, &[28, 28], 1));
        let mean = stages_for_threads(&shape(&[32, 1024, 1]), &[0, 1, 2]);
        assert_eq!(mean, stages(1, &[32, 32, 32], 1));
    }

    #[test]
    pub(super) fn axes_split_into_adjacent_runs() {
        use super::adjacent_runs;
        assert_eq!(adjacent_runs(&[2, 0]), vec![vec![0], vec![2]]);
        assert_eq!(adjacent_runs(&[0, 1, 3, 4, 6]), vec![vec![0, 1], vec![3, 4], vec![6]]);
        assert_eq!(adjacent_runs(&[1]), vec![vec![1]]);
    }

    #[test]
    pub(super) fn other_reductions_stay_in_one_stage() {
        assert_eq!(stages_for_threads(&shape(&[64, 10]), &[0]), None, "short");
        assert_eq!(stages_for_threads(&shape(&[8192, 256]), &[1]), None, "many rows");
        assert_eq!(stages_for_threads(&shape(&[256, 1024]), &[0]), stages(1, &[32, 8], 1024), "columns");
        assert_eq!(stages_for_threads(&shape(&[256, 1 << 17]), &[0]), None, "many columns");
        assert_eq!(stages_for_threads(&shape(&[64, 8, 64]), &[0, 2]), None, "not adjacent");
        assert_eq!(stages_for_threads(&shape(&[8191]), &[0]), None, "prime");
        let dynamic = vec![Dim::sym("B"), Dim::from(8192)];
        assert_eq!(stages_for_threads(&dynamic, &[0, 1]), None, "dynamic");
    }
}
