//! Scalar arithmetic inside `linalg.generic` bodies: one function per TIR elementwise
//! family, matching the reference interpreter's semantics (floor division and remainder,
//! NaN-propagating max/min, `relu(NaN) = NaN`, `sign(0) = 0`, `sign(-0) = -0`,
//! `sign(NaN) = NaN`, an accurate `log1p`).

use super::builder::Builder;
use super::types::elem;
use super::{EmitError, EmitResult};
use archc_compiler::tir::{BinaryOp, DType, UnaryOp};

fn err(what: &str, dtype: DType) -> EmitError {
    EmitError::Unsupported(format!("{what} is not defined on {dtype}"))
}

pub fn unary(b: &mut Builder, op: UnaryOp, dtype: DType, x: &str) -> EmitResult<String> {
    match dtype {
        DType::F32 | DType::F64 => Ok(float_unary(b, op, elem(dtype), x, dtype)),
        DType::I64 => int_unary(b, op, x),
        DType::Bool if op == UnaryOp::Not => {
            let t = b.scalar(1.0, DType::Bool);
            Ok(b.assign(format!("arith.xori {x}, {t} : i1")))
        }
        DType::C64 => complex_unary(b, op, x),
        DType::Bool => Err(err(archc_compiler::tir::ops::unary_name(op), dtype)),
    }
}

fn float_unary(b: &mut Builder, op: UnaryOp, t: &str, x: &str, dtype: DType) -> String {
    use UnaryOp::*;
    let simple = |name: &str| format!("{name} {x} : {t}");
    match op {
        Neg => b.assign(simple("arith.negf")),
        Exp => b.assign(simple("math.exp")),
        Log => b.assign(simple("math.log")),
        Log1p => log1p(b, x, dtype),
        Sqrt => b.assign(simple("math.sqrt")),
        Rsqrt => {
            let one = b.scalar(1.0, dtype);
            let s = b.assign(simple("math.sqrt"));
            b.assign(format!("arith.divf {one}, {s} : {t}"))
        }
        Tanh => b.assign(simple("math.tanh")),
        Sigmoid => {
            let one = b.scalar(1.0, dtype);
            let n = b.assign(simple("arith.negf"));
            let e = b.assign(format!("math.exp {n} : {t}"));
            let d = b.assign(format!("arith.addf {one}, {e} : {t}"));
            b.assign(format!("arith.divf {one}, {d} : {t}"))
        }
        Relu => {
            let zero = b.scalar(0.0, dtype);
            let keep = b.assign(format!("arith.cmpf ugt, {x}, {zero} : {t}"));
            b.assign(format!("arith.select {keep}, {x}, {zero} : {t}"))
        }
        Erf if dtype == DType::F32 => erf_f32(b, x),
        Erf => b.assign(simple("math.erf")),
        Abs => b.assign(simple("math.absf")),
        Sin => b.assign(simple("math.sin")),
        Cos => b.assign(simple("math.cos")),
        Sign => {
            let zero = b.scalar(0.0, dtype);
            let one = b.scalar(1.0, dtype);
            let m1 = b.scalar(-1.0, dtype);
            let gt = b.assign(format!("arith.cmpf ogt, {x}, {zero} : {t}"));
            let lt = b.assign(format!("arith.cmpf olt, {x}, {zero} : {t}"));
            let neg = b.assign(format!("arith.select {lt}, {m1}, {x} : {t}"));
            b.assign(format!("arith.select {gt}, {one}, {neg} : {t}"))
        }
        Floor => b.assign(simple("math.floor")),
        Not => unreachable!("rejected by the verifier on floats"),
    }
}

/// `log(1 + x)` without losing the digits of a small `x` (`math.log1p` is lowered to
/// exactly `log(1 + x)`, which is 0 for `|x|` below the epsilon): with `u = 1 + x`,
/// `log1p(x) = log(u) * (x / (u - 1))`, exact for the rounded `u` (Goldberg, "What every
/// computer scientist should know about floating-point arithmetic", theorem 4); `x` itself
/// where `u == 1`, and `log(u)` where `u` is infinite (where the quotient would be NaN).
fn log1p(b: &mut Builder, x: &str, dtype: DType) -> String {
    let t = elem(dtype);
    let one = b.scalar(1.0, dtype);
    let inf = b.scalar(f64::INFINITY, dtype);
    let u = b.assign(format!("arith.addf {x}, {one} : {t}"));
    let log = b.assign(format!("math.log {u} : {t}"));
    let um1 = b.assign(format!("arith.subf {u}, {one} : {t}"));
    let ratio = b.assign(format!("arith.divf {x}, {um1} : {t}"));
    let scaled = b.assign(format!("arith.mulf {log}, {ratio} : {t}"));
    let is_one = b.assign(format!("arith.cmpf oeq, {u}, {one} : {t}"));
    let is_inf = b.assign(format!("arith.cmpf oeq, {u}, {inf} : {t}"));
    let big = b.assign(format!("arith.select {is_inf}, {log}, {scaled} : {t}"));
    b.assign(format!("arith.select {is_one}, {x}, {big} : {t}"))
}

fn int_unary(b: &mut Builder, op: UnaryOp, x: &str) -> EmitResult<String> {
    use UnaryOp::*;
    let zero = b.i64c(0);
    Ok(match op {
        Neg => b.assign(format!("arith.subi {zero}, {x} : i64")),
        Abs => b.assign(format!("math.absi {x} : i64")),
        Sign => {
            let one = b.i64c(1);
            let m1 = b.i64c(-1);
            let gt = b.assign(format!("arith.cmpi sgt, {x}, {zero} : i64"));
            let lt = b.assign(format!("arith.cmpi slt, {x}, {zero} : i64"));
            let neg = b.assign(format!("arith.select {lt}, {m1}, {zero} : i64"));
            b.assign(format!("arith.select {gt}, {one}, {neg} : i64"))
        }
        Relu => b.assign(format!("arith.maxsi {x}, {zero} : i64")),
        Floor => x.to_string(),
        _ => return Err(err(archc_compiler::tir::ops::unary_name(op), DType::I64)),
    })
}

fn complex_unary(b: &mut Builder, op: UnaryOp, x: &str) -> EmitResult<String> {
    use UnaryOp::*;
    let t = "complex<f32>";
    let name = match op {
        Abs => return Ok(b.assign(format!("complex.abs {x} : {t}"))),
        Neg => "complex.neg",
        Exp => "complex.exp",
        Log => "complex.log",
        Sqrt => "complex.sqrt",
        Rsqrt => "complex.rsqrt",
        Sin => "complex.sin",
        Cos => "complex.cos",
        Tanh => "complex.tanh",
        _ => return Err(err(archc_compiler::tir::ops::unary_name(op), DType::C64)),
    };
    Ok(b.assign(format!("{name} {x} : {t}")))
}

/// `op(x, y)` on scalars of `dtype` (the operands' dtype; predicates give `i1`).
pub fn binary(b: &mut Builder, op: BinaryOp, dtype: DType, x: &str, y: &str) -> EmitResult<String> {
    match dtype {
        DType::F32 | DType::F64 => Ok(float_binary(b, op, dtype, x, y)),
        DType::I64 => int_binary(b, op, x, y),
        DType::Bool => bool_binary(b, op, x, y),
        DType::C64 => complex_binary(b, op, x, y),
    }
}

fn float_binary(b: &mut Builder, op: BinaryOp, dtype: DType, x: &str, y: &str) -> String {
    use BinaryOp::*;
    let t = elem(dtype);
    let two = |name: &str| format!("{name} {x}, {y} : {t}");
    let cmp = |pred: &str| format!("arith.cmpf {pred}, {x}, {y} : {t}");
    match op {
        Add => b.assign(two("arith.addf")),
        Sub => b.assign(two("arith.subf")),
        Mul => b.assign(two("arith.mulf")),
        Div => b.assign(two("arith.divf")),
        Pow => b.assign(two("math.powf")),
        Rem => {
            // fmod, then moved to the divisor's sign (floor semantics).
            let zero = b.scalar(0.0, dtype);
            let r = b.assign(two("arith.remf"));
            let nz = b.assign(format!("arith.cmpf one, {r}, {zero} : {t}"));
            let rneg = b.assign(format!("arith.cmpf olt, {r}, {zero} : {t}"));
            let yneg = b.assign(format!("arith.cmpf olt, {y}, {zero} : {t}"));
            let differ = b.assign(format!("arith.xori {rneg}, {yneg} : i1"));
            let fix = b.assign(format!("arith.andi {nz}, {differ} : i1"));
            let moved = b.assign(format!("arith.addf {r}, {y} : {t}"));
            b.assign(format!("arith.select {fix}, {moved}, {r} : {t}"))
        }
        // NaN-propagating, like the interpreter's `x.is_nan() || x >= y`.
        Max => b.assign(two("arith.maximumf")),
        Min => b.assign(two("arith.minimumf")),
        Eq => b.assign(cmp("oeq")),
        Ne => b.assign(cmp("une")),
        Lt => b.assign(cmp("olt")),
        Le => b.assign(cmp("ole")),
        Gt => b.assign(cmp("ogt")),
        Ge => b.assign(cmp("oge")),
        And | Or => {
            let zero = b.scalar(0.0, dtype);
            let xb = b.assign(format!("arith.cmpf une, {x}, {zero} : {t}"));
            let yb = b.assign(format!("arith.cmpf une, {y}, {zero} : {t}"));
            let name = if op == And { "arith.andi" } else { "arith.ori" };
            b.assign(format!("{name} {xb}, {yb} : i1"))
        }
    }
}

fn int_binary(b: &mut Builder, op: BinaryOp, x: &str, y: &str) -> EmitResult<String> {
    use BinaryOp::*;
    let two = |name: &str| format!("{name} {x}, {y} : i64");
    let cmp = |pred: &str| format!("arith.cmpi {pred}, {x}, {y} : i64");
    Ok(match op {
        Add => b.assign(two("arith.addi")),
        Sub => b.assign(two("arith.subi")),
        Mul => b.assign(two("arith.muli")),
        Div | Rem => {
            // A zero divisor is replaced by 1 rather than trapping.
            let zero = b.i64c(0);
            let one = b.i64c(1);
            let isz = b.assign(format!("arith.cmpi eq, {y}, {zero} : i64"));
            let d = b.assign(format!("arith.select {isz}, {one}, {y} : i64"));
            let q = b.assign(format!("arith.floordivsi {x}, {d} : i64"));
            if op == Div {
                q
            } else {
                let p = b.assign(format!("arith.muli {q}, {d} : i64"));
                b.assign(format!("arith.subi {x}, {p} : i64"))
            }
        }
        Pow => b.assign(two("math.ipowi")),
        Max => b.assign(two("arith.maxsi")),
        Min => b.assign(two("arith.minsi")),
        Eq => b.assign(cmp("eq")),
        Ne => b.assign(cmp("ne")),
        Lt => b.assign(cmp("slt")),
        Le => b.assign(cmp("sle")),
        Gt => b.assign(cmp("sgt")),
        Ge => b.assign(cmp("sge")),
        And | Or => {
            let zero = b.i64c(0);
            let xb = b.assign(format!("arith.cmpi ne, {x}, {zero} : i64"));
            let yb = b.assign(format!("arith.cmpi ne, {y}, {zero} : i64"));
            let name = if op == And { "arith.andi" } else { "arith.ori" };
            b.assign(format!("{name} {xb}, {yb} : i1"))
        }
    })
}

fn bool_binary(b: &mut Builder, op: BinaryOp, x: &str, y: &str) -> EmitResult<String> {
    use BinaryOp::*;
    let name = match op {
        And | Min => "arith.andi",
        Or | Max => "arith.ori",
        Ne => "arith.xori",
        Eq => return Ok(b.assign(format!("arith.cmpi eq, {x}, {y} : i1"))),
        _ => return Err(err(archc_compiler::tir::ops::binary_name(op), DType::Bool)),
    };
    Ok(b.assign(format!("{name} {x}, {y} : i1")))
}

fn complex_binary(b: &mut Builder, op: BinaryOp, x: &str, y: &str) -> EmitResult<String> {
    use BinaryOp::*;
    let t = "complex<f32>";
    let name = match op {
        Add => "complex.add",
        Sub => "complex.sub",
        Mul => "complex.mul",
        Div => "complex.div",
        Pow => "complex.pow",
        Eq => "complex.eq",
        Ne => "complex.neq",
        _ => return Err(err(archc_compiler::tir::ops::binary_name(op), DType::C64)),
    };
    Ok(b.assign(format!("{name} {x}, {y} : {t}")))
}

/// Converts a scalar between dtypes as `cast` does (float -> int truncates toward zero and
/// saturates, NaN giving 0,
/// anything -> bool is `!= 0`, complex -> real keeps the real part).
pub fn cast(b: &mut Builder, from: DType, to: DType, x: &str) -> String {
    use DType::*;
    if from == to {
        return x.to_string();
    }
    match (from, to) {
        (F32, F64) => b.assign(format!("arith.extf {x} : f32 to f64")),
        (F64, F32) => b.assign(format!("arith.truncf {x} : f64 to f32")),
        (F32 | F64, I64) => float_to_int(b, from, x),
        (I64, F32 | F64) => b.assign(format!("arith.sitofp {x} : i64 to {}", elem(to))),
        (Bool, F32 | F64) => b.assign(format!("arith.uitofp {x} : i1 to {}", elem(to))),
        (Bool, I64) => b.assign(format!("arith.extui {x} : i1 to i64")),
        (F32 | F64, Bool) => {
            let zero = b.scalar(0.0, from);
            b.assign(format!("arith.cmpf une, {x}, {zero} : {}", elem(from)))
        }
        (I64, Bool) => {
            let zero = b.i64c(0);
            b.assign(format!("arith.cmpi ne, {x}, {zero} : i64"))
        }
        (C64, _) => {
            let re = b.assign(format!("complex.re {x} : complex<f32>"));
            cast(b, F32, to, &re)
        }
        (_, C64) => {
            let re = cast(b, from, F32, x);
            let zero = b.scalar(0.0, F32);
            b.assign(format!("complex.create {re}, {zero} : complex<f32>"))
        }
        _ => unreachable!("every pair is covered above"),
    }
}

/// A float as an i64 the way Rust's `as` (and so the interpreter) converts it: toward
/// zero, saturating at the i64 range, NaN as 0 (`arith.fptosi` of those is poison).
fn float_to_int(b: &mut Builder, from: DType, x: &str) -> String {
    let t = elem(from);
    let lim = b.scalar(9.223372036854775807e18, from);
    let neg_lim = b.scalar(-9.223372036854775807e18, from);
    let v = b.assign(format!("arith.fptosi {x} : {t} to i64"));
    let (max, min, zero) = (b.i64c(i64::MAX), b.i64c(i64::MIN), b.i64c(0));
    let hi = b.assign(format!("arith.cmpf oge, {x}, {lim} : {t}"));
    let lo = b.assign(format!("arith.cmpf olt, {x}, {neg_lim} : {t}"));
    let nan = b.assign(format!("arith.cmpf uno, {x}, {x} : {t}"));
    let v = b.assign(format!("arith.select {hi}, {max}, {v} : i64"));
    let v = b.assign(format!("arith.select {lo}, {min}, {v} : i64"));
    b.assign(format!("arith.select {nan}, {zero}, {v} : i64"))
}

/// erf on f32 without a libm call per element (so loops of it vectorise): `x P(x^2) /
/// Q(x^2)` on `x` clamped to `[-4, 4]` (erf rounds to +-1 in f32 beyond), evaluated in
/// f64, where the fit is within 6.5e-8 of erf (2 ulp after rounding to f32). The
/// coefficients are the minimax fit of Eigen's `generic_fast_erf_float` (also in XLA);
/// evaluated in f32 that fit is 4e-7 off, enough to move gradients 1e-5 from the
/// interpreter's libm `erff`.
fn erf_f32(b: &mut Builder, x: &str) -> String {
    use archc_compiler::approx::{ERF_F32_P as ALPHA, ERF_F32_Q as BETA};
    let xd = b.assign(format!("arith.extf {x} : f32 to f64"));
    let hi = b.scalar(4.0, DType::F64);
    let lo = b.scalar(-4.0, DType::F64);
    let c = b.assign(format!("arith.minimumf {xd}, {hi} : f64"));
    let c = b.assign(format!("arith.maximumf {c}, {lo} : f64"));
    let x2 = b.assign(format!("arith.mulf {c}, {c} : f64"));
    let horner = |b: &mut Builder, coeffs: &[f64]| {
        let mut acc = b.scalar(coeffs[0], DType::F64);
        for &k in &coeffs[1..] {
            let m = b.assign(format!("arith.mulf {acc}, {x2} : f64"));
            let kk = b.scalar(k, DType::F64);
            acc = b.assign(format!("arith.addf {m}, {kk} : f64"));
        }
        acc
    };
    let p = horner(b, &ALPHA);
    let p = b.assign(format!("arith.mulf {p}, {c} : f64"));
    let q = horner(b, &BETA);
    let e = b.assign(format!("arith.divf {p}, {q} : f64"));
    b.assign(format!("arith.truncf {e} : f64 to f32"))
}
