//! Running compiled code, as opposed to compiling it (`jit`, [`crate::gpu`],
//! [`crate::aot`]'s `build`) and to what compiled code calls while it runs
//! ([`crate::runtime`]). Nothing here needs LLVM.
//!
//! - [`gpu`]: [`gpu::GpuRunner`] runs GPU host code however it was compiled (by the JIT or
//!   into an artifact), its buffers in managed or device memory ([`gpu::resident`]: one
//!   device buffer per input shapes, the step replayed as a CUDA graph), and resident
//!   training state in device memory ([`gpu::state`]).
//! - [`artifact`]: the loader of `.archx` artifacts' shared objects and
//!   [`artifact::AotExecutor`], which runs a program from one.

pub mod artifact;
pub mod gpu;
