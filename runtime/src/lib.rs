//! The `archc` runtime: dense tensors ([`tensor`]), the reference TIR interpreter
//! ([`interp`]), tensor file formats ([`io`]: `.npy`, `.npz`, `.safetensors`, CSV,
//! PyTorch `.pt`) and training data sets ([`data`]: loaders, seeded splits and batches).

pub mod data;
pub mod elem;
pub mod interp;
pub mod io;
pub mod special;
pub mod tensor;

pub use interp::{Interpreter, RunError};
pub use tensor::{Data, Diff, Tensor, TensorError};
