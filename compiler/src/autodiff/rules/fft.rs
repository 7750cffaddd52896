//! Spectral ops. With `X = rfft(x)` over `n` points and `c_k` = 1 for the DC bin (and
//! the Nyquist bin when `n` is even), 2 otherwise:
//! - `rfft`: `dx = n * irfft(ct * w)` with `w_k = 1 / c_k`, because
//!   `dx_m = Re(sum_k ct_k e^{+2 pi i k m / n})` and `irfft` doubles the interior bins.
//! - `irfft`: `dY_k = rfft(ct)_k * c_k / n`, with the imaginary parts of the DC and
//!   Nyquist bins (ignored by `irfft`) receiving zero.
//! - `real`, `imag`, `complex`: the real and imaginary parts move independently.
//!
//! Truncated spectra stay truncated: a spectral layer reads the first `k` bins of an
//! `rfft` and pads `k` bins with zeros before its `irfft`, so the cotangent of that `rfft`
//! is `k` bins and zeros, and only `k` bins of the `irfft`'s cotangent are read. Both
//! rules then compute the `k` bins alone and pad with zeros after ([`zero_padded`]),
//! which backends lower as `k`-column transforms (as in the forward pass); `complex`
//! and `concat` hand such a padded cotangent back to their operands in pieces.

use super::super::emit::{Emitter, Res, V};
use crate::tir::{pattern, BinaryOp, DType, Dim, Op, TensorType};

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

/// `v` as `head` followed by zeros along `axis` ([`pattern::zero_padded`]): `head`.
fn zero_padded(e: &Emitter, v: V, axis: usize) -> Option<V> {
    pattern::zero_padded(|x| e.def(x), v, axis)
}

/// `parts` (f32, the first bins along `axis`) each followed by zeros up to `bins` bins.
fn pad_bins(e: &mut Emitter, parts: [V; 2], axis: usize, bins: &Dim) -> Res<[V; 2]> {
    let t = e.ty(parts[0]);
    let mut tail = t.clone();
    tail.shape[axis] = bins.sub(&t.shape[axis]);
    let zeros = e.fill(0.0, &tail)?;
    let [a, b] = parts;
    Ok([e.op(Op::Concat { axis }, &[a, zeros], None)?, e.op(Op::Concat { axis }, &[b, zeros], None)?])
}

pub fn rfft_back(e: &mut Emitter, axis: usize, x: V, ct: V) -> Res<V> {
    let xt = e.ty(x);
    let n = xt.shape[axis].clone();
    let bins = e.ty(ct).shape[axis].clone();
    let head = zero_padded(e, ct, axis);
    let src = head.unwrap_or(ct);
    let real_t = e.ty(src).with_dtype(DType::F32);
    let w = bin_weights(e, &n, axis, &real_t, 1.0, 0.5)?;
    let re = e.op(Op::Real, &[src], None)?;
    let im = e.op(Op::Imag, &[src], None)?;
    let mut parts = [e.mul(re, w)?, e.mul(im, w)?];
    if head.is_some() {
        parts = pad_bins(e, parts, axis, &bins)?;
    }
    let z = e.op(Op::Complex, &parts, None)?;
    let y = e.op(Op::Irfft { axis, n: n.clone() }, &[z], Some(xt.clone()))?;
    let nv = e.dim_value(&n, xt.dtype)?;
    let nb = e.broadcast(nv, &xt.shape)?;
    e.mul(y, nb)
}

/// The bins along `axis` that a spectrum `complex(re, im)` may have other than zero,
/// where both parts are zero-padded alike ([`zero_padded`]).
fn nonzero_bins(e: &Emitter, z: V, axis: usize) -> Option<Dim> {
    let def = e.def(z).filter(|d| d.op == Op::Complex)?;
    let heads: Vec<Dim> = def
        .args
        .iter()
        .map(|&p| zero_padded(e, p, axis).map(|h| e.ty(h).shape[axis].clone()))
        .collect::<Option<_>>()?;
    (heads[0] == heads[1]).then(|| heads[0].clone())
}

pub fn irfft_back(e: &mut Emitter, axis: usize, n: &Dim, z: V, ct: V) -> Res<V> {
    let bins = e.ty(z).shape[axis].clone();
    let ctf = e.cast(ct, DType::F32)?;
    let mut spec = e.op(Op::Rfft { axis }, &[ctf], None)?;
    let kept = nonzero_bins(e, z, axis);
    if let Some(k) = &kept {
        spec = e.slice_axis(spec, axis, Dim::constant(0), k.clone(), 1)?;
    }
    let real_t = e.ty(spec).with_dtype(DType::F32);
    let w_re = bin_weights(e, n, axis, &real_t, 1.0, 2.0)?;
    let w_im = bin_weights(e, n, axis, &real_t, 0.0, 2.0)?;
    let nv = e.dim_value(n, DType::F32)?;
    let nb = e.broadcast(nv, &real_t.shape)?;
    let re = e.op(Op::Real, &[spec], None)?;
    let im = e.op(Op::Imag, &[spec], None)?;
    let re = e.mul(re, w_re)?;
    let im = e.mul(im, w_im)?;
    let mut parts = [e.bin(BinaryOp::Div, re, nb)?, e.bin(BinaryOp::Div, im, nb)?];
    if kept.is_some() {
        parts = pad_bins(e, parts, axis, &bins)?;
    }
    e.op(Op::Complex, &parts, None)
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
    if let Some(parts) = e.def(ct).filter(|d| d.op == Op::Complex).map(|d| d.args.clone()) {
        return Ok(vec![Some(parts[0]), Some(parts[1])]);
    }
    let re = e.op(Op::Real, &[ct], None)?;
    let im = e.op(Op::Imag, &[ct], None)?;
    Ok(vec![Some(re), Some(im)])
}
