//! `archc-mark-distinct` and `archc-unmark-distinct` (CPU and GPU pipelines, around
//! `scf-parallel-loop-fusion`): they tell the fusion what the runtime guarantees and its
//! alias analysis cannot see, that a function's buffers do not overlap, and take the
//! claim away again after it.
//!
//! After bufferization each linalg op is one top-level `scf.parallel`. A reduction is
//! three loops over the same results (fill the accumulator, fold into it, cast it); an
//! elementwise op whose result has several users is a loop of its own, as is each of an
//! optimizer's updates of a parameter and its moments. The fusion pass merges two
//! adjacent loops when the second reads what the first wrote only at the same index and
//! no buffer the first writes may alias one the second reads (and the other way round);
//! only ops without memory effects may sit between them. MLIR's local alias analysis
//! knows that two allocations are distinct, but not that an allocation and an argument
//! are, or two arguments; and an `alloc` between two loops keeps them apart.
//!
//! Contract of [`mark`]: in each function body, the top-level allocations without
//! operands (static shapes) after the last top-level read of a global move up to follow
//! it, then one `memref.distinct_objects` op takes the function's memref arguments, the
//! globals it reads once (a symbol read twice would be two names for one buffer) and those
//! allocations, and its results replace them in every op below it. Functions with fewer
//! than two such buffers are left alone. The runtimes give every output a buffer of its
//! own, distinct from the inputs (the GPU runners give inputs their own too; the CPU
//! backends may pass one tensor for two inputs, which compiled code only reads, so no
//! fusion decision depends on their being distinct), globals are distinct from them,
//! and buffers are freed only at the end of the function (ownership-based deallocation
//! frees at the end of the block), so the claim holds and the earlier allocations
//! lengthen no lifetime.
//!
//! Contract of [`unmark`]: no `memref.distinct_objects` op is left; every use of one of
//! its results reads the operand it stood for (lowered, each op would be one
//! `llvm.assume` per pair of buffers in the host code). Neither pass changes what is
//! computed.

use super::ir::{is, ops_named};
use melior::ir::block::BlockLike;
use melior::ir::operation::OperationRefMut;
use melior::ir::operation::{OperationBuilder, OperationLike, OperationMutLike, WalkOrder, WalkResult};
use melior::ir::r#type::TypeLike;
use melior::ir::{OperationRef, RegionLike, Type, Value, ValueLike};
use melior::IrRewriter;

/// Marks the buffers of every function under `root` distinct.
pub fn mark(root: OperationRef) {
    for func in functions(root) {
        mark_function(func);
    }
}

/// The `func.func` ops with a body directly under `root`.
fn functions<'c, 'a>(root: OperationRef<'c, 'a>) -> Vec<OperationRef<'c, 'a>> {
    let Some(block) = root.region(0).ok().and_then(|r| r.first_block()) else { return Vec::new() };
    std::iter::successors(block.first_operation(), |o| o.next_in_block())
        .filter(|f| is(f, "func.func") && f.region(0).is_ok_and(|r| r.first_block().is_some()))
        .collect()
}

fn mark_function(func: OperationRef) {
    let Some(block) = func.region(0).ok().and_then(|r| r.first_block()) else { return };
    let ops: Vec<OperationRef> = std::iter::successors(block.first_operation(), |o| o.next_in_block()).collect();
    let symbol = |o: &OperationRef| o.attribute("name").map(|a| a.to_string()).unwrap_or_default();
    let globals: Vec<usize> = (0..ops.len()).filter(|&k| is(&ops[k], "memref.get_global")).collect();
    let once = |k: usize| globals.iter().filter(|&&j| symbol(&ops[j]) == symbol(&ops[k])).count() == 1;
    let insert_at = globals.iter().map(|k| k + 1).max().unwrap_or(0);
    let allocs: Vec<usize> = (insert_at..ops.len())
        .filter(|&k| is(&ops[k], "memref.alloc") && ops[k].operand_count() == 0 && ops[k].region_count() == 0)
        .collect();
    let mut buffers: Vec<Value> = (0..block.argument_count())
        .filter_map(|i| block.argument(i).ok().map(Value::from))
        .filter(|v| is_memref(v.r#type()))
        .collect();
    buffers.extend(globals.iter().filter(|&&k| once(k)).filter_map(|&k| ops[k].result(0).ok().map(Value::from)));
    buffers.extend(allocs.iter().filter_map(|&k| ops[k].result(0).ok().map(Value::from)));
    let Some(first_rest) = (insert_at..ops.len()).find(|k| !allocs.contains(k)).map(|k| ops[k]) else { return };
    if buffers.len() < 2 {
        return;
    }
    let rewriter = IrRewriter::from_op(first_rest);
    let base = rewriter.as_rewriter_base();
    for &k in &allocs {
        base.move_op_before(ops[k], first_rest);
    }
    let types: Vec<Type> = buffers.iter().map(|v| v.r#type()).collect();
    let distinct = OperationBuilder::new("memref.distinct_objects", func.location())
        .add_operands(&buffers)
        .add_results(&types)
        .build()
        .expect("valid memref.distinct_objects");
    base.set_insertion_point_before(first_rest);
    let distinct = base.insert(distinct);
    let marked: Vec<Value> = distinct.results().map(Value::from).collect();
    let mut users = Vec::new();
    let mut next = Some(first_rest);
    while let Some(op) = next {
        op.walk(WalkOrder::PreOrder, |o| {
            users.push(o.to_raw());
            WalkResult::Advance
        });
        next = op.next_in_block();
    }
    for raw in users {
        // SAFETY: collected just above from the live function body; nothing is erased.
        let mut user = unsafe { OperationRefMut::from_raw(raw) };
        for i in 0..user.operand_count() {
            let Ok(v) = user.operand(i) else { continue };
            if let Some(k) = buffers.iter().position(|b| *b == v) {
                user.set_operand(i, marked[k]);
            }
        }
    }
}

fn is_memref(t: Type) -> bool {
    // SAFETY: `t` is a live type.
    unsafe { mlir_sys::mlirTypeIsAMemRef(t.to_raw()) }
}

/// Removes every `memref.distinct_objects` under `root`.
pub fn unmark(root: OperationRef) {
    for raw in ops_named(root, "memref.distinct_objects") {
        // SAFETY: collected from the live IR under `root`; each op is erased once.
        let op = unsafe { OperationRef::from_raw(raw) };
        let rewriter = IrRewriter::from_op(op);
        let base = rewriter.as_rewriter_base();
        let operands: Vec<_> = op.operands().collect();
        base.replace_op_with_values(op, &operands);
    }
}
