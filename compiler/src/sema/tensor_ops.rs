//! Arithmetic on compile-time numbers, and tensor arithmetic with numpy broadcasting
//! (made explicit with `broadcast` ops, since TIR elementwise ops take equal shapes).

use super::value::{TVal, Value};
use super::{Checker, R};
use crate::diag::Diagnostic;
use crate::tir::{BinaryOp, DType, Dim, Op, TensorType};
use archc_grammar::ast::BinOp;
use archc_grammar::span::Span;

/// `a op b` on numbers, dims, bools and strings; `None` when the operands do not fit.
pub fn binary_const(op: BinOp, a: &Value, b: &Value) -> Option<Value> {
    use Value::*;
    match (a, b) {
        (Elastic { .. }, _) | (_, Elastic { .. }) if a.as_dim().is_some() && b.as_dim().is_some() => elastic(op, a, b),
        (Int(x), Int(y)) => int_op(op, x, y),
        (Float(_), Int(_) | Float(_)) | (Int(_), Float(_)) => float_op(op, a.as_float()?, b.as_float()?),
        (Bool(x), Bool(y)) => Some(Bool(match op {
            BinOp::And => *x && *y,
            BinOp::Or => *x || *y,
            BinOp::Eq => x == y,
            BinOp::Ne => x != y,
            _ => return None,
        })),
        (Str(x), Str(y)) => match op {
            BinOp::Eq => Some(Bool(x == y)),
            BinOp::Ne => Some(Bool(x != y)),
            BinOp::Add => Some(Str(format!("{x}{y}"))),
            _ => None,
        },
        (DType(x), DType(y)) => match op {
            BinOp::Eq => Some(Bool(x == y)),
            BinOp::Ne => Some(Bool(x != y)),
            _ => None,
        },
        _ => None,
    }
}

/// `a op b` where either is elastic: the value, the chosen option and the largest option
/// each computed. Where the value is a size symbol (a supernet build) and the op has no
/// symbolic answer (`elastic_symbol % 3`, `elastic_symbol < 8`), the chosen option's
/// answer is given: the build is then right for its own choices, and a supernet compares
/// the builds of all of a structure's widths before it shares one program among them.
fn elastic(op: BinOp, a: &Value, b: &Value) -> Option<Value> {
    let chosen = |v: &Value| match v {
        Value::Elastic { chosen, .. } => Some(Dim::constant(*chosen)),
        _ => v.as_dim(),
    };
    let (ac, bc) = (chosen(a)?, chosen(b)?);
    let concrete = int_op(op, &ac, &bc)?;
    let value = match int_op(op, &a.as_dim()?, &b.as_dim()?) {
        Some(v) => v,
        None => concrete.clone(),
    };
    match (value, concrete, int_op(op, &a.max_dim()?, &b.max_dim()?)?) {
        (Value::Int(v), Value::Int(c), Value::Int(m)) => match (c.as_const(), m.as_const()) {
            (Some(chosen), Some(max)) => Some(Value::Elastic { value: v, chosen, max }),
            _ => Some(Value::Int(v)),
        },
        (v, _, _) => Some(v),
    }
}

/// The largest int the checker computes with; beyond it no dim or index is meaningful,
/// and printed TIR stays within `i64`.
pub const MAX_INT: u64 = 1 << 53;

fn int_op(op: BinOp, x: &Dim, y: &Dim) -> Option<Value> {
    let v = int_op_unchecked(op, x, y)?;
    match &v {
        Value::Int(d) if d.max_coefficient() > MAX_INT => None,
        _ => Some(v),
    }
}

fn int_op_unchecked(op: BinOp, x: &Dim, y: &Dim) -> Option<Value> {
    use BinOp::*;
    let cx = x.as_const();
    let cy = y.as_const();
    let cmp = |f: fn(i64, i64) -> bool| Some(Value::Bool(f(cx?, cy?)));
    // Constant arithmetic must not overflow (it would wrap inside dims).
    if let (Some(a), Some(b)) = (cx, cy) {
        let fits = match op {
            Add => a.checked_add(b).is_some(),
            Sub => a.checked_sub(b).is_some(),
            Mul => a.checked_mul(b).is_some(),
            Div | Rem => !(a == i64::MIN && b == -1),
            _ => true,
        };
        if !fits {
            return None;
        }
    }
    match op {
        Add => Some(Value::Int(x.add(y))),
        Sub => Some(Value::Int(x.sub(y))),
        Mul => Some(Value::Int(x.mul(y))),
        Div => Some(Value::Int(x.floor_div(cy?)?)),
        Rem => match (cx, cy?) {
            (Some(a), b) => (b > 0).then(|| Value::Int(Dim::constant(a.rem_euclid(b)))),
            // x % b = x - b * floor(x / b), where that is a constant (`W % 1`, `(2 W) % 2`).
            (None, b) if b > 0 => {
                let r = x.sub(&x.floor_div(b)?.mul(&Dim::constant(b)));
                r.is_const().then_some(Value::Int(r))
            }
            (None, _) => None,
        },
        Pow => {
            let e = u32::try_from(cy?).ok()?;
            cx?.checked_pow(e).map(|v| Value::Int(v.into()))
        }
        Eq => Some(Value::Bool(x == y)),
        Ne => Some(Value::Bool(x != y)),
        Lt => cmp(|a, b| a < b),
        Le => cmp(|a, b| a <= b),
        Gt => cmp(|a, b| a > b),
        Ge => cmp(|a, b| a >= b),
        MatMul | And | Or => None,
    }
}

fn float_op(op: BinOp, x: f64, y: f64) -> Option<Value> {
    use BinOp::*;
    Some(match op {
        Add => Value::Float(x + y),
        Sub => Value::Float(x - y),
        Mul => Value::Float(x * y),
        Div => Value::Float(x / y),
        Rem => Value::Float(x.rem_euclid(y)),
        Pow => Value::Float(x.powf(y)),
        Eq => Value::Bool(x == y),
        Ne => Value::Bool(x != y),
        Lt => Value::Bool(x < y),
        Le => Value::Bool(x <= y),
        Gt => Value::Bool(x > y),
        Ge => Value::Bool(x >= y),
        MatMul | And | Or => return None,
    })
}

/// Numpy broadcasting of two shapes.
pub fn broadcast_shapes(a: &[Dim], b: &[Dim]) -> Option<Vec<Dim>> {
    let n = a.len().max(b.len());
    let one = Dim::constant(1);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let da = if i + a.len() >= n { &a[i + a.len() - n] } else { &one };
        let db = if i + b.len() >= n { &b[i + b.len() - n] } else { &one };
        out.push(if da == db || *db == one {
            da.clone()
        } else if *da == one {
            db.clone()
        } else {
            return None;
        });
    }
    Some(out)
}

fn to_binary(op: BinOp) -> BinaryOp {
    match op {
        BinOp::Add => BinaryOp::Add,
        BinOp::Sub => BinaryOp::Sub,
        BinOp::Mul => BinaryOp::Mul,
        BinOp::Div => BinaryOp::Div,
        BinOp::Rem => BinaryOp::Rem,
        BinOp::Pow => BinaryOp::Pow,
        BinOp::Eq => BinaryOp::Eq,
        BinOp::Ne => BinaryOp::Ne,
        BinOp::Lt => BinaryOp::Lt,
        BinOp::Le => BinaryOp::Le,
        BinOp::Gt => BinaryOp::Gt,
        BinOp::Ge => BinaryOp::Ge,
        BinOp::And => BinaryOp::And,
        BinOp::Or => BinaryOp::Or,
        BinOp::MatMul => unreachable!("matmul is not elementwise"),
    }
}

impl Checker<'_> {
    /// A scalar constant tensor of `dtype` from a number or bool.
    pub fn const_tensor(&mut self, v: &Value, dtype: DType, span: Span) -> R<TVal> {
        let x = match (v, dtype) {
            (Value::Bool(b), DType::Bool) => f64::from(u8::from(*b)),
            (Value::Float(_), DType::I64) => {
                return Err(Diagnostic::error(format!("a float `{v}` cannot combine with an i64 tensor"), span)
                    .with_help("cast the tensor: `cast(x, f32)`"))
            }
            (v, DType::F32 | DType::F64 | DType::I64 | DType::C64) => v.as_float().ok_or_else(|| {
                Diagnostic::error(format!("{} `{v}` cannot be used as a {dtype} value", v.a_kind()), span)
            })?,
            _ => {
                return Err(Diagnostic::error(format!("{} `{v}` cannot be used as a {dtype} value", v.a_kind()), span))
            }
        };
        self.emit(Op::Const(x), &[], Some(TensorType::scalar(dtype)), span)
    }

    /// Broadcasts `t` to `shape` (no-op when equal).
    pub fn broadcast_to(&mut self, t: &TVal, shape: &[Dim], span: Span) -> R<TVal> {
        if t.ty.shape == shape {
            return Ok(t.clone());
        }
        self.emit(Op::Broadcast, &[t], Some(TensorType::new(t.ty.dtype, shape.to_vec())), span)
    }

    /// Turns an operand into a tensor of `like`'s dtype when it is a number.
    pub fn tensor_operand(&mut self, v: Value, like: DType, span: Span) -> R<TVal> {
        match v {
            Value::Tensor(t) => Ok(t),
            other => self.const_tensor(&other, like, span),
        }
    }

    /// Broadcasts two tensors to a common shape (dtypes must agree).
    pub fn broadcast_pair(&mut self, a: &TVal, b: &TVal, span: Span) -> R<(TVal, TVal)> {
        if a.ty.dtype != b.ty.dtype {
            return Err(Diagnostic::error(format!("dtypes differ: {} and {}", a.ty, b.ty), span)
                .with_help("convert one side with `cast(x, dtype)`"));
        }
        let shape = broadcast_shapes(&a.ty.shape, &b.ty.shape).ok_or_else(|| {
            Diagnostic::error(format!("shapes {} and {} do not broadcast", a.ty, b.ty), span)
                .with_label("each dim must be equal, or 1 on one side")
        })?;
        Ok((self.broadcast_to(a, &shape, span)?, self.broadcast_to(b, &shape, span)?))
    }

    /// `a op b` where at least one side is a tensor.
    pub fn binary_tensor(&mut self, op: BinOp, a: Value, b: Value, span: Span) -> R<TVal> {
        let like = match (&a, &b) {
            (Value::Tensor(t), _) | (_, Value::Tensor(t)) => t.ty.dtype,
            _ => unreachable!("one side is a tensor"),
        };
        let ta = self.tensor_operand(a, like, span)?;
        let tb = self.tensor_operand(b, like, span)?;
        if op == BinOp::MatMul {
            return self.matmul(&ta, &tb, span);
        }
        self.elementwise(to_binary(op), &ta, &tb, span)
    }

    pub fn elementwise(&mut self, op: BinaryOp, a: &TVal, b: &TVal, span: Span) -> R<TVal> {
        let (a, b) = self.broadcast_pair(a, b, span)?;
        self.emit(Op::Binary(op), &[&a, &b], None, span)
    }

    /// `a @ b` with numpy semantics (vectors promoted, batch dims broadcast; a matrix
    /// right-hand side is applied to the flattened batch of the left).
    pub fn matmul(&mut self, a: &TVal, b: &TVal, span: Span) -> R<TVal> {
        if a.ty.rank() == 0 || b.ty.rank() == 0 {
            return Err(Diagnostic::error(format!("`@` needs tensors of rank >= 1, found {} @ {}", a.ty, b.ty), span));
        }
        let a2 = if a.ty.rank() == 1 {
            self.reshape(a, vec![Dim::constant(1), a.ty.shape[0].clone()], span)?
        } else {
            a.clone()
        };
        let b2 = if b.ty.rank() == 1 {
            self.reshape(b, vec![b.ty.shape[0].clone(), Dim::constant(1)], span)?
        } else {
            b.clone()
        };
        let k_a = &a2.ty.shape[a2.ty.rank() - 1];
        let k_b = &b2.ty.shape[b2.ty.rank() - 2];
        if k_a != k_b {
            return Err(Diagnostic::error(
                format!("matmul: inner dims differ: {} @ {} ({k_a} vs {k_b})", a.ty, b.ty),
                span,
            ));
        }
        let y = if b2.ty.rank() == 2 && a2.ty.rank() > 2 {
            self.matmul_flat(&a2, &b2, span)?
        } else {
            self.matmul_batched(&a2, &b2, span)?
        };
        let mut shape = y.ty.shape.clone();
        if b.ty.rank() == 1 {
            shape.pop();
        }
        if a.ty.rank() == 1 {
            shape.remove(shape.len() - if b.ty.rank() == 1 { 1 } else { 2 });
        }
        if shape == y.ty.shape {
            Ok(y)
        } else {
            self.reshape(&y, shape, span)
        }
    }

    fn matmul_flat(&mut self, a: &TVal, b: &TVal, span: Span) -> R<TVal> {
        let r = a.ty.rank();
        let rows = a.ty.shape[..r - 1].iter().fold(Dim::constant(1), |acc, d| acc.mul(d));
        let flat = self.reshape(a, vec![rows, a.ty.shape[r - 1].clone()], span)?;
        let y = self.emit(Op::MatMul, &[&flat, b], None, span)?;
        let mut shape = a.ty.shape[..r - 1].to_vec();
        shape.push(b.ty.shape[1].clone());
        self.reshape(&y, shape, span)
    }

    fn matmul_batched(&mut self, a: &TVal, b: &TVal, span: Span) -> R<TVal> {
        let (ra, rb) = (a.ty.rank(), b.ty.rank());
        let batch = broadcast_shapes(&a.ty.shape[..ra - 2], &b.ty.shape[..rb - 2]).ok_or_else(|| {
            Diagnostic::error(format!("matmul: batch dims of {} and {} do not broadcast", a.ty, b.ty), span)
        })?;
        let mut sa = batch.clone();
        sa.extend(a.ty.shape[ra - 2..].iter().cloned());
        let mut sb = batch;
        sb.extend(b.ty.shape[rb - 2..].iter().cloned());
        let a = self.broadcast_to(a, &sa, span)?;
        let b = self.broadcast_to(b, &sb, span)?;
        self.emit(Op::MatMul, &[&a, &b], None, span)
    }

    pub fn reshape(&mut self, t: &TVal, shape: Vec<Dim>, span: Span) -> R<TVal> {
        if t.ty.shape == shape {
            return Ok(t.clone());
        }
        self.emit(Op::Reshape, &[t], Some(TensorType::new(t.ty.dtype, shape)), span)
    }
}
