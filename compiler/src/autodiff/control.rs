//! Gradients through `scan` and `vmap`, whose bodies are functions.
//!
//! A body's vector-Jacobian product is built as the gradient of an inner product:
//! `vjp_f(args..., ct...) = d/d args sum_k <f(args)_k, ct_k>`, a new function.
//! - `vmap(f)`: the cotangents come from `vmap(vjp_f)` over the operands and the result
//!   cotangents; a cotangent is concatenated where its operand was kept per sample and
//!   stacked where it was dropped (a per-sample weight gets `[B, ...]`).
//! - `scan(f)`: the forward scan is re-run with the incoming carries as extra per-step
//!   outputs; a scan in the opposite direction then carries the carry cotangents and
//!   the accumulated invariant cotangents, and emits the per-step `xs` cotangents.

use super::emit::{Emitter, Res, V};
use super::reverse::gradient;
use crate::tir::infer::FuncSigs;
use crate::tir::{BinaryOp, Func, Inst, Op, Program, ReduceOp, TensorType, ValueId};
use std::cell::RefCell;

/// The program's functions plus the ones created while differentiating.
pub struct FuncTable<'p> {
    pub base: &'p Program,
    pub added: RefCell<Vec<Func>>,
}

impl<'p> FuncTable<'p> {
    pub fn new(base: &'p Program) -> Self {
        FuncTable { base, added: RefCell::new(Vec::new()) }
    }

    pub fn get(&self, name: &str) -> Option<Func> {
        self.added.borrow().iter().find(|f| f.name == name).cloned().or_else(|| self.base.func(name).cloned())
    }

    /// Adds a function under a name not yet used; returns the name.
    pub fn add(&self, mut f: Func) -> String {
        let base = f.name.clone();
        let mut n = 0;
        while self.get(&f.name).is_some() {
            n += 1;
            f.name = format!("{base}.{n}");
        }
        let name = f.name.clone();
        self.added.borrow_mut().push(f);
        name
    }
}

impl FuncSigs for FuncTable<'_> {
    fn sig(&self, name: &str) -> Option<(Vec<TensorType>, Vec<TensorType>)> {
        let f = self.get(name)?;
        Some((f.args.iter().map(|(_, t)| t.clone()).collect(), f.result_types()))
    }
}

/// `vjp_f(args..., ct_0.., ct_n) -> (d args...)` for function `name`.
fn vjp_function(table: &FuncTable, name: &str) -> Res<String> {
    let f = table.get(name).ok_or_else(|| format!("no function `{name}`"))?;
    let mut g = f.clone();
    g.name = format!("{name}.vjp");
    let mut e = Emitter::new(g, table);
    let mut cts = Vec::new();
    for (i, r) in f.results.iter().enumerate() {
        let t = e.ty(*r);
        let v = ValueId(e.peek_next());
        e.bump_past(v);
        e.func.args.push((v, t));
        e.func.arg_names.push(format!("ct:{i}"));
        cts.push(v);
    }
    let mut total: Option<V> = None;
    for (r, c) in f.results.iter().zip(&cts) {
        let t = e.ty(*r);
        if !t.dtype.is_float() {
            continue;
        }
        let p = e.mul(*r, *c)?;
        let s = e.op(Op::Reduce { op: ReduceOp::Sum, axes: (0..t.rank()).collect(), keepdim: false }, &[p], None)?;
        let s = e.cast(s, crate::tir::DType::F64)?;
        total = Some(match total {
            None => s,
            Some(acc) => e.add(acc, s)?,
        });
    }
    let loss = match total {
        Some(l) => l,
        None => e.op(Op::Const(0.0), &[], Some(TensorType::scalar(crate::tir::DType::F64)))?,
    };
    let wrt: Vec<ValueId> = f.args.iter().map(|(v, _)| *v).collect();
    let mut func = e.func;
    func.results.clear();
    func.result_names.clear();
    let with_grads = gradient(&func, table, loss, &wrt)?;
    let n = wrt.len();
    let mut out = with_grads.clone();
    out.results = with_grads.results[with_grads.results.len() - n..].to_vec();
    out.result_names = f.arg_names.iter().map(|a| format!("d:{a}")).collect();
    crate::passes::dead_code(&mut out);
    Ok(table.add(out))
}

/// Cotangents of a `vmap`'s operands.
pub fn vmap_vjp(e: &mut Emitter, table: &FuncTable, inst: &Inst, cts: &[Option<V>]) -> Res<Vec<Option<V>>> {
    let Op::Vmap { func, keep, out_keep } = &inst.op else { unreachable!("a vmap") };
    let vjp = vjp_function(table, func)?;
    let mut operands = inst.args.clone();
    for ((r, t), c) in inst.results().zip(cts) {
        let _ = r;
        operands.push(match c {
            Some(c) => *c,
            None => e.fill(0.0, t)?,
        });
    }
    let mut k = keep.clone();
    k.extend(out_keep.iter().copied());
    let op = Op::Vmap { func: vjp, keep: k, out_keep: keep.clone() };
    Ok(e.op_multi(op, &operands)?.into_iter().map(Some).collect())
}

/// Cotangents of a `scan`'s operands.
pub fn scan_vjp(e: &mut Emitter, table: &FuncTable, inst: &Inst, cts: &[Option<V>]) -> Res<Vec<Option<V>>> {
    let Op::Scan { func, axis, carries, xs, reverse } = &inst.op else { unreachable!("a scan") };
    let (k, m) = (*carries, *xs);
    let f = table.get(func).ok_or_else(|| format!("no function `{func}`"))?;
    let p = inst.args.len() - k - m;
    let n = f.results.len() - k;
    // Forward again, also stacking the carries each step starts from.
    let mut aug = f.clone();
    aug.name = format!("{func}.carries");
    for i in 0..k {
        aug.results.push(f.args[i].0);
        aug.result_names.push(format!("carry_in:{i}"));
    }
    let aug = table.add(aug);
    let fwd = e.op_multi(Op::Scan { func: aug, axis: *axis, carries: k, xs: m, reverse: *reverse }, &inst.args)?;
    let prev: Vec<V> = fwd[k + n..].to_vec();
    let vjp = vjp_function(table, func)?;
    let cell = backward_cell(table, &f, &vjp, k, m, n, p)?;
    let results: Vec<(ValueId, TensorType)> = inst.results().map(|(v, t)| (v, t.clone())).collect();
    let mut ops = Vec::new();
    for i in 0..k {
        ops.push(match cts[i] {
            Some(c) => c,
            None => e.fill(0.0, &results[i].1)?,
        });
    }
    for l in 0..p {
        let t = e.ty(inst.args[k + m + l]);
        ops.push(e.fill(0.0, &t)?);
    }
    ops.extend(prev);
    ops.extend(inst.args[k..k + m].iter().copied());
    for j in 0..n {
        ops.push(match cts[k + j] {
            Some(c) => c,
            None => e.fill(0.0, &results[k + j].1)?,
        });
    }
    ops.extend(inst.args[k + m..].iter().copied());
    let op = Op::Scan { func: cell, axis: *axis, carries: k + p, xs: k + m + n, reverse: !reverse };
    let back = e.op_multi(op, &ops)?;
    let mut out: Vec<Option<V>> = back[..k].iter().map(|v| Some(*v)).collect();
    out.extend(back[k + p..k + p + m].iter().map(|v| Some(*v)));
    out.extend(back[k..k + p].iter().map(|v| Some(*v)));
    Ok(out)
}

/// `cell(ct_c.., acc_v.., c_prev.., x.., ct_y.., v..) -> (ct_c_prev.., acc_v + ct_v.., ct_x..)`.
fn backward_cell(table: &FuncTable, f: &Func, vjp: &str, k: usize, m: usize, n: usize, p: usize) -> Res<String> {
    let arg_t = |i: usize| f.args[i].1.clone();
    let res_t = |i: usize| f.result_types()[i].clone();
    let mut types: Vec<(String, TensorType)> = Vec::new();
    types.extend((0..k).map(|i| (format!("ct_c{i}"), res_t(i))));
    types.extend((0..p).map(|l| (format!("acc_v{l}"), arg_t(k + m + l))));
    types.extend((0..k).map(|i| (format!("c_prev{i}"), arg_t(i))));
    types.extend((0..m).map(|j| (format!("x{j}"), arg_t(k + j))));
    types.extend((0..n).map(|j| (format!("ct_y{j}"), res_t(k + j))));
    types.extend((0..p).map(|l| (format!("v{l}"), arg_t(k + m + l))));
    let func = Func {
        name: format!("{}.back", f.name),
        args: types.iter().enumerate().map(|(i, (_, t))| (ValueId(i as u32), t.clone())).collect(),
        arg_names: types.iter().map(|(n, _)| n.clone()).collect(),
        body: Vec::new(),
        results: Vec::new(),
        result_names: Vec::new(),
    };
    let a = |i: usize| ValueId(i as u32);
    let (ct_c, acc, prev, x, ct_y, v) = (0, k, k + p, k + p + k, k + p + k + m, k + p + k + m + n);
    let mut e = Emitter::new(func, table);
    let mut call_args: Vec<V> = (0..k).map(|i| a(prev + i)).collect();
    call_args.extend((0..m).map(|j| a(x + j)));
    call_args.extend((0..p).map(|l| a(v + l)));
    call_args.extend((0..k).map(|i| a(ct_c + i)));
    call_args.extend((0..n).map(|j| a(ct_y + j)));
    let d = e.op_multi(Op::Call(vjp.to_string()), &call_args)?;
    let mut results: Vec<(String, V)> = (0..k).map(|i| (format!("ct_c{i}"), d[i])).collect();
    for l in 0..p {
        let s = e.bin(BinaryOp::Add, a(acc + l), d[k + m + l])?;
        results.push((format!("acc_v{l}"), s));
    }
    results.extend((0..m).map(|j| (format!("ct_x{j}"), d[k + j])));
    let mut func = e.func;
    for (name, v) in results {
        func.results.push(v);
        func.result_names.push(name);
    }
    Ok(table.add(func))
}
