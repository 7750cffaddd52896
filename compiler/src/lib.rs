//! The `archc` compiler core: the checker (`sema`) that turns `.arch` modules into TIR,
//! TIR itself (`tir`), and neutral diagnostics (`diag`).
//!
//! Architecture invariant: this crate does no IO. Sources come in as strings through a
//! `SourceMap`; results go out as values and `Diagnostic`s.

pub mod tir;
