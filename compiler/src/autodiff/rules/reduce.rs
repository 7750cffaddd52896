//! Reductions: the cotangent is broadcast back over the reduced axes.

use super::super::emit::{Emitter, Res, V};
use crate::tir::{BinaryOp, Dim, Op, ReduceOp};

/// `ct` reshaped to keep the reduced axes (size 1), then broadcast to `x`'s shape.
fn spread(e: &mut Emitter, axes: &[usize], keepdim: bool, x: V, ct: V) -> Res<V> {
    let xt = e.ty(x);
    let kept = if keepdim {
        ct
    } else {
        let shape: Vec<Dim> =
            (0..xt.rank()).map(|i| if axes.contains(&i) { Dim::constant(1) } else { xt.shape[i].clone() }).collect();
        e.reshape(ct, shape)?
    };
    e.broadcast(kept, &xt.shape)
}

pub fn reduce(e: &mut Emitter, op: ReduceOp, axes: &[usize], keepdim: bool, x: V, y: V, ct: V) -> Res<Option<V>> {
    let xt = e.ty(x);
    let g = match op {
        // d sum = 1 on every reduced element
        ReduceOp::Sum => spread(e, axes, keepdim, x, ct)?,
        // d mean = 1 / count
        ReduceOp::Mean => {
            let count = axes.iter().fold(Dim::constant(1), |acc, &a| acc.mul(&xt.shape[a]));
            let g = spread(e, axes, keepdim, x, ct)?;
            let n = e.dim_value(&count, xt.dtype)?;
            let nb = e.broadcast(n, &xt.shape)?;
            e.bin(BinaryOp::Div, g, nb)?
        }
        // d max = [x == max] / (number of maxima), like torch.amax
        ReduceOp::Max | ReduceOp::Min => {
            let yb = spread(e, axes, keepdim, x, y)?;
            let hit = e.bin(BinaryOp::Eq, x, yb)?;
            let one = e.fill(1.0, &xt)?;
            let zero = e.fill(0.0, &xt)?;
            let mask = e.op(Op::Select, &[hit, one, zero], None)?;
            let ties = e.op(Op::Reduce { op: ReduceOp::Sum, axes: axes.to_vec(), keepdim }, &[mask], None)?;
            let per = e.bin(BinaryOp::Div, ct, ties)?;
            let g = spread(e, axes, keepdim, x, per)?;
            e.mul(g, mask)?
        }
    };
    Ok(Some(g))
}
