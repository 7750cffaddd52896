//! `argsort`: the indices that sort an axis.
//!
//! Contract: the sort is stable (equal values keep their order, in both directions);
//! NaN is larger than every number (last ascending, first descending) and NaNs equal
//! each other; `-0.0` equals `0.0`. Every backend follows the same order.

use super::movement::{axis_last_perm, inverse_perm, permute_unchecked};
use crate::tensor::{Data, Tensor};
use std::cmp::Ordering;

/// The order of `argsort`: NaN above every number, `-0.0 == 0.0`.
pub fn sort_order(a: f64, b: f64) -> Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Greater,
        (false, true) => Ordering::Less,
        (false, false) => a.partial_cmp(&b).expect("numbers compare"),
    }
}

/// The indices (i64) that sort `x` along `axis`.
pub fn argsort(x: &Tensor, axis: usize, descending: bool) -> Result<Tensor, String> {
    if axis >= x.rank() {
        return Err(format!("argsort over axis {axis} of {}", x.type_string()));
    }
    let perm = axis_last_perm(x.rank(), axis);
    let moved = permute_unchecked(x, &perm);
    let n = x.shape[axis];
    let rows = |cmp: &dyn Fn(usize, usize) -> Ordering| -> Vec<i64> {
        let count = moved.numel().checked_div(n).unwrap_or(0);
        let mut out = Vec::with_capacity(moved.numel());
        for r in 0..count {
            let mut idx: Vec<usize> = (0..n).collect();
            idx.sort_by(|&i, &j| match descending {
                false => cmp(r * n + i, r * n + j),
                true => cmp(r * n + j, r * n + i),
            });
            out.extend(idx.into_iter().map(|i| i as i64));
        }
        out
    };
    let idx = match &moved.data {
        Data::F32(v) => rows(&|i, j| sort_order(v[i] as f64, v[j] as f64)),
        Data::F64(v) => rows(&|i, j| sort_order(v[i], v[j])),
        Data::I64(v) => rows(&|i, j| v[i].cmp(&v[j])),
        _ => return Err(format!("argsort is not defined on {}", x.type_string())),
    };
    let sorted = Tensor { shape: moved.shape.clone(), data: Data::I64(idx) };
    Ok(permute_unchecked(&sorted, &inverse_perm(&perm)))
}
