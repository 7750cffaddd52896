//! Expansion before differentiation: `call` and `stack` are inlined (a stack becomes its
//! blocks applied in order), and every `param` read becomes an argument `param:NAME`, so
//! the train step is a pure function of its parameters.
//!
//! `scan` and `vmap` stay: their bodies are functions of their own.

use super::emit::Res;
use crate::tir::{Func, Inst, Op, Program, TensorType, ValueId};
use std::collections::HashMap;

/// `func` with every `call` and `stack` replaced by the callee's body (recursively).
pub fn inline_calls(program: &Program, func: &Func) -> Res<Func> {
    let mut out = Func { body: Vec::new(), ..func.clone() };
    let mut next = func.next_value().0;
    let mut map: HashMap<ValueId, ValueId> = func.args.iter().map(|(v, _)| (*v, *v)).collect();
    emit_body(program, &func.body, &mut map, &mut out.body, &mut next, 0)?;
    out.results = func.results.iter().map(|r| map[r]).collect();
    Ok(out)
}

const MAX_INLINE_DEPTH: usize = 64;

fn emit_body(
    program: &Program,
    body: &[Inst],
    map: &mut HashMap<ValueId, ValueId>,
    out: &mut Vec<Inst>,
    next: &mut u32,
    depth: usize,
) -> Res<()> {
    if depth > MAX_INLINE_DEPTH {
        return Err("calls nest too deeply to inline".into());
    }
    for inst in body {
        let args: Vec<ValueId> = inst.args.iter().map(|a| map[a]).collect();
        let callees: Vec<String> = match &inst.op {
            Op::Call(f) => vec![f.clone()],
            Op::Stack(fs) => fs.clone(),
            _ => {
                let mut copy = inst.clone();
                copy.args = args;
                copy.result = fresh(next, map, inst.result);
                for (v, _) in &mut copy.extra {
                    *v = fresh(next, map, *v);
                }
                out.push(copy);
                continue;
            }
        };
        let mut current = args;
        for name in &callees {
            let callee = program.func(name).ok_or_else(|| format!("no function `{name}`"))?;
            let mut inner: HashMap<ValueId, ValueId> = HashMap::new();
            for ((v, _), a) in callee.args.iter().zip(current.iter()) {
                inner.insert(*v, *a);
            }
            // A stack passes operands after the first unchanged to every block.
            emit_body(program, &callee.body, &mut inner, out, next, depth + 1)?;
            let results: Vec<ValueId> = callee.results.iter().map(|r| inner[r]).collect();
            if matches!(inst.op, Op::Stack(_)) {
                current[0] = results[0];
            } else {
                current = results;
            }
        }
        let finals: Vec<ValueId> = if matches!(inst.op, Op::Stack(_)) { vec![current[0]] } else { current };
        for (r, v) in inst.result_ids().zip(finals) {
            map.insert(r, v);
        }
    }
    Ok(())
}

fn fresh(next: &mut u32, map: &mut HashMap<ValueId, ValueId>, old: ValueId) -> ValueId {
    let v = ValueId(*next);
    *next += 1;
    map.insert(old, v);
    v
}

/// Replaces every `param` read by an argument named `param:NAME` (one per parameter, in
/// program declaration order among those read). Returns the names, in argument order.
pub fn params_to_args(program: &Program, func: &mut Func) -> Vec<String> {
    let mut next = func.next_value().0;
    let mut args: HashMap<String, ValueId> = HashMap::new();
    let mut order: Vec<(String, ValueId, TensorType)> = Vec::new();
    let mut replace: HashMap<ValueId, ValueId> = HashMap::new();
    for inst in &func.body {
        if let Op::Param(name) = &inst.op {
            let v = *args.entry(name.clone()).or_insert_with(|| {
                let v = ValueId(next);
                next += 1;
                order.push((name.clone(), v, inst.ty.clone()));
                v
            });
            replace.insert(inst.result, v);
        }
    }
    func.body.retain(|i| !matches!(i.op, Op::Param(_)));
    for inst in &mut func.body {
        for a in &mut inst.args {
            if let Some(r) = replace.get(a) {
                *a = *r;
            }
        }
    }
    for r in &mut func.results {
        if let Some(v) = replace.get(r) {
            *r = *v;
        }
    }
    let rank = |n: &str| program.params.iter().position(|p| p.name == n).unwrap_or(usize::MAX);
    order.sort_by_key(|(n, _, _)| rank(n));
    for (name, v, t) in &order {
        func.args.push((*v, t.clone()));
        func.arg_names.push(format!("param:{name}"));
    }
    order.into_iter().map(|(n, _, _)| n).collect()
}

/// Makes the bodies of `scan` and `vmap` parameter-free, so that every parameter read is
/// in `func` itself (where [`params_to_args`] turns it into an argument): a body that
/// reads parameters gets them as extra arguments — `scan` passes them as invariants,
/// `vmap` broadcast along the mapped axis (each sample sees the same value; the
/// gradient of the broadcast sums over samples). Calls inside bodies are inlined first;
/// nested bodies are handled recursively. New bodies are added to `table`.
pub fn hoist_params(table: &super::control::FuncTable, func: &Func) -> Res<Func> {
    let mut out = Func { body: Vec::new(), ..func.clone() };
    let mut next = func.next_value().0;
    for inst in &func.body {
        let (callee, is_scan) = match &inst.op {
            Op::Scan { func, .. } => (func.clone(), true),
            Op::Vmap { func, .. } => (func.clone(), false),
            _ => {
                out.body.push(inst.clone());
                continue;
            }
        };
        let body = table.get(&callee).ok_or_else(|| format!("no function `{callee}`"))?;
        let body = hoist_params(table, &inline_calls(table.base, &body)?)?;
        let reads = param_reads(&body);
        if reads.is_empty() {
            out.body.push(inst.clone());
            continue;
        }
        let new_body = take_params(&body, &reads);
        let name = table.add(new_body);
        let mut new = inst.clone();
        for (pname, ty) in &reads {
            let p = ValueId(next);
            next += 1;
            out.body.push(Inst::new(p, Op::Param(pname.clone()), vec![], ty.clone()));
            let operand = if is_scan {
                p
            } else {
                let batch = func.type_of(inst.args[0]).or_else(|| out.type_of(inst.args[0])).ok_or("vmap operand")?;
                let mut shape = vec![batch.shape[0].clone()];
                shape.extend(ty.shape.iter().cloned());
                let b = ValueId(next);
                next += 1;
                out.body.push(Inst::new(b, Op::Broadcast, vec![p], TensorType::new(ty.dtype, shape)));
                b
            };
            new.args.push(operand);
        }
        match &mut new.op {
            Op::Scan { func, .. } => *func = name,
            Op::Vmap { func, keep, .. } => {
                *func = name;
                keep.extend(reads.iter().map(|_| false));
            }
            _ => unreachable!("scan or vmap"),
        }
        out.body.push(new);
    }
    Ok(out)
}

/// The parameters a function reads, in first-read order, with their types.
fn param_reads(f: &Func) -> Vec<(String, TensorType)> {
    let mut out: Vec<(String, TensorType)> = Vec::new();
    for i in &f.body {
        if let Op::Param(n) = &i.op {
            if !out.iter().any(|(m, _)| m == n) {
                out.push((n.clone(), i.ty.clone()));
            }
        }
    }
    out
}

/// `f` with each parameter read replaced by a new trailing argument.
fn take_params(f: &Func, reads: &[(String, TensorType)]) -> Func {
    let mut g = f.clone();
    g.name = format!("{}.explicit", f.name);
    let mut next = f.next_value().0;
    let mut arg_of: HashMap<String, ValueId> = HashMap::new();
    for (name, ty) in reads {
        let v = ValueId(next);
        next += 1;
        g.args.push((v, ty.clone()));
        g.arg_names.push(format!("param:{name}"));
        arg_of.insert(name.clone(), v);
    }
    let replace: HashMap<ValueId, ValueId> = f
        .body
        .iter()
        .filter_map(|i| match &i.op {
            Op::Param(n) => Some((i.result, arg_of[n])),
            _ => None,
        })
        .collect();
    g.body.retain(|i| !matches!(i.op, Op::Param(_)));
    for i in &mut g.body {
        for a in &mut i.args {
            if let Some(r) = replace.get(a) {
                *a = *r;
            }
        }
    }
    for r in &mut g.results {
        if let Some(v) = replace.get(r) {
            *r = *v;
        }
    }
    g
}
