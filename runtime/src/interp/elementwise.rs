//! Elementwise ops: `iota`, unary and binary math, comparisons and logic, `select`.
//!
//! Contract: operands of binary ops and `select` have identical shapes and (for the value
//! operands) identical dtypes; nothing broadcasts. Coverage:
//! - f32/f64: every unary op but `not` (in the type's own precision); every binary op but
//!   `and`/`or`. `max`/`min` propagate NaN; `rem` takes the divisor's sign.
//! - i64: unary `neg abs sign relu floor`; binary `add sub mul div rem pow max min` and
//!   comparisons. Arithmetic wraps; `div`/`rem` round toward negative infinity; division
//!   by zero and negative exponents are errors.
//! - bool: `not`; `and or max min` and comparisons (`false < true`).
//! - c64: unary `neg exp log sqrt rsqrt sin cos tanh`, `abs` (giving f32); binary
//!   `add sub mul div pow eq ne`.

use super::Out;
use crate::elem::{Real, C64};
use crate::tensor::{strides, Data, Tensor};
use archc_compiler::tir::ops::{binary_name, unary_name};
use archc_compiler::tir::{BinaryOp, DType, UnaryOp};

/// `0, 1, 2, ...` along `axis` of the declared result.
pub fn iota(axis: usize, out: &Out) -> Result<Tensor, String> {
    if axis >= out.shape.len() {
        return Err(format!("axis {axis} out of range for rank {}", out.shape.len()));
    }
    let (stride, size) = (strides(&out.shape)[axis], out.shape[axis]);
    let n: usize = out.shape.iter().product();
    let coords = (0..n).map(|i| ((i / stride) % size) as i64);
    let data = match out.dtype {
        DType::I64 => Data::I64(coords.collect()),
        DType::F32 => Data::F32(coords.map(|c| c as f32).collect()),
        DType::F64 => Data::F64(coords.map(|c| c as f64).collect()),
        d => return Err(format!("iota of dtype {d}")),
    };
    Ok(Tensor { shape: out.shape.clone(), data })
}

pub fn unary(op: UnaryOp, x: &Tensor) -> Result<Tensor, String> {
    let data = match &x.data {
        Data::F32(v) => Data::F32(real_unary(op, v)?),
        Data::F64(v) => Data::F64(real_unary(op, v)?),
        Data::I64(v) => Data::I64(int_unary(op, v)?),
        Data::Bool(v) if op == UnaryOp::Not => Data::Bool(v.iter().map(|b| !b).collect()),
        Data::Bool(_) => return Err(undefined(unary_name(op), DType::Bool)),
        Data::C64(v) => complex_unary(op, v)?,
    };
    Ok(Tensor { shape: x.shape.clone(), data })
}

fn undefined(name: &str, dtype: DType) -> String {
    format!("{name} is not defined on {dtype}")
}

fn real_unary<T: Real>(op: UnaryOp, v: &[T]) -> Result<Vec<T>, String> {
    use UnaryOp::*;
    let f: fn(T) -> T = match op {
        Neg => |x| x.neg(),
        Exp => T::exp,
        Log => T::ln,
        Log1p => T::ln_1p,
        Sqrt => T::sqrt,
        Rsqrt => |x| T::ONE.div(x.sqrt()),
        Tanh => T::tanh,
        Sigmoid => |x| T::ONE.div(T::ONE + x.neg().exp()),
        Relu => |x| if x > T::ZERO || x.is_nan() { x } else { T::ZERO },
        Erf => T::erf,
        Abs => T::abs,
        Sin => T::sin,
        Cos => T::cos,
        Sign => |x| {
            if x > T::ZERO {
                T::ONE
            } else if x < T::ZERO {
                T::ONE.neg()
            } else {
                x
            }
        },
        Floor => T::floor,
        Not => return Err(undefined(unary_name(op), T::DTYPE)),
    };
    Ok(v.iter().map(|&x| f(x)).collect())
}

fn int_unary(op: UnaryOp, v: &[i64]) -> Result<Vec<i64>, String> {
    use UnaryOp::*;
    let f: fn(i64) -> i64 = match op {
        Neg => i64::wrapping_neg,
        Abs => i64::wrapping_abs,
        Sign => i64::signum,
        Relu => |x| x.max(0),
        Floor => |x| x,
        _ => return Err(undefined(unary_name(op), DType::I64)),
    };
    Ok(v.iter().map(|&x| f(x)).collect())
}

fn complex_unary(op: UnaryOp, v: &[C64]) -> Result<Data, String> {
    use UnaryOp::*;
    let f: fn(C64) -> C64 = match op {
        Abs => return Ok(Data::F32(v.iter().map(|z| z.norm()).collect())),
        Neg => |z| -z,
        Exp => |z| z.exp(),
        Log => |z| z.ln(),
        Sqrt => |z| z.sqrt(),
        Rsqrt => |z| z.sqrt().inv(),
        Sin => |z| z.sin(),
        Cos => |z| z.cos(),
        Tanh => |z| z.tanh(),
        _ => return Err(undefined(unary_name(op), DType::C64)),
    };
    Ok(Data::C64(v.iter().map(|&z| f(z)).collect()))
}

/// Checks identical shapes and dtypes of two operands.
pub fn same_type(a: &Tensor, b: &Tensor) -> Result<(), String> {
    if a.shape != b.shape || a.dtype() != b.dtype() {
        return Err(format!("operands differ: {} vs {}", a.type_string(), b.type_string()));
    }
    Ok(())
}

pub fn binary(op: BinaryOp, a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    same_type(a, b)?;
    let data = match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => real_binary(op, x, y, Data::F32)?,
        (Data::F64(x), Data::F64(y)) => real_binary(op, x, y, Data::F64)?,
        (Data::I64(x), Data::I64(y)) => int_binary(op, x, y)?,
        (Data::Bool(x), Data::Bool(y)) => bool_binary(op, x, y)?,
        (Data::C64(x), Data::C64(y)) => complex_binary(op, x, y)?,
        _ => unreachable!("same_type checked the dtypes"),
    };
    Ok(Tensor { shape: a.shape.clone(), data })
}

fn zip<T: Copy, U>(a: &[T], b: &[T], f: impl Fn(T, T) -> U) -> Vec<U> {
    a.iter().zip(b).map(|(&x, &y)| f(x, y)).collect()
}

/// Comparisons of ordered types; `None` when `op` is not a comparison.
fn compare<T: Copy + PartialOrd>(op: BinaryOp, a: &[T], b: &[T]) -> Option<Vec<bool>> {
    use BinaryOp::*;
    let f: fn(&T, &T) -> bool = match op {
        Eq => |x, y| x == y,
        Ne => |x, y| x != y,
        Lt => |x, y| x < y,
        Le => |x, y| x <= y,
        Gt => |x, y| x > y,
        Ge => |x, y| x >= y,
        _ => return None,
    };
    Some(a.iter().zip(b).map(|(x, y)| f(x, y)).collect())
}

fn real_binary<T: Real>(op: BinaryOp, a: &[T], b: &[T], wrap: fn(Vec<T>) -> Data) -> Result<Data, String> {
    use BinaryOp::*;
    if let Some(v) = compare(op, a, b) {
        return Ok(Data::Bool(v));
    }
    let f: fn(T, T) -> T = match op {
        Add => |x, y| x + y,
        Sub => |x, y| x.sub(y),
        Mul => |x, y| x * y,
        Div => |x, y| x.div(y),
        Pow => |x, y| x.powf(y),
        Rem => |x, y| x.rem_floor(y),
        Max => |x, y| if x.is_nan() || x >= y { x } else { y },
        Min => |x, y| if x.is_nan() || x <= y { x } else { y },
        _ => return Err(undefined(binary_name(op), T::DTYPE)),
    };
    Ok(wrap(zip(a, b, f)))
}

fn int_binary(op: BinaryOp, a: &[i64], b: &[i64]) -> Result<Data, String> {
    use BinaryOp::*;
    if let Some(v) = compare(op, a, b) {
        return Ok(Data::Bool(v));
    }
    if matches!(op, Div | Rem) && b.contains(&0) {
        return Err("integer division by zero".into());
    }
    if op == Pow && b.iter().any(|&e| e < 0) {
        return Err("integer power with a negative exponent".into());
    }
    let f: fn(i64, i64) -> i64 = match op {
        Add => i64::wrapping_add,
        Sub => i64::wrapping_sub,
        Mul => i64::wrapping_mul,
        Div => floor_div,
        Rem => floor_rem,
        Pow => int_pow,
        Max => i64::max,
        Min => i64::min,
        _ => return Err(undefined(binary_name(op), DType::I64)),
    };
    Ok(Data::I64(zip(a, b, f)))
}

/// Division rounding toward negative infinity (wrapping for `MIN / -1`). `b != 0`.
pub fn floor_div(a: i64, b: i64) -> i64 {
    let q = a.wrapping_div(b);
    if a.wrapping_rem(b) != 0 && ((a < 0) != (b < 0)) {
        q - 1
    } else {
        q
    }
}

/// Remainder with the divisor's sign. `b != 0`.
pub fn floor_rem(a: i64, b: i64) -> i64 {
    let r = a.wrapping_rem(b);
    if r != 0 && ((r < 0) != (b < 0)) {
        r + b
    } else {
        r
    }
}

/// `a^e` wrapping, by squaring. `e >= 0`.
fn int_pow(a: i64, e: i64) -> i64 {
    let (mut base, mut e, mut acc) = (a, e as u64, 1i64);
    while e > 0 {
        if e & 1 == 1 {
            acc = acc.wrapping_mul(base);
        }
        base = base.wrapping_mul(base);
        e >>= 1;
    }
    acc
}

fn bool_binary(op: BinaryOp, a: &[bool], b: &[bool]) -> Result<Data, String> {
    use BinaryOp::*;
    if let Some(v) = compare(op, a, b) {
        return Ok(Data::Bool(v));
    }
    let f: fn(bool, bool) -> bool = match op {
        And | Min => |x, y| x && y,
        Or | Max => |x, y| x || y,
        _ => return Err(undefined(binary_name(op), DType::Bool)),
    };
    Ok(Data::Bool(zip(a, b, f)))
}

fn complex_binary(op: BinaryOp, a: &[C64], b: &[C64]) -> Result<Data, String> {
    use BinaryOp::*;
    let f: fn(C64, C64) -> C64 = match op {
        Eq => return Ok(Data::Bool(zip(a, b, |x, y| x == y))),
        Ne => return Ok(Data::Bool(zip(a, b, |x, y| x != y))),
        Add => |x, y| x + y,
        Sub => |x, y| x - y,
        Mul => |x, y| x * y,
        Div => |x, y| x / y,
        Pow => |x, y| x.powc(y),
        _ => return Err(undefined(binary_name(op), DType::C64)),
    };
    Ok(Data::C64(zip(a, b, f)))
}

/// `cond ? a : b` elementwise; `cond` is bool, all three shapes are identical.
pub fn select(cond: &Tensor, a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    same_type(a, b)?;
    let Data::Bool(c) = &cond.data else {
        return Err(format!("condition is {}, expected bool", cond.type_string()));
    };
    if cond.shape != a.shape {
        return Err(format!("condition is {}, values are {}", cond.type_string(), a.type_string()));
    }
    fn pick<T: Copy>(c: &[bool], x: &[T], y: &[T]) -> Vec<T> {
        c.iter().zip(x.iter().zip(y)).map(|(&c, (&x, &y))| if c { x } else { y }).collect()
    }
    let data = match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => Data::F32(pick(c, x, y)),
        (Data::F64(x), Data::F64(y)) => Data::F64(pick(c, x, y)),
        (Data::I64(x), Data::I64(y)) => Data::I64(pick(c, x, y)),
        (Data::Bool(x), Data::Bool(y)) => Data::Bool(pick(c, x, y)),
        (Data::C64(x), Data::C64(y)) => Data::C64(pick(c, x, y)),
        _ => unreachable!("same_type checked the dtypes"),
    };
    Ok(Tensor { shape: a.shape.clone(), data })
}
