//! No-panic property: the parser and formatter survive random token strings and
//! mutations of real programs; whenever a mutated program still parses cleanly, the
//! formatter's round-trip properties hold for it.

mod common;

use archc_grammar::span::FileId;
use archc_grammar::{format_module, parse};

/// A tiny deterministic generator (64-bit LCG, high bits).
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

const VOCAB: &[&str] = &[
    "use", "layer", "network", "operator", "over", "grid", "fn", "param", "buffer", "input", "output", "let", "repeat",
    "stack", "choose", "in", "shared", "if", "else", "train", "on", "adapt", "as", "true", "false", "skip", "x", "f32",
    "Linear", "d", "0", "42", "1.5", "1e-3", "\"s\"", "(", ")", "[", "]", "{", "}", ",", ":", ";", ".", "...", "=",
    "=>", "->", "|>", "+", "-", "*", "/", "%", "**", "@", "==", "!=", "<", "<=", ">", ">=", "&&", "||", "!", "$",
    "\"open", "/*", "*/", "// c\n", "\n", "é",
];

fn random_tokens(rng: &mut Lcg) -> String {
    let n = rng.below(40);
    (0..n).map(|_| VOCAB[rng.below(VOCAB.len())]).collect::<Vec<_>>().join(" ")
}

/// Deletes, duplicates, swaps or inserts a few whitespace-separated words of `src`
/// (line breaks are words too, so line comments keep their extent).
fn mutate(rng: &mut Lcg, src: &str) -> String {
    let mut words: Vec<String> =
        src.lines().flat_map(|l| l.split_whitespace().map(String::from).chain(["\n".to_string()])).collect();
    for _ in 0..1 + rng.below(3) {
        let i = rng.below(words.len().max(1));
        match rng.below(4) {
            0 if !words.is_empty() => {
                words.remove(i);
            }
            1 if !words.is_empty() => {
                let w = words[i].clone();
                words.insert(i, w);
            }
            2 if words.len() > 1 => {
                let j = rng.below(words.len());
                words.swap(i, j);
            }
            _ => words.insert(i.min(words.len()), VOCAB[rng.below(VOCAB.len())].to_string()),
        }
    }
    words.join(" ")
}

/// Parses; if clean, checks the formatter properties. Returns whether it was clean.
fn exercise(src: &str) -> bool {
    let (m, errors) = parse(FileId(0), src);
    for e in &errors {
        assert!(e.span.end as usize <= src.len() && e.span.start <= e.span.end, "{e:?}");
        assert!(!e.message.is_empty());
    }
    if !errors.is_empty() {
        // Every error leaves an error node, so the formatter refuses the tree.
        assert!(format_module(&m, src).is_none(), "error-free tree despite {errors:?}");
        return false;
    }
    common::check_roundtrip(src);
    true
}

/// A random well-formed expression of at most `depth` levels, with random parentheses.
fn random_expr(rng: &mut Lcg, depth: u32) -> String {
    const LEAVES: &[&str] = &["x", "y", "d", "0", "2", "1.5", "1e-3", "true", "skip", "\"s\""];
    const BINOPS: &[&str] = &["|>", "||", "&&", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "%", "@", "**"];
    if depth == 0 {
        return LEAVES[rng.below(LEAVES.len())].to_string();
    }
    let sub = |rng: &mut Lcg| random_expr(rng, depth - 1);
    let e = match rng.below(15) {
        0..=4 => format!("{} {} {}", sub(rng), BINOPS[rng.below(BINOPS.len())], sub(rng)),
        5 => format!("{}{}", ["-", "!"][rng.below(2)], sub(rng)),
        6 => format!("{}({}, k = {})", sub(rng), sub(rng), sub(rng)),
        7 => format!("{}[{}, {}:, ::{}, ...]", sub(rng), sub(rng), sub(rng), sub(rng)),
        8 => format!("{}.T", sub(rng)),
        9 => format!("h => {}", sub(rng)),
        10 => format!("if {} {{ {} }} else {{ {} }}", sub(rng), sub(rng), sub(rng)),
        // A stack block's count does not start with a bracket or a sign.
        11 => format!("repeat n as i {{ {} }} |> stack(n * {}) {{ {} }}", sub(rng), sub(rng), sub(rng)),
        13 => format!("stack([{}, {}], axis = {})", sub(rng), sub(rng), sub(rng)),
        12 => format!("{{ let a = {}; {} }}", sub(rng), sub(rng)),
        _ => format!("[{}, {}]", sub(rng), sub(rng)),
    };
    if rng.below(3) == 0 {
        format!("({e})")
    } else {
        e
    }
}

#[test]
fn random_expressions_roundtrip_through_the_formatter() {
    let mut rng = Lcg(3);
    let mut clean = 0;
    for _ in 0..600 {
        let e = random_expr(&mut rng, 4);
        let src = format!("network T {{ let v = {e} }}");
        let ok = exercise(&src);
        if !ok && std::env::var("SHOW_REJECTED").is_ok() {
            eprintln!("{src}\n  {:?}", parse(FileId(0), &src).1[0].message);
        }
        clean += ok as usize;
    }
    // Chained comparisons (`a < b < c`) and unparenthesised lambdas as operands
    // (`x + h => h`) are rejected.
    assert!(clean > 300, "only {clean} random expressions parsed");
}

#[test]
fn random_token_strings_never_panic() {
    let mut rng = Lcg(7);
    for _ in 0..2000 {
        let src = random_tokens(&mut rng);
        exercise(&src);
    }
}

#[test]
fn mutated_programs_never_panic_and_clean_ones_roundtrip() {
    let mut rng = Lcg(11);
    let mut clean = 0;
    for case in 0..1000 {
        let base = if case % 2 == 0 { common::DESIGN } else { common::COVERAGE };
        let src = mutate(&mut rng, base);
        clean += exercise(&src) as usize;
    }
    eprintln!("clean mutants: {clean}");
    assert!(clean > 30, "too few mutants parse cleanly ({clean}) to test the formatter");
}

#[test]
fn truncated_programs_never_panic() {
    let src = common::COVERAGE;
    let mut cut = 0;
    while cut < src.len() {
        if src.is_char_boundary(cut) {
            exercise(&src[..cut]);
        }
        cut += 11;
    }
}
