//! TIR, the typed tensor IR: a program of parameters and SSA functions over tensors with
//! symbolic shapes (see `program`), its primitive ops (`ops`), shape rules (`infer`),
//! text form (`print`, `parse`), verifier (`verify`), instruction patterns that
//! rewrites and backends share (`pattern`), and static costs (`memory`: peak bytes,
//! `cost`: parameter and FLOP counts).

pub mod cost;
pub mod dim;
pub mod infer;
pub mod memory;
pub mod ops;
pub mod parse;
pub mod pattern;
pub mod print;
pub mod program;
pub mod testutil;
pub mod types;
pub mod verify;

pub use dim::Dim;
pub use infer::{infer, infer_one, FuncSigs};
pub use ops::{BinaryOp, Init, Op, PoolOp, ReduceOp, UnaryOp};
pub use parse::{parse_program, parse_type, ParseError};
pub use program::{Func, Inst, ParamDecl, Program, ValueId};
pub use types::{DType, TensorType};
pub use verify::{verify, VerifyError};
