//! Built-in functions: the primitives a `.arch` file can call, each lowered to TIR ops
//! (or computed at build time when its arguments are numbers). Names are listed in
//! [`BUILTINS`]; `init.*` initialisers in [`INIT_FNS`].

use super::args::{ints_of, ArgReader, CallArgs};
use super::value::{Callable, Layer, TVal, Value};
use super::{Checker, R};
use crate::diag::Diagnostic;
use crate::tir::{BinaryOp, DType, Dim, Init, Op, PoolOp, ReduceOp, TensorType, UnaryOp};
use archc_grammar::span::Span;

pub const BUILTINS: &[&str] = &[
    "exp",
    "log",
    "log1p",
    "sqrt",
    "rsqrt",
    "tanh",
    "sigmoid",
    "relu",
    "erf",
    "abs",
    "sin",
    "cos",
    "sign",
    "floor",
    "maximum",
    "minimum",
    "pow",
    "where",
    "cast",
    "sum",
    "mean",
    "max",
    "min",
    "argmax",
    "argmin",
    "argsort",
    "sort",
    "topk",
    "argtopk",
    "take_along",
    "stop_gradient",
    "matmul",
    "einsum",
    "conv",
    "conv_transpose",
    "upsample",
    "max_pool",
    "avg_pool",
    "reshape",
    "transpose",
    "permute",
    "flatten",
    "unsqueeze",
    "squeeze",
    "concat",
    "stack",
    "pad",
    "broadcast",
    "gather",
    "scatter_add",
    "rfft",
    "irfft",
    "fft",
    "ifft",
    "fft2",
    "ifft2",
    "rfft2",
    "irfft2",
    "real",
    "imag",
    "complex",
    "rand_like",
    "randn_like",
    "zeros",
    "ones",
    "full",
    "arange",
    "linspace",
    "scan",
    "len",
    "per_axis",
    "int",
    "float",
    "assert",
    "update",
];

pub const INIT_FNS: &[&str] = &[
    "zeros",
    "ones",
    "constant",
    "normal",
    "uniform",
    "kaiming_uniform",
    "kaiming_normal",
    "xavier_uniform",
    "xavier_normal",
];

const INIT_NAMES: &[&str] = &[
    "init.zeros",
    "init.ones",
    "init.constant",
    "init.normal",
    "init.uniform",
    "init.kaiming_uniform",
    "init.kaiming_normal",
    "init.xavier_uniform",
    "init.xavier_normal",
];

/// The value of a builtin name (`relu`, `init`, `f32`, `pi`), if it is one.
pub fn lookup(name: &str) -> Option<Value> {
    if let Some(b) = BUILTINS.iter().find(|b| **b == name) {
        return Some(Value::Func(Callable::Builtin(b)));
    }
    match name {
        "init" => Some(Value::InitNamespace),
        "pi" => Some(Value::Float(std::f64::consts::PI)),
        "inf" => Some(Value::Float(f64::INFINITY)),
        _ => DType::from_name(name).map(Value::DType),
    }
}

pub fn init_fn(name: &str) -> Option<Value> {
    INIT_NAMES.iter().find(|n| n[5..] == *name).map(|n| Value::Func(Callable::Builtin(n)))
}

pub fn call(c: &mut Checker, name: &'static str, args: CallArgs, span: Span) -> R<Value> {
    let mut a = ArgReader::new(name, args, span);
    let v = dispatch(c, name, &mut a)?;
    a.finish()?;
    Ok(v)
}

fn dispatch(c: &mut Checker, name: &'static str, a: &mut ArgReader) -> R<Value> {
    if let Some(op) = unary_op(name) {
        return unary(c, op, a);
    }
    if let Some(stripped) = name.strip_prefix("init.") {
        return init(stripped, a);
    }
    if super::sorting::NAMES.contains(&name) {
        return super::sorting::call(c, name, a);
    }
    if super::spectral::NAMES.contains(&name) {
        return super::spectral::call(c, name, a);
    }
    if super::resample::NAMES.contains(&name) {
        return super::resample::call(c, name, a);
    }
    let span = a.span();
    let t = |v: TVal| Ok(Value::Tensor(v));
    match name {
        "maximum" | "minimum" | "pow" => binary(c, name, a),
        "where" => select(c, a),
        "cast" => {
            let x = a.tensor("x")?;
            let dt = dtype_arg(a, "dtype")?;
            t(c.emit(Op::Cast, &[&x], Some(x.ty.with_dtype(dt)), span)?)
        }
        "sum" | "mean" | "max" | "min" => reduce(c, name, a),
        "argmax" => {
            let x = a.tensor("x")?;
            let axis = norm_axis(a.int_or("axis", -1)?, x.ty.rank(), span)?;
            let keepdim = a.bool_or("keepdim", false)?;
            t(c.emit(Op::ArgMax { axis, keepdim }, &[&x], None, span)?)
        }
        "matmul" => {
            let (x, y) = (a.tensor("a")?, a.tensor("b")?);
            t(c.matmul(&x, &y, span)?)
        }
        "einsum" => einsum(c, a),
        "conv" => conv(c, a),
        "max_pool" | "avg_pool" => pool(c, name, a),
        "reshape" => reshape(c, a),
        "transpose" => {
            let x = a.tensor("x")?;
            let r = x.ty.rank();
            let (i, j) = (norm_axis(a.int("a")?, r, span)?, norm_axis(a.int("b")?, r, span)?);
            let mut perm: Vec<usize> = (0..r).collect();
            perm.swap(i, j);
            t(permute(c, &x, perm, span)?)
        }
        "permute" => {
            let x = a.tensor("x")?;
            let (v, s) = a.req("axes")?;
            let axes = ints_of(&v).ok_or_else(|| a.wrong("axes", "a list of ints", &v, s))?;
            let perm = axes.iter().map(|&i| norm_axis(i, x.ty.rank(), s)).collect::<R<Vec<_>>>()?;
            t(permute(c, &x, perm, span)?)
        }
        "flatten" => flatten(c, a),
        "unsqueeze" => {
            let x = a.tensor("x")?;
            let axis = norm_axis(a.int("axis")?, x.ty.rank() + 1, span)?;
            let mut shape = x.ty.shape.clone();
            shape.insert(axis, Dim::constant(1));
            t(c.reshape(&x, shape, span)?)
        }
        "squeeze" => {
            let x = a.tensor("x")?;
            let axis = norm_axis(a.int("axis")?, x.ty.rank(), span)?;
            if x.ty.shape[axis].as_const() != Some(1) {
                return Err(Diagnostic::error(
                    format!("cannot squeeze axis {axis} of {}: its size is not 1", x.ty),
                    span,
                ));
            }
            let mut shape = x.ty.shape.clone();
            shape.remove(axis);
            t(c.reshape(&x, shape, span)?)
        }
        "concat" => concat(c, a),
        "stack" => stack(c, a),
        "pad" => pad(c, a),
        "broadcast" => {
            let x = a.tensor("x")?;
            let dims = a.dims("shape")?;
            t(c.broadcast_to(&x, &dims, span)?)
        }
        "gather" => {
            let x = a.tensor("x")?;
            let idx = a.tensor("idx")?;
            let axis = norm_axis(a.int_or("axis", 0)?, x.ty.rank(), span)?;
            t(c.emit(Op::Gather { axis }, &[&x, &idx], None, span)?)
        }
        "scatter_add" => {
            let x = a.tensor("x")?;
            let idx = a.tensor("idx")?;
            let src = a.tensor("src")?;
            let axis = norm_axis(a.int_or("axis", 0)?, x.ty.rank(), span)?;
            t(c.emit(Op::ScatterAdd { axis }, &[&x, &idx, &src], None, span)?)
        }
        "rfft" => {
            let x = a.tensor("x")?;
            let axis = norm_axis(a.int_or("axis", -1)?, x.ty.rank(), span)?;
            t(c.emit(Op::Rfft { axis }, &[&x], None, span)?)
        }
        "irfft" => {
            let x = a.tensor("x")?;
            let n = a.dim("n")?;
            let axis = norm_axis(a.int_or("axis", -1)?, x.ty.rank(), span)?;
            t(c.emit(Op::Irfft { axis, n }, &[&x], None, span)?)
        }
        "real" | "imag" => {
            let x = a.tensor("z")?;
            t(c.emit(if name == "real" { Op::Real } else { Op::Imag }, &[&x], None, span)?)
        }
        "complex" => {
            let (re, im) = (a.tensor("re")?, a.tensor("im")?);
            let (re, im) = c.broadcast_pair(&re, &im, span)?;
            t(c.emit(Op::Complex, &[&re, &im], None, span)?)
        }
        "rand_like" | "randn_like" => {
            let x = a.tensor("x")?;
            let seed = c.b.next_seed();
            let op = if name == "rand_like" { Op::RandUniform { seed } } else { Op::RandNormal { seed } };
            let ty = if x.ty.dtype.is_float() { x.ty.clone() } else { x.ty.with_dtype(DType::F32) };
            t(c.emit(op, &[], Some(ty), span)?)
        }
        "zeros" | "ones" | "full" => fill(c, name, a),
        "arange" => {
            let n = a.dim("n")?;
            let dt = match a.opt("dtype") {
                Some((Value::DType(d), _)) => d,
                Some((v, s)) => return Err(a.wrong("dtype", "a dtype", &v, s)),
                None => DType::I64,
            };
            t(c.emit(Op::Iota { axis: 0 }, &[], Some(TensorType::new(dt, vec![n])), span)?)
        }
        "linspace" => linspace(c, a),
        "scan" => scan(c, a),
        "assert" => {
            let (c, cs) = a.req("cond")?;
            let msg = match a.opt("message") {
                Some((Value::Str(s), _)) => s,
                Some((v, s)) => return Err(a.wrong("message", "a string", &v, s)),
                None => "assertion failed".to_string(),
            };
            match c {
                Value::Bool(true) => Ok(Value::Bool(true)),
                Value::Bool(false) => Err(Diagnostic::error(msg, span)),
                v => Err(a.wrong("cond", "a compile-time bool", &v, cs)),
            }
        }
        "update" => {
            let buf = a.tensor("buffer")?;
            let value = a.tensor("value")?;
            let name = c.buffer_reads.get(&(buf.func, buf.id)).cloned().ok_or_else(|| {
                Diagnostic::error("`update` needs a buffer (declared with `buffer`) as its first argument", span)
            })?;
            if value.ty != buf.ty {
                return Err(Diagnostic::error(
                    format!("buffer `{name}` is {}, the new value {}", buf.ty, value.ty),
                    span,
                ));
            }
            // Updates are outputs of `main`; inside stack, scan and per-sample bodies (other
            // functions) they are not recorded. An elastic buffer keeps its whole shape.
            if value.func == 0 {
                let stored = match c.elastic_buffers.get(&(buf.func, buf.id)).cloned() {
                    Some(whole) => c.widen_update(&whole, value.clone(), span)?,
                    None => value.clone(),
                };
                c.buffer_updates.retain(|(n, _)| n != &name);
                c.buffer_updates.push((name, stored));
            }
            Ok(Value::Tensor(value))
        }
        "per_axis" => {
            let (v, s) = a.req("v")?;
            let n = a.int("n")?;
            let ints = ints_of(&v).ok_or_else(|| a.wrong("v", "an int or a list of ints", &v, s))?;
            // One entry per axis: no more than a tensor can have (and never a huge list).
            let max = crate::tir::types::MAX_RANK;
            let n = usize::try_from(n).ok().filter(|&n| n <= max).ok_or_else(|| {
                Diagnostic::error(format!("per_axis: {n} is not a number of axes (0 to {max})"), a.span())
            })?;
            match ints.len() {
                1 if !matches!(v, Value::List(_)) => Ok(Value::List(vec![Value::Int(ints[0].into()); n])),
                k if k == n => Ok(v),
                _ => Err(Diagnostic::error(format!("`{v}` is not an int or a list of {n} ints"), s)),
            }
        }
        "len" => match a.req("list")? {
            (Value::List(v), _) => Ok(Value::Int((v.len() as i64).into())),
            (v, s) => Err(a.wrong("list", "a list", &v, s)),
        },
        "int" => {
            let (v, s) = a.req("x")?;
            match v {
                Value::Float(f) => Ok(Value::Int((f.floor() as i64).into())),
                v if v.as_dim().is_some() => Ok(v),
                v => Err(a.wrong("x", "a number", &v, s)),
            }
        }
        "float" => {
            let (v, s) = a.req("x")?;
            v.as_float().map(Value::Float).ok_or_else(|| a.wrong("x", "a number", &v, s))
        }
        other => Err(Diagnostic::error(format!("internal: builtin `{other}` is not implemented"), span)),
    }
}

fn unary_op(name: &str) -> Option<UnaryOp> {
    use UnaryOp::*;
    Some(match name {
        "exp" => Exp,
        "log" => Log,
        "log1p" => Log1p,
        "sqrt" => Sqrt,
        "rsqrt" => Rsqrt,
        "tanh" => Tanh,
        "sigmoid" => Sigmoid,
        "relu" => Relu,
        "erf" => Erf,
        "abs" => Abs,
        "sin" => Sin,
        "cos" => Cos,
        "sign" => Sign,
        "floor" => Floor,
        _ => return None,
    })
}

fn unary(c: &mut Checker, op: UnaryOp, a: &mut ArgReader) -> R<Value> {
    let (v, s) = a.req("x")?;
    match v {
        Value::Tensor(x) => c.unary_tensor(op, &x, a.span()),
        v => {
            let x = v.as_float().ok_or_else(|| a.wrong("x", "a tensor or a number", &v, s))?;
            Ok(Value::Float(unary_number(op, x)))
        }
    }
}

fn unary_number(op: UnaryOp, x: f64) -> f64 {
    use UnaryOp::*;
    match op {
        Neg => -x,
        Exp => x.exp(),
        Log => x.ln(),
        Log1p => x.ln_1p(),
        Sqrt => x.sqrt(),
        Rsqrt => 1.0 / x.sqrt(),
        Tanh => x.tanh(),
        Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Relu => x.max(0.0),
        Erf => erf(x),
        Abs => x.abs(),
        Sin => x.sin(),
        Cos => x.cos(),
        Sign => x.signum(),
        Floor => x.floor(),
        Not => f64::from(u8::from(x == 0.0)),
    }
}

/// Abramowitz–Stegun 7.1.26 is too coarse for constants; use a series/continued form.
fn erf(x: f64) -> f64 {
    // erf via the complementary error function's Chebyshev fit (Numerical Recipes erfc).
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.26551223
            + t * (1.00002368
                + t * (0.37409196
                    + t * (0.09678418
                        + t * (-0.18628806
                            + t * (0.27886807
                                + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))))
            .exp();
    if x >= 0.0 {
        1.0 - r
    } else {
        r - 1.0
    }
}

fn binary(c: &mut Checker, name: &str, a: &mut ArgReader) -> R<Value> {
    let (x, _) = a.req("a")?;
    let (y, _) = a.req("b")?;
    let span = a.span();
    if let (Some(p), Some(q)) = (x.as_float(), y.as_float()) {
        return Ok(Value::Float(match name {
            "maximum" => p.max(q),
            "minimum" => p.min(q),
            _ => p.powf(q),
        }));
    }
    let like = match (&x, &y) {
        (Value::Tensor(t), _) | (_, Value::Tensor(t)) => t.ty.dtype,
        _ => return Err(Diagnostic::error(format!("`{name}` needs tensors or numbers"), span)),
    };
    let tx = c.tensor_operand(x, like, span)?;
    let ty = c.tensor_operand(y, like, span)?;
    let op = match name {
        "maximum" => BinaryOp::Max,
        "minimum" => BinaryOp::Min,
        _ => BinaryOp::Pow,
    };
    c.elementwise(op, &tx, &ty, span).map(Value::Tensor)
}

fn select(c: &mut Checker, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let cond = a.tensor("cond")?;
    if cond.ty.dtype != DType::Bool {
        return Err(Diagnostic::error(format!("`where` needs a bool condition, found {}", cond.ty), span));
    }
    let (x, _) = a.req("a")?;
    let (y, _) = a.req("b")?;
    let like = match (&x, &y) {
        (Value::Tensor(t), _) | (_, Value::Tensor(t)) => t.ty.dtype,
        _ => DType::F32,
    };
    let tx = c.tensor_operand(x, like, span)?;
    let ty = c.tensor_operand(y, like, span)?;
    let (tx, ty) = c.broadcast_pair(&tx, &ty, span)?;
    let shape = super::tensor_ops::broadcast_shapes(&cond.ty.shape, &tx.ty.shape)
        .ok_or_else(|| Diagnostic::error(format!("`where`: {} and {} do not broadcast", cond.ty, tx.ty), span))?;
    let cond = c.broadcast_to(&cond, &shape, span)?;
    let tx = c.broadcast_to(&tx, &shape, span)?;
    let ty = c.broadcast_to(&ty, &shape, span)?;
    c.emit(Op::Select, &[&cond, &tx, &ty], None, span).map(Value::Tensor)
}

fn reduce(c: &mut Checker, name: &str, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let (first, s) = a.req("x")?;
    let Value::Tensor(x) = first else {
        let mut nums = match first {
            Value::List(items) => items,
            v => vec![v],
        };
        nums.extend(a.rest().into_iter().map(|(v, _)| v));
        return reduce_numbers(name, &nums).ok_or_else(|| a.wrong("x", "a tensor or numbers", &Value::List(nums), s));
    };
    let rank = x.ty.rank();
    let axes = match a.opt("axis") {
        None => (0..rank).collect(),
        Some((v, vs)) => {
            let list = ints_of(&v).ok_or_else(|| a.wrong("axis", "an int or a list of ints", &v, vs))?;
            let mut axes = list.iter().map(|&i| norm_axis(i, rank, vs)).collect::<R<Vec<_>>>()?;
            axes.sort();
            axes.dedup();
            axes
        }
    };
    let keepdim = a.bool_or("keepdim", false)?;
    let op = match name {
        "sum" => ReduceOp::Sum,
        "mean" => ReduceOp::Mean,
        "max" => ReduceOp::Max,
        _ => ReduceOp::Min,
    };
    c.emit(Op::Reduce { op, axes, keepdim }, &[&x], None, span).map(Value::Tensor)
}

fn reduce_numbers(name: &str, nums: &[Value]) -> Option<Value> {
    if let Some(ints) = nums.iter().map(|v| v.as_const_int()).collect::<Option<Vec<_>>>() {
        let r = match name {
            "sum" => ints.iter().sum(),
            "max" => *ints.iter().max()?,
            "min" => *ints.iter().min()?,
            _ => return Some(Value::Float(ints.iter().sum::<i64>() as f64 / ints.len() as f64)),
        };
        return Some(Value::Int(r.into()));
    }
    let fs = nums.iter().map(|v| v.as_float()).collect::<Option<Vec<_>>>()?;
    let r = match name {
        "sum" => fs.iter().sum(),
        "max" => fs.iter().cloned().fold(f64::NEG_INFINITY, f64::max),
        "min" => fs.iter().cloned().fold(f64::INFINITY, f64::min),
        _ => fs.iter().sum::<f64>() / fs.len() as f64,
    };
    Some(Value::Float(r))
}

fn einsum(c: &mut Checker, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let spec = match a.req("spec")? {
        (Value::Str(s), _) => s,
        (v, s) => return Err(a.wrong("spec", "a string like \"bi,io->bo\"", &v, s)),
    };
    let xs: Vec<TVal> = a
        .rest()
        .into_iter()
        .map(|(v, s)| match v {
            Value::Tensor(t) => Ok(t),
            v => Err(a.wrong("operands", "tensors", &v, s)),
        })
        .collect::<R<_>>()?;
    let spec: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    super::einsum::einsum(c, &spec, &xs, span).map(Value::Tensor)
}

/// An int per spatial axis, from an int or a list.
pub(super) fn per_axis(v: Option<Vec<i64>>, n: usize, default: i64, what: &str, span: Span) -> R<Vec<i64>> {
    match v {
        None => Ok(vec![default; n]),
        Some(v) if v.len() == 1 => Ok(vec![v[0]; n]),
        Some(v) if v.len() == n => Ok(v),
        Some(v) => Err(Diagnostic::error(format!("`{what}` has {} entries for {n} spatial axes", v.len()), span)),
    }
}

fn conv(c: &mut Checker, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let x = a.tensor("x")?;
    let w = a.tensor("w")?;
    if x.ty.rank() < 3 {
        return Err(Diagnostic::error(format!("conv needs an input [B, C, *spatial], found {}", x.ty), span));
    }
    let n = x.ty.rank() - 2;
    let stride = per_axis(a.ints_or("stride", None)?, n, 1, "stride", span)?;
    let pad = per_axis(a.ints_or("padding", None)?, n, 0, "padding", span)?;
    let dilation = per_axis(a.ints_or("dilation", None)?, n, 1, "dilation", span)?;
    let groups = a.int_or("groups", 1)?;
    let kernel: Vec<i64> = w.ty.shape.iter().skip(2).map(|d| d.as_const().unwrap_or(1)).collect();
    c.check_grid_window("convolution", &x.ty.shape, &kernel, span)?;
    let padding = pad.iter().map(|&p| (p, p)).collect();
    c.emit(Op::Conv { stride, padding, dilation, groups }, &[&x, &w], None, span).map(Value::Tensor)
}

fn pool(c: &mut Checker, name: &str, a: &mut ArgReader) -> R<Value> {
    use super::pooling::{reach, taps};
    let span = a.span();
    let x = a.tensor("x")?;
    let (kv, ks) = a.req("k")?;
    let k = ints_of(&kv).ok_or_else(|| a.wrong("k", "an int or a list of ints", &kv, ks))?;
    let n = if k.len() > 1 { k.len() } else { x.ty.rank().saturating_sub(2).max(1) };
    let window = per_axis(Some(k), n, 1, "k", span)?;
    let stride = per_axis(a.ints_or("stride", None)?, n, 0, "stride", span)?;
    let stride: Vec<i64> = stride.iter().zip(&window).map(|(&s, &k)| if s == 0 { k } else { s }).collect();
    let pad = per_axis(a.ints_or("padding", None)?, n, 0, "padding", span)?;
    let dilation = per_axis(a.ints_or("dilation", None)?, n, 1, "dilation", span)?;
    if let Some(d) = dilation.iter().find(|&&d| d < 1) {
        return Err(Diagnostic::error(format!("a pooling dilation must be at least 1, found {d}"), span));
    }
    let dilated = dilation.iter().any(|&d| d > 1);
    let padding: Vec<(i64, i64)> = pad.iter().map(|&p| (p, p)).collect();
    if dilated {
        // The pool op's own rule, for the dilated windows that do not go through it.
        crate::tir::infer::at_most_half_window(&window, &padding).map_err(|m| Diagnostic::error(m, span))?;
    }
    let spans: Vec<i64> = window.iter().zip(&dilation).map(|(&k, &d)| reach(k, d)).collect();
    c.check_grid_window("pooling window", &x.ty.shape, &spans, span)?;
    let ceil_mode = a.bool_or("ceil_mode", false)?;
    let extra = match ceil_mode {
        true => super::resample::ceil_extra(&x, &spans, &stride, &pad, span)?,
        false => vec![0; n],
    };
    if name == "max_pool" {
        let lowest = if x.ty.dtype == DType::I64 { i64::MIN as f64 } else { f64::NEG_INFINITY };
        if dilated {
            let around: Vec<(i64, i64)> = pad.iter().zip(&extra).map(|(&p, &e)| (p, p + e)).collect();
            let x = super::resample::pad_spatial(c, &x, &around, lowest, span)?;
            return taps(c, &x, &window, &stride, &dilation, BinaryOp::Max, span).map(Value::Tensor);
        }
        let x = super::resample::pad_end(c, &x, &extra, lowest, span)?;
        let op = Op::Pool { op: PoolOp::Max, window, stride, padding };
        return c.emit(op, &[&x], None, span).map(Value::Tensor);
    }
    let include_pad = a.bool_or("count_include_pad", true)?;
    if include_pad && !ceil_mode && !dilated {
        let op = Op::Pool { op: PoolOp::Avg, window, stride, padding };
        return c.emit(op, &[&x], None, span).map(Value::Tensor);
    }
    let pool = super::resample::Pool { window, stride, pad, extra, dilation };
    super::resample::counted_avg_pool(c, &x, &pool, include_pad, span).map(Value::Tensor)
}

fn reshape(c: &mut Checker, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let x = a.tensor("x")?;
    let dims = a.dims_with("shape", true)?;
    let holes: Vec<usize> = (0..dims.len()).filter(|&i| dims[i].as_const() == Some(-1)).collect();
    let shape = match holes.as_slice() {
        [] => dims,
        [h] => {
            let known =
                dims.iter().enumerate().filter(|(i, _)| i != h).fold(Dim::constant(1), |acc, (_, d)| acc.mul(d));
            let fill = x.ty.numel().div_exact(&known).ok_or_else(|| {
                Diagnostic::error(
                    format!("cannot infer `-1`: {} elements do not divide by {known}", x.ty.numel()),
                    span,
                )
            })?;
            let mut d = dims;
            d[*h] = fill;
            d
        }
        _ => return Err(Diagnostic::error("reshape allows at most one `-1`", span)),
    };
    if shape.iter().fold(Dim::constant(1), |acc, d| acc.mul(d)) != x.ty.numel() {
        let t = TensorType::new(x.ty.dtype, shape);
        return Err(Diagnostic::error(format!("cannot reshape {} to {t}: element counts differ", x.ty), span));
    }
    c.reshape(&x, shape, span).map(Value::Tensor)
}

pub(super) fn permute(c: &mut Checker, x: &TVal, perm: Vec<usize>, span: Span) -> R<TVal> {
    if perm.iter().enumerate().all(|(i, p)| i == *p) {
        return Ok(x.clone());
    }
    c.emit(Op::Permute(perm), &[x], None, span)
}

fn flatten(c: &mut Checker, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let x = a.tensor("x")?;
    let r = x.ty.rank();
    let start = norm_axis(a.int_or("start", 1)?, r, span)?;
    let end = norm_axis(a.int_or("end", -1)?, r, span)?;
    if start > end {
        return Err(Diagnostic::error(format!("flatten: start axis {start} is after end axis {end}"), span));
    }
    let mut shape = x.ty.shape[..start].to_vec();
    shape.push(x.ty.shape[start..=end].iter().fold(Dim::constant(1), |acc, d| acc.mul(d)));
    shape.extend(x.ty.shape[end + 1..].iter().cloned());
    c.reshape(&x, shape, span).map(Value::Tensor)
}

/// The tensors of list argument `name`.
fn tensor_list(a: &mut ArgReader, name: &'static str) -> R<Vec<TVal>> {
    let (v, s) = a.req(name)?;
    let Value::List(items) = v else { return Err(a.wrong(name, "a list of tensors", &v, s)) };
    items
        .into_iter()
        .map(|v| match v {
            Value::Tensor(t) => Ok(t),
            v => Err(a.wrong(name, "a list of tensors", &v, s)),
        })
        .collect()
}

fn concat(c: &mut Checker, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let xs = tensor_list(a, "xs")?;
    let first = xs.first().ok_or_else(|| Diagnostic::error("concat needs at least one tensor", span))?;
    let axis = norm_axis(a.int_or("axis", 0)?, first.ty.rank(), span)?;
    let refs: Vec<&TVal> = xs.iter().collect();
    c.emit(Op::Concat { axis }, &refs, None, span).map(Value::Tensor)
}

/// `stack([xs], axis = 0)`: tensors of one type along a new axis (`0..=rank`, negative
/// from the end of the result), as `torch.stack`: each reshaped with a 1 there, then
/// concatenated.
fn stack(c: &mut Checker, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let xs = tensor_list(a, "xs")?;
    let first = xs.first().ok_or_else(|| Diagnostic::error("stack needs at least one tensor", span))?.clone();
    if let Some(x) = xs.iter().find(|x| x.ty != first.ty) {
        return Err(Diagnostic::error(
            format!("stack needs tensors of one type, found {} and {}", first.ty, x.ty),
            span,
        ));
    }
    let axis = norm_axis(a.int_or("axis", 0)?, first.ty.rank() + 1, span)?;
    let mut shape = first.ty.shape.clone();
    shape.insert(axis, Dim::constant(1));
    let parts: Vec<TVal> = xs.iter().map(|x| c.reshape(x, shape.clone(), span)).collect::<R<_>>()?;
    let refs: Vec<&TVal> = parts.iter().collect();
    c.emit(Op::Concat { axis }, &refs, None, span).map(Value::Tensor)
}

/// `pad(x, [lo, hi])` pads the last axis; `[[lo, hi], [lo, hi]]` the last two, in order.
fn pad(c: &mut Checker, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let x = a.tensor("x")?;
    let (v, s) = a.req("padding")?;
    let pairs: Vec<(i64, i64)> = match &v {
        Value::List(items) if items.iter().all(|i| matches!(i, Value::List(_))) => items
            .iter()
            .map(|i| match ints_of(i).as_deref() {
                Some([lo, hi]) => Some((*lo, *hi)),
                _ => None,
            })
            .collect::<Option<_>>(),
        _ => ints_of(&v).filter(|l| l.len() % 2 == 0).map(|l| l.chunks(2).map(|p| (p[0], p[1])).collect()),
    }
    .ok_or_else(|| a.wrong("padding", "[lo, hi] pairs", &v, s))?;
    if pairs.iter().any(|(l, h)| *l < 0 || *h < 0) {
        return Err(Diagnostic::error(format!("padding {v} is negative; use slicing to crop"), s));
    }
    if pairs.len() > x.ty.rank() {
        return Err(Diagnostic::error(
            format!("padding {v} has {} pairs for {} axes of {}", pairs.len(), x.ty.rank(), x.ty),
            s,
        ));
    }
    let mut padding = vec![(0, 0); x.ty.rank() - pairs.len()];
    padding.extend(pairs);
    let mode = a.str_or("mode", "constant")?;
    match mode.as_str() {
        "constant" => {
            let value = a.float_or("value", 0.0)?;
            c.emit(Op::Pad { padding, value }, &[&x], None, span).map(Value::Tensor)
        }
        "reflect" | "replicate" | "circular" => {
            super::resample::pad_mode(c, &x, &padding, &mode, span).map(Value::Tensor)
        }
        other => Err(Diagnostic::error(format!("unknown padding mode \"{other}\""), span)
            .with_help("modes: \"constant\" (with `value`), \"reflect\", \"replicate\", \"circular\"")),
    }
}

fn dtype_arg(a: &mut ArgReader, name: &'static str) -> R<DType> {
    match a.req(name)? {
        (Value::DType(d), _) => Ok(d),
        (v, s) => Err(a.wrong(name, "a dtype (f32, f64, i64, bool, c64)", &v, s)),
    }
}

fn fill(c: &mut Checker, name: &str, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let shape = a.dims("shape")?;
    let value = match name {
        "zeros" => Value::Float(0.0),
        "ones" => Value::Float(1.0),
        _ => a.req("value")?.0,
    };
    let dt = match a.opt("dtype") {
        Some((Value::DType(d), _)) => d,
        Some((v, s)) => return Err(a.wrong("dtype", "a dtype", &v, s)),
        None => DType::F32,
    };
    let k = c.const_tensor(&value, dt, span)?;
    c.broadcast_to(&k, &shape, span).map(Value::Tensor)
}

fn linspace(c: &mut Checker, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let lo = a.float_or("start", 0.0)?;
    let hi = a.float_or("end", 1.0)?;
    let n = a.int("n")?;
    if n < 2 {
        return Err(Diagnostic::error("linspace needs n >= 2", span));
    }
    let ty = TensorType::new(DType::F32, vec![Dim::constant(n)]);
    let i = c.emit(Op::Iota { axis: 0 }, &[], Some(ty), span)?;
    let step = (hi - lo) / (n - 1) as f64;
    let scaled = c.binary_tensor(archc_grammar::ast::BinOp::Mul, Value::Tensor(i), Value::Float(step), span)?;
    c.binary_tensor(archc_grammar::ast::BinOp::Add, Value::Tensor(scaled), Value::Float(lo), span).map(Value::Tensor)
}

/// `scan(cell, xs, init, axis = 1)`: the cell becomes its own TIR function.
fn scan(c: &mut Checker, a: &mut ArgReader) -> R<Value> {
    let span = a.span();
    let (cv, cs) = a.req("cell")?;
    let cell = c.as_layer(cv, cs)?;
    let xs = a.tensor("xs")?;
    let init = a.tensor("init")?;
    let axis = norm_axis(a.int_or("axis", 1)?, xs.ty.rank(), span)?;
    let cell = match cell {
        Layer::Spec { block, args, span: s, tag } => {
            let path = c.anon_path(&super::apply::tagged(&block.def.name.node, &tag));
            Layer::Instance(std::rc::Rc::new(super::value::Instance { block, path, args, span: s }))
        }
        other => other,
    };
    let mut x_t = xs.ty.clone();
    x_t.shape.remove(axis);
    let args = c.b.begin_func("scan_cell", &[("state".into(), init.ty.clone()), ("x".into(), x_t)]);
    let inputs = args.iter().map(|t| (Value::Tensor(t.clone()), span)).collect();
    let r = c.apply_layer(&cell, inputs, span).and_then(|v| c.expect_tensor(v, span, "a scan cell's result"));
    let y = match r {
        Ok(y) if y.ty == init.ty => y,
        Ok(y) => {
            c.b.discard_func();
            return Err(Diagnostic::error(
                format!("the scan cell maps a state {} to {}; it must return the same type", init.ty, y.ty),
                span,
            ));
        }
        Err(d) => {
            c.b.discard_func();
            return Err(d);
        }
    };
    // The cell returns its state as the carry and as the per-step output; the value of
    // `scan` is the stacked output (every state, along `axis`).
    let func = c.b.end_func(&[("state".into(), y.clone()), ("y".into(), y)]);
    let op = Op::Scan { func, axis, carries: 1, xs: 1, reverse: false };
    let mut results = c.b.emit_multi(op, &[&init, &xs], span).map_err(|msg| Diagnostic::error(msg, span))?;
    Ok(Value::Tensor(results.pop().expect("scan gives the final state and the stacked states")))
}

fn init(name: &str, a: &mut ArgReader) -> R<Value> {
    let gain_a = |a: f64| (2.0 / (1.0 + a * a)).sqrt();
    let i = match name {
        "zeros" => Init::Zeros,
        "ones" => Init::Ones,
        "constant" => Init::Constant(a.float_or("value", 0.0)?),
        "normal" => Init::Normal { mean: a.float_or("mean", 0.0)?, std: a.float_or("std", 1.0)? },
        "uniform" => Init::Uniform { low: a.float_or("low", 0.0)?, high: a.float_or("high", 1.0)? },
        "kaiming_uniform" => {
            let fan_in = a.float_or("fan_in", f64::NAN)?;
            let slope = a.float_or("a", 0.0)?;
            let bound = gain_a(slope) * (3.0 / fan_in).sqrt();
            Init::Uniform { low: -bound, high: bound }
        }
        "kaiming_normal" => {
            let fan_in = a.float_or("fan_in", f64::NAN)?;
            Init::Normal { mean: 0.0, std: gain_a(a.float_or("a", 0.0)?) / fan_in.sqrt() }
        }
        "xavier_uniform" => {
            let (fi, fo) = (a.float_or("fan_in", f64::NAN)?, a.float_or("fan_out", f64::NAN)?);
            let bound = a.float_or("gain", 1.0)? * (6.0 / (fi + fo)).sqrt();
            Init::Uniform { low: -bound, high: bound }
        }
        _ => {
            let (fi, fo) = (a.float_or("fan_in", f64::NAN)?, a.float_or("fan_out", f64::NAN)?);
            Init::Normal { mean: 0.0, std: a.float_or("gain", 1.0)? * (2.0 / (fi + fo)).sqrt() }
        }
    };
    let bad = match &i {
        Init::Uniform { low, high } => !low.is_finite() || !high.is_finite() || low > high,
        Init::Normal { mean, std } => !mean.is_finite() || !std.is_finite() || *std < 0.0,
        Init::Constant(v) => !v.is_finite(),
        _ => false,
    };
    if bad {
        return Err(Diagnostic::error(format!("init.{name}: arguments give an invalid distribution {i:?}"), a.span())
            .with_help("check fan_in/fan_out (required) and that bounds are finite"));
    }
    Ok(Value::Init(i))
}

/// Normalises a possibly negative axis.
pub fn norm_axis(axis: i64, rank: usize, span: Span) -> R<usize> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(Diagnostic::error(format!("axis {axis} is out of range for rank {rank}"), span))
    }
}
