//! archc's Cranelift tier: TIR functions lowered to Cranelift IR over buffers and
//! JIT-compiled in milliseconds, once per function for every size.
//!
//! Contract: every tensor value is a contiguous row-major heap buffer; its sizes are
//! polynomials of the entry function's size symbols, which compiled code reads from the
//! run's context ([`rt::Ctx`]), so one compiled function serves every batch size. Callees
//! are specialised per argument types over the entry's symbols ([`module`]). Results match
//! the reference interpreter within 1e-5 relative (integers and bools exactly), random ops
//! draw the interpreter's streams, and whatever the interpreter refuses at run time is
//! refused too. An instruction the tier cannot lower makes compilation fail with
//! [`ClifError::Unsupported`], never a wrong answer.
//!
//! - [`module`] compiles a program function (and its callees) into a [`Compiled`].
//! - `lower` turns one function into Cranelift IR: elementwise ops and reductions as loops
//!   (chains of elementwise ops fused into one loop; 128-bit vector loops with scalar
//!   tails on x86-64 and aarch64, [`Options`]), data
//!   movement as strided copies, `call`/`stack`/`vmap`/`scan` as calls and loops.
//! - [`kernels`] are the Rust kernels compiled code calls (`gemm` contractions, random
//!   fills, and the interpreter's implementation for ops without a native lowering).
//! - [`rt`] is the run's context, allocation, refusals and scalar math.
//! - [`backend`] is [`ClifCpu`], the `Executor`.

pub mod backend;
pub mod kernels;
pub(crate) mod lower;
pub mod module;
pub mod rt;

pub use backend::ClifCpu;
pub use module::{compile, compile_with, emit_clif, emit_clif_with, Compiled, Options};

/// Why a function could not be compiled.
#[derive(Clone, Debug, PartialEq, thiserror::Error)]
pub enum ClifError {
    /// An op (or a use of it) the tier does not lower yet.
    #[error("the Cranelift tier does not support {op} here: {why}")]
    Unsupported { op: String, why: String },
    /// The function or program is not one that can run (unknown function, recursion).
    #[error("{0}")]
    Program(String),
    /// Cranelift refused the generated code (a bug of the tier).
    #[error("Cranelift: {0}")]
    Codegen(String),
}

impl ClifError {
    pub(crate) fn unsupported(op: impl Into<String>, why: impl Into<String>) -> ClifError {
        ClifError::Unsupported { op: op.into(), why: why.into() }
    }
}
