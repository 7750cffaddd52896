//! Printed TIR as an input: `archc build --emit tir` writes a program that `archc run`
//! and `archc build` read back (`.tir` files), so TIR is an interchange stage.
//!
//! Contract: a `.tir` file is parsed and verified (SSA, types through the shared shape
//! rules, parameters, callees) before anything runs; an error names the line and column
//! or lists every verifier finding. A program without `main` is refused.

use archc_compiler::tir::{parse::parse_program, verify::verify, Program};
use std::path::Path;

/// Whether `path` names printed TIR (by its extension).
pub fn is_tir(path: &Path) -> bool {
    path.extension().is_some_and(|e| e == "tir")
}

/// Reads, parses and verifies a `.tir` file.
pub fn read(path: &Path) -> Result<Program, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    parse(&text).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses and verifies TIR text.
pub fn parse(text: &str) -> Result<Program, String> {
    let program = parse_program(text).map_err(|e| format!("TIR syntax error at {e}"))?;
    if program.func("main").is_none() {
        return Err("the program has no `main` function".into());
    }
    verify(&program).map_err(|errors| {
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        format!("the TIR does not verify: {}", shown.join("; "))
    })?;
    Ok(program)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn garbage_is_an_error_with_a_position() {
        let e = parse("program p {\n  oops\n}\n").unwrap_err();
        assert!(e.contains("line"), "{e}");
    }
}
