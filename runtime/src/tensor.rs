//! Dense tensors: a shape and row-major contiguous data of one of the five TIR dtypes.
//!
//! Invariant: `data.len() == shape.iter().product()` (a rank-0 tensor has one element).
//! [`Tensor::new`] checks it; the `from_*` constructors panic when it is broken (they are
//! meant for literals in code and tests). Comparison helpers ([`Tensor::compare`],
//! [`Tensor::allclose`], [`Tensor::check_close`]) measure the largest absolute and relative
//! element error, treating NaNs at the same position as equal.

use crate::elem::{Elem, C64};
use archc_compiler::tir::DType;
use num_complex::Complex;
use std::fmt;

/// The elements of a tensor, row-major.
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
    I64(Vec<i64>),
    Bool(Vec<bool>),
    C64(Vec<C64>),
}

/// A dense tensor. See the module docs for the invariant.
#[derive(Clone, Debug, PartialEq)]
pub struct Tensor {
    pub shape: Vec<usize>,
    pub data: Data,
}

/// A tensor whose shape and data disagree, or an impossible reshape.
#[derive(Clone, Debug, PartialEq)]
pub struct TensorError(pub String);

impl fmt::Display for TensorError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for TensorError {}

/// Evaluates `$body` with `$v` bound to the vector inside `$data`, whatever its variant.
macro_rules! with_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            $crate::tensor::Data::F32($v) => $body,
            $crate::tensor::Data::F64($v) => $body,
            $crate::tensor::Data::I64($v) => $body,
            $crate::tensor::Data::Bool($v) => $body,
            $crate::tensor::Data::C64($v) => $body,
        }
    };
}

/// Like `with_data!`, wrapping the resulting vector back into the same variant.
macro_rules! map_data {
    ($data:expr, $v:ident => $body:expr) => {
        match $data {
            $crate::tensor::Data::F32($v) => $crate::tensor::Data::F32($body),
            $crate::tensor::Data::F64($v) => $crate::tensor::Data::F64($body),
            $crate::tensor::Data::I64($v) => $crate::tensor::Data::I64($body),
            $crate::tensor::Data::Bool($v) => $crate::tensor::Data::Bool($body),
            $crate::tensor::Data::C64($v) => $crate::tensor::Data::C64($body),
        }
    };
}

impl Data {
    pub fn dtype(&self) -> DType {
        match self {
            Data::F32(_) => DType::F32,
            Data::F64(_) => DType::F64,
            Data::I64(_) => DType::I64,
            Data::Bool(_) => DType::Bool,
            Data::C64(_) => DType::C64,
        }
    }

    pub fn len(&self) -> usize {
        with_data!(self, v => v.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// `n` copies of `value` (converted as by `cast`) of the given dtype.
    pub fn full(dtype: DType, n: usize, value: f64) -> Data {
        match dtype {
            DType::F32 => Data::F32(vec![f32::from_f64(value); n]),
            DType::F64 => Data::F64(vec![value; n]),
            DType::I64 => Data::I64(vec![i64::from_f64(value); n]),
            DType::Bool => Data::Bool(vec![bool::from_f64(value); n]),
            DType::C64 => Data::C64(vec![C64::from_f64(value); n]),
        }
    }

    /// Converts every element to `dtype` (see [`Elem`] for the rules).
    pub fn cast(&self, dtype: DType) -> Data {
        match dtype {
            DType::F32 => Data::F32(with_data!(self, v => v.iter().map(|x| x.to_f32()).collect())),
            DType::F64 => Data::F64(with_data!(self, v => v.iter().map(|x| x.to_f64()).collect())),
            DType::I64 => Data::I64(with_data!(self, v => v.iter().map(|x| x.to_i64()).collect())),
            DType::Bool => Data::Bool(with_data!(self, v => v.iter().map(|x| x.to_bool()).collect())),
            DType::C64 => Data::C64(with_data!(self, v => v.iter().map(|x| x.to_c64()).collect())),
        }
    }

    /// The elements at flat positions `idx`, in that order. Panics if one is out of range.
    pub fn take(&self, idx: &[usize]) -> Data {
        map_data!(self, v => idx.iter().map(|&i| v[i]).collect())
    }

    /// The elements `range`, contiguous.
    pub fn slice(&self, range: std::ops::Range<usize>) -> Data {
        map_data!(self, v => v[range].to_vec())
    }

    /// Writes `src[k]` to position `idx[k]`. `None` when the dtypes differ.
    pub fn assign(&mut self, idx: &[usize], src: &Data) -> Option<()> {
        fn put<T: Copy>(dst: &mut [T], idx: &[usize], src: &[T]) {
            for (&i, &x) in idx.iter().zip(src) {
                dst[i] = x;
            }
        }
        match (self, src) {
            (Data::F32(d), Data::F32(s)) => put(d, idx, s),
            (Data::F64(d), Data::F64(s)) => put(d, idx, s),
            (Data::I64(d), Data::I64(s)) => put(d, idx, s),
            (Data::Bool(d), Data::Bool(s)) => put(d, idx, s),
            (Data::C64(d), Data::C64(s)) => put(d, idx, s),
            _ => return None,
        }
        Some(())
    }

    /// Element `i` as a complex `f64` (for comparisons and printing).
    pub fn get_c128(&self, i: usize) -> Complex<f64> {
        with_data!(self, v => v[i].to_c128())
    }
}

/// Row-major strides (in elements) of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1];
    }
    s
}

/// Flat positions of a strided view: for every index `i` of `shape` in row-major order,
/// `offset + sum(i[k] * strides[k])`. The workhorse of permute, broadcast, slice, pad, concat.
pub fn view_indices(shape: &[usize], offset: usize, strides: &[usize]) -> Vec<usize> {
    let n: usize = shape.iter().product();
    let mut out = Vec::with_capacity(n);
    let Some((&inner, outer)) = shape.split_last() else {
        out.push(offset);
        return out;
    };
    if n == 0 {
        return out;
    }
    // Runs along the last axis; an odometer over the others.
    let step = strides[outer.len()];
    let mut idx = vec![0usize; outer.len()];
    let mut off = offset;
    loop {
        out.extend((0..inner).map(|i| off + i * step));
        let mut ax = outer.len();
        loop {
            if ax == 0 {
                return out;
            }
            ax -= 1;
            idx[ax] += 1;
            off += strides[ax];
            if idx[ax] < outer[ax] {
                break;
            }
            off -= strides[ax] * outer[ax];
            idx[ax] = 0;
        }
    }
}

/// `f32[2, 3]`-style text of a dtype and a concrete shape.
pub fn type_string(dtype: DType, shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("{dtype}[{}]", dims.join(", "))
}

macro_rules! constructors {
    ($($name:ident, $scalar:ident, $t:ty, $variant:ident;)*) => {$(
        /// A tensor from row-major values. Panics if `values.len()` is not the shape's product.
        pub fn $name(shape: &[usize], values: Vec<$t>) -> Tensor {
            Tensor::new(shape.to_vec(), Data::$variant(values)).unwrap_or_else(|e| panic!("{e}"))
        }

        /// A rank-0 tensor.
        pub fn $scalar(value: $t) -> Tensor {
            Tensor { shape: Vec::new(), data: Data::$variant(vec![value]) }
        }
    )*};
}

impl Tensor {
    /// Checks that the data length is the shape's product.
    pub fn new(shape: Vec<usize>, data: Data) -> Result<Tensor, TensorError> {
        let n: usize = shape.iter().product();
        if data.len() != n {
            return Err(TensorError(format!(
                "{} needs {n} elements, got {}",
                type_string(data.dtype(), &shape),
                data.len()
            )));
        }
        Ok(Tensor { shape, data })
    }

    constructors! {
        from_f32, scalar_f32, f32, F32;
        from_f64, scalar_f64, f64, F64;
        from_i64, scalar_i64, i64, I64;
        from_bool, scalar_bool, bool, Bool;
        from_c64, scalar_c64, C64, C64;
    }

    /// All elements equal to `value`, converted to `dtype` as by `cast`.
    pub fn full(dtype: DType, shape: &[usize], value: f64) -> Tensor {
        let n = shape.iter().product();
        Tensor { shape: shape.to_vec(), data: Data::full(dtype, n, value) }
    }

    pub fn zeros(dtype: DType, shape: &[usize]) -> Tensor {
        Tensor::full(dtype, shape, 0.0)
    }

    pub fn ones(dtype: DType, shape: &[usize]) -> Tensor {
        Tensor::full(dtype, shape, 1.0)
    }

    pub fn dtype(&self) -> DType {
        self.data.dtype()
    }

    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    pub fn rank(&self) -> usize {
        self.shape.len()
    }

    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// `f32[2, 3]`.
    pub fn type_string(&self) -> String {
        type_string(self.dtype(), &self.shape)
    }

    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            Data::F32(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_f64(&self) -> Option<&[f64]> {
        match &self.data {
            Data::F64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            Data::I64(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_bool(&self) -> Option<&[bool]> {
        match &self.data {
            Data::Bool(v) => Some(v),
            _ => None,
        }
    }

    pub fn as_c64(&self) -> Option<&[C64]> {
        match &self.data {
            Data::C64(v) => Some(v),
            _ => None,
        }
    }

    /// The elements as `f64` (bool as 0/1). `None` for complex tensors.
    pub fn to_f64_vec(&self) -> Option<Vec<f64>> {
        match &self.data {
            Data::C64(_) => None,
            d => Some(with_data!(d, v => v.iter().map(|x| x.to_f64()).collect())),
        }
    }

    /// A converted copy (see [`Elem`] for the rules).
    pub fn cast(&self, dtype: DType) -> Tensor {
        Tensor { shape: self.shape.clone(), data: self.data.cast(dtype) }
    }

    /// The same elements under another shape of the same element count.
    pub fn reshape(&self, shape: &[usize]) -> Result<Tensor, TensorError> {
        Tensor::new(shape.to_vec(), self.data.clone())
    }

    /// Measures the element errors against `expected` (same shape required; dtypes may
    /// differ, values are compared as complex `f64`).
    pub fn compare(&self, expected: &Tensor) -> Result<Diff, TensorError> {
        if self.shape != expected.shape {
            return Err(TensorError(format!(
                "shape mismatch: {} vs expected {}",
                self.type_string(),
                expected.type_string()
            )));
        }
        let mut diff = Diff::default();
        for i in 0..self.numel() {
            let (a, b) = (self.data.get_c128(i), expected.data.get_c128(i));
            let (abs, rel) = element_error(a, b);
            if abs > diff.max_abs || abs.is_nan() {
                diff.max_abs = abs;
                diff.worst = i;
            }
            diff.max_rel = diff.max_rel.max(rel);
        }
        Ok(diff)
    }

    /// numpy's `allclose`: same dtype and shape, and `|a - b| <= atol + rtol * |b|` for
    /// every element (NaNs at the same position count as equal).
    pub fn allclose(&self, expected: &Tensor, rtol: f64, atol: f64) -> bool {
        self.check_close(expected, rtol, atol).is_ok()
    }

    /// Like [`Tensor::allclose`], with a message naming the worst element on failure.
    pub fn check_close(&self, expected: &Tensor, rtol: f64, atol: f64) -> Result<(), TensorError> {
        if self.dtype() != expected.dtype() {
            return Err(TensorError(format!(
                "dtype mismatch: {} vs expected {}",
                self.type_string(),
                expected.type_string()
            )));
        }
        self.compare(expected)?;
        for i in 0..self.numel() {
            let (a, b) = (self.data.get_c128(i), expected.data.get_c128(i));
            let (abs, _) = element_error(a, b);
            if abs != 0.0 && !(abs.is_finite() && abs <= atol + rtol * b.norm()) {
                return Err(TensorError(format!(
                    "element {i} (index {:?}): got {}, expected {} (abs err {abs:e}, rtol {rtol:e}, atol {atol:e})",
                    unravel(i, &self.shape),
                    fmt_c128(a),
                    fmt_c128(b)
                )));
            }
        }
        Ok(())
    }
}

/// The largest element errors between two tensors (see [`Tensor::compare`]).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Diff {
    /// `max |a - b|`.
    pub max_abs: f64,
    /// `max |a - b| / |b|` (infinite where `b == 0 != a`).
    pub max_rel: f64,
    /// Flat index of the element with the largest absolute error.
    pub worst: usize,
}

/// `(|a - b|, |a - b| / |b|)`; zero for equal values, equal infinities and NaN pairs.
fn element_error(a: Complex<f64>, b: Complex<f64>) -> (f64, f64) {
    let both_nan = (a.re.is_nan() || a.im.is_nan()) && (b.re.is_nan() || b.im.is_nan());
    if a == b || both_nan {
        return (0.0, 0.0);
    }
    let abs = (a - b).norm();
    let abs = if abs.is_nan() { f64::INFINITY } else { abs };
    let rel = if b.norm() == 0.0 { f64::INFINITY } else { abs / b.norm() };
    (abs, rel)
}

/// Multi-index of flat position `i`.
pub fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for ax in (0..shape.len()).rev() {
        if shape[ax] > 0 {
            idx[ax] = i % shape[ax];
            i /= shape[ax];
        }
    }
    idx
}

fn fmt_c128(z: Complex<f64>) -> String {
    if z.im == 0.0 {
        format!("{}", z.re)
    } else {
        format!("{}{:+}i", z.re, z.im)
    }
}

impl fmt::Display for Tensor {
    /// `f32[2, 2] [1, 2, 3, 4]`, eliding the middle of tensors over 16 elements.
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let n = self.numel();
        let show = |i: usize| fmt_c128(self.data.get_c128(i));
        let items: Vec<String> = if n <= 16 {
            (0..n).map(show).collect()
        } else {
            let mut v: Vec<String> = (0..8).map(show).collect();
            v.push("...".into());
            v.extend((n - 8..n).map(show));
            v
        };
        let items = match &self.data {
            Data::Bool(b) if n <= 16 => b.iter().map(|x| x.to_string()).collect(),
            _ => items,
        };
        write!(f, "{} [{}]", self.type_string(), items.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strides_and_views() {
        assert_eq!(strides(&[2, 3, 4]), vec![12, 4, 1]);
        assert_eq!(strides(&[]), Vec::<usize>::new());
        // Transpose of a [2, 3] matrix: view [3, 2] with strides [1, 3].
        assert_eq!(view_indices(&[3, 2], 0, &[1, 3]), vec![0, 3, 1, 4, 2, 5]);
        assert_eq!(view_indices(&[], 7, &[]), vec![7]);
        assert_eq!(view_indices(&[0, 3], 0, &[3, 1]), Vec::<usize>::new());
        assert_eq!(view_indices(&[3, 0], 0, &[1, 3]), Vec::<usize>::new());
    }

    #[test]
    fn views_match_the_definition() {
        let cases: [(&[usize], usize, &[usize]); 5] = [
            (&[2, 3, 4], 5, &[1, 10, 2]),
            (&[4, 1, 3], 0, &[3, 7, 0]),
            (&[1, 1, 1], 9, &[4, 5, 6]),
            (&[5], 2, &[3]),
            (&[2, 2, 2, 2], 1, &[8, 0, 2, 1]),
        ];
        for (shape, offset, st) in cases {
            let n: usize = shape.iter().product();
            let want: Vec<usize> = (0..n)
                .map(|flat| unravel(flat, shape).iter().zip(st).map(|(i, s)| i * s).sum::<usize>() + offset)
                .collect();
            assert_eq!(view_indices(shape, offset, st), want, "{shape:?} {st:?}");
        }
    }

    #[test]
    fn constructors_check_lengths() {
        assert!(Tensor::new(vec![2, 2], Data::F32(vec![1.0; 3])).is_err());
        let t = Tensor::from_i64(&[2], vec![1, 2]);
        assert_eq!(t.dtype(), DType::I64);
        assert_eq!(Tensor::scalar_f32(1.5).numel(), 1);
        assert_eq!(t.to_string(), "i64[2] [1, 2]");
    }

    #[test]
    fn casts_follow_cast_rules() {
        let t = Tensor::from_f32(&[4], vec![-1.7, 0.0, 2.9, f32::NAN]);
        assert_eq!(t.cast(DType::I64).as_i64().unwrap(), &[-1, 0, 2, 0]);
        assert_eq!(t.cast(DType::Bool).as_bool().unwrap(), &[true, false, true, true]);
        let c = t.cast(DType::C64);
        assert_eq!(c.as_c64().unwrap()[2], Complex::new(2.9f32, 0.0));
        assert_eq!(Tensor::from_bool(&[2], vec![true, false]).cast(DType::F64).as_f64().unwrap(), &[1.0, 0.0]);
    }

    #[test]
    fn comparison_reports_errors() {
        let a = Tensor::from_f32(&[3], vec![1.0, 2.0, f32::NAN]);
        let b = Tensor::from_f32(&[3], vec![1.0, 2.1, f32::NAN]);
        let d = a.compare(&b).unwrap();
        assert!((d.max_abs - 0.1).abs() < 1e-6 && d.worst == 1);
        assert!(a.allclose(&b, 0.0, 0.2));
        assert!(!a.allclose(&b, 0.0, 0.01));
        assert!(a.check_close(&b, 0.0, 0.01).unwrap_err().0.contains("element 1"));
        assert!(!a.allclose(&a.cast(DType::F64), 0.0, 1.0));
    }
}
