//! Computations as `linalg` ops: elementwise maps, reductions, `argmax`, contractions
//! (`matmul`, `einsum`), convolution and pooling. Reductions of f32 accumulate in f64
//! like the interpreter; contractions do when they sum at least [`LONG_SUM`] terms (below
//! that, f32 accumulation stays within 1e-5 of the interpreter and is faster).

use super::builder::{ds, fixed, product, Builder, Iter, Operand, V};
use super::lower::FnLower;
use super::scalar;
use super::types::tensor;
use super::Ty;
use archc_compiler::tir::{pattern, BinaryOp, DType, Dim, PoolOp, ReduceOp, UnaryOp};
use std::collections::HashMap;

/// The attributes of a `conv` op.
pub struct ConvSpec<'a> {
    pub stride: &'a [i64],
    pub padding: &'a [(i64, i64)],
    pub dilation: &'a [i64],
    pub groups: i64,
}

/// Generic contractions summing at least this many f32 terms accumulate in f64 (as do
/// sums of a run-time length).
pub const LONG_SUM: usize = 1024;

/// f32 matmuls (and the convolutions, einsums and DFTs built on them) summing at least
/// this many terms run in f64: gemm's blocked f32 sums stay within 1e-5 of the
/// interpreter's f64 accumulation below it (measured: Darcy's pointwise-weight gradient,
/// 5120 terms, was 1.1e-5 off in f32). Sums of a run-time length count as long.
pub const LONG_GEMM: usize = 4096;

/// The type every runtime product operand is cast to: rank `r`, any offset and strides.
pub(super) fn dyn_view(r: usize, dt: DType) -> String {
    let t = super::types::elem(dt);
    format!("memref<{}{t}, strided<[{}], offset: ?>>", "?x".repeat(r), vec!["?"; r].join(", "))
}

/// Whether a convolution is a per-position product over channels that the runtime's
/// `gemm` can run in place: a window of one, unit stride, no padding, one group, an f32
/// or f64 sum short enough to stay in its dtype (see [`LONG_GEMM`]).
fn pointwise(x: &V, w: &V, spec: &ConvSpec) -> bool {
    let short = x.dtype == DType::F64 || (x.dtype == DType::F32 && !at_least(&x.shape[1], LONG_GEMM));
    short && pattern::pointwise_conv(spec.stride, spec.padding, spec.groups, &w.shape[2..])
}

/// Whether a sum of `n` terms is at least `limit` long (a run-time length is).
fn at_least(n: &Dim, limit: usize) -> bool {
    n.as_const().is_none_or(|c| c >= limit as i64)
}

fn dims(idx: impl IntoIterator<Item = usize>) -> Vec<String> {
    idx.into_iter().map(|i| format!("d{i}")).collect()
}

impl FnLower<'_, '_, '_> {
    pub fn constant(&mut self, c: f64, out: &Ty) -> V {
        self.b.filled(c, out.0, &out.1)
    }

    pub fn iota(&mut self, axis: usize, out: &Ty) -> V {
        let init = self.b.empty(out.0, &out.1);
        let iters = vec![Iter::Par; out.1.len()];
        let dtype = out.0;
        let mut r = self.b.generic(&[], &[Operand::identity(&init)], &iters, |b, _| {
            let i = b.loop_index(axis);
            let i = b.assign(format!("arith.index_cast {i} : index to i64"));
            vec![scalar::cast(b, DType::I64, dtype, &i)]
        });
        r.remove(0)
    }

    pub fn unary(&mut self, op: UnaryOp, x: &V, out: &Ty) -> Result<V, String> {
        let mut res = Ok(());
        let dt = x.dtype;
        let v = self.b.map(&[x], out.0, |b, a| match scalar::unary(b, op, dt, &a[0]) {
            Ok(v) => v,
            Err(e) => {
                res = Err(e);
                a[0].clone()
            }
        });
        res.map(|_| v)
    }

    pub fn binary(&mut self, op: BinaryOp, x: &V, y: &V, out: &Ty) -> Result<V, String> {
        let mut res = Ok(());
        let dt = x.dtype;
        let v = self.b.map(&[x, y], out.0, |b, a| match scalar::binary(b, op, dt, &a[0], &a[1]) {
            Ok(v) => v,
            Err(e) => {
                res = Err(e);
                a[0].clone()
            }
        });
        res.map(|_| v)
    }

    pub fn select(&mut self, c: &V, x: &V, y: &V) -> V {
        let t = super::types::elem(x.dtype);
        self.b.map(&[c, x, y], x.dtype, |b, a| b.assign(format!("arith.select {}, {}, {} : {t}", a[0], a[1], a[2])))
    }

    pub fn cast(&mut self, x: &V, to: DType) -> V {
        let from = x.dtype;
        self.b.map(&[x], to, |b, a| scalar::cast(b, from, to, &a[0]))
    }

    /// `real` / `imag` of a complex tensor; on real input, the identity / zeros.
    pub fn part(&mut self, z: &V, imag: bool) -> V {
        match (z.dtype, imag) {
            (DType::C64, _) => {
                let name = if imag { "complex.im" } else { "complex.re" };
                self.b.map(&[z], DType::F32, |b, a| b.assign(format!("{name} {} : complex<f32>", a[0])))
            }
            (_, false) => z.clone(),
            (dt, true) => self.b.filled(0.0, dt, &z.shape),
        }
    }

    pub fn complex(&mut self, re: &V, im: &V) -> V {
        let dt = re.dtype;
        self.b.map(&[re, im], DType::C64, |b, a| {
            let r = scalar::cast(b, dt, DType::F32, &a[0]);
            let i = scalar::cast(b, dt, DType::F32, &a[1]);
            b.assign(format!("complex.create {r}, {i} : complex<f32>"))
        })
    }

    /// `reduce.*` over `axes`; the result before `keepdim` drops the reduced axes.
    pub fn reduce(&mut self, op: ReduceOp, axes: &[usize], keepdim: bool, x: &V, out: &Ty) -> Result<V, String> {
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
            return Err("max/min reductions are not defined on c64".into());
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
    fn refuse_empty(&mut self, count: &Dim, op: i64) -> Result<(), String> {
        match count.as_const() {
            Some(0) => Err(crate::rt::Failure::message(3, op, 0, 0)),
            Some(_) => Ok(()),
            None => {
                let (n, zero) = (self.b.size(count), self.b.index(0));
                let bad = self.b.assign(format!("arith.cmpi eq, {n}, {zero} : index"));
                let code = self.b.i64c(op);
                let z = self.b.i64c(0);
                self.fail_if(&bad, crate::rt::Failure::EmptyReduction, [&code, &z, &z]);
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
    fn fold(&mut self, fold: &Fold, x: &V, axes: &[usize]) -> V {
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
        let mut r = self.b.generic(&[input], &[Operand::new(&init, output)], &iters, |b, a| {
            let v = scalar::cast(b, xd, acc, &a[0]);
            vec![scalar::binary(b, combine, acc, &a[1], &v).expect("sum/max/min of a checked dtype")]
        });
        r.remove(0)
    }

    /// `x` folded over `axes` on the GPU: the axes in runs of adjacent ones, the innermost
    /// run first (the reduced axes dropped after each), each run in stages where
    /// [`stages_for_threads`] says so. A bias gradient's sum over the batch and length axes
    /// of `[B, C, N]` is a sum over `N` into `[B, C]`, then over `B`: many threads in
    /// both, where one fold over both axes gives one thread per channel.
    fn reduce_on_gpu(&mut self, fold: &Fold, x: &V, axes: &[usize]) -> Result<V, String> {
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
    fn reduce_in_stages(&mut self, fold: &Fold, x: &V, stages: &Stages, shape: &[Dim]) -> Result<V, String> {
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
    pub fn argmax(&mut self, axis: usize, keepdim: bool, x: &V, out: &Ty) -> Result<V, String> {
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

    pub fn matmul(&mut self, a: &V, b: &V, out: &Ty) -> V {
        let r = a.rank();
        if r > 3 && matches!(out.0, DType::F32 | DType::F64) {
            if let Some(y) = self.collapsed_matmul(a, b, out) {
                return y;
            }
        }
        if (r == 2 || r == 3) && matches!(out.0, DType::F32 | DType::F64) {
            if out.0 == DType::F32 && at_least(&a.shape[r - 1], LONG_GEMM) {
                // Long f32 sums (weight gradients over batch x positions) run in f64.
                let (a64, b64) = (self.cast_operand(a, DType::F64), self.cast_operand(b, DType::F64));
                let y = self.library_matmul(&a64, &b64, &(DType::F64, out.1.clone()));
                return self.cast(&y, DType::F32);
            }
            return self.library_matmul(a, b, out);
        }
        let red = a.shape[r - 1].clone();
        if (r == 2 || r == 3) && !(out.0 == DType::F32 && at_least(&red, LONG_SUM)) {
            let init = self.b.filled(0.0, out.0, &out.1);
            let name = if r == 2 { "linalg.matmul" } else { "linalg.batch_matmul" };
            let ty = init.ty();
            let res = self.b.assign(format!(
                "{name} ins({}, {} : {}, {}) outs({} : {ty}) -> {ty}",
                a.name,
                b.name,
                a.ty(),
                b.ty(),
                init.name
            ));
            return V { name: res, dtype: out.0, shape: out.1.clone() };
        }
        // Loops: batch..., m, n, k.
        let nb = r - 2;
        let batch: Vec<String> = dims(0..nb);
        let (m, n, k) = (format!("d{nb}"), format!("d{}", nb + 1), format!("d{}", nb + 2));
        let am = [batch.clone(), vec![m.clone(), k.clone()]].concat();
        let bm = [batch.clone(), vec![k, n.clone()]].concat();
        let om = [batch, vec![m, n]].concat();
        let mut iters = vec![Iter::Par; nb + 2];
        iters.push(Iter::Red);
        self.contract(&[Operand::new(a, am), Operand::new(b, bm)], out.0, &out.1, om, &iters, &red)
    }

    /// A product with several batch axes (attention's `[B, H, T, D]` operands) as one
    /// batched product of the runtime over the batch axes collapsed into one, instead of
    /// a loop nest (on the GPU one thread per result, reading strided operands). An
    /// operand that is a permuted view is materialised first (one copy). `None` where a
    /// reshape cannot be emitted.
    fn collapsed_matmul(&mut self, a: &V, b: &V, out: &Ty) -> Option<V> {
        let r = a.rank();
        let batch = product(&out.1[..r - 2]);
        let three = |v: &V| vec![batch.clone(), v.shape[r - 2].clone(), v.shape[r - 1].clone()];
        let a3 = self.reshape(a, &three(a)).ok()?;
        let b3 = self.reshape(b, &three(b)).ok()?;
        let y = self.matmul(&a3, &b3, &(out.0, vec![batch.clone(), out.1[r - 2].clone(), out.1[r - 1].clone()]));
        self.reshape(&y, &out.1).ok()
    }

    /// The sum over `axes` of `x`, every element of which is the constant `c`: `c` times
    /// the number of elements summed (exact, as the interpreter's f64 sum of them is),
    /// without reading `x`.
    pub fn constant_sum(&mut self, c: f64, x: &V, axes: &[usize], out: &Ty) -> V {
        let count = product(axes.iter().map(|&a| &x.shape[a]));
        let n = self.b.size(&count);
        let n = self.b.assign(format!("arith.index_cast {n} : index to i64"));
        let n = self.b.assign(format!("arith.sitofp {n} : i64 to f64"));
        let cv = self.b.scalar(c, DType::F64);
        let v = self.b.assign(format!("arith.mulf {cv}, {n} : f64"));
        let v = scalar::cast(&mut self.b, DType::F64, out.0, &v);
        self.b.fill(&v, out.0, &out.1)
    }

    /// `sum_i (a[i] @ b[i])` for `a: [B, M, K]`, `b: [B, K, N]`: one batched product, then
    /// a sum over the batch. f32 products whose sums have at least [`LONG_GEMM`] terms in
    /// all (`B * K`) run and are summed in f64, the result rounded once.
    pub fn summed_matmul(&mut self, a: &V, b: &V, out: &Ty) -> Result<V, String> {
        let terms = a.shape[0].mul(&a.shape[2]);
        let wide = out.0 == DType::F32 && at_least(&terms, LONG_GEMM);
        let dt = if wide { DType::F64 } else { out.0 };
        let (a2, b2) = (self.cast_operand(a, dt), self.cast_operand(b, dt));
        let products = (dt, vec![a.shape[0].clone(), a.shape[1].clone(), b.shape[2].clone()]);
        let p = self.matmul(&a2, &b2, &products);
        let s = self.reduce(ReduceOp::Sum, &[0], false, &p, &(dt, out.1.clone()))?;
        Ok(if wide { self.cast(&s, out.0) } else { s })
    }

    /// `v` cast to `dt` for a matrix product: a swapped value (see [`Self::swapped_view`])
    /// is cast before the swap, so the product still reads it as a view.
    fn cast_operand(&mut self, v: &V, dt: DType) -> V {
        if v.dtype == dt {
            return v.clone();
        }
        let Some(source) = self.swapped.get(&v.name).cloned() else { return self.cast(v, dt) };
        let c = self.cast(&source, dt);
        let r = c.rank();
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        self.permute(&c, &perm)
    }

    /// `a @ b` by the runtime's `gemm` kernels (`archc_matmul_*` / `archc_bmm_*`): the
    /// operands' buffers are read in place, the result is a fresh buffer.
    fn library_matmul(&mut self, a: &V, b: &V, out: &Ty) -> V {
        let dyn_ty = dyn_view(a.rank(), out.0);
        let ca = self.matmul_operand(a, &dyn_ty);
        let cb = self.matmul_operand(b, &dyn_ty);
        self.library_call(&ca, &cb, out)
    }

    /// `a` as a product operand: its buffer (or, for a swapped value, the strided view of
    /// its source) cast to `dyn_ty`.
    fn matmul_operand(&mut self, v: &V, dyn_ty: &str) -> String {
        if let Some(source) = self.swapped.get(&v.name).cloned() {
            return self.swapped_view(&source, dyn_ty);
        }
        let (buf, m) = self.read_buffer(v);
        self.b.assign(format!("memref.cast {buf} : {m} to {dyn_ty}"))
    }

    /// The buffer of `v`, read only, and its memref type.
    pub(super) fn read_buffer(&mut self, v: &V) -> (String, String) {
        let m = super::types::memref(v.dtype, &v.shape);
        let buf = self.b.assign(format!("bufferization.to_buffer {} read_only : {} to {m}", v.name, v.ty()));
        (buf, m)
    }

    /// The runtime call `out = a @ b` on two operand views of type [`dyn_view`].
    fn library_call(&mut self, ca: &str, cb: &str, out: &Ty) -> V {
        let r = out.1.len();
        let t = super::types::elem(out.0);
        let sym = format!("archc_{}_{t}", if r == 2 { "matmul" } else { "bmm" });
        let dyn_ty = dyn_view(r, out.0);
        self.em.externs.insert(
            sym.clone(),
            format!("func.func private @{sym}({dyn_ty}, {dyn_ty}, {dyn_ty}) attributes {{llvm.emit_c_interface}}"),
        );
        let mc_ty = super::types::memref(out.0, &out.1);
        let mc = self.b.alloc(out.0, &out.1);
        let cc = self.b.assign(format!("memref.cast {mc} : {mc_ty} to {dyn_ty}"));
        self.b.op(format!("func.call @{sym}({ca}, {cb}, {cc}) : ({dyn_ty}, {dyn_ty}, {dyn_ty}) -> ()"));
        let name =
            self.b.assign(format!("bufferization.to_tensor {mc} restrict : {mc_ty} to {}", tensor(out.0, &out.1)));
        V { name, dtype: out.0, shape: out.1.clone() }
    }

    /// The `[O, C, 1, ...]` weight `w` as a `[batch, O, C]` view of type `dyn_ty` whose
    /// batch stride is 0: every batch entry reads the one matrix.
    fn batch_broadcast_view(&mut self, w: &V, batch: &Dim, dyn_ty: &str) -> String {
        let (buf, m) = self.read_buffer(w);
        let (o, c) = (w.shape[0].clone(), w.shape[1].clone());
        let sizes: Vec<String> = [batch, &o, &c].iter().map(|d| self.b.size(d)).collect();
        let (zero, one) = (self.b.index(0), self.b.index(1));
        let row = sizes[2].clone();
        self.b.assign(format!(
            "memref.reinterpret_cast {buf} to offset: [{zero}], sizes: [{}], strides: [{zero}, {row}, {one}] : {m} to {dyn_ty}",
            sizes.join(", ")
        ))
    }

    /// `source` with its last two axes swapped, as a strided view of its buffer cast to
    /// `dyn_ty` (a matrix product's operand: no transposed copy is made; the transpose
    /// op, left without uses, is removed by the pipeline).
    fn swapped_view(&mut self, source: &V, dyn_ty: &str) -> String {
        let r = source.rank();
        let (buf, m) = self.read_buffer(source);
        // Row-major strides of the source, `?` where a size is dynamic.
        let mut strides = vec![String::new(); r];
        let mut inner = Some(1i64);
        for i in (0..r).rev() {
            strides[i] = inner.map_or("?".to_string(), |s| s.to_string());
            inner = inner.zip(source.shape[i].as_const()).map(|(s, d)| s * d);
        }
        let mut perm: Vec<usize> = (0..r).collect();
        perm.swap(r - 2, r - 1);
        let shape: Vec<Dim> = perm.iter().map(|&p| source.shape[p].clone()).collect();
        let view_strides: Vec<&str> = perm.iter().map(|&p| strides[p].as_str()).collect();
        let sizes: String =
            shape.iter().map(|d| d.as_const().map_or("?".to_string(), |c| c.to_string()) + "x").collect();
        let t = super::types::elem(source.dtype);
        let view_ty = format!("memref<{sizes}{t}, strided<[{}]>>", view_strides.join(", "));
        let ins: Vec<String> = (0..r).map(|i| format!("d{i}")).collect();
        let outs: Vec<String> = perm.iter().map(|&p| format!("d{p}")).collect();
        let view = self.b.assign(format!(
            "memref.transpose {buf} ({}) -> ({}) : {m} to {view_ty}",
            ins.join(", "),
            outs.join(", ")
        ));
        self.b.assign(format!("memref.cast {view} : {view_ty} to {dyn_ty}"))
    }

    /// A generic sum-of-products of `ins` (all of dtype `dt`) into zeros of `shape`,
    /// summing `red` terms per output element. Long f32 sums (at least
    /// [`LONG_SUM`] terms) accumulate exact products in f64 and round once, as the
    /// interpreter does; shorter ones stay in f32.
    fn contract(
        &mut self,
        ins: &[Operand],
        dt: DType,
        shape: &[Dim],
        out_map: Vec<String>,
        iters: &[Iter],
        red: &Dim,
    ) -> V {
        let acc = if dt == DType::F32 && at_least(red, LONG_SUM) { DType::F64 } else { dt };
        let init = self.b.filled(0.0, acc, shape);
        let n_in = ins.len();
        let sums = iters.contains(&Iter::Red);
        let mut r = self.b.generic(ins, &[Operand::new(&init, out_map)], iters, |b, a| {
            let mut p = scalar::cast(b, dt, acc, &a[0]);
            for x in &a[1..n_in] {
                let x = scalar::cast(b, dt, acc, x);
                p = scalar::binary(b, BinaryOp::Mul, acc, &p, &x).expect("numeric");
            }
            if !sums {
                // Nothing summed (a permutation or outer product): the init is not read,
                // as MLIR's elementwise fusion would turn an accumulating all-parallel op
                // read through a broadcast into a running sum.
                return vec![p];
            }
            vec![scalar::binary(b, BinaryOp::Add, acc, &a[n_in], &p).expect("numeric")]
        });
        let v = r.remove(0);
        if acc == dt {
            v
        } else {
            self.cast(&v, dt)
        }
    }

    pub fn einsum(&mut self, spec: &str, xs: &[V], out: &Ty) -> Result<V, String> {
        let (lhs, rhs) = spec.split_once("->").ok_or_else(|| format!("bad einsum spec {spec:?}"))?;
        let inputs: Vec<&str> = lhs.split(',').collect();
        if inputs.len() != xs.len() {
            return Err(format!("einsum spec {spec:?} has {} operands, got {}", inputs.len(), xs.len()));
        }
        let direct = self.em.target == super::Target::Gpu && small_contraction(&inputs, xs);
        if let [a, b] = xs {
            if out.0.is_float() && a.dtype == out.0 && b.dtype == out.0 && !direct {
                if let Some(v) = self.einsum_as_matmul(inputs[0], inputs[1], rhs, a, b, out)? {
                    return Ok(v);
                }
            }
        }
        // Loop order: output letters, then the summed letters in order of appearance.
        let mut letters: Vec<char> = rhs.chars().collect();
        for s in &inputs {
            for c in s.chars() {
                if !letters.contains(&c) {
                    letters.push(c);
                }
            }
        }
        let map_of = |s: &str| -> Vec<String> {
            s.chars().map(|c| format!("d{}", letters.iter().position(|&l| l == c).expect("collected"))).collect()
        };
        let iters: Vec<Iter> = (0..letters.len()).map(|i| if i < rhs.len() { Iter::Par } else { Iter::Red }).collect();
        let mut size: HashMap<char, Dim> = HashMap::new();
        for (x, s) in xs.iter().zip(&inputs) {
            for (c, d) in s.chars().zip(&x.shape) {
                size.insert(c, d.clone());
            }
        }
        let red = product(letters[rhs.len()..].iter().map(|c| &size[c]));
        let ins: Vec<Operand> = xs.iter().zip(&inputs).map(|(x, s)| Operand::new(x, map_of(s))).collect();
        Ok(self.contract(&ins, out.0, &out.1, map_of(rhs), &iters, &red))
    }

    /// A two-operand einsum as one (batched) matmul: operands permuted to
    /// `[batch, free, contracted]` / `[batch, contracted, free]` and flattened, the product
    /// reshaped and permuted to the output. `None` when the spec is not of that form
    /// (a repeated letter, or a letter summed within one operand).
    fn einsum_as_matmul(&mut self, l: &str, r: &str, o: &str, a: &V, b: &V, out: &Ty) -> Result<Option<V>, String> {
        let distinct = |s: &str| s.chars().enumerate().all(|(i, c)| !s[..i].contains(c));
        if !distinct(l) || !distinct(r) || !distinct(o) {
            return Ok(None);
        }
        if l.chars().chain(r.chars()).any(|c| !o.contains(c) && !(l.contains(c) && r.contains(c))) {
            return Ok(None);
        }
        let size: HashMap<char, Dim> =
            l.chars().zip(&a.shape).chain(r.chars().zip(&b.shape)).map(|(c, d)| (c, d.clone())).collect();
        let batch: Vec<char> = o.chars().filter(|&c| l.contains(c) && r.contains(c)).collect();
        let lfree: Vec<char> = o.chars().filter(|&c| l.contains(c) && !r.contains(c)).collect();
        let rfree: Vec<char> = o.chars().filter(|&c| r.contains(c) && !l.contains(c)).collect();
        let contr: Vec<char> = l.chars().filter(|&c| r.contains(c) && !o.contains(c)).collect();
        let prod = |cs: &[char]| product(cs.iter().map(|c| &size[c]));
        let (bp, lp, cp, rp) = (prod(&batch), prod(&lfree), prod(&contr), prod(&rfree));
        let pos = |s: &str, cs: &[char]| cs.iter().map(|&c| s.find(c).expect("letter of s")).collect::<Vec<_>>();
        let pa = [pos(l, &batch), pos(l, &lfree), pos(l, &contr)].concat();
        let pb = [pos(r, &batch), pos(r, &contr), pos(r, &rfree)].concat();
        let dt = out.0;
        let (sa, sb, sy) = if batch.is_empty() {
            (vec![lp.clone(), cp.clone()], vec![cp, rp.clone()], vec![lp, rp])
        } else {
            (vec![bp.clone(), lp.clone(), cp.clone()], vec![bp.clone(), cp, rp.clone()], vec![bp, lp, rp])
        };
        let a2 = self.permute(a, &pa);
        let a2 = self.reshape(&a2, &sa)?;
        let b2 = self.permute(b, &pb);
        let b2 = self.reshape(&b2, &sb)?;
        let y = self.matmul(&a2, &b2, &(dt, sy));
        let order: Vec<char> = [batch, lfree, rfree].concat();
        let y = self.reshape(&y, &order.iter().map(|c| size[c].clone()).collect::<Vec<_>>())?;
        let perm: Vec<usize> = o.chars().map(|c| order.iter().position(|&x| x == c).expect("output letter")).collect();
        Ok(Some(self.permute(&y, &perm)))
    }

    /// Cross-correlation with groups. Floats go through im2col and the runtime's batched
    /// matmul ([`Self::conv_gemm`]); other dtypes through one `linalg.generic`.
    pub fn conv(&mut self, x: &V, w: &V, spec: &ConvSpec, out: &Ty) -> Result<V, String> {
        if pointwise(x, w, spec) {
            return Ok(self.conv_pointwise(x, w, out));
        }
        if x.dtype.is_float() {
            return self.conv_gemm(x, w, spec, out);
        }
        self.conv_generic(x, w, spec, out)
    }

    /// A pointwise convolution ([`pointwise`]): `y[b] = w @ x[b]` for every batch entry, one
    /// batched product whose weight operand is a stride-0 view; no copies (the spatial
    /// axes are flattened in place).
    fn conv_pointwise(&mut self, x: &V, w: &V, out: &Ty) -> V {
        let nd = x.rank() - 2;
        let (bsz, c) = (x.shape[0].clone(), x.shape[1].clone());
        let s_all = product(&x.shape[2..]);
        let flat_groups = [vec![0], vec![1], (2..2 + nd).collect()];
        let x3 = match nd {
            1 => x.clone(),
            _ => self.regroup(x, &[bsz.clone(), c, s_all.clone()], &flat_groups, false),
        };
        let dyn_ty = dyn_view(3, x.dtype);
        let cw = self.batch_broadcast_view(w, &bsz, &dyn_ty);
        let cx = self.matmul_operand(&x3, &dyn_ty);
        let y = self.library_call(&cw, &cx, &(x.dtype, vec![bsz, w.shape[0].clone(), s_all]));
        match nd {
            1 => y,
            _ => self.regroup(&y, &out.1, &flat_groups, true),
        }
    }

    /// im2col: the padded input gathered into `col[G, C/G * K, B * S]` (`K` the window,
    /// `S` the output positions), then `y[G, O/G, B * S] = w[G, O/G, C/G * K] @ col` as
    /// one batched matmul, then moved to `[B, O, S]`.
    fn conv_gemm(&mut self, x: &V, w: &V, spec: &ConvSpec, out: &Ty) -> Result<V, String> {
        let ConvSpec { stride, dilation, .. } = *spec;
        let nd = stride.len();
        let dt = x.dtype;
        let g = spec.groups as usize;
        let bsz = x.shape[0].clone();
        let (cg, og) = group_sizes(x, w, g)?;
        let win: Vec<usize> = w.shape[2..].iter().map(fixed).collect::<Result<_, _>>()?;
        let spatial: Vec<Dim> = out.1[2..].to_vec();
        let k_all: usize = win.iter().product();
        let s_all = product(&spatial);
        let xg = self.padded_groups(x, spec)?;
        // col loops: g, c, k_1..k_nd, b, s_1..s_nd (all parallel).
        let col_shape = [ds(&[g]), vec![cg.clone()], ds(&win), vec![bsz.clone()], spatial.clone()].concat();
        let b_loop = 2 + nd;
        let xmap: Vec<String> = [
            vec![format!("d{b_loop}"), "d0".into(), "d1".into()],
            (0..nd).map(|i| format!("d{} * {} + d{} * {}", b_loop + 1 + i, stride[i], 2 + i, dilation[i])).collect(),
        ]
        .concat();
        let init = self.b.empty(dt, &col_shape);
        let iters = vec![Iter::Par; col_shape.len()];
        let col = self
            .b
            .generic(&[Operand::new(&xg, xmap)], &[Operand::identity(&init)], &iters, |_, a| vec![a[0].clone()])
            .remove(0);
        let bs = bsz.mul(&s_all);
        let ck = cg.mul(&Dim::constant(k_all as i64));
        let gd = Dim::constant(g as i64);
        let col = self.regroup(
            &col,
            &[gd.clone(), ck.clone(), bs.clone()],
            &[vec![0], (1..2 + nd).collect(), (2 + nd..3 + 2 * nd).collect()],
            false,
        );
        let w_split: Vec<Vec<usize>> = [vec![vec![0, 1]], (2..3 + nd).map(|i| vec![i]).collect()].concat();
        let wg = self.regroup(w, &[vec![gd.clone(), og.clone(), cg], ds(&win)].concat(), &w_split, true);
        let wg = self.regroup(&wg, &[gd.clone(), og.clone(), ck], &[vec![0], vec![1], (2..3 + nd).collect()], false);
        let y = self.matmul(&wg, &col, &(dt, vec![gd.clone(), og.clone(), bs]));
        let y = self.regroup(
            &y,
            &[vec![gd, og, bsz], spatial.clone()].concat(),
            &[vec![0], vec![1], (2..3 + nd).collect()],
            true,
        );
        let perm: Vec<usize> = [vec![2, 0, 1], (3..3 + nd).collect()].concat();
        let y = self.permute(&y, &perm);
        let groups: Vec<Vec<usize>> = [vec![vec![0], vec![1, 2]], (3..3 + nd).map(|i| vec![i]).collect()].concat();
        Ok(self.regroup(&y, &out.1, &groups, false))
    }

    /// `tensor.expand_shape` (`expand`: `groups[i]` lists the axes of `shape` that axis `i`
    /// of `x` becomes) or `tensor.collapse_shape` (`groups[i]` lists the axes of `x` that
    /// become axis `i` of `shape`).
    fn regroup(&mut self, x: &V, shape: &[Dim], groups: &[Vec<usize>], expand: bool) -> V {
        let list = |g: &Vec<usize>| format!("[{}]", g.iter().map(|i| i.to_string()).collect::<Vec<_>>().join(", "));
        let reassoc = format!("[{}]", groups.iter().map(list).collect::<Vec<_>>().join(", "));
        let ty = tensor(x.dtype, shape);
        let name = if expand {
            for g in groups {
                self.one_dynamic_size(g.iter().map(|&i| &shape[i]));
            }
            let dims = self.b.mixed(shape);
            self.b.assign(format!(
                "tensor.expand_shape {} {reassoc} output_shape [{}] : {} into {ty}",
                x.name,
                dims.join(", "),
                x.ty()
            ))
        } else {
            self.b.assign(format!("tensor.collapse_shape {} {reassoc} : {} into {ty}", x.name, x.ty()))
        };
        V { name, dtype: x.dtype, shape: shape.to_vec() }
    }

    /// `x` padded and with its channels split `[B, G, C/G, S...]`.
    fn padded_groups(&mut self, x: &V, spec: &ConvSpec) -> Result<V, String> {
        let g = spec.groups as usize;
        let full_pad: Vec<(i64, i64)> = [vec![(0, 0); 2], spec.padding.to_vec()].concat();
        let xp = self.pad_value(x, &full_pad, 0.0);
        let cg = match g {
            1 => x.shape[1].clone(),
            _ => Dim::constant((x.fixed(1)? / g) as i64),
        };
        let xs = [vec![x.shape[0].clone(), Dim::constant(g as i64), cg], xp.shape[2..].to_vec()].concat();
        Ok(self.expand(&xp, &xs, &[vec![0, 1]], 1))
    }

    /// The whole convolution as one `linalg.generic` (non-float dtypes).
    fn conv_generic(&mut self, x: &V, w: &V, spec: &ConvSpec, out: &Ty) -> Result<V, String> {
        let ConvSpec { stride, dilation, .. } = *spec;
        let nd = stride.len();
        let g = spec.groups as usize;
        let (bsz, cin) = (x.shape[0].clone(), x.fixed(1)?);
        let cout = w.fixed(0)?;
        let xg = self.padded_groups(x, spec)?;
        let ws = [ds(&[g, cout / g]), w.shape[1..].to_vec()].concat();
        let wg = self.expand(w, &ws, &[vec![0, 1]], 0);
        let os = [vec![bsz], ds(&[g, cout / g]), out.1[2..].to_vec()].concat();
        let red = Dim::constant((cin / g) as i64).mul(&product(&w.shape[2..]));
        // Loops: b, g, o, s_1..s_nd, c, k_1..k_nd.
        let s0 = 3;
        let c = 3 + nd;
        let k0 = 4 + nd;
        let xmap: Vec<String> = [
            vec!["d0".into(), "d1".into(), format!("d{c}")],
            (0..nd).map(|i| format!("d{} * {} + d{} * {}", s0 + i, stride[i], k0 + i, dilation[i])).collect(),
        ]
        .concat();
        let wmap = [vec!["d1".to_string(), "d2".into(), format!("d{c}")], dims(k0..k0 + nd)].concat();
        let omap = dims(0..3 + nd);
        let iters: Vec<Iter> = (0..4 + 2 * nd).map(|i| if i < 3 + nd { Iter::Par } else { Iter::Red }).collect();
        let y = self.contract(&[Operand::new(&xg, xmap), Operand::new(&wg, wmap)], out.0, &os, omap, &iters, &red);
        Ok(self.collapse(&y, &out.1, &[vec![0, 1]], 1))
    }

    /// Max or average pooling over the trailing `window.len()` axes.
    pub fn pool(
        &mut self,
        op: PoolOp,
        x: &V,
        window: &[i64],
        stride: &[i64],
        padding: &[(i64, i64)],
        out: &Ty,
    ) -> Result<V, String> {
        let nd = window.len();
        let lead = x.rank() - nd;
        let fill = match (op, x.dtype) {
            (PoolOp::Avg, _) => 0.0,
            (PoolOp::Max, DType::I64) => i64::MIN as f64,
            (PoolOp::Max, _) => f64::NEG_INFINITY,
        };
        let full_pad: Vec<(i64, i64)> = [vec![(0, 0); lead], padding.to_vec()].concat();
        let xp = self.pad_value(x, &full_pad, fill);
        let win_shape: Vec<Dim> = window.iter().map(|&k| Dim::constant(k)).collect();
        let win = self.b.empty(DType::F32, &win_shape);
        let init = self.b.filled(fill, x.dtype, &out.1);
        let k0 = lead + nd;
        let xmap: Vec<String> =
            [dims(0..lead), (0..nd).map(|i| format!("d{} * {} + d{}", lead + i, stride[i], k0 + i)).collect()].concat();
        let iters: Vec<Iter> = (0..lead + 2 * nd).map(|i| if i < k0 { Iter::Par } else { Iter::Red }).collect();
        let dt = x.dtype;
        let comb = if op == PoolOp::Max { BinaryOp::Max } else { BinaryOp::Add };
        let ins = [Operand::new(&xp, xmap), Operand::new(&win, dims(k0..k0 + nd))];
        let mut r = self.b.generic(&ins, &[Operand::new(&init, dims(0..k0))], &iters, |b: &mut Builder, a| {
            vec![scalar::binary(b, comb, dt, &a[2], &a[0]).expect("numeric pooling")]
        });
        let v = r.remove(0);
        if op == PoolOp::Max {
            return Ok(v);
        }
        let n = window.iter().product::<i64>() as f64;
        Ok(self.b.map(&[&v], dt, |b, a| {
            let c = b.scalar(n, dt);
            scalar::binary(b, BinaryOp::Div, dt, &a[0], &c).expect("float")
        }))
    }

    /// `tensor.expand_shape`: axis `at` of `x` split per `groups` (indices into `shape`,
    /// relative to `at`); other axes unchanged.
    pub fn expand(&mut self, x: &V, shape: &[Dim], groups: &[Vec<usize>], at: usize) -> V {
        for g in groups {
            self.one_dynamic_size(g.iter().map(|&i| &shape[at + i]));
        }
        let reassoc = self.reassociation(x.rank(), shape.len(), groups, at);
        let dims = self.b.mixed(shape);
        let name = self.b.assign(format!(
            "tensor.expand_shape {} {reassoc} output_shape [{}] : {} into {}",
            x.name,
            dims.join(", "),
            x.ty(),
            tensor(x.dtype, shape)
        ));
        V { name, dtype: x.dtype, shape: shape.to_vec() }
    }

    /// Fails the lowering when an expanded group has several dynamic sizes: MLIR 22's
    /// `expand-strided-metadata` crashes on such an `expand_shape` (the caller then falls
    /// back to concrete shapes).
    fn one_dynamic_size<'d>(&mut self, group: impl Iterator<Item = &'d Dim>) {
        if group.filter(|d| d.as_const().is_none()).count() > 1 {
            self.b.size_error.get_or_insert_with(|| "an expand_shape group with several dynamic sizes".into());
        }
    }

    /// `tensor.collapse_shape`, the inverse of [`Self::expand`].
    pub fn collapse(&mut self, x: &V, shape: &[Dim], groups: &[Vec<usize>], at: usize) -> V {
        let reassoc = self.reassociation(shape.len(), x.rank(), groups, at);
        let name = self.b.assign(format!(
            "tensor.collapse_shape {} {reassoc} : {} into {}",
            x.name,
            x.ty(),
            tensor(x.dtype, shape)
        ));
        V { name, dtype: x.dtype, shape: shape.to_vec() }
    }

    /// Reassociation between a rank-`small` and a rank-`big` shape: before `at` one to one,
    /// then `groups` (each a run of big axes, given relative to `at`), then one to one.
    fn reassociation(&self, small: usize, big: usize, groups: &[Vec<usize>], at: usize) -> String {
        let mut out: Vec<String> = (0..at).map(|i| format!("[{i}]")).collect();
        let mut next = at;
        for g in groups {
            let ids: Vec<String> = g.iter().map(|i| (at + i).to_string()).collect();
            next = at + g.last().expect("non-empty group") + 1;
            out.push(format!("[{}]", ids.join(", ")));
        }
        let small_used = at + groups.len();
        for (k, i) in (next..big).enumerate() {
            debug_assert!(small_used + k < small);
            out.push(format!("[{i}]"));
        }
        format!("[{}]", out.join(", "))
    }
}

/// The input and output channels per group of a convolution: any sizes with one group,
/// constants with several.
fn group_sizes(x: &V, w: &V, g: usize) -> Result<(Dim, Dim), String> {
    if g == 1 {
        return Ok((x.shape[1].clone(), w.shape[0].clone()));
    }
    Ok((Dim::constant((x.fixed(1)? / g) as i64), Dim::constant((w.fixed(0)? / g) as i64)))
}

/// What a reduction folds with: the combining op, the accumulator dtype, its start value.
struct Fold {
    combine: BinaryOp,
    acc: DType,
    init: f64,
}

/// Einsums with at most this many products run as one generic kernel on the GPU.
const SMALL_CONTRACTION: usize = 1 << 22;

/// Whether an einsum of `inputs` (their letters) over `xs` has constant sizes and at
/// most [`SMALL_CONTRACTION`] products. On the GPU such a contraction is one kernel (a
/// thread per result); as a batched matrix product it would be up to three transposed
/// copies (FNO's mode mixing `bim,iom->bom` batches over the innermost axis) and a
/// cuBLAS call, each a launch costing more than the arithmetic.
fn small_contraction(inputs: &[&str], xs: &[V]) -> bool {
    let mut size: HashMap<char, usize> = HashMap::new();
    for (s, x) in inputs.iter().zip(xs) {
        for (c, d) in s.chars().zip(&x.shape) {
            match d.as_const().and_then(|n| usize::try_from(n).ok()) {
                Some(n) => size.insert(c, n),
                None => return false,
            };
        }
    }
    size.values().try_fold(1usize, |p, &n| p.checked_mul(n)).is_some_and(|p| p <= SMALL_CONTRACTION)
}

/// `axes` (in any order) as runs of adjacent axes, in increasing order.
fn adjacent_runs(axes: &[usize]) -> Vec<Vec<usize>> {
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
struct Stages {
    outer: usize,
    chunks: Vec<usize>,
    inner: usize,
}

/// The longest run of elements one thread folds in a stage (apart from the last).
const CHAIN: usize = 32;
/// Reductions into at least this many results run in one stage: enough threads to hide
/// the latency of each one's loads. Rows (reductions over the innermost axis, whose
/// loads hit the cache line the previous one fetched) need fewer.
const MANY_RESULTS: usize = 1 << 17;
const MANY_ROWS: usize = 1 << 13;

/// How to reduce `axes` of a tensor of `shape` in stages on the GPU, or `None`.
/// A GPU kernel runs one thread per result, which folds its elements one after another,
/// each load waiting for memory: a reduction of many elements into few results (a
/// loss's mean, a bias gradient's sum over the batch) is a long chain of waits on a
/// handful of threads. Folding chunks of at most [`CHAIN`] elements per thread, stage
/// after stage, gives far more threads and short chains. Applies when the reduced axes
/// are adjacent and every size is constant, and their product has divisors in
/// `4..=CHAIN`.
fn stages_for_threads(shape: &[Dim], axes: &[usize]) -> Option<Stages> {
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

    fn shape(sizes: &[i64]) -> Vec<Dim> {
        sizes.iter().map(|&n| Dim::from(n)).collect()
    }

    fn stages(outer: usize, chunks: &[usize], inner: usize) -> Option<Stages> {
        Some(Stages { outer, chunks: chunks.to_vec(), inner })
    }

    #[test]
    fn long_reductions_fold_in_chunks_of_at_most_32() {
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
    fn axes_split_into_adjacent_runs() {
        use super::adjacent_runs;
        assert_eq!(adjacent_runs(&[2, 0]), vec![vec![0], vec![2]]);
        assert_eq!(adjacent_runs(&[0, 1, 3, 4, 6]), vec![vec![0, 1], vec![3, 4], vec![6]]);
        assert_eq!(adjacent_runs(&[1]), vec![vec![1]]);
    }

    #[test]
    fn other_reductions_stay_in_one_stage() {
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
