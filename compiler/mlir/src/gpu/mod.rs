//! The GPU path: emitted MLIR (linalg on tensors) -> `gpu` dialect kernels -> NVVM -> PTX,
//! with host code JIT-compiled for the CPU that launches them through MLIR's `mgpu*`
//! runtime ABI (implemented in `archc-cuda` over the CUDA driver, loaded at run time).
//!
//! Contract:
//! - [`compile`] takes a module emitted for [`crate::emit::Target::Gpu`] and an
//!   architecture (`sm_80`, `sm_90`, ...) and returns the lowered module: every linalg op
//!   with parallel loops becomes a kernel (its parallel loops tiled by [`BLOCK`] threads
//!   and mapped to blocks and threads); runtime calls (matrix products, copies, random
//!   fills) and the host compute `passes::wrap_host_compute` cannot move stay on the
//!   host, on the same buffers, which are CUDA managed memory
//!   (`_mlir_memref_to_llvm_alloc`). Every launch synchronises before the host goes on
//!   (unless `ARCHC_GPU_ASYNC=1` and no host code touches buffers; see `jit`).
//! - At the end of `passes::pipelines::gpu_loops`, archc's passes wrap host compute without
//!   parallel loops (full reductions, 0-d arithmetic) into one-thread kernels where its
//!   values stay on the device (`passes::wrap_host_compute`), route host `memref.copy`
//!   through the runtime (`passes::route_copies`), and put each parallel loop's innermost
//!   dimension first, threads along contiguous elements (`passes::innermost_first`); then
//!   `passes::pipelines::gpu_fuse` brings independent loops over equal bounds together
//!   and merges adjacent ones (`passes::distinct` telling it that the function's buffers
//!   do not overlap), so one kernel does what several would, and reductions keep their
//!   accumulators in registers (`passes::accumulators`); loops whose innermost dimension
//!   would leave threads idle become flat (`passes::flatten_loops`, the first pass of the
//!   outlining pipeline).
//! - Math ops inside kernels are replaced by [`devmath`]'s pure-arith implementations, so
//!   no libdevice (CUDA toolkit) is needed to produce PTX.
//! - [`ptx`] extracts the PTX text of every kernel module (`archc build --emit ptx`).
//! - `jit::GpuCompiled` (feature `llvm`) JIT-compiles the host code and runs it with
//!   [`crate::exec::gpu::GpuRunner`], which runs host code however compiled (also an
//!   artifact's), in managed memory or, with [`crate::exec::gpu::resident`], in device
//!   memory with the step replayed as a CUDA graph; training state stays in device memory
//!   between steps ([`crate::exec::gpu::state`]).

pub mod devmath;
#[cfg(feature = "llvm")]
pub mod jit;

/// Threads per block along the innermost mapped loop dimension.
pub const BLOCK: usize = 256;

/// Checks an architecture name like `sm_90` ([`crate::Error::Config`]).
pub fn check_arch(arch: &str) -> crate::error::Result<()> {
    match arch.strip_prefix("sm_").map(|n| n.trim_end_matches('a').parse::<u32>()) {
        Some(Ok(n)) if n >= 50 => Ok(()),
        _ => Err(crate::Error::Config(format!("unknown GPU architecture `{arch}` (expected e.g. sm_80 or sm_90)"))),
    }
}

#[cfg(feature = "llvm")]
pub use lowered::{compile, fused, ptx, Lowered};

#[cfg(feature = "llvm")]
mod lowered {
    use super::check_arch;
    use crate::error::{Error, Result};
    use crate::jit::{context, parse_verified, run_options};
    use crate::passes::{pipelines, wrap_host_compute};
    use melior::ir::attribute::FlatSymbolRefAttribute;
    use melior::ir::attribute::{ArrayAttribute, AttributeLike};
    use melior::ir::operation::{OperationLike, WalkOrder, WalkResult};
    use melior::ir::{BlockLike, Module};
    use melior::Context;
    use std::time::{Duration, Instant};

    /// A module lowered for the GPU, with its context and compile times.
    pub struct Lowered {
        // Field order: the module must drop before its context.
        pub module: Module<'static>,
        pub context: Box<Context>,
        /// Loads and stores left in host code (see [`wrap_host_compute::host_memory_ops`]).
        pub host_ops: usize,
        /// Whether host code calls the runtime's random fills (`archc_rand_fill_*`).
        pub random_fills: bool,
        pub parse_verify: Duration,
        pub passes: Duration,
    }

    /// Parses, verifies and lowers emitted MLIR for `arch`.
    pub fn compile(text: &str, arch: &str) -> Result<Lowered> {
        check_arch(arch)?;
        let context = Box::new(context());
        // SAFETY: the context is boxed (stable address) and outlives the module: it is
        // dropped after it (field order of `Lowered`).
        let ctx: &'static Context = unsafe { &*(context.as_ref() as *const Context) };
        let t0 = Instant::now();
        let mut module = parse_verified(ctx, text, "MLIR")?;
        let t1 = Instant::now();
        pipelines::gpu_loops().run(ctx, &mut module, &run_options())?;
        let mut module = fused(ctx, module)?;
        pipelines::gpu_outline().run(ctx, &mut module, &run_options())?;
        let host_ops = wrap_host_compute::host_memory_ops(&module.as_operation());
        let random_fills = calls_random_fills(&module);
        pipelines::gpu_lower(arch).run(ctx, &mut module, &run_options())?;
        let passes = t1.elapsed();
        Ok(Lowered { module, context, host_ops, random_fills, parse_verify: t1 - t0, passes })
    }

    /// Whether the module calls one of the runtime's random fills (`@archc_rand_fill_*`).
    fn calls_random_fills(module: &Module) -> bool {
        let mut found = false;
        module.as_operation().walk(WalkOrder::PreOrder, |op| {
            let callee = (op.name().as_string_ref().as_str() == Ok("func.call"))
                .then(|| op.attribute("callee").ok())
                .flatten()
                .and_then(|a| FlatSymbolRefAttribute::try_from(a).ok());
            found |= callee.is_some_and(|c| c.value().starts_with("archc_rand_fill"));
            if found {
                WalkResult::Interrupt
            } else {
                WalkResult::Advance
            }
        });
        found
    }

    /// A module after `pipelines::gpu_loops` through `pipelines::gpu_fuse`: the parallel
    /// loops the kernels will be made of (before `passes::flatten_loops`, the first pass of
    /// `pipelines::gpu_outline`).
    pub fn fused<'c>(ctx: &'c Context, mut module: Module<'c>) -> Result<Module<'c>> {
        pipelines::gpu_fuse().run(ctx, &mut module, &run_options())?;
        Ok(module)
    }

    /// The PTX of every kernel module, as `(module name, text)` in module order.
    pub fn ptx(lowered: &Lowered) -> Result<Vec<(String, String)>> {
        let broken = |e: &dyn std::fmt::Display| Error::Internal(e.to_string());
        let mut out = Vec::new();
        let mut op = lowered.module.body().first_operation();
        while let Some(o) = op {
            if o.name().as_string_ref().as_str() == Ok("gpu.binary") {
                let name = o
                    .attribute("sym_name")
                    .ok()
                    .and_then(|a| melior::ir::attribute::StringAttribute::try_from(a).ok())
                    .map(|s| s.value().to_string())
                    .unwrap_or_default();
                let objects =
                    o.attribute("objects").map_err(|e| Error::Internal(format!("gpu.binary without objects: {e}")))?;
                let objects = ArrayAttribute::try_from(objects).map_err(|e| broken(&e))?;
                for i in 0..objects.len() {
                    let obj = objects.element(i).map_err(|e| broken(&e))?;
                    // SAFETY: `obj` is a `#gpu.object` attribute of a live context; the
                    // returned string reference points into it and is copied at once.
                    let text = unsafe {
                        let s = mlir_sys::mlirGPUObjectAttrGetObject(obj.to_raw());
                        let bytes = std::slice::from_raw_parts(s.data as *const u8, s.length);
                        String::from_utf8_lossy(bytes).trim_end_matches('\0').to_string()
                    };
                    out.push((name.clone(), text));
                }
            }
            op = o.next_in_block();
        }
        Ok(out)
    }
}
