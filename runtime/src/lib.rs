//! The `archc` runtime: dense tensors ([`tensor`]), the reference TIR interpreter
//! ([`interp`]) and tensor file formats ([`io`]: `.npy`, `.safetensors`).

pub mod elem;
pub mod interp;
pub mod io;
pub mod special;
pub mod tensor;

pub use interp::{Interpreter, RunError};
pub use tensor::{Data, Diff, Tensor, TensorError};
