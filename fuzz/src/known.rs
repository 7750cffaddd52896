//! Known bugs the generator steers around, so a long campaign can look past them: each is
//! kept as a case in `tests/fuzz_regressions/` (listed in its `KNOWN` file) and goes
//! away from here with its fix.
//!
//! Contract: [`known_hang`] recognises, by tokens, programs that hit a known unbounded
//! evaluation; it may also match programs that would not hang (it is only a filter for
//! generated inputs, `--no-avoid-known` turns it off).

use crate::corpus::{tokens, Class};

/// Why `text` would hang the checker, when it has a known cause.
///
/// A `network` or `layer` whose body instantiates itself, in a file that reads
/// `.param_count` or `.with_params`: the scratch build that finds an instance's
/// parameters (`sema/hyper.rs`, `instance_params`) evaluates the body again, which asks
/// for the inner instance's parameters, without end, and memory grows until it runs out
/// (`tests/fuzz_regressions/hang-param-count-self-instance.build-0.arch`).
pub fn known_hang(text: &str) -> Option<&'static str> {
    let uses_params = text.contains("param_count") || text.contains("with_params");
    (uses_params && instantiates_itself(text)).then_some("a block reads param_count of an instance of itself")
}

/// Whether some `network NAME` / `layer NAME` item calls `NAME(` before the next item.
fn instantiates_itself(text: &str) -> bool {
    let toks = tokens(text);
    let word = |i: usize| &text[toks[i].start..toks[i].end];
    let header = |i: usize| matches!(word(i), "network" | "layer" | "operator" | "fn");
    let mut i = 0;
    while i + 1 < toks.len() {
        if !(matches!(word(i), "network" | "layer") && toks[i + 1].class == Class::Ident) {
            i += 1;
            continue;
        }
        let name = word(i + 1);
        let mut j = i + 2;
        while j + 1 < toks.len() && !header(j) {
            if word(j) == name && word(j + 1) == "(" {
                return true;
            }
            j += 1;
        }
        i = j;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn self_instances_with_param_count_are_recognised() {
        let hang =
            "network N(d: int = 4) {\n input x: f32[B, d]\n let t = N(d)\n let p = t.param_count\n output y = x\n}";
        assert!(known_hang(hang).is_some());
        let other = "layer L(d: int) { fn (x: f32[B, d]) -> f32[B, d] { x } }\nnetwork N {\n input x: f32[B, 4]\n let t = L(4)\n let p = t.param_count\n output y = x\n}";
        assert!(known_hang(other).is_none());
    }
}
