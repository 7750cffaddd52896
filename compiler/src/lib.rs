//! The `archc` compiler core: the checker (`sema`) that turns `.arch` modules into TIR,
//! TIR itself (`tir`), passes over it (`passes`), the embedded standard library
//! (`stdlib`) and neutral diagnostics (`diag`).
//!
//! Architecture invariant: this crate does no IO. Sources come in as strings; user
//! modules through the `sema::ModuleSource` trait; results go out as values and
//! `Diagnostic`s.

pub mod approx;
pub mod autodiff;
pub mod diag;
pub mod passes;
pub mod sema;
pub mod stdlib;
pub mod tir;
