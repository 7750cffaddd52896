//! 128-bit vector forms of elementwise loops ([`super::ew`]) and of the folds of
//! reductions ([`super::reduce`]), used when `Options::simd` holds on a host whose
//! backend has them (`Shared::simd`).
//!
//! Contract: a vector loop covers the first `n - n % lanes` elements of a flat loop (every
//! operand contiguous with the result's shape, or a splat read in every lane) and returns
//! the index where the scalar tail loop starts. Elementwise lanes compute exactly what
//! the scalar code computes for each element (the same IEEE operations, NaN and
//! signed-zero rules); only sums fold in another order (see [`sum_run`]). Lanes: f32 as
//! f32x4 (4 per step), f64 as f64x2 and i64 as i64x2 (2 per step); bools beside f32 lanes
//! are i32x4 masks (all ones for true), loaded from and stored to 4 bytes of 0/1. Only
//! what SSE2 (x86-64) or NEON (aarch64) lower is emitted: no rounding (`floor`), no
//! i64x2 comparisons, multiplications or extremes.

use super::{elem, mem, FnLower, Val};
use archc_compiler::tir::DType;
use cranelift_codegen::ir::condcodes::FloatCC;
use cranelift_codegen::ir::{types, Endianness, InstBuilder, MemFlagsData, Type, Value};

/// The vector form of an elementwise op: the lanes of every operand in, the result's out.
pub(crate) type VecOp<'a> = Box<dyn FnMut(&mut FnLower, &[Value]) -> Value + 'a>;

/// Lane reinterpretation (`bitcast` between vector types), little-endian as both hosts.
fn le() -> MemFlagsData {
    MemFlagsData::new().with_endianness(Endianness::Little)
}

/// The lanes per step of an elementwise loop over operands and a result of dtypes `ds`:
/// 4 when they are f32 and bool (at least one f32), 2 when all are f64 or all i64.
pub(crate) fn lanes(ds: &[DType]) -> Option<i64> {
    if ds.iter().all(|d| matches!(d, DType::F32 | DType::Bool)) && ds.contains(&DType::F32) {
        Some(4)
    } else if ds.iter().all(|&d| d == DType::F64) || ds.iter().all(|&d| d == DType::I64) {
        Some(2)
    } else {
        None
    }
}

/// The vector of `d`'s lanes (bools: i32x4 masks beside f32x4).
fn vector(d: DType) -> Type {
    match d {
        DType::F32 => types::F32X4,
        DType::F64 => types::F64X2,
        DType::I64 => types::I64X2,
        DType::Bool => types::I32X4,
        DType::C64 => unreachable!("complex values have no lanes"),
    }
}

pub(crate) fn type_of(l: &FnLower, v: Value) -> Type {
    l.b.func.dfg.value_type(v)
}

/// Elements `i..i + lanes` of a buffer of dtype `d`.
fn load(l: &mut FnLower, d: DType, base: Value, i: Value) -> Value {
    let a = l.addr(base, i, elem(d).1);
    if d != DType::Bool {
        return l.b.ins().load(vector(d), mem(), a, 0);
    }
    // Four bytes of 0/1, sign-extended to 32-bit lanes and negated into masks.
    let w = l.b.ins().load(types::I32, mem(), a, 0);
    let v = l.b.ins().scalar_to_vector(types::I32X4, w);
    let v = l.b.ins().bitcast(types::I8X16, le(), v);
    let v = l.b.ins().swiden_low(v);
    let v = l.b.ins().swiden_low(v);
    l.b.ins().ineg(v)
}

/// Stores lanes `v` as elements `i..i + lanes` of a buffer of dtype `d`.
fn store(l: &mut FnLower, d: DType, base: Value, i: Value, v: Value) {
    let a = l.addr(base, i, elem(d).1);
    if d != DType::Bool {
        l.b.ins().store(mem(), v, a, 0);
        return;
    }
    // Masks narrowed to bytes (saturating: -1 stays -1), negated to 0/1, four stored.
    let v = l.b.ins().snarrow(v, v);
    let v = l.b.ins().snarrow(v, v);
    let v = l.b.ins().ineg(v);
    let v = l.b.ins().bitcast(types::I32X4, le(), v);
    let w = l.b.ins().extractlane(v, 0);
    l.b.ins().store(mem(), w, a, 0);
}

/// Element 0 of a buffer of dtype `d` in every lane.
fn splat(l: &mut FnLower, d: DType, base: Value) -> Value {
    let (ty, es) = elem(d);
    let zero = l.iconst(0);
    let x = l.load_at(ty, base, zero, es);
    if d != DType::Bool {
        return l.b.ins().splat(vector(d), x);
    }
    let x = l.b.ins().uextend(types::I32, x);
    let x = l.b.ins().ineg(x);
    l.b.ins().splat(types::I32X4, x)
}

/// `v` in every lane of the float vector type `vty`.
pub(crate) fn fconst(l: &mut FnLower, vty: Type, v: f64) -> Value {
    let x = if vty == types::F64X2 { l.b.ins().f64const(v) } else { l.b.ins().f32const(v as f32) };
    l.b.ins().splat(vty, x)
}

/// Lanes of `x` where mask `m` is set, of `y` elsewhere (`m`: integer or float lanes of
/// all ones or zeros, as wide as `x`'s).
pub(crate) fn select(l: &mut FnLower, m: Value, x: Value, y: Value) -> Value {
    let ty = type_of(l, x);
    let m = if type_of(l, m) == ty { m } else { l.b.ins().bitcast(ty, le(), m) };
    l.b.ins().bitselect(m, x, y)
}

/// `x` where `x` is NaN or no worse than `y` (`>=` for max, `<=` for min), else `y`:
/// the scalar `max`/`min` rule, lane by lane for vectors.
pub(crate) fn pick(l: &mut FnLower, max: bool, x: Value, y: Value) -> Value {
    let cc = if max { FloatCC::GreaterThanOrEqual } else { FloatCC::LessThanOrEqual };
    let better = l.b.ins().fcmp(cc, x, y);
    let nan = l.b.ins().fcmp(FloatCC::Unordered, x, x);
    let keep = l.b.ins().bor(better, nan);
    if type_of(l, x).is_vector() {
        select(l, keep, x, y)
    } else {
        l.b.ins().select(keep, x, y)
    }
}

/// The vector loop of `out[i] = f(operands at i)` over the first `n - n % lanes`
/// elements (`out` of dtype `od`); the index where the scalar tail starts.
pub(crate) fn elementwise(
    l: &mut FnLower,
    args: &[Val],
    (od, out): (DType, Value),
    n: Value,
    lanes: i64,
    mut f: VecOp,
) -> Value {
    let shift = lanes.trailing_zeros() as i64;
    let splats: Vec<Option<Value>> = args.iter().map(|a| a.splat.then(|| splat(l, a.ty.dtype, a.ptr))).collect();
    let steps = l.b.ins().ushr_imm_u(n, shift);
    l.for_range(steps, |l, j| {
        let i = l.b.ins().ishl_imm_u(j, shift);
        let v: Vec<Value> =
            args.iter().zip(&splats).map(|(a, s)| s.unwrap_or_else(|| load(l, a.ty.dtype, a.ptr, i))).collect();
        let r = f(l, &v);
        store(l, od, out, i, r);
    });
    l.b.ins().ishl_imm_u(steps, shift)
}

/// The sum of the first `inner - inner % 4` elements of the run at `base` of `src` (f32,
/// f64 or i64), four per step in two accumulators of two lanes (f32 promoted to f64, as
/// the scalar fold accumulates); the index where the scalar tail continues the sum.
///
/// Lane `k` of the accumulators sums elements `k, k + 4, ...` of its half, and the four
/// partial sums are added last: an order other than the scalar fold's, so an f64 sum (or
/// an f32 sum of terms whose magnitudes span more than f64's 53 bits) may round
/// differently; i64 sums wrap and are exact.
pub(crate) fn sum_run(l: &mut FnLower, d: DType, src: Value, base: Value, inner: Value) -> (Value, Value) {
    let int = d == DType::I64;
    let acc_ty = if int { types::I64X2 } else { types::F64X2 };
    let zero = if int {
        let z = l.iconst(0);
        l.b.ins().splat(types::I64X2, z)
    } else {
        fconst(l, types::F64X2, 0.0)
    };
    let accs = [l.b.declare_var(acc_ty), l.b.declare_var(acc_ty)];
    for a in accs {
        l.b.def_var(a, zero);
    }
    let steps = l.b.ins().ushr_imm_u(inner, 2);
    l.for_range(steps, |l, j| {
        let at = l.b.ins().ishl_imm_u(j, 2);
        let at = l.b.ins().iadd(base, at);
        let a = l.addr(src, at, elem(d).1);
        let halves = if d == DType::F32 {
            let lo = l.b.ins().load(types::F32X4, mem(), a, 0);
            let hi = l.b.ins().load(types::I64, mem(), a, 8);
            let hi = l.b.ins().scalar_to_vector(types::I64X2, hi);
            let hi = l.b.ins().bitcast(types::F32X4, le(), hi);
            [l.b.ins().fvpromote_low(lo), l.b.ins().fvpromote_low(hi)]
        } else {
            [l.b.ins().load(acc_ty, mem(), a, 0), l.b.ins().load(acc_ty, mem(), a, 16)]
        };
        for (var, x) in accs.into_iter().zip(halves) {
            let acc = l.b.use_var(var);
            let s = if int { l.b.ins().iadd(acc, x) } else { l.b.ins().fadd(acc, x) };
            l.b.def_var(var, s);
        }
    });
    let (a0, a1) = (l.b.use_var(accs[0]), l.b.use_var(accs[1]));
    let s = if int { l.b.ins().iadd(a0, a1) } else { l.b.ins().fadd(a0, a1) };
    let (s0, s1) = (l.b.ins().extractlane(s, 0), l.b.ins().extractlane(s, 1));
    let total = if int { l.b.ins().iadd(s0, s1) } else { l.b.ins().fadd(s0, s1) };
    (total, l.b.ins().ishl_imm_u(steps, 2))
}

/// The max (or min) of the first `inner - inner % lanes` elements of the run at `base`
/// of `src` (f32 or f64, `inner >= 1`), and of its first element: every lane starts from
/// element 0 and folds its elements with [`pick`], and the lanes are folded in order.
/// Returns that value (NaN when any of those elements is NaN, else their extreme) and the
/// index where the scalar tail continues the fold.
pub(crate) fn extreme_run(
    l: &mut FnLower,
    max: bool,
    d: DType,
    src: Value,
    base: Value,
    inner: Value,
) -> (Value, Value) {
    let (ty, es) = elem(d);
    let (vty, lanes) = (vector(d), 16 / es);
    let shift = lanes.trailing_zeros() as i64;
    let first = l.load_at(ty, src, base, es);
    let start = l.b.ins().splat(vty, first);
    let var = l.b.declare_var(vty);
    l.b.def_var(var, start);
    let steps = l.b.ins().ushr_imm_u(inner, shift);
    l.for_range(steps, |l, j| {
        let at = l.b.ins().ishl_imm_u(j, shift);
        let at = l.b.ins().iadd(base, at);
        let v = load(l, d, src, at);
        let acc = l.b.use_var(var);
        let next = pick(l, max, acc, v);
        l.b.def_var(var, next);
    });
    let acc = l.b.use_var(var);
    let mut r = l.b.ins().extractlane(acc, 0);
    for k in 1..lanes {
        let x = l.b.ins().extractlane(acc, k as u8);
        r = pick(l, max, r, x);
    }
    (r, l.b.ins().ishl_imm_u(steps, shift))
}
