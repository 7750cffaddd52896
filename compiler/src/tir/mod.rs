//! TIR, the typed tensor IR: a program of parameters and SSA functions over tensors with
//! symbolic shapes (see `program`), its primitive ops (`ops`), shape rules (`infer`),
//! text form (`print`, `parse`) and verifier (`verify`).

pub mod dim;
pub mod ops;
pub mod program;
pub mod types;

pub use dim::Dim;
pub use ops::{BinaryOp, Init, Op, PoolOp, ReduceOp, UnaryOp};
pub use program::{Func, Inst, ParamDecl, Program, ValueId};
pub use types::{DType, TensorType};
