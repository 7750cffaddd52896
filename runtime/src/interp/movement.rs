//! Data movement: `reshape`, `permute`, `broadcast`, `concat`, `pad`, plus the
//! axis-moving helpers other families use. All are dtype-agnostic and exact; they work by
//! computing flat source (or destination) positions with [`view_indices`].

use crate::tensor::{strides, view_indices, Data, Tensor};

/// Same elements under the declared shape (same element count).
pub fn reshape(x: &Tensor, shape: &[usize]) -> Result<Tensor, String> {
    x.reshape(shape).map_err(|_| format!("cannot reshape {} to {shape:?}", x.type_string()))
}

/// `result.shape[i] = x.shape[perm[i]]`.
pub fn permute(x: &Tensor, perm: &[usize]) -> Result<Tensor, String> {
    let mut seen = vec![false; x.rank()];
    for &p in perm {
        if p >= x.rank() || std::mem::replace(&mut seen[p], true) {
            return Err(format!("{perm:?} is not a permutation of the axes of {}", x.type_string()));
        }
    }
    if perm.len() != x.rank() {
        return Err(format!("{perm:?} is not a permutation of the axes of {}", x.type_string()));
    }
    Ok(permute_unchecked(x, perm))
}

/// `permute` for a known-valid permutation.
pub fn permute_unchecked(x: &Tensor, perm: &[usize]) -> Tensor {
    let st = strides(&x.shape);
    let shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    let view_strides: Vec<usize> = perm.iter().map(|&p| st[p]).collect();
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return x.clone();
    }
    let data = x.data.take(&view_indices(&shape, 0, &view_strides));
    Tensor { shape, data }
}

/// The permutation that moves `axis` to the end, keeping the other axes in order.
pub fn axis_last_perm(rank: usize, axis: usize) -> Vec<usize> {
    (0..rank).filter(|&a| a != axis).chain([axis]).collect()
}

/// The inverse of a permutation.
pub fn inverse_perm(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// Numpy broadcasting to `shape`: leading axes added, size-1 axes stretched.
pub fn broadcast(x: &Tensor, shape: &[usize]) -> Result<Tensor, String> {
    let err = || format!("cannot broadcast {} to {shape:?}", x.type_string());
    let lead = shape.len().checked_sub(x.rank()).ok_or_else(err)?;
    let st = strides(&x.shape);
    let mut view_strides = vec![0; shape.len()];
    for (i, (&d, &s)) in x.shape.iter().zip(&st).enumerate() {
        match d {
            _ if d == shape[lead + i] => view_strides[lead + i] = s,
            1 => {}
            _ => return Err(err()),
        }
    }
    let data = x.data.take(&view_indices(shape, 0, &view_strides));
    Ok(Tensor { shape: shape.to_vec(), data })
}

/// Joins operands of one dtype along `axis`; the other sizes must agree.
pub fn concat(xs: &[&Tensor], axis: usize) -> Result<Tensor, String> {
    let first = xs.first().ok_or("concat of no operands")?;
    if axis >= first.rank() {
        return Err(format!("axis {axis} out of range for {}", first.type_string()));
    }
    let mut shape = first.shape.clone();
    for x in xs {
        if !concat_compatible(x, first, axis) {
            return Err(format!("cannot concat {} with {} along axis {axis}", x.type_string(), first.type_string()));
        }
    }
    shape[axis] = xs.iter().map(|x| x.shape[axis]).sum();
    let out_strides = strides(&shape);
    let mut data = Data::full(first.dtype(), shape.iter().product(), 0.0);
    let mut start = 0;
    for x in xs {
        let dst = view_indices(&x.shape, start * out_strides[axis], &out_strides);
        data.assign(&dst, &x.data).expect("dtypes checked");
        start += x.shape[axis];
    }
    Ok(Tensor { shape, data })
}

/// Same dtype and rank, same sizes except along `axis`.
fn concat_compatible(x: &Tensor, first: &Tensor, axis: usize) -> bool {
    let sizes_agree = x.shape.iter().zip(&first.shape).enumerate().all(|(i, (a, b))| i == axis || a == b);
    x.dtype() == first.dtype() && x.rank() == first.rank() && sizes_agree
}

/// Constant padding with `(lo, hi)` (non-negative) per axis.
pub fn pad(x: &Tensor, padding: &[(i64, i64)], value: f64) -> Result<Tensor, String> {
    if padding.len() != x.rank() || padding.iter().any(|&(lo, hi)| lo < 0 || hi < 0) {
        return Err(format!("padding {padding:?} does not fit {} (one non-negative pair per axis)", x.type_string()));
    }
    let shape: Vec<usize> = x.shape.iter().zip(padding).map(|(&d, &(lo, hi))| d + (lo + hi) as usize).collect();
    let out_strides = strides(&shape);
    let offset: usize = padding.iter().zip(&out_strides).map(|(&(lo, _), &s)| lo as usize * s).sum();
    let mut data = Data::full(x.dtype(), shape.iter().product(), value);
    data.assign(&view_indices(&x.shape, offset, &out_strides), &x.data).expect("same dtype");
    Ok(Tensor { shape, data })
}
