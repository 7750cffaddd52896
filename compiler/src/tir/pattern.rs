//! Instruction patterns that autodiff's rules and backends' lowerings both look for, over
//! a lookup of the instruction defining a value (`def`, none for an argument).

use super::{Dim, Inst, Op, ValueId};

/// `v` as `broadcast(const c)`: `c`.
pub fn broadcast_constant<'a>(def: impl Fn(ValueId) -> Option<&'a Inst>, v: ValueId) -> Option<f64> {
    let b = def(v).filter(|d| d.op == Op::Broadcast)?;
    match def(b.args[0])?.op {
        Op::Const(c) => Some(c),
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
