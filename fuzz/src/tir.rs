//! The TIR text target: the parser, verifier and printer on printed programs and on
//! mutations of them.
//!
//! Contract: [`round_trip`] asserts the text form's promise for a built program: it
//! prints, parses back, and prints to the same text. [`check_text`] gives any text to the
//! parser; what parses is verified, and a program the verifier accepts must round-trip
//! too. Violations are panics (the harness records them like any other).

use crate::mutate::{self, EDGE_NUMBERS};
use crate::rng::Rng;
use archc_compiler::tir::{parse_program, verify, Program};

/// Asserts that `program` prints, parses back and prints to the same text.
pub fn round_trip(program: &Program) {
    let text = program.to_string();
    let back = parse_program(&text).unwrap_or_else(|e| panic!("printed TIR does not parse: {e}\n{text}"));
    let again = back.to_string();
    assert!(again == text, "TIR print/parse/print differs:\n--- first\n{text}\n--- second\n{again}");
}

/// Parses `text`; a program that parses and verifies must round-trip. Returns whether it
/// parsed.
pub fn check_text(text: &str) -> bool {
    let Ok(program) = parse_program(text) else { return false };
    if verify(&program).is_ok() {
        round_trip(&program);
    }
    true
}

/// A mutated TIR text: 1 to 3 edits of its words and bytes.
pub fn mutate(seed: &str, r: &mut Rng) -> String {
    let mut text = seed.to_string();
    for _ in 0..1 + r.below(3) {
        text = edit(&text, r);
    }
    text
}

fn edit(text: &str, r: &mut Rng) -> String {
    let words = words(text);
    if words.is_empty() || r.chance(0.2) {
        return String::from_utf8_lossy(&mutate::bytes(text.as_bytes(), 1 + r.below(3), r)).into_owned();
    }
    let (a, b) = *r.pick(&words);
    let (c, d) = *r.pick(&words);
    match r.below(4) {
        0 => format!("{}{}{}", &text[..a], r.pick(EDGE_NUMBERS), &text[b..]),
        1 => format!("{}{}{}", &text[..a], &text[c..d], &text[b..]),
        2 => format!("{}{}", &text[..a], &text[b..]),
        _ => format!("{}{} {}", &text[..a], &text[c..d], &text[a..]),
    }
}

/// Byte ranges of the runs of ASCII letters, digits, `_`, `.`, `%` and `@`.
fn words(text: &str) -> Vec<(usize, usize)> {
    let word = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'.' | b'%' | b'@');
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if word(b[i]) {
            let s = i;
            while i < b.len() && word(b[i]) {
                i += 1;
            }
            out.push((s, i));
        } else {
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "program P\n\nfunc @main(%0: f32[B, 4] \"x\") -> (f32[B, 4] \"y\") {\n  %1 = exp(%0) : f32[B, 4]\n  return %1\n}\n";

    #[test]
    fn a_valid_program_round_trips() {
        assert!(check_text(TEXT));
    }

    #[test]
    fn mutations_parse_or_fail() {
        let mut r = Rng::new(5);
        for _ in 0..500 {
            check_text(&mutate(TEXT, &mut r));
        }
    }
}
