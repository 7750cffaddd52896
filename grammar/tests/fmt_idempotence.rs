//! `archc fmt` is idempotent: formatting its own output changes nothing, for every
//! example and standard-library file and for a few hundred seeded mutations of them
//! that insert one to three comments at token boundaries; the output parses to the same tree
//! (modulo spans and `use` order) and keeps every comment.

mod common;

use archc_grammar::span::FileId;
use archc_grammar::{format_module, format_source, parse};
use common::{comment_texts, uses_first, without_spans};
use std::path::PathBuf;

/// Every `.arch` file of the repository's `examples/` and `stdlib/`, sorted.
fn corpus() -> Vec<(String, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["examples", "stdlib"] {
        for entry in std::fs::read_dir(root.join(dir)).expect("the folder exists") {
            let path = entry.expect("an entry").path();
            if path.extension().is_some_and(|e| e == "arch") {
                let text = std::fs::read_to_string(&path).expect("readable");
                files.push((format!("{dir}/{}", path.file_name().unwrap().to_string_lossy()), text));
            }
        }
    }
    files.sort();
    assert!(files.len() > 20, "found {} files", files.len());
    files
}

/// What is wrong with formatting `src` (which must parse without errors), if anything.
fn problem(src: &str) -> Option<String> {
    let (m1, errors) = parse(FileId(0), src);
    assert!(errors.is_empty(), "the input parses");
    let Some(f1) = format_module(&m1, src) else { return Some("does not format".into()) };
    let (m2, errors) = parse(FileId(0), &f1);
    if !errors.is_empty() {
        return Some(format!("the output has syntax errors:\n{f1}"));
    }
    if without_spans(&uses_first(m1)) != without_spans(&m2) {
        return Some(format!("the output parses to another tree:\n{f1}"));
    }
    if comment_texts(src) != comment_texts(&f1) {
        return Some(format!("comments lost or changed:\n{f1}"));
    }
    match format_module(&m2, &f1) {
        Some(f2) if f2 == f1 => None,
        Some(f2) => Some(format!("not idempotent:\n--- once:\n{f1}--- twice:\n{f2}")),
        None => Some("the output does not format".into()),
    }
}

/// SplitMix64: a small seeded generator, so every run tries the same mutations.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// The comment spellings inserted: line comments with and without surrounding space
/// and newlines, and block comments.
const COMMENTS: [&str; 6] = ["// c\n", "//\n", " // note\n", "\n// own line\n", "/* b */", " /* b */ "];

/// `src` with a comment inserted at a token boundary chosen by `rng`.
fn mutate(src: &str, rng: &mut Rng) -> String {
    let (toks, _) = archc_grammar::lexer::lex(src);
    let mut cuts: Vec<usize> = toks.iter().flat_map(|(l, _, r)| [*l, *r]).collect();
    cuts.dedup();
    let at = cuts[rng.below(cuts.len())];
    let comment = COMMENTS[rng.below(COMMENTS.len())];
    format!("{}{comment}{}", &src[..at], &src[at..])
}

#[test]
fn comment_after_use_keyword_is_stable() {
    for src in ["use//\np", "use // c\nnn.Linear\n", "use nn.Linear\nuse // c\nnn.Conv1d\n\nnetwork A {}\n"] {
        assert_eq!(problem(src), None, "input {src:?}");
    }
    let once = format_source("use//\np").unwrap();
    assert_eq!(format_source(&once).unwrap(), once);
}

#[test]
fn every_example_and_stdlib_file_is_a_fixed_point() {
    let failures: Vec<String> =
        corpus().iter().filter_map(|(name, src)| problem(src).map(|p| format!("{name}: {p}"))).collect();
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn seeded_comment_mutations_are_fixed_points() {
    let mut rng = Rng(0x5eed);
    let (mut tried, mut failures) = (0, Vec::new());
    for (name, src) in corpus() {
        for _ in 0..12 {
            let mut mutated = src.clone();
            for _ in 0..1 + rng.below(3) {
                mutated = mutate(&mutated, &mut rng);
            }
            if !parse(FileId(0), &mutated).1.is_empty() {
                continue; // a comment that splits a token's line can change the parse; skip those
            }
            tried += 1;
            if let Some(p) = problem(&mutated) {
                failures.push(format!("{name} mutated:\n{mutated}\n{p}"));
            }
        }
    }
    assert!(tried >= 250, "only {tried} mutations parse");
    assert!(failures.is_empty(), "{} of {tried} mutations fail; first:\n{}", failures.len(), failures[0]);
}
