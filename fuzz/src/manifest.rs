//! The `.archx` manifest target: a valid `manifest.json` (format 4), mutated line by line,
//! word by word and byte by byte, and given to `archc_mlir::aot::manifest::parse`.
//!
//! Contract: [`SEED`] parses (a test says so); [`mutate`] keeps the text within a few KiB
//! of it; [`parse`] returns whether the parser accepted the text, and a panic propagates.

use crate::mutate::{self, EDGE_NUMBERS};
use crate::rng::Rng;

/// A manifest of a CPU artifact with one dynamic-size function and two sources.
pub const SEED: &str = r#"{
  "format": 4,
  "target": "cpu",
  "cpu": "x86-64-v3",
  "program": "0123456789abcdef",
  "main": "model.arch",
  "options": {
    "train": "false",
    "choices": ""
  },
  "members": [
    { "name": "src/model.arch", "size": 812, "sha256": "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855" },
    { "name": "src/blocks/aux.arch", "size": 17, "sha256": "0000000000000000000000000000000000000000000000000000000000000000" },
    { "name": "main.so", "size": 20816, "sha256": "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff" }
  ],
  "funcs": [
    {
      "name": "main",
      "sync": false,
      "dynamic": [ { "symbol": "B", "input": 0, "axis": 0 } ],
      "inputs": [ "f32[B, 64]" ],
      "outputs": [ "f32[B, 10]" ],
      "params": [
        { "name": "fc.w", "global": "param_0", "type": "f32[64, 10]" },
        { "name": "fc.b", "global": "param_1", "type": "f32[10]" }
      ]
    }
  ]
}
"#;

/// Words the manifest format uses, swapped in for other words.
const WORDS: &[&str] = &[
    "\"format\":",
    "\"target\":",
    "\"cpu\"",
    "{\"cuda\":",
    "\"sm_80\"",
    "\"native\"",
    "\"x86-64\"",
    "\"x86-64-v4\"",
    "\"program\":",
    "\"main\"",
    "\"options\":",
    "\"members\":",
    "\"funcs\":",
    "\"dynamic\":",
    "\"input\":",
    "\"outputs\":",
    "\"params\":",
    "\"sync\":",
    "true",
    "null",
    "{}",
    "[]",
    "\"",
    "1e30",
    "-1",
    "src/../x",
    "/abs",
    "a\\b",
    "main.so",
    "src/",
    "f32[]",
    "i64[B, B]",
    "f32[B * 2, 4 / 0]",
    "B",
    "T",
];

/// A mutated manifest: 1 to 3 line, word or byte edits.
pub fn mutate(r: &mut Rng) -> String {
    let mut text = SEED.to_string();
    for _ in 0..1 + r.below(3) {
        text = match r.below(4) {
            0 => edit_lines(&text, r),
            1 | 2 => edit_word(&text, r),
            _ => String::from_utf8_lossy(&mutate::bytes(text.as_bytes(), 1 + r.below(3), r)).into_owned(),
        };
    }
    text
}

fn edit_lines(text: &str, r: &mut Rng) -> String {
    let mut lines: Vec<&str> = text.lines().collect();
    if lines.is_empty() {
        return text.to_string();
    }
    let i = r.below(lines.len());
    let j = r.below(lines.len());
    match r.below(3) {
        0 => {
            lines.remove(i);
        }
        1 => lines.insert(j, lines[i]),
        _ => lines.swap(i, j),
    }
    lines.join("\n") + "\n"
}

/// One whitespace-separated word replaced by a number at the edges or a format word.
fn edit_word(text: &str, r: &mut Rng) -> String {
    let words: Vec<(usize, usize)> = word_ranges(text);
    if words.is_empty() {
        return text.to_string();
    }
    let (a, b) = *r.pick(&words);
    let with = if r.chance(0.5) { *r.pick(EDGE_NUMBERS) } else { *r.pick(WORDS) };
    format!("{}{}{}", &text[..a], with, &text[b..])
}

fn word_ranges(text: &str) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_whitespace() || matches!(c, '[' | ']' | ',' | '='), start) {
            (true, Some(s)) => {
                out.push((s, i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    out
}

/// Whether the manifest parser accepts `text`.
pub fn parse(text: &str) -> bool {
    archc_mlir::aot::manifest::parse(text).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_parses() {
        archc_mlir::aot::manifest::parse(SEED).unwrap();
    }

    #[test]
    fn words_are_split_at_spaces_and_brackets() {
        let t = "in f32[B, 64]";
        let words: Vec<&str> = word_ranges(t).into_iter().map(|(a, b)| &t[a..b]).collect();
        assert_eq!(words, ["in", "f32", "B", "64"]);
    }
}
