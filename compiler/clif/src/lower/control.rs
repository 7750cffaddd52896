//! Control ops as calls and loops: `call`, `stack`, `vmap`, `scan`.
//!
//! A callee is the specialisation of its function for the operand types
//! ([`crate::module::Shared::spec`]); its result types must equal the instruction's
//! (structurally, over the entry's symbols), so the buffers the caller allocates are the
//! ones the callee fills. Each activation gets the interpreter's frame key,
//! `mix(key, site, index)` (index: 0 for `call`, the entry of a `stack`, the sample of a
//! `vmap`, the time index of a `scan`).
//!
//! - `stack`: the entries write alternately into two buffers, the last into the result.
//! - `vmap`: sample `i` of every operand is a contiguous run, passed in place; each
//!   result of sample `i` is written in place into run `i` of the result.
//! - `scan`: sequences are made steps-first (a permuted copy unless `axis` is 0), carries
//!   go back and forth between two buffers, outputs are written at their step's run (into
//!   a steps-first buffer, permuted into place at the end, unless `axis` is 0).

use super::ir::View;
use super::{elem, FnLower, Val};
use crate::ClifError;
use archc_compiler::tir::{Dim, Inst, Op, TensorType};
use cranelift_codegen::ir::{types, InstBuilder, Value};
use cranelift_module::FuncId;

pub(crate) fn lower(l: &mut FnLower, inst: &Inst) -> Result<(), ClifError> {
    match &inst.op {
        Op::Call(f) => call(l, inst, f),
        Op::Stack(fs) => stack(l, inst, fs),
        Op::Vmap { func, keep, out_keep } => vmap(l, inst, func, keep, out_keep),
        Op::Scan { func, axis, carries, xs, reverse } => scan(l, inst, func, *axis, (*carries, *xs), *reverse),
        op => unreachable!("{} is not a control op", op.name()),
    }
}

fn mismatch(op: &str, f: &str, got: &[TensorType], want: &[TensorType]) -> ClifError {
    let show = |ts: &[TensorType]| ts.iter().map(|t| t.to_string()).collect::<Vec<_>>().join(", ");
    ClifError::unsupported(op, format!("@{f} returns ({}) where ({}) is declared", show(got), show(want)))
}

/// `mix(key, site, index)`.
fn child_key(l: &mut FnLower, inst: &Inst, index: Value) -> Value {
    let site = l.iconst(inst.result.0 as i64);
    let args = [l.key, site, index];
    l.call_rt("archc_clif_mix", &[types::I64; 3], &[types::I64], &args).expect("a key")
}

/// Calls compiled function `id` with argument and result buffers.
fn invoke(l: &mut FnLower, id: FuncId, key: Value, args: &[Value], outs: &[Value]) {
    let (a, o) = (l.array(args), l.array(outs));
    let call = [l.ctx, key, a, o];
    l.call_id(id, &call);
}

fn call(l: &mut FnLower, inst: &Inst, f: &str) -> Result<(), ClifError> {
    let args: Vec<Val> = inst.args.iter().map(|a| l.val(*a)).collect();
    let types_: Vec<TensorType> = args.iter().map(|v| v.ty.clone()).collect();
    let (id, results) = l.sh.spec(f, &types_)?;
    let declared = inst.result_types();
    if results != declared {
        return Err(mismatch("call", f, &results, &declared));
    }
    let outs: Vec<(Value, usize)> = declared.iter().map(|t| l.alloc(t)).collect();
    let zero = l.iconst(0);
    let key = child_key(l, inst, zero);
    let ptrs: Vec<Value> = args.iter().map(|v| v.ptr).collect();
    let out_ptrs: Vec<Value> = outs.iter().map(|o| o.0).collect();
    invoke(l, id, key, &ptrs, &out_ptrs);
    for ((r, t), out) in inst.results().zip(outs) {
        l.bind(r, out, t);
    }
    Ok(())
}

fn stack(l: &mut FnLower, inst: &Inst, fs: &[String]) -> Result<(), ClifError> {
    let x = l.arg(inst, 0);
    let rest: Vec<Val> = inst.args[1..].iter().map(|a| l.val(*a)).collect();
    let mut ids = Vec::new();
    for f in fs {
        let mut ts = vec![x.ty.clone()];
        ts.extend(rest.iter().map(|v| v.ty.clone()));
        let (id, results) = l.sh.spec(f, &ts)?;
        if results != [inst.ty.clone()] || x.ty != inst.ty {
            return Err(mismatch("stack", f, &results, std::slice::from_ref(&inst.ty)));
        }
        ids.push(id);
    }
    if ids.is_empty() {
        l.alias(inst.result, &x, &inst.ty);
        return Ok(());
    }
    let out = l.alloc(&inst.ty);
    let other = if ids.len() > 1 { Some(l.scratch(&inst.ty)) } else { None };
    let rest_ptrs: Vec<Value> = rest.iter().map(|v| v.ptr).collect();
    let mut cur = x.ptr;
    for (j, id) in ids.iter().enumerate() {
        // The last entry writes the result; the ones before alternate with it.
        let target = if (ids.len() - 1 - j) % 2 == 0 { out.0 } else { other.expect("two buffers") };
        let index = l.iconst(j as i64);
        let key = child_key(l, inst, index);
        let mut args = vec![cur];
        args.extend(&rest_ptrs);
        invoke(l, *id, key, &args, &[target]);
        cur = target;
    }
    l.bind(inst.result, out, &inst.ty);
    Ok(())
}

/// `t` without axis 0 (`keep`: with it as size 1).
fn sample_type(t: &TensorType, keep: bool) -> TensorType {
    let mut shape = t.shape[1..].to_vec();
    if keep {
        shape.insert(0, Dim::constant(1));
    }
    TensorType::new(t.dtype, shape)
}

fn vmap(l: &mut FnLower, inst: &Inst, f: &str, keep: &[bool], out_keep: &[bool]) -> Result<(), ClifError> {
    let args: Vec<Val> = inst.args.iter().map(|a| l.val(*a)).collect();
    let refuse = |why: &str| ClifError::unsupported("vmap", format!("@{f}: {why}"));
    if keep.len() != args.len() || args.is_empty() || out_keep.len() != inst.num_results() {
        return Err(refuse("flags do not fit the operands and results"));
    }
    if args.iter().any(|a| a.ty.rank() == 0 || a.ty.shape[0] != args[0].ty.shape[0]) {
        return Err(refuse("operands need one size along axis 0"));
    }
    let batch = args[0].ty.shape[0].clone();
    let samples: Vec<TensorType> = args.iter().zip(keep).map(|(a, &k)| sample_type(&a.ty, k)).collect();
    let (id, results) = l.sh.spec(f, &samples)?;
    let declared = inst.result_types();
    for ((r, d), &k) in results.iter().zip(&declared).zip(out_keep) {
        let fits = match k {
            true => r.rank() >= 1 && d.numel() == batch.mul(&r.numel()) && r.dtype == d.dtype,
            false => *d == TensorType::new(r.dtype, [vec![batch.clone()], r.shape.clone()].concat()),
        };
        if !fits {
            return Err(mismatch("vmap", f, &results, &declared));
        }
    }
    let outs: Vec<(Value, usize)> = declared.iter().map(|t| l.alloc(t)).collect();
    let in_bytes: Vec<Value> = samples.iter().map(|t| l.bytes(t)).collect();
    let out_bytes: Vec<Value> = results.iter().map(|t| l.bytes(t)).collect();
    let n = l.dim(&batch);
    l.for_range(n, |l, i| {
        let a: Vec<Value> = args.iter().zip(&in_bytes).map(|(v, &b)| offset(l, v.ptr, i, b)).collect();
        let o: Vec<Value> = outs.iter().zip(&out_bytes).map(|(v, &b)| offset(l, v.0, i, b)).collect();
        let key = child_key(l, inst, i);
        invoke(l, id, key, &a, &o);
    });
    for ((r, t), out) in inst.results().zip(outs) {
        l.bind(r, out, t);
    }
    Ok(())
}

/// `base + i * bytes`.
fn offset(l: &mut FnLower, base: Value, i: Value, bytes: Value) -> Value {
    let o = l.b.ins().imul(i, bytes);
    l.b.ins().iadd(base, o)
}

/// `t` with `axis` removed.
fn without(t: &TensorType, axis: usize) -> TensorType {
    let mut shape = t.shape.clone();
    shape.remove(axis);
    TensorType::new(t.dtype, shape)
}

/// `t` with `axis` moved first.
fn axis_first(t: &TensorType, axis: usize) -> (TensorType, Vec<usize>) {
    let perm: Vec<usize> = std::iter::once(axis).chain((0..t.rank()).filter(|&a| a != axis)).collect();
    (TensorType::new(t.dtype, perm.iter().map(|&p| t.shape[p].clone()).collect()), perm)
}

fn scan(
    l: &mut FnLower,
    inst: &Inst,
    f: &str,
    axis: usize,
    (carries, n_xs): (usize, usize),
    reverse: bool,
) -> Result<(), ClifError> {
    let args: Vec<Val> = inst.args.iter().map(|a| l.val(*a)).collect();
    let refuse = |why: &str| ClifError::unsupported("scan", format!("@{f}: {why}"));
    if n_xs == 0 || args.len() < carries + n_xs || inst.num_results() < carries {
        return Err(refuse("operand counts do not fit"));
    }
    let xs = &args[carries..carries + n_xs];
    if xs.iter().any(|x| axis >= x.ty.rank() || x.ty.shape[axis] != xs[0].ty.shape[axis]) {
        return Err(refuse("sequences need one length along the axis"));
    }
    let steps = xs[0].ty.shape[axis].clone();
    let mut step_types: Vec<TensorType> = args[..carries].iter().map(|a| a.ty.clone()).collect();
    step_types.extend(xs.iter().map(|x| without(&x.ty, axis)));
    step_types.extend(args[carries + n_xs..].iter().map(|a| a.ty.clone()));
    let (id, results) = l.sh.spec(f, &step_types)?;
    let declared = inst.result_types();
    let carry_ok = results.len() == declared.len() && results[..carries] == step_types[..carries];
    let ys_ok = results[carries.min(results.len())..].iter().zip(&declared[carries..]).all(|(y, d)| {
        axis <= y.rank()
            && *d == {
                let mut s = y.shape.clone();
                s.insert(axis, steps.clone());
                TensorType::new(y.dtype, s)
            }
    });
    if !carry_ok || !ys_ok || declared[..carries] != step_types[..carries] {
        return Err(mismatch("scan", f, &results, &declared));
    }
    // Sequences steps-first.
    let seqs: Vec<Value> = xs.iter().map(|x| steps_first(l, x, axis)).collect();
    // Results, and where each step writes its outputs.
    let outs: Vec<(Value, usize)> = declared.iter().map(|t| l.alloc(t)).collect();
    let ys: Vec<(Value, TensorType)> = results[carries..]
        .iter()
        .zip(&outs[carries..])
        .map(|(y, out)| {
            let mut s = y.shape.clone();
            s.insert(0, steps.clone());
            let t = TensorType::new(y.dtype, s);
            let buf = if axis == 0 { out.0 } else { l.scratch(&t) };
            (buf, t)
        })
        .collect();
    let spare: Vec<Value> = declared[..carries].iter().map(|t| l.scratch(t)).collect();
    let carry_bytes: Vec<Value> = declared[..carries].iter().map(|t| l.bytes(t)).collect();
    let x_bytes: Vec<Value> = step_types[carries..carries + n_xs].iter().map(|t| l.bytes(t)).collect();
    let y_bytes: Vec<Value> = results[carries..].iter().map(|t| l.bytes(t)).collect();
    let invariants: Vec<Value> = args[carries + n_xs..].iter().map(|a| a.ptr).collect();
    // cur[c]: where carry c is now; the next step writes to the buffer it is not in.
    let cur: Vec<_> = args[..carries]
        .iter()
        .map(|a| {
            let v = l.b.declare_var(types::I64);
            l.b.def_var(v, a.ptr);
            v
        })
        .collect();
    let n = l.dim(&steps);
    l.for_range(n, |l, t| {
        let ti = if reverse {
            let last = l.b.ins().iadd_imm_s(n, -1);
            l.b.ins().isub(last, t)
        } else {
            t
        };
        let mut a: Vec<Value> = cur.iter().map(|v| l.b.use_var(*v)).collect();
        let targets: Vec<Value> = (0..carries)
            .map(|c| {
                // The result buffer unless the carry is in it now, then the spare one.
                let now = a[c];
                let in_out = l.b.ins().icmp(cranelift_codegen::ir::condcodes::IntCC::Equal, now, outs[c].0);
                l.b.ins().select(in_out, spare[c], outs[c].0)
            })
            .collect();
        for (s, &b) in seqs.iter().zip(&x_bytes) {
            a.push(offset(l, *s, ti, b));
        }
        a.extend(&invariants);
        let mut o = targets.clone();
        for ((y, _), &b) in ys.iter().zip(&y_bytes) {
            o.push(offset(l, *y, ti, b));
        }
        let key = child_key(l, inst, ti);
        invoke(l, id, key, &a, &o);
        for (v, t) in cur.iter().zip(&targets) {
            l.b.def_var(*v, *t);
        }
    });
    for c in 0..carries {
        let now = l.b.use_var(cur[c]);
        l.call_rt("archc_clif_copy", &[types::I64; 3], &[], &[outs[c].0, now, carry_bytes[c]]);
    }
    if axis != 0 {
        for ((buf, t), out) in ys.iter().zip(&outs[carries..]) {
            put_axis_back(l, *buf, t, out.0, axis);
        }
    }
    for ((r, t), out) in inst.results().zip(outs) {
        l.bind(r, out, t);
    }
    Ok(())
}

/// The buffer of `x` with `axis` first: `x` itself for axis 0, else a permuted copy.
fn steps_first(l: &mut FnLower, x: &Val, axis: usize) -> Value {
    if axis == 0 {
        return x.ptr;
    }
    let (t, perm) = axis_first(&x.ty, axis);
    let buf = l.scratch(&t);
    let shape = l.shape(&x.ty);
    let st = l.strides(&shape);
    let sizes: Vec<Value> = perm.iter().map(|&p| shape[p]).collect();
    let zero = l.iconst(0);
    let src = View { ptr: x.ptr, off: zero, strides: perm.iter().map(|&p| st[p]).collect() };
    let dst = l.dense(buf, &sizes);
    l.copy_view(elem(x.ty.dtype).1, &sizes, &src, &dst);
    buf
}

/// Copies a steps-first buffer `buf` (type `t`, steps on axis 0) into `out`, whose
/// steps are on `axis`.
fn put_axis_back(l: &mut FnLower, buf: Value, t: &TensorType, out: Value, axis: usize) {
    let shape = l.shape(t);
    // out axis a reads buf axis: `axis` -> 0, a < axis -> a + 1, a > axis -> a.
    let perm: Vec<usize> = (0..t.rank())
        .map(|a| {
            if a == axis {
                0
            } else if a < axis {
                a + 1
            } else {
                a
            }
        })
        .collect();
    let st = l.strides(&shape);
    let sizes: Vec<Value> = perm.iter().map(|&p| shape[p]).collect();
    let zero = l.iconst(0);
    let src = View { ptr: buf, off: zero, strides: perm.iter().map(|&p| st[p]).collect() };
    let dst = l.dense(out, &sizes);
    l.copy_view(elem(t.dtype).1, &sizes, &src, &dst);
}
