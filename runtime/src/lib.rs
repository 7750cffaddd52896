//! The `archc` runtime: dense tensors ([`tensor`]), the reference TIR interpreter
//! ([`interp`]), tensor file formats ([`io`]: `.npy`, `.npz`, `.safetensors`, CSV,
//! PyTorch `.pt`), training data sets ([`data`]: loaders, seeded splits and batches) and the
//! training loop ([`train`]: schedules, checkpoints, metrics, curves, anomaly detection).

pub mod data;
pub mod elem;
pub mod interp;
pub mod io;
pub mod special;
pub mod tensor;
pub mod train;

pub use interp::{CompileTime, Executor, Interpreter, RunError};
pub use tensor::{Data, Diff, Tensor, TensorError};
