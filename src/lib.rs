//! The `archc` driver: everything between the command line and the compiler core —
//! reading files, finding user modules beside the main file, rendering diagnostics with
//! `ariadne`, and preparing interpreter inputs.

pub mod adapt;
pub mod artifact;
pub mod backend;
pub mod batches;
pub mod choices;
pub mod cli;
pub mod driver;
pub mod error;
pub mod grad;
pub mod import;
pub mod inputs;
pub mod memory;
pub mod oom;
pub mod options;
pub mod render;
pub mod search;
pub mod steptime;
pub mod supernet;
pub mod tasks;
#[cfg(feature = "mlir")]
pub mod tiered;
pub mod tirfile;
pub mod training;
pub mod weights;
