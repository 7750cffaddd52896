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
