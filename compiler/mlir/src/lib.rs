//! archc's MLIR backend: TIR lowered to MLIR (`linalg` on tensors), bufferized, lowered to
//! LLVM and JIT-compiled through MLIR's ExecutionEngine.
//!
//! - [`emit`] turns a TIR function into MLIR text, sizes constant or dynamic (no LLVM).
//! - [`abi`] is compiled code's calling convention; [`aot`] writes, reads and checks
//!   artifacts.
//! - [`runtime`] is what compiled CPU code calls at run time: `rt` (products, long FFTs
//!   and sorts, random streams, failures), `alloc` (its buffer allocation) and `omp` (the
//!   OpenMP entry points that run the loops `passes::parallel_loops` keeps parallel on
//!   every core).
//! - `passes` (feature `llvm`): every pass pipeline as one list of named passes, and the
//!   passes archc adds to MLIR's.
//! - `jit` (feature `llvm`) parses, verifies, runs the CPU pipeline and executes.
//! - [`gpu`] lowers the same modules to NVVM/PTX kernels (and JIT-compiles their host
//!   code).
//! - [`exec`] runs compiled code: [`exec::gpu`], the GPU runner (kernels through CUDA,
//!   resident state in device memory), whoever compiled the host code; [`exec::artifact`],
//!   the loader and executor of artifacts.
//! - [`error`]: every fallible function outside `emit` and `runtime` returns an [`Error`],
//!   whose [`Error::kind`] says whether the user or archc is at fault.

pub mod abi;
pub mod aot;
#[cfg(feature = "llvm")]
pub mod backend;
pub mod emit;
pub mod error;
pub mod exec;
pub mod gpu;
#[cfg(feature = "llvm")]
pub mod jit;
#[cfg(feature = "llvm")]
pub mod passes;
pub mod runtime;

pub use error::{ArtifactError, Error, ErrorKind};
