//! Every pass pipeline of the MLIR backend, each one ordered list of named passes.
//!
//! - [`cpu`]: the CPU backend (JIT and AOT): tensors to loops, [`fuse_loops`],
//!   [`super::parallel_loops`],
//!   loops to the LLVM dialect with the parallel loops as OpenMP regions.
//! - The GPU path's stages, in the order `gpu::compile` runs them: [`gpu_loops`],
//!   [`gpu_fuse`], [`gpu_outline`], [`gpu_lower`]; the GPU module's rewrites that are not
//!   passes yet run between them (see `gpu::compile`).
//! - [`staged_to_llvm`]: the GPU path's loops compiled for the CPU (the `gpu-staging`
//!   test backend).
//!
//! Why the order is what it is, pass by pass, is written next to each step.

use super::{ArchcPass, Pipeline, Step};
use crate::gpu::BLOCK;

fn up(text: &str) -> Step {
    Step::Upstream(text.to_string())
}

/// Tensors in, loops out: elementwise producers fused into their consumers before
/// bufferization; every linalg op becomes one `scf.parallel` (reduction dimensions as
/// `scf.for` inside). Loops stay scalar (LLVM's loop vectoriser does the rest).
///
/// No `cse` runs before bufferization: the runtime calls (matmul) read their operands
/// through `bufferization.to_buffer`, which bufferization treats as the tensor's last
/// read, and CSE would merge two such reads of one tensor into the first, letting an
/// in-place write between them clobber the buffer the second call still reads. CSE
/// also merges identical `tensor.empty` ops, after which `eliminate-empty-tensors`
/// (which lets results be computed in place in the entry's output buffers) made several
/// results share one output buffer.
///
/// `generalize`: named ops (transposes, fills) become generic first, so that a transpose
/// fuses into its consumer instead of being a loop of its own (the GPU path).
fn to_loops(generalize: bool) -> Vec<Step> {
    let fuse = if generalize {
        "func.func(linalg-generalize-named-ops,linalg-fuse-elementwise-ops)"
    } else {
        "func.func(linalg-fuse-elementwise-ops)"
    };
    vec![
        up("inline"),
        up("symbol-dce"),
        up("canonicalize"),
        up(fuse),
        up("canonicalize"),
        up("eliminate-empty-tensors"),
        up("one-shot-bufferize{bufferize-function-boundaries function-boundary-type-conversion=identity-layout-map allow-return-allocs-from-loops}"),
        up("canonicalize"),
        up("cse"),
        up("buffer-deallocation-pipeline"),
        up("func.func(convert-linalg-to-parallel-loops)"),
    ]
}

/// The CPU backend's pipeline, JIT and AOT alike. `min_work`: the work from which a loop
/// runs on several cores (`None`: every loop on one core).
///
/// After [`super::parallel_loops`], memrefs are lowered before `scf`:
/// `convert-scf-to-openmp` wraps loop bodies in `memref.alloca_scope`, which must be
/// inlined before the loops inside become blocks.
pub fn cpu(min_work: Option<u64>) -> Pipeline {
    let mut steps = to_loops(false);
    steps.extend(fuse_loops());
    steps.push(up("canonicalize"));
    steps.push(Step::Archc(ArchcPass::ParallelLoops { min_work }));
    steps.extend(
        [
            "convert-scf-to-openmp",
            "convert-complex-to-standard",
            "expand-strided-metadata",
            "lower-affine",
            "finalize-memref-to-llvm",
            "convert-scf-to-cf",
            "convert-math-to-llvm",
            "convert-math-to-libm",
            "convert-complex-to-llvm",
            "convert-arith-to-llvm",
            "convert-openmp-to-llvm",
            "convert-cf-to-llvm",
            "convert-func-to-llvm",
            "convert-index-to-llvm",
            "reconcile-unrealized-casts",
        ]
        .map(up),
    );
    Pipeline::new("cpu", steps)
}

/// GPU stage 1: tensors to parallel loops ([`to_loops`] with named ops generalized); then
/// host compute without parallel loops becomes one-iteration loops, that is one-thread
/// kernels ([`super::wrap_host_compute`]), host copies go through the runtime
/// ([`super::route_copies`]), and each parallel loop's innermost dimension comes first, for
/// coalesced accesses ([`super::innermost_first`]).
pub fn gpu_loops() -> Pipeline {
    let mut steps = to_loops(true);
    steps.extend([
        Step::Archc(ArchcPass::WrapHostCompute),
        Step::Archc(ArchcPass::RouteCopies),
        Step::Archc(ArchcPass::InnermostFirst),
    ]);
    Pipeline::new("gpu-loops", steps)
}

/// Independent loops over equal bounds brought together ([`super::group_loops`]) and
/// adjacent ones merged where the second reads what the first wrote only at the same
/// index (upstream `scf-parallel-loop-fusion`, with the function's buffers declared
/// distinct around it, [`super::distinct`]); then reductions carry their accumulators in
/// registers ([`super::accumulators`]). A reduction's fill, fold and cast, an elementwise
/// op with several users and its consumers, an optimizer's updates of a parameter and its
/// moments: one loop each instead of several. On the CPU that is one fork instead of
/// several and one pass over memory (MNIST-1D CNN epoch 15.1 -> 14.7 ms on a 2-core Zen 4;
/// the FNO forward and the MLPs unchanged). `cse` first so that equal constant bounds are
/// the same values.
fn fuse_loops() -> [Step; 5] {
    [
        Step::Archc(ArchcPass::MarkDistinct),
        Step::Archc(ArchcPass::GroupLoops),
        up("func.func(cse,scf-parallel-loop-fusion)"),
        Step::Archc(ArchcPass::UnmarkDistinct),
        Step::Archc(ArchcPass::CarryAccumulators),
    ]
}

/// GPU stage 2: [`fuse_loops`], one kernel instead of several. `cse` rather than
/// `canonicalize` before the fusion, which would inline the host wrapping's
/// one-iteration loops back into host code.
pub fn gpu_fuse() -> Pipeline {
    Pipeline::new("gpu-fuse", fuse_loops())
}

/// GPU stage 3: parallel loops to outlined kernels: each parallel nest tiled by [`BLOCK`]
/// threads, mapped to blocks and threads and outlined into a `gpu.module`, the constants
/// its bounds and indices use moved inside (so that LLVM sees constant trip counts and
/// strides in the kernel, not kernel parameters). Complex arithmetic is expanded here so
/// that kernels see only real math ops; then the kernels' math ops become calls of
/// `gpu::devmath`'s helpers ([`ArchcPass::DeviceMath`]), so no libdevice is needed.
pub fn gpu_outline() -> Pipeline {
    Pipeline::new(
        "gpu-outline",
        [
            Step::Archc(ArchcPass::FlattenLoops),
            up(&format!(
                "func.func(scf-parallel-loop-tiling{{parallel-loop-tile-sizes={BLOCK} no-min-max-bounds=true}},\
gpu-map-parallel-loops,convert-parallel-loops-to-gpu)"
            )),
            up("gpu-launch-sink-index-computations"),
            up("gpu-kernel-outlining"),
            up("lower-affine"),
            up("convert-complex-to-standard"),
            up("canonicalize"),
            Step::Archc(ArchcPass::DeviceMath),
        ],
    )
}

/// GPU stage 4: outlined kernels to PTX (`gpu.binary`) and host code to the LLVM dialect.
/// PTX ISA 8.1 (CUDA 12.1 drivers and later): a fused kernel's memref descriptors can
/// take more than the 4352 bytes of parameters that earlier versions allow (up to 32764).
pub fn gpu_lower(arch: &str) -> Pipeline {
    let mut steps = vec![
        up(&format!("nvvm-attach-target{{chip={arch} features=+ptx81 O=3}}")),
        up("gpu.module(convert-scf-to-cf,convert-gpu-to-nvvm,canonicalize,cse,reconcile-unrealized-casts)"),
        up("gpu-module-to-binary{format=isa}"),
        up("convert-scf-to-cf"),
        up("expand-strided-metadata"),
        up("lower-affine"),
        up("finalize-memref-to-llvm{use-generic-functions}"),
    ];
    steps.extend(
        [
            "convert-math-to-llvm",
            "convert-math-to-libm",
            "convert-complex-to-llvm",
            "convert-arith-to-llvm",
            "convert-cf-to-llvm",
            "gpu-to-llvm",
            "convert-func-to-llvm",
            "convert-index-to-llvm",
            "reconcile-unrealized-casts",
        ]
        .map(up),
    );
    Pipeline::new("gpu-lower", steps)
}

/// The GPU path's parallel loops (after [`gpu_fuse`] and its rewrites) compiled for the
/// CPU: every `scf.parallel` runs as sequential loops.
pub fn staged_to_llvm() -> Pipeline {
    let mut steps = vec![Step::Archc(ArchcPass::FlattenLoops)];
    steps.extend(
        [
            "canonicalize",
            "convert-complex-to-standard",
            "convert-scf-to-cf",
            "expand-strided-metadata",
            "lower-affine",
            "finalize-memref-to-llvm",
            "convert-math-to-llvm",
            "convert-math-to-libm",
            "convert-complex-to-llvm",
            "convert-arith-to-llvm",
            "convert-cf-to-llvm",
            "convert-func-to-llvm",
            "convert-index-to-llvm",
            "reconcile-unrealized-casts",
        ]
        .map(up),
    );
    Pipeline::new("gpu-staging-cpu", steps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cpu_pipeline_lists_archc_s_pass_between_loops_and_llvm() {
        let p = cpu(Some(1));
        let names: Vec<&str> = p.steps.iter().map(Step::name).collect();
        let at = names.iter().position(|n| *n == "archc-parallel-loops").expect("listed");
        let lowered = names.iter().position(|n| *n == "func.func(convert-linalg-to-parallel-loops)").expect("listed");
        assert_eq!(&names[lowered + 1..at - 1], fuse_loops().iter().map(Step::name).collect::<Vec<_>>());
        assert_eq!(names[at + 1], "convert-scf-to-openmp");
        assert!(!p.upstream_text().contains("archc"), "{}", p.upstream_text());
        assert!(p.listing().contains("archc-parallel-loops"));
    }
}
