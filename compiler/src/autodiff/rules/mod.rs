//! Gradient rules: one vector-Jacobian product per primitive op.
//!
//! `vjp(e, inst, ct)` emits, into the function being built, the cotangent of each operand
//! of `inst` given the cotangent `ct` of its result (`None` for operands that carry no
//! gradient: integers, booleans, indices). Cotangents have the type of their primal.
//! Complex cotangents follow the convention `ct = dL/dRe + i dL/dIm`, so `z = u * v`
//! gives `ct_u = ct * conj(v)`.
//!
//! Control ops (`call`, `stack`, `vmap`, `scan`) are not handled here: the train-step
//! builder inlines calls and stacks and differentiates `vmap`/`scan` bodies itself.

mod contract;
mod conv;
mod elementwise;
mod fft;
mod movement;
mod reduce;

use super::emit::{Emitter, Res, V};
use crate::tir::{Inst, Op};

/// Cotangents of `inst`'s operands given the cotangent `ct` of its result.
pub fn vjp(e: &mut Emitter, inst: &Inst, ct: V) -> Res<Vec<Option<V>>> {
    let a = &inst.args;
    let y = inst.result;
    match &inst.op {
        Op::Param(_) | Op::Const(_) | Op::Iota { .. } | Op::RandUniform { .. } | Op::RandNormal { .. } => Ok(vec![]),
        Op::ArgMax { .. } | Op::ArgSort { .. } | Op::StopGradient => Ok(vec![None]),
        Op::Unary(u) => Ok(vec![elementwise::unary(e, *u, a[0], y, ct)?]),
        Op::Binary(b) => elementwise::binary(e, *b, a[0], a[1], y, ct),
        Op::Select => movement::select(e, a[0], ct),
        Op::Cast => movement::cast(e, a[0], ct),
        Op::Reduce { op, axes, keepdim } => Ok(vec![reduce::reduce(e, *op, axes, *keepdim, a[0], y, ct)?]),
        Op::MatMul => contract::matmul(e, a[0], a[1], ct),
        Op::Einsum(spec) => contract::einsum(e, spec, a, ct),
        Op::Conv { stride, padding, dilation, groups } => {
            let c = conv::ConvAttrs { stride, padding, dilation, groups: *groups };
            conv::conv(e, &c, a[0], a[1], ct)
        }
        Op::Pool { op, window, stride, padding } => {
            Ok(vec![Some(conv::pool(e, *op, window, stride, padding, a[0], y, ct)?)])
        }
        Op::Reshape => Ok(vec![Some(e.reshape(ct, e.ty(a[0]).shape)?)]),
        Op::Permute(perm) => Ok(vec![Some(movement::permute_back(e, perm, ct)?)]),
        Op::Broadcast => Ok(vec![Some(e.sum_to(ct, &e.ty(a[0]).shape)?)]),
        Op::Slice { start, end, step } => Ok(vec![Some(movement::slice_back(e, a[0], start, end, step, ct)?)]),
        Op::Concat { axis } => movement::concat_back(e, *axis, a, ct),
        Op::Pad { padding, .. } => Ok(vec![Some(movement::pad_back(e, a[0], padding, ct)?)]),
        Op::Gather { axis } => movement::gather_back(e, *axis, a[0], a[1], ct),
        Op::ScatterAdd { axis } => movement::scatter_back(e, *axis, a[1], ct),
        Op::Rfft { axis } => Ok(vec![Some(fft::rfft_back(e, *axis, a[0], ct)?)]),
        Op::Irfft { axis, n } => Ok(vec![Some(fft::irfft_back(e, *axis, n, a[0], ct)?)]),
        Op::Real => Ok(vec![Some(fft::real_back(e, ct)?)]),
        Op::Imag => Ok(vec![Some(fft::imag_back(e, ct)?)]),
        Op::Complex => fft::complex_back(e, ct),
        Op::Call(_) | Op::Stack(_) | Op::Vmap { .. } | Op::Scan { .. } => {
            Err(format!("internal: `{}` must be expanded before differentiation", inst.op.name()))
        }
    }
}
