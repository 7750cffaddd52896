//! Complex FFTs: `fft(z, axis = -1)` and `ifft(z, axis = -1)` on c64 (a real input is
//! taken as complex), `fft2`/`ifft2` over the last two axes, `rfft2(x)` and
//! `irfft2(z, n)` (numpy's conventions: `ifft` divides by the length, `rfft2` is `fft`
//! along axis -2 of `rfft` along -1, `irfft2` the inverse with `n` points along -1).
//!
//! A transform of length `n` is a product with the DFT matrix
//! `W[j, k] = exp(∓2πi (jk mod n) / n)`, whose angles are computed in f64 from the exact
//! integer `jk mod n` and rounded to c64 once (a symbolic `n`, e.g. a grid axis, is
//! counted when the program runs and the matrix built then); the product is an `einsum` every backend
//! runs and differentiates. `O(n²)` per transformed row, which suits the short axes of
//! spectral layers.

use super::args::ArgReader;
use super::builtins::norm_axis;
use super::resample::{full, size_of};
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
    let n = z.ty.shape[axis].clone();
    let w = table(c, &n, inverse, span)?;
    let letters: Vec<char> = ('a'..='z').filter(|&l| l != 'y' && l != 'x').take(z.ty.rank()).collect();
    let mut out = letters.clone();
    out[axis] = 'y';
    let mut ins = letters.clone();
    ins[axis] = 'x';
    let spec = format!("{},xy->{}", ins.iter().collect::<String>(), out.iter().collect::<String>());
    c.emit(Op::Einsum(spec), &[z, &w], None, span)
}

/// `W[j, k] = exp(∓2πi (jk mod n) / n)` (divided by `n` for the inverse), c64 `[n, n]`.
/// A symbolic `n` is counted when the program runs, and the angle divided by it there.
fn table(c: &mut Checker, n: &Dim, inverse: bool, span: Span) -> R<TVal> {
    let sq = vec![n.clone(), n.clone()];
    let f64_of =
        |c: &mut Checker, t: &TVal| c.emit(Op::Cast, &[t], Some(TensorType::new(DType::F64, sq.clone())), span);
    let iota =
        |c: &mut Checker, axis| c.emit(Op::Iota { axis }, &[], Some(TensorType::new(DType::I64, sq.clone())), span);
    let (j, k) = (iota(c, 0)?, iota(c, 1)?);
    let jk = c.emit(Op::Binary(BinaryOp::Mul), &[&j, &k], None, span)?;
    let n_t = size_of(c, n, &sq, span)?;
    let m = c.emit(Op::Binary(BinaryOp::Rem), &[&jk, &n_t], None, span)?;
    let m = f64_of(c, &m)?;
    let sign = if inverse { 1.0 } else { -1.0 };
    // theta = m * (sign * 2 pi / n); the scale of the inverse is 1 / n.
    let (theta, scale) = match n.as_const() {
        Some(k) => {
            let step = full(c, sign * std::f64::consts::TAU / k as f64, DType::F64, &sq, span)?;
            let theta = c.emit(Op::Binary(BinaryOp::Mul), &[&m, &step], None, span)?;
            (theta, full(c, if inverse { 1.0 / k as f64 } else { 1.0 }, DType::F64, &sq, span)?)
        }
        None => {
            let n_f = f64_of(c, &n_t)?;
            let turn = full(c, sign * std::f64::consts::TAU, DType::F64, &sq, span)?;
            let m_turn = c.emit(Op::Binary(BinaryOp::Mul), &[&m, &turn], None, span)?;
            let theta = c.emit(Op::Binary(BinaryOp::Div), &[&m_turn, &n_f], None, span)?;
            let one = full(c, 1.0, DType::F64, &sq, span)?;
            let scale = if inverse { c.emit(Op::Binary(BinaryOp::Div), &[&one, &n_f], None, span)? } else { one };
            (theta, scale)
        }
    };
    let mut parts = Vec::new();
    for u in [UnaryOp::Cos, UnaryOp::Sin] {
        let v = c.emit(Op::Unary(u), &[&theta], None, span)?;
        let v = c.emit(Op::Binary(BinaryOp::Mul), &[&v, &scale], None, span)?;
        parts.push(c.emit(Op::Cast, &[&v], Some(TensorType::new(DType::F32, sq.clone())), span)?);
    }
    c.emit(Op::Complex, &[&parts[0], &parts[1]], None, span)
}
