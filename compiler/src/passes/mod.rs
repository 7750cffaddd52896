//! Rewrites of TIR programs. Each pass keeps the program valid (the verifier runs after
//! the pipeline) and documents the identity it relies on.

mod cleanup;

pub use cleanup::{cleanup, dead_code, drop_unreached};
