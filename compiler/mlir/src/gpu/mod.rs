//! The GPU path: emitted MLIR (linalg on tensors) -> `gpu` dialect kernels -> NVVM -> PTX,
//! with host code JIT-compiled for the CPU that launches them through MLIR's `mgpu*`
//! runtime ABI (implemented in `archc-cuda` over the CUDA driver, loaded at run time).
//!
//! Contract:
//! - [`compile`] takes a module emitted for [`crate::emit::Target::Gpu`] and an
//!   architecture (`sm_80`, `sm_90`, ...) and returns the lowered module: every linalg op
//!   with parallel loops becomes a kernel (its parallel loops tiled by [`BLOCK`] threads
//!   and mapped to blocks and threads); runtime calls (matrix products, copies, random
//!   fills) and the host compute [`hostwrap`] cannot move stay on the host, on the same
//!   buffers, which are CUDA managed memory (`_mlir_memref_to_llvm_alloc`). Every launch
//!   synchronises before the host goes on (unless `ARCHC_GPU_ASYNC=1` and no host code
//!   touches buffers; see `jit`).
//! - Between the stages, [`hostwrap`]'s text passes wrap host compute without parallel
//!   loops (full reductions, 0-d arithmetic) into one-thread kernels where its values stay
//!   on the device, route host `memref.copy` through the runtime, and put each parallel
//!   loop's innermost dimension first (threads along contiguous elements); then adjacent
//!   loops over equal bounds are merged ([`STAGE_FUSE`], with [`fuse`] telling it that
//!   the function's buffers do not overlap), so one kernel does what several would, and
//!   reductions keep their accumulators in registers ([`accumulate`]); loops whose
//!   innermost dimension would leave threads idle become flat ([`flatten`]).
//! - Math ops inside kernels are replaced by [`devmath`]'s pure-arith implementations, so
//!   no libdevice (CUDA toolkit) is needed to produce PTX.
//! - [`ptx`] extracts the PTX text of every kernel module (`archc build --emit ptx`).
//! - `jit::GpuCompiled` (feature `llvm`) JIT-compiles the host code; [`run::GpuRunner`]
//!   runs host code however compiled (also an artifact's), in managed memory or, with
//!   [`resident`], in device memory with the step replayed as a CUDA graph; training
//!   state stays in device memory between steps ([`state`]).

pub mod accumulate;
pub mod devmath;
pub mod flatten;
pub mod fuse;
pub mod group;
pub mod hostwrap;
#[cfg(feature = "llvm")]
pub mod jit;
pub mod resident;
pub mod run;
pub mod state;

/// Threads per block along the innermost mapped loop dimension.
pub const BLOCK: usize = 256;

/// Tensors to parallel loops: the CPU pipeline's fusion and bufferization, then every
/// linalg op as loops (`scf.parallel` over its parallel dimensions). Named ops
/// (transposes, fills) are generalized first, so that a transpose fuses into its
/// consumer instead of being a copy kernel of its own.
pub fn stage_loops() -> String {
    "builtin.module(inline,symbol-dce,canonicalize,func.func(linalg-generalize-named-ops,linalg-fuse-elementwise-ops),canonicalize,\
eliminate-empty-tensors,\
one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map allow-return-allocs-from-loops},\
canonicalize,cse,buffer-deallocation-pipeline,func.func(convert-linalg-to-parallel-loops))"
        .to_string()
}

/// The text passes between [`stage_loops`] and [`STAGE_FUSE`]: host compute into
/// one-thread kernels, host copies through the runtime, innermost dimension first
/// ([`hostwrap`]), the function's buffers marked distinct for the fusion ([`fuse`]),
/// independent loops over equal bounds brought together ([`group`]).
pub fn text_passes(printed: &str) -> String {
    let (wrapped, _) = hostwrap::wrap_host_compute(printed);
    let wrapped = hostwrap::innermost_first(&hostwrap::route_copies(&wrapped));
    group::group_loops(&fuse::mark_distinct(&wrapped))
}

/// Adjacent parallel loops over equal bounds merged where the second reads what the
/// first wrote only at the same index (upstream `scf-parallel-loop-fusion`; `cse` first
/// so that equal constant bounds are the same values, not `canonicalize`, which would
/// inline [`hostwrap`]'s one-iteration loops back into host code): one kernel instead of
/// several (a reduction's fill, fold and cast; an elementwise op with several users and
/// its consumers; an optimizer's updates of a parameter and its moments). Then
/// [`fuse::unmark_distinct`] on the printed result.
pub const STAGE_FUSE: &str = "builtin.module(func.func(cse,scf-parallel-loop-fusion))";

/// Parallel loops (after [`hostwrap`]) to outlined kernels: each parallel nest tiled by
/// [`BLOCK`] threads, mapped to blocks and threads and outlined into a `gpu.module`, the
/// constants its bounds and indices use moved inside (so that LLVM sees constant trip
/// counts and strides in the kernel, not kernel parameters).
/// Complex arithmetic is expanded here so that kernels see only real math ops.
pub fn stage_outline() -> String {
    format!(
        "builtin.module(func.func(scf-parallel-loop-tiling{{parallel-loop-tile-sizes={BLOCK} no-min-max-bounds=true}},\
gpu-map-parallel-loops,convert-parallel-loops-to-gpu),gpu-launch-sink-index-computations,gpu-kernel-outlining,lower-affine,convert-complex-to-standard,canonicalize)"
    )
}

/// Outlined kernels to PTX (`gpu.binary`) and host code to the LLVM dialect. PTX ISA 8.1
/// (CUDA 12.1 drivers and later): a fused kernel's memref descriptors can take more than
/// the 4352 bytes of parameters that earlier versions allow (up to 32764).
pub fn stage_lower(arch: &str) -> String {
    format!(
        "builtin.module(nvvm-attach-target{{chip={arch} features=+ptx81 O=3}},\
gpu.module(convert-scf-to-cf,convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts),\
gpu-module-to-binary{{format=isa}},\
convert-scf-to-cf,expand-strided-metadata,lower-affine,finalize-memref-to-llvm{{use-generic-functions}},\
convert-math-to-llvm,convert-math-to-libm,convert-complex-to-llvm,convert-arith-to-llvm,convert-cf-to-llvm,\
gpu-to-llvm,convert-func-to-llvm,convert-index-to-llvm,reconcile-unrealized-casts)"
    )
}

/// Checks an architecture name like `sm_90`.
pub fn check_arch(arch: &str) -> Result<(), String> {
    match arch.strip_prefix("sm_").map(|n| n.trim_end_matches('a').parse::<u32>()) {
        Some(Ok(n)) if n >= 50 => Ok(()),
        _ => Err(format!("unknown GPU architecture `{arch}` (expected e.g. sm_80 or sm_90)")),
    }
}

#[cfg(feature = "llvm")]
pub use lowered::{compile, fused, ptx, Lowered};

#[cfg(feature = "llvm")]
mod lowered {
    use super::{
        accumulate, check_arch, devmath, flatten, fuse, hostwrap, stage_loops, stage_lower, stage_outline, text_passes,
        STAGE_FUSE,
    };
    use crate::jit::{context, run_pipeline, with_diagnostics};
    use melior::ir::attribute::{ArrayAttribute, AttributeLike};
    use melior::ir::operation::OperationLike;
    use melior::ir::{BlockLike, Module};
    use melior::Context;
    use std::time::{Duration, Instant};

    /// A module lowered for the GPU, with its context and compile times.
    pub struct Lowered {
        // Field order: the module must drop before its context.
        pub module: Module<'static>,
        pub context: Box<Context>,
        /// Loads and stores left in host code (see [`hostwrap::host_memory_ops`]).
        pub host_ops: usize,
        pub parse_verify: Duration,
        pub passes: Duration,
    }

    /// Parses, verifies and lowers emitted MLIR for `arch`.
    pub fn compile(text: &str, arch: &str) -> Result<Lowered, String> {
        check_arch(arch)?;
        let context = Box::new(context());
        // SAFETY: the context is boxed (stable address) and outlives the module: it is
        // dropped after it (field order of `Lowered`).
        let ctx: &'static Context = unsafe { &*(context.as_ref() as *const Context) };
        let t0 = Instant::now();
        let mut module = parse_verified(ctx, text)?;
        let t1 = Instant::now();
        run_pipeline(ctx, &mut module, &stage_loops())?;
        let mut module = fused(ctx, module)?;
        run_pipeline(ctx, &mut module, &stage_outline())?;
        let outlined = module.as_operation().to_string();
        let host_ops = hostwrap::host_memory_ops(&outlined);
        let outlined = devmath::lower_math_in_gpu_modules(&outlined)?;
        drop(module);
        let mut module = parse_verified(ctx, &outlined)?;
        run_pipeline(ctx, &mut module, &stage_lower(arch))?;
        let passes = t1.elapsed();
        Ok(Lowered { module, context, host_ops, parse_verify: t1 - t0, passes })
    }

    /// A module after [`stage_loops`] through [`text_passes`], [`STAGE_FUSE`],
    /// [`accumulate::registerize`] and [`flatten::flatten`]: the parallel loops the
    /// kernels will be made of.
    pub fn fused<'c>(ctx: &'c Context, module: Module<'c>) -> Result<Module<'c>, String> {
        let text = text_passes(&module.as_operation().to_string());
        drop(module);
        let mut module = parse_verified(ctx, &text)?;
        run_pipeline(ctx, &mut module, STAGE_FUSE)?;
        let text = fuse::unmark_distinct(&module.as_operation().to_string());
        let text = flatten::flatten(&accumulate::registerize(&text));
        drop(module);
        parse_verified(ctx, &text)
    }

    fn parse_verified<'c>(ctx: &'c Context, text: &str) -> Result<Module<'c>, String> {
        let (module, diags) = with_diagnostics(ctx, || Module::parse(ctx, text));
        let module = module.ok_or_else(|| format!("MLIR does not parse:\n{diags}"))?;
        let (ok, diags) = with_diagnostics(ctx, || module.as_operation().verify());
        if !ok {
            return Err(format!("MLIR does not verify:\n{diags}"));
        }
        Ok(module)
    }

    /// The PTX of every kernel module, as `(module name, text)` in module order.
    pub fn ptx(lowered: &Lowered) -> Result<Vec<(String, String)>, String> {
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
                let objects = o.attribute("objects").map_err(|e| format!("gpu.binary without objects: {e}"))?;
                let objects = ArrayAttribute::try_from(objects).map_err(|e| e.to_string())?;
                for i in 0..objects.len() {
                    let obj = objects.element(i).map_err(|e| e.to_string())?;
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
