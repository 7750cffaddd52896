//! `archc-parallel-loops`: which parallel loops of the CPU pipeline run on several cores.
//!
//! Runs on a module after `convert-linalg-to-parallel-loops`, where every linalg op is one
//! `scf.parallel` over its parallel dimensions with `scf.for` loops inside for its
//! reduction dimensions. For each outermost `scf.parallel` the pass estimates the work
//! (operations executed: each `scf.for` multiplies its body by its trip count; other
//! nested regions count once) and rewrites the loop:
//! - with at least `min_work` operations and an outer trip count of 2 or more, it becomes
//!   a one-dimensional `scf.parallel` over its outermost dimension with `scf.for` loops
//!   inside for the others (each core then runs whole rows, which LLVM's vectoriser sees
//!   as before); `convert-scf-to-openmp` later makes it an OpenMP region run by
//!   [`crate::runtime::omp`];
//! - otherwise it becomes nested `scf.for` loops, as `convert-linalg-to-loops` would have
//!   made it: small steps never pay for a fork.
//!
//! Loops nested inside another `scf.parallel` always become `scf.for` loops. A trip count
//! whose bounds are run-time values (a batch, a sequence length) is taken as
//! [`ASSUMED_TRIP`]; a loop with a constant step that is not positive, and every loop when
//! `min_work` is `None`, is made sequential. A `scf.parallel` with reductions (results) is
//! left as it is: archc's lowering never produces one.
//!
//! Contract: the rewrite only re-nests loops (same bounds, same body, same order of
//! iterations within each core), so it never changes what a program computes.

use super::ir::{body_region, constant_index, is, parallel_1d, reduce};
use melior::dialect::scf;
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationLike, WalkOrder, WalkResult};
use melior::ir::{BlockRef, Location, Operation, OperationRef, RegionLike, Value};
use melior::Context;
use melior::IrRewriter;
use mlir_sys::MlirOperation;

/// Work (operations executed, estimated) from which a loop runs on several cores by
/// default. A fork to a spinning helper costs about a microsecond; the MNIST-1D CNN's train
/// step (loops of 10k-250k operations over `[100, 25, L]` activations) took 17 ms per
/// epoch at 2^14 against 21 ms at 2^18 on a 2-core Zen 4, while digits, mnist_5k and the
/// FNO forward did not move.
pub const MIN_WORK: u64 = 1 << 14;

/// The trip count assumed for a loop whose bounds are known only at run time: a typical
/// batch.
pub const ASSUMED_TRIP: u64 = 64;

/// Rewrites every `scf.parallel` under `root` (see the module doc). `min_work`: `None`
/// makes every loop sequential.
pub fn run(context: &Context, root: OperationRef, min_work: Option<u64>) {
    for raw in parallel_loops_innermost_first(root) {
        // SAFETY: `raw` was collected from the live IR under `root`; rewriting a loop moves
        // (never erases) the loops nested in it, which were all visited before it.
        let op = unsafe { OperationRef::from_raw(raw) };
        if op.result_count() > 0 {
            continue;
        }
        let keep_parallel = match min_work {
            Some(min) if is_outermost(op) => decide(op, min),
            _ => false,
        };
        renest(context, op, keep_parallel);
    }
}

/// Every `scf.parallel` under `root`, nested loops before the loops holding them.
fn parallel_loops_innermost_first(root: OperationRef) -> Vec<MlirOperation> {
    let mut found = Vec::new();
    root.walk(WalkOrder::PostOrder, |op| {
        if is(&op, "scf.parallel") {
            found.push(op.to_raw());
        }
        WalkResult::Advance
    });
    found
}

fn is_outermost(op: OperationRef) -> bool {
    let mut parent = op.parent_operation();
    while let Some(p) = parent {
        if is(&p, "scf.parallel") {
            return false;
        }
        parent = p.parent_operation();
    }
    true
}

/// Whether the loop stays parallel: enough work, at least two outer iterations, and
/// positive constant steps.
fn decide(op: OperationRef, min_work: u64) -> bool {
    let n = op.operand_count() / 3;
    let trips: Option<Vec<u64>> = (0..n).map(|d| trip(&op, d, n, 2 * n)).collect();
    let (Some(trips), Some(body)) = (trips, block_work(op.region(0).ok().and_then(|r| r.first_block()))) else {
        return false;
    };
    let work = trips.iter().fold(body.max(1), |w, &t| w.saturating_mul(t));
    work >= min_work && trips[0] >= 2
}

/// The trip count of dimension `d` of a loop whose operands are lower bounds, upper bounds
/// at `ub` and steps at `st`: exact for constant bounds, [`ASSUMED_TRIP`] for run-time
/// ones, `None` for a constant step that is not positive.
fn trip(op: &OperationRef, d: usize, ub: usize, st: usize) -> Option<u64> {
    let known = |i: usize| op.operand(i).ok().and_then(constant_index);
    match (known(d), known(ub + d), known(st + d)) {
        (_, _, Some(s)) if s <= 0 => None,
        (Some(l), Some(u), Some(s)) => Some(if u > l { ((u - l + s - 1) / s) as u64 } else { 0 }),
        _ => Some(ASSUMED_TRIP),
    }
}

/// Operations executed by a block: a `scf.for` counts its body times its trip count, other
/// operations count once with the operations of their regions; operand-free terminators
/// (`scf.yield`, `scf.reduce`) count nothing. `None` if a step is not positive.
fn block_work(block: Option<BlockRef>) -> Option<u64> {
    let mut total = 0u64;
    let mut next = block.and_then(|b| b.first_operation());
    while let Some(op) = next {
        let work = if is(&op, "scf.for") {
            let body = block_work(op.region(0).ok().and_then(|r| r.first_block()))?;
            trip(&op, 0, 1, 2)?.saturating_mul(body.max(1))
        } else if (is(&op, "scf.yield") || is(&op, "scf.reduce")) && op.operand_count() == 0 {
            0
        } else {
            let mut w = 1u64;
            for region in op.regions() {
                let mut b = region.first_block();
                while let Some(blk) = b {
                    w = w.saturating_add(block_work(Some(blk))?);
                    b = blk.next_in_region();
                }
            }
            w
        };
        total = total.saturating_add(work);
        next = op.next_in_block();
    }
    Some(total)
}

/// Replaces the loop by nested loops over its dimensions, outermost first: a
/// one-dimensional `scf.parallel` over the first when `keep_parallel`, `scf.for` loops
/// for the rest. A one-dimensional loop that stays parallel is left as it is.
fn renest(context: &Context, op: OperationRef, keep_parallel: bool) {
    let n = op.operand_count() / 3;
    if n == 0 || (keep_parallel && n == 1) {
        return;
    }
    let location = op.location();
    let bounds = |d: usize| [d, n + d, 2 * n + d].map(|i| op.operand(i).expect("loop bounds"));
    let rewriter = IrRewriter::from_op(op);
    let base = rewriter.as_rewriter_base();
    let outer =
        if keep_parallel { parallel_1d(context, bounds(0), location) } else { for_loop(context, bounds(0), location) };
    let outer = base.insert(outer);
    let mut block = outer.region(0).expect("loop body").first_block().expect("loop block");
    let mut ivs: Vec<Value> = vec![block.argument(0).expect("induction variable").into()];
    let mut terminator_of_block = if keep_parallel { reduce(location) } else { scf::r#yield(&[], location) };
    for d in 1..n {
        let inner = block.append_operation(for_loop(context, bounds(d), location));
        block.append_operation(terminator_of_block);
        block = inner.region(0).expect("loop body").first_block().expect("loop block");
        ivs.push(block.argument(0).expect("induction variable").into());
        terminator_of_block = scf::r#yield(&[], location);
    }
    let body = op.region(0).expect("loop body").first_block().expect("loop block");
    base.merge_blocks(body, block, &ivs);
    if let Some(old) = block.terminator() {
        base.erase_op(old);
    }
    block.append_operation(terminator_of_block);
    base.erase_op(op);
}

/// `scf.for` over `[lb, ub, step]` with an empty body block (its induction variable only).
fn for_loop<'c>(context: &'c Context, [lb, ub, step]: [Value<'c, '_>; 3], location: Location<'c>) -> Operation<'c> {
    scf::r#for(lb, ub, step, body_region(context, location), location)
}
