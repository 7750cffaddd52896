//! Elementwise ops as flat loops: `const`, `iota`, unary and binary math, comparisons and
//! logic, `select`, `cast`, `real`, `imag`, `complex` (of f32 parts, and the parts of
//! c64 values: native kernels).
//!
//! Coverage (the interpreter's, `runtime/src/interp/elementwise.rs`): f32/f64 every unary
//! op but `not` and every binary op but `and`/`or` (transcendental functions and `pow`,
//! `rem` call the `std` functions the interpreter calls, but f32 `erf`; `max`/`min` propagate NaN); i64
//! `neg abs sign relu floor`, `add sub mul max min` and comparisons; bool `not`, logic and
//! comparisons; casts between every pair of dtypes. Complex arithmetic and i64
//! `div`/`rem`/`pow` (which refuse a zero divisor or a negative exponent) run the
//! interpreter's kernels ([`super::kernel`]); an op the interpreter does not define on a
//! dtype is refused at compile time.
//!
//! One loop computes an op and every op fused into it ([`super::fuse`]: operands read once
//! by it, computed per element in the loop instead of stored). A vector loop
//! ([`super::simd`], with a scalar tail) serves when every operand is the result's size or
//! a splat and every op of the loop has a vector form: f32/f64 `neg abs sqrt rsqrt relu
//! sign`, f32 `erf` (a rational approximation within 5e-7, [`erf_f32`], also in scalar
//! loops; f64 `erf` calls the C library), `add sub mul div max min`; i64 `neg add sub`;
//! f32 comparisons (bool results), `select` of f32 values, casts between f32 and bool.
//! Other transcendental functions, `floor`, `pow`, `rem`, other casts and bool logic make
//! the loop scalar.

use super::simd::{self, VecOp};
use super::{elem, mem, FnLower, Val};
use crate::ClifError;
use archc_compiler::tir::ops::{binary_name, unary_name};
use archc_compiler::tir::{BinaryOp, DType, Inst, Op, UnaryOp};
use cranelift_codegen::ir::condcodes::{FloatCC, IntCC};
use cranelift_codegen::ir::{types, InstBuilder, Type, Value};

pub(crate) fn lower(l: &mut FnLower, inst: &Inst) -> Result<(), ClifError> {
    match &inst.op {
        Op::Const(v) => constant(l, inst, *v),
        Op::Iota { axis } => iota(l, inst, *axis),
        Op::Unary(_) | Op::Binary(_) | Op::Select | Op::Cast => loop_op(l, inst),
        // Complex parts and pairs of f32 run the native kernels (one pass, no IR).
        Op::Real | Op::Imag if l.arg(inst, 0).ty.dtype == DType::C64 => super::kernel::lower(l, inst),
        Op::Complex if inst.args.iter().all(|&a| l.val(a).ty.dtype == DType::F32) => super::kernel::lower(l, inst),
        Op::Real | Op::Imag => part(l, inst, inst.op == Op::Imag),
        Op::Complex => {
            let args = [l.arg(inst, 0), l.arg(inst, 1)];
            let ft = float(args[0].ty.dtype);
            map(l, inst, &args, move |l, v| v.iter().map(|&x| to_f32(l, ft, x)).collect())
        }
        op => unreachable!("{} is not elementwise", op.name()),
    }
}

/// The scalar form of an elementwise op: the scalars of every operand in (two per c64),
/// the result's out.
type ScalarOp<'a> = Box<dyn FnMut(&mut FnLower, &[Value]) -> Vec<Value> + 'a>;

/// An operand of an elementwise loop: a buffer (or splat), or a fused op ([`super::fuse`])
/// computed in the loop.
pub(crate) enum Operand {
    Buf(Val),
    Op(Node),
}

/// A fused op: its two forms, its result's dtype and its operands.
pub(crate) struct Node {
    scalar: ScalarOp<'static>,
    vector: Option<VecOp<'static>>,
    dtype: DType,
    args: Vec<Operand>,
}

/// The dtype of operand `v` (a buffer or a pending fused op).
fn dtype_of(l: &FnLower, v: archc_compiler::tir::ValueId) -> DType {
    match l.pending.get(&v) {
        Some(n) => n.dtype,
        None => l.val(v).ty.dtype,
    }
}

/// Unary and binary math, `select` and casts: a kernel (complex values, i64
/// `div`/`rem`/`pow`), an alias (a cast to the same dtype), a fused op left for its
/// reader's loop, or a loop over the result's elements.
fn loop_op(l: &mut FnLower, inst: &Inst) -> Result<(), ClifError> {
    let ds: Vec<DType> = inst.args.iter().map(|&a| dtype_of(l, a)).collect();
    let (scalar, vector): (ScalarOp, Option<VecOp>) = match &inst.op {
        Op::Unary(u) => {
            let (u, d) = (*u, ds[0]);
            if d == DType::C64 {
                return super::kernel::lower(l, inst);
            }
            check_unary(u, d)?;
            (Box::new(move |l, v| vec![unary_scalar(l, u, d, v[0])]), unary_vector(u, d))
        }
        Op::Binary(op) => {
            let (op, d) = (*op, ds[0]);
            if d == DType::C64 || (d == DType::I64 && matches!(op, BinaryOp::Div | BinaryOp::Rem | BinaryOp::Pow)) {
                return super::kernel::lower(l, inst);
            }
            check_binary(op, d)?;
            (Box::new(move |l, v| vec![binary_scalar(l, op, d, v[0], v[1])]), binary_vector(op, d))
        }
        Op::Select => {
            let vf: VecOp = Box::new(|l, v| simd::select(l, v[0], v[1], v[2]));
            let scalar: ScalarOp = Box::new(|l, v| {
                let n = v.len() - 1;
                let (a, b) = (&v[1..1 + n / 2], &v[1 + n / 2..]);
                a.iter().zip(b).map(|(&x, &y)| l.b.ins().select(v[0], x, y)).collect()
            });
            (scalar, Some(vf))
        }
        _ => {
            let (from, to) = (ds[0], inst.ty.dtype);
            if from == to {
                let x = l.arg(inst, 0);
                l.alias(inst.result, &x, &inst.ty);
                return Ok(());
            }
            (Box::new(move |l, v| cast_scalar(l, from, to, v)), cast_vector(from, to))
        }
    };
    let args = inst.args.iter().map(|a| operand(l, *a)).collect();
    let node = Node { scalar, vector, dtype: inst.ty.dtype, args };
    if l.fused.contains(&inst.result) {
        l.pending.insert(inst.result, node);
        return Ok(());
    }
    emit(l, inst, node);
    Ok(())
}

/// Operand `v` of a loop: its pending fused op (taken: it has one reader) or its buffer.
fn operand(l: &mut FnLower, v: archc_compiler::tir::ValueId) -> Operand {
    match l.pending.remove(&v) {
        Some(n) => Operand::Op(n),
        None => Operand::Buf(l.val(v)),
    }
}

/// `out[i] = f(scalars of every operand at i)` over the result's elements.
fn map(
    l: &mut FnLower,
    inst: &Inst,
    args: &[Val],
    f: impl FnMut(&mut FnLower, &[Value]) -> Vec<Value> + 'static,
) -> Result<(), ClifError> {
    let args = args.iter().cloned().map(Operand::Buf).collect();
    let node = Node { scalar: Box::new(f), vector: None, dtype: inst.ty.dtype, args };
    emit(l, inst, node);
    Ok(())
}

/// One slot of a loop's flattened tree, in post-order: a buffer read, or an op on
/// earlier slots.
enum Slot {
    Leaf(usize),
    Step(usize, Vec<usize>),
}

/// The loop of `root` (and the ops fused into it) into a fresh result buffer: one flat
/// loop ([`flat`]), or one per row when an operand is a broadcast read in place ([`rows`]).
fn emit(l: &mut FnLower, inst: &Inst, root: Node) {
    let out = l.alloc(&inst.ty);
    let (mut leaves, mut ops, mut dtypes, mut slots) = (vec![], Ops::default(), vec![], vec![]);
    let mut flat_tree = Flat { leaves: &mut leaves, ops: &mut ops, dtypes: &mut dtypes, slots: &mut slots };
    flat_tree.push(Operand::Op(root));
    let tree = Tree { slots: &slots, dtypes: &dtypes, od: inst.ty.dtype };
    if leaves.iter().any(|v| v.bcast.is_some()) {
        rows(l, inst, &leaves, ops, &tree, out.0);
    } else {
        let n = l.numel(&inst.ty);
        flat(l, &leaves, ops, &tree, out.0, n);
    }
    l.bind(inst.result, out, &inst.ty);
}

/// The scalar and vector forms of a loop's ops, in slot order.
#[derive(Default)]
struct Ops {
    scalars: Vec<ScalarOp<'static>>,
    vectors: Vec<Option<VecOp<'static>>>,
}

/// A loop's flattened tree: its slots, the dtypes of every leaf and op, the result's.
struct Tree<'a> {
    slots: &'a [Slot],
    dtypes: &'a [DType],
    od: DType,
}

/// One loop per row of the result's trailing axes `p..` (the fewest along which every
/// broadcast operand is either constant or contiguous; the last axis at least): such an
/// operand is a splat of its row's element or a run at its row's offset.
fn rows(l: &mut FnLower, inst: &Inst, leaves: &[Val], ops: Ops, tree: &Tree, out: Value) {
    let rank = inst.ty.rank();
    let uniform = |p: usize| {
        leaves.iter().filter_map(|v| v.bcast.as_ref()).all(|b| b.stretched[p..].iter().all(|&s| s == b.stretched[p]))
    };
    let p = (1..rank).find(|&p| uniform(p)).unwrap_or(rank - 1);
    let shape = l.shape(&inst.ty);
    let (mut len, mut count) = (l.iconst(1), l.iconst(1));
    for (a, &d) in shape.iter().enumerate() {
        if a < p {
            count = l.b.ins().imul(count, d);
        } else {
            len = l.b.ins().imul(len, d);
        }
    }
    let mut ops = Some(ops);
    l.for_range(count, |l, j| {
        // The row's index along each outer axis.
        let mut idx = vec![j; p];
        let mut rest = j;
        for a in (1..p).rev() {
            idx[a] = l.b.ins().urem(rest, shape[a]);
            rest = l.b.ins().udiv(rest, shape[a]);
        }
        idx[0] = rest;
        let start = l.b.ins().imul(j, len);
        let row: Vec<Val> = leaves.iter().map(|v| row_leaf(l, v, &idx, start)).collect();
        let dst = l.addr(out, start, elem(tree.od).1);
        flat(l, &row, ops.take().expect("one row body"), tree, dst, len);
    });
}

/// Leaf `v` for the row at outer indices `idx` (starting at element `start`).
fn row_leaf(l: &mut FnLower, v: &Val, idx: &[Value], start: Value) -> Val {
    let mut v = v.clone();
    let es = elem(v.ty.dtype).1;
    match v.bcast.take() {
        None if v.splat => {}
        None => v.ptr = l.addr(v.ptr, start, es),
        Some(b) => {
            let mut off = l.iconst(0);
            for (&i, &st) in idx.iter().zip(&b.strides) {
                let o = l.b.ins().imul(i, st);
                off = l.b.ins().iadd(off, o);
            }
            v.ptr = l.addr(v.ptr, off, es);
            v.splat = b.stretched[idx.len()];
        }
    }
    v
}

/// `n` elements of the tree into `out`: a vector loop ([`simd::elementwise`]) where every
/// op has a vector form and the dtypes have lanes ([`simd::lanes`]), then a scalar loop
/// for the rest.
fn flat(l: &mut FnLower, leaves: &[Val], ops: Ops, tree: &Tree, out: Value, n: Value) {
    let Ops { mut scalars, vectors } = ops;
    let od = tree.od;
    let slots = tree.slots;
    let lanes = simd::lanes(tree.dtypes).filter(|_| l.sh.simd && vectors.iter().all(Option::is_some));
    let start = match lanes {
        Some(lanes) => {
            let mut vectors: Vec<VecOp> = vectors.into_iter().flatten().collect();
            let vf: VecOp = Box::new(move |l, v| {
                let mut vals: Vec<Value> = Vec::with_capacity(slots.len());
                for s in slots {
                    let x = match s {
                        Slot::Leaf(k) => v[*k],
                        Slot::Step(k, ins) => {
                            let a: Vec<Value> = ins.iter().map(|&i| vals[i]).collect();
                            vectors[*k](l, &a)
                        }
                    };
                    vals.push(x);
                }
                vals.pop().expect("the root")
            });
            simd::elementwise(l, leaves, (od, out), n, lanes, vf)
        }
        None => l.iconst(0),
    };
    l.for_from(start, n, |l, i| {
        let mut vals: Vec<Vec<Value>> = Vec::with_capacity(slots.len());
        for s in slots {
            let x = match s {
                Slot::Leaf(k) => {
                    let a = &leaves[*k];
                    let at = if a.splat { l.iconst(0) } else { i };
                    load(l, a.ty.dtype, a.ptr, at)
                }
                Slot::Step(k, ins) => {
                    let a: Vec<Value> = ins.iter().flat_map(|&i| vals[i].iter().copied()).collect();
                    scalars[*k](l, &a)
                }
            };
            vals.push(x);
        }
        let r = vals.pop().expect("the root");
        store(l, od, out, i, &r);
    });
}

/// A tree of operands flattened in post-order.
struct Flat<'a> {
    leaves: &'a mut Vec<Val>,
    ops: &'a mut Ops,
    dtypes: &'a mut Vec<DType>,
    slots: &'a mut Vec<Slot>,
}

impl Flat<'_> {
    /// Appends `o` (after its operands); its slot.
    fn push(&mut self, o: Operand) -> usize {
        match o {
            Operand::Buf(v) => {
                self.dtypes.push(v.ty.dtype);
                self.leaves.push(v);
                self.slots.push(Slot::Leaf(self.leaves.len() - 1));
            }
            Operand::Op(n) => {
                let ins = n.args.into_iter().map(|a| self.push(a)).collect();
                self.dtypes.push(n.dtype);
                self.ops.scalars.push(n.scalar);
                self.ops.vectors.push(n.vector);
                self.slots.push(Slot::Step(self.ops.scalars.len() - 1, ins));
            }
        }
        self.slots.len() - 1
    }
}

/// The element type of a real float dtype.
fn float(d: DType) -> Type {
    if d == DType::F64 {
        types::F64
    } else {
        types::F32
    }
}

fn to_f32(l: &mut FnLower, from: Type, x: Value) -> Value {
    if from == types::F64 {
        l.b.ins().fdemote(types::F32, x)
    } else {
        x
    }
}

/// The scalars of element `i` of a buffer: one value, or `(re, im)` for c64.
fn load(l: &mut FnLower, d: DType, base: Value, i: Value) -> Vec<Value> {
    let (ty, es) = elem(d);
    if d == DType::C64 {
        let a = l.addr(base, i, 8);
        let re = l.b.ins().load(types::F32, mem(), a, 0);
        let im = l.b.ins().load(types::F32, mem(), a, 4);
        return vec![re, im];
    }
    vec![l.load_at(ty, base, i, es)]
}

fn store(l: &mut FnLower, d: DType, base: Value, i: Value, v: &[Value]) {
    if d == DType::C64 {
        let a = l.addr(base, i, 8);
        l.b.ins().store(mem(), v[0], a, 0);
        l.b.ins().store(mem(), v[1], a, 4);
        return;
    }
    l.store_at(v[0], base, i, elem(d).1);
}

fn constant(l: &mut FnLower, inst: &Inst, v: f64) -> Result<(), ClifError> {
    let out = l.alloc(&inst.ty);
    let zero = l.iconst(0);
    let s = scalar(l, inst.ty.dtype, v);
    store(l, inst.ty.dtype, out.0, zero, &s);
    l.bind(inst.result, out, &inst.ty);
    Ok(())
}

/// A literal converted as by `cast` from f64.
fn scalar(l: &mut FnLower, d: DType, v: f64) -> Vec<Value> {
    match d {
        DType::F32 => vec![l.b.ins().f32const(v as f32)],
        DType::F64 => vec![l.b.ins().f64const(v)],
        DType::I64 => vec![l.iconst(v as i64)],
        DType::Bool => vec![l.b.ins().iconst(types::I8, (v != 0.0) as i64)],
        DType::C64 => vec![l.b.ins().f32const(v as f32), l.b.ins().f32const(0.0)],
    }
}

pub(crate) fn fill(l: &mut FnLower, d: DType, base: Value, n: Value, v: f64) {
    l.for_range(n, |l, i| {
        let s = scalar(l, d, v);
        store(l, d, base, i, &s);
    });
}

fn iota(l: &mut FnLower, inst: &Inst, axis: usize) -> Result<(), ClifError> {
    let d = inst.ty.dtype;
    if !matches!(d, DType::I64 | DType::F32 | DType::F64) || axis >= inst.ty.rank() {
        return Err(ClifError::unsupported("iota", format!("of type {} along axis {axis}", inst.ty)));
    }
    let shape = l.shape(&inst.ty);
    let st = l.strides(&shape);
    let (stride, size) = (st[axis], shape[axis]);
    let out = l.alloc(&inst.ty);
    let n = l.numel(&inst.ty);
    l.for_range(n, |l, i| {
        let q = l.b.ins().udiv(i, stride);
        let c = l.b.ins().urem(q, size);
        let v = match d {
            DType::I64 => c,
            _ => l.b.ins().fcvt_from_sint(float(d), c),
        };
        store(l, d, out.0, i, &[v]);
    });
    l.bind(inst.result, out, &inst.ty);
    Ok(())
}

fn undefined(name: &str, d: DType) -> ClifError {
    ClifError::unsupported(name, format!("{name} is not defined on {d}"))
}

/// Refuses unary `u` where the interpreter does not define it on `d` (not c64).
fn check_unary(u: UnaryOp, d: DType) -> Result<(), ClifError> {
    use UnaryOp::*;
    let ok = match d {
        DType::F32 | DType::F64 => u != Not,
        DType::I64 => matches!(u, Neg | Abs | Sign | Relu | Floor),
        DType::Bool => u == Not,
        DType::C64 => true,
    };
    if ok {
        Ok(())
    } else {
        Err(undefined(unary_name(u), d))
    }
}

/// The vector form of unary `u` on `d`, if it has one.
fn unary_vector(u: UnaryOp, d: DType) -> Option<VecOp<'static>> {
    use UnaryOp::*;
    if d == DType::I64 {
        return (u == Neg).then(|| Box::new(|l: &mut FnLower, v: &[Value]| l.b.ins().ineg(v[0])) as VecOp);
    }
    if !matches!(d, DType::F32 | DType::F64) {
        return None;
    }
    let f: VecOp = match u {
        Neg => Box::new(|l, v| l.b.ins().fneg(v[0])),
        Abs => Box::new(|l, v| l.b.ins().fabs(v[0])),
        Sqrt => Box::new(|l, v| l.b.ins().sqrt(v[0])),
        Rsqrt => Box::new(|l, v| {
            let one = simd::fconst(l, simd::type_of(l, v[0]), 1.0);
            let s = l.b.ins().sqrt(v[0]);
            l.b.ins().fdiv(one, s)
        }),
        Relu => Box::new(|l, v| {
            let zero = simd::fconst(l, simd::type_of(l, v[0]), 0.0);
            let keep = l.b.ins().fcmp(FloatCC::UnorderedOrGreaterThan, v[0], zero);
            simd::select(l, keep, v[0], zero)
        }),
        Erf if d == DType::F32 => Box::new(|l, v| erf_f32(l, v[0])),
        Sign => Box::new(|l, v| {
            let vty = simd::type_of(l, v[0]);
            let (zero, one, m1) = (simd::fconst(l, vty, 0.0), simd::fconst(l, vty, 1.0), simd::fconst(l, vty, -1.0));
            let pos = l.b.ins().fcmp(FloatCC::GreaterThan, v[0], zero);
            let neg = l.b.ins().fcmp(FloatCC::LessThan, v[0], zero);
            let s = simd::select(l, neg, m1, v[0]);
            simd::select(l, pos, one, s)
        }),
        _ => return None,
    };
    Some(f)
}

fn unary_scalar(l: &mut FnLower, u: UnaryOp, d: DType, x: Value) -> Value {
    use UnaryOp::*;
    if d == DType::Bool {
        return l.b.ins().bxor_imm_s(x, 1);
    }
    if d == DType::I64 {
        return match u {
            Neg => l.b.ins().ineg(x),
            Abs => l.b.ins().iabs(x),
            Relu => {
                let z = l.iconst(0);
                l.b.ins().smax(x, z)
            }
            Sign => {
                let (z, one, m1) = (l.iconst(0), l.iconst(1), l.iconst(-1));
                let pos = l.b.ins().icmp(IntCC::SignedGreaterThan, x, z);
                let neg = l.b.ins().icmp(IntCC::SignedLessThan, x, z);
                let s = l.b.ins().select(neg, m1, z);
                l.b.ins().select(pos, one, s)
            }
            _ => x,
        };
    }
    let ft = float(d);
    let one = if ft == types::F64 { l.b.ins().f64const(1.0) } else { l.b.ins().f32const(1.0) };
    let zero = if ft == types::F64 { l.b.ins().f64const(0.0) } else { l.b.ins().f32const(0.0) };
    match u {
        Neg => l.b.ins().fneg(x),
        Sqrt => l.b.ins().sqrt(x),
        Rsqrt => {
            let s = l.b.ins().sqrt(x);
            l.b.ins().fdiv(one, s)
        }
        Abs => l.b.ins().fabs(x),
        Floor => l.b.ins().floor(x),
        Relu => {
            // x > 0 or NaN: x; else 0.
            let keep = l.b.ins().fcmp(FloatCC::UnorderedOrGreaterThan, x, zero);
            l.b.ins().select(keep, x, zero)
        }
        Sign => {
            let m1 = l.b.ins().fneg(one);
            let pos = l.b.ins().fcmp(FloatCC::GreaterThan, x, zero);
            let neg = l.b.ins().fcmp(FloatCC::LessThan, x, zero);
            let s = l.b.ins().select(neg, m1, x);
            l.b.ins().select(pos, one, s)
        }
        Sigmoid => {
            let n = l.b.ins().fneg(x);
            let e = math1(l, "exp", ft, n);
            let den = l.b.ins().fadd(one, e);
            l.b.ins().fdiv(one, den)
        }
        Exp => math1(l, "exp", ft, x),
        Log => math1(l, "log", ft, x),
        Log1p => math1(l, "log1p", ft, x),
        Tanh => math1(l, "tanh", ft, x),
        Erf if ft == types::F32 => erf_f32(l, x),
        Erf => math1(l, "erf", ft, x),
        Sin => math1(l, "sin", ft, x),
        Cos => math1(l, "cos", ft, x),
        Not => unreachable!("refused for floats"),
    }
}

/// The f32 error function of `x` (f32 or f32x4) as a rational function of `x` clamped
/// to `[-4, 4]` (Eigen's, odd numerator of degree 13 over an even denominator of degree
/// 8): within 5e-7 of the exact value everywhere, relative error within 5e-7 near zero;
/// NaN gives NaN, signed zeros keep their sign.
fn erf_f32(l: &mut FnLower, x: Value) -> Value {
    use archc_compiler::approx::{ERF_F32_P as P, ERF_F32_Q as Q};
    let ty = simd::type_of(l, x);
    let k = |l: &mut FnLower, v: f64| {
        if ty.is_vector() {
            simd::fconst(l, ty, v)
        } else {
            l.b.ins().f32const(v as f32)
        }
    };
    // Clamped by comparisons (NaN compares false and stays NaN).
    let (hi, lo) = (k(l, 4.0), k(l, -4.0));
    let above = l.b.ins().fcmp(FloatCC::GreaterThan, x, hi);
    let below = l.b.ins().fcmp(FloatCC::LessThan, x, lo);
    let x = if ty.is_vector() {
        let x = simd::select(l, above, hi, x);
        simd::select(l, below, lo, x)
    } else {
        let x = l.b.ins().select(above, hi, x);
        l.b.ins().select(below, lo, x)
    };
    let x2 = l.b.ins().fmul(x, x);
    let horner = |l: &mut FnLower, cs: &[f64]| {
        let mut acc = k(l, cs[0]);
        for &c in &cs[1..] {
            let m = l.b.ins().fmul(x2, acc);
            let c = k(l, c);
            acc = l.b.ins().fadd(m, c);
        }
        acc
    };
    let p = horner(l, &P);
    let q = horner(l, &Q);
    let p = l.b.ins().fmul(x, p);
    l.b.ins().fdiv(p, q)
}

/// The runtime's `archc_clif_{name}_{f32,f64}` of one argument.
fn math1(l: &mut FnLower, name: &str, ft: Type, x: Value) -> Value {
    let sym = math_symbol(name, ft);
    l.call_rt(sym, &[ft], &[ft], &[x]).expect("one result")
}

fn math_symbol(name: &str, ft: Type) -> &'static str {
    let f64_ = ft == types::F64;
    match (name, f64_) {
        ("exp", false) => "archc_clif_exp_f32",
        ("exp", true) => "archc_clif_exp_f64",
        ("log", false) => "archc_clif_log_f32",
        ("log", true) => "archc_clif_log_f64",
        ("log1p", false) => "archc_clif_log1p_f32",
        ("log1p", true) => "archc_clif_log1p_f64",
        ("tanh", false) => "archc_clif_tanh_f32",
        ("tanh", true) => "archc_clif_tanh_f64",
        ("erf", false) => "archc_clif_erf_f32",
        ("erf", true) => "archc_clif_erf_f64",
        ("sin", false) => "archc_clif_sin_f32",
        ("sin", true) => "archc_clif_sin_f64",
        ("cos", false) => "archc_clif_cos_f32",
        ("cos", true) => "archc_clif_cos_f64",
        ("pow", false) => "archc_clif_pow_f32",
        ("pow", true) => "archc_clif_pow_f64",
        ("rem", false) => "archc_clif_rem_f32",
        ("rem", true) => "archc_clif_rem_f64",
        _ => unreachable!("no runtime function {name}"),
    }
}

/// Refuses binary `op` where the interpreter does not define it on `d` (not c64, not
/// the i64 kernels).
fn check_binary(op: BinaryOp, d: DType) -> Result<(), ClifError> {
    use BinaryOp::*;
    let ok = match d {
        DType::F32 | DType::F64 | DType::I64 => !matches!(op, And | Or),
        DType::Bool => matches!(op, And | Or | Max | Min | Eq | Ne | Lt | Le | Gt | Ge),
        DType::C64 => true,
    };
    if ok {
        Ok(())
    } else {
        Err(undefined(binary_name(op), d))
    }
}

/// The vector form of binary `op` on `d`, if it has one (comparisons: f32 only, as
/// [`simd::lanes`] has no f64 lanes beside bools).
fn binary_vector(op: BinaryOp, d: DType) -> Option<VecOp<'static>> {
    use BinaryOp::*;
    if d == DType::I64 {
        return match op {
            Add => Some(Box::new(|l, v| l.b.ins().iadd(v[0], v[1]))),
            Sub => Some(Box::new(|l, v| l.b.ins().isub(v[0], v[1]))),
            _ => None,
        };
    }
    if !matches!(d, DType::F32 | DType::F64) {
        return None;
    }
    if let Some(cc) = float_cc(op) {
        return Some(Box::new(move |l, v| l.b.ins().fcmp(cc, v[0], v[1])));
    }
    let f: VecOp = match op {
        Add => Box::new(|l, v| l.b.ins().fadd(v[0], v[1])),
        Sub => Box::new(|l, v| l.b.ins().fsub(v[0], v[1])),
        Mul => Box::new(|l, v| l.b.ins().fmul(v[0], v[1])),
        Div => Box::new(|l, v| l.b.ins().fdiv(v[0], v[1])),
        Max | Min => Box::new(move |l, v| simd::pick(l, op == Max, v[0], v[1])),
        _ => return None,
    };
    Some(f)
}

fn binary_scalar(l: &mut FnLower, op: BinaryOp, d: DType, x: Value, y: Value) -> Value {
    use BinaryOp::*;
    if let Some(cc) = int_cc(op, d) {
        if d != DType::F32 && d != DType::F64 {
            return l.b.ins().icmp(cc, x, y);
        }
    }
    if let Some(cc) = float_cc(op) {
        if d == DType::F32 || d == DType::F64 {
            return l.b.ins().fcmp(cc, x, y);
        }
    }
    match d {
        DType::Bool => match op {
            And | Min => l.b.ins().band(x, y),
            _ => l.b.ins().bor(x, y),
        },
        DType::I64 => match op {
            Add => l.b.ins().iadd(x, y),
            Sub => l.b.ins().isub(x, y),
            Mul => l.b.ins().imul(x, y),
            Max => l.b.ins().smax(x, y),
            _ => l.b.ins().smin(x, y),
        },
        _ => {
            let ft = float(d);
            match op {
                Add => l.b.ins().fadd(x, y),
                Sub => l.b.ins().fsub(x, y),
                Mul => l.b.ins().fmul(x, y),
                Div => l.b.ins().fdiv(x, y),
                Pow | Rem => {
                    let sym = math_symbol(if op == Pow { "pow" } else { "rem" }, ft);
                    l.call_rt(sym, &[ft, ft], &[ft], &[x, y]).expect("one result")
                }
                // x when x is NaN or x >= y (x <= y for min), else y.
                Max | Min => simd::pick(l, op == Max, x, y),
                _ => unreachable!("comparisons handled above"),
            }
        }
    }
}

/// Integer condition codes of comparisons (bools compare unsigned: `false < true`).
fn int_cc(op: BinaryOp, d: DType) -> Option<IntCC> {
    use BinaryOp::*;
    let unsigned = d == DType::Bool;
    Some(match op {
        Eq => IntCC::Equal,
        Ne => IntCC::NotEqual,
        Lt if unsigned => IntCC::UnsignedLessThan,
        Le if unsigned => IntCC::UnsignedLessThanOrEqual,
        Gt if unsigned => IntCC::UnsignedGreaterThan,
        Ge if unsigned => IntCC::UnsignedGreaterThanOrEqual,
        Lt => IntCC::SignedLessThan,
        Le => IntCC::SignedLessThanOrEqual,
        Gt => IntCC::SignedGreaterThan,
        Ge => IntCC::SignedGreaterThanOrEqual,
        _ => return None,
    })
}

/// Float comparisons as Rust's operators (`!=` is true for NaN, the others false).
fn float_cc(op: BinaryOp) -> Option<FloatCC> {
    use BinaryOp::*;
    Some(match op {
        Eq => FloatCC::Equal,
        Ne => FloatCC::NotEqual,
        Lt => FloatCC::LessThan,
        Le => FloatCC::LessThanOrEqual,
        Gt => FloatCC::GreaterThan,
        Ge => FloatCC::GreaterThanOrEqual,
        _ => return None,
    })
}

/// The vector form of a cast between f32 and bool (either way), if it is one.
fn cast_vector(from: DType, to: DType) -> Option<VecOp<'static>> {
    match (from, to) {
        (DType::F32, DType::Bool) => Some(Box::new(|l, v| {
            let zero = simd::fconst(l, types::F32X4, 0.0);
            l.b.ins().fcmp(FloatCC::NotEqual, v[0], zero)
        })),
        (DType::Bool, DType::F32) => Some(Box::new(|l, v| {
            let (one, zero) = (simd::fconst(l, types::F32X4, 1.0), simd::fconst(l, types::F32X4, 0.0));
            simd::select(l, v[0], one, zero)
        })),
        _ => None,
    }
}

/// One element converted with the interpreter's `cast` rules (`runtime/src/elem.rs`).
fn cast_scalar(l: &mut FnLower, from: DType, to: DType, v: &[Value]) -> Vec<Value> {
    use DType::*;
    // Bool and c64 sources become a real value first where that is the rule.
    if to == Bool {
        return vec![match from {
            F32 | F64 => {
                let z = float_zero(l, float(from));
                l.b.ins().fcmp(FloatCC::NotEqual, v[0], z)
            }
            I64 => l.b.ins().icmp_imm_s(IntCC::NotEqual, v[0], 0),
            C64 => {
                let z = float_zero(l, types::F32);
                let re = l.b.ins().fcmp(FloatCC::NotEqual, v[0], z);
                let im = l.b.ins().fcmp(FloatCC::NotEqual, v[1], z);
                l.b.ins().bor(re, im)
            }
            Bool => v[0],
        }];
    }
    // The source as (f32 or f64 or i64) scalar.
    let (x, xt) = match from {
        F32 => (v[0], types::F32),
        F64 => (v[0], types::F64),
        I64 => (v[0], types::I64),
        Bool => (l.b.ins().uextend(types::I64, v[0]), types::I64),
        C64 => (v[0], types::F32),
    };
    let target = match to {
        F32 | C64 => types::F32,
        F64 => types::F64,
        _ => types::I64,
    };
    let y = convert(l, x, xt, target);
    if to == C64 {
        let z = float_zero(l, types::F32);
        vec![y, z]
    } else {
        vec![y]
    }
}

fn float_zero(l: &mut FnLower, t: Type) -> Value {
    if t == types::F64 {
        l.b.ins().f64const(0.0)
    } else {
        l.b.ins().f32const(0.0)
    }
}

/// Rust's `as` between f32, f64 and i64 (float to int saturates, NaN gives 0).
fn convert(l: &mut FnLower, x: Value, from: Type, to: Type) -> Value {
    match (from, to) {
        _ if from == to => x,
        (types::F32, types::F64) => l.b.ins().fpromote(types::F64, x),
        (types::F64, types::F32) => l.b.ins().fdemote(types::F32, x),
        (types::I64, _) => l.b.ins().fcvt_from_sint(to, x),
        (_, _) => l.b.ins().fcvt_to_sint_sat(types::I64, x),
    }
}

/// `real` (`imag = false`) or `imag`: parts of c64, identity or zeros of a real operand.
fn part(l: &mut FnLower, inst: &Inst, imag: bool) -> Result<(), ClifError> {
    let x = l.arg(inst, 0);
    match (x.ty.dtype, imag) {
        (DType::C64, _) => map(l, inst, &[x], move |_, v| vec![v[imag as usize]]),
        (DType::F32 | DType::F64, false) => {
            l.alias(inst.result, &x, &inst.ty);
            Ok(())
        }
        (DType::F32 | DType::F64, true) => {
            let out = l.alloc(&inst.ty);
            let n = l.numel(&inst.ty);
            fill(l, inst.ty.dtype, out.0, n, 0.0);
            l.bind(inst.result, out, &inst.ty);
            Ok(())
        }
        (d, _) => Err(ClifError::unsupported(inst.op.name(), format!("of {d}"))),
    }
}
