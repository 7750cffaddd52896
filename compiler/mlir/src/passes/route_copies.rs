//! `archc-route-copies` (GPU path, the end of `pipelines::gpu_loops`): host buffer copies
//! through the runtime.
//!
//! The LLVM lowering would copy contiguous buffers with an inline `memcpy` on the host,
//! which reads buffers the GPU may still be writing; the GPU runtime copies on its stream
//! instead (`rt::copy_symbols`).
//!
//! Contract: every `memref.copy %a, %b` (all code is host code at this stage) becomes
//! `memref.cast`s of both operands to unranked memrefs of their element type and a call
//! `func.call @archc_copy_<elem>(src, dst)` ([`copy_symbol`]), and the module gets one
//! declaration `func.func private @archc_copy_<elem>(memref<*x<elem>>, memref<*x<elem>>)
//! attributes {llvm.emit_c_interface}` per element type copied, at the start of its body,
//! in the order of the element types' names (a symbol the module already defines is not
//! declared again). The copies copy the same elements.

use super::ir::ops_named;
use melior::dialect::func;
use melior::ir::attribute::{Attribute, FlatSymbolRefAttribute, StringAttribute, TypeAttribute};
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationBuilder, OperationLike};
use melior::ir::r#type::{FunctionType, TypeLike};
use melior::ir::{Identifier, Location, OperationRef, Region, RegionLike, Type, Value, ValueLike};
use melior::Context;
use melior::IrRewriter;
use std::collections::BTreeMap;

/// The copy function for an element type (as printed): `archc_copy_f32`,
/// `archc_copy_c64` (for `complex<f32>`), ...
pub fn copy_symbol(elem: &str) -> String {
    let suffix = match elem {
        "complex<f32>" => "c64".to_string(),
        e => e.chars().filter(char::is_ascii_alphanumeric).collect(),
    };
    format!("archc_copy_{suffix}")
}

/// Routes every `memref.copy` under `root` (a module) through the runtime.
pub fn run(context: &Context, root: OperationRef) {
    let found = ops_named(root, "memref.copy");
    let rewriter = IrRewriter::new(context);
    let base = rewriter.as_rewriter_base();
    // Element types copied, by name.
    let mut copied: BTreeMap<String, Type> = BTreeMap::new();
    for raw in found {
        // SAFETY: collected from the live IR under `root`; each copy is erased once, and
        // nothing else is.
        let copy = unsafe { OperationRef::from_raw(raw) };
        let (Ok(src), Ok(dst)) = (copy.operand(0), copy.operand(1)) else { continue };
        let Some(elem) = element_type(src.r#type()) else { continue };
        let name = elem.to_string();
        let symbol = copy_symbol(&name);
        let any = unranked(elem);
        let location = copy.location();
        base.set_insertion_point_before(copy);
        let mut args: Vec<Value> = Vec::with_capacity(2);
        for value in [src, dst] {
            if value.r#type() == any {
                args.push(value);
                continue;
            }
            let cast = OperationBuilder::new("memref.cast", location).add_operands(&[value]).add_results(&[any]);
            let Ok(cast) = cast.build() else { return };
            let Ok(cast) = base.insert(cast).result(0) else { return };
            args.push(cast.into());
        }
        base.insert(func::call(context, FlatSymbolRefAttribute::new(context, &symbol), &args, &[], location));
        base.erase_op(copy);
        copied.insert(name, elem);
    }
    let Some(module) = root.region(0).ok().and_then(|r| r.first_block()) else { return };
    let Some(first) = module.first_operation() else { return };
    base.set_insertion_point_before(first);
    for (name, elem) in copied {
        let symbol = copy_symbol(&name);
        if !defines(root, &symbol) {
            base.insert(declaration(context, &symbol, unranked(elem), root.location()));
        }
    }
}

/// The element type of a memref type, ranked or unranked.
fn element_type(t: Type) -> Option<Type> {
    // SAFETY: `t` is a live type; the element type is read only from memref types.
    unsafe {
        let raw = t.to_raw();
        let memref = mlir_sys::mlirTypeIsAMemRef(raw) || mlir_sys::mlirTypeIsAUnrankedMemRef(raw);
        memref.then(|| Type::from_raw(mlir_sys::mlirShapedTypeGetElementType(raw)))
    }
}

/// `memref<*x{elem}>`, in the default memory space.
fn unranked(elem: Type) -> Type {
    // SAFETY: `elem` is a live type; a null attribute is the default memory space.
    unsafe { Type::from_raw(mlir_sys::mlirUnrankedMemRefTypeGet(elem.to_raw(), mlir_sys::mlirAttributeGetNull())) }
}

/// Whether the module `root` defines the symbol `name` at its top level.
fn defines(root: OperationRef, name: &str) -> bool {
    let Some(module) = root.region(0).ok().and_then(|r| r.first_block()) else { return false };
    std::iter::successors(module.first_operation(), |o| o.next_in_block()).any(|o| {
        o.attribute("sym_name").ok().and_then(|a| StringAttribute::try_from(a).ok()).is_some_and(|s| s.value() == name)
    })
}

/// `func.func private @symbol(any, any) attributes {llvm.emit_c_interface}`.
fn declaration<'c>(
    context: &'c Context,
    symbol: &str,
    any: Type<'c>,
    location: Location<'c>,
) -> melior::ir::Operation<'c> {
    func::func(
        context,
        StringAttribute::new(context, symbol),
        TypeAttribute::new(FunctionType::new(context, &[any, any], &[]).into()),
        Region::new(),
        &[
            (Identifier::new(context, "sym_visibility"), StringAttribute::new(context, "private").into()),
            (Identifier::new(context, "llvm.emit_c_interface"), Attribute::unit(context)),
        ],
        location,
    )
}
