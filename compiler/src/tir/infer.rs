//! Shape and dtype rules of every TIR op: the single source of truth, shared by the
//! checker (which builds TIR through [`infer`]) and the verifier.
//!
//! [`infer`] computes an instruction's result types (one per result, in order) from its
//! operand types and the op's attributes; [`infer_one`] is the same for an instruction
//! that must have exactly one result. `declared` holds the instruction's own types. Ops
//! whose result cannot be derived ([`needs_declared`], all single-result) require it and
//! validate it; for every other op the declared types, when given, must equal the
//! derived ones in number and value. Errors are sentences for users, prefixed with the
//! op name: `matmul: inner dims differ: f32[B, 64] @ f32[32, 10] (64 vs 32)`.
//!
//! Dims are compared by canonical equality ([`Dim`]'s `==`), never by guessing values.
//!
//! Ops that take their type from `declared`:
//! - `param`: any type (the verifier checks it against the parameter declaration).
//! - `const`: rank 0; an `i64` value must be integral, a `bool` value 0 or 1.
//! - `iota`: `axis < rank`; dtype `i64`, `f32` or `f64`.
//! - `cast`: same shape as the operand; a `c64` operand casts only to `c64` (`real`/`imag`
//!   take parts).
//! - `reshape`: same dtype, same element count (`numel`, canonically equal).
//! - `broadcast`: same dtype; operand rank <= result rank; aligned at the trailing axis,
//!   each operand dim equals the result dim or is 1.
//! - `rand.uniform`, `rand.normal`: `f32` or `f64`.
//!
//! Dtypes accepted (the result has the operand dtype unless said otherwise):
//! - unary: `not` bool; `neg` f32/f64/i64/c64; `abs` f32/f64/i64; the rest f32/f64.
//! - binary (identical operand types): `add sub mul div` f32/f64/i64/c64; `pow` f32/f64;
//!   `rem max min` and the orderings `lt le gt ge` f32/f64/i64; `eq ne` any; `and or`
//!   bool. Predicates give `bool`.
//! - `reduce.sum` f32/f64/i64/c64, `reduce.mean` f32/f64/c64, `reduce.max/min` and
//!   `argmax` f32/f64/i64 (`argmax` gives i64); `matmul`, `einsum` f32/f64/c64; `conv`,
//!   `pool.*`, `rfft` f32/f64; `scatter_add` any but bool; indices are always i64.
//!
//! Shape rules that need a word:
//! - `einsum`: `"ab,bc->ac"`, ASCII letters only, one or two operands, no letter repeated
//!   within one operand or the output, one size per letter, output letters appear in
//!   the inputs (the others are summed).
//! - `conv`/`pool`: output size `(S + lo + hi - (dilation * (K - 1) + 1)) / stride + 1`
//!   (floor division; pooling uses dilation 1 and K = window); a constant size below 1
//!   is an error; pooling padding is at most half the window on each side (PyTorch's
//!   rule). Every floor division here goes through [`floor_div_norm`], which
//!   moves whole multiples of the divisor out of the numerator's constant term, so
//!   `(N - 2) / 2 + 1` comes out as `N / 2`.
//! - `slice`, per axis: `step > 0`; a negative constant `start` is clamped to 0 (Python's
//!   rule; the interpreter and backends clamp both bounds); the end is clamped to the
//!   size when that is decidable (`size - end` a constant); otherwise (`:modes` of a
//!   symbolic `N / 2 + 1`) the end is trusted, and the interpreter's shape check rejects
//!   a run where the axis is shorter. The length is then `ceil((end' - start) /
//!   step)`, computed as `(end' - start + step - 1) / step`, or `max(0, ..)` when
//!   constant. A symbolic `start` is trusted to be `<= end'`.
//! - `call`, `stack`, `vmap`, `scan` unify the operand types with the callee's argument
//!   types ([`unify`]): callee dims that are a bare symbol bind to the caller's dims,
//!   every other dim must be equal after substitution; the callee's results are
//!   substituted. Every instruction has at least one result.
//! - `call`: the results are the callee's results (at least one).
//! - `stack`: every function returns exactly one value and maps the operand type `T` to
//!   `T`; the result is `T` (an empty list is the identity).
//! - `vmap`: all operands share their axis-0 size `B`; operand `i` is passed with axis 0
//!   kept as size 1 (`keep[i]`) or dropped. The callee returns one value per entry of
//!   `out_keep` (at least one); result `j` (type `r`, after unification) becomes
//!   `[B] + r.shape[1..]` when `out_keep[j]` (then `r.shape[0]` must be 1), else
//!   `[B] + r.shape`.
//! - `scan {carries: C, xs: X}`: operands are `C` carries, `X >= 1` sequences, then any
//!   number of invariants. Every sequence has `axis < rank` and one length `T` along
//!   `axis`; `x_t` is a sequence with `axis` removed. The callee takes `(carry types,
//!   x_t types, invariant types)` and returns at least `C` values, the first `C` equal
//!   to the carry types; each further value `y` needs `axis <= rank(y)`. The results are
//!   the carry types, then each `y` as `y.shape[..axis] + [T] + y.shape[axis..]`; there
//!   must be at least one. `reverse` does not affect types.

use super::dim::Dim;
use super::ops::{BinaryOp, Op, ReduceOp, UnaryOp};
use super::program::Program;
use super::types::{DType, TensorType};
use std::collections::{BTreeMap, HashMap};

/// The signatures of the functions an instruction may call.
pub trait FuncSigs {
    /// Argument types and result types of function `name`; `None` when unknown.
    fn sig(&self, name: &str) -> Option<(Vec<TensorType>, Vec<TensorType>)>;
}

impl FuncSigs for Program {
    /// `None` also when a result of the function is undefined (the verifier reports it).
    fn sig(&self, name: &str) -> Option<(Vec<TensorType>, Vec<TensorType>)> {
        let f = self.func(name)?;
        let args = f.args.iter().map(|(_, t)| t.clone()).collect();
        let results = f.results.iter().map(|r| f.type_of(*r).cloned()).collect::<Option<Vec<_>>>()?;
        Some((args, results))
    }
}

type Res = Result<TensorType, String>;
type Multi = Result<Vec<TensorType>, String>;
type Check = Result<(), String>;

use DType::{Bool, C64, F32, F64, I64};
const BOOL: &[DType] = &[Bool];
const FLOAT: &[DType] = &[F32, F64];
const REAL: &[DType] = &[F32, F64, I64];
const NUMERIC: &[DType] = &[F32, F64, I64, C64];
const INEXACT: &[DType] = &[F32, F64, C64];
const ANY: &[DType] = &[F32, F64, I64, Bool, C64];

/// The result types of `op` applied to operands of types `args` (see the module docs),
/// one per result, in order; `declared` are the instruction's own result types.
pub fn infer(op: &Op, args: &[&TensorType], declared: Option<&[TensorType]>, funcs: &dyn FuncSigs) -> Multi {
    infer_op(op, args, declared, funcs).map_err(|e| format!("{}: {e}", op.name()))
}

/// [`infer`] for an instruction with exactly one result (of type `declared`, when given).
pub fn infer_one(op: &Op, args: &[&TensorType], declared: Option<&TensorType>, funcs: &dyn FuncSigs) -> Res {
    let mut ts = infer(op, args, declared.map(std::slice::from_ref), funcs)?;
    match ts.len() {
        1 => Ok(ts.pop().expect("one type")),
        n => Err(format!("{}: gives {n} results where one is expected", op.name())),
    }
}

/// Whether the op's result type comes from the instruction (`declared`) rather than
/// from its operands (these ops all have one result).
pub fn needs_declared(op: &Op) -> bool {
    matches!(
        op,
        Op::Param(_)
            | Op::Const(_)
            | Op::Iota { .. }
            | Op::Cast
            | Op::Reshape
            | Op::Broadcast
            | Op::RandUniform { .. }
            | Op::RandNormal { .. }
    )
}

/// The number of operands the op takes: `(min, max)`, `max == usize::MAX` when variadic.
/// `call` takes what its callee takes (checked by [`infer`]); `scan` takes its carries
/// and sequences, then any number of invariants.
pub fn arity(op: &Op) -> (usize, usize) {
    match op {
        Op::Param(_) | Op::Const(_) | Op::Iota { .. } | Op::RandUniform { .. } | Op::RandNormal { .. } => (0, 0),
        Op::Binary(_) | Op::MatMul | Op::Conv { .. } | Op::Gather { .. } | Op::Complex => (2, 2),
        Op::Select | Op::ScatterAdd { .. } => (3, 3),
        Op::Einsum(_) => (1, 2),
        Op::Concat { .. } => (1, usize::MAX),
        Op::Call(_) => (0, usize::MAX),
        Op::Vmap { keep, .. } => (keep.len(), keep.len()),
        Op::Scan { carries, xs, .. } => (carries.saturating_add(*xs), usize::MAX),
        _ => (1, 1),
    }
}

fn infer_op(op: &Op, args: &[&TensorType], declared: Option<&[TensorType]>, funcs: &dyn FuncSigs) -> Multi {
    check_arity(op, args.len())?;
    if needs_declared(op) {
        let d = match declared {
            None => return Err("needs a declared result type".into()),
            Some([d]) => d,
            Some(ds) => return Err(format!("has one result, but {} are declared", count(ds.len(), "type"))),
        };
        check_declared(op, args, d)?;
        return Ok(vec![d.clone()]);
    }
    let ts = derive(op, args, declared.and_then(|d| d.first()), funcs)?;
    let Some(ds) = declared else { return Ok(ts) };
    if ds.len() != ts.len() {
        return Err(format!("{} declared, but the op gives {}", count(ds.len(), "result type"), ts.len()));
    }
    for (i, (d, t)) in ds.iter().zip(&ts).enumerate() {
        if d != t {
            let which = if ts.len() == 1 { String::new() } else { format!(" of result {i}") };
            return Err(format!("declared type {d}{which} differs from the inferred type {t}"));
        }
    }
    Ok(ts)
}

/// `1 type`, `2 types`.
fn count(n: usize, noun: &str) -> String {
    format!("{n} {noun}{}", if n == 1 { "" } else { "s" })
}

fn check_arity(op: &Op, n: usize) -> Check {
    let (lo, hi) = arity(op);
    let plural = |k: usize| if k == 1 { "operand" } else { "operands" };
    match (n < lo || n > hi, lo == hi, hi == usize::MAX) {
        (false, _, _) => Ok(()),
        (true, true, _) => Err(format!("expected {lo} {}, got {n}", plural(lo))),
        (true, false, true) => Err(format!("expected at least {lo} {}, got {n}", plural(lo))),
        (true, false, false) => Err(format!("expected {lo} to {hi} operands, got {n}")),
    }
}

fn derive(op: &Op, a: &[&TensorType], declared: Option<&TensorType>, funcs: &dyn FuncSigs) -> Multi {
    match op {
        Op::Call(f) => call(f, a, funcs),
        Op::Vmap { func, keep, out_keep } => vmap(func, keep, out_keep, a, funcs),
        Op::Scan { func, axis, carries, xs, .. } => scan(func, *axis, *carries, *xs, a, funcs),
        _ => derive_one(op, a, declared, funcs).map(|t| vec![t]),
    }
}

/// The type of a single-result op.
fn derive_one(op: &Op, a: &[&TensorType], declared: Option<&TensorType>, funcs: &dyn FuncSigs) -> Res {
    match op {
        Op::Unary(u) => unary(*u, a[0]),
        Op::Binary(b) => binary(*b, a[0], a[1]),
        Op::Select => select(a[0], a[1], a[2]),
        Op::Reduce { op, axes, keepdim } => reduce(*op, axes, *keepdim, a[0]),
        Op::ArgMax { axis, keepdim } => argmax(*axis, *keepdim, a[0]),
        Op::ArgSort { axis, .. } => argsort(*axis, a[0]),
        Op::StopGradient => Ok(a[0].clone()),
        Op::MatMul => matmul(a[0], a[1]),
        Op::Einsum(spec) => einsum(spec, a),
        Op::Conv { stride, padding, dilation, groups } => conv(a[0], a[1], stride, padding, dilation, *groups),
        Op::Pool { window, stride, padding, .. } => pool(a[0], window, stride, padding),
        Op::Permute(perm) => permute(perm, a[0]),
        Op::Slice { start, end, step } => slice(a[0], start, end, step),
        Op::Concat { axis } => concat(*axis, a),
        Op::Pad { padding, value } => pad(a[0], padding, *value),
        Op::Gather { axis } => gather(*axis, a[0], a[1]),
        Op::ScatterAdd { axis } => scatter_add(*axis, a[0], a[1], a[2]),
        Op::Rfft { axis } => rfft(*axis, a[0]),
        Op::Irfft { axis, n } => irfft(*axis, n, a[0], declared),
        Op::Real | Op::Imag => complex_part(a[0]),
        Op::Complex => complex(a[0], a[1]),
        Op::Stack(fs) => stack(fs, a[0], funcs),
        Op::Call(_) | Op::Vmap { .. } | Op::Scan { .. } => unreachable!("multi-result ops are derived by derive"),
        Op::Param(_)
        | Op::Const(_)
        | Op::Iota { .. }
        | Op::Cast
        | Op::Reshape
        | Op::Broadcast
        | Op::RandUniform { .. }
        | Op::RandNormal { .. } => unreachable!("declared-type ops are checked by check_declared"),
    }
}

// ---------------------------------------------------------------------------------------
// Shared checks

fn dtype_list(ds: &[DType]) -> String {
    let names: Vec<&str> = ds.iter().map(|d| d.name()).collect();
    match names.split_last() {
        Some((last, [])) => last.to_string(),
        Some((last, rest)) => format!("{} or {last}", rest.join(", ")),
        None => "nothing".into(),
    }
}

fn dtype_in(t: &TensorType, allowed: &[DType], role: &str) -> Check {
    if allowed.contains(&t.dtype) {
        Ok(())
    } else {
        Err(format!("{role} must be {}, got {t}", dtype_list(allowed)))
    }
}

fn same_dtype(x: &TensorType, y: &TensorType) -> Check {
    if x.dtype == y.dtype {
        Ok(())
    } else {
        Err(format!("operand dtypes differ: {x} vs {y}"))
    }
}

fn same_type(x: &TensorType, y: &TensorType) -> Check {
    same_dtype(x, y)?;
    if x.shape == y.shape {
        Ok(())
    } else {
        Err(format!("operand shapes differ: {x} vs {y}"))
    }
}

fn check_axis(axis: usize, t: &TensorType, role: &str) -> Check {
    if axis < t.rank() {
        Ok(())
    } else {
        Err(format!("axis {axis} is out of range for {role} {t} (rank {})", t.rank()))
    }
}

/// Whether `value` is representable in `dtype` (for `const` and `pad`).
fn scalar_fits(value: f64, dtype: DType) -> Check {
    match dtype {
        I64 if !value.is_finite() || value.fract() != 0.0 => Err(format!("value {value:?} is not an i64")),
        Bool if value != 0.0 && value != 1.0 => Err(format!("value {value:?} is not a bool (0 or 1)")),
        _ => Ok(()),
    }
}

fn positive(what: &str, xs: &[i64]) -> Check {
    match xs.iter().find(|x| **x < 1) {
        Some(x) => Err(format!("{what} must be positive, got {x} in {xs:?}")),
        None => Ok(()),
    }
}

fn non_negative(padding: &[(i64, i64)]) -> Check {
    match padding.iter().find(|(lo, hi)| *lo < 0 || *hi < 0) {
        Some((lo, hi)) => Err(format!("padding must be non-negative, got ({lo}, {hi})")),
        None => Ok(()),
    }
}

/// Pooling padding of at most half the window on each side (PyTorch's rule): more would
/// make windows of nothing but padding.
pub fn at_most_half_window(window: &[i64], padding: &[(i64, i64)]) -> Check {
    for (i, (&w, &(lo, hi))) in window.iter().zip(padding).enumerate() {
        if lo.max(hi) > w / 2 {
            return Err(format!(
                "pooling padding ({lo}, {hi}) on pooled axis {i} exceeds half the window {w} (at most {})",
                w / 2
            ));
        }
    }
    Ok(())
}

/// A dim that is exactly one symbol (`N`), as opposed to `2 * N` or `N / 2`.
pub fn bare_symbol(d: &Dim) -> Option<String> {
    match d.symbols().as_slice() {
        [s] if *d == Dim::sym(s.clone()) => Some(s.clone()),
        _ => None,
    }
}

/// `d / den` (floor, `den > 0`) with the constant term of the numerator reduced into
/// `[0, den)` first, so that equal quantities get one form: `(N - 2) / 2 + 1 == N / 2`,
/// `(N - 1) / 2 + 1 == (N + 1) / 2`.
pub fn floor_div_norm(d: &Dim, den: i64) -> Dim {
    assert!(den > 0, "floor_div_norm by {den}");
    let c = d.constant_term();
    let num = d.sub(&Dim::constant(c - c.rem_euclid(den)));
    num.floor_div(den).expect("den is positive").add(&Dim::constant(c.div_euclid(den)))
}

// ---------------------------------------------------------------------------------------
// Ops whose type is declared

fn check_declared(op: &Op, a: &[&TensorType], d: &TensorType) -> Check {
    match op {
        Op::Param(_) => Ok(()),
        Op::Const(v) => {
            if d.rank() != 0 {
                return Err(format!("a constant is a scalar, but the declared type is {d}"));
            }
            scalar_fits(*v, d.dtype)
        }
        Op::Iota { axis } => {
            check_axis(*axis, d, "result")?;
            dtype_in(d, &[I64, F32, F64], "result")
        }
        Op::Cast => cast(a[0], d),
        Op::Reshape => reshape(a[0], d),
        Op::Broadcast => broadcast(a[0], d),
        Op::RandUniform { .. } | Op::RandNormal { .. } => dtype_in(d, FLOAT, "result"),
        _ => unreachable!("only declared-type ops reach check_declared"),
    }
}

fn cast(x: &TensorType, d: &TensorType) -> Check {
    if x.shape != d.shape {
        return Err(format!("cannot change the shape: {x} to {d}"));
    }
    if x.dtype == C64 && d.dtype != C64 {
        return Err(format!("cannot cast complex {x} to {d}; use real or imag"));
    }
    Ok(())
}

fn reshape(x: &TensorType, d: &TensorType) -> Check {
    same_dtype(x, d)?;
    let (nx, nd) = (x.numel(), d.numel());
    if nx == nd {
        Ok(())
    } else {
        Err(format!("element counts differ: {x} has {nx}, {d} has {nd}"))
    }
}

fn broadcast(x: &TensorType, d: &TensorType) -> Check {
    same_dtype(x, d)?;
    if x.rank() > d.rank() {
        return Err(format!("cannot broadcast {x} to {d}, which has a lower rank"));
    }
    let offset = d.rank() - x.rank();
    for (i, xd) in x.shape.iter().enumerate() {
        let rd = &d.shape[offset + i];
        if xd != rd && xd.as_const() != Some(1) {
            return Err(format!("cannot broadcast {x} to {d}: axis {i} has size {xd}, not 1 or {rd}"));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Elementwise

fn unary_dtypes(u: UnaryOp) -> &'static [DType] {
    match u {
        UnaryOp::Not => BOOL,
        UnaryOp::Neg => NUMERIC,
        UnaryOp::Abs | UnaryOp::Sign | UnaryOp::Relu | UnaryOp::Floor => REAL,
        _ => FLOAT,
    }
}

fn unary(u: UnaryOp, x: &TensorType) -> Res {
    dtype_in(x, unary_dtypes(u), "operand")?;
    Ok(x.clone())
}

fn binary_dtypes(b: BinaryOp) -> &'static [DType] {
    use BinaryOp::*;
    match b {
        Add | Sub | Mul | Div => NUMERIC,
        Pow => FLOAT,
        Rem | Max | Min | Lt | Le | Gt | Ge => REAL,
        Eq | Ne => ANY,
        And | Or => BOOL,
    }
}

fn binary(b: BinaryOp, x: &TensorType, y: &TensorType) -> Res {
    same_type(x, y)?;
    dtype_in(x, binary_dtypes(b), "operands")?;
    Ok(if b.is_predicate() { x.with_dtype(Bool) } else { x.clone() })
}

fn select(c: &TensorType, x: &TensorType, y: &TensorType) -> Res {
    dtype_in(c, BOOL, "condition")?;
    same_type(x, y)?;
    if c.shape != x.shape {
        return Err(format!("condition {c} and values {x} differ in shape"));
    }
    Ok(x.clone())
}

// ---------------------------------------------------------------------------------------
// Reductions and contractions

fn reduced_shape(x: &TensorType, axes: &[usize], keepdim: bool) -> Result<Vec<Dim>, String> {
    for (i, a) in axes.iter().enumerate() {
        check_axis(*a, x, "operand")?;
        if axes[..i].contains(a) {
            return Err(format!("axis {a} is listed twice in {axes:?}"));
        }
    }
    let keep = |(i, d): (usize, &Dim)| match axes.contains(&i) {
        true => keepdim.then(|| Dim::constant(1)),
        false => Some(d.clone()),
    };
    Ok(x.shape.iter().enumerate().filter_map(keep).collect())
}

fn reduce(op: ReduceOp, axes: &[usize], keepdim: bool, x: &TensorType) -> Res {
    let allowed = match op {
        ReduceOp::Sum => NUMERIC,
        ReduceOp::Mean => INEXACT,
        ReduceOp::Max | ReduceOp::Min => REAL,
    };
    dtype_in(x, allowed, "operand")?;
    Ok(TensorType::new(x.dtype, reduced_shape(x, axes, keepdim)?))
}

fn argsort(axis: usize, x: &TensorType) -> Res {
    dtype_in(x, REAL, "operand")?;
    if axis >= x.rank() {
        return Err(format!("axis {axis} out of range for {x}"));
    }
    Ok(x.with_dtype(DType::I64))
}

fn argmax(axis: usize, keepdim: bool, x: &TensorType) -> Res {
    dtype_in(x, REAL, "operand")?;
    Ok(TensorType::new(I64, reduced_shape(x, &[axis], keepdim)?))
}

fn matmul(x: &TensorType, w: &TensorType) -> Res {
    same_dtype(x, w)?;
    dtype_in(x, INEXACT, "operands")?;
    let r = x.rank();
    if r < 2 || w.rank() < 2 {
        return Err(format!("operands need rank 2 or more: {x} @ {w}"));
    }
    if w.rank() != r || x.shape[..r - 2] != w.shape[..r - 2] {
        return Err(format!("batch dims differ: {x} @ {w}"));
    }
    let (k1, k2) = (&x.shape[r - 1], &w.shape[r - 2]);
    if k1 != k2 {
        return Err(format!("inner dims differ: {x} @ {w} ({k1} vs {k2})"));
    }
    let mut shape = x.shape[..r - 1].to_vec();
    shape.push(w.shape[r - 1].clone());
    Ok(TensorType::new(x.dtype, shape))
}

/// Splits an einsum spec into operand subscripts and output subscripts, checking the
/// rules in the module docs that do not depend on operand types.
pub fn parse_einsum(spec: &str) -> Result<(Vec<Vec<char>>, Vec<char>), String> {
    let (lhs, out) = spec.split_once("->").ok_or_else(|| format!("spec `{spec}` has no `->`"))?;
    let letters = |s: &str| -> Result<Vec<char>, String> {
        let cs: Vec<char> = s.trim().chars().collect();
        if let Some(c) = cs.iter().find(|c| !c.is_ascii_alphabetic()) {
            return Err(format!("spec `{spec}`: `{c}` is not a letter"));
        }
        if let Some((_, c)) = cs.iter().enumerate().find(|(i, c)| cs[..*i].contains(c)) {
            return Err(format!("spec `{spec}`: `{c}` repeats within one operand"));
        }
        Ok(cs)
    };
    let ins = lhs.split(',').map(letters).collect::<Result<Vec<_>, _>>()?;
    if ins.len() > 2 {
        return Err(format!("spec `{spec}` has {} operands; at most 2 are supported", ins.len()));
    }
    let out = letters(out)?;
    if let Some(c) = out.iter().find(|c| !ins.iter().any(|i| i.contains(c))) {
        return Err(format!("spec `{spec}`: output letter `{c}` is not in any input"));
    }
    Ok((ins, out))
}

fn einsum(spec: &str, a: &[&TensorType]) -> Res {
    let (ins, out) = parse_einsum(spec)?;
    if ins.len() != a.len() {
        return Err(format!("spec `{spec}` has {} inputs, but {} operands are given", ins.len(), a.len()));
    }
    for t in &a[1..] {
        same_dtype(a[0], t)?;
    }
    dtype_in(a[0], INEXACT, "operands")?;
    let mut sizes: BTreeMap<char, Dim> = BTreeMap::new();
    for (sub, t) in ins.iter().zip(a) {
        if sub.len() != t.rank() {
            return Err(format!("subscripts `{}` do not fit {t}", sub.iter().collect::<String>()));
        }
        for (c, d) in sub.iter().zip(&t.shape) {
            match sizes.get(c) {
                Some(prev) if prev != d => return Err(format!("letter `{c}` has size {prev} and {d}")),
                _ => sizes.insert(*c, d.clone()),
            };
        }
    }
    Ok(TensorType::new(a[0].dtype, out.iter().map(|c| sizes[c].clone()).collect()))
}

// ---------------------------------------------------------------------------------------
// Windows: convolution and pooling

/// `(size + lo + hi - window) / stride + 1`, where `window` is the effective extent.
fn window_out(axis: usize, size: &Dim, pad: (i64, i64), window: &Dim, stride: i64) -> Result<Dim, String> {
    let span = size.add(&Dim::constant(pad.0 + pad.1)).sub(window);
    let out = floor_div_norm(&span, stride).add(&Dim::constant(1));
    match out.as_const() {
        Some(n) if n < 1 => Err(format!(
            "spatial axis {axis}: window {window} does not fit size {size} with padding ({}, {})",
            pad.0, pad.1
        )),
        _ => Ok(out),
    }
}

fn conv(x: &TensorType, w: &TensorType, stride: &[i64], padding: &[(i64, i64)], dilation: &[i64], groups: i64) -> Res {
    same_dtype(x, w)?;
    dtype_in(x, FLOAT, "operands")?;
    let n = stride.len();
    if n == 0 || padding.len() != n || dilation.len() != n {
        return Err(format!(
            "stride, padding and dilation need one entry per spatial axis, got {}, {} and {}",
            n,
            padding.len(),
            dilation.len()
        ));
    }
    if x.rank() != n + 2 || w.rank() != n + 2 {
        return Err(format!("{n} spatial axes need input and weight of rank {}, got {x} and {w}", n + 2));
    }
    positive("stride", stride)?;
    positive("dilation", dilation)?;
    non_negative(padding)?;
    conv_channels(x, w, groups)?;
    let mut shape = vec![x.shape[0].clone(), w.shape[0].clone()];
    for i in 0..n {
        let k = &w.shape[i + 2];
        let extent = k.sub(&Dim::constant(1)).mul(&Dim::constant(dilation[i])).add(&Dim::constant(1));
        shape.push(window_out(i, &x.shape[i + 2], padding[i], &extent, stride[i])?);
    }
    Ok(TensorType::new(x.dtype, shape))
}

fn conv_channels(x: &TensorType, w: &TensorType, groups: i64) -> Check {
    if groups < 1 {
        return Err(format!("groups must be positive, got {groups}"));
    }
    let (cin, cout) = (&x.shape[1], &w.shape[0]);
    if w.shape[1].mul(&Dim::constant(groups)) != *cin {
        return Err(format!(
            "input channels differ: {x} has {cin}, weight {w} expects {} x {groups} groups",
            w.shape[1]
        ));
    }
    if cout.exact_div(groups).is_none() {
        return Err(format!("output channels {cout} are not divisible by groups={groups}"));
    }
    Ok(())
}

fn pool(x: &TensorType, window: &[i64], stride: &[i64], padding: &[(i64, i64)]) -> Res {
    dtype_in(x, FLOAT, "operand")?;
    let n = window.len();
    if n == 0 || stride.len() != n || padding.len() != n {
        return Err(format!(
            "window, stride and padding need one entry per pooled axis, got {}, {} and {}",
            n,
            stride.len(),
            padding.len()
        ));
    }
    if x.rank() < n {
        return Err(format!("a {n}-d window needs rank {n} or more, got {x}"));
    }
    positive("window", window)?;
    positive("stride", stride)?;
    non_negative(padding)?;
    at_most_half_window(window, padding)?;
    let lead = x.rank() - n;
    let mut shape = x.shape[..lead].to_vec();
    for i in 0..n {
        shape.push(window_out(i, &x.shape[lead + i], padding[i], &Dim::constant(window[i]), stride[i])?);
    }
    Ok(TensorType::new(x.dtype, shape))
}

// ---------------------------------------------------------------------------------------
// Data movement

fn permute(perm: &[usize], x: &TensorType) -> Res {
    let r = x.rank();
    let valid = perm.len() == r && (0..r).all(|i| perm.contains(&i));
    if !valid {
        return Err(format!("{perm:?} is not a permutation of the {r} axes of {x}"));
    }
    Ok(TensorType::new(x.dtype, perm.iter().map(|&p| x.shape[p].clone()).collect()))
}

fn slice(x: &TensorType, start: &[Dim], end: &[Dim], step: &[i64]) -> Res {
    let r = x.rank();
    if start.len() != r || end.len() != r || step.len() != r {
        return Err(format!(
            "start, end and step need one entry per axis of {x}, got {}, {} and {}",
            start.len(),
            end.len(),
            step.len()
        ));
    }
    let lens = (0..r).map(|i| slice_len(i, &x.shape[i], &start[i], &end[i], step[i]));
    Ok(TensorType::new(x.dtype, lens.collect::<Result<_, _>>()?))
}

fn slice_len(axis: usize, size: &Dim, start: &Dim, end: &Dim, step: i64) -> Result<Dim, String> {
    if step < 1 {
        return Err(format!("axis {axis}: step must be positive, got {step}"));
    }
    // A start before the axis is clamped to it, as an end past it is (Python's rule).
    let start = match start.as_const() {
        Some(s) if s < 0 => Dim::constant(0),
        _ => start.clone(),
    };
    let end = match size.sub(end).as_const() {
        Some(d) if d >= 0 => end.clone(),
        Some(_) => size.clone(),
        // A symbolic size with an explicit end (`x[..., :modes]` of `N / 2 + 1` values): the
        // end is trusted here and checked at run time, where a short axis is an error.
        None => end.clone(),
    };
    let span = end.sub(&start);
    if let Some(c) = span.as_const() {
        return Ok(Dim::constant(if c <= 0 { 0 } else { (c + step - 1) / step }));
    }
    Ok(floor_div_norm(&span.add(&Dim::constant(step - 1)), step))
}

fn concat(axis: usize, a: &[&TensorType]) -> Res {
    let first = a[0];
    check_axis(axis, first, "operand")?;
    let mut total = first.shape[axis].clone();
    for (k, t) in a.iter().enumerate().skip(1) {
        same_dtype(first, t)?;
        let fits = t.rank() == first.rank()
            && t.shape.iter().zip(&first.shape).enumerate().all(|(i, (d, e))| i == axis || d == e);
        if !fits {
            return Err(format!("operand {k} ({t}) does not match {first} outside axis {axis}"));
        }
        total = total.add(&t.shape[axis]);
    }
    let mut shape = first.shape.clone();
    shape[axis] = total;
    Ok(TensorType::new(first.dtype, shape))
}

fn pad(x: &TensorType, padding: &[(i64, i64)], value: f64) -> Res {
    if padding.len() != x.rank() {
        return Err(format!("padding needs one (lo, hi) pair per axis of {x}, got {}", padding.len()));
    }
    non_negative(padding)?;
    scalar_fits(value, x.dtype)?;
    let shape = x.shape.iter().zip(padding).map(|(d, (lo, hi))| d.add(&Dim::constant(lo + hi)));
    Ok(TensorType::new(x.dtype, shape.collect()))
}

fn gathered_shape(axis: usize, x: &TensorType, idx: &TensorType) -> Result<Vec<Dim>, String> {
    check_axis(axis, x, "operand")?;
    dtype_in(idx, &[I64], "indices")?;
    let mut shape = x.shape[..axis].to_vec();
    shape.extend(idx.shape.iter().cloned());
    shape.extend(x.shape[axis + 1..].iter().cloned());
    Ok(shape)
}

fn gather(axis: usize, x: &TensorType, idx: &TensorType) -> Res {
    Ok(TensorType::new(x.dtype, gathered_shape(axis, x, idx)?))
}

fn scatter_add(axis: usize, x: &TensorType, idx: &TensorType, src: &TensorType) -> Res {
    dtype_in(x, NUMERIC, "operand")?;
    let expected = TensorType::new(x.dtype, gathered_shape(axis, x, idx)?);
    if *src != expected {
        return Err(format!("source {src} does not fit: {x} indexed by {idx} along axis {axis} needs {expected}"));
    }
    Ok(x.clone())
}

// ---------------------------------------------------------------------------------------
// Spectral and complex

fn rfft(axis: usize, x: &TensorType) -> Res {
    dtype_in(x, FLOAT, "operand")?;
    check_axis(axis, x, "operand")?;
    let mut shape = x.shape.clone();
    shape[axis] = half_spectrum(&x.shape[axis]);
    Ok(TensorType::new(C64, shape))
}

fn half_spectrum(n: &Dim) -> Dim {
    floor_div_norm(n, 2).add(&Dim::constant(1))
}

fn irfft(axis: usize, n: &Dim, x: &TensorType, declared: Option<&TensorType>) -> Res {
    dtype_in(x, &[C64], "operand")?;
    check_axis(axis, x, "operand")?;
    if let Some(c) = n.as_const().filter(|c| *c < 1) {
        return Err(format!("n must be positive, got {c}"));
    }
    let expected = half_spectrum(n);
    if x.shape[axis] != expected {
        return Err(format!("axis {axis} of {x} has size {}, but n={n} needs {expected}", x.shape[axis]));
    }
    let dtype = if declared.is_some_and(|d| d.dtype == F64) { F64 } else { F32 };
    let mut shape = x.shape.clone();
    shape[axis] = n.clone();
    Ok(TensorType::new(dtype, shape))
}

fn complex_part(z: &TensorType) -> Res {
    dtype_in(z, &[C64], "operand")?;
    Ok(z.with_dtype(F32))
}

fn complex(re: &TensorType, im: &TensorType) -> Res {
    dtype_in(re, &[F32], "real part")?;
    dtype_in(im, &[F32], "imaginary part")?;
    same_type(re, im)?;
    Ok(re.with_dtype(C64))
}

// ---------------------------------------------------------------------------------------
// Function application

/// Binds the callee's symbolic dims to the caller's: a callee dim that is a bare symbol
/// binds it (consistently across all arguments); every callee type must then equal the
/// actual type after substitution.
pub fn unify(params: &[TensorType], actual: &[TensorType]) -> Result<HashMap<String, Dim>, String> {
    if params.len() != actual.len() {
        let plural = if params.len() == 1 { "" } else { "s" };
        return Err(format!("takes {} argument{plural}, got {}", params.len(), actual.len()));
    }
    let mut env: HashMap<String, Dim> = HashMap::new();
    for (i, (p, a)) in params.iter().zip(actual).enumerate() {
        if p.dtype != a.dtype || p.rank() != a.rank() {
            return Err(format!("argument {i}: expected {p}, got {a}"));
        }
        for (pd, ad) in p.shape.iter().zip(&a.shape) {
            let Some(s) = bare_symbol(pd) else { continue };
            match env.get(&s) {
                Some(b) if b != ad => return Err(format!("argument {i}: {s} is {b} in one place and {ad} in another")),
                _ => env.insert(s, ad.clone()),
            };
        }
    }
    for (i, (p, a)) in params.iter().zip(actual).enumerate() {
        let ps = subst_type(p, &env);
        if ps != *a {
            return Err(format!("argument {i}: expected {ps}, got {a}"));
        }
    }
    Ok(env)
}

/// `t` with symbols replaced by `env`.
pub fn subst_type(t: &TensorType, env: &HashMap<String, Dim>) -> TensorType {
    TensorType::new(t.dtype, t.shape.iter().map(|d| d.subst(env)).collect())
}

/// The result types of applying `f` to arguments of types `actual`.
fn apply(f: &str, actual: &[TensorType], funcs: &dyn FuncSigs) -> Multi {
    let (params, results) = funcs.sig(f).ok_or_else(|| format!("unknown function @{f}"))?;
    let env = unify(&params, actual).map_err(|e| format!("@{f} {e}"))?;
    Ok(results.iter().map(|r| subst_type(r, &env)).collect())
}

fn returns(f: &str, n: usize) -> String {
    format!("@{f} returns {}", count(n, "value"))
}

fn call(f: &str, a: &[&TensorType], funcs: &dyn FuncSigs) -> Multi {
    let actual: Vec<TensorType> = a.iter().map(|t| (*t).clone()).collect();
    let rs = apply(f, &actual, funcs)?;
    if rs.is_empty() {
        return Err(format!("{}; an instruction needs at least one result", returns(f, 0)));
    }
    Ok(rs)
}

fn stack(fs: &[String], x: &TensorType, funcs: &dyn FuncSigs) -> Res {
    for f in fs {
        let rs = apply(f, std::slice::from_ref(x), funcs)?;
        let [r] = rs.as_slice() else {
            return Err(format!("{}; every stacked function must return exactly one", returns(f, rs.len())));
        };
        if r != x {
            return Err(format!("@{f} maps {x} to {r}; every stacked function must keep the type"));
        }
    }
    Ok(x.clone())
}

fn vmap(f: &str, keep: &[bool], out_keep: &[bool], a: &[&TensorType], funcs: &dyn FuncSigs) -> Multi {
    let Some(first) = a.first() else { return Err("needs at least one operand".into()) };
    let batch = first.shape.first().ok_or_else(|| format!("operand 0 ({first}) has no axis 0 to map over"))?;
    let mut passed = Vec::new();
    for (i, (t, k)) in a.iter().zip(keep).enumerate() {
        if t.shape.first() != Some(batch) {
            return Err(format!("operand {i} ({t}) does not have axis 0 of size {batch}"));
        }
        let mut shape = t.shape[1..].to_vec();
        if *k {
            shape.insert(0, Dim::constant(1));
        }
        passed.push(TensorType::new(t.dtype, shape));
    }
    let rs = apply(f, &passed, funcs)?;
    if rs.len() != out_keep.len() {
        return Err(format!("{}, but out_keep has {} entries", returns(f, rs.len()), out_keep.len()));
    }
    if rs.is_empty() {
        return Err(format!("{}; an instruction needs at least one result", returns(f, 0)));
    }
    let mut out = Vec::new();
    for (j, (r, k)) in rs.iter().zip(out_keep).enumerate() {
        let mut shape = r.shape.clone();
        match k {
            true if shape.first().and_then(|d| d.as_const()) != Some(1) => {
                return Err(format!("@{f} returns {r} as result {j}; a kept result must have axis 0 of size 1"));
            }
            true => shape[0] = batch.clone(),
            false => shape.insert(0, batch.clone()),
        }
        out.push(TensorType::new(r.dtype, shape));
    }
    Ok(out)
}

fn scan(f: &str, axis: usize, carries: usize, nxs: usize, a: &[&TensorType], funcs: &dyn FuncSigs) -> Multi {
    if nxs == 0 {
        return Err("needs at least one sequence to scan over (xs=0)".into());
    }
    let (inits, rest) = a.split_at(carries);
    let (xs, invariants) = rest.split_at(nxs);
    let mut passed: Vec<TensorType> = inits.iter().map(|t| (*t).clone()).collect();
    let steps = xs[0]
        .shape
        .get(axis)
        .ok_or_else(|| format!("axis {axis} is out of range for the sequence {} (rank {})", xs[0], xs[0].rank()))?;
    for x in xs {
        if axis >= x.rank() {
            return Err(format!("axis {axis} is out of range for the sequence {x} (rank {})", x.rank()));
        }
        if x.shape[axis] != *steps {
            return Err(format!(
                "sequences differ in length along axis {axis}: {} has {steps} steps, {x} has {}",
                xs[0], x.shape[axis]
            ));
        }
        let mut x_t = (*x).clone();
        x_t.shape.remove(axis);
        passed.push(x_t);
    }
    passed.extend(invariants.iter().map(|t| (*t).clone()));
    let rs = apply(f, &passed, funcs)?;
    if rs.len() < carries {
        let noun = if carries == 1 { "carry" } else { "carries" };
        return Err(format!("{}, fewer than the {carries} {noun}", returns(f, rs.len())));
    }
    for (i, (r, c)) in rs.iter().zip(inits).enumerate() {
        if r != *c {
            return Err(format!("@{f} maps carry {i} of type {c} to {r}; a carry must keep its type"));
        }
    }
    let mut out: Vec<TensorType> = rs[..carries].to_vec();
    for (j, y) in rs[carries..].iter().enumerate() {
        if axis > y.rank() {
            return Err(format!(
                "axis {axis} is out of range for the per-step output {j} of @{f}, {y} (rank {})",
                y.rank()
            ));
        }
        let mut shape = y.shape.clone();
        shape.insert(axis, steps.clone());
        out.push(TensorType::new(y.dtype, shape));
    }
    if out.is_empty() {
        return Err(format!("{} and there are no carries; an instruction needs at least one result", returns(f, 0)));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tir::ops::PoolOp;
    use crate::tir::testutil::ty;

    /// Function signatures written as text: `("f", &["f32[N, 16]"], &["f32[N]"])`.
    struct Sigs(Vec<(&'static str, Vec<TensorType>, Vec<TensorType>)>);

    impl FuncSigs for Sigs {
        fn sig(&self, name: &str) -> Option<(Vec<TensorType>, Vec<TensorType>)> {
            self.0.iter().find(|(n, _, _)| *n == name).map(|(_, a, r)| (a.clone(), r.clone()))
        }
    }

    fn sigs(list: &[(&'static str, &[&str], &[&str])]) -> Sigs {
        let tys = |ts: &[&str]| ts.iter().map(|t| ty(t)).collect();
        Sigs(list.iter().map(|(n, a, r)| (*n, tys(a), tys(r))).collect())
    }

    fn run_with(funcs: &dyn FuncSigs, op: &Op, args: &[&str], declared: Option<&str>) -> Result<String, String> {
        let tys: Vec<TensorType> = args.iter().map(|a| ty(a)).collect();
        let refs: Vec<&TensorType> = tys.iter().collect();
        let declared = declared.map(ty);
        let ts = infer(op, &refs, declared.as_ref().map(std::slice::from_ref), funcs)?;
        Ok(ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", "))
    }

    fn ok(op: Op, args: &[&str], declared: Option<&str>) -> String {
        run_with(&sigs(&[]), &op, args, declared).unwrap_or_else(|e| panic!("{e}"))
    }

    fn err(op: Op, args: &[&str], declared: Option<&str>) -> String {
        run_with(&sigs(&[]), &op, args, declared).expect_err("the rules should reject this")
    }

    fn dims(ds: &[&str]) -> Vec<Dim> {
        ds.iter().map(|d| Dim::parse(d).unwrap()).collect()
    }

    #[test]
    fn param_takes_the_declared_type() {
        assert_eq!(ok(Op::Param("w".into()), &[], Some("f32[3, N]")), "f32[3, N]");
        assert!(err(Op::Param("w".into()), &[], None).contains("needs a declared result type"));
        assert!(err(Op::Param("w".into()), &["f32[]"], Some("f32[]")).contains("expected 0 operands, got 1"));
    }

    #[test]
    fn const_is_a_fitting_scalar() {
        assert_eq!(ok(Op::Const(0.5), &[], Some("f32[]")), "f32[]");
        assert_eq!(ok(Op::Const(3.0), &[], Some("i64[]")), "i64[]");
        assert!(err(Op::Const(0.5), &[], Some("f32[2]")).contains("scalar"));
        assert!(err(Op::Const(0.5), &[], Some("i64[]")).contains("not an i64"));
        assert!(err(Op::Const(2.0), &[], Some("bool[]")).contains("not a bool"));
    }

    #[test]
    fn iota_axis_and_dtype() {
        assert_eq!(ok(Op::Iota { axis: 1 }, &[], Some("f32[B, 8]")), "f32[B, 8]");
        assert!(err(Op::Iota { axis: 1 }, &[], Some("i64[8]")).contains("axis 1 is out of range"));
        assert!(err(Op::Iota { axis: 0 }, &[], Some("bool[8]")).contains("must be i64, f32 or f64"));
    }

    #[test]
    fn unary_dtypes() {
        assert_eq!(ok(Op::Unary(UnaryOp::Exp), &["f32[B, 8]"], None), "f32[B, 8]");
        assert_eq!(ok(Op::Unary(UnaryOp::Neg), &["i64[B]"], None), "i64[B]");
        assert_eq!(ok(Op::Unary(UnaryOp::Neg), &["c64[B]"], None), "c64[B]");
        assert_eq!(ok(Op::Unary(UnaryOp::Abs), &["i64[B]"], None), "i64[B]");
        assert_eq!(ok(Op::Unary(UnaryOp::Not), &["bool[B]"], None), "bool[B]");
        assert_eq!(err(Op::Unary(UnaryOp::Exp), &["i64[B]"], None), "exp: operand must be f32 or f64, got i64[B]");
        assert!(err(Op::Unary(UnaryOp::Not), &["f32[B]"], None).contains("must be bool"));
        assert!(err(Op::Unary(UnaryOp::Abs), &["c64[B]"], None).contains("must be f32, f64 or i64"));
        assert!(err(Op::Unary(UnaryOp::Exp), &["f32[B]"], Some("f64[B]")).contains("declared type f64[B] differs"));
    }

    #[test]
    fn binary_rules() {
        let add = Op::Binary(BinaryOp::Add);
        assert_eq!(ok(add.clone(), &["f32[B, 8]", "f32[B, 8]"], None), "f32[B, 8]");
        assert_eq!(ok(Op::Binary(BinaryOp::Lt), &["i64[B]", "i64[B]"], None), "bool[B]");
        assert_eq!(ok(Op::Binary(BinaryOp::Rem), &["i64[B]", "i64[B]"], None), "i64[B]");
        assert_eq!(ok(Op::Binary(BinaryOp::Eq), &["bool[B]", "bool[B]"], None), "bool[B]");
        assert_eq!(ok(Op::Binary(BinaryOp::And), &["bool[B]", "bool[B]"], None), "bool[B]");
        assert_eq!(
            err(add.clone(), &["f32[B, 8]", "f32[B, 4]"], None),
            "add: operand shapes differ: f32[B, 8] vs f32[B, 4]"
        );
        assert!(err(add, &["f32[B]", "f64[B]"], None).contains("dtypes differ"));
        assert!(err(Op::Binary(BinaryOp::And), &["f32[B]", "f32[B]"], None).contains("must be bool"));
        assert!(err(Op::Binary(BinaryOp::Pow), &["i64[B]", "i64[B]"], None).contains("must be f32 or f64"));
        assert!(err(Op::Binary(BinaryOp::Lt), &["c64[B]", "c64[B]"], None).contains("must be f32, f64 or i64"));
    }

    #[test]
    fn select_rules() {
        assert_eq!(ok(Op::Select, &["bool[B, 8]", "f32[B, 8]", "f32[B, 8]"], None), "f32[B, 8]");
        assert!(err(Op::Select, &["f32[B, 8]", "f32[B, 8]", "f32[B, 8]"], None).contains("condition must be bool"));
        assert!(err(Op::Select, &["bool[B]", "f32[B, 8]", "f32[B, 8]"], None).contains("differ in shape"));
        assert!(err(Op::Select, &["bool[B]", "f32[B]", "i64[B]"], None).contains("dtypes differ"));
    }

    #[test]
    fn cast_keeps_the_shape() {
        assert_eq!(ok(Op::Cast, &["f32[B, 8]"], Some("i64[B, 8]")), "i64[B, 8]");
        assert_eq!(ok(Op::Cast, &["f32[B]"], Some("c64[B]")), "c64[B]");
        assert!(err(Op::Cast, &["f32[B, 8]"], Some("f32[8, B]")).contains("cannot change the shape"));
        assert!(err(Op::Cast, &["c64[B]"], Some("f32[B]")).contains("use real or imag"));
    }

    #[test]
    fn reduce_rules() {
        let sum = |axes: &[usize], keepdim| Op::Reduce { op: ReduceOp::Sum, axes: axes.to_vec(), keepdim };
        assert_eq!(ok(sum(&[1], false), &["f32[B, 8, N]"], None), "f32[B, N]");
        assert_eq!(ok(sum(&[2, 0], true), &["f32[B, 8, N]"], None), "f32[1, 8, 1]");
        assert_eq!(ok(sum(&[], false), &["f32[B]"], None), "f32[B]");
        assert!(err(sum(&[1, 1], false), &["f32[B, 8]"], None).contains("listed twice"));
        assert!(err(sum(&[2], false), &["f32[B, 8]"], None).contains("axis 2 is out of range"));
        let mean = Op::Reduce { op: ReduceOp::Mean, axes: vec![0], keepdim: false };
        assert!(err(mean, &["i64[B]"], None).contains("must be f32, f64 or c64"));
    }

    #[test]
    fn argmax_gives_i64() {
        assert_eq!(ok(Op::ArgMax { axis: 1, keepdim: false }, &["f32[B, 10]"], None), "i64[B]");
        assert_eq!(ok(Op::ArgMax { axis: 1, keepdim: true }, &["f32[B, 10]"], None), "i64[B, 1]");
        assert!(err(Op::ArgMax { axis: 2, keepdim: false }, &["f32[B, 10]"], None).contains("out of range"));
        assert!(err(Op::ArgMax { axis: 0, keepdim: false }, &["bool[B]"], None).contains("must be"));
        assert_eq!(ok(Op::ArgSort { axis: 1, descending: true }, &["f32[B, 10]"], None), "i64[B, 10]");
        assert!(err(Op::ArgSort { axis: 2, descending: false }, &["i64[B, 10]"], None).contains("out of range"));
        assert!(err(Op::ArgSort { axis: 0, descending: false }, &["c64[B]"], None).contains("must be"));
        assert_eq!(ok(Op::StopGradient, &["c64[B, 3]"], None), "c64[B, 3]");
    }

    #[test]
    fn matmul_rules() {
        assert_eq!(ok(Op::MatMul, &["f32[B, 64]", "f32[64, 10]"], None), "f32[B, 10]");
        assert_eq!(ok(Op::MatMul, &["c64[H, N, 8]", "c64[H, 8, 2]"], None), "c64[H, N, 2]");
        assert_eq!(
            err(Op::MatMul, &["f32[B, 64]", "f32[32, 10]"], None),
            "matmul: inner dims differ: f32[B, 64] @ f32[32, 10] (64 vs 32)"
        );
        assert!(err(Op::MatMul, &["f32[B, 4, 8]", "f32[C, 8, 2]"], None).contains("batch dims differ"));
        assert!(err(Op::MatMul, &["f32[B, 4, 8]", "f32[8, 2]"], None).contains("batch dims differ"));
        assert!(err(Op::MatMul, &["f32[8]", "f32[8, 2]"], None).contains("rank 2 or more"));
        assert!(err(Op::MatMul, &["i64[2, 2]", "i64[2, 2]"], None).contains("must be f32, f64 or c64"));
    }

    #[test]
    fn einsum_rules() {
        let e = |s: &str| Op::Einsum(s.into());
        assert_eq!(ok(e("bi,io->bo"), &["f32[B, 8]", "f32[8, 16]"], None), "f32[B, 16]");
        assert_eq!(ok(e("bix,iox->box"), &["c64[B, 4, M]", "c64[4, 8, M]"], None), "c64[B, 8, M]");
        assert_eq!(ok(e("bi->ib"), &["f32[B, 8]"], None), "f32[8, B]");
        assert_eq!(ok(e("bi->"), &["f32[B, 8]"], None), "f32[]");
        assert!(err(e("bi,io->bo"), &["f32[B, 8]", "f32[4, 16]"], None).contains("letter `i` has size 8 and 4"));
        assert!(err(e("bi,io->bz"), &["f32[B, 8]", "f32[8, 16]"], None).contains("`z` is not in any input"));
        assert!(err(e("b1->b"), &["f32[B, 8]"], None).contains("not a letter"));
        assert!(err(e("ii->i"), &["f32[8, 8]"], None).contains("repeats"));
        assert!(err(e("bi,io"), &["f32[B, 8]", "f32[8, 16]"], None).contains("no `->`"));
        assert!(err(e("bi,io->bo"), &["f32[B, 8]"], None).contains("2 inputs, but 1 operands"));
        assert!(err(e("bij->b"), &["f32[B, 8]"], None).contains("do not fit"));
    }

    fn conv(stride: &[i64], padding: &[(i64, i64)], dilation: &[i64], groups: i64) -> Op {
        Op::Conv { stride: stride.to_vec(), padding: padding.to_vec(), dilation: dilation.to_vec(), groups }
    }

    #[test]
    fn conv_output_sizes() {
        assert_eq!(ok(conv(&[1], &[(1, 1)], &[1], 2), &["f32[B, 4, L]", "f32[6, 2, 3]"], None), "f32[B, 6, L]");
        assert_eq!(
            ok(conv(&[2], &[(0, 0)], &[1], 1), &["f32[B, 4, L]", "f32[6, 4, 1]"], None),
            "f32[B, 6, (L + 1) / 2]"
        );
        let c2 = conv(&[1, 2], &[(0, 0), (1, 1)], &[2, 1], 1);
        assert_eq!(ok(c2, &["f32[1, 3, 32, 32]", "f32[8, 3, 3, 3]"], None), "f32[1, 8, 28, 16]");
    }

    #[test]
    fn conv_rejects_bad_layouts() {
        let x = "f32[B, 4, 16]";
        assert!(err(conv(&[1], &[(0, 0)], &[1], 1), &[x, "f32[6, 3, 3]"], None).contains("input channels differ"));
        assert!(err(conv(&[1], &[(0, 0)], &[1], 4), &[x, "f32[6, 1, 3]"], None).contains("not divisible by groups=4"));
        assert!(
            err(conv(&[1, 1], &[(0, 0)], &[1], 1), &[x, "f32[6, 4, 3]"], None).contains("one entry per spatial axis")
        );
        assert!(err(conv(&[1], &[(0, 0)], &[1], 1), &[x, "f32[6, 4, 17]"], None).contains("does not fit"));
        assert!(err(conv(&[0], &[(0, 0)], &[1], 1), &[x, "f32[6, 4, 3]"], None).contains("stride must be positive"));
        assert!(err(conv(&[1], &[(-1, 0)], &[1], 1), &[x, "f32[6, 4, 3]"], None).contains("non-negative"));
    }

    #[test]
    fn pool_rules() {
        let pool = |w: i64, s: i64, p: (i64, i64)| Op::Pool {
            op: PoolOp::Max,
            window: vec![w],
            stride: vec![s],
            padding: vec![p],
        };
        assert_eq!(ok(pool(2, 2, (0, 0)), &["f32[B, 8, N]"], None), "f32[B, 8, N / 2]");
        assert_eq!(ok(pool(3, 1, (1, 1)), &["f32[B, 8, N]"], None), "f32[B, 8, N]");
        assert_eq!(ok(pool(2, 2, (0, 0)), &["f32[7]"], None), "f32[3]");
        assert!(err(pool(9, 1, (0, 0)), &["f32[B, 8]"], None).contains("does not fit"));
        assert!(err(pool(2, 2, (0, 0)), &["i64[B, 8]"], None).contains("must be f32 or f64"));
        assert_eq!(ok(pool(2, 2, (1, 1)), &["f32[8]"], None), "f32[5]");
        assert!(err(pool(2, 2, (2, 2)), &["f32[8]"], None).contains("exceeds half the window 2"));
        assert!(err(pool(3, 1, (0, 2)), &["f32[8]"], None).contains("exceeds half the window 3"));
        let two = Op::Pool { op: PoolOp::Avg, window: vec![2, 2], stride: vec![2], padding: vec![(0, 0)] };
        assert!(err(two, &["f32[B, 8, 8]"], None).contains("one entry per pooled axis"));
    }

    #[test]
    fn reshape_compares_element_counts() {
        assert_eq!(ok(Op::Reshape, &["f32[B, 8]"], Some("f32[B, 4, 2]")), "f32[B, 4, 2]");
        assert_eq!(ok(Op::Reshape, &["f32[B, N, 4]"], Some("f32[4 * N * B]")), "f32[4 * B * N]");
        assert!(err(Op::Reshape, &["f32[B, 8]"], Some("f32[B, 4, 3]")).contains("element counts differ"));
        assert!(err(Op::Reshape, &["f32[B, 8]"], Some("f64[B, 8]")).contains("dtypes differ"));
        assert!(err(Op::Reshape, &["f32[B, 8]"], None).contains("needs a declared result type"));
    }

    #[test]
    fn permute_needs_a_permutation() {
        assert_eq!(ok(Op::Permute(vec![0, 2, 1]), &["f32[B, 4, N]"], None), "f32[B, N, 4]");
        assert!(err(Op::Permute(vec![0, 0, 1]), &["f32[B, 4, N]"], None).contains("not a permutation"));
        assert!(err(Op::Permute(vec![1, 0]), &["f32[B, 4, N]"], None).contains("not a permutation"));
    }

    #[test]
    fn broadcast_follows_numpy() {
        assert_eq!(ok(Op::Broadcast, &["f32[16]"], Some("f32[B, 16]")), "f32[B, 16]");
        assert_eq!(ok(Op::Broadcast, &["f32[B, 1]"], Some("f32[B, 16]")), "f32[B, 16]");
        assert_eq!(ok(Op::Broadcast, &["f32[]"], Some("f32[B, 16]")), "f32[B, 16]");
        assert!(err(Op::Broadcast, &["f32[8]"], Some("f32[B, 16]")).contains("axis 0 has size 8, not 1 or 16"));
        assert!(err(Op::Broadcast, &["f32[B, 16]"], Some("f32[16]")).contains("lower rank"));
        assert!(err(Op::Broadcast, &["f32[16]"], Some("i64[16]")).contains("dtypes differ"));
    }

    fn slice(start: &[&str], end: &[&str], step: &[i64]) -> Op {
        Op::Slice { start: dims(start), end: dims(end), step: step.to_vec() }
    }

    #[test]
    fn slice_lengths() {
        assert_eq!(ok(slice(&["0", "2"], &["B", "16"], &[1, 3]), &["f32[B, 16]"], None), "f32[B, 5]");
        assert_eq!(ok(slice(&["1"], &["T"], &[2]), &["f32[T]"], None), "f32[T / 2]");
        assert_eq!(ok(slice(&["0"], &["N - 1"], &[1]), &["f32[N]"], None), "f32[N - 1]");
        assert_eq!(ok(slice(&["N / 2"], &["N"], &[1]), &["f32[N]"], None), "f32[N - N / 2]");
        assert_eq!(ok(slice(&["2"], &["100"], &[1]), &["f32[8]"], None), "f32[6]");
        assert_eq!(ok(slice(&["9"], &["100"], &[1]), &["f32[8]"], None), "f32[0]");
    }

    #[test]
    fn slice_rejects_unknowable_bounds() {
        assert_eq!(ok(slice(&["0"], &["4"], &[1]), &["f32[B]"], None), "f32[4]");
        assert!(err(slice(&["0"], &["8"], &[0]), &["f32[8]"], None).contains("step must be positive"));
        assert_eq!(ok(slice(&["-92"], &["3"], &[1]), &["f32[8]"], None), "f32[3]");
        assert_eq!(ok(slice(&["-1"], &["8"], &[2]), &["f32[8]"], None), "f32[4]");
        assert!(err(slice(&["0"], &["8"], &[1]), &["f32[8, 2]"], None).contains("one entry per axis"));
    }

    #[test]
    fn concat_sums_the_axis() {
        assert_eq!(ok(Op::Concat { axis: 1 }, &["f32[B, 8]", "f32[B, N]", "f32[B, 2]"], None), "f32[B, N + 10]");
        assert_eq!(ok(Op::Concat { axis: 0 }, &["f32[B]"], None), "f32[B]");
        assert!(err(Op::Concat { axis: 1 }, &["f32[B, 8]", "f32[C, 8]"], None).contains("outside axis 1"));
        assert!(err(Op::Concat { axis: 1 }, &["f32[B, 8]", "f64[B, 8]"], None).contains("dtypes differ"));
        assert!(err(Op::Concat { axis: 2 }, &["f32[B, 8]"], None).contains("out of range"));
        assert!(err(Op::Concat { axis: 0 }, &[], None).contains("at least 1 operand"));
    }

    #[test]
    fn pad_rules() {
        let pad = |p: &[(i64, i64)], value| Op::Pad { padding: p.to_vec(), value };
        assert_eq!(ok(pad(&[(0, 0), (1, 2)], 0.0), &["f32[B, 8]"], None), "f32[B, 11]");
        assert_eq!(ok(pad(&[(1, 0)], 7.0), &["i64[N]"], None), "i64[N + 1]");
        assert!(err(pad(&[(0, -1)], 0.0), &["f32[8]"], None).contains("non-negative"));
        assert!(err(pad(&[(0, 1)], 0.0), &["f32[B, 8]"], None).contains("one (lo, hi) pair per axis"));
        assert!(err(pad(&[(0, 1)], 0.5), &["i64[8]"], None).contains("not an i64"));
    }

    #[test]
    fn gather_and_scatter_add() {
        let g = Op::Gather { axis: 0 };
        assert_eq!(ok(g.clone(), &["f32[100, 8]", "i64[B, T]"], None), "f32[B, T, 8]");
        assert_eq!(ok(Op::Gather { axis: 1 }, &["f32[B, 100]", "i64[]"], None), "f32[B]");
        assert!(err(g, &["f32[100, 8]", "f32[B]"], None).contains("indices must be i64"));
        let s = Op::ScatterAdd { axis: 0 };
        assert_eq!(ok(s.clone(), &["f32[100, 8]", "i64[B]", "f32[B, 8]"], None), "f32[100, 8]");
        assert!(err(s.clone(), &["f32[100, 8]", "i64[B]", "f32[B, 4]"], None).contains("needs f32[B, 8]"));
        assert!(err(s, &["bool[100]", "i64[B]", "bool[B]"], None).contains("must be"));
    }

    #[test]
    fn spectral_ops() {
        assert_eq!(ok(Op::Rfft { axis: 1 }, &["f32[B, N]"], None), "c64[B, N / 2 + 1]");
        assert_eq!(ok(Op::Rfft { axis: 0 }, &["f64[16]"], None), "c64[9]");
        assert!(err(Op::Rfft { axis: 0 }, &["c64[16]"], None).contains("must be f32 or f64"));
        assert!(err(Op::Rfft { axis: 1 }, &["f32[16]"], None).contains("out of range"));
        let irfft = |n: &str| Op::Irfft { axis: 1, n: Dim::parse(n).unwrap() };
        assert_eq!(ok(irfft("N"), &["c64[B, N / 2 + 1]"], None), "f32[B, N]");
        assert_eq!(ok(irfft("N"), &["c64[B, N / 2 + 1]"], Some("f64[B, N]")), "f64[B, N]");
        assert_eq!(ok(irfft("15"), &["c64[B, 8]"], None), "f32[B, 15]");
        assert!(err(irfft("N"), &["c64[B, N]"], None).contains("needs N / 2 + 1"));
        assert!(err(irfft("16"), &["f32[B, 9]"], None).contains("must be c64"));
        assert!(err(irfft("0"), &["c64[B, 1]"], None).contains("n must be positive"));
    }

    #[test]
    fn complex_parts() {
        assert_eq!(ok(Op::Real, &["c64[B, 8]"], None), "f32[B, 8]");
        assert_eq!(ok(Op::Imag, &["c64[B, 8]"], None), "f32[B, 8]");
        assert!(err(Op::Real, &["f32[B, 8]"], None).contains("must be c64"));
        assert!(err(Op::Imag, &["f64[B]"], None).contains("must be c64"));
        assert_eq!(ok(Op::Complex, &["f32[B, 8]", "f32[B, 8]"], None), "c64[B, 8]");
        assert!(err(Op::Complex, &["f32[B, 8]", "f32[B, 4]"], None).contains("shapes differ"));
        assert!(err(Op::Complex, &["f64[B]", "f64[B]"], None).contains("real part must be f32"));
    }

    #[test]
    fn random_ops_are_float() {
        assert_eq!(ok(Op::RandUniform { seed: 1 }, &[], Some("f32[B, 8]")), "f32[B, 8]");
        assert_eq!(ok(Op::RandNormal { seed: 2 }, &[], Some("f64[4]")), "f64[4]");
        assert!(err(Op::RandUniform { seed: 1 }, &[], Some("i64[4]")).contains("must be f32 or f64"));
        assert!(err(Op::RandNormal { seed: 1 }, &[], None).contains("needs a declared"));
    }

    fn fsigs() -> Sigs {
        sigs(&[
            ("lin", &["f32[N, 16]", "f32[16, M]"], &["f32[N, M]"]),
            ("twice", &["f32[N, 2 * N]"], &["f32[N]"]),
            ("pair", &["f32[N]", "f32[N]"], &["f32[N]"]),
            ("two", &["f32[N]"], &["f32[N]", "f32[N]"]),
            ("keep", &["f32[N, 16]"], &["f32[N, 16]"]),
            ("grow", &["f32[N, 16]"], &["f32[N, 17]"]),
            ("head", &["f32[1, 16]", "f32[16, 4]"], &["f32[1, 4]"]),
            ("flat", &["f32[16]"], &["f32[4]"]),
            ("cell", &["f32[K, 16]", "f32[K, 4]"], &["f32[K, 16]"]),
            ("rnn", &["f32[K, 16]", "f32[K, 4]", "f32[4, 16]"], &["f32[K, 16]", "f32[K, 16]"]),
            ("pair_cell", &["f32[K]", "i64[]", "f32[K, 4]", "f32[K]"], &["f32[K]", "i64[]", "f32[4]", "f32[]"]),
            ("seq2", &["f32[K]", "f32[K]"], &["f32[K]"]),
            ("bad_carry", &["f32[K]", "f32[K]"], &["f64[K]"]),
            ("three", &["f32[K]", "f32[K]", "f32[K]"], &["f32[K]"]),
            ("none", &["f32[N]"], &[]),
            ("mixed", &["f32[1, 16]"], &["f32[1, 4]", "f32[]", "i64[3]"]),
        ])
    }

    fn call_ok(op: Op, args: &[&str]) -> String {
        run_with(&fsigs(), &op, args, None).unwrap_or_else(|e| panic!("{e}"))
    }

    fn call_err(op: Op, args: &[&str]) -> String {
        run_with(&fsigs(), &op, args, None).expect_err("the rules should reject this")
    }

    #[test]
    fn call_unifies_symbols() {
        assert_eq!(call_ok(Op::Call("lin".into()), &["f32[B, 16]", "f32[16, 4]"]), "f32[B, 4]");
        assert_eq!(call_ok(Op::Call("twice".into()), &["f32[B + 1, 2 * B + 2]"]), "f32[B + 1]");
        assert_eq!(
            call_err(Op::Call("twice".into()), &["f32[B, 8]"]),
            "call: @twice argument 0: expected f32[B, 2 * B], got f32[B, 8]"
        );
        assert!(call_err(Op::Call("pair".into()), &["f32[3]", "f32[4]"]).contains("N is 3 in one place and 4"));
        assert!(call_err(Op::Call("lin".into()), &["f64[B, 16]", "f32[16, 4]"]).contains("argument 0"));
        assert!(call_err(Op::Call("lin".into()), &["f32[B, 16]"]).contains("takes 2 arguments, got 1"));
        assert!(call_err(Op::Call("nope".into()), &["f32[B]"]).contains("unknown function @nope"));
        assert_eq!(call_ok(Op::Call("two".into()), &["f32[B]"]), "f32[B], f32[B]");
        assert!(call_err(Op::Call("none".into()), &["f32[B]"]).contains("returns 0 values; an instruction needs"));
    }

    #[test]
    fn declared_result_types_must_match_in_number_and_value() {
        let f = fsigs();
        let tys = |ts: &[&str]| ts.iter().map(|t| ty(t)).collect::<Vec<_>>();
        let x = ty("f32[B]");
        let call = Op::Call("two".into());
        assert!(infer(&call, &[&x], Some(&tys(&["f32[B]", "f32[B]"])), &f).is_ok());
        assert_eq!(
            infer(&call, &[&x], Some(&tys(&["f32[B]"])), &f).unwrap_err(),
            "call: 1 result type declared, but the op gives 2"
        );
        assert_eq!(
            infer(&call, &[&x], Some(&tys(&["f32[B]", "f64[B]"])), &f).unwrap_err(),
            "call: declared type f64[B] of result 1 differs from the inferred type f32[B]"
        );
        assert_eq!(
            infer(&Op::Unary(UnaryOp::Exp), &[&x], Some(&tys(&["f32[B]", "f32[B]"])), &f).unwrap_err(),
            "exp: 2 result types declared, but the op gives 1"
        );
        assert_eq!(
            infer(&Op::Reshape, &[&x], Some(&tys(&["f32[B]", "f32[B]"])), &f).unwrap_err(),
            "reshape: has one result, but 2 types are declared"
        );
        assert_eq!(infer_one(&call, &[&x], None, &f).unwrap_err(), "call: gives 2 results where one is expected");
        assert_eq!(infer_one(&Op::Call("seq2".into()), &[&x, &x], None, &f).unwrap().to_string(), "f32[B]");
    }

    #[test]
    fn stack_keeps_the_type() {
        let stack = |fs: &[&str]| Op::Stack(fs.iter().map(|f| f.to_string()).collect());
        assert_eq!(call_ok(stack(&["keep", "keep"]), &["f32[B, 16]"]), "f32[B, 16]");
        assert_eq!(call_ok(stack(&[]), &["f32[B, 16]"]), "f32[B, 16]");
        assert!(call_err(stack(&["keep", "grow"]), &["f32[B, 16]"]).contains("@grow maps f32[B, 16] to f32[B, 17]"));
        assert!(call_err(stack(&["two"]), &["f32[B]"]).contains("@two returns 2 values; every stacked function"));
    }

    #[test]
    fn vmap_maps_axis_zero() {
        let vmap = |f: &str, keep: &[bool]| Op::Vmap { func: f.into(), keep: keep.to_vec(), out_keep: vec![true] };
        assert_eq!(call_ok(vmap("head", &[true, false]), &["f32[B, 16]", "f32[B, 16, 4]"]), "f32[B, 4]");
        assert!(call_err(vmap("head", &[true, false]), &["f32[B, 16]", "f32[C, 16, 4]"])
            .contains("operand 1 (f32[C, 16, 4]) does not have axis 0 of size B"));
        assert!(call_err(vmap("flat", &[false]), &["f32[B, 16]"]).contains("a kept result must have axis 0 of size 1"));
        assert!(call_err(vmap("head", &[true]), &["f32[B, 16]", "f32[B, 16, 4]"]).contains("expected 1 operand"));
        assert!(call_err(vmap("head", &[]), &[]).contains("at least one operand"));
    }

    #[test]
    fn vmap_concatenates_kept_results_and_stacks_the_others() {
        let vmap =
            |f: &str, out_keep: &[bool]| Op::Vmap { func: f.into(), keep: vec![true], out_keep: out_keep.to_vec() };
        assert_eq!(call_ok(vmap("mixed", &[true, false, false]), &["f32[B, 16]"]), "f32[B, 4], f32[B], i64[B, 3]");
        assert_eq!(call_ok(vmap("mixed", &[false, false, false]), &["f32[B, 16]"]), "f32[B, 1, 4], f32[B], i64[B, 3]");
        assert_eq!(
            call_err(vmap("mixed", &[true, true, false]), &["f32[B, 16]"]),
            "vmap: @mixed returns f32[] as result 1; a kept result must have axis 0 of size 1"
        );
        assert_eq!(
            call_err(vmap("mixed", &[true]), &["f32[B, 16]"]),
            "vmap: @mixed returns 3 values, but out_keep has 1 entries"
        );
        let none = Op::Vmap { func: "none".into(), keep: vec![false], out_keep: vec![] };
        assert!(call_err(none, &["f32[B, 3]"]).contains("returns 0 values; an instruction needs"));
    }

    #[test]
    fn scan_gives_final_carries_and_stacked_outputs() {
        let scan = |f: &str, axis, carries, xs| Op::Scan { func: f.into(), axis, carries, xs, reverse: false };
        // The language-level form: one carry, one sequence, the state returned twice.
        assert_eq!(
            call_ok(scan("rnn", 1, 1, 1), &["f32[B, 16]", "f32[B, T, 4]", "f32[4, 16]"]),
            "f32[B, 16], f32[B, T, 16]"
        );
        assert_eq!(
            call_ok(scan("rnn", 0, 1, 1), &["f32[B, 16]", "f32[T, B, 4]", "f32[4, 16]"]),
            "f32[B, 16], f32[T, B, 16]"
        );
        let reverse = Op::Scan { func: "rnn".into(), axis: 2, carries: 1, xs: 1, reverse: true };
        assert_eq!(call_ok(reverse, &["f32[B, 16]", "f32[B, 4, T]", "f32[4, 16]"]), "f32[B, 16], f32[B, 16, T]");
        // Two carries (one of them a scalar), one sequence, one invariant; per-step outputs
        // of rank 1 and 0.
        assert_eq!(
            call_ok(scan("pair_cell", 0, 2, 1), &["f32[N]", "i64[]", "f32[T, N, 4]", "f32[N]"]),
            "f32[N], i64[], f32[T, 4], f32[T]"
        );

        // Carries only, or outputs only.
        assert_eq!(call_ok(scan("cell", 1, 1, 1), &["f32[B, 16]", "f32[B, T, 4]"]), "f32[B, 16]");
        assert_eq!(call_ok(scan("seq2", 0, 0, 2), &["f32[T, K]", "f32[T, K]"]), "f32[T, K]");
        // T = 0 is a type like any other.
        assert_eq!(call_ok(scan("seq2", 0, 0, 2), &["f32[0, K]", "f32[0, K]"]), "f32[0, K]");
    }

    #[test]
    fn scan_errors() {
        let scan = |f: &str, axis, carries, xs| Op::Scan { func: f.into(), axis, carries, xs, reverse: false };
        let rnn_args = ["f32[B, 16]", "f32[B, T, 4]", "f32[4, 16]"];
        assert!(call_err(scan("rnn", 0, 1, 1), &rnn_args).contains("argument 1"));
        assert_eq!(
            call_err(scan("rnn", 3, 1, 1), &rnn_args),
            "scan: axis 3 is out of range for the sequence f32[B, T, 4] (rank 3)"
        );
        assert_eq!(
            call_err(scan("seq2", 0, 0, 2), &["f32[T, K]", "f32[S, K]"]),
            "scan: sequences differ in length along axis 0: f32[T, K] has T steps, f32[S, K] has S"
        );
        assert_eq!(call_err(scan("rnn", 1, 1, 1), &["f32[B, 16]"]), "scan: expected at least 2 operands, got 1");
        assert!(call_err(scan("rnn", 1, 1, 1), &rnn_args[..2]).contains("@rnn takes 3 arguments, got 2"));
        assert_eq!(
            call_err(scan("rnn", 1, 2, 0), &["f32[B, 16]", "f32[B, T, 4]", "f32[4, 16]"]),
            "scan: needs at least one sequence to scan over (xs=0)"
        );
        assert_eq!(
            call_err(scan("grow", 0, 1, 1), &["f32[B, 16]", "f32[T, B, 16]"]),
            "scan: @grow takes 1 argument, got 2"
        );
        assert_eq!(
            call_err(scan("three", 0, 2, 1), &["f32[K]", "f32[K]", "f32[T, K]"]),
            "scan: @three returns 1 value, fewer than the 2 carries"
        );
        assert_eq!(
            call_err(scan("bad_carry", 0, 1, 1), &["f32[N]", "f32[T, N]"]),
            "scan: @bad_carry maps carry 0 of type f32[N] to f64[N]; a carry must keep its type"
        );
        assert_eq!(
            call_err(scan("pair_cell", 2, 2, 1), &["f32[N]", "i64[]", "f32[N, 4, T]", "f32[N]"]),
            "scan: axis 2 is out of range for the per-step output 0 of @pair_cell, f32[4] (rank 1)"
        );
        assert_eq!(
            call_err(scan("none", 0, 0, 1), &["f32[T, N]"]),
            "scan: @none returns 0 values and there are no carries; an instruction needs at least one result"
        );
    }

    #[test]
    fn floor_div_norm_moves_constants_out() {
        let d = |s: &str| Dim::parse(s).unwrap();
        assert_eq!(floor_div_norm(&d("N - 2"), 2), d("N / 2 - 1"));
        assert_eq!(floor_div_norm(&d("N + 5"), 2), d("(N + 1) / 2 + 2"));
        assert_eq!(floor_div_norm(&d("2 * N - 2"), 2), d("N - 1"));
        assert_eq!(floor_div_norm(&d("-7"), 2), d("-4"));
    }
}
