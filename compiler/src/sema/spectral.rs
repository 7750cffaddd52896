//! Complex FFTs: `fft(z, axis = -1)` and `ifft(z, axis = -1)` on c64 (a real input is
//! taken as complex), `fft2`/`ifft2` over the last two axes, `rfft2(x)` and
//! `irfft2(z, n)` (numpy's conventions: `ifft` divides by the length, `rfft2` is `fft`
//! along axis -2 of `rfft` along -1, `irfft2` the inverse with `n` points along -1).
//!
//! A transform of length `n` (a constant) is a product with the DFT matrix
//! `W[j, k] = exp(∓2πi (jk mod n) / n)`, whose angles are computed in f64 from the exact
//! integer `jk mod n` and rounded to c64 once; the product is an `einsum` every backend
//! runs and differentiates. `O(n²)` per transformed row, which suits the short axes of
//! spectral layers.

use super::args::ArgReader;
use super::builtins::norm_axis;
use super::resample::full;
use super::value::{TVal, Value};
use super::{Checker, R};
use crate::diag::Diagnostic;
use crate::tir::{BinaryOp, DType, Dim, Op, TensorType, UnaryOp};
use archc_grammar::span::Span;

/// The builtins of this module.
pub const NAMES: &[&str] = &["fft", "ifft", "fft2", "ifft2", "rfft2", "irfft2"];

pub fn call(c: &mut Checker, name: &str, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let x = a.tensor("x")?;
    let r = x.ty.rank();
    let y = match name {
        "fft" | "ifft" => {
            let axis = norm_axis(a.int_or("axis", -1)?, r, span)?;
            let z = as_complex(c, &x, span)?;
            dft(c, &z, axis, name == "ifft", span)?
        }
        "fft2" | "ifft2" => {
            let inverse = name == "ifft2";
            last_two(&x, span)?;
            let z = as_complex(c, &x, span)?;
            let z = dft(c, &z, r - 1, inverse, span)?;
            dft(c, &z, r - 2, inverse, span)?
        }
        "rfft2" => {
            last_two(&x, span)?;
            let z = c.emit(Op::Rfft { axis: r - 1 }, &[&x], None, span)?;
            dft(c, &z, r - 2, false, span)?
        }
        _ => {
            let n = a.dim("n")?;
            last_two(&x, span)?;
            let z = dft(c, &x, r - 2, true, span)?;
            c.emit(Op::Irfft { axis: r - 1, n }, &[&z], None, span)?
        }
    };
    Ok(Value::Tensor(y))
}

fn last_two(x: &TVal, span: Span) -> R<()> {
    match x.ty.rank() {
        0 | 1 => Err(Diagnostic::error(format!("a 2-d transform needs two axes, found {}", x.ty), span)),
        _ => Ok(()),
    }
}

/// `x` as c64: real values (as f32) with a zero imaginary part, so the gradient flows
/// back to the real part.
fn as_complex(c: &mut Checker, x: &TVal, span: Span) -> R<TVal> {
    let re = match x.ty.dtype {
        DType::C64 => return Ok(x.clone()),
        DType::F32 => x.clone(),
        DType::F64 | DType::I64 => c.emit(Op::Cast, &[x], Some(x.ty.with_dtype(DType::F32)), span)?,
        other => return Err(Diagnostic::error(format!("an FFT takes numbers, found {other}"), span)),
    };
    let zero = full(c, 0.0, DType::F32, &re.ty.shape, span)?;
    c.emit(Op::Complex, &[&re, &zero], None, span)
}

/// The DFT of `z` (c64) along `axis`; the inverse divides by the length.
fn dft(c: &mut Checker, z: &TVal, axis: usize, inverse: bool, span: Span) -> R<TVal> {
    if z.ty.dtype != DType::C64 {
        return Err(Diagnostic::error(format!("a complex transform takes c64, found {}", z.ty), span));
    }
    let Some(n) = z.ty.shape[axis].as_const() else {
        return Err(Diagnostic::error(format!("an FFT along axis {axis} of {} needs a constant length", z.ty), span));
    };
    let w = table(c, n, inverse, span)?;
    let letters: Vec<char> = ('a'..='z').filter(|&l| l != 'y' && l != 'x').take(z.ty.rank()).collect();
    let mut out = letters.clone();
    out[axis] = 'y';
    let mut ins = letters.clone();
    ins[axis] = 'x';
    let spec = format!("{},xy->{}", ins.iter().collect::<String>(), out.iter().collect::<String>());
    c.emit(Op::Einsum(spec), &[z, &w], None, span)
}

/// `W[j, k] = exp(∓2πi (jk mod n) / n)` (divided by `n` for the inverse), c64 `[n, n]`.
fn table(c: &mut Checker, n: i64, inverse: bool, span: Span) -> R<TVal> {
    let sq = vec![Dim::constant(n), Dim::constant(n)];
    let iota =
        |c: &mut Checker, axis| c.emit(Op::Iota { axis }, &[], Some(TensorType::new(DType::I64, sq.clone())), span);
    let (j, k) = (iota(c, 0)?, iota(c, 1)?);
    let jk = c.emit(Op::Binary(BinaryOp::Mul), &[&j, &k], None, span)?;
    let n_t = full(c, n as f64, DType::I64, &sq, span)?;
    let m = c.emit(Op::Binary(BinaryOp::Rem), &[&jk, &n_t], None, span)?;
    let m = c.emit(Op::Cast, &[&m], Some(TensorType::new(DType::F64, sq.clone())), span)?;
    let sign = if inverse { 1.0 } else { -1.0 };
    let step = full(c, sign * std::f64::consts::TAU / n as f64, DType::F64, &sq, span)?;
    let theta = c.emit(Op::Binary(BinaryOp::Mul), &[&m, &step], None, span)?;
    let scale = full(c, if inverse { 1.0 / n as f64 } else { 1.0 }, DType::F64, &sq, span)?;
    let mut parts = Vec::new();
    for u in [UnaryOp::Cos, UnaryOp::Sin] {
        let v = c.emit(Op::Unary(u), &[&theta], None, span)?;
        let v = c.emit(Op::Binary(BinaryOp::Mul), &[&v, &scale], None, span)?;
        parts.push(c.emit(Op::Cast, &[&v], Some(TensorType::new(DType::F32, sq.clone())), span)?);
    }
    c.emit(Op::Complex, &[&parts[0], &parts[1]], None, span)
}
