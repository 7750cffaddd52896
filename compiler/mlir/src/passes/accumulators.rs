//! `archc-carry-accumulators` (CPU and GPU pipelines, after loop fusion): a
//! reduction's accumulators in registers instead of memory.
//!
//! `convert-linalg-to-parallel-loops` turns a reduction into a parallel loop over the
//! results around an `scf.for` nest over the reduced elements, whose innermost body loads
//! the result's element, combines it with an input element and stores it back. In a
//! kernel that is a load and a store of global memory per element, and the store keeps
//! the next iteration's input loads from starting early (they might read what it wrote),
//! so each thread waits for its loads one at a time.
//!
//! Contract: every perfect nest of `scf.for` loops without results (each level holds
//! nothing but the next level; the innermost body holds no regions) whose innermost body
//! loads and then stores a buffer at the same indices, the buffer and indices defined
//! outside the nest, and uses that buffer in no other operation, is rewritten: the
//! element is loaded once before the nest, carried through every level as an `iter_args`
//! value (the load's uses read it, the stored value is yielded), and stored once after the
//! nest. Several such buffers in one body become several carried values, in the order of
//! their stores. A nest that does not qualify as a whole is tried again from its next
//! level in. The nest computes the same values; only the memory traffic changes (nothing
//! else in the body touches the buffer, and the element loaded and stored is the same one
//! every iteration).

use super::ir::{is, ops_named};
use melior::dialect::{memref, scf};
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationBuilder, OperationLike, OperationResult};
use melior::ir::ValueLike;
use melior::ir::{Block, BlockRef, Location, Operation, OperationRef, Region, RegionLike, Type, Value};
use melior::Context;
use melior::IrRewriter;
use mlir_sys::MlirOperation;

/// Carries the accumulators of every qualifying nest under `root`.
pub fn run(context: &Context, root: OperationRef) {
    let found = ops_named(root, "scf.for");
    let mut erased: Vec<MlirOperation> = Vec::new();
    for raw in found {
        if erased.iter().any(|e| e.ptr == raw.ptr) {
            continue;
        }
        // SAFETY: collected from the live IR under `root`, and not among the loops erased
        // by an earlier rewrite (a rewrite erases exactly its nest's levels).
        let op = unsafe { OperationRef::from_raw(raw) };
        let Some(levels) = nest(op) else { continue };
        let accs = accumulators(&levels);
        if accs.is_empty() {
            continue;
        }
        erased.extend(levels.iter().map(|l| l.to_raw()));
        carry(context, &levels, &accs);
    }
}

/// A `scf.for` without results or carried values.
fn plain_for(op: &OperationRef) -> bool {
    is(op, "scf.for") && op.result_count() == 0
}

fn body(op: &OperationRef) -> Option<BlockRef<'static, 'static>> {
    let block = op.region(0).ok()?.first_block()?;
    // SAFETY: the block lives as long as the IR the pass runs on; the pass never holds it
    // past the rewrite of its nest.
    Some(unsafe { BlockRef::from_raw(block.to_raw()) })
}

/// The levels of the perfect nest starting at `op` (outermost first), if its innermost
/// body is straight-line code.
fn nest<'c, 'a>(op: OperationRef<'c, 'a>) -> Option<Vec<OperationRef<'c, 'a>>> {
    if !plain_for(&op) {
        return None;
    }
    let mut levels = vec![op];
    loop {
        let block = body(levels.last().expect("a level"))?;
        let first = block.first_operation()?;
        let second = first.next_in_block();
        let only_loop = plain_for(&first) && second.as_ref().is_some_and(|s| s.next_in_block().is_none());
        if only_loop {
            levels.push(first);
            continue;
        }
        let mut next = Some(first);
        while let Some(o) = next {
            if o.region_count() > 0 {
                return None;
            }
            next = o.next_in_block();
        }
        return Some(levels);
    }
}

/// One accumulator: its load and store in the innermost body.
struct Acc<'c, 'a> {
    load: OperationRef<'c, 'a>,
    store: OperationRef<'c, 'a>,
}

/// Whether `v` is defined inside the nest: an induction variable of a level or a result of
/// an operation of the innermost body.
fn inside(v: Value, levels: &[OperationRef], inner: &BlockRef) -> bool {
    match OperationResult::try_from(v) {
        Ok(result) => result.owner().block().is_some_and(|b| b == *inner),
        Err(_) => levels.iter().any(|l| body(l).is_some_and(|b| b.argument(0).is_ok_and(|a| Value::from(a) == v))),
    }
}

/// The accumulators of the innermost body, in the order of their stores.
fn accumulators<'c, 'a>(levels: &[OperationRef<'c, 'a>]) -> Vec<Acc<'c, 'a>> {
    let Some(inner) = levels.last().and_then(body) else { return Vec::new() };
    let ops: Vec<OperationRef> = std::iter::successors(inner.first_operation(), |o| o.next_in_block()).collect();
    let mut accs = Vec::new();
    for (k, store) in ops.iter().enumerate() {
        if !is(store, "memref.store") {
            continue;
        }
        let Ok(buffer) = store.operand(1) else { continue };
        let touching: Vec<usize> = (0..ops.len()).filter(|&j| ops[j].operands().any(|v| v == buffer)).collect();
        let Some(load) = touching.iter().copied().find(|&j| j < k).map(|j| ops[j]) else { continue };
        let indices: Vec<Value> = store.operands().skip(2).collect();
        let same_place = is(&load, "memref.load")
            && load.operand(0).is_ok_and(|b| b == buffer)
            && load.operands().skip(1).eq(indices.iter().copied());
        let outside = !inside(buffer, levels, &inner) && indices.iter().all(|&i| !inside(i, levels, &inner));
        if touching.len() == 2 && same_place && outside {
            // SAFETY of the lifetimes: both ops live in the nest, which outlives `accs`.
            accs.push(Acc { load: unsafe { OperationRef::from_raw(load.to_raw()) }, store: *store });
        }
    }
    accs
}

/// `scf.for` over `bounds` carrying values of `types` from `inits`, with an empty body
/// block (induction variable, then the carried values).
fn for_carrying<'c>(
    context: &'c Context,
    bounds: [Value<'c, '_>; 3],
    inits: &[Value<'c, '_>],
    types: &[Type<'c>],
    location: Location<'c>,
) -> Operation<'c> {
    let mut args = vec![(Type::index(context), location)];
    args.extend(types.iter().map(|&t| (t, location)));
    let region = Region::new();
    region.append_block(Block::new(&args));
    OperationBuilder::new("scf.for", location)
        .add_operands(&bounds)
        .add_operands(inits)
        .add_results(types)
        .add_regions([region])
        .build()
        .expect("valid scf.for")
}

fn carry(context: &Context, levels: &[OperationRef], accs: &[Acc]) {
    let outer = levels[0];
    let location = outer.location();
    let rewriter = IrRewriter::from_op(outer);
    let base = rewriter.as_rewriter_base();
    let types: Vec<Type> = accs.iter().map(|a| a.load.result(0).expect("loaded value").r#type()).collect();
    // Buffers and indices are defined outside the nest: they outlive the rewrite.
    let places: Vec<(Value, Vec<Value>)> =
        accs.iter().map(|a| (a.store.operand(1).expect("buffer"), a.store.operands().skip(2).collect())).collect();
    let mut carried: Vec<Value> = places
        .iter()
        .map(|(buffer, indices)| {
            base.insert(memref::load(*buffer, indices, location)).result(0).expect("loaded").into()
        })
        .collect();
    // The new levels, outermost first; old induction variables map to new ones.
    let mut ivs: Vec<(Value, Value)> = Vec::new();
    let mut new_levels: Vec<OperationRef> = Vec::new();
    for level in levels {
        let mut bounds = Vec::with_capacity(3);
        for i in 0..3 {
            let v = level.operand(i).expect("loop bound");
            bounds.push(ivs.iter().find(|(o, _)| *o == v).map_or(v, |&(_, n)| n));
        }
        let op = for_carrying(context, [bounds[0], bounds[1], bounds[2]], &carried, &types, location);
        let op = match new_levels.last() {
            None => base.insert(op),
            Some(parent) => {
                let block = body(parent).expect("loop block");
                let op = block.append_operation(op);
                let results: Vec<Value> = op.results().map(Into::into).collect();
                block.append_operation(scf::r#yield(&results, location));
                op
            }
        };
        let block = body(&op).expect("loop block");
        let old_iv: Value = body(level).expect("loop block").argument(0).expect("induction variable").into();
        ivs.push((old_iv, block.argument(0).expect("induction variable").into()));
        carried = (1..=accs.len()).map(|k| block.argument(k).expect("carried value").into()).collect();
        new_levels.push(op);
    }
    for (a, &value) in accs.iter().zip(&carried) {
        base.replace_all_uses_with(a.load.result(0).expect("loaded value").into(), value);
    }
    let stored: Vec<Value> = accs.iter().map(|a| a.store.operand(0).expect("stored value")).collect();
    for a in accs {
        base.erase_op(a.store);
        base.erase_op(a.load);
    }
    for &(old, new) in &ivs[..ivs.len() - 1] {
        base.replace_all_uses_with(old, new);
    }
    let inner = body(new_levels.last().expect("a level")).expect("loop block");
    let old_inner = body(levels.last().expect("a level")).expect("loop block");
    base.merge_blocks(old_inner, inner, &[ivs[ivs.len() - 1].1]);
    if let Some(old_yield) = inner.terminator() {
        base.erase_op(old_yield);
    }
    inner.append_operation(scf::r#yield(&stored, location));
    let new_outer = new_levels[0];
    base.set_insertion_point_after(new_outer);
    for (k, (buffer, indices)) in places.iter().enumerate() {
        base.insert(memref::store(new_outer.result(k).expect("result").into(), *buffer, indices, location));
    }
    base.erase_op(outer);
}
