//! Instruction patterns that autodiff's rules and backends' lowerings both look for, over
//! a lookup of the instruction defining a value (`def`, none for an argument).

use super::{BinaryOp, DType, Dim, Inst, Op, UnaryOp, ValueId};

/// `v` as `broadcast(const c)`: `c`.
pub fn broadcast_constant<'a>(def: impl Fn(ValueId) -> Option<&'a Inst>, v: ValueId) -> Option<f64> {
    let b = def(v).filter(|d| d.op == Op::Broadcast)?;
    match def(b.args[0])?.op {
        Op::Const(c) => Some(c),
        _ => None,
    }
}

/// The smallest and largest value of an integer tensor `v` computed only from constants
/// and `iota` over axes of known size (`size(axis)`), through broadcasts, reshapes,
/// negation, `+`, `-`, `*`, `max` and `min`, all `i64`: how autodiff spells index tensors (a
/// convolution's flipped window, `k - 1 - iota`). `None` for anything else (an argument,
/// a data-dependent value, an overflow). A gather whose indices lie in range needs no
/// run-time check.
pub fn int_range<'a>(
    def: impl Fn(ValueId) -> Option<&'a Inst> + Copy,
    size: impl Fn(&Inst, usize) -> Option<i64> + Copy,
    v: ValueId,
) -> Option<(i64, i64)> {
    let d = def(v).filter(|d| d.ty.dtype == DType::I64)?;
    let arg = |i: usize| int_range(def, size, d.args[i]);
    match &d.op {
        Op::Const(c) if c.fract() == 0.0 && c.abs() < 9.0e15 => Some((*c as i64, *c as i64)),
        Op::Iota { axis } => {
            let n = size(d, *axis)?;
            (n > 0).then_some((0, n - 1))
        }
        Op::Broadcast | Op::Reshape => arg(0),
        Op::Unary(UnaryOp::Neg) => arg(0).and_then(|(lo, hi)| Some((hi.checked_neg()?, lo.checked_neg()?))),
        Op::Binary(b) => {
            let ((a0, a1), (b0, b1)) = (arg(0)?, arg(1)?);
            match b {
                BinaryOp::Add => Some((a0.checked_add(b0)?, a1.checked_add(b1)?)),
                BinaryOp::Sub => Some((a0.checked_sub(b1)?, a1.checked_sub(b0)?)),
                BinaryOp::Max => Some((a0.max(b0), a1.max(b1))),
                BinaryOp::Min => Some((a0.min(b0), a1.min(b1))),
                BinaryOp::Mul => {
                    let p = [a0.checked_mul(b0)?, a0.checked_mul(b1)?, a1.checked_mul(b0)?, a1.checked_mul(b1)?];
                    Some((*p.iter().min()?, *p.iter().max()?))
                }
                _ => None,
            }
        }
        _ => None,
    }
}

/// `v` as `head` followed by zeros along `axis` (`concat(head, broadcast(const 0))`, or a
/// zero `pad` after the end of `axis` only): `head`.
pub fn zero_padded<'a>(def: impl Fn(ValueId) -> Option<&'a Inst> + Copy, v: ValueId, axis: usize) -> Option<ValueId> {
    let d = def(v)?;
    match &d.op {
        Op::Concat { axis: a } if *a == axis && d.args.len() == 2 => {
            (broadcast_constant(def, d.args[1]) == Some(0.0)).then_some(d.args[0])
        }
        Op::Pad { padding, value } if *value == 0.0 => {
            let after_axis_only = padding.iter().enumerate().all(|(i, &(lo, hi))| lo == 0 && (i == axis || hi == 0));
            after_axis_only.then_some(d.args[0])
        }
        _ => None,
    }
}

/// Whether a convolution is pointwise: a window of one (`window`: the weight's spatial
/// sizes), unit stride, no padding, one group.
pub fn pointwise_conv(stride: &[i64], padding: &[(i64, i64)], groups: i64, window: &[Dim]) -> bool {
    groups == 1
        && stride.iter().all(|&s| s == 1)
        && padding.iter().all(|&p| p == (0, 0))
        && window.iter().all(|d| d.as_const() == Some(1))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tir::testutil::{ty, FuncBuilder};
    use std::collections::HashMap;

    /// `k - 1 - iota(k)` (a flipped window) lies in `[0, k - 1]`; a data-dependent index,
    /// a float and an overflow have no range.
    #[test]
    fn int_range_follows_iota_and_constants() {
        let mut f = FuncBuilder::new("f");
        let data = f.arg("i64[3]", "i");
        let iota = f.raw(Op::Iota { axis: 0 }, &[], ty("i64[3]"));
        let two = f.raw(Op::Const(2.0), &[], ty("i64[]"));
        let two3 = f.raw(Op::Broadcast, &[two], ty("i64[3]"));
        let flip = f.raw(Op::Binary(BinaryOp::Sub), &[two3, iota], ty("i64[3]"));
        let neg = f.raw(Op::Unary(UnaryOp::Neg), &[flip], ty("i64[3]"));
        let mixed = f.raw(Op::Binary(BinaryOp::Add), &[flip, data], ty("i64[3]"));
        let big = f.raw(Op::Const(4.0e18), &[], ty("i64[]"));
        let big3 = f.raw(Op::Broadcast, &[big], ty("i64[3]"));
        let over = f.raw(Op::Binary(BinaryOp::Mul), &[big3, two3], ty("i64[3]"));
        let fl = f.raw(Op::Iota { axis: 0 }, &[], ty("f32[3]"));
        let func = f.finish(&[(neg, "y")]);
        let def: HashMap<ValueId, &Inst> = func.body.iter().map(|i| (i.result, i)).collect();
        let size = |i: &Inst, a: usize| i.ty.shape[a].as_const();
        let range = |v| int_range(|x| def.get(&x).copied(), size, v);
        assert_eq!(range(flip), Some((0, 2)));
        assert_eq!(range(neg), Some((-2, 0)));
        assert_eq!(range(mixed), None);
        assert_eq!(range(over), None);
        assert_eq!(range(fl), None);
    }
}
