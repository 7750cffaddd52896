//! Small helpers archc's passes share: naming, constants, and building `scf` loops with
//! melior. Nothing here walks or rewrites a module by itself.

use melior::dialect::arith;
use melior::ir::attribute::{DenseI32ArrayAttribute, IntegerAttribute};
use melior::ir::operation::{OperationBuilder, OperationLike, OperationResult, WalkOrder, WalkResult};
use melior::ir::{Block, Identifier, Location, Operation, OperationRef, Region, RegionLike, Type, Value};
use melior::Context;
use mlir_sys::MlirOperation;

/// Whether `op` is the operation named `name` (`scf.parallel`).
pub fn is(op: &OperationRef, name: &str) -> bool {
    op.name().as_string_ref().as_str() == Ok(name)
}

/// The value of an `arith.constant` of integer or index type.
pub fn constant_index(v: Value) -> Option<i64> {
    let owner = OperationResult::try_from(v).ok()?.owner();
    if !is(&owner, "arith.constant") {
        return None;
    }
    IntegerAttribute::try_from(owner.attribute("value").ok()?).ok().map(|a| a.value())
}

/// `arith.constant value : index`.
pub fn index_constant<'c>(context: &'c Context, value: i64, location: Location<'c>) -> Operation<'c> {
    arith::constant(context, IntegerAttribute::new(Type::index(context), value).into(), location)
}

/// One-dimensional `scf.parallel` over `[lb, ub, step]` with an empty body block (its
/// induction variable only).
pub fn parallel_1d<'c>(context: &'c Context, bounds: [Value<'c, '_>; 3], location: Location<'c>) -> Operation<'c> {
    OperationBuilder::new("scf.parallel", location)
        .add_operands(&bounds)
        .add_attributes(&[(
            Identifier::new(context, "operandSegmentSizes"),
            DenseI32ArrayAttribute::new(context, &[1, 1, 1, 0]).into(),
        )])
        .add_regions([body_region(context, location)])
        .build()
        .expect("valid scf.parallel")
}

/// The operand-free `scf.reduce` that ends a parallel loop's body.
pub fn reduce(location: Location) -> Operation {
    OperationBuilder::new("scf.reduce", location).build().expect("valid scf.reduce")
}

/// A region of one block with one `index` argument: a loop's body before it is filled.
pub fn body_region<'c>(context: &'c Context, location: Location<'c>) -> Region<'c> {
    let region = Region::new();
    region.append_block(Block::new(&[(Type::index(context), location)]));
    region
}

/// Every operation named `name` under `root` (itself included), outer before inner, as
/// raw handles: a pass collects them first and rewrites after, which a walk in progress
/// would not allow.
pub fn ops_named(root: OperationRef, name: &str) -> Vec<MlirOperation> {
    let mut found = Vec::new();
    root.walk(WalkOrder::PreOrder, |op| {
        if is(&op, name) {
            found.push(op.to_raw());
        }
        WalkResult::Advance
    });
    found
}
