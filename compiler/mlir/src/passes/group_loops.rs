//! `archc-group-loops` (CPU and GPU pipelines, before `scf-parallel-loop-fusion`, which
//! merges only *adjacent* parallel loops over equal bounds): independent loops over
//! equal bounds are brought next to each other first. A spectral layer's gradient, for
//! one, interleaves einsums over `[B, o, m]` with einsums over `[i, o, m]`, and an
//! optimizer updates parameters of a few shapes in turn; each such loop was a kernel.
//!
//! Contract: in each function body (after `archc-mark-distinct`), a top-level
//! `scf.parallel` without results whose bounds and steps are index constants moves up to
//! just after the nearest earlier top-level loop with the same bounds and steps, provided
//! it is independent of every op it moves past: it uses no value they define, writes no
//! buffer they read or write, and reads no buffer they write. Buffers are compared by
//! root (a view's source, a global's symbol, an argument or an allocation; distinct roots
//! are distinct buffers, which `archc-mark-distinct` establishes), and an op other than a
//! parallel loop, a view, a constant, an allocation or a global read is taken to write
//! every value it uses. Inside a loop, a `memref.store` or `memref.atomic_rmw` writes its
//! buffer, a call, a copy or a `gpu` op writes every value it uses, and every other use
//! reads. The search stops at the first op it may not move past, or after [`REACH`] ops.
//! Nothing else changes; whether moved loops are then merged is for the fusion pass to
//! decide.

use super::ir::{constant_index, is};
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationLike, OperationResult, WalkOrder, WalkResult};
use melior::ir::r#type::TypeLike;
use melior::ir::{OperationRef, RegionLike, Value, ValueLike};
use melior::IrRewriter;
use std::collections::HashSet;

/// How many ops back a loop looks for one with the same bounds.
pub const REACH: usize = 64;

/// Ops that define a view of their first operand.
const VIEWS: &[&str] = &[
    "memref.expand_shape",
    "memref.collapse_shape",
    "memref.subview",
    "memref.reinterpret_cast",
    "memref.cast",
    "memref.transpose",
    "memref.view",
];

/// What a buffer (or any value) is, for comparing effects: a global's symbol, or the
/// value a chain of views starts from (by its handle).
#[derive(Clone, PartialEq, Eq, Hash)]
enum Root {
    Global(String),
    Value(usize),
}

/// A top-level op with what the pass needs to know about it.
struct Item<'c, 'a> {
    op: OperationRef<'c, 'a>,
    /// Bounds and steps (as constants) of a movable parallel loop.
    key: Option<Vec<i64>>,
    reads: HashSet<Root>,
    writes: HashSet<Root>,
}

/// Brings independent loops over equal bounds together in every function under `root`.
pub fn run(root: OperationRef) {
    let Some(block) = root.region(0).ok().and_then(|r| r.first_block()) else { return };
    let funcs: Vec<OperationRef> =
        std::iter::successors(block.first_operation(), |o| o.next_in_block()).filter(|f| is(f, "func.func")).collect();
    for func in funcs {
        if let Some(body) = func.region(0).ok().and_then(|r| r.first_block()) {
            group_body(std::iter::successors(body.first_operation(), |o| o.next_in_block()).collect());
        }
    }
}

fn group_body(ops: Vec<OperationRef>) {
    let mut out: Vec<Item> = Vec::new();
    for op in ops {
        let item = describe(op);
        let at = item.key.as_ref().and_then(|k| place(&out, &item, k));
        match at {
            Some(i) => {
                let rewriter = IrRewriter::from_op(op);
                rewriter.as_rewriter_base().move_op_after(op, out[i - 1].op);
                out.insert(i, item);
            }
            None => out.push(item),
        }
    }
}

/// Where `item` (a loop with bounds `key`) goes: just after the nearest earlier loop
/// with the same bounds it may move up to, if any.
fn place(out: &[Item], item: &Item, key: &[i64]) -> Option<usize> {
    for (i, other) in out.iter().enumerate().rev().take(REACH) {
        if other.key.as_deref() == Some(key) {
            return (i + 1 < out.len()).then_some(i + 1);
        }
        if !independent(item, other) {
            return None;
        }
    }
    None
}

/// Whether `item` (a loop moving up) may move past `other`.
fn independent(item: &Item, other: &Item) -> bool {
    !uses_results_of(item.op, other.op)
        && item.writes.is_disjoint(&other.reads)
        && item.writes.is_disjoint(&other.writes)
        && item.reads.is_disjoint(&other.writes)
}

/// Whether `op` or an op inside it uses a result of `other`.
fn uses_results_of(op: OperationRef, other: OperationRef) -> bool {
    let mut found = false;
    let other = other.to_raw();
    op.walk(WalkOrder::PreOrder, |o| {
        found |= o.operands().any(|v| OperationResult::try_from(v).is_ok_and(|r| r.owner().to_raw().ptr == other.ptr));
        if found {
            WalkResult::Interrupt
        } else {
            WalkResult::Advance
        }
    });
    found
}

/// The root of a value: through views to their source, a global read to its symbol.
fn root(v: Value) -> Root {
    let mut v = v;
    loop {
        let Ok(result) = OperationResult::try_from(v) else { break };
        let owner = result.owner();
        let name = owner.name().as_string_ref().as_str().unwrap_or_default().to_string();
        if name == "memref.get_global" {
            return Root::Global(owner.attribute("name").map(|a| a.to_string()).unwrap_or_default());
        }
        if !VIEWS.contains(&name.as_str()) {
            break;
        }
        match owner.operand(0) {
            Ok(source) => v = source,
            Err(_) => break,
        }
    }
    Root::Value(v.to_raw().ptr as usize)
}

/// Whether `v` is an index constant (which no op writes).
fn is_index_constant(v: Value) -> bool {
    // SAFETY: `v`'s type is a live type.
    constant_index(v).is_some() && unsafe { mlir_sys::mlirTypeIsAIndex(v.r#type().to_raw()) }
}

/// Whether `v` is defined inside `op` (by an op nested in it, or as an argument of one of
/// its blocks).
fn defined_inside(v: Value, op: OperationRef) -> bool {
    let parent = match OperationResult::try_from(v) {
        Ok(result) => result.owner().parent_operation(),
        Err(_) => {
            // SAFETY: a value that is not an operation result is a block argument.
            let arg = unsafe { mlir_sys::mlirBlockArgumentGetOwner(v.to_raw()) };
            let owner = unsafe { mlir_sys::mlirBlockGetParentOperation(arg) };
            (!owner.ptr.is_null()).then(|| unsafe { OperationRef::from_raw(owner) })
        }
    };
    let target = op.to_raw().ptr;
    let mut at = parent;
    while let Some(p) = at {
        if p.to_raw().ptr == target {
            return true;
        }
        at = p.parent_operation();
    }
    false
}

/// The values `op` and the ops inside it use that are defined outside it, index
/// constants left out, each with the op using it.
fn outside_uses<'c, 'a>(op: OperationRef<'c, 'a>) -> Vec<(OperationRef<'c, 'a>, usize, Value<'c, 'a>)> {
    let mut raw = Vec::new();
    op.walk(WalkOrder::PreOrder, |o| {
        raw.push(o.to_raw());
        WalkResult::Advance
    });
    let mut out = Vec::new();
    for r in raw {
        // SAFETY: collected just above from the live IR.
        let user = unsafe { OperationRef::from_raw(r) };
        for (i, v) in user.operands().enumerate() {
            let inner = user.to_raw().ptr != op.to_raw().ptr && defined_inside(v, op);
            if !inner && !is_index_constant(v) {
                out.push((user, i, v));
            }
        }
    }
    out
}

/// Reads the op's effects.
fn describe<'c, 'a>(op: OperationRef<'c, 'a>) -> Item<'c, 'a> {
    let name = op.name().as_string_ref().as_str().unwrap_or_default().to_string();
    let (mut reads, mut writes) = (HashSet::new(), HashSet::new());
    let mut key = None;
    match name.as_str() {
        "arith.constant" | "memref.alloc" | "memref.alloca" | "memref.get_global" => {}
        n if VIEWS.contains(&n) => {}
        "scf.parallel" if op.result_count() == 0 => {
            let n = op.operand_count() / 3;
            key = (0..3 * n).map(|i| op.operand(i).ok().and_then(constant_index)).collect();
            for (user, i, v) in outside_uses(op) {
                let stored = (is(&user, "memref.store") && i == 1) || (is(&user, "memref.atomic_rmw") && i == 1);
                if stored || opaque(&user) {
                    writes.insert(root(v));
                } else {
                    reads.insert(root(v));
                }
            }
        }
        _ => writes.extend(outside_uses(op).into_iter().map(|(_, _, v)| root(v))),
    }
    Item { op, key, reads, writes }
}

/// An op inside a loop that may write any buffer it uses (a call, a copy, a GPU op).
fn opaque(op: &OperationRef) -> bool {
    let name = op.name().as_string_ref().as_str().unwrap_or_default().to_string();
    matches!(name.as_str(), "func.call" | "memref.copy") || name.starts_with("gpu.") || name.ends_with(".call")
}
