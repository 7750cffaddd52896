//! archc's MLIR backend: TIR lowered to MLIR (`linalg` on tensors), bufferized, lowered to
//! LLVM and JIT-compiled through MLIR's ExecutionEngine.
//!
//! - [`emit`] turns a TIR function into MLIR text, sizes constant or dynamic (no LLVM).
//! - [`abi`] is compiled code's calling convention; [`aot`] writes and runs artifacts.
//! - [`rt`] holds the runtime functions compiled code calls (random streams); [`alloc`]
//!   their buffer allocation; [`omp`] the OpenMP entry points that run the loops
//!   [`par`] keeps parallel on every core.
//! - `jit` (feature `llvm`) parses, verifies, runs the pass pipeline and executes.
//! - [`gpu`] lowers the same modules to NVVM/PTX kernels and runs them through CUDA.

pub mod abi;
pub mod alloc;
pub mod aot;
#[cfg(feature = "llvm")]
pub mod backend;
pub mod emit;
pub mod gpu;
#[cfg(feature = "llvm")]
pub mod jit;
pub mod omp;
pub mod par;
pub mod rt;
