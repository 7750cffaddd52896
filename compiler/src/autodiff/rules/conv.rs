//! Convolution and pooling, differentiated with the primitive ops themselves:
//! - `dx`: the cotangent, dilated by the stride and padded by `dilation * (k - 1)`, is
//!   correlated with the kernel flipped along its spatial axes and with input/output
//!   channels swapped per group; then the forward padding is cropped.
//! - `dw`: a grouped convolution of the padded input (channels as batch, batch as
//!   channels) with the cotangent as kernel, stride and dilation exchanged; for a
//!   pointwise convolution (window of one, unit stride, no padding, one group) the sum
//!   over batch entries of `ct[b] @ x[b]ᵀ` instead, which backends run as one batched
//!   product without moving either operand.
//! - pooling: each window offset contributes its strided slice (masked by "is the max"
//!   for max pooling, divided by the window size for average pooling), dilated and
//!   shifted back into place.

use super::super::emit::{Emitter, Res, V};
use crate::tir::{pattern, BinaryOp, Dim, Op, PoolOp, ReduceOp};

pub struct ConvAttrs<'a> {
    pub stride: &'a [i64],
    pub padding: &'a [(i64, i64)],
    pub dilation: &'a [i64],
    pub groups: i64,
}

pub fn conv(e: &mut Emitter, c: &ConvAttrs, x: V, w: V, ct: V) -> Res<Vec<Option<V>>> {
    let dx = conv_input(e, c, x, w, ct)?;
    let dw = conv_weight(e, c, x, w, ct)?;
    Ok(vec![Some(dx), Some(dw)])
}

fn conv_input(e: &mut Emitter, c: &ConvAttrs, x: V, w: V, ct: V) -> Res<V> {
    let xt = e.ty(x);
    let wt = e.ty(w);
    let n = xt.rank() - 2;
    let g = c.groups;
    let (co, cig) = (wt.shape[0].clone(), wt.shape[1].clone());
    let cog = co.exact_div(g).ok_or("conv: output channels not divisible by groups")?;
    // w [Co, Ci/g, K..] -> [g, Co/g, Ci/g, K..] -> [g, Ci/g, Co/g, K..] -> [Ci, Co/g, K..], flipped.
    let mut split = vec![Dim::constant(g), cog.clone(), cig.clone()];
    split.extend(wt.shape[2..].iter().cloned());
    let w1 = e.reshape(w, split)?;
    let mut perm = vec![0, 2, 1];
    perm.extend(3..3 + n);
    let w2 = e.permute(w1, perm)?;
    let mut merged = vec![cig.mul(&Dim::constant(g)), cog];
    merged.extend(wt.shape[2..].iter().cloned());
    let mut wf = e.reshape(w2, merged)?;
    for ax in 0..n {
        wf = e.flip(wf, 2 + ax)?;
    }
    let mut h = ct;
    let mut pad_total = Vec::new();
    for ax in 0..n {
        let k = wt.shape[2 + ax].as_const().ok_or("conv: kernel sizes must be constants")?;
        let (s, d) = (c.stride[ax], c.dilation[ax]);
        let (lo, hi) = c.padding[ax];
        h = e.dilate(h, 2 + ax, s)?;
        // Forward: xp = S + lo + hi; used = (O - 1) s + 1 + d (k - 1); the rest is unused.
        let xp = xt.shape[2 + ax].add(&Dim::constant(lo + hi));
        let used = e.ty(h).shape[2 + ax].add(&Dim::constant(d * (k - 1)));
        let rest = xp.sub(&used);
        let full = Dim::constant(d * (k - 1));
        h = e.pad_dims(h, 2 + ax, &full, &full.add(&rest))?;
        pad_total.push((lo, xt.shape[2 + ax].clone()));
    }
    let ones = vec![1; n];
    let conv = Op::Conv { stride: ones.clone(), padding: vec![(0, 0); n], dilation: c.dilation.to_vec(), groups: g };
    let mut dxp = e.op(conv, &[h, wf], None)?;
    for (ax, (lo, size)) in pad_total.into_iter().enumerate() {
        dxp = e.slice_axis(dxp, 2 + ax, Dim::constant(lo), Dim::constant(lo).add(&size), 1)?;
    }
    Ok(dxp)
}

fn conv_weight(e: &mut Emitter, c: &ConvAttrs, x: V, w: V, ct: V) -> Res<V> {
    if pointwise(e, c, w) {
        return pointwise_weight(e, x, w, ct);
    }
    let xt = e.ty(x);
    let wt = e.ty(w);
    let ctt = e.ty(ct);
    let n = xt.rank() - 2;
    let g = c.groups;
    let b = xt.shape[0].clone();
    let cig = wt.shape[1].clone();
    let co = wt.shape[0].clone();
    let cog = co.exact_div(g).ok_or("conv: output channels not divisible by groups")?;
    let padding = c.padding.to_vec();
    let mut full_pad = vec![(0, 0), (0, 0)];
    full_pad.extend(padding.iter().copied());
    let xp = if padding.iter().all(|p| *p == (0, 0)) {
        x
    } else {
        e.op(Op::Pad { padding: full_pad, value: 0.0 }, &[x], None)?
    };
    let xpt = e.ty(xp);
    // xp [B, Ci, S..] -> [B, g, Ci/g, S..] -> [Ci/g, g, B, S..] -> [Ci/g, g B, S..]
    let mut s1 = vec![b.clone(), Dim::constant(g), cig.clone()];
    s1.extend(xpt.shape[2..].iter().cloned());
    let x1 = e.reshape(xp, s1)?;
    let mut perm = vec![2, 1, 0];
    perm.extend(3..3 + n);
    let x2 = e.permute(x1, perm.clone())?;
    let mut s2 = vec![cig.clone(), b.mul(&Dim::constant(g))];
    s2.extend(xpt.shape[2..].iter().cloned());
    let xin = e.reshape(x2, s2)?;
    // ct [B, Co, O..] -> [B, g, Co/g, O..] -> [g, Co/g, B, O..] -> [Co, B, O..]
    let mut c1 = vec![b.clone(), Dim::constant(g), cog.clone()];
    c1.extend(ctt.shape[2..].iter().cloned());
    let k1 = e.reshape(ct, c1)?;
    let mut kperm = vec![1, 2, 0];
    kperm.extend(3..3 + n);
    let k2 = e.permute(k1, kperm)?;
    let mut c2 = vec![co.clone(), b];
    c2.extend(ctt.shape[2..].iter().cloned());
    let kern = e.reshape(k2, c2)?;
    let op = Op::Conv { stride: c.dilation.to_vec(), padding: vec![(0, 0); n], dilation: c.stride.to_vec(), groups: g };
    let mut dw = e.op(op, &[xin, kern], None)?;
    for ax in 0..n {
        dw = e.slice_axis(dw, 2 + ax, Dim::constant(0), wt.shape[2 + ax].clone(), 1)?;
    }
    // [Ci/g, Co, K..] -> [Co, Ci/g, K..]
    let mut back = vec![1, 0];
    back.extend(2..2 + n);
    e.permute(dw, back)
}

/// A window of one, unit stride, no padding, one group ([`pattern::pointwise_conv`]).
fn pointwise(e: &Emitter, c: &ConvAttrs, w: V) -> bool {
    pattern::pointwise_conv(c.stride, c.padding, c.groups, &e.ty(w).shape[2..])
}

/// `dw[o, c] = sum_b (ct[b] @ x[b]ᵀ)[o, c]` over the flattened spatial axes.
fn pointwise_weight(e: &mut Emitter, x: V, w: V, ct: V) -> Res<V> {
    let (xt, ctt, wt) = (e.ty(x), e.ty(ct), e.ty(w));
    let b = xt.shape[0].clone();
    let flat = |t: &crate::tir::TensorType| {
        let s = t.shape[2..].iter().fold(Dim::constant(1), |acc, d| acc.mul(d));
        vec![b.clone(), t.shape[1].clone(), s]
    };
    let x3 = e.reshape(x, flat(&xt))?;
    let ct3 = e.reshape(ct, flat(&ctt))?;
    let xs = e.permute(x3, vec![0, 2, 1])?;
    let per_batch = e.op(Op::MatMul, &[ct3, xs], None)?;
    let dw = e.op(Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdim: false }, &[per_batch], None)?;
    e.reshape(dw, wt.shape.clone())
}

#[allow(clippy::too_many_arguments)]
pub fn pool(
    e: &mut Emitter,
    op: PoolOp,
    window: &[i64],
    stride: &[i64],
    padding: &[(i64, i64)],
    x: V,
    y: V,
    ct: V,
) -> Res<V> {
    let xt = e.ty(x);
    let n = window.len();
    let lead = xt.rank() - n;
    let mut full_pad = vec![(0, 0); lead];
    full_pad.extend(padding.iter().copied());
    let fill = if op == PoolOp::Max { f64::NEG_INFINITY } else { 0.0 };
    let xp = e.op(Op::Pad { padding: full_pad.clone(), value: fill }, &[x], None)?;
    let xpt = e.ty(xp);
    let out = e.ty(y).shape;
    let mut total: Option<V> = None;
    let offsets = window_offsets(window);
    for off in &offsets {
        let mut part = ct;
        if op == PoolOp::Max {
            let mut xs = xp;
            for ax in 0..n {
                let start = Dim::constant(off[ax]);
                let end = start
                    .add(&out[lead + ax].sub(&Dim::constant(1)).mul(&Dim::constant(stride[ax])))
                    .add(&Dim::constant(1));
                xs = e.slice_axis(xs, lead + ax, start, end, stride[ax])?;
            }
            let hit = e.bin(BinaryOp::Eq, xs, y)?;
            let zero = e.fill(0.0, &e.ty(ct))?;
            part = e.op(Op::Select, &[hit, ct, zero], None)?;
        }
        for ax in 0..n {
            part = e.dilate(part, lead + ax, stride[ax])?;
            let placed = e.ty(part).shape[lead + ax].clone();
            let after = xpt.shape[lead + ax].sub(&placed).sub(&Dim::constant(off[ax]));
            part = e.pad_dims(part, lead + ax, &Dim::constant(off[ax]), &after)?;
        }
        total = Some(match total {
            None => part,
            Some(t) => e.add(t, part)?,
        });
    }
    let mut g = total.ok_or("pool: empty window")?;
    if op == PoolOp::Avg {
        let size: i64 = window.iter().product();
        g = e.scale(g, 1.0 / size as f64)?;
    }
    for ax in 0..n {
        let (lo, _) = padding[ax];
        g = e.slice_axis(g, lead + ax, Dim::constant(lo), Dim::constant(lo).add(&xt.shape[lead + ax]), 1)?;
    }
    Ok(g)
}

/// Every offset inside an N-d window, in row-major order.
fn window_offsets(window: &[i64]) -> Vec<Vec<i64>> {
    let mut out = vec![Vec::new()];
    for &k in window {
        out = out.into_iter().flat_map(|p| (0..k).map(move |i| [p.clone(), vec![i]].concat())).collect();
    }
    out
}
