//! `archc-fuzz`: a fuzz campaign kept in the repository (`make fuzz`, `make fuzz-smoke`).
//!
//! Stable Rust has no coverage-guided fuzzing (cargo-fuzz and libFuzzer need nightly), so
//! the campaign mutates a seed corpus with its own mutators ([`mutate`]) and checks five
//! targets ([`targets`]): `.arch` programs (checked, built with sampled choices, and built
//! into train programs), the TIR text form, the formatter, the data readers, and `.archx`
//! manifests. Every input runs under `catch_unwind` and a watchdog ([`harness`]); every
//! input that ever failed is kept under `tests/fuzz_regressions/` and replayed by
//! `fuzz/tests/fuzz_regressions.rs` through [`harness::run_one`].

pub mod alloc;
pub mod corpus;
pub mod data;
pub mod gen;
pub mod harness;
pub mod input;
pub mod manifest;
pub mod mutate;
pub mod rng;
pub mod targets;
pub mod tir;

/// The repository root this crate was built in (the seed corpus lives there).
pub fn repo_root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("fuzz/ has a parent").to_path_buf()
}
