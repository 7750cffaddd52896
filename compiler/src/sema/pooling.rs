//! Dilated pooling, written with strided slices (so every backend runs it and its
//! gradients are those of slicing and elementwise `max` / `add`).
//!
//! Contract: [`taps`] reads an input whose padding is already explicit. A window of
//! `k` taps with dilation `d` and stride `s` spans `d * (k - 1) + 1` positions of an
//! axis of length `n` and gives `(n - d * (k - 1) - 1) / s + 1` outputs (floor), as
//! PyTorch's `max_pool{1,2,3}d(dilation =)`; tap `j` of an axis is the slice `[j * d ::
//! s]` of that many outputs, and the taps of every axis (their product) are combined
//! elementwise: `max` for max pooling, `add` for the sums an average divides. An axis
//! shorter than its window's span is an error naming both.

use super::value::TVal;
use super::{Checker, R};
use crate::diag::Diagnostic;
use crate::tir::{BinaryOp, Dim, Op, TensorType};
use archc_grammar::span::Span;

/// The reach of a window of `k` taps `d` apart: `d * (k - 1) + 1`.
pub fn reach(k: i64, d: i64) -> i64 {
    d * (k - 1) + 1
}

/// The windows of `x`'s last `window.len()` axes (sizes, strides, dilations) combined
/// by `combine` (see the module docs).
pub fn taps(
    c: &mut Checker,
    x: &TVal,
    window: &[i64],
    stride: &[i64],
    dilation: &[i64],
    combine: BinaryOp,
    span: Span,
) -> R<TVal> {
    let n = window.len();
    let r = x.ty.rank();
    let first = r - n;
    let mut shape = x.ty.shape.clone();
    for i in 0..n {
        let span_len = reach(window[i], dilation[i]);
        let len = &x.ty.shape[first + i];
        if len.as_const().is_some_and(|l| l < span_len) || stride[i] < 1 {
            return Err(Diagnostic::error(
                format!(
                    "a pooling window of {} taps {} apart spans {span_len} positions, more than the {len} of axis {} (padding included)",
                    window[i],
                    dilation[i],
                    first + i
                ),
                span,
            ));
        }
        let out = len.sub(&Dim::constant(span_len)).floor_div(stride[i]).ok_or_else(|| {
            Diagnostic::error(format!("dilated pooling needs spatial sizes it can divide, found {}", x.ty), span)
        })?;
        shape[first + i] = out.add(&Dim::constant(1));
    }
    let count: i64 = window.iter().product();
    let mut acc: Option<TVal> = None;
    for t in 0..count {
        let mut start = vec![Dim::constant(0); r];
        let mut end = x.ty.shape.clone();
        let mut step = vec![1; r];
        let mut rest = t;
        for i in (0..n).rev() {
            let offset = (rest % window[i]) * dilation[i];
            rest /= window[i];
            let last = shape[first + i].sub(&Dim::constant(1)).mul(&Dim::constant(stride[i]));
            start[first + i] = Dim::constant(offset);
            end[first + i] = last.add(&Dim::constant(offset + 1));
            step[first + i] = stride[i];
        }
        let ty = TensorType::new(x.ty.dtype, shape.clone());
        let tap = c.emit(Op::Slice { start, end, step }, &[x], Some(ty), span)?;
        acc = Some(match acc {
            None => tap,
            Some(a) => c.emit(Op::Binary(combine), &[&a, &tap], None, span)?,
        });
    }
    acc.ok_or_else(|| Diagnostic::error("a pooling window needs at least one tap", span))
}
