//! Element traits shared by the tensor type and the interpreter kernels.
//!
//! - [`Elem`]: every element type (`f32`, `f64`, `i64`, `bool`, `Complex<f32>`) converts
//!   to every other one with the conversion rules of `cast` (see [`Elem`]'s docs).
//! - [`Real`]: the math of `f32` and `f64`, each computed in its own precision
//!   (`erf` of `f32` is the exactly-rounded-ish `f64` value rounded once, see `special`).
//! - [`Num`]: the additive/multiplicative types with a wider accumulator used by sums,
//!   matmul, einsum and conv: `f32` accumulates in `f64` and rounds once at the end;
//!   `f64` in `f64`; `i64` wraps on overflow; `Complex<f32>` accumulates in `Complex<f64>`.

use crate::special;
use archc_compiler::tir::DType;
use num_complex::Complex;
use std::num::Wrapping;
use std::ops::{Add, Mul};

/// The complex element type of `c64` tensors.
pub type C64 = Complex<f32>;

/// Conversions between element types, with the semantics of the TIR `cast` op:
/// float -> int truncates toward zero (saturating, NaN -> 0); anything -> bool is `!= 0`
/// (complex: either part non-zero); bool -> number is 0 or 1; complex -> real keeps the
/// real part; real -> complex has a zero imaginary part.
pub trait Elem: Copy + PartialEq + std::fmt::Debug + Send + Sync + 'static {
    /// The TIR dtype of tensors of this element type.
    const DTYPE: DType;
    fn to_f32(self) -> f32;
    fn to_f64(self) -> f64;
    fn to_i64(self) -> i64;
    fn to_bool(self) -> bool;
    fn to_c64(self) -> C64;
    /// The value as a complex `f64` (used by comparisons and printing).
    fn to_c128(self) -> Complex<f64>;
    /// Converts a literal `f64` (a `const`, a pad value, an init value).
    fn from_f64(v: f64) -> Self;
}

impl Elem for f32 {
    const DTYPE: DType = DType::F32;
    fn to_f32(self) -> f32 {
        self
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn to_bool(self) -> bool {
        self != 0.0
    }
    fn to_c64(self) -> C64 {
        Complex::new(self, 0.0)
    }
    fn to_c128(self) -> Complex<f64> {
        Complex::new(self as f64, 0.0)
    }
    fn from_f64(v: f64) -> Self {
        v as f32
    }
}

impl Elem for f64 {
    const DTYPE: DType = DType::F64;
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn to_f64(self) -> f64 {
        self
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn to_bool(self) -> bool {
        self != 0.0
    }
    fn to_c64(self) -> C64 {
        Complex::new(self as f32, 0.0)
    }
    fn to_c128(self) -> Complex<f64> {
        Complex::new(self, 0.0)
    }
    fn from_f64(v: f64) -> Self {
        v
    }
}

impl Elem for i64 {
    const DTYPE: DType = DType::I64;
    fn to_f32(self) -> f32 {
        self as f32
    }
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn to_i64(self) -> i64 {
        self
    }
    fn to_bool(self) -> bool {
        self != 0
    }
    fn to_c64(self) -> C64 {
        Complex::new(self as f32, 0.0)
    }
    fn to_c128(self) -> Complex<f64> {
        Complex::new(self as f64, 0.0)
    }
    fn from_f64(v: f64) -> Self {
        v as i64
    }
}

impl Elem for bool {
    const DTYPE: DType = DType::Bool;
    fn to_f32(self) -> f32 {
        self as u8 as f32
    }
    fn to_f64(self) -> f64 {
        self as u8 as f64
    }
    fn to_i64(self) -> i64 {
        self as i64
    }
    fn to_bool(self) -> bool {
        self
    }
    fn to_c64(self) -> C64 {
        Complex::new(self as u8 as f32, 0.0)
    }
    fn to_c128(self) -> Complex<f64> {
        Complex::new(self as u8 as f64, 0.0)
    }
    fn from_f64(v: f64) -> Self {
        v != 0.0
    }
}

impl Elem for C64 {
    const DTYPE: DType = DType::C64;
    fn to_f32(self) -> f32 {
        self.re
    }
    fn to_f64(self) -> f64 {
        self.re as f64
    }
    fn to_i64(self) -> i64 {
        self.re as i64
    }
    fn to_bool(self) -> bool {
        self.re != 0.0 || self.im != 0.0
    }
    fn to_c64(self) -> C64 {
        self
    }
    fn to_c128(self) -> Complex<f64> {
        Complex::new(self.re as f64, self.im as f64)
    }
    fn from_f64(v: f64) -> Self {
        Complex::new(v as f32, 0.0)
    }
}

/// Real floating-point math, in the type's own precision.
pub trait Real: Elem + PartialOrd + Add<Output = Self> + Mul<Output = Self> {
    const ZERO: Self;
    const ONE: Self;
    const NEG_INFINITY: Self;
    fn neg(self) -> Self;
    fn sub(self, o: Self) -> Self;
    fn div(self, o: Self) -> Self;
    fn exp(self) -> Self;
    fn ln(self) -> Self;
    fn ln_1p(self) -> Self;
    fn sqrt(self) -> Self;
    fn tanh(self) -> Self;
    fn sin(self) -> Self;
    fn cos(self) -> Self;
    fn abs(self) -> Self;
    fn floor(self) -> Self;
    fn erf(self) -> Self;
    fn powf(self, e: Self) -> Self;
    /// `self % o` with the sign of `o` (floor semantics, like Python and `torch.remainder`).
    fn rem_floor(self, o: Self) -> Self;
    fn is_nan(self) -> bool;
}

macro_rules! impl_real {
    ($t:ty, $erf:expr) => {
        impl Real for $t {
            const ZERO: Self = 0.0;
            const ONE: Self = 1.0;
            const NEG_INFINITY: Self = <$t>::NEG_INFINITY;
            fn neg(self) -> Self {
                -self
            }
            fn sub(self, o: Self) -> Self {
                self - o
            }
            fn div(self, o: Self) -> Self {
                self / o
            }
            fn exp(self) -> Self {
                <$t>::exp(self)
            }
            fn ln(self) -> Self {
                <$t>::ln(self)
            }
            fn ln_1p(self) -> Self {
                <$t>::ln_1p(self)
            }
            fn sqrt(self) -> Self {
                <$t>::sqrt(self)
            }
            fn tanh(self) -> Self {
                <$t>::tanh(self)
            }
            fn sin(self) -> Self {
                <$t>::sin(self)
            }
            fn cos(self) -> Self {
                <$t>::cos(self)
            }
            fn abs(self) -> Self {
                <$t>::abs(self)
            }
            fn floor(self) -> Self {
                <$t>::floor(self)
            }
            fn erf(self) -> Self {
                $erf(self)
            }
            fn powf(self, e: Self) -> Self {
                <$t>::powf(self, e)
            }
            fn rem_floor(self, o: Self) -> Self {
                let r = self % o;
                if r != 0.0 && ((r < 0.0) != (o < 0.0)) {
                    r + o
                } else {
                    r
                }
            }
            fn is_nan(self) -> bool {
                <$t>::is_nan(self)
            }
        }
    };
}

impl_real!(f32, |x: f32| special::erf(x as f64) as f32);
impl_real!(f64, special::erf);

/// Types that sums, products and contractions accumulate in a wider type.
pub trait Num: Elem {
    type Acc: Copy + Add<Output = Self::Acc> + Mul<Output = Self::Acc>;
    fn zero() -> Self::Acc;
    fn acc(self) -> Self::Acc;
    fn from_acc(a: Self::Acc) -> Self;
}

impl Num for f32 {
    type Acc = f64;
    fn zero() -> f64 {
        0.0
    }
    fn acc(self) -> f64 {
        self as f64
    }
    fn from_acc(a: f64) -> f32 {
        a as f32
    }
}

impl Num for f64 {
    type Acc = f64;
    fn zero() -> f64 {
        0.0
    }
    fn acc(self) -> f64 {
        self
    }
    fn from_acc(a: f64) -> f64 {
        a
    }
}

impl Num for i64 {
    type Acc = Wrapping<i64>;
    fn zero() -> Wrapping<i64> {
        Wrapping(0)
    }
    fn acc(self) -> Wrapping<i64> {
        Wrapping(self)
    }
    fn from_acc(a: Wrapping<i64>) -> i64 {
        a.0
    }
}

impl Num for C64 {
    type Acc = Complex<f64>;
    fn zero() -> Complex<f64> {
        Complex::new(0.0, 0.0)
    }
    fn acc(self) -> Complex<f64> {
        self.to_c128()
    }
    fn from_acc(a: Complex<f64>) -> C64 {
        Complex::new(a.re as f32, a.im as f32)
    }
}
