//! Builtins that move elements by computed indices, written with `gather` (so every
//! backend runs them and their gradients are `scatter_add`s): padding modes, reversal
//! (negative slice steps), upsampling and transposed convolution.
//!
//! - `pad(x, pairs, mode = "reflect" | "replicate" | "circular")` (PyTorch's `F.pad`
//!   modes; `"constant"` is the `pad` op): for an axis of `n` with `(lo, hi)`, position
//!   `q = p - lo` reads `|q|` mirrored at `n - 1` (reflect: `lo, hi < n`), `q` clamped
//!   to `[0, n)` (replicate), or `q mod n` (circular: `lo, hi <= n`).
//! - [`reverse`]: an axis read backwards (`x[::-1]`).
//! - `upsample(x, scale, mode = "nearest" | "linear")`: every axis after the first two
//!   grows by its integer `scale`; `nearest` reads `p / scale`, `linear` interpolates
//!   at `(p + 0.5) / scale - 0.5` clamped to the axis (PyTorch's `align_corners=False`;
//!   bilinear and trilinear are the 1-d rule on each axis in turn).
//! - `conv_transpose(x, w, stride =, padding =, output_padding =, dilation =, groups =)`:
//!   PyTorch's `conv_transpose{1,2,3}d` (weights `[C_in, C_out / groups, *K]`), as a
//!   convolution of the input spread by `stride` with the flipped kernel.
//! - Pooling's `ceil_mode` (PyTorch's rule: the last window may run past the padded end
//!   but must start inside the input or its left padding) is an explicit pad after the
//!   input (the lowest value for max pooling); an average with `ceil_mode` or `count_include_pad =
//!   false` divides the windows' sums by the count of what they cover (the padding only
//!   when counted, the extra end never), as a ratio of two average pools.

use super::args::ArgReader;
use super::builtins::{per_axis, permute};
use super::value::{TVal, Value};
use super::{Checker, R};
use crate::diag::Diagnostic;
use crate::tir::{BinaryOp, DType, Dim, Op, ReduceOp, TensorType, UnaryOp};
use archc_grammar::span::Span;

/// The builtins of this module (`pad` with a mode comes through [`pad_mode`]).
pub const NAMES: &[&str] = &["upsample", "conv_transpose"];

pub fn call(c: &mut Checker, name: &str, a: &mut ArgReader) -> R<Value> {
    match name {
        "upsample" => upsample(c, a),
        _ => conv_transpose(c, a),
    }
}

fn bin(c: &mut Checker, op: BinaryOp, a: &TVal, b: &TVal, span: Span) -> R<TVal> {
    c.emit(Op::Binary(op), &[a, b], None, span)
}

/// A scalar of `dtype` broadcast to `shape`.
pub(super) fn full(c: &mut Checker, v: f64, dtype: DType, shape: &[Dim], span: Span) -> R<TVal> {
    let s = c.emit(Op::Const(v), &[], Some(TensorType::scalar(dtype)), span)?;
    c.broadcast_to(&s, shape, span)
}

/// The size `n` as an i64 tensor of `shape` (a constant, or counted at run time).
pub(super) fn size_of(c: &mut Checker, n: &Dim, shape: &[Dim], span: Span) -> R<TVal> {
    if let Some(k) = n.as_const() {
        return full(c, k as f64, DType::I64, shape, span);
    }
    let ones = full(c, 1.0, DType::I64, std::slice::from_ref(n), span)?;
    let count = c.emit(Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdim: false }, &[&ones], None, span)?;
    c.broadcast_to(&count, shape, span)
}

/// `0, 1, ..., len - 1` as `dtype`.
fn iota(c: &mut Checker, len: &Dim, dtype: DType, span: Span) -> R<TVal> {
    c.emit(Op::Iota { axis: 0 }, &[], Some(TensorType::new(dtype, vec![len.clone()])), span)
}

/// `x` at positions `idx` (i64, one axis) along `axis`.
fn pick(c: &mut Checker, x: &TVal, idx: &TVal, axis: usize, span: Span) -> R<TVal> {
    c.emit(Op::Gather { axis }, &[x, idx], None, span)
}

/// `axis` of `x` read backwards (negative indices count from the end in `gather`).
pub fn reverse(c: &mut Checker, x: &TVal, axis: usize, span: Span) -> R<TVal> {
    let n = x.ty.shape[axis].clone();
    let up = iota(c, &n, DType::I64, span)?;
    let minus_one = full(c, -1.0, DType::I64, std::slice::from_ref(&n), span)?;
    let down = bin(c, BinaryOp::Sub, &minus_one, &up, span)?;
    pick(c, x, &down, axis, span)
}

/// `pad` with a mode other than `"constant"` (see the module docs); `pairs` per axis.
pub fn pad_mode(c: &mut Checker, x: &TVal, pairs: &[(i64, i64)], mode: &str, span: Span) -> R<TVal> {
    let mut y = x.clone();
    for (axis, &(lo, hi)) in pairs.iter().enumerate() {
        if lo == 0 && hi == 0 {
            continue;
        }
        let n = x.ty.shape[axis].clone();
        let limit = match mode {
            "reflect" => n.as_const().map(|n| n - 1),
            _ => n.as_const(),
        };
        if let Some(l) = limit.filter(|l| lo > *l || hi > *l) {
            let rule = if mode == "reflect" { "less than" } else { "at most" };
            return Err(Diagnostic::error(
                format!("{mode} padding ({lo}, {hi}) of axis {axis} of {} must be {rule} its size", x.ty),
                span,
            )
            .with_help(format!("at most {l} on each side")));
        }
        let len = n.add(&Dim::constant(lo + hi));
        let shape = vec![len.clone()];
        let p = iota(c, &len, DType::I64, span)?;
        let shift = full(c, lo as f64, DType::I64, &shape, span)?;
        let q = bin(c, BinaryOp::Sub, &p, &shift, span)?;
        let n_t = size_of(c, &n, &shape, span)?;
        let one = full(c, 1.0, DType::I64, &shape, span)?;
        let last = bin(c, BinaryOp::Sub, &n_t, &one, span)?;
        let idx = match mode {
            "reflect" => {
                let r = c.emit(Op::Unary(UnaryOp::Abs), &[&q], None, span)?;
                let d = bin(c, BinaryOp::Sub, &last, &r, span)?;
                let d = c.emit(Op::Unary(UnaryOp::Abs), &[&d], None, span)?;
                bin(c, BinaryOp::Sub, &last, &d, span)?
            }
            "replicate" => {
                let zero = full(c, 0.0, DType::I64, &shape, span)?;
                let q = bin(c, BinaryOp::Max, &q, &zero, span)?;
                bin(c, BinaryOp::Min, &q, &last, span)?
            }
            _ => bin(c, BinaryOp::Rem, &q, &n_t, span)?,
        };
        y = pick(c, &y, &idx, axis, span)?;
    }
    Ok(y)
}

fn upsample(c: &mut Checker, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let x = a.tensor("x")?;
    if x.ty.rank() < 3 || !x.ty.dtype.is_float() {
        return Err(Diagnostic::error(format!("upsample needs a float input [B, C, *spatial], found {}", x.ty), span));
    }
    let n = x.ty.rank() - 2;
    let scale = per_axis(a.ints_or("scale", None)?, n, 0, "scale", span)?;
    if scale.iter().any(|&s| s < 1) {
        return Err(Diagnostic::error(format!("upsample scales must be positive ints, found {scale:?}"), span));
    }
    let mode = a.str_or("mode", "nearest")?;
    let mut y = x;
    for (i, &s) in scale.iter().enumerate() {
        if s == 1 {
            continue;
        }
        y = match mode.as_str() {
            "nearest" => nearest(c, &y, 2 + i, s, span)?,
            "linear" => linear(c, &y, 2 + i, s, span)?,
            other => {
                return Err(Diagnostic::error(format!("unknown upsample mode \"{other}\""), span)
                    .with_help("modes: \"nearest\", \"linear\""))
            }
        };
    }
    Ok(Value::Tensor(y))
}

fn nearest(c: &mut Checker, x: &TVal, axis: usize, s: i64, span: Span) -> R<TVal> {
    let len = x.ty.shape[axis].mul(&Dim::constant(s));
    let p = iota(c, &len, DType::I64, span)?;
    let st = full(c, s as f64, DType::I64, std::slice::from_ref(&len), span)?;
    let idx = bin(c, BinaryOp::Div, &p, &st, span)?;
    pick(c, x, &idx, axis, span)
}

fn linear(c: &mut Checker, x: &TVal, axis: usize, s: i64, span: Span) -> R<TVal> {
    let dt = x.ty.dtype;
    let n = x.ty.shape[axis].clone();
    let len = n.mul(&Dim::constant(s));
    let shape = vec![len.clone()];
    let p = iota(c, &len, dt, span)?;
    let half = full(c, 0.5, dt, &shape, span)?;
    let inv = full(c, 1.0 / s as f64, dt, &shape, span)?;
    let src = bin(c, BinaryOp::Add, &p, &half, span)?;
    let src = bin(c, BinaryOp::Mul, &src, &inv, span)?;
    let src = bin(c, BinaryOp::Sub, &src, &half, span)?;
    let zero = full(c, 0.0, dt, &shape, span)?;
    let src = bin(c, BinaryOp::Max, &src, &zero, span)?;
    let low = c.emit(Op::Unary(UnaryOp::Floor), &[&src], None, span)?;
    let w = bin(c, BinaryOp::Sub, &src, &low, span)?;
    let i0 = c.emit(Op::Cast, &[&low], Some(TensorType::new(DType::I64, shape.clone())), span)?;
    let one = full(c, 1.0, DType::I64, &shape, span)?;
    let n_t = size_of(c, &n, &shape, span)?;
    let last = bin(c, BinaryOp::Sub, &n_t, &one, span)?;
    let i0 = bin(c, BinaryOp::Min, &i0, &last, span)?;
    let i1 = bin(c, BinaryOp::Add, &i0, &one, span)?;
    let i1 = bin(c, BinaryOp::Min, &i1, &last, span)?;
    let (a0, a1) = (pick(c, x, &i0, axis, span)?, pick(c, x, &i1, axis, span)?);
    // The weights along `axis`, broadcast over the other axes.
    let mut wshape = vec![Dim::constant(1); x.ty.rank()];
    wshape[axis] = len;
    let w = c.reshape(&w, wshape, span)?;
    let w = c.broadcast_to(&w, &a0.ty.shape, span)?;
    let d = bin(c, BinaryOp::Sub, &a1, &a0, span)?;
    let d = bin(c, BinaryOp::Mul, &d, &w, span)?;
    bin(c, BinaryOp::Add, &a0, &d, span)
}

fn conv_transpose(c: &mut Checker, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let x = a.tensor("x")?;
    let w = a.tensor("w")?;
    let r = x.ty.rank();
    if r < 3 || w.ty.rank() != r {
        return Err(Diagnostic::error(
            format!(
                "conv_transpose needs x [B, C_in, *spatial] and w [C_in, C_out / groups, *K], found {} and {}",
                x.ty, w.ty
            ),
            span,
        ));
    }
    let n = r - 2;
    let stride = per_axis(a.ints_or("stride", None)?, n, 1, "stride", span)?;
    let padding = per_axis(a.ints_or("padding", None)?, n, 0, "padding", span)?;
    let out_pad = per_axis(a.ints_or("output_padding", None)?, n, 0, "output_padding", span)?;
    let dilation = per_axis(a.ints_or("dilation", None)?, n, 1, "dilation", span)?;
    let groups = a.int_or("groups", 1)?;
    let kernel: Option<Vec<i64>> = w.ty.shape[2..].iter().map(Dim::as_const).collect();
    let (Some(kernel), Some(c_in), Some(c_out_g)) = (kernel, w.ty.shape[0].as_const(), w.ty.shape[1].as_const()) else {
        return Err(Diagnostic::error(format!("conv_transpose needs constant weight sizes, found {}", w.ty), span));
    };
    c.check_grid_window("transposed convolution", &x.ty.shape, &kernel, span)?;
    let bad = |m: String| Err(Diagnostic::error(m, span));
    if groups < 1 || c_in % groups != 0 || x.ty.shape[1].as_const() != Some(c_in) {
        return bad(format!(
            "conv_transpose of {} with weights {} in {groups} groups: the channels do not fit",
            x.ty, w.ty
        ));
    }
    for i in 0..n {
        if stride[i] < 1 || dilation[i] < 1 || padding[i] < 0 || out_pad[i] < 0 {
            return bad(format!(
                "conv_transpose: stride and dilation must be positive, paddings non-negative (axis {i})"
            ));
        }
        if out_pad[i] >= stride[i] && out_pad[i] >= dilation[i] {
            return bad(format!(
                "conv_transpose: output_padding {} must be smaller than the stride {} or the dilation {} (axis {i})",
                out_pad[i], stride[i], dilation[i]
            ));
        }
    }
    // The input spread by the stride: `s - 1` zeros between neighbours.
    let mut y = x.clone();
    for (i, &s) in stride.iter().enumerate() {
        y = spread(c, &y, 2 + i, s, span)?;
    }
    // Weights as a convolution's: groups split, in and out swapped, the kernel flipped.
    let cin_g = c_in / groups;
    let mut wc = c.reshape(
        &w,
        [groups, cin_g, c_out_g].iter().map(|&d| Dim::constant(d)).chain(w.ty.shape[2..].iter().cloned()).collect(),
        span,
    )?;
    let mut perm: Vec<usize> = vec![0, 2, 1];
    perm.extend(3..3 + n);
    wc = permute(c, &wc, perm, span)?;
    let mut shape = vec![Dim::constant(groups * c_out_g), Dim::constant(cin_g)];
    shape.extend(w.ty.shape[2..].iter().cloned());
    wc = c.reshape(&wc, shape, span)?;
    for i in 0..n {
        wc = reverse(c, &wc, 2 + i, span)?;
    }
    // Full padding `d (k - 1)` less `padding`, plus `output_padding` at the end; where that
    // is negative the spread input is cropped instead.
    let mut pads = Vec::with_capacity(n);
    for i in 0..n {
        let full_pad = dilation[i] * (kernel[i] - 1);
        let (lo, hi) = (full_pad - padding[i], full_pad - padding[i] + out_pad[i]);
        if lo < 0 || hi < 0 {
            let size = y.ty.shape[2 + i].clone();
            let start = Dim::constant((-lo).max(0));
            let end = size.sub(&Dim::constant((-hi).max(0)));
            y = crop(c, &y, 2 + i, start, end, span)?;
        }
        pads.push((lo.max(0), hi.max(0)));
    }
    let op = Op::Conv { stride: vec![1; n], padding: pads, dilation, groups };
    c.emit(op, &[&y, &wc], None, span).map(Value::Tensor)
}

/// `x` along `axis` with `s - 1` zeros between neighbours (length `(n - 1) s + 1`).
fn spread(c: &mut Checker, x: &TVal, axis: usize, s: i64, span: Span) -> R<TVal> {
    if s == 1 {
        return Ok(x.clone());
    }
    let mut shape = x.ty.shape.clone();
    shape.insert(axis + 1, Dim::constant(1));
    let y = c.reshape(x, shape, span)?;
    let mut padding = vec![(0, 0); y.ty.rank()];
    padding[axis + 1] = (0, s - 1);
    let y = c.emit(Op::Pad { padding, value: 0.0 }, &[&y], None, span)?;
    let mut flat = x.ty.shape.clone();
    flat[axis] = x.ty.shape[axis].mul(&Dim::constant(s));
    let y = c.reshape(&y, flat, span)?;
    let end = x.ty.shape[axis].sub(&Dim::constant(1)).mul(&Dim::constant(s)).add(&Dim::constant(1));
    crop(c, &y, axis, Dim::constant(0), end, span)
}

/// `x[start:end]` along `axis`.
fn crop(c: &mut Checker, x: &TVal, axis: usize, start: Dim, end: Dim, span: Span) -> R<TVal> {
    let r = x.ty.rank();
    let mut starts = vec![Dim::constant(0); r];
    let mut ends = x.ty.shape.clone();
    let mut shape = x.ty.shape.clone();
    shape[axis] = end.sub(&start);
    starts[axis] = start;
    ends[axis] = end;
    let op = Op::Slice { start: starts, end: ends, step: vec![1; r] };
    c.emit(op, &[x], Some(TensorType::new(x.ty.dtype, shape)), span)
}

/// Pooling windows per spatial axis: size, stride, padding, the `ceil_mode` extra and
/// the dilation.
pub struct Pool {
    pub window: Vec<i64>,
    pub stride: Vec<i64>,
    pub pad: Vec<i64>,
    pub extra: Vec<i64>,
    pub dilation: Vec<i64>,
}

/// The padding `ceil_mode` adds at the end of each spatial axis (constant sizes only).
pub fn ceil_extra(x: &TVal, window: &[i64], stride: &[i64], pad: &[i64], span: Span) -> R<Vec<i64>> {
    let first = x.ty.rank() - window.len();
    let mut out = Vec::with_capacity(window.len());
    for (i, ((&k, &s), &p)) in window.iter().zip(stride).zip(pad).enumerate() {
        let Some(n) = x.ty.shape[first + i].as_const() else {
            return Err(Diagnostic::error(format!("ceil_mode needs constant spatial sizes, found {}", x.ty), span));
        };
        let span_len = n + 2 * p - k;
        if span_len < 0 || s < 1 {
            return Ok(vec![0; window.len()]); // the pool op reports the bad window
        }
        let mut windows = (span_len + s - 1) / s + 1;
        if (windows - 1) * s >= n + p {
            windows -= 1;
        }
        out.push(((windows - 1) * s + k - (n + 2 * p)).max(0));
    }
    Ok(out)
}

/// `x` with `extra[i]` elements of `value` after the end of the `i`-th of its last
/// `extra.len()` axes (none added when all are 0).
pub fn pad_end(c: &mut Checker, x: &TVal, extra: &[i64], value: f64, span: Span) -> R<TVal> {
    let after: Vec<(i64, i64)> = extra.iter().map(|&e| (0, e)).collect();
    pad_spatial(c, x, &after, value, span)
}

/// `x` with `padding[i]` elements of `value` around the `i`-th of its last
/// `padding.len()` axes.
pub fn pad_spatial(c: &mut Checker, x: &TVal, padding: &[(i64, i64)], value: f64, span: Span) -> R<TVal> {
    if padding.iter().all(|&(lo, hi)| lo == 0 && hi == 0) {
        return Ok(x.clone());
    }
    let r = x.ty.rank();
    let mut all = vec![(0, 0); r];
    all[r - padding.len()..].copy_from_slice(padding);
    c.emit(Op::Pad { padding: all, value }, &[x], None, span)
}

/// Average pooling whose divisor counts what each window covers (see the module docs):
/// the `ceil_mode` extra is explicit zeros after the input, the padding the pool's own.
/// A dilated window sums its taps (`sema::pooling`), the padding explicit zeros.
pub fn counted_avg_pool(c: &mut Checker, x: &TVal, p: &Pool, include_pad: bool, span: Span) -> R<TVal> {
    let n = p.window.len();
    let r = x.ty.rank();
    let dilated = p.dilation.iter().any(|&d| d > 1);
    let pool = |c: &mut Checker, x: &TVal, padding: Vec<(i64, i64)>| -> R<TVal> {
        if dilated {
            let x = pad_spatial(c, x, &padding, 0.0, span)?;
            return super::pooling::taps(c, &x, &p.window, &p.stride, &p.dilation, BinaryOp::Add, span);
        }
        let op = Op::Pool { op: crate::tir::PoolOp::Avg, window: p.window.clone(), stride: p.stride.clone(), padding };
        c.emit(op, &[x], None, span)
    };
    let around: Vec<(i64, i64)> = p.pad.iter().map(|&q| (q, q)).collect();
    let extended = pad_end(c, x, &p.extra, 0.0, span)?;
    let sums = pool(c, &extended, around.clone())?;
    // Ones over the spatial axes only, [1, ..., 1, *spatial].
    let mut shape = vec![Dim::constant(1); r - n];
    shape.extend(x.ty.shape[r - n..].iter().cloned());
    let ones = full(c, 1.0, x.ty.dtype, &shape, span)?;
    let counts = if include_pad {
        let padded = pad_spatial(c, &ones, &around, 1.0, span)?;
        let padded = pad_end(c, &padded, &p.extra, 0.0, span)?;
        pool(c, &padded, vec![(0, 0); n])?
    } else {
        let ones = pad_end(c, &ones, &p.extra, 0.0, span)?;
        pool(c, &ones, around)?
    };
    let counts = c.broadcast_to(&counts, &sums.ty.shape, span)?;
    bin(c, BinaryOp::Div, &sums, &counts, span)
}
