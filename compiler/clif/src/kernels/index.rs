//! Native index kernels with the interpreter's semantics and refusals
//! (`runtime/src/interp/index.rs`, `reduce.rs`): `gather` (any dtype, moved as bytes),
//! `scatter_add` (f32, f64, i64 wrapping), `argmax` (f32, f64, i64, bool: the first
//! maximum, a NaN counting as the maximum). Indices are checked before anything is
//! written.

use super::Buf;
use archc_compiler::tir::DType;

/// `(outer, size, inner)` of `shape` around `axis`.
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

/// The indices, made non-negative, or the interpreter's refusal.
///
/// # Safety
/// `idx` holds live i64 elements.
unsafe fn indices(idx: &Buf, size: usize, axis: usize) -> Result<Vec<usize>, String> {
    let n = size as i64;
    unsafe { idx.slice::<i64>() }
        .iter()
        .map(|&i| match i {
            _ if i < -n || i >= n => Err(format!("index {i} out of range [-{size}, {size}) on axis {axis}")),
            _ if i < 0 => Ok((i + n) as usize),
            _ => Ok(i as usize),
        })
        .collect()
}

/// The shape `gather(x, idx, axis)` has.
fn gathered(x: &[usize], idx: &[usize], axis: usize) -> Vec<usize> {
    [&x[..axis], idx, &x[axis + 1..]].concat()
}

/// `gather(x, idx, axis)` of elements of `es` bytes.
///
/// # Safety
/// Live buffers of the given shapes.
pub(crate) unsafe fn gather(x: &Buf, idx: &Buf, out: &Buf, axis: usize, es: usize) -> Result<(), String> {
    if gathered(&x.shape, &idx.shape, axis) != out.shape {
        return Err(format!("result is {:?}, declared {:?}", gathered(&x.shape, &idx.shape, axis), out.shape));
    }
    let (outer, size, inner) = split(&x.shape, axis);
    let ids = unsafe { indices(idx, size, axis) }?;
    let row = inner * es;
    let (src, dst) = (x.ptr as *const u8, out.ptr);
    for o in 0..outer {
        for (p, &i) in ids.iter().enumerate() {
            unsafe {
                std::ptr::copy_nonoverlapping(src.add((o * size + i) * row), dst.add((o * ids.len() + p) * row), row)
            };
        }
    }
    Ok(())
}

/// Element types `scatter_add` adds (as the interpreter: f32 through f64, which rounds
/// the same as an f32 sum; i64 wrapping).
pub(crate) trait Add: Copy {
    fn add(self, o: Self) -> Self;
}

impl Add for f32 {
    fn add(self, o: f32) -> f32 {
        (self as f64 + o as f64) as f32
    }
}

impl Add for f64 {
    fn add(self, o: f64) -> f64 {
        self + o
    }
}

impl Add for i64 {
    fn add(self, o: i64) -> i64 {
        self.wrapping_add(o)
    }
}

/// `scatter_add(x, idx, src, axis)`.
///
/// # Safety
/// Live buffers of the given shapes and of element type `T`.
pub(crate) unsafe fn scatter_add<T: Add>(x: &Buf, idx: &Buf, src: &Buf, out: &Buf, axis: usize) -> Result<(), String> {
    if gathered(&x.shape, &idx.shape, axis) != src.shape || x.shape != out.shape {
        return Err(format!("src is {:?}, expected {:?}", src.shape, gathered(&x.shape, &idx.shape, axis)));
    }
    let (outer, size, inner) = split(&x.shape, axis);
    let ids = unsafe { indices(idx, size, axis) }?;
    let (xs, ss, os) = unsafe { (x.slice::<T>(), src.slice::<T>(), out.slice_mut::<T>()) };
    os.copy_from_slice(xs);
    for o in 0..outer {
        for (p, &i) in ids.iter().enumerate() {
            let (d, s) = ((o * size + i) * inner, (o * ids.len() + p) * inner);
            for j in 0..inner {
                os[d + j] = os[d + j].add(ss[s + j]);
            }
        }
    }
    Ok(())
}

/// `argmax(x, axis)` into i64 `out` (`keepdim` only changes the declared shape).
///
/// # Safety
/// Live buffers of the given shapes; `x` of `dtype`.
pub(crate) unsafe fn argmax(x: &Buf, out: &Buf, axis: usize, dtype: DType) -> Result<(), String> {
    let (outer, size, inner) = split(&x.shape, axis);
    if size == 0 {
        let t = archc_runtime::tensor::type_string(dtype, &x.shape);
        return Err(format!("argmax over zero elements (axis {axis} of {t})"));
    }
    if out.numel() != outer * inner {
        return Err(format!("result has {} elements, expected {}", out.numel(), outer * inner));
    }
    let os = unsafe { out.slice_mut::<i64>() };
    unsafe {
        match dtype {
            DType::F32 => first_max(x.slice::<f32>(), os, size, inner),
            DType::F64 => first_max(x.slice::<f64>(), os, size, inner),
            DType::I64 => first_max(x.slice::<i64>(), os, size, inner),
            DType::Bool => first_max(x.slice::<u8>(), os, size, inner),
            DType::C64 => return Err("argmax is not defined on c64".into()),
        }
    }
    Ok(())
}

/// `argsort` along `axis` (the interpreter's order: stable, NaN largest).
///
/// # Safety
/// Live buffers of the given shapes; `x` of `dtype`, `out` i64 of the same shape.
pub(crate) unsafe fn argsort(x: &Buf, out: &Buf, axis: usize, descending: bool, dtype: DType) -> Result<(), String> {
    let (outer, size, inner) = split(&x.shape, axis);
    if out.numel() != x.numel() {
        return Err(format!("result has {} elements, expected {}", out.numel(), x.numel()));
    }
    let os = unsafe { out.slice_mut::<i64>() };
    unsafe {
        match dtype {
            DType::F32 => sorted_rows(x.slice::<f32>(), os, (outer, size, inner), descending, |v| v as f64),
            DType::F64 => sorted_rows(x.slice::<f64>(), os, (outer, size, inner), descending, |v| v),
            DType::I64 => sorted_rows(x.slice::<i64>(), os, (outer, size, inner), descending, |v| v),
            _ => return Err(format!("argsort is not defined on {dtype}")),
        }
    }
    Ok(())
}

/// Keys of a sort: floats in `argsort`'s order, integers as they are.
trait SortKey: Copy {
    fn order(a: Self, b: Self) -> std::cmp::Ordering;
}

impl SortKey for f64 {
    fn order(a: f64, b: f64) -> std::cmp::Ordering {
        archc_runtime::interp::sort::sort_order(a, b)
    }
}

impl SortKey for i64 {
    fn order(a: i64, b: i64) -> std::cmp::Ordering {
        a.cmp(&b)
    }
}

fn sorted_rows<T: Copy, K: SortKey>(
    x: &[T],
    out: &mut [i64],
    (outer, size, inner): (usize, usize, usize),
    descending: bool,
    key: impl Fn(T) -> K,
) {
    let mut idx: Vec<usize> = Vec::with_capacity(size);
    for o in 0..outer {
        for j in 0..inner {
            let at = |i: usize| (o * size + i) * inner + j;
            idx.clear();
            idx.extend(0..size);
            idx.sort_by(|&a, &b| match descending {
                false => K::order(key(x[at(a)]), key(x[at(b)])),
                true => K::order(key(x[at(b)]), key(x[at(a)])),
            });
            for (k, &i) in idx.iter().enumerate() {
                out[at(k)] = i as i64;
            }
        }
    }
}

#[allow(clippy::eq_op)]
fn first_max<T: Copy + PartialOrd>(x: &[T], out: &mut [i64], size: usize, inner: usize) {
    for (r, o) in out.iter_mut().enumerate() {
        let (outer, j) = (r / inner, r % inner);
        let at = |i: usize| x[(outer * size + i) * inner + j];
        let mut best = 0;
        for i in 0..size {
            let v = at(i);
            if v != v {
                best = i;
                break;
            }
            if v > at(best) {
                best = i;
            }
        }
        *o = best as i64;
    }
}
