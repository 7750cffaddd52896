//! `archc-flatten-parallel-loops` (GPU path, after loop fusion, before outlining):
//! multi-dimensional parallel loops whose first dimension does not fill thread blocks
//! become one flat dimension.
//!
//! Outlining tiles the first dimension of each parallel loop (the innermost, after the
//! host wrapping put it first) by [`crate::gpu::BLOCK`] threads and maps the others to
//! blocks: a `[256, 10]` loop ran 256 blocks of 256 threads with 10 of each busy.
//! Flattened, it runs 10 blocks with every thread busy, consecutive threads still on
//! consecutive elements of the first dimension.
//!
//! Contract: every `scf.parallel` without results with at least two dimensions, lower
//! bounds 0, steps 1 and constant, non-zero upper bounds whose product fits an index,
//! whose first dimension is not a multiple of `BLOCK`, becomes a one-dimensional loop over
//! the product of the bounds. Its body first recovers the old induction variables with
//! `arith.remui`/`arith.divui`, first dimension fastest, then runs the old body. Other
//! loops are left as they are. The iterations run are the same, so results are too.

use super::ir::{constant_index, index_constant, ops_named, parallel_1d};
use crate::gpu::BLOCK;
use melior::dialect::arith;
use melior::ir::block::BlockLike;
use melior::ir::operation::OperationLike;
use melior::ir::{OperationRef, RegionLike, Value};
use melior::Context;
use melior::IrRewriter;

/// Flattens every qualifying loop under `root`.
pub fn run(context: &Context, root: OperationRef) {
    for raw in ops_named(root, "scf.parallel") {
        // SAFETY: collected from the live IR under `root`; flattening a loop moves its
        // body (and the loops in it) into the new loop, erasing only the old loop op.
        let op = unsafe { OperationRef::from_raw(raw) };
        if let Some(sizes) = flat_sizes(op) {
            flatten(context, op, &sizes);
        }
    }
}

/// The loop's constant sizes if it qualifies (see the module doc).
fn flat_sizes(op: OperationRef) -> Option<Vec<i64>> {
    let n = op.operand_count() / 3;
    if op.result_count() > 0 || n < 2 || op.operand_count() != 3 * n {
        return None;
    }
    let value = |i: usize| op.operand(i).ok().and_then(constant_index);
    let sizes: Vec<i64> = (0..n).map(|d| value(n + d)).collect::<Option<_>>()?;
    let zero = (0..n).all(|d| value(d) == Some(0));
    let one = (0..n).all(|d| value(2 * n + d) == Some(1));
    let total = sizes.iter().try_fold(1i64, |p, &s| if s > 0 { p.checked_mul(s) } else { None })?;
    (zero && one && sizes[0] % BLOCK as i64 != 0 && total > 0).then_some(sizes)
}

fn flatten(context: &Context, op: OperationRef, sizes: &[i64]) {
    let location = op.location();
    let rewriter = IrRewriter::from_op(op);
    let base = rewriter.as_rewriter_base();
    let total: i64 = sizes.iter().product();
    let zero = base.insert(index_constant(context, 0, location));
    let one = base.insert(index_constant(context, 1, location));
    let end = base.insert(index_constant(context, total, location));
    let [zero, one, end]: [Value; 3] = [zero, one, end].map(|c| c.result(0).expect("constant").into());
    let flat = base.insert(parallel_1d(context, [zero, end, one], location));
    let block = flat.region(0).expect("loop body").first_block().expect("loop block");
    let mut rest: Value = block.argument(0).expect("induction variable").into();
    let mut ivs: Vec<Value> = Vec::with_capacity(sizes.len());
    for &size in &sizes[..sizes.len() - 1] {
        let size = block.append_operation(index_constant(context, size, location));
        let size: Value = size.result(0).expect("constant").into();
        let iv = block.append_operation(arith::remui(rest, size, location));
        ivs.push(iv.result(0).expect("remainder").into());
        rest = block.append_operation(arith::divui(rest, size, location)).result(0).expect("quotient").into();
    }
    let last = block.append_operation(arith::addi(rest, zero, location));
    ivs.push(last.result(0).expect("sum").into());
    let body = op.region(0).expect("loop body").first_block().expect("loop block");
    base.merge_blocks(body, block, &ivs);
    base.erase_op(op);
}
