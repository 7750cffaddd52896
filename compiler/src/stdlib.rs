//! The standard library's `.arch` sources, embedded in the compiler.
//!
//! `use nn.{Linear}` loads `stdlib/nn.arch`. The files live at the top of the repository
//! so users can read them; they are compiled into the binary so `archc` needs no data
//! directory at run time.

/// The stdlib modules, by name.
pub const MODULES: &[&str] = &["nn", "attention", "rnn", "spectral", "blocks", "losses", "hyper"];

/// The source text of stdlib module `name`.
pub fn source(name: &str) -> Option<&'static str> {
    Some(match name {
        "nn" => include_str!("../../stdlib/nn.arch"),
        "attention" => include_str!("../../stdlib/attention.arch"),
        "rnn" => include_str!("../../stdlib/rnn.arch"),
        "spectral" => include_str!("../../stdlib/spectral.arch"),
        "blocks" => include_str!("../../stdlib/blocks.arch"),
        "losses" => include_str!("../../stdlib/losses.arch"),
        "hyper" => include_str!("../../stdlib/hyper.arch"),
        _ => return None,
    })
}
