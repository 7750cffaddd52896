//! Data movement as copies between strided views (the runtime's `archc_clif_copy_view`,
//! which merges axes and copies contiguous rows at once): `reshape` (an alias, no copy),
//! `permute`, `broadcast`, `slice`, `concat`, `pad`.
//!
//! A broadcast that only elementwise loops read is not copied: a scalar is a splat (they
//! read its one element), any other is read in place through its strides (row by row,
//! `ew::emit`); `concat` fills from a broadcast scalar. `broadcast` needs to know at compile time which axes stretch: an operand axis whose
//! dim equals the result's is copied, a constant 1 is stretched, and anything else
//! (a symbolic size that might be 1) is refused. `slice` clamps its bounds at run time
//! like the interpreter; where the clamped length is not the declared one, the
//! interpreter's slice runs instead and refuses the run in its words. `pad` takes non-negative padding only.

use super::ew::fill;
use super::ir::View;
use super::{elem, FnLower};
use crate::ClifError;
use archc_compiler::tir::{Dim, Inst, Op};
use cranelift_codegen::ir::condcodes::IntCC;
use cranelift_codegen::ir::{InstBuilder, Value};

pub(crate) fn lower(l: &mut FnLower, inst: &Inst) -> Result<(), ClifError> {
    match &inst.op {
        Op::Reshape | Op::StopGradient => {
            let x = l.arg(inst, 0);
            if x.ty.numel() != inst.ty.numel() || x.ty.dtype != inst.ty.dtype {
                return Err(ClifError::unsupported("reshape", format!("{} to {}", x.ty, inst.ty)));
            }
            l.alias(inst.result, &x, &inst.ty);
            Ok(())
        }
        Op::Permute(perm) => permute(l, inst, perm),
        Op::Broadcast => broadcast(l, inst),
        Op::Slice { start, end, step } => slice(l, inst, start, end, step),
        Op::Concat { axis } => concat(l, inst, *axis),
        Op::Pad { padding, value } => pad(l, inst, padding, *value),
        op => unreachable!("{} is not data movement", op.name()),
    }
}

fn permute(l: &mut FnLower, inst: &Inst, perm: &[usize]) -> Result<(), ClifError> {
    let x = l.arg(inst, 0);
    let mut seen = vec![false; x.ty.rank()];
    if perm.len() != x.ty.rank() || perm.iter().any(|&p| p >= seen.len() || std::mem::replace(&mut seen[p], true)) {
        return Err(ClifError::unsupported("permute", format!("{perm:?} of {}", x.ty)));
    }
    let shape = l.shape(&x.ty);
    let st = l.strides(&shape);
    let zero = l.iconst(0);
    let src = View { ptr: x.ptr, off: zero, strides: perm.iter().map(|&p| st[p]).collect() };
    copy_out(l, inst, &src);
    Ok(())
}

/// Copies the view `src` (of the result's sizes) into a fresh result buffer.
fn copy_out(l: &mut FnLower, inst: &Inst, src: &View) {
    let out = l.alloc(&inst.ty);
    let sizes = l.shape(&inst.ty);
    let dst = l.dense(out.0, &sizes);
    l.copy_view(elem(inst.ty.dtype).1, &sizes, src, &dst);
    l.bind(inst.result, out, &inst.ty);
}

fn broadcast(l: &mut FnLower, inst: &Inst) -> Result<(), ClifError> {
    let x = l.arg(inst, 0);
    if x.ty.numel() == Dim::constant(1)
        && x.ty.dtype != archc_compiler::tir::DType::C64
        && l.splat(inst.result, &x, &inst.ty)
    {
        return Ok(());
    }
    let refuse = || ClifError::unsupported("broadcast", format!("{} to {}", x.ty, inst.ty));
    let lead = inst.ty.rank().checked_sub(x.ty.rank()).ok_or_else(refuse)?;
    let shape = l.shape(&x.ty);
    let st = l.strides(&shape);
    let zero = l.iconst(0);
    let mut strides = vec![zero; inst.ty.rank()];
    let mut stretched = vec![true; inst.ty.rank()];
    for (i, d) in x.ty.shape.iter().enumerate() {
        let target = &inst.ty.shape[lead + i];
        if d == target {
            strides[lead + i] = st[i];
            stretched[lead + i] = false;
        } else if *d != Dim::constant(1) {
            return Err(refuse());
        }
    }
    // Loops read a broadcast in place, row by row along the last axis (not worth it for
    // rows of one element).
    let rows = inst.ty.shape.last().is_some_and(|d| *d != Dim::constant(1));
    if rows && x.ty.dtype != archc_compiler::tir::DType::C64 {
        let b = super::Bcast { stretched, strides: strides.clone() };
        if l.lazy_broadcast(inst.result, &x, &inst.ty, b) {
            return Ok(());
        }
    }
    copy_out(l, inst, &View { ptr: x.ptr, off: zero, strides });
    Ok(())
}

fn slice(l: &mut FnLower, inst: &Inst, start: &[Dim], end: &[Dim], step: &[i64]) -> Result<(), ClifError> {
    let x = l.arg(inst, 0);
    let r = x.ty.rank();
    if start.len() != r || end.len() != r || step.len() != r || step.iter().any(|&s| s <= 0) {
        return Err(ClifError::unsupported("slice", format!("attributes do not fit {}", x.ty)));
    }
    let shape = l.shape(&x.ty);
    let declared = l.shape(&inst.ty);
    let st = l.strides(&shape);
    let zero = l.iconst(0);
    let (mut off, mut strides, mut bad) = (zero, Vec::new(), l.b.ins().iconst(cranelift_codegen::ir::types::I8, 0));
    for ax in 0..r {
        let lo = clamp(l, &start[ax], shape[ax]);
        let hi = clamp(l, &end[ax], shape[ax]);
        // len = hi > lo ? (hi - lo + step - 1) / step : 0
        let span = l.b.ins().isub(hi, lo);
        let span = l.b.ins().smax(span, zero);
        let up = l.b.ins().iadd_imm_s(span, step[ax] - 1);
        let s = l.iconst(step[ax]);
        let len = l.b.ins().sdiv(up, s);
        let wrong = l.b.ins().icmp(IntCC::NotEqual, len, declared[ax]);
        bad = l.b.ins().bor(bad, wrong);
        let o = l.b.ins().imul(lo, st[ax]);
        off = l.b.ins().iadd(off, o);
        strides.push(l.b.ins().imul_imm_s(st[ax], step[ax]));
    }
    let out = l.alloc(&inst.ty);
    // The interpreter's slice refuses the run, in its words.
    l.if_then(bad, |l| super::kernel::call(l, inst, crate::kernels::Kernel::Reference, &[out.0], true));
    let ok = l.b.ins().bxor_imm_s(bad, 1);
    let src = View { ptr: x.ptr, off, strides };
    l.if_then(ok, |l| {
        let dst = l.dense(out.0, &declared);
        l.copy_view(elem(inst.ty.dtype).1, &declared, &src, &dst);
    });
    l.bind(inst.result, out, &inst.ty);
    Ok(())
}

/// `d` clamped to `[0, size]`.
fn clamp(l: &mut FnLower, d: &Dim, size: Value) -> Value {
    let v = l.dim(d);
    let zero = l.iconst(0);
    let v = l.b.ins().smin(v, size);
    l.b.ins().smax(v, zero)
}

fn concat(l: &mut FnLower, inst: &Inst, axis: usize) -> Result<(), ClifError> {
    if axis >= inst.ty.rank() || inst.args.is_empty() {
        return Err(ClifError::unsupported("concat", format!("along axis {axis} of {}", inst.ty)));
    }
    let out = l.alloc(&inst.ty);
    let sizes = l.shape(&inst.ty);
    let dst_st = l.strides(&sizes);
    let es = elem(inst.ty.dtype).1;
    let mut start = l.iconst(0);
    for i in 0..inst.args.len() {
        let x = l.arg(inst, i);
        let shape = l.shape(&x.ty);
        let src = if x.splat {
            // A broadcast scalar: every element from its one.
            let zero = l.iconst(0);
            View { ptr: x.ptr, off: zero, strides: vec![zero; shape.len()] }
        } else {
            l.dense(x.ptr, &shape)
        };
        let off = l.b.ins().imul(start, dst_st[axis]);
        let dst = View { ptr: out.0, off, strides: dst_st.clone() };
        l.copy_view(es, &shape, &src, &dst);
        start = l.b.ins().iadd(start, shape[axis]);
    }
    l.bind(inst.result, out, &inst.ty);
    Ok(())
}

fn pad(l: &mut FnLower, inst: &Inst, padding: &[(i64, i64)], value: f64) -> Result<(), ClifError> {
    let x = l.arg(inst, 0);
    if padding.len() != x.ty.rank() || padding.iter().any(|&(lo, hi)| lo < 0 || hi < 0) {
        return Err(ClifError::unsupported("pad", format!("{padding:?} of {}", x.ty)));
    }
    let out = l.alloc(&inst.ty);
    let n = l.numel(&inst.ty);
    fill(l, inst.ty.dtype, out.0, n, value);
    let sizes = l.shape(&inst.ty);
    let dst_st = l.strides(&sizes);
    let mut off = l.iconst(0);
    for (ax, &(lo, _)) in padding.iter().enumerate() {
        let o = l.b.ins().imul_imm_s(dst_st[ax], lo);
        off = l.b.ins().iadd(off, o);
    }
    let shape = l.shape(&x.ty);
    let src = l.dense(x.ptr, &shape);
    let dst = View { ptr: out.0, off, strides: dst_st };
    l.copy_view(elem(inst.ty.dtype).1, &shape, &src, &dst);
    l.bind(inst.result, out, &inst.ty);
    Ok(())
}
