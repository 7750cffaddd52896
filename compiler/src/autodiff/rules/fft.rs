//! Spectral ops. With `X = rfft(x)` over `n` points and `c_k` = 1 for the DC bin (and
//! the Nyquist bin when `n` is even), 2 otherwise:
//! - `rfft`: `dx = n * irfft(ct * w)` with `w_k = 1 / c_k`, because
//!   `dx_m = Re(sum_k ct_k e^{+2 pi i k m / n})` and `irfft` doubles the interior bins.
//! - `irfft`: `dY_k = rfft(ct)_k * c_k / n`, with the imaginary parts of the DC and
//!   Nyquist bins (ignored by `irfft`) receiving zero.
//! - `real`, `imag`, `complex`: the real and imaginary parts move independently.

use super::super::emit::{Emitter, Res, V};
use crate::tir::{BinaryOp, DType, Dim, Op, TensorType};

/// A tensor of `bins` entries along `axis` (broadcast to `like`'s shape): `edge` at the
/// DC bin and, for even `n`, at the Nyquist bin; `inner` elsewhere.
fn bin_weights(e: &mut Emitter, n: &Dim, axis: usize, like: &TensorType, edge: f64, inner: f64) -> Res<V> {
    let bins = like.shape[axis].clone();
    let f = DType::F32;
    let k = e.op(Op::Iota { axis: 0 }, &[], Some(TensorType::new(f, vec![bins.clone()])))?;
    let vec_t = TensorType::new(f, vec![bins]);
    let zero = e.fill(0.0, &vec_t)?;
    let is_dc = e.bin(BinaryOp::Eq, k, zero)?;
    let two_k = e.scale(k, 2.0)?;
    let nv = e.dim_value(n, f)?;
    let nb = e.broadcast(nv, &vec_t.shape)?;
    let is_nyq = e.bin(BinaryOp::Eq, two_k, nb)?;
    let edge_mask = e.bin(BinaryOp::Or, is_dc, is_nyq)?;
    let ev = e.fill(edge, &vec_t)?;
    let iv = e.fill(inner, &vec_t)?;
    let w = e.op(Op::Select, &[edge_mask, ev, iv], None)?;
    let mut shape = vec![Dim::constant(1); like.rank()];
    shape[axis] = like.shape[axis].clone();
    let w = e.reshape(w, shape)?;
    let w = e.broadcast(w, &like.shape)?;
    Ok(w)
}

pub fn rfft_back(e: &mut Emitter, axis: usize, x: V, ct: V) -> Res<V> {
    let xt = e.ty(x);
    let n = xt.shape[axis].clone();
    let ctt = e.ty(ct);
    let real_t = ctt.with_dtype(DType::F32);
    let w = bin_weights(e, &n, axis, &real_t, 1.0, 0.5)?;
    let re = e.op(Op::Real, &[ct], None)?;
    let im = e.op(Op::Imag, &[ct], None)?;
    let re = e.mul(re, w)?;
    let im = e.mul(im, w)?;
    let z = e.op(Op::Complex, &[re, im], None)?;
    let y = e.op(Op::Irfft { axis, n: n.clone() }, &[z], Some(xt.clone()))?;
    let nv = e.dim_value(&n, xt.dtype)?;
    let nb = e.broadcast(nv, &xt.shape)?;
    e.mul(y, nb)
}

pub fn irfft_back(e: &mut Emitter, axis: usize, n: &Dim, z: V, ct: V) -> Res<V> {
    let zt = e.ty(z);
    let ctf = e.cast(ct, DType::F32)?;
    let spec = e.op(Op::Rfft { axis }, &[ctf], None)?;
    let real_t = zt.with_dtype(DType::F32);
    let w_re = bin_weights(e, n, axis, &real_t, 1.0, 2.0)?;
    let w_im = bin_weights(e, n, axis, &real_t, 0.0, 2.0)?;
    let nv = e.dim_value(n, DType::F32)?;
    let nb = e.broadcast(nv, &real_t.shape)?;
    let re = e.op(Op::Real, &[spec], None)?;
    let im = e.op(Op::Imag, &[spec], None)?;
    let re = e.mul(re, w_re)?;
    let im = e.mul(im, w_im)?;
    let re = e.bin(BinaryOp::Div, re, nb)?;
    let im = e.bin(BinaryOp::Div, im, nb)?;
    e.op(Op::Complex, &[re, im], None)
}

pub fn real_back(e: &mut Emitter, ct: V) -> Res<V> {
    let zero = e.fill(0.0, &e.ty(ct))?;
    e.op(Op::Complex, &[ct, zero], None)
}

pub fn imag_back(e: &mut Emitter, ct: V) -> Res<V> {
    let zero = e.fill(0.0, &e.ty(ct))?;
    e.op(Op::Complex, &[zero, ct], None)
}

pub fn complex_back(e: &mut Emitter, ct: V) -> Res<Vec<Option<V>>> {
    let re = e.op(Op::Real, &[ct], None)?;
    let im = e.op(Op::Imag, &[ct], None)?;
    Ok(vec![Some(re), Some(im)])
}
