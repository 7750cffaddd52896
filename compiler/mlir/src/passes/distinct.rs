//! `archc-unmark-distinct` (GPU path, after loop fusion): removes the
//! `memref.distinct_objects` ops that told `scf-parallel-loop-fusion` the function's
//! buffers do not overlap (see `gpu::fuse`), their results replaced by their operands.
//! Lowered, each would be one `llvm.assume` per pair of buffers in the host code.
//!
//! Contract: after the pass no `memref.distinct_objects` op is left; every use of one of
//! its results reads the operand it stood for, so nothing computed changes.

use super::ir::is;
use melior::ir::operation::{OperationLike, WalkOrder, WalkResult};
use melior::ir::OperationRef;
use melior::IrRewriter;

/// Removes every `memref.distinct_objects` under `root`.
pub fn unmark(root: OperationRef) {
    let mut found = Vec::new();
    root.walk(WalkOrder::PreOrder, |op| {
        if is(&op, "memref.distinct_objects") {
            found.push(op.to_raw());
        }
        WalkResult::Advance
    });
    for raw in found {
        // SAFETY: collected from the live IR under `root`; each op is erased once.
        let op = unsafe { OperationRef::from_raw(raw) };
        let rewriter = IrRewriter::from_op(op);
        let base = rewriter.as_rewriter_base();
        let operands: Vec<_> = op.operands().collect();
        base.replace_op_with_values(op, &operands);
    }
}
