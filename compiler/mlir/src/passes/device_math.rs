//! `archc-device-math` (GPU path, the end of `pipelines::gpu_outline`): kernel math
//! through archc's own helpers instead of CUDA's libdevice.
//!
//! `convert-gpu-to-nvvm` turns float `math` ops and `arith.remf` into calls of libdevice
//! (`__nv_*`), which archc does not link; `gpu::devmath` implements them in plain `arith`
//! (see its module doc for why and how accurate).
//!
//! Contract: inside every `gpu.module`, each op named `math.*` and each `arith.remf`
//! becomes `func.call @archc_dm_<op>_<type>(operands) : (...) -> result` (`arith.remf`
//! calls `@archc_dm_fmod_<type>`), at the op's location, its `fastmath` flags dropped (the
//! helpers are always precise). Each gpu.module then gets, at the end of its body, the
//! `func.func private` definitions of the helpers it calls and of the helpers those call,
//! in the library's order, except those it already defines (by symbol name): running the
//! pass twice changes nothing. Code outside gpu.modules keeps its `math` ops and `remf`.
//! A `math` op the library does not implement, or one (or an `arith.remf`) on a vector or
//! any type but scalar f32, f64, i32 and i64, fails the pass with an error naming the op
//! and its types ([`Error::Unsupported`]); nothing is rewritten then.

use super::ir::is;
use crate::error::{Error, Result};
use crate::gpu::devmath::{closure, Helper};
use melior::dialect::func;
use melior::ir::attribute::{FlatSymbolRefAttribute, StringAttribute};
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationLike, WalkOrder, WalkResult};
use melior::ir::{Module, OperationRef, RegionLike, Type, Value, ValueLike};
use melior::{Context, IrRewriter};
use std::collections::BTreeSet;

/// Replaces the math ops of every gpu.module under `root` (a module) by helper calls and
/// defines the helpers there.
pub fn run(context: &Context, root: OperationRef) -> Result<()> {
    let mut modules = Vec::new();
    root.walk(WalkOrder::PreOrder, |op| {
        if is(&op, "gpu.module") {
            modules.push(op.to_raw());
            return WalkResult::Skip;
        }
        WalkResult::Advance
    });
    // Every op's helper first: an unsupported op fails the pass before anything changes.
    let mut plans = Vec::with_capacity(modules.len());
    for raw in modules {
        // SAFETY: collected from the live IR under `root`; nothing is erased yet.
        let module = unsafe { OperationRef::from_raw(raw) };
        let mut ops = Vec::new();
        module.walk(WalkOrder::PreOrder, |op| {
            let name = op.name().as_string_ref().as_str().unwrap_or_default().to_string();
            if name.starts_with("math.") || name == "arith.remf" {
                ops.push((op.to_raw(), name));
            }
            WalkResult::Advance
        });
        let mut calls = Vec::with_capacity(ops.len());
        for (raw, name) in ops {
            // SAFETY: as above.
            let op = unsafe { OperationRef::from_raw(raw) };
            calls.push((raw, helper(&op, &name)?));
        }
        plans.push((raw, calls));
    }
    let rewriter = IrRewriter::new(context);
    let base = rewriter.as_rewriter_base();
    for (module_raw, calls) in plans {
        let mut used = BTreeSet::new();
        for (raw, helper) in calls {
            // SAFETY: collected from the live IR; each op is replaced once, and nothing
            // else is erased.
            let op = unsafe { OperationRef::from_raw(raw) };
            let operands: Vec<Value> = op.operands().collect();
            let results: Vec<Type> = op.results().map(|r| r.r#type()).collect();
            let callee = FlatSymbolRefAttribute::new(context, &helper.name());
            base.set_insertion_point_before(op);
            let call = base.insert(func::call(context, callee, &operands, &results, op.location()));
            base.replace_op_with_operation(op, call);
            used.insert(helper);
        }
        // SAFETY: the gpu.module itself is live (only ops inside it were replaced).
        let module = unsafe { OperationRef::from_raw(module_raw) };
        define_helpers(context, &base, module, &used)?;
    }
    Ok(())
}

/// The helper replacing `op` (named `name`), from its operand types.
fn helper(op: &OperationRef, name: &str) -> Result<Helper> {
    // Operand types as the op's assembly prints them: each distinct type once, in order
    // (`f32` for `math.fma`, `f64, i32` for `math.fpowi`).
    let mut types: Vec<String> = Vec::new();
    for operand in op.operands() {
        let t = operand.r#type().to_string();
        if !types.contains(&t) {
            types.push(t);
        }
    }
    let refs: Vec<&str> = types.iter().map(String::as_str).collect();
    let helper = Helper::lookup(name, &refs)?;
    if op.operand_count() != helper.args().len() || op.result_count() != 1 {
        let (operands, results) = (op.operand_count(), op.result_count());
        return Err(Error::Pass(format!("`{name}` with {operands} operands and {results} results")));
    }
    Ok(helper)
}

/// Appends to `module` (a gpu.module) the definitions of `used` and of what they call that
/// it does not define yet.
fn define_helpers(
    context: &Context,
    base: &melior::RewriterBase,
    module: OperationRef,
    used: &BTreeSet<Helper>,
) -> Result<()> {
    let Some(block) = module.region(0).ok().and_then(|r| r.first_block()) else { return Ok(()) };
    let defined: BTreeSet<String> = std::iter::successors(block.first_operation(), |o| o.next_in_block())
        .filter_map(|o| o.attribute("sym_name").ok().and_then(|a| StringAttribute::try_from(a).ok()))
        .map(|s| s.value().to_string())
        .collect();
    let helpers = closure(used);
    if helpers.iter().all(|h| defined.contains(&h.name())) {
        return Ok(());
    }
    // The whole closure is parsed (a module that calls a helper must define it), and the
    // definitions the gpu.module lacks are copied into it.
    let text: String = helpers.iter().map(|h| h.define()).collect();
    let parsed = Module::parse(context, &format!("module {{\n{text}}}\n"))
        .ok_or_else(|| Error::Pass("device math helpers do not parse".into()))?;
    base.set_insertion_point_to_end(block);
    for def in std::iter::successors(parsed.body().first_operation(), |o| o.next_in_block()) {
        let name = def.attribute("sym_name").ok().and_then(|a| StringAttribute::try_from(a).ok());
        if !name.is_some_and(|n| defined.contains(n.value())) {
            base.clone_op(def);
        }
    }
    Ok(())
}
