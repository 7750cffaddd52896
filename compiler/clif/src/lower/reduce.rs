//! Reductions as loops: `reduce.{sum,mean,max,min}`.
//!
//! As the interpreter (`runtime/src/interp/reduce.rs`): the kept axes, then the reduced
//! axes in the order the op lists them, are made contiguous (a permuted copy unless they
//! already are), and each output element folds one run in order. f32 sums and means
//! accumulate in f64 and round once; i64 sums wrap; max/min start from the run's first
//! element and propagate NaN; a max or min over no elements is refused at run time.
//! Coverage: sum f32/f64/i64, mean f32/f64, max/min f32/f64/i64/bool; complex sums and
//! means run the interpreter's kernel.
//!
//! With vectors on ([`super::simd`]), f32/f64/i64 sums fold four elements per step in
//! vector accumulators before the scalar tail ([`simd::sum_run`]: another order of f64
//! additions, within the tier's tolerance; i64 exact), and f32/f64 max/min fold in lanes
//! ([`simd::extreme_run`]). A lane fold gives the extreme's value but not which of equal
//! elements came first, so a run whose extreme is zero (`+0` or `-0`) or NaN (which
//! payload) is folded again by the scalar loop: results are bit for bit the scalar ones.

use super::ir::View;
use super::{elem, simd, FnLower};
use crate::rt::Failure;
use crate::ClifError;
use archc_compiler::tir::{DType, Inst, Op, ReduceOp, TensorType};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Type, Value};
use cranelift_frontend::Variable;

pub(crate) fn lower(l: &mut FnLower, inst: &Inst) -> Result<(), ClifError> {
    let Op::Reduce { op, axes, .. } = &inst.op else { unreachable!("a reduction") };
    let x = l.arg(inst, 0);
    let d = x.ty.dtype;
    let ok = match op {
        ReduceOp::Sum => matches!(d, DType::F32 | DType::F64 | DType::I64),
        ReduceOp::Mean => matches!(d, DType::F32 | DType::F64),
        ReduceOp::Max | ReduceOp::Min => d != DType::C64,
    };
    if d == DType::C64 && matches!(op, ReduceOp::Sum | ReduceOp::Mean) {
        return super::kernel::lower(l, inst);
    }
    if !ok || axes.iter().any(|&a| a >= x.ty.rank()) {
        return Err(ClifError::unsupported(inst.op.name(), format!("on {} over axes {axes:?}", x.ty)));
    }
    let rank = x.ty.rank();
    let kept: Vec<usize> = (0..rank).filter(|a| !axes.contains(a)).collect();
    let perm: Vec<usize> = kept.iter().chain(axes).copied().collect();
    let shape = l.shape(&x.ty);
    let mut inner = l.iconst(1);
    for &a in axes {
        inner = l.b.ins().imul(inner, shape[a]);
    }
    let outer = l.numel(&inst.ty);
    let src = if perm.iter().enumerate().all(|(i, &p)| i == p) {
        x.ptr
    } else {
        let moved = TensorType::new(d, perm.iter().map(|&p| x.ty.shape[p].clone()).collect());
        let buf = l.scratch(&moved);
        let st = l.strides(&shape);
        let sizes: Vec<Value> = perm.iter().map(|&p| shape[p]).collect();
        let zero = l.iconst(0);
        let src = View { ptr: x.ptr, off: zero, strides: perm.iter().map(|&p| st[p]).collect() };
        let dst = l.dense(buf, &sizes);
        l.copy_view(elem(d).1, &sizes, &src, &dst);
        buf
    };
    let out = l.alloc(&inst.ty);
    runs(l, *op, d, (src, out.0), outer, inner);
    l.bind(inst.result, out, &inst.ty);
    Ok(())
}

/// Folds `outer` runs of `inner` consecutive elements of `src` into `dst`.
fn runs(l: &mut FnLower, op: ReduceOp, d: DType, (src, dst): (Value, Value), outer: Value, inner: Value) {
    let (ty, es) = elem(d);
    match op {
        ReduceOp::Sum | ReduceOp::Mean => {
            let acc_ty = if d == DType::I64 { types::I64 } else { types::F64 };
            let n = (op == ReduceOp::Mean).then(|| l.b.ins().fcvt_from_sint(types::F64, inner));
            let vector = l.sh.simd;
            l.for_range(outer, |l, o| {
                let base = l.b.ins().imul(o, inner);
                let var = l.b.declare_var(acc_ty);
                let (init, start) = if vector {
                    simd::sum_run(l, d, src, base, inner)
                } else {
                    let zero = if acc_ty == types::I64 { l.iconst(0) } else { l.b.ins().f64const(0.0) };
                    (zero, l.iconst(0))
                };
                l.b.def_var(var, init);
                l.for_from(start, inner, |l, i| {
                    let at = l.b.ins().iadd(base, i);
                    let v = l.load_at(ty, src, at, es);
                    let v = if ty == types::F32 { l.b.ins().fpromote(types::F64, v) } else { v };
                    let acc = l.b.use_var(var);
                    let s = if acc_ty == types::I64 { l.b.ins().iadd(acc, v) } else { l.b.ins().fadd(acc, v) };
                    l.b.def_var(var, s);
                });
                let mut s = l.b.use_var(var);
                if let Some(n) = n {
                    s = l.b.ins().fdiv(s, n);
                }
                if ty == types::F32 {
                    s = l.b.ins().fdemote(types::F32, s);
                }
                l.store_at(s, dst, o, es);
            });
        }
        ReduceOp::Max | ReduceOp::Min => {
            let max = op == ReduceOp::Max;
            let (empty, any) =
                (l.b.ins().icmp_imm_s(IntCC::Equal, inner, 0), l.b.ins().icmp_imm_s(IntCC::NotEqual, outer, 0));
            let refuse = l.b.ins().band(empty, any);
            l.if_then(refuse, |l| {
                let (a, z) = (l.iconst((!max) as i64), l.iconst(0));
                l.fail(Failure::EmptyReduction, [a, z, z]);
            });
            let nonempty = l.b.ins().bxor_imm_s(empty, 1);
            l.if_then(nonempty, |l| extremes(l, max, d, ty, (src, dst), outer, inner));
        }
    }
}

/// Max (or min) of each run, from its first element on.
fn extremes(l: &mut FnLower, max: bool, d: DType, ty: Type, (src, dst): (Value, Value), outer: Value, inner: Value) {
    let es = elem(d).1;
    let vector = l.sh.simd && matches!(d, DType::F32 | DType::F64);
    l.for_range(outer, |l, o| {
        let base = l.b.ins().imul(o, inner);
        let var = l.b.declare_var(ty);
        if vector {
            let (r, start) = simd::extreme_run(l, max, d, src, base, inner);
            l.b.def_var(var, r);
            fold(l, max, d, (src, base, var), start, inner);
            // A zero or NaN extreme: the scalar fold says which of the equal ones.
            let (r, zero) = (l.b.use_var(var), float_zero(l, ty));
            let redo = l.b.ins().fcmp(FloatCC::UnorderedOrEqual, r, zero);
            l.if_then(redo, |l| scalar_fold(l, max, d, (src, base, var), inner));
        } else {
            scalar_fold(l, max, d, (src, base, var), inner);
        }
        let r = l.b.use_var(var);
        l.store_at(r, dst, o, es);
    });
}

fn float_zero(l: &mut FnLower, ty: Type) -> Value {
    if ty == types::F64 {
        l.b.ins().f64const(0.0)
    } else {
        l.b.ins().f32const(0.0)
    }
}

/// The fold of the whole run at `base` into `var`, from its first element on.
fn scalar_fold(l: &mut FnLower, max: bool, d: DType, (src, base, var): (Value, Value, Variable), inner: Value) {
    let (ty, es) = elem(d);
    let first = l.load_at(ty, src, base, es);
    l.b.def_var(var, first);
    let one = l.iconst(1);
    fold(l, max, d, (src, base, var), one, inner);
}

/// Folds elements `from..inner` of the run at `base` into `var`.
fn fold(l: &mut FnLower, max: bool, d: DType, (src, base, var): (Value, Value, Variable), from: Value, inner: Value) {
    let (ty, es) = elem(d);
    l.for_from(from, inner, |l, i| {
        let at = l.b.ins().iadd(base, i);
        let v = l.load_at(ty, src, at, es);
        let acc = l.b.use_var(var);
        let next = pick(l, max, d, acc, v);
        l.b.def_var(var, next);
    });
}

/// `acc` when it is NaN or no worse than `v`, else `v`.
fn pick(l: &mut FnLower, max: bool, d: DType, acc: Value, v: Value) -> Value {
    match d {
        DType::F32 | DType::F64 => simd::pick(l, max, acc, v),
        DType::I64 if max => l.b.ins().smax(acc, v),
        DType::I64 => l.b.ins().smin(acc, v),
        _ if max => l.b.ins().umax(acc, v),
        _ => l.b.ins().umin(acc, v),
    }
}
