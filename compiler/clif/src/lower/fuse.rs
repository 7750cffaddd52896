//! Elementwise fusion: which elementwise results are never stored but computed inside the
//! loop of their one reader ([`super::ew`]), so a chain of elementwise ops is one loop.
//!
//! A result is fused when its instruction is a loop op (unary, binary, `select`, a cast to
//! another dtype; real, integer or bool dtypes, not the i64 `div`/`rem`/`pow` kernels),
//! exactly one operand of the function reads it, that reader is such an op with the same
//! shape, and it is not a result of the function. The operands of a fused instruction
//! are then read by the loop of the unfused instruction at the end of its chain, so
//! their buffers live until then ([`extend_last_uses`]). Fusion changes no value: each
//! element goes through the same operations in the same order.

use archc_compiler::tir::{BinaryOp, DType, Func, Inst, Op, TensorType, ValueId};
use std::collections::{HashMap, HashSet};

/// Whether `inst` is computed by an elementwise loop that can also compute its operands.
fn loop_op(inst: &Inst, types: &HashMap<ValueId, &TensorType>) -> bool {
    let dtypes: Vec<DType> = inst.args.iter().filter_map(|a| types.get(a).map(|t| t.dtype)).collect();
    if dtypes.len() != inst.args.len() || !inst.extra.is_empty() {
        return false;
    }
    if dtypes.contains(&DType::C64) || inst.ty.dtype == DType::C64 {
        return false;
    }
    match &inst.op {
        Op::Unary(_) | Op::Select => true,
        Op::Binary(b) => !(dtypes[0] == DType::I64 && matches!(b, BinaryOp::Div | BinaryOp::Rem | BinaryOp::Pow)),
        Op::Cast => dtypes[0] != inst.ty.dtype,
        _ => false,
    }
}

/// The values of `func` computed in their reader's loop.
pub(crate) fn fused(func: &Func) -> HashSet<ValueId> {
    let mut types: HashMap<ValueId, &TensorType> = func.args.iter().map(|(v, t)| (*v, t)).collect();
    for inst in &func.body {
        types.extend(inst.results());
    }
    let mut reads: HashMap<ValueId, (usize, usize)> = HashMap::new();
    for (pos, inst) in func.body.iter().enumerate() {
        for a in &inst.args {
            let e = reads.entry(*a).or_insert((0, pos));
            e.0 += 1;
        }
    }
    let results: HashSet<ValueId> = func.results.iter().copied().collect();
    let mut out = HashSet::new();
    for inst in &func.body {
        let v = inst.result;
        let Some(&(1, pos)) = reads.get(&v) else { continue };
        let reader = &func.body[pos];
        if !results.contains(&v) && loop_op(inst, &types) && loop_op(reader, &types) && reader.ty.shape == inst.ty.shape
        {
            out.insert(v);
        }
    }
    out
}

/// Extends the last use of every operand of a fused instruction to the position of the
/// unfused instruction whose loop computes it.
pub(crate) fn extend_last_uses(func: &Func, fused: &HashSet<ValueId>, last_use: &mut HashMap<ValueId, usize>) {
    let mut reader: HashMap<ValueId, usize> = HashMap::new();
    for (pos, inst) in func.body.iter().enumerate() {
        for a in &inst.args {
            reader.insert(*a, pos);
        }
    }
    // The position of the loop that computes each fused value (readers come later).
    let mut home: HashMap<ValueId, usize> = HashMap::new();
    for inst in func.body.iter().rev() {
        let v = inst.result;
        if !fused.contains(&v) {
            continue;
        }
        let r = reader[&v];
        let h = home.get(&func.body[r].result).copied().unwrap_or(r);
        home.insert(v, h);
        for a in &inst.args {
            let last = last_use.entry(*a).or_insert(h);
            if *last != super::END {
                *last = (*last).max(h);
            }
        }
    }
}
