//! Elementwise ops. Each line is the derivative it implements.

use super::super::emit::{Emitter, Res, V};
use crate::tir::{BinaryOp, DType, UnaryOp};

fn is_complex(e: &Emitter, v: V) -> bool {
    e.ty(v).dtype == DType::C64
}

/// `conj(x)` for complex values, `x` otherwise.
fn conj_if_complex(e: &mut Emitter, x: V) -> Res<V> {
    if is_complex(e, x) {
        e.conj(x)
    } else {
        Ok(x)
    }
}

pub fn unary(e: &mut Emitter, u: UnaryOp, x: V, y: V, ct: V) -> Res<Option<V>> {
    use UnaryOp::*;
    let g = match u {
        // d(-x) = -1
        Neg => e.neg(ct)?,
        // d exp(x) = exp(x) = y
        Exp => {
            let yc = conj_if_complex(e, y)?;
            e.mul(ct, yc)?
        }
        // d log(x) = 1 / x
        Log => {
            let xc = conj_if_complex(e, x)?;
            e.bin(BinaryOp::Div, ct, xc)?
        }
        // d log1p(x) = 1 / (1 + x)
        Log1p => {
            let one = e.fill(1.0, &e.ty(x))?;
            let d = e.add(one, x)?;
            e.bin(BinaryOp::Div, ct, d)?
        }
        // d sqrt(x) = 1 / (2 y)
        Sqrt => {
            let two_y = e.scale(y, 2.0)?;
            e.bin(BinaryOp::Div, ct, two_y)?
        }
        // d x^(-1/2) = -y^3 / 2
        Rsqrt => {
            let y2 = e.mul(y, y)?;
            let y3 = e.mul(y2, y)?;
            let d = e.scale(y3, -0.5)?;
            e.mul(ct, d)?
        }
        // d tanh(x) = 1 - y^2
        Tanh => {
            let y2 = e.mul(y, y)?;
            let one = e.fill(1.0, &e.ty(y))?;
            let d = e.bin(BinaryOp::Sub, one, y2)?;
            e.mul(ct, d)?
        }
        // d sigmoid(x) = y (1 - y)
        Sigmoid => {
            let one = e.fill(1.0, &e.ty(y))?;
            let om = e.bin(BinaryOp::Sub, one, y)?;
            let d = e.mul(y, om)?;
            e.mul(ct, d)?
        }
        // d relu(x) = [x > 0]
        Relu => step_mask(e, x, ct)?,
        // d erf(x) = 2 / sqrt(pi) exp(-x^2)
        Erf => {
            let x2 = e.mul(x, x)?;
            let nx2 = e.neg(x2)?;
            let ex = e.un(Exp, nx2)?;
            let d = e.scale(ex, std::f64::consts::FRAC_2_SQRT_PI)?;
            e.mul(ct, d)?
        }
        // d |x| = sign(x)
        Abs => {
            let s = e.un(Sign, x)?;
            e.mul(ct, s)?
        }
        // d sin(x) = cos(x)
        Sin => {
            let c = e.un(Cos, x)?;
            e.mul(ct, c)?
        }
        // d cos(x) = -sin(x)
        Cos => {
            let s = e.un(Sin, x)?;
            let ns = e.neg(s)?;
            e.mul(ct, ns)?
        }
        // piecewise constant: no gradient
        Sign | Floor | Not => return Ok(None),
    };
    Ok(Some(g))
}

/// `ct * [x > 0]`
fn step_mask(e: &mut Emitter, x: V, ct: V) -> Res<V> {
    let zero = e.fill(0.0, &e.ty(x))?;
    let pos = e.bin(BinaryOp::Gt, x, zero)?;
    let zc = e.fill(0.0, &e.ty(ct))?;
    e.op(crate::tir::Op::Select, &[pos, ct, zc], None)
}

pub fn binary(e: &mut Emitter, b: BinaryOp, x: V, z: V, y: V, ct: V) -> Res<Vec<Option<V>>> {
    use BinaryOp::*;
    Ok(match b {
        // d(x + z) = (1, 1)
        Add => vec![Some(ct), Some(ct)],
        // d(x - z) = (1, -1)
        Sub => vec![Some(ct), Some(e.neg(ct)?)],
        // d(x z) = (z, x), conjugated for complex
        Mul => {
            let zc = conj_if_complex(e, z)?;
            let xc = conj_if_complex(e, x)?;
            vec![Some(e.mul(ct, zc)?), Some(e.mul(ct, xc)?)]
        }
        // d(x / z) = (1 / z, -y / z)
        Div => {
            let zc = conj_if_complex(e, z)?;
            let gx = e.bin(Div, ct, zc)?;
            let yc = conj_if_complex(e, y)?;
            let t = e.mul(gx, yc)?;
            vec![Some(gx), Some(e.neg(t)?)]
        }
        // d x^z = (z x^(z-1), y log x)
        Pow => {
            let one = e.fill(1.0, &e.ty(z))?;
            let zm1 = e.bin(Sub, z, one)?;
            let p = e.bin(Pow, x, zm1)?;
            let dx = e.mul(z, p)?;
            let lx = e.un(UnaryOp::Log, x)?;
            let dz = e.mul(y, lx)?;
            vec![Some(e.mul(ct, dx)?), Some(e.mul(ct, dz)?)]
        }
        // d rem(x, z) = (1, -floor(x / z))
        Rem => {
            let q = e.bin(Div, x, z)?;
            let f = e.un(UnaryOp::Floor, q)?;
            let t = e.mul(ct, f)?;
            vec![Some(ct), Some(e.neg(t)?)]
        }
        // d max(x, z): to x where x >= z, else to z (ties go to x)
        Max => route(e, Ge, x, z, ct)?,
        // d min(x, z): to x where x <= z, else to z
        Min => route(e, Le, x, z, ct)?,
        Eq | Ne | Lt | Le | Gt | Ge | And | Or => vec![None, None],
    })
}

fn route(e: &mut Emitter, cmp: BinaryOp, x: V, z: V, ct: V) -> Res<Vec<Option<V>>> {
    let m = e.bin(cmp, x, z)?;
    let zero = e.fill(0.0, &e.ty(ct))?;
    let gx = e.op(crate::tir::Op::Select, &[m, ct, zero], None)?;
    let gz = e.op(crate::tir::Op::Select, &[m, zero, ct], None)?;
    Ok(vec![Some(gx), Some(gz)])
}
