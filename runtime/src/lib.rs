//! The `archc` runtime: dense tensors ([`tensor`]), the reference TIR interpreter
//! ([`interp`]), tensor file formats ([`io`]: `.npy`, `.npz`, `.safetensors`, CSV,
//! PyTorch `.pt`), training data sets ([`data`]: loaders, seeded splits and batches), the
//! training loop ([`train`]: schedules, checkpoints, metrics, curves, anomaly detection),
//! the finiteness scan run after every step ([`finite`]) and the state executors keep
//! between calls ([`resident`]).

pub mod blas;
pub mod data;
pub mod elem;
pub mod finite;
pub mod interp;
pub mod io;
pub mod resident;
pub mod special;
pub mod strided;
pub mod tensor;
pub mod train;

pub use interp::{CompileTime, Executor, Interpreter, RunError};
pub use resident::{Bindings, HostState};
pub use tensor::{Data, Diff, Tensor, TensorError};
