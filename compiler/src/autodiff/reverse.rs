//! The reverse sweep: from a straight-line function and one scalar result, a function
//! that also returns the gradient of that result with respect to chosen arguments.
//!
//! Every instruction of the forward body is kept; then, in reverse order, each
//! instruction with a cotangent on any result contributes its operands' cotangents
//! (primitive ops through [`super::rules::vjp`], `scan`/`vmap` through
//! [`super::control`]), summed when a value is used more than once. Values of integer
//! or boolean type carry no cotangent.

use super::control::{scan_vjp, vmap_vjp, FuncTable};
use super::emit::{Emitter, Res, V};
use super::rules::vjp;
use crate::tir::{Func, Inst, Op, ValueId};
use std::collections::HashMap;

/// `func` extended to return, after its own results, `d loss / d wrt[i]` for each `wrt`.
/// `loss` must be a real scalar (`f32[]` or `f64[]`) defined in `func`. Functions the
/// gradient needs (bodies of `scan`/`vmap` cotangents) are added to `table`.
pub fn gradient(func: &Func, table: &FuncTable, loss: ValueId, wrt: &[ValueId]) -> Res<Func> {
    let lt = func.type_of(loss).ok_or("the loss is not defined in this function")?.clone();
    if lt.rank() != 0 || !lt.dtype.is_float() {
        return Err(format!("the loss must be a real scalar, found {lt}"));
    }
    let forward = func.body.clone();
    let mut e = Emitter::new(func.clone(), table);
    let mut ct: HashMap<ValueId, V> = HashMap::new();
    ct.insert(loss, e.fill(1.0, &lt)?);
    for inst in forward.iter().rev() {
        let cts: Vec<Option<V>> = inst.result_ids().map(|r| ct.get(&r).copied()).collect();
        if cts.iter().all(Option::is_none) {
            continue;
        }
        let grads =
            operand_cotangents(&mut e, table, inst, &cts).map_err(|m| format!("{m} (in `{}`)", inst.op.name()))?;
        for (arg, g) in inst.args.iter().zip(grads) {
            let Some(g) = g else { continue };
            if !e.ty(*arg).dtype.is_inexact() {
                continue;
            }
            let acc = match ct.get(arg) {
                Some(&prev) => e.add(prev, g)?,
                None => g,
            };
            ct.insert(*arg, acc);
        }
    }
    let mut out = Vec::new();
    for w in wrt {
        let g = match ct.get(w) {
            Some(&g) => g,
            None => e.fill(0.0, &e.ty(*w))?,
        };
        out.push(g);
    }
    let mut f = e.func;
    for (i, g) in out.into_iter().enumerate() {
        f.results.push(g);
        f.result_names.push(format!("grad:{i}"));
    }
    Ok(f)
}

fn operand_cotangents(e: &mut Emitter, table: &FuncTable, inst: &Inst, cts: &[Option<V>]) -> Res<Vec<Option<V>>> {
    match &inst.op {
        Op::Scan { .. } => scan_vjp(e, table, inst, cts),
        Op::Vmap { .. } => vmap_vjp(e, table, inst, cts),
        _ => {
            if !inst.ty.dtype.is_inexact() {
                return Ok(vec![None; inst.args.len()]);
            }
            let c = cts[0].ok_or("internal: a single-result op without a cotangent")?;
            vjp(e, inst, c)
        }
    }
}
