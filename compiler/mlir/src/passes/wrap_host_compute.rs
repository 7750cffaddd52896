//! `archc-wrap-host-compute` (GPU path, the end of `pipelines::gpu_loops`): host compute
//! without parallel loops into one-thread kernels; and [`host_memory_ops`], the count of
//! buffer accesses left in host code after outlining.
//!
//! After `convert-linalg-to-parallel-loops`, a linalg op with no parallel loop (a full
//! reduction, an elementwise op on 0-d tensors, a fill of a 0-d tensor) is a plain
//! `scf.for` nest or `memref.load`/`arith`/`memref.store` sequence in the host function.
//! Run on the host, it touches buffers the GPU just wrote (managed memory migrates them
//! back and forth) and forces a synchronisation before it.
//!
//! Contract: in the body of each function of the module (before `gpu-map-parallel-loops`),
//! each maximal run of consecutive top-level ops made only of `scf.for`/`scf.if` (whose
//! bodies hold only scalar, load/store and view ops), `memref.load`, `memref.store`,
//! `arith` and `math` ops is rewritten: its `arith.constant`s move up to the start of the
//! run, and the other ops, in order, are wrapped in one-iteration `scf.parallel` loops
//! (bounds `0 to 1 step 1`, their constants just before each loop), which the GPU mapping
//! turns into kernels. An op stays on the host when a value it defines is used after its
//! wrapped segment (the host needs that value, e.g. as a kernel argument); the run is
//! split around it, order kept, and since that can make another op's value escape its
//! now shorter segment, this repeats until no op changes. Nothing else changes: the
//! wrapped ops run once, in the same order, on the same buffers.

use super::ir::{index_constant, is, parallel_1d, reduce};
use melior::ir::block::BlockLike;
use melior::ir::operation::{OperationLike, WalkOrder, WalkResult};
use melior::ir::{BlockRef, OperationRef, RegionLike, Value, ValueLike};
use melior::Context;
use melior::IrRewriter;
use mlir_sys::MlirOperation;
use std::collections::HashMap;

/// Wraps the host compute of every function under `root` (a module).
pub fn run(context: &Context, root: OperationRef) {
    let Some(module) = root.region(0).ok().and_then(|r| r.first_block()) else { return };
    let functions: Vec<OperationRef> = ops_of(module).into_iter().filter(|f| is(f, "func.func")).collect();
    for func in functions {
        let Ok(body) = func.region(0) else { continue };
        let mut block = body.first_block();
        while let Some(b) = block {
            wrap_block(context, b);
            block = b.next_in_region();
        }
    }
}

/// The ops of `block`, in order.
fn ops_of<'c, 'a>(block: BlockRef<'c, 'a>) -> Vec<OperationRef<'c, 'a>> {
    std::iter::successors(block.first_operation(), |o| o.next_in_block()).collect()
}

/// Ops allowed inside a wrapped op (by name).
fn inner_allowed(name: &str) -> bool {
    name.starts_with("arith.")
        || name.starts_with("math.")
        || name.starts_with("index.")
        || matches!(
            name,
            "scf.for"
                | "scf.if"
                | "scf.yield"
                | "memref.load"
                | "memref.store"
                | "memref.subview"
                | "memref.cast"
                | "memref.expand_shape"
                | "memref.collapse_shape"
                | "memref.reinterpret_cast"
        )
}

fn name_of(op: &OperationRef) -> String {
    op.name().as_string_ref().as_str().unwrap_or_default().to_string()
}

/// Host compute that can run as a one-thread kernel: an allowed op whose nested ops are
/// all allowed inside.
fn wrappable(op: &OperationRef) -> bool {
    let name = name_of(op);
    let head = name.starts_with("arith.")
        || name.starts_with("math.")
        || matches!(name.as_str(), "scf.for" | "scf.if" | "memref.load" | "memref.store");
    if !head {
        return false;
    }
    let mut inside = true;
    op.walk(WalkOrder::PreOrder, |o| {
        if inner_allowed(&name_of(&o)) {
            WalkResult::Advance
        } else {
            inside = false;
            WalkResult::Interrupt
        }
    });
    inside
}

/// Wraps the runs of host compute of one block.
fn wrap_block(context: &Context, block: BlockRef) {
    let ops = ops_of(block);
    let position: HashMap<usize, usize> = ops.iter().enumerate().map(|(k, o)| (o.to_raw().ptr as usize, k)).collect();
    // Every run's plan first, on the block as it is; then the rewrites.
    let mut plans = Vec::new();
    let mut k = 0;
    while k < ops.len() {
        if !wrappable(&ops[k]) {
            k += 1;
            continue;
        }
        let mut end = k;
        while end < ops.len() && wrappable(&ops[end]) {
            end += 1;
        }
        let run = &ops[k..end];
        let compute: Vec<OperationRef> = run.iter().copied().filter(|o| !is(o, "arith.constant")).collect();
        let host = on_host(block, &position, &compute);
        plans.push((run, compute, host));
        k = end;
    }
    for (run, compute, host) in plans {
        wrap_run(context, run, &compute, &host);
    }
}

/// Which of a run's non-constant ops must stay on the host: those whose values are used
/// after their segment (see the module doc), to a fixed point.
fn on_host(block: BlockRef, position: &HashMap<usize, usize>, compute: &[OperationRef]) -> Vec<bool> {
    let at = |op: &OperationRef| position.get(&(op.to_raw().ptr as usize)).copied().unwrap_or(usize::MAX);
    // The block position of the last op that uses each op's values (`None`: unused).
    let last_use: Vec<Option<usize>> = compute
        .iter()
        .map(|op| {
            op.results()
                .flat_map(|r| users(r.into()))
                .map(|u| ancestor_in(block, u).map_or(usize::MAX, |a| at(&a)))
                .max()
        })
        .collect();
    let mut host = vec![false; compute.len()];
    loop {
        let mut changed = false;
        for seg in segments(&host) {
            let end = at(&compute[seg.end - 1]);
            for i in seg {
                if last_use[i].is_some_and(|u| u > end) {
                    host[i] = true;
                    changed = true;
                }
            }
        }
        if !changed {
            return host;
        }
    }
}

/// The operations that use `value`.
fn users(value: Value) -> Vec<MlirOperation> {
    let mut out = Vec::new();
    // SAFETY: `value` is live; its use list is walked without changing the IR.
    unsafe {
        let mut use_ = mlir_sys::mlirValueGetFirstUse(value.to_raw());
        while !mlir_sys::mlirOpOperandIsNull(use_) {
            out.push(mlir_sys::mlirOpOperandGetOwner(use_));
            use_ = mlir_sys::mlirOpOperandGetNextUse(use_);
        }
    }
    out
}

/// The op of `block` that is `op` or holds it.
fn ancestor_in<'c, 'a>(block: BlockRef<'c, 'a>, op: MlirOperation) -> Option<OperationRef<'c, 'a>> {
    // SAFETY: `op` uses a value of the live IR that holds `block`.
    let mut op = unsafe { OperationRef::from_raw(op) };
    loop {
        if op.block().is_some_and(|b| b == block) {
            return Some(op);
        }
        op = op.parent_operation()?;
    }
}

/// Maximal ranges of consecutive `false` entries.
fn segments(host: &[bool]) -> Vec<std::ops::Range<usize>> {
    let mut v = Vec::new();
    let mut i = 0;
    while i < host.len() {
        if host[i] {
            i += 1;
            continue;
        }
        let s = i;
        while i < host.len() && !host[i] {
            i += 1;
        }
        v.push(s..i);
    }
    v
}

/// Rewrites one run: its constants first, then its other ops in order, each segment of
/// ops not on the host wrapped in a one-iteration `scf.parallel`.
fn wrap_run(context: &Context, run: &[OperationRef], compute: &[OperationRef], host: &[bool]) {
    let Some(&first) = compute.first() else { return };
    let rewriter = IrRewriter::from_op(first);
    let base = rewriter.as_rewriter_base();
    for &constant in run.iter().filter(|o| is(o, "arith.constant")) {
        base.move_op_before(constant, first);
    }
    for seg in segments(host) {
        let head = compute[seg.start];
        let location = head.location();
        base.set_insertion_point_before(head);
        let zero = base.insert(index_constant(context, 0, location));
        let one = base.insert(index_constant(context, 1, location));
        let (Ok(zero), Ok(one)) = (zero.result(0), one.result(0)) else { return };
        let (zero, one): (Value, Value) = (zero.into(), one.into());
        let wrapper = base.insert(parallel_1d(context, [zero, one, one], location));
        let Some(body) = wrapper.region(0).ok().and_then(|r| r.first_block()) else { return };
        let end = body.append_operation(reduce(location));
        for &op in &compute[seg] {
            base.move_op_before(op, end);
        }
    }
}

/// How many `memref.load`/`memref.store` ops of an outlined module are host code (outside
/// every `gpu.module`): host code that reads or writes buffer contents, so launches must
/// synchronise before it runs.
pub fn host_memory_ops<'c: 'a, 'a>(module: &impl OperationLike<'c, 'a>) -> usize {
    let mut n = 0;
    module.walk(WalkOrder::PreOrder, |op| {
        if is(&op, "gpu.module") {
            return WalkResult::Skip;
        }
        if is(&op, "memref.load") || is(&op, "memref.store") {
            n += 1;
        }
        WalkResult::Advance
    });
    n
}

#[cfg(test)]
mod tests {
    use super::host_memory_ops;
    use melior::ir::Module;

    #[test]
    fn host_memory_ops_skip_kernels() {
        let text = "module attributes {gpu.container_module} {
  func.func @f(%a: memref<f32>, %n: index) {
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %0 = memref.load %a[] : memref<f32>
    scf.for %i = %c0 to %n step %c1 {
      memref.store %0, %a[] : memref<f32>
    }
    return
  }
  gpu.module @k {
    gpu.func @g(%a: memref<f32>) kernel {
      %x = memref.load %a[] : memref<f32>
      memref.store %x, %a[] : memref<f32>
      gpu.return
    }
  }
}";
        let context = crate::jit::context();
        let module = Module::parse(&context, text).expect("parses");
        assert_eq!(host_memory_ops(&module.as_operation()), 2);
    }
}
