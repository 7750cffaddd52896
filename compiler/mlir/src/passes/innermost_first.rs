//! `archc-innermost-first` (GPU path, the end of `pipelines::gpu_loops`): every parallel
//! loop's innermost dimension first.
//!
//! The tiling by threads and the mapping to `x` (`pipelines::gpu_outline`) take a parallel
//! loop's first dimension; with the innermost (last) dimension first, consecutive threads
//! touch consecutive elements (coalesced accesses).
//!
//! Contract: every `scf.parallel` with two or more dimensions is replaced by one whose
//! lower bounds, upper bounds, steps and induction variables are those of the old loop in
//! reverse order; its body (which refers to each dimension by its induction variable), its
//! reductions and attributes are the old loop's. Parallel dimensions commute, so the loop
//! means the same.

use super::ir::ops_named;
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationBuilder, OperationLike};
use melior::ir::{Block, OperationRef, Region, RegionLike, Type, Value, ValueLike};
use melior::IrRewriter;

/// Reverses the dimensions of every multi-dimensional `scf.parallel` under `root`.
pub fn run(root: OperationRef) {
    for raw in ops_named(root, "scf.parallel") {
        // SAFETY: collected from the live IR under `root`; reversing a loop moves its body
        // (and the loops in it) into the new loop, erasing only the old loop op.
        let op = unsafe { OperationRef::from_raw(raw) };
        reverse(op);
    }
}

fn reverse(op: OperationRef) {
    let Some(body) = op.region(0).ok().and_then(|r| r.first_block()) else { return };
    let n = body.argument_count();
    let operands: Vec<Value> = op.operands().collect();
    if n < 2 || operands.len() < 3 * n {
        return;
    }
    let mut reversed: Vec<Value> = Vec::with_capacity(operands.len());
    for group in operands[..3 * n].chunks(n) {
        reversed.extend(group.iter().rev());
    }
    reversed.extend(&operands[3 * n..]);
    let args: Vec<(Type, _)> =
        (0..n).rev().filter_map(|i| body.argument(i).ok()).map(|a| (a.r#type(), a.location())).collect();
    let region = Region::new();
    region.append_block(Block::new(&args));
    let types: Vec<Type> = op.results().map(|r| r.r#type()).collect();
    let attributes: Vec<_> = op.attributes().collect();
    let new = OperationBuilder::new("scf.parallel", op.location())
        .add_operands(&reversed)
        .add_results(&types)
        .add_attributes(&attributes)
        .add_regions([region])
        .build();
    let Ok(new) = new else { return };
    let rewriter = IrRewriter::from_op(op);
    let base = rewriter.as_rewriter_base();
    let new = base.insert(new);
    let Some(block) = new.region(0).ok().and_then(|r| r.first_block()) else { return };
    // Old dimension `i` is new dimension `n - 1 - i`.
    let ivs: Vec<Value> = (0..n).rev().filter_map(|i| block.argument(i).ok().map(Value::from)).collect();
    base.merge_blocks(body, block, &ivs);
    let results: Vec<Value> = new.results().map(Value::from).collect();
    base.replace_op_with_values(op, &results);
}
