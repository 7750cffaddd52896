//! Indexing ops: strided `slice`, `gather` and its adjoint `scatter_add`.
//!
//! Contract:
//! - `slice`: per axis `start`, `end` (exclusive) are clamped to `[0, size]`, `step > 0`;
//!   the result has `ceil((end - start) / step)` elements (0 when `end <= start`).
//! - `gather(x, idx, axis)`: result shape `x.shape[:axis] + idx.shape + x.shape[axis+1:]`,
//!   `result[o, p, i] = x[o, idx[p], i]`; indices are i64 in `[-size, size)`, a negative
//!   one counting from the end (`-1` is the last); others are errors.
//! - `scatter_add(x, idx, src, axis)`: `src` has the shape `gather(x, idx, axis)` would
//!   have; returns a copy of `x` with `out[o, idx[p], i] += src[o, p, i]`, added in the
//!   element type in row-major order of `src` (so it is the adjoint of `gather`).
//!   Dtypes f32, f64, i64 (wrapping), c64.

use super::bind::{eval_dim, DimEnv};
use crate::elem::Num;
use crate::tensor::{strides, view_indices, Data, Tensor};
use archc_compiler::tir::Dim;

pub fn slice(x: &Tensor, start: &[Dim], end: &[Dim], step: &[i64], dims: &DimEnv) -> Result<Tensor, String> {
    let r = x.rank();
    if start.len() != r || end.len() != r || step.len() != r {
        return Err(format!(
            "slice attributes have {}/{}/{} entries for {}",
            start.len(),
            end.len(),
            step.len(),
            x.type_string()
        ));
    }
    let st = strides(&x.shape);
    let (mut shape, mut view_strides, mut offset) = (Vec::new(), Vec::new(), 0);
    for ax in 0..r {
        if step[ax] <= 0 {
            return Err(format!("step {} on axis {ax} is not positive", step[ax]));
        }
        let size = x.shape[ax] as i64;
        let lo = eval_dim(&start[ax], dims)?.clamp(0, size);
        let hi = eval_dim(&end[ax], dims)?.clamp(0, size);
        let len = if hi > lo { (hi - lo + step[ax] - 1) / step[ax] } else { 0 };
        shape.push(len as usize);
        view_strides.push(st[ax] * step[ax] as usize);
        offset += lo as usize * st[ax];
    }
    let data = x.data.take(&view_indices(&shape, offset, &view_strides));
    Ok(Tensor { shape, data })
}

/// Flat positions in `x` read by `gather(x, idx, axis)`, checking the indices.
fn gather_positions(x_shape: &[usize], idx: &Tensor, axis: usize) -> Result<Vec<usize>, String> {
    let Data::I64(ids) = &idx.data else {
        return Err(format!("indices are {}, expected i64", idx.type_string()));
    };
    if axis >= x_shape.len() {
        return Err(format!("axis {axis} out of range for rank {}", x_shape.len()));
    }
    let size = x_shape[axis];
    let n = size as i64;
    if let Some(bad) = ids.iter().find(|&&i| i < -n || i >= n) {
        return Err(format!("index {bad} out of range [-{size}, {size}) on axis {axis}"));
    }
    let outer: usize = x_shape[..axis].iter().product();
    let inner: usize = x_shape[axis + 1..].iter().product();
    let mut pos = Vec::with_capacity(outer * ids.len() * inner);
    for o in 0..outer {
        for &i in ids {
            let i = if i < 0 { i + n } else { i };
            let base = (o * size + i as usize) * inner;
            pos.extend(base..base + inner);
        }
    }
    Ok(pos)
}

fn gather_shape(x_shape: &[usize], idx: &Tensor, axis: usize) -> Vec<usize> {
    let mut shape = x_shape[..axis].to_vec();
    shape.extend(&idx.shape);
    shape.extend(&x_shape[axis + 1..]);
    shape
}

pub fn gather(x: &Tensor, idx: &Tensor, axis: usize) -> Result<Tensor, String> {
    let pos = gather_positions(&x.shape, idx, axis)?;
    Ok(Tensor { shape: gather_shape(&x.shape, idx, axis), data: x.data.take(&pos) })
}

pub fn scatter_add(x: &Tensor, idx: &Tensor, src: &Tensor, axis: usize) -> Result<Tensor, String> {
    let pos = gather_positions(&x.shape, idx, axis)?;
    let want = gather_shape(&x.shape, idx, axis);
    if src.shape != want || src.dtype() != x.dtype() {
        return Err(format!("src is {}, expected {}", src.type_string(), crate::tensor::type_string(x.dtype(), &want)));
    }
    fn add<T: Num>(x: &[T], pos: &[usize], src: &[T]) -> Vec<T> {
        let mut out = x.to_vec();
        for (&p, &s) in pos.iter().zip(src) {
            out[p] = T::from_acc(out[p].acc() + s.acc());
        }
        out
    }
    let data = match (&x.data, &src.data) {
        (Data::F32(a), Data::F32(s)) => Data::F32(add(a, &pos, s)),
        (Data::F64(a), Data::F64(s)) => Data::F64(add(a, &pos, s)),
        (Data::I64(a), Data::I64(s)) => Data::I64(add(a, &pos, s)),
        (Data::C64(a), Data::C64(s)) => Data::C64(add(a, &pos, s)),
        _ => return Err(format!("scatter_add is not defined on {}", x.dtype())),
    };
    Ok(Tensor { shape: x.shape.clone(), data })
}
