//! Robustness of the checker: `check_file` never panics and never hangs, whatever it is
//! given, and every failure it reports is a well-formed diagnostic.
//!
//! A deterministic generator (splitmix64, seeded from a constant) feeds at least 10,000
//! programs to `check_file` with `check_all: true` (and an eighth of the generated ones a
//! second time as an entry build, with sampled or explicit choices, training on or off):
//!
//! - (a) mutations of the repository's `examples/*.arch` and `stdlib/*.arch` files (and
//!   of generated programs): tokens and lines deleted, duplicated, swapped; numbers
//!   replaced by 0, -1, huge values or floats; identifiers swapped with other names or
//!   keywords; truncation; random punctuation; dims of types and arguments of layer calls
//!   changed; lines spliced in from other files. Some mutated stdlib modules are served
//!   as a user module `aux` to a program that imports it (cross-file diagnostics).
//! - (b) programs from a small grammar of the language: networks of stdlib layers and
//!   builtins with tracked (and now and then deliberately wrong) shapes, `repeat`,
//!   `stack`, `choose`, `with_params`, `if`, lambdas, indexing, helper layers and
//!   functions, `train` and `adapt` items; networks of random well-formed expressions;
//!   and single builtin or layer calls with edge-case arguments (zero, negative and
//!   near-`i64::MAX` numbers, axes out of range, odd einsum specs, symbolic dims).
//! - (c) token soup: random tokens alone, or inside a valid network skeleton.
//!
//! Loading stdlib modules dominates the cost of a check, so generated programs import
//! only the modules they mention. Integer overflow is a panic only in debug builds; run
//! `cargo test --test fuzz_check` (about 5x slower) to find overflows that a release
//! build silently wraps.
//!
//! For each program: no panic (a panic hook records message, location and backtrace);
//! every diagnostic has a non-empty message, and its span and related spans name a
//! loaded file and lie within its text on char boundaries; an entry build without
//! diagnostics has a program, which the TIR verifier accepts and whose text prints and
//! parses back to itself; diagnostics render without panicking; no case takes longer
//! than `ARCHC_FUZZ_HANG_SECS` (5 s in release, 60 s in debug builds). A watchdog thread
//! fails the test when one case runs past twice that limit (a real hang).
//!
//! Failures are collected by signature, minimised automatically (line, then token
//! delta debugging), printed, and saved as `archc-fuzz-failure-N.arch` (and
//! `...-N.min.arch`, `...-N-aux.arch`) in `std::env::temp_dir()`. The program being
//! checked is also written to `archc-fuzz-current.arch` there before each case, so a
//! crash that cannot be caught (a stack overflow aborts the process) can be reproduced.
//!
//! Knobs: `ARCHC_FUZZ_SEED` (u64), `ARCHC_FUZZ_CASES` (total programs, split between the
//! categories in the default proportions), `ARCHC_FUZZ_HANG_SECS`; for tuning the
//! generators, `ARCHC_FUZZ_STATS=1` prints how often each first diagnostic came up and
//! `ARCHC_FUZZ_DUMP=DIR` writes the first 400 rejected programs there with their message.
//! To reproduce: `ARCHC_FUZZ_ONLY=N` runs only case N (printing it and its verdict);
//! `ARCHC_FUZZ_FILE=PATH` checks one saved program (and `PATH`'s `-aux` module) alone,
//! as `archc check` and as `archc build` would.

use archc_compiler::sema::{check_file, CheckOutput, ChoiceMode, ModuleSource, Options};
use archc_compiler::tir::{parse_program, verify};
use archc_grammar::span::Span;
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------- random numbers

/// splitmix64: tiny, deterministic, good enough for test generation.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }
}

// ---------------------------------------------------------------- vocabulary

const KEYWORDS: &[&str] = &[
    "use", "layer", "network", "operator", "over", "grid", "fn", "param", "buffer", "input", "output", "let", "repeat",
    "stack", "choose", "in", "shared", "if", "else", "train", "on", "adapt", "as", "true", "false", "skip",
];

#[rustfmt::skip]
const BUILTINS: &[&str] = &[
    "exp", "log", "log1p", "sqrt", "rsqrt", "tanh", "sigmoid", "relu", "erf", "abs", "sin", "cos", "sign", "floor",
    "maximum", "minimum", "where", "pow", "cast", "sum", "mean", "max", "min", "argmax", "matmul", "einsum", "conv",
    "max_pool", "avg_pool", "reshape", "transpose", "permute", "flatten", "unsqueeze", "squeeze", "concat", "pad",
    "broadcast", "gather", "scatter_add", "rfft", "irfft", "real", "imag", "complex", "scan", "rand_like",
    "randn_like", "zeros", "ones", "full", "arange", "linspace", "len", "int", "float", "training", "pi", "init",
    "argsort", "sort", "topk", "argmin", "take_along", "stop_gradient",
];

#[rustfmt::skip]
const STDLIB_NAMES: &[&str] = &[
    "gelu", "gelu_tanh", "silu", "softplus", "leaky_relu", "elu", "softmax", "log_softmax", "glu", "reglu", "geglu",
    "swiglu", "Linear", "Conv1d", "Conv2d", "Conv3d", "CausalConv1d", "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "AvgPool1d", "AvgPool2d", "AvgPool3d", "BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "LayerNorm", "GroupNorm",
    "Dropout", "Embedding", "Flatten", "Identity", "ResidualMlp", "ResBlock1d", "ResBlock2d", "ConvBnRelu2d",
    "InceptionResNetA", "TemporalBlock", "DoubleConv3d", "upsample_nearest3d", "UNetDown3d", "UNetUp3d", "split_heads",
    "merge_heads", "sinusoidal_positions", "MultiheadAttention", "TransformerEncoderLayer", "LstmCell", "Lstm",
    "GruCell", "Gru", "SpectralConv1d", "SpectralConv2d",
];

#[rustfmt::skip]
const MISC_NAMES: &[&str] = &[
    "x", "h", "d", "w", "b", "B", "N", "T", "f32", "f64", "i64", "bool", "c64", "int", "float", "str", "dtype",
    "shape", "rank", "T", "param_count", "with_params", "normal", "uniform", "zeros", "digits", "mcts", "adamw",
    "cross_entropy", "label", "logits", "nn", "blocks", "attention", "rnn", "spectral", "aux", "nope",
];

const PUNCT: &[&str] = &[
    "...", "=>", "->", "|>", "**", "==", "!=", "<=", ">=", "&&", "||", "(", ")", "[", "]", "{", "}", ",", ":", ";",
    ".", "=", "+", "-", "*", "/", "%", "@", "<", ">", "!",
];

#[rustfmt::skip]
const WEIRD_NUMBERS: &[&str] = &[
    "0", "-1", "1", "2", "-2", "3", "0.0", "-0.5", "1.5", "2.5e4", "1e-3", "1e308", "1e999", "-1e308",
    "9223372036854775807", "-9223372036854775807", "9223372036854775808", "99999999999999999999", "4294967296",
    "2147483648", "1000000", "1000000000", "65536", "(0 - 1)", "(2 ** 62)", "(2 ** 63)", "(2 ** 64)", "(1 / 0)",
    "(1 % 0)", "(0 / 0)", "(-9223372036854775807 - 1)", "9007199254740992", "9007199254740993", "-9007199254740992",
    "4503599627370496", "(2 ** 53)", "(2 ** 52 * 2 ** 52)",
];

#[rustfmt::skip]
const ODD_TEXT: &[&str] = &[
    "$", "#", "é", "\u{1F600}", "\"unterminated", "/*", "*/", "// c\n", "\n", "\\", "`", "'", "?", "~", "^", "\t",
    "\u{0}", "\u{feff}", "\"\\q\"", "\"a\\nb\"", "0x1F", "1..2", "1.", ".5", "1e", "1e+", "__", "_",
];

// ---------------------------------------------------------------- tokens

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum K {
    Space,
    Comment,
    Ident,
    Num,
    Str,
    Punct,
    Other,
}

/// Splits text into tokens, whitespace and comments included, so that joining the
/// pieces gives the text back.
fn tokenize(s: &str) -> Vec<(K, String)> {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        let c = s[i..].chars().next().expect("char");
        let start = i;
        let kind = if c.is_whitespace() {
            while i < s.len() && s[i..].chars().next().is_some_and(char::is_whitespace) {
                i += s[i..].chars().next().expect("char").len_utf8();
            }
            K::Space
        } else if s[i..].starts_with("//") {
            i = s[i..].find('\n').map_or(s.len(), |j| i + j);
            K::Comment
        } else if s[i..].starts_with("/*") {
            i = s[i + 2..].find("*/").map_or(s.len(), |j| i + 2 + j + 2);
            K::Comment
        } else if c == '"' {
            i += 1;
            while i < s.len() && b[i] != b'"' {
                i += if b[i] == b'\\' && i + 1 < s.len() { 2 } else { 1 };
            }
            i = (i + 1).min(s.len());
            while !s.is_char_boundary(i) {
                i += 1;
            }
            K::Str
        } else if c.is_ascii_alphabetic() || c == '_' {
            while i < s.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'_') {
                i += 1;
            }
            K::Ident
        } else if c.is_ascii_digit() {
            while i < s.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                if b[i] == b'.' && !(i + 1 < s.len() && b[i + 1].is_ascii_digit()) {
                    break;
                }
                i += 1;
            }
            K::Num
        } else if let Some(p) = PUNCT.iter().find(|p| s[i..].starts_with(**p)) {
            i += p.len();
            K::Punct
        } else {
            i += c.len_utf8();
            K::Other
        };
        out.push((kind, s[start..i].to_string()));
    }
    out
}

fn join(toks: &[(K, String)]) -> String {
    toks.iter().map(|t| t.1.as_str()).collect()
}

fn solid(toks: &[(K, String)]) -> Vec<usize> {
    toks.iter().enumerate().filter(|(_, t)| t.0 != K::Space && t.0 != K::Comment).map(|(i, _)| i).collect()
}

// ---------------------------------------------------------------- (a) mutations

struct Corpus {
    /// `(display name, text)` of every example and stdlib file.
    files: Vec<(String, String)>,
}

impl Corpus {
    fn load() -> Corpus {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
        let mut files = Vec::new();
        for dir in ["examples", "stdlib"] {
            let mut paths: Vec<PathBuf> = std::fs::read_dir(root.join(dir))
                .expect("directory exists")
                .map(|e| e.expect("dir entry").path())
                .filter(|p| p.extension().is_some_and(|e| e == "arch"))
                .collect();
            paths.sort();
            for p in paths {
                let text = std::fs::read_to_string(&p).expect("readable");
                files.push((format!("{dir}/{}", p.file_name().expect("name").to_string_lossy()), text));
            }
        }
        assert!(files.len() >= 10, "expected the examples and stdlib files, found {}", files.len());
        Corpus { files }
    }
}

fn random_ident(r: &mut Rng, toks: &[(K, String)]) -> String {
    match r.below(6) {
        0 => r.pick(KEYWORDS).to_string(),
        1 => r.pick(BUILTINS).to_string(),
        2 => r.pick(STDLIB_NAMES).to_string(),
        3 => r.pick(MISC_NAMES).to_string(),
        4 => {
            let ids: Vec<&String> = toks.iter().filter(|t| t.0 == K::Ident).map(|t| &t.1).collect();
            if ids.is_empty() {
                "x".to_string()
            } else {
                r.pick(&ids).to_string()
            }
        }
        _ => format!("{}{}", r.pick(&["q", "Q", "_", "d_", "Zz"]), r.below(100)),
    }
}

/// The index of the bracket closing the one at `open`, if any.
fn closing(toks: &[(K, String)], open: usize) -> Option<usize> {
    let (o, c) = match toks[open].1.as_str() {
        "(" => ("(", ")"),
        "[" => ("[", "]"),
        "{" => ("{", "}"),
        _ => return None,
    };
    let mut depth = 0;
    for (i, t) in toks.iter().enumerate().skip(open) {
        if t.1 == o {
            depth += 1;
        } else if t.1 == c {
            depth -= 1;
            if depth == 0 {
                return Some(i);
            }
        }
    }
    None
}

/// Top-level comma-separated pieces of `toks[open + 1..close]`, as token index ranges.
fn split_args(toks: &[(K, String)], open: usize, close: usize) -> Vec<(usize, usize)> {
    let mut pieces = Vec::new();
    let mut depth = 0i32;
    let mut start = open + 1;
    for (i, t) in toks.iter().enumerate().take(close).skip(open + 1) {
        match t.1.as_str() {
            "(" | "[" | "{" => depth += 1,
            ")" | "]" | "}" => depth -= 1,
            "," if depth == 0 => {
                pieces.push((start, i));
                start = i + 1;
            }
            _ => {}
        }
    }
    if start < close {
        pieces.push((start, close));
    }
    pieces
}

#[allow(clippy::explicit_auto_deref)] // `*r.pick(..)`: `tok` takes `&str`
fn mutate_once(r: &mut Rng, text: &str, corpus: &Corpus) -> String {
    let mut toks = tokenize(text);
    let sol = solid(&toks);
    let tok = |t: &str| (K::Other, t.to_string());
    if sol.is_empty() {
        return format!("{text}{}", r.pick(PUNCT));
    }
    let at = sol[r.below(sol.len())];
    match r.below(16) {
        0 => {
            toks.remove(at);
        }
        1 => {
            let t = toks[at].clone();
            toks.insert(at, (K::Space, " ".into()));
            toks.insert(at, t);
        }
        2 => {
            let other = sol[r.below(sol.len())];
            toks.swap(at, other);
        }
        3 => {
            // A number becomes something odd.
            let nums: Vec<usize> = sol.iter().copied().filter(|&i| toks[i].0 == K::Num).collect();
            let i = if nums.is_empty() { at } else { nums[r.below(nums.len())] };
            toks[i] = tok(*r.pick(WEIRD_NUMBERS));
        }
        4 => {
            // An identifier becomes another name or a keyword.
            let ids: Vec<usize> = sol.iter().copied().filter(|&i| toks[i].0 == K::Ident).collect();
            let i = if ids.is_empty() { at } else { ids[r.below(ids.len())] };
            let new = random_ident(r, &toks);
            toks[i] = tok(&new);
        }
        5 => {
            let p = if r.chance(0.8) { r.pick(PUNCT).to_string() } else { r.pick(ODD_TEXT).to_string() };
            toks.insert(at, tok(&format!(" {p} ")));
        }
        6 => {
            // Truncation at a random char boundary.
            let mut cut = r.below(text.len() + 1);
            while !text.is_char_boundary(cut) {
                cut -= 1;
            }
            return text[..cut].to_string();
        }
        7 => {
            // Line surgery: delete, duplicate or swap lines.
            let mut lines: Vec<&str> = text.lines().collect();
            if lines.is_empty() {
                return text.to_string();
            }
            let i = r.below(lines.len());
            match r.below(3) {
                0 => {
                    let n = 1 + r.below(3);
                    let end = (i + n).min(lines.len());
                    lines.drain(i..end);
                }
                1 => {
                    let l = lines[i];
                    lines.insert(i, l);
                }
                _ => {
                    let j = r.below(lines.len());
                    lines.swap(i, j);
                }
            }
            return lines.join("\n");
        }
        8 | 9 => {
            // A dim of a tensor type: changed, dropped or added.
            let types: Vec<usize> = sol
                .windows(2)
                .filter(|w| {
                    ["f32", "f64", "i64", "bool", "c64"].contains(&toks[w[0]].1.as_str()) && toks[w[1]].1 == "["
                })
                .map(|w| w[1])
                .collect();
            if types.is_empty() {
                return mutate_once(r, text, corpus);
            }
            let open = types[r.below(types.len())];
            let Some(close) = closing(&toks, open) else { return mutate_once(r, text, corpus) };
            let dims = split_args(&toks, open, close);
            let new_dim = random_dim_text(r);
            match r.below(4) {
                0 if !dims.is_empty() => {
                    let (s, e) = dims[r.below(dims.len())];
                    toks.splice(s..e, [tok(&format!(" {new_dim}"))]);
                }
                1 if !dims.is_empty() => {
                    let (s, e) = dims[r.below(dims.len())];
                    let e = if e < close { e + 1 } else { e };
                    toks.drain(s..e);
                }
                2 => {
                    toks.insert(close, tok(&format!(", {new_dim}")));
                }
                _ => {
                    toks.insert(open + 1, tok(&format!("{new_dim}, ")));
                }
            }
        }
        10 | 11 => {
            // The arguments of a call: one dropped, duplicated, replaced, swapped, or a
            // keyword argument added.
            let calls: Vec<usize> =
                sol.windows(2).filter(|w| toks[w[0]].0 == K::Ident && toks[w[1]].1 == "(").map(|w| w[1]).collect();
            if calls.is_empty() {
                return mutate_once(r, text, corpus);
            }
            let open = calls[r.below(calls.len())];
            let Some(close) = closing(&toks, open) else { return mutate_once(r, text, corpus) };
            let args = split_args(&toks, open, close);
            let value = random_arg_text(r);
            match r.below(5) {
                0 if !args.is_empty() => {
                    let (s, e) = args[r.below(args.len())];
                    let e = if e < close { e + 1 } else { e };
                    toks.drain(s..e);
                }
                1 if !args.is_empty() => {
                    let (s, e) = args[r.below(args.len())];
                    let copy: String = join(&toks[s..e]);
                    toks.insert(close, tok(&format!(", {copy}")));
                }
                2 if !args.is_empty() => {
                    let (s, e) = args[r.below(args.len())];
                    toks.splice(s..e, [tok(&format!(" {value}"))]);
                }
                3 if args.len() >= 2 => {
                    let i = r.below(args.len());
                    let j = r.below(args.len());
                    let (a, b) = (args[i.min(j)], args[i.max(j)]);
                    if a != b {
                        let ta = join(&toks[a.0..a.1]);
                        let tb = join(&toks[b.0..b.1]);
                        toks.splice(b.0..b.1, [tok(&ta)]);
                        toks.splice(a.0..a.1, [tok(&tb)]);
                    }
                }
                _ => {
                    let key = r.pick(&["padding", "stride", "bias", "axis", "k", "d", "groups", "dilation", "nope"]);
                    let sep = if args.is_empty() { "" } else { ", " };
                    toks.insert(close, tok(&format!("{sep}{key} = {value}")));
                }
            }
        }
        12 => {
            // Splice lines from another file.
            let (_, other) = &corpus.files[r.below(corpus.files.len())];
            let lines: Vec<&str> = other.lines().collect();
            if lines.is_empty() {
                return text.to_string();
            }
            let s = r.below(lines.len());
            let e = (s + 1 + r.below(6)).min(lines.len());
            let mut mine: Vec<&str> = text.lines().collect();
            let at = r.below(mine.len() + 1);
            for (k, l) in lines[s..e].iter().enumerate() {
                mine.insert(at + k, l);
            }
            return mine.join("\n");
        }
        13 => {
            // A keyword for a related one.
            let swaps: &[&[&str]] = &[
                &["layer", "network", "operator"],
                &["repeat", "stack"],
                &["let", "output", "input", "param", "buffer"],
                &["true", "false", "skip"],
                &["in", "on", "as", "over"],
                &["if", "else"],
            ];
            let kws: Vec<usize> =
                sol.iter().copied().filter(|&i| swaps.iter().any(|g| g.contains(&toks[i].1.as_str()))).collect();
            if kws.is_empty() {
                return mutate_once(r, text, corpus);
            }
            let i = kws[r.below(kws.len())];
            let group = swaps.iter().find(|g| g.contains(&toks[i].1.as_str())).expect("group");
            toks[i] = tok(*r.pick(group));
        }
        14 => {
            // The value after an `=` or `:` becomes a random expression.
            let eqs: Vec<usize> = sol.iter().copied().filter(|&i| toks[i].1 == "=" || toks[i].1 == ":").collect();
            if eqs.is_empty() {
                return mutate_once(r, text, corpus);
            }
            let i = eqs[r.below(eqs.len())];
            let next = sol.iter().copied().find(|&j| j > i);
            let e = random_expr(r, &["x", "h", "d", "c", "w", "k"], 3);
            match next {
                Some(j) if r.chance(0.7) => toks[j] = tok(&e),
                _ => toks.insert(i + 1, tok(&format!(" {e}"))),
            }
        }
        _ => {
            // A bracket dropped or added (unbalancing nesting).
            let brackets: Vec<usize> =
                sol.iter().copied().filter(|&i| ["(", ")", "[", "]", "{", "}"].contains(&toks[i].1.as_str())).collect();
            if !brackets.is_empty() && r.chance(0.5) {
                toks.remove(brackets[r.below(brackets.len())]);
            } else {
                toks.insert(at, tok(*r.pick(&["(", ")", "[", "]", "{", "}"])));
            }
        }
    }
    join(&toks)
}

fn random_dim_text(r: &mut Rng) -> String {
    r.pick(&[
        "0",
        "-1",
        "1",
        "2",
        "3",
        "7",
        "1000000000",
        "9223372036854775807",
        "d",
        "d * 4",
        "d / 0",
        "d - d",
        "N",
        "N / 2 + 1",
        "B",
        "...",
        "1.5",
        "true",
        "\"s\"",
        "x",
        "c_in / groups",
        "2 * h",
        "-d",
        "d % 0",
        "d ** 40",
        "Q",
    ])
    .to_string()
}

fn random_arg_text(r: &mut Rng) -> String {
    if r.chance(0.5) {
        r.pick(WEIRD_NUMBERS).to_string()
    } else {
        r.pick(&[
            "x",
            "skip",
            "true",
            "\"kind\"",
            "[1, 2]",
            "[]",
            "Linear(4, 4)",
            "relu",
            "h => h",
            "d",
            "d * 2",
            "-d",
            "f32",
            "init.zeros()",
            "zeros([2])",
            "x.shape",
            "x.shape[0]",
            "nope",
            "repeat 2 { skip }",
        ])
        .to_string()
    }
}

fn mutate(r: &mut Rng, text: &str, corpus: &Corpus) -> String {
    let mut t = text.to_string();
    for _ in 0..1 + r.below(4) {
        t = mutate_once(r, &t, corpus);
    }
    t
}

// ---------------------------------------------------------------- stdlib imports

/// The header of generated programs: every stdlib module imported. [`prune_uses`] cuts
/// it down to the modules a program mentions (loading a module costs more than most
/// checks).
const ALL_USES: &str = "use nn.*\nuse blocks.*\nuse attention.*\nuse rnn.*\nuse spectral.*\n";

/// `(module, names it defines)` for every stdlib file.
fn stdlib_names() -> &'static [(String, Vec<String>)] {
    static NAMES: OnceLock<Vec<(String, Vec<String>)>> = OnceLock::new();
    NAMES.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("stdlib");
        let mut out = Vec::new();
        for e in std::fs::read_dir(dir).expect("stdlib directory") {
            let p = e.expect("dir entry").path();
            if p.extension().is_none_or(|x| x != "arch") {
                continue;
            }
            let text = std::fs::read_to_string(&p).expect("readable");
            let toks: Vec<String> = tokenize(&text).into_iter().filter(|t| t.0 == K::Ident).map(|t| t.1).collect();
            let names = toks
                .windows(2)
                .filter(|w| ["layer", "network", "operator", "fn"].contains(&w[0].as_str()))
                .map(|w| w[1].clone())
                .collect();
            out.push((p.file_stem().expect("stem").to_string_lossy().to_string(), names));
        }
        out.sort();
        out
    })
}

/// Replaces the [`ALL_USES`] header by imports of the modules the program mentions
/// (most of the time; now and then every module stays imported).
fn prune_uses(r: &mut Rng, text: String) -> String {
    let Some(body) = text.strip_prefix(ALL_USES) else { return text };
    if r.chance(0.1) {
        return text;
    }
    let idents: std::collections::HashSet<String> =
        tokenize(body).into_iter().filter(|t| t.0 == K::Ident).map(|t| t.1).collect();
    let mut header = String::new();
    for (module, names) in stdlib_names() {
        if names.iter().any(|n| idents.contains(n)) {
            header.push_str(&format!("use {module}.*\n"));
        }
    }
    format!("{header}{body}")
}

// ---------------------------------------------------------------- (b) grammar

/// The shape of the tensor flowing through a generated network (batch axis implied).
#[derive(Clone, Debug)]
enum Sh {
    /// `[B, d]`
    V(i64),
    /// `[B, T, d]` (`T` symbolic when `None`)
    S(Option<i64>, i64),
    /// `[B, c, L]`
    C1(i64, Option<i64>),
    /// `[B, c, H, H]`
    C2(i64, Option<i64>),
    /// `[B, c, D, D, D]`
    C3(i64, Option<i64>),
}

#[rustfmt::skip]
const ACTS: &[&str] = &[
    "relu", "gelu", "tanh", "sigmoid", "silu", "softplus", "gelu_tanh", "elu", "leaky_relu", "softmax", "log_softmax",
    "exp", "abs", "sin", "erf", "leaky_relu(slope = 0.2)", "softmax(axis = -1)", "elu(alpha = 0.5)",
];

struct Gen<'r> {
    r: &'r mut Rng,
    /// Probability that a number is replaced by a wrong value.
    bad: f64,
    /// Network parameters `(name, default)`, usable for numbers of the same value.
    params: Vec<(String, i64)>,
    /// Statements placed before the pipeline (instances, choices, stacks).
    prelude: Vec<String>,
    /// Items placed before the network (helper layers and functions).
    items: Vec<String>,
    /// Helper layers `(name)` that map `[..., d]` to itself, taking `d` first.
    helper_layers: Vec<String>,
    helper_fns: Vec<String>,
    stacks: Vec<String>,
    uid: usize,
}

impl Gen<'_> {
    fn fresh(&mut self, base: &str) -> String {
        self.uid += 1;
        format!("{base}{}", self.uid)
    }

    /// An int argument: usually `v` (as a literal or a parameter of that value), now and
    /// then something wrong.
    fn int(&mut self, v: i64) -> String {
        if self.r.chance(self.bad) {
            return random_arg_text(self.r);
        }
        let names: Vec<String> = self.params.iter().filter(|p| p.1 == v).map(|p| p.0.clone()).collect();
        if !names.is_empty() && self.r.chance(0.5) {
            return self.r.pick(&names).clone();
        }
        if v > 1 && self.r.chance(0.05) {
            return format!("{} + 1", v - 1);
        }
        v.to_string()
    }

    fn dim(&mut self) -> i64 {
        *self.r.pick(&[2, 4, 6, 8, 8, 12, 16, 16, 32])
    }

    fn count(&mut self) -> i64 {
        *self.r.pick(&[0, 1, 1, 2, 2, 3])
    }

    fn odd_k(&mut self) -> i64 {
        *self.r.pick(&[1, 3, 3, 5])
    }

    fn divisor(&mut self, d: i64) -> i64 {
        let ds: Vec<i64> = [1, 2, 4, 8].into_iter().filter(|k| d % k == 0).collect();
        *self.r.pick(&ds)
    }

    fn helper_layer(&mut self, d: i64) -> String {
        let name = self.fresh("Blk");
        let body = match self.r.below(6) {
            0 => "let fc = Linear(d, d)\n    fn (x: f32[..., d]) -> f32[..., d] { x + scale * fc(x) }".to_string(),
            1 => "param g: f32[d] = init.ones()\n    param b: f32[d] = init.zeros() if bias\n    \
                  fn (x: f32[..., d]) -> f32[..., d] { if bias { x * g + b } else { x * g } }"
                .to_string(),
            2 => "let norm = LayerNorm(d)\n    let ff = Linear(d, 2 * d)\n    \
                  fn (x: f32[..., d]) -> f32[..., d] { x + (x |> norm |> ff |> reglu) }"
                .to_string(),
            3 => "let inner = repeat 2 { ResidualMlp(d) }\n    fn (x: f32[..., d]) { inner(x) }".to_string(),
            4 => "buffer m: f32[d] = init.zeros()\n    param s: f32[] = init.constant(value = 0.5)\n    \
                  fn (x: f32[..., d]) -> f32[..., d] { (x - m) * s }"
                .to_string(),
            _ => "let fc = Linear(d, d, bias = bias)\n    let drop = Dropout(0.1)\n    \
                  fn (x: f32[..., d]) -> f32[..., d] { x |> fc |> drop |> relu }"
                .to_string(),
        };
        // A literal default: network parameters are not in scope here.
        let dv = if self.r.chance(self.bad) { random_arg_text(self.r) } else { d.to_string() };
        self.items
            .push(format!("layer {name}(d: int = {dv}, scale: float = 0.5, bias: bool = true) {{\n    {body}\n}}"));
        self.helper_layers.push(name.clone());
        name
    }

    fn helper_fn(&mut self) -> String {
        let name = self.fresh("act");
        let body = match self.r.below(5) {
            0 => "(x, a: float = 1.0) { relu(x) * a + x }",
            1 => "(x) {\n    let s = sigmoid(x)\n    x * s\n}",
            2 => "(x, axis: int = -1) { x - mean(x, axis = axis, keepdim = true) }",
            3 => "(x) { if x.rank > 2 { x } else { tanh(x) } }",
            _ => "(x) { where(x > 0.0, x, 0.0 * x) }",
        };
        self.items.push(format!("fn {name}{body}"));
        self.helper_fns.push(name.clone());
        name
    }

    /// One pipeline stage for a tensor of shape `sh`: its text (usable after `|>`), the
    /// result shape, and whether it is a layer (so it may be bound or called).
    fn stage(&mut self, sh: &Sh) -> (String, Sh, bool) {
        let sh = sh.clone();
        match sh {
            Sh::V(d) => self.stage_features(sh.clone(), d, Sh::V),
            Sh::S(t, d) => {
                if self.r.chance(0.45) {
                    return self.stage_features(sh.clone(), d, move |d2| Sh::S(t, d2));
                }
                match self.r.below(11) {
                    0 | 1 => {
                        let heads = self.divisor(d);
                        let kind = if self.r.chance(0.2) { ", kind = \"softplus\"" } else { "" };
                        (format!("MultiheadAttention({}, {}{kind})", self.int(d), self.int(heads)), sh, true)
                    }
                    2 => {
                        let heads = self.divisor(d);
                        let ff = self.dim();
                        let n = self.count();
                        let inner =
                            format!("TransformerEncoderLayer({}, {}, {})", self.int(d), self.int(heads), self.int(ff));
                        if self.r.chance(0.5) {
                            (format!("repeat {} {{ {inner} }}", self.int(n)), sh, true)
                        } else {
                            (inner, sh, true)
                        }
                    }
                    3 => {
                        let h = self.dim();
                        let l = self.r.pick(&["Lstm", "Gru"]).to_string();
                        (format!("{l}({}, {})", self.int(d), self.int(h)), Sh::S(t, h), true)
                    }
                    4 => (
                        self.r.pick(&["mean(axis = 1)", "sum(axis = 1)", "max(axis = 1)"]).to_string(),
                        Sh::V(d),
                        false,
                    ),
                    5 => {
                        (self.r.pick(&["h => h[:, -1]", "h => h[:, 0]", "h => h[:, 0, :]"]).to_string(), Sh::V(d), true)
                    }
                    6 => ("transpose(1, 2)".to_string(), Sh::C1(d, t), false),
                    7 if d % 2 == 0 => {
                        (format!("h => h + sinusoidal_positions(h.shape[1], {})", self.int(d)), sh, true)
                    }
                    8 => {
                        let k = self.dim();
                        (
                            format!(
                                "h => scan(GruCell({}, {}), h, zeros([h.shape[0], {}]), axis = 1)",
                                self.int(d),
                                self.int(k),
                                self.int(k)
                            ),
                            Sh::S(t, k),
                            true,
                        )
                    }
                    9 => {
                        let k = self.dim();
                        let cell = format!("LstmCell({}, {})", self.int(d), self.int(k));
                        let z = format!("zeros([h.shape[0], 2 * {}])", self.int(k));
                        (format!("h => scan({cell}, h, {z})[..., :{}]", self.int(k)), Sh::S(t, k), true)
                    }
                    _ => ("h => h[:, ::2]".to_string(), Sh::S(t.map(|t| (t + 1) / 2), d), true),
                }
            }
            Sh::C1(c, l) => match self.r.below(14) {
                0 | 1 => {
                    let c2 = self.dim();
                    let k = self.odd_k();
                    if self.r.chance(0.3) {
                        let s = 2;
                        let p = k / 2;
                        let l2 = l.map(|l| (l + 2 * p - k) / s + 1);
                        (
                            format!(
                                "Conv1d({}, {}, {}, stride = {s}, padding = {})",
                                self.int(c),
                                self.int(c2),
                                self.int(k),
                                self.int(p)
                            ),
                            Sh::C1(c2, l2),
                            true,
                        )
                    } else {
                        let extra = if self.r.chance(0.3) { ", bias = false" } else { "" };
                        (
                            format!(
                                "Conv1d({}, {}, {}, padding = {}{extra})",
                                self.int(c),
                                self.int(c2),
                                self.int(k),
                                self.int(k / 2)
                            ),
                            Sh::C1(c2, l),
                            true,
                        )
                    }
                }
                2 => (format!("BatchNorm1d({})", self.int(c)), sh, true),
                3 => {
                    let k = self.odd_k();
                    let n = self.count();
                    let inner = format!("ResBlock1d({}, {})", self.int(c), self.int(k));
                    if self.r.chance(0.5) {
                        (format!("repeat {} {{ {inner} }}", self.int(n)), sh, true)
                    } else {
                        (inner, sh, true)
                    }
                }
                4 => {
                    let c2 = self.dim();
                    let k = self.odd_k();
                    let dil = *self.r.pick(&[1, 2, 4]);
                    (
                        format!("TemporalBlock({}, {}, {}, {})", self.int(c), self.int(c2), self.int(k), self.int(dil)),
                        Sh::C1(c2, l),
                        true,
                    )
                }
                5 => {
                    let c2 = self.dim();
                    let k = self.odd_k();
                    (
                        format!("CausalConv1d({}, {}, {}, dilation = 2)", self.int(c), self.int(c2), self.int(k)),
                        Sh::C1(c2, l),
                        true,
                    )
                }
                6 => {
                    let p = self.r.pick(&["MaxPool1d", "AvgPool1d"]).to_string();
                    (format!("{p}(2)"), Sh::C1(c, l.map(|l| l / 2)), true)
                }
                7 => {
                    let c2 = self.dim();
                    let modes = match l {
                        Some(l) => 1 + self.r.below((l / 2 + 1).max(1) as usize) as i64,
                        None => 2,
                    };
                    (
                        format!("SpectralConv1d({}, {}, {})", self.int(c), self.int(c2), self.int(modes)),
                        Sh::C1(c2, l),
                        true,
                    )
                }
                8 => {
                    let g = self.divisor(c);
                    (format!("GroupNorm({}, {})", self.int(g), self.int(c)), sh, true)
                }
                9 => ("transpose(1, 2)".to_string(), Sh::S(l, c), false),
                10 => ("mean(axis = -1)".to_string(), Sh::V(c), false),
                11 if l.is_some() => {
                    let l = l.expect("concrete");
                    ("flatten(start = 1)".to_string(), Sh::V(c * l), false)
                }
                12 => ("h => pad(h, [0, 0, 0, 0, 1, 1])".to_string(), Sh::C1(c, l.map(|l| l + 2)), true),
                _ => {
                    let a = self.r.pick(ACTS).to_string();
                    (a, sh, false)
                }
            },
            Sh::C2(c, hw) => match self.r.below(11) {
                0 | 1 => {
                    let c2 = self.dim();
                    (format!("Conv2d({}, {}, 3, padding = 1)", self.int(c), self.int(c2)), Sh::C2(c2, hw), true)
                }
                2 => (format!("BatchNorm2d({})", self.int(c)), sh, true),
                3 => {
                    let n = self.count();
                    (format!("repeat {} {{ ResBlock2d({}) }}", self.int(n), self.int(c)), sh, true)
                }
                4 => {
                    let c2 = self.dim();
                    let k = self.odd_k();
                    (format!("ConvBnRelu2d({}, {}, {})", self.int(c), self.int(c2), self.int(k)), Sh::C2(c2, hw), true)
                }
                5 => {
                    let w = self.dim();
                    (format!("InceptionResNetA({}, {})", self.int(c), self.int(w)), sh, true)
                }
                6 => {
                    let p = self.r.pick(&["MaxPool2d", "AvgPool2d"]).to_string();
                    (format!("{p}(2)"), Sh::C2(c, hw.map(|h| h / 2)), true)
                }
                7 => ("mean(axis = [2, 3])".to_string(), Sh::V(c), false),
                8 => {
                    let c2 = self.dim();
                    let (m1, m2) = match hw {
                        Some(h) => ((h / 2).max(1), (h / 2 + 1).max(1)),
                        None => (2, 2),
                    };
                    (
                        format!(
                            "SpectralConv2d({}, {}, {}, {})",
                            self.int(c),
                            self.int(c2),
                            self.int(m1),
                            self.int(m2)
                        ),
                        Sh::C2(c2, hw),
                        true,
                    )
                }
                9 => {
                    let g = self.divisor(c);
                    (format!("GroupNorm({}, {})", self.int(g), self.int(c)), sh, true)
                }
                _ => (self.r.pick(ACTS).to_string(), sh, false),
            },
            Sh::C3(c, dd) => match self.r.below(8) {
                0 => {
                    let c2 = self.dim();
                    (format!("Conv3d({}, {}, 3, padding = 1)", self.int(c), self.int(c2)), Sh::C3(c2, dd), true)
                }
                1 => (format!("BatchNorm3d({})", self.int(c)), sh, true),
                2 => {
                    let c2 = self.dim();
                    (format!("DoubleConv3d({}, {})", self.int(c), self.int(c2)), Sh::C3(c2, dd), true)
                }
                3 => {
                    let c2 = self.dim();
                    (format!("UNetDown3d({}, {})", self.int(c), self.int(c2)), Sh::C3(c2, dd.map(|d| d / 2)), true)
                }
                4 => ("MaxPool3d(2)".to_string(), Sh::C3(c, dd.map(|d| d / 2)), true),
                5 => ("mean(axis = [2, 3, 4])".to_string(), Sh::V(c), false),
                6 => ("h => upsample_nearest3d(h)".to_string(), Sh::C3(c, dd.map(|d| d * 2)), true),
                _ => (self.r.pick(ACTS).to_string(), sh, false),
            },
        }
    }

    /// Stages on the last (feature) axis, for `[B, d]` and `[B, T, d]`.
    fn stage_features(&mut self, sh: Sh, d: i64, with: impl Fn(i64) -> Sh) -> (String, Sh, bool) {
        match self.r.below(24) {
            0..=2 => {
                let d2 = self.dim();
                let bias = if self.r.chance(0.2) { ", bias = false" } else { "" };
                (format!("Linear({}, {}{bias})", self.int(d), self.int(d2)), with(d2), true)
            }
            3 | 4 => (self.r.pick(ACTS).to_string(), sh, false),
            5 => (format!("LayerNorm({})", self.int(d)), sh, true),
            6 => (format!("Dropout({})", self.r.pick(&["0.1", "0.0", "0.5", "p = 0.2"])), sh, true),
            7 => (format!("ResidualMlp({})", self.int(d)), sh, true),
            8 => (self.r.pick(&["Identity()", "skip", "h => h", "h => h * 2.0", "h => -h"]).to_string(), sh, true),
            9 => {
                let n = self.count();
                let inner = match self.r.below(3) {
                    0 => format!("ResidualMlp({})", self.int(d)),
                    1 => format!("h => h + relu(Linear({}, {})(h))", self.int(d), self.int(d)),
                    _ => format!("LayerNorm({})", self.int(d)),
                };
                if self.r.chance(0.5) {
                    (format!("repeat {} as i {{ {inner} }}", self.int(n)), sh, true)
                } else {
                    (format!("repeat {} {{ {inner} }}", self.int(n)), sh, true)
                }
            }
            10 => {
                let n = self.count();
                let name = self.fresh("blocks");
                let inner = if self.r.chance(0.5) {
                    format!("ResidualMlp({})", self.int(d))
                } else {
                    format!("LayerNorm({})", self.int(d))
                };
                let head = if self.r.chance(0.3) {
                    format!("stack({}) as j", self.int(n))
                } else {
                    format!("stack({})", self.int(n))
                };
                self.prelude.push(format!("let {name} = {head} {{ {inner} }}"));
                self.stacks.push(name.clone());
                (name, sh, true)
            }
            11 => (
                self.r.pick(&["h => concat([h, h], axis = -1)", "h => concat([h, relu(h)], axis = -1)"]).to_string(),
                with(2 * d),
                true,
            ),
            12 if d >= 2 => {
                let k = 1 + self.r.below(d as usize) as i64;
                (format!("h => h[..., :{}]", self.int(k)), with(k), true)
            }
            13 if d % 2 == 0 => (self.r.pick(&["reglu", "geglu", "swiglu", "glu"]).to_string(), with(d / 2), false),
            14 => {
                // with_params: a layer run with generated parameters.
                let t = self.fresh("target");
                let d2 = self.dim();
                let line = format!("let {t} = Linear({}, {})", self.int(d), self.int(d2));
                self.prelude.push(line);
                let theta = match self.r.below(3) {
                    0 => format!("zeros([{t}.param_count])"),
                    1 => format!("ones([{t}.param_count]) * 0.01"),
                    _ => format!("randn_like(zeros([{t}.param_count]))"),
                };
                (format!("{t}.with_params({theta})"), with(d2), true)
            }
            15 => {
                let op = self.fresh("op");
                let a = format!("Linear({}, {})", self.int(d), self.int(d));
                let b = format!("ResidualMlp({})", self.int(d));
                let shared = if self.r.chance(0.3) { " shared" } else { "" };
                self.prelude.push(format!("choose {op} in [{a}, {b}, skip]{shared}"));
                (op, sh, true)
            }
            16 => {
                let w = self.fresh("width");
                let opts = [self.dim(), self.dim(), self.dim()];
                let shared = if self.r.chance(0.5) { " shared" } else { "" };
                self.prelude.push(format!("choose {w} in [{}, {}, {}]{shared}", opts[0], opts[1], opts[2]));
                (format!("Linear({}, {w})", self.int(d)), with(opts[0]), true)
            }
            17 => {
                let cond = self.r.pick(&["training", "true", "false", "1 < 2", "d > 4", "!training"]).to_string();
                let a = format!("Linear({}, {})", self.int(d), self.int(d));
                (format!("if {cond} {{ {a} }} else {{ skip }}"), sh, true)
            }
            18 => {
                let name = if self.helper_layers.is_empty() || self.r.chance(0.3) {
                    self.helper_layer(d)
                } else {
                    self.r.pick(&self.helper_layers).clone()
                };
                let arg = self.int(d);
                (format!("{name}({arg})"), sh, true)
            }
            19 => {
                let name = if self.helper_fns.is_empty() || self.r.chance(0.3) {
                    self.helper_fn()
                } else {
                    self.r.pick(&self.helper_fns).clone()
                };
                (name, sh, false)
            }
            20 => {
                // An instance used twice (shared parameters).
                let l = self.fresh("shared");
                let line = format!("let {l} = Linear({}, {})", self.int(d), self.int(d));
                self.prelude.push(line);
                (format!("h => {l}({l}(h))"), sh, true)
            }
            21 => ("h => reshape(h, h.shape)".to_string(), sh, true),
            22 => (
                self.r
                    .pick(&["h => { let a = h * 2.0\n a - h }", "h => h + h.shape[-1]", "h => cast(cast(h, f64), f32)"])
                    .to_string(),
                sh,
                true,
            ),
            _ => {
                let classes = self.dim();
                let a = format!("Linear({}, {})", self.int(d), self.int(classes));
                (format!("h => {a}(h) |> log_softmax"), with(classes), true)
            }
        }
    }

    fn input_type(&mut self, sh: &Sh) -> String {
        let dtype =
            if self.r.chance(0.03) { self.r.pick(&["f64", "i64", "bool", "c64"]).to_string() } else { "f32".into() };
        let sp = |s: &Option<i64>, name: &str| s.map_or(name.to_string(), |v| v.to_string());
        let dims = match sh {
            Sh::V(d) => format!("B, {}", self.int(*d)),
            Sh::S(t, d) => format!("B, {}, {}", sp(t, "T"), self.int(*d)),
            Sh::C1(c, l) => format!("B, {}, {}", self.int(*c), sp(l, "L")),
            Sh::C2(c, h) => format!("B, {}, {}, {}", self.int(*c), sp(h, "H"), sp(h, "H")),
            Sh::C3(c, d) => format!("B, {}, {}, {}, {}", self.int(*c), sp(d, "D"), sp(d, "D"), sp(d, "D")),
        };
        format!("{dtype}[{dims}]")
    }
}

/// A network of stdlib layers with tracked shapes (mostly valid).
fn gen_network(r: &mut Rng) -> String {
    let bad = *r.pick(&[0.0, 0.0, 0.01, 0.03, 0.1]);
    let mut g = Gen {
        r,
        bad,
        params: Vec::new(),
        prelude: Vec::new(),
        items: Vec::new(),
        helper_layers: Vec::new(),
        helper_fns: Vec::new(),
        stacks: Vec::new(),
        uid: 0,
    };
    let d0 = g.dim();
    let mut grid = None;
    let sh = match g.r.below(10) {
        0..=3 => Sh::V(d0),
        4 | 5 => {
            let t = if g.r.chance(0.5) { None } else { Some(*g.r.pick(&[1, 5, 12])) };
            if t.is_none() && g.r.chance(0.4) {
                grid = Some("T");
            }
            Sh::S(t, d0)
        }
        6 | 7 => {
            let l = if g.r.chance(0.3) { None } else { Some(*g.r.pick(&[8, 16, 40])) };
            if l.is_none() && g.r.chance(0.5) {
                grid = Some("L");
            }
            Sh::C1(d0, l)
        }
        8 => {
            let h = if g.r.chance(0.3) { None } else { Some(*g.r.pick(&[4, 8, 16])) };
            if h.is_none() && g.r.chance(0.5) {
                grid = Some("H");
            }
            Sh::C2(d0, h)
        }
        _ => Sh::C3(d0, Some(*g.r.pick(&[4, 8]))),
    };
    let pname = g.r.pick(&["d", "c", "width"]).to_string();
    g.params.push((pname.clone(), d0));
    let classes = *g.r.pick(&[2, 10]);
    g.params.push(("classes".to_string(), classes));
    let input = g.input_type(&sh);
    let mut body = Vec::new();
    let mut cur = sh;
    let mut prev = "x".to_string();
    let n_lets = 1 + g.r.below(4);
    for i in 0..n_lets {
        let n_stages = 1 + g.r.below(4);
        let mut expr = prev.clone();
        for _ in 0..n_stages {
            let (text, next, is_layer) = g.stage(&cur);
            // A lambda after `|>` needs parentheses (its body would swallow the rest).
            let text = if text.starts_with("h =>") { format!("({text})") } else { text };
            expr = if is_layer && g.r.chance(0.15) {
                let l = g.fresh("inst");
                g.prelude.push(format!("let {l} = {text}"));
                format!("{expr} |> {l}")
            } else if is_layer && g.r.chance(0.15) {
                format!("({text})({expr})")
            } else {
                format!("{expr} |> {text}")
            };
            cur = next;
        }
        let name = format!("h{i}");
        body.push(format!("let {name} = {expr}"));
        prev = name;
    }
    // A head, sometimes.
    let mut out = prev.clone();
    if g.r.chance(0.5) {
        let (head, _) = match &cur {
            Sh::V(d) => (format!("{prev} |> Linear({}, {})", g.int(*d), g.int(classes)), ()),
            Sh::S(_, d) => (format!("mean({prev}, axis = 1) |> Linear({}, {})", g.int(*d), g.int(classes)), ()),
            Sh::C1(c, _) => (format!("mean({prev}, axis = -1) |> Linear({}, {})", g.int(*c), g.int(classes)), ()),
            Sh::C2(c, _) => (format!("mean({prev}, axis = [2, 3]) |> Linear({}, {})", g.int(*c), g.int(classes)), ()),
            Sh::C3(c, _) => {
                (format!("mean({prev}, axis = [2, 3, 4]) |> Linear({}, {})", g.int(*c), g.int(classes)), ())
            }
        };
        out = head;
    }
    body.push(format!("output y = {out}"));
    if g.r.chance(0.2) {
        body.push(format!("output z = sum({prev}) * 0.5"));
    }
    let net = g.fresh("Net");
    let kind = if grid.is_some() { "operator" } else { "network" };
    let grid_text = grid.map_or(String::new(), |n| format!(" over grid {n}"));
    let params = g.params.iter().map(|(n, v)| format!("{n}: int = {v}")).collect::<Vec<_>>().join(", ");
    let mut text = String::from(ALL_USES);
    for item in &g.items {
        text.push_str(item);
        text.push_str("\n\n");
    }
    text.push_str(&format!("{kind} {net}({params}){grid_text} {{\n    input x: {input}\n"));
    for s in g.prelude.iter().chain(body.iter()) {
        text.push_str("    ");
        text.push_str(s);
        text.push('\n');
    }
    text.push_str("}\n");
    if g.r.chance(0.15) {
        let data = g.r.pick(&["digits", "mnist1d", "darcy", "mnist_5k", "imagenet"]).to_string();
        let loss =
            g.r.pick(&["cross_entropy(y, label)", "mse(y, target)", "cross_entropy(nope, label)", "bce(z, label)"])
                .to_string();
        let opt = g.r.pick(&["adamw(lr = 1e-3, weight_decay = 1e-4)", "sgd(lr = 0.1)", "adam", "lbfgs()"]).to_string();
        let batch = g.r.pick(&["64", "0", "-3", "1.5"]).to_string();
        text.push_str(&format!(
            "\ntrain {net}() on {data}(split = [0.8, 0.2], seed = 0) {{\n    loss: {loss}\n    optimizer: {opt}\n    \
             schedule: cosine(warmup = 10)\n    batch: {batch}\n    epochs: 1\n    metrics: [accuracy]\n}}\n"
        ));
    }
    if !g.stacks.is_empty() && g.r.chance(0.5) || g.r.chance(0.05) {
        let which = if g.stacks.is_empty() { "blocks".to_string() } else { g.r.pick(&g.stacks).clone() };
        let moves = g.r.pick(&["[skip, repeat(max = 2)]", "[skip]", "[jump]", "[]"]).to_string();
        let search = g.r.pick(&["mcts(simulations = 10)", "greedy", "beam(width = 2)", "random"]).to_string();
        text.push_str(&format!(
            "\nadapt {net}.{which} {{\n    moves: {moves}\n    search: {search}\n    score: confidence\n}}\n"
        ));
    }
    text
}

#[rustfmt::skip]
const EXPR_FNS: &[&str] = &[
    "relu", "exp", "sum", "mean", "max", "argmax", "reshape", "transpose", "permute", "flatten", "unsqueeze",
    "squeeze", "concat", "pad", "broadcast", "gather", "scatter_add", "rfft", "irfft", "real", "imag", "complex",
    "zeros", "ones", "full", "arange", "linspace", "cast", "where", "maximum", "einsum", "conv", "max_pool",
    "avg_pool", "matmul", "len", "int", "float", "sqrt", "min", "pow", "scan", "rand_like", "softmax", "glu", "Linear",
    "Conv1d", "LayerNorm", "Embedding", "ResidualMlp", "MultiheadAttention", "Lstm", "GruCell", "SpectralConv1d",
    "Dropout", "Flatten", "init.normal", "init.zeros", "argsort", "sort", "topk", "take_along", "stop_gradient",
];

/// A random well-formed expression over `names`.
fn random_expr(r: &mut Rng, names: &[&str], depth: u32) -> String {
    if depth == 0 || r.chance(0.25) {
        return match r.below(10) {
            0..=3 => r.pick(names).to_string(),
            4 => r.pick(&["0", "1", "2", "3", "-1", "4", "8", "16", "100"]).to_string(),
            5 => r.pick(WEIRD_NUMBERS).to_string(),
            6 => r.pick(&["0.5", "1.0", "1e-3", "-2.5", "pi"]).to_string(),
            7 => r
                .pick(&["true", "false", "skip", "training", "\"softmax\"", "\"bi,io->bo\"", "\"\"", "f32", "i64"])
                .to_string(),
            8 => format!("[{}]", (0..r.below(4)).map(|_| random_expr(r, names, 0)).collect::<Vec<_>>().join(", ")),
            _ => {
                let list = if r.chance(0.5) { BUILTINS } else { STDLIB_NAMES };
                r.pick(list).to_string()
            }
        };
    }
    let sub = |r: &mut Rng| random_expr(r, names, depth - 1);
    match r.below(17) {
        0 | 1 => {
            let op = *r.pick(&["+", "-", "*", "/", "%", "**", "@", "==", "!=", "<", "<=", ">", ">=", "&&", "||"]);
            format!("{} {op} {}", sub(r), sub(r))
        }
        2 => format!("{}{}", r.pick(&["-", "!"]), sub(r)),
        3..=5 => {
            let f = *r.pick(EXPR_FNS);
            let n = r.below(4);
            let mut args: Vec<String> = (0..n).map(|_| sub(r)).collect();
            if r.chance(0.4) {
                let key = *r.pick(&["axis", "keepdim", "start", "stride", "padding", "value", "std", "kind", "n", "q"]);
                args.push(format!("{key} = {}", sub(r)));
            }
            format!("{f}({})", args.join(", "))
        }
        6 => {
            let idx = match r.below(6) {
                0 => sub(r),
                1 => format!("{}:{}", sub(r), sub(r)),
                2 => format!("..., :{}", sub(r)),
                3 => format!(":, {}", sub(r)),
                4 => format!("{}::{}", sub(r), sub(r)),
                _ => format!(":{}:{}", sub(r), sub(r)),
            };
            format!("{}[{idx}]", sub(r))
        }
        7 => {
            let f = *r.pick(&[
                "shape",
                "shape[0]",
                "shape[-1]",
                "shape[9]",
                "T",
                "rank",
                "dtype",
                "param_count",
                "w",
                "b",
                "nope",
            ]);
            format!("{}.{f}", sub(r))
        }
        8 => format!("{} |> {}", sub(r), sub(r)),
        9 => format!("if {} {{ {} }} else {{ {} }}", sub(r), sub(r), sub(r)),
        10 => format!("{{ let a = {}\n {} }}", sub(r), sub(r)),
        11 => {
            let body = random_expr(r, &[names, &["h"]].concat(), depth - 1);
            if r.chance(0.8) {
                format!("(h => {body})")
            } else {
                format!("h => {body}")
            }
        }
        12 => format!("repeat {} {{ {} }}", sub(r), sub(r)),
        13 => format!("stack({}) as i {{ {} }}", sub(r), sub(r)),
        14 => format!("({})", sub(r)),
        15 => format!("{}.with_params({})", sub(r), sub(r)),
        _ => format!("{}({})", sub(r), sub(r)),
    }
}

/// A network (and maybe a layer) whose bodies are random well-formed expressions.
fn gen_expr_program(r: &mut Rng) -> String {
    let mut text = format!("{ALL_USES}\n");
    let depth = 1 + r.below(4) as u32;
    if r.chance(0.4) {
        let ty = r.pick(&["f32[B, d]", "f32[..., d]", "f32[B, d, L]", "f32[]", "i64[B]", "f32[B, 2 * d]"]).to_string();
        let stmt = match r.below(4) {
            0 => format!("param w: f32[d, {}] = init.normal(std = 0.02)", r.pick(&["d", "2", "d * 2", "0", "-1"])),
            1 => format!("let inner = {}", random_expr(r, &["d", "Linear", "skip"], depth)),
            2 => format!("buffer m: f32[{}] = init.zeros()", r.pick(&["d", "3", "d / 2"])),
            _ => format!("choose k in [{}, {}]", random_expr(r, &["d"], 1), random_expr(r, &["d"], 1)),
        };
        let body = random_expr(r, &["x", "d", "w", "m", "inner", "k"], depth);
        text.push_str(&format!("layer L(d: int = 4) {{\n    {stmt}\n    fn (x: {ty}) {{ {body} }}\n}}\n\n"));
    }
    if r.chance(0.3) {
        let body = random_expr(r, &["x", "a", "x.shape"], depth);
        text.push_str(&format!("fn f(x, a: int = 2) {{ {body} }}\n\n"));
    }
    let ty =
        r.pick(&["f32[B, 8]", "f32[B, 4, 8]", "f32[B, 1, 16]", "f32[2, 3]", "f32[B, N, N]", "c64[B, 8]"]).to_string();
    text.push_str(&format!("network R(d: int = 8, n: int = 2) {{\n    input x: {ty}\n"));
    if r.chance(0.3) {
        text.push_str("    input t: i64[B]\n");
    }
    let mut names = vec!["x", "t", "d", "n", "L", "f"];
    for v in ["a", "b"] {
        if r.chance(0.6) {
            text.push_str(&format!("    let {v} = {}\n", random_expr(r, &names, depth)));
            names.push(v);
        }
    }
    text.push_str(&format!("    output y = {}\n}}\n", random_expr(r, &names, depth)));
    text
}

#[rustfmt::skip]
const EDGE_INTS: &[&str] = &[
    "0", "1", "2", "3", "-1", "-2", "-3", "4", "5", "7", "9", "-9", "100", "-100", "d", "d * 2", "d - 5", "-d",
    "9223372036854775807", "(-9223372036854775807 - 1)", "4611686018427387904", "(2 ** 62)", "(2 ** 40)", "(d / 0)",
    "(d % 0)", "(7 / -2)", "(-7 % 3)", "a.shape[0]", "a.shape[-1]", "a.shape[2] - 7", "n.shape[1]", "n.shape[1] * 0",
    "z.rank", "1.5", "true", "[]", "9007199254740992", "-9007199254740992", "4503599627370496", "(2 ** 31)",
    "(d * 2 ** 50)",
];

#[rustfmt::skip]
const EINSUM_SPECS: &[&str] = &[
    "bij,bjk->bik", "ij,jk->ik", "ii->i", "i->", "->", "a,a->a", "aa,bb->ab", "abc->cba", "", "ij->ji,", "i,j,k->ijk",
    "...i->i", "bi,io->bo", "abcd,abcd->", "ab->ba", "ab,bc->", "a->aa", "a", "AB->BA", "ij,jk", "bti,bsi->bts",
];

/// A network whose output calls one builtin (or stdlib layer) with edge-case arguments:
/// negative, huge and zero numbers, axes out of range, odd einsum specs, symbolic dims.
fn gen_builtin_program(r: &mut Rng) -> String {
    fn int(r: &mut Rng) -> String {
        r.pick(EDGE_INTS).to_string()
    }
    fn ax(r: &mut Rng) -> String {
        r.pick(&["0", "1", "2", "3", "-1", "-2", "-4", "5", "9", "-100", "d"]).to_string()
    }
    fn t(r: &mut Rng) -> String {
        r.pick(&["a", "a", "v", "s", "n", "n", "z", "idx", "c", "a.T", "a[0]", "n[:, 1:]", "z[..., 0]", "b"])
            .to_string()
    }
    fn ints(r: &mut Rng, max: usize) -> String {
        let k = r.below(max + 1);
        (0..k).map(|_| int(r)).collect::<Vec<_>>().join(", ")
    }
    let kw = |r: &mut Rng, key: &str| -> String {
        if r.chance(0.5) {
            format!(", {key} = {}", r.pick(EDGE_INTS))
        } else {
            String::new()
        }
    };
    let e = match r.below(40) {
        0 => format!("{}({}, axis = {})", r.pick(&["sum", "mean", "max", "min", "argmax"]), t(r), ax(r)),
        1 => format!(
            "{}({}, axis = [{}, {}], keepdim = {})",
            r.pick(&["sum", "mean", "max", "min"]),
            t(r),
            ax(r),
            ax(r),
            r.pick(&["true", "false", "1"])
        ),
        2 => format!("reshape({}, [{}])", t(r), ints(r, 4)),
        3 => format!("transpose({}, {}, {})", t(r), ax(r), ax(r)),
        4 => format!("permute({}, [{}, {}, {}])", t(r), ax(r), ax(r), ax(r)),
        5 => format!("flatten({}, start = {}{})", t(r), ax(r), kw(r, "end")),
        6 => format!("{}({}, {})", r.pick(&["unsqueeze", "squeeze"]), t(r), ax(r)),
        7 => format!("concat([{}], axis = {})", (0..r.below(4)).map(|_| t(r)).collect::<Vec<_>>().join(", "), ax(r)),
        8 => format!("pad({}, [{}], value = {})", t(r), ints(r, 6), r.pick(&["0.0", "1", "true", "-1e308"])),
        9 => format!("broadcast({}, [{}])", t(r), ints(r, 5)),
        10 => format!("gather({}, {}, {})", t(r), r.pick(&["idx", "idx[:, 0]", "a", "arange(3)", "3"]), ax(r)),
        11 => format!("scatter_add({}, {}, {}, {})", t(r), r.pick(&["idx", "idx[:, 0]", "arange(3)"]), t(r), ax(r)),
        12 => format!("rfft({}, axis = {})", t(r), ax(r)),
        13 => format!(
            "irfft({}, {}, axis = {})",
            r.pick(&["c", "rfft(a, axis = -1)", "a", "complex(a, a)"]),
            int(r),
            ax(r)
        ),
        14 => format!("{}({})", r.pick(&["real", "imag"]), r.pick(&["c", "a", "complex(a, a)", "rfft(n, axis = 1)"])),
        15 => format!("complex({}, {})", t(r), t(r)),
        16 => format!("{}([{}])", r.pick(&["zeros", "ones"]), ints(r, 4)),
        17 => format!("full([{}], {})", ints(r, 3), r.pick(&["2.0", "1", "true", "a"])),
        18 => format!("arange({})", int(r)),
        19 => format!("linspace({}, {}, {})", r.pick(&["0.0", "-1", "1e308"]), r.pick(&["1.0", "0", "a"]), int(r)),
        20 => format!(
            "conv({}, {}{}{}{}{})",
            t(r),
            r.pick(&["z", "a", "ones([2, 4, 3])", "ones([4, 4, 1])", "ones([0, 4, 1])", "v", "ones([4, 2, 3, 3])"]),
            kw(r, "stride"),
            kw(r, "padding"),
            kw(r, "dilation"),
            kw(r, "groups")
        ),
        21 => format!(
            "{}({}, {}{}{})",
            r.pick(&["max_pool", "avg_pool"]),
            t(r),
            r.pick(&["2", "0", "-1", "100", "[2, 2]", "[]", "d"]),
            kw(r, "stride"),
            kw(r, "padding")
        ),
        22 => format!("einsum(\"{}\", {}, {})", r.pick(EINSUM_SPECS), t(r), t(r)),
        23 => format!("einsum(\"{}\", {})", r.pick(EINSUM_SPECS), t(r)),
        24 => format!("{} @ {}", t(r), t(r)),
        25 => format!("matmul({}, {})", t(r), t(r)),
        26 => {
            let idx = match r.below(8) {
                0 => int(r),
                1 => format!("{}:{}", int(r), int(r)),
                2 => format!("::{}", int(r)),
                3 => format!("..., {}", int(r)),
                4 => ":, :, :, :, :".to_string(),
                5 => "idx".to_string(),
                6 => format!("{}, ..., {}", int(r), int(r)),
                _ => format!("{}:{}:{}", int(r), int(r), int(r)),
            };
            format!("{}[{idx}]", t(r))
        }
        27 => format!("zeros([{}.shape[{}] * 2])", t(r), int(r)),
        28 => format!("arange({} {} {})", int(r), r.pick(&["+", "-", "*", "/", "%", "**"]), int(r)),
        29 => format!("where({} > 0.0, {}, {})", t(r), t(r), t(r)),
        30 => format!("cast({}, {})", t(r), r.pick(&["f32", "f64", "i64", "bool", "c64", "int", "x"])),
        31 => {
            format!("{}({}, {})", r.pick(&["maximum", "minimum", "pow"]), t(r), r.pick(&["2.0", "a", "v", "s", "idx"]))
        }
        32 => format!("Linear({}, {})({})", int(r), int(r), t(r)),
        33 => format!(
            "Conv1d({}, {}, {}{}{}{}{})({})",
            int(r),
            int(r),
            int(r),
            kw(r, "stride"),
            kw(r, "padding"),
            kw(r, "dilation"),
            kw(r, "groups"),
            t(r)
        ),
        34 => format!(
            "{}({}, {})({})",
            r.pick(&["Embedding", "GroupNorm", "MultiheadAttention", "Lstm", "Gru", "LstmCell"]),
            int(r),
            int(r),
            t(r)
        ),
        35 => format!(
            "{}({}, {}, {})({})",
            r.pick(&["SpectralConv1d", "ResBlock1d", "ConvBnRelu2d", "TransformerEncoderLayer"]),
            int(r),
            int(r),
            int(r),
            t(r)
        ),
        36 => format!(
            "({} {{ {} }})({})",
            r.pick(&["repeat 3", "stack(2)", "repeat 0", "stack(0)", "repeat -1", "repeat 10001", "repeat 2000"]),
            r.pick(&["skip", "Linear(6, 6)", "h => h", "LayerNorm(6)"]),
            t(r)
        ),
        37 => format!(
            "Linear({}, {}).with_params({})({})",
            int(r),
            int(r),
            r.pick(&["zeros([{}])", "a", "v", "zeros([2, 3, 4])", "s"]).replace("{}", &int(r)),
            t(r)
        ),
        38 => format!(
            "scan(GruCell({}, {}), {}, zeros([{}, {}]), axis = {})",
            int(r),
            int(r),
            t(r),
            int(r),
            int(r),
            ax(r)
        ),
        _ => format!("{}.{}", t(r), r.pick(&["shape", "rank", "dtype", "T", "param_count", "with_params", "w"])),
    };
    let let_line = if r.chance(0.3) {
        format!("    let k = {} {} {}\n", int(r), r.pick(&["+", "-", "*", "/", "%", "**"]), int(r))
    } else {
        String::new()
    };
    let out = if let_line.is_empty() || r.chance(0.5) { e } else { format!("{e} |> (h => h + k)") };
    format!(
        "{ALL_USES}\nnetwork E(d: int = 4) {{\n    \
         input a: f32[B, 4, 6]\n    input v: f32[8]\n    input s: f32[]\n    input n: f32[B, N]\n    \
         input z: f32[2, 3, 5, 7]\n    input idx: i64[B, 3]\n    input c: c64[B, 5]\n    let b = a[:, :, 0]\n{let_line}    \
         output y = {out}\n}}\n"
    )
}

// ---------------------------------------------------------------- (c) token soup

fn soup_token(r: &mut Rng) -> String {
    match r.below(12) {
        0..=2 => r.pick(KEYWORDS).to_string(),
        3 => r.pick(BUILTINS).to_string(),
        4 => r.pick(STDLIB_NAMES).to_string(),
        5 => r.pick(MISC_NAMES).to_string(),
        6 => r.pick(WEIRD_NUMBERS).to_string(),
        7 => r.pick(ODD_TEXT).to_string(),
        8 => r.pick(&["\"s\"", "\"softmax\"", "\"\"", "\n", "\n", "//x\n"]).to_string(),
        _ => r.pick(PUNCT).to_string(),
    }
}

fn soup(r: &mut Rng, n: usize) -> String {
    let mut s = String::new();
    for _ in 0..n {
        s.push_str(&soup_token(r));
        s.push(if r.chance(0.15) { '\n' } else { ' ' });
    }
    s
}

fn gen_soup(r: &mut Rng) -> String {
    let n = 1 + r.below(60);
    match r.below(4) {
        0 | 1 => soup(r, n),
        2 => {
            // Soup as an expression inside a valid skeleton, so the checker sees it.
            format!(
                "use nn.*\nuse blocks.*\n\nnetwork N(d: int = 8) {{\n    input x: f32[B, d]\n    let h = x |> Linear(d, d)\n    output y = {}\n}}\n",
                soup(r, n.min(12))
            )
        }
        _ => {
            // Soup as block statements.
            format!("use nn.*\n\nlayer S(d: int = 4) {{\n    {}\n    fn (x: f32[B, d]) {{ x }}\n}}\n\nnetwork N() {{\n    input x: f32[B, 4]\n    {}\n    output y = x |> S()\n}}\n", soup(r, n / 2), soup(r, n / 2))
        }
    }
}

// ---------------------------------------------------------------- cases

struct Case {
    category: &'static str,
    origin: String,
    main: String,
    /// The text of user module `aux`, when the case has one.
    aux: Option<String>,
    opts: Options,
}

struct Aux<'a>(Option<&'a str>);

impl ModuleSource for Aux<'_> {
    fn load(&self, name: &str) -> Option<(String, String)> {
        match (name, self.0) {
            ("aux", Some(text)) => Some(("aux.arch".to_string(), text.to_string())),
            _ => None,
        }
    }
}

fn check_all() -> Options {
    Options { check_all: true, ..Options::default() }
}

fn entry_options(r: &mut Rng) -> Options {
    let choices = match r.below(3) {
        0 => ChoiceMode::First,
        1 => ChoiceMode::Sample(r.next()),
        _ => ChoiceMode::Explicit(vec![("width1".into(), "16".into()), ("op2".into(), "1".into())]),
    };
    Options { training: r.chance(0.5), choices, ..Options::default() }
}

fn make_mutation(r: &mut Rng, corpus: &Corpus) -> Case {
    let roll = r.below(10);
    if roll < 2 {
        // A mutated stdlib module served as user module `aux` to a program that uses it.
        let stdlib: Vec<&(String, String)> = corpus.files.iter().filter(|f| f.0.starts_with("stdlib/")).collect();
        let (name, text) = *r.pick(&stdlib);
        let module = name.trim_start_matches("stdlib/").trim_end_matches(".arch").to_string();
        let users: Vec<&(String, String)> =
            corpus.files.iter().filter(|f| f.1.contains(&format!("use {module}"))).collect();
        let main = if users.is_empty() || r.chance(0.3) {
            let net = gen_network(r);
            prune_uses(r, net)
        } else {
            r.pick(&users).1.clone()
        };
        let main = main.replace(&format!("use {module}."), "use aux.").replace(&format!("use {module}\n"), "use aux\n");
        let aux = mutate(r, text, corpus);
        return Case {
            category: "mutation",
            origin: format!("{name} as module aux"),
            main,
            aux: Some(aux),
            opts: check_all(),
        };
    }
    let (origin, text) = if roll < 4 {
        let net = gen_network(r);
        ("generated network".to_string(), prune_uses(r, net))
    } else {
        let (n, t) = r.pick(&corpus.files);
        (n.clone(), t.clone())
    };
    let main = mutate(r, &text, corpus);
    Case { category: "mutation", origin: format!("mutated {origin}"), main, aux: None, opts: check_all() }
}

fn make_grammar(r: &mut Rng) -> Case {
    let (origin, main) = match r.below(20) {
        0..=8 => ("network of stdlib layers", gen_network(r)),
        9..=12 => ("random expressions", gen_expr_program(r)),
        _ => ("builtins with edge-case arguments", gen_builtin_program(r)),
    };
    let main = prune_uses(r, main);
    Case { category: "grammar", origin: origin.to_string(), main, aux: None, opts: check_all() }
}

fn make_soup(r: &mut Rng) -> Case {
    Case { category: "soup", origin: "token soup".to_string(), main: gen_soup(r), aux: None, opts: check_all() }
}

// ---------------------------------------------------------------- running and judging

#[derive(Clone)]
struct PanicInfo {
    message: String,
    location: String,
    backtrace: String,
}

/// Set while a checker call runs under [`catching`]. Global, not per thread: the checker
/// may run on a thread of its own and hand a panic back with `resume_unwind`.
static CATCHING: AtomicBool = AtomicBool::new(false);
/// Where the last caught panic happened, and its backtrace.
static LAST_PANIC: Mutex<Option<(String, String)>> = Mutex::new(None);
/// The test's own thread (the watchdog): its panics are reported normally.
static WATCHDOG: OnceLock<std::thread::ThreadId> = OnceLock::new();

fn install_panic_hook() {
    let _ = WATCHDOG.set(std::thread::current().id());
    let previous = panic::take_hook();
    panic::set_hook(Box::new(move |info| {
        let watchdog = WATCHDOG.get() == Some(&std::thread::current().id());
        if CATCHING.load(Ordering::SeqCst) && !watchdog {
            let location = info.location().map_or("<unknown>".to_string(), |l| format!("{}:{}", l.file(), l.line()));
            let backtrace = std::backtrace::Backtrace::force_capture().to_string();
            *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = Some((location, backtrace));
        } else {
            previous(info);
        }
    }));
}

/// Runs `f`, turning a panic into its message, location and backtrace.
fn catching<T>(f: impl FnOnce() -> T) -> Result<T, PanicInfo> {
    *LAST_PANIC.lock().unwrap_or_else(|e| e.into_inner()) = None;
    CATCHING.store(true, Ordering::SeqCst);
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    CATCHING.store(false, Ordering::SeqCst);
    r.map_err(|payload| {
        let message = if let Some(s) = payload.downcast_ref::<&str>() {
            s.to_string()
        } else if let Some(s) = payload.downcast_ref::<String>() {
            s.clone()
        } else {
            "<non-string panic payload>".to_string()
        };
        let (location, backtrace) = LAST_PANIC
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .unwrap_or_else(|| ("<unknown>".to_string(), String::new()));
        PanicInfo { message, location, backtrace }
    })
}

/// What went wrong with one case.
#[derive(Clone)]
struct Problem {
    /// Groups failures: the same signature is one bug.
    signature: String,
    detail: String,
    backtrace: Option<String>,
}

fn span_problem(out: &CheckOutput, span: Span, what: &str) -> Option<String> {
    let files = out.sources.files().count();
    if span.file.0 as usize >= files {
        return Some(format!("{what} span {span:?} names file {} but only {files} are loaded", span.file.0));
    }
    let f = out.sources.get(span.file);
    let (s, e) = (span.start as usize, span.end as usize);
    if s > e {
        return Some(format!("{what} span {span:?} in {} starts after it ends", f.name));
    }
    if e > f.text.len() {
        return Some(format!("{what} span {span:?} ends past the end of {} ({} bytes)", f.name, f.text.len()));
    }
    if !f.text.is_char_boundary(s) || !f.text.is_char_boundary(e) {
        return Some(format!("{what} span {span:?} in {} is not on char boundaries", f.name));
    }
    None
}

/// Checks one program: `Ok(None)` when it checked clean, `Ok(Some(first message))` when
/// it failed with well-formed diagnostics, `Err` with the first problem found.
fn judge(main: &str, aux: Option<&str>, opts: &Options) -> Result<Option<String>, Problem> {
    let out = catching(|| check_file("fuzz.arch", main, &Aux(aux), opts)).map_err(|p| Problem {
        signature: format!("panic in check_file at {}", p.location),
        detail: format!("panicked at {}: {}", p.location, p.message),
        backtrace: Some(p.backtrace),
    })?;
    if out.diagnostics.is_empty() && !opts.check_all && out.program.is_none() {
        return Err(Problem {
            signature: "entry build: no program and no diagnostic".into(),
            detail: "check_file returned neither a program nor a diagnostic".into(),
            backtrace: None,
        });
    }
    if let Some(program) = &out.program {
        // A program the checker accepted must verify and print/parse back to itself.
        let verdict = catching(|| {
            if let Err(errs) = verify(program) {
                return Err(("the TIR verifier rejects the built program", format!("{errs:?}")));
            }
            let text = program.to_string();
            match parse_program(&text) {
                Ok(p) if p.to_string() == text => Ok(()),
                Ok(_) => Err(("the TIR text does not round-trip", text)),
                Err(e) => Err(("the printed TIR does not parse", format!("{e}\n{text}"))),
            }
        });
        match verdict {
            Ok(Ok(())) => {}
            Ok(Err((what, detail))) => {
                return Err(Problem {
                    signature: what.to_string(),
                    detail: format!("{what}: {}", detail.chars().take(2000).collect::<String>()),
                    backtrace: None,
                })
            }
            Err(p) => {
                return Err(Problem {
                    signature: format!("panic in TIR verify/print/parse at {}", p.location),
                    detail: format!("panicked at {}: {}", p.location, p.message),
                    backtrace: Some(p.backtrace),
                })
            }
        }
    }
    for d in &out.diagnostics {
        if d.message.trim().is_empty() {
            return Err(Problem {
                signature: "diagnostic with an empty message".into(),
                detail: format!("diagnostic with an empty message: {d:?}"),
                backtrace: None,
            });
        }
        let spans = d.span.iter().map(|s| (*s, "primary")).chain(d.related.iter().map(|l| (l.span, "related")));
        for (span, what) in spans {
            if let Some(p) = span_problem(&out, span, what) {
                return Err(Problem {
                    signature: format!("bad {what} span: {}", d.message.chars().take(60).collect::<String>()),
                    detail: format!("{p}; diagnostic: {}", d.message),
                    backtrace: None,
                });
            }
        }
    }
    if !out.diagnostics.is_empty() {
        catching(|| archc::render::render(&out.diagnostics, &out.sources, false)).map_err(|p| Problem {
            signature: format!("panic in render at {}", p.location),
            detail: format!("rendering the diagnostics panicked at {}: {}", p.location, p.message),
            backtrace: Some(p.backtrace),
        })?;
    }
    Ok(out.diagnostics.first().map(|d| d.message.clone()))
}

/// The case being checked now, for the watchdog.
struct Current {
    index: usize,
    started: Instant,
    main: String,
    aux: Option<String>,
    phase: &'static str,
}

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(name)
}

/// Overwrites an open file with `text`, padded with spaces to the longest text written so
/// far: creating or truncating the file for every case costs milliseconds on some file
/// systems, an overwrite in place microseconds.
fn overwrite(file: &Mutex<Option<(std::fs::File, usize)>>, name: &str, text: &str) {
    use std::io::{Seek, Write};
    let mut f = file.lock().unwrap_or_else(|e| e.into_inner());
    if f.is_none() {
        *f = std::fs::File::create(temp(name)).ok().map(|f| (f, 0));
    }
    if let Some((f, longest)) = f.as_mut() {
        let pad = longest.saturating_sub(text.len());
        *longest = (*longest).max(text.len());
        let _ = f.rewind();
        let _ = f.write_all(format!("{text}{}", " ".repeat(pad)).as_bytes());
    }
}

fn set_current(cur: &Mutex<Current>, index: usize, main: &str, aux: Option<&str>, phase: &'static str) {
    // Written first, so that even an abort (stack overflow) leaves the program behind.
    static MAIN: Mutex<Option<(std::fs::File, usize)>> = Mutex::new(None);
    static AUX: Mutex<Option<(std::fs::File, usize)>> = Mutex::new(None);
    overwrite(&MAIN, "archc-fuzz-current.arch", main);
    overwrite(&AUX, "archc-fuzz-current-aux.arch", aux.unwrap_or(""));
    let mut c = cur.lock().expect("lock");
    c.index = index;
    c.started = Instant::now();
    c.main = main.to_string();
    c.aux = aux.map(str::to_string);
    c.phase = phase;
}

struct Failure {
    index: usize,
    category: &'static str,
    origin: String,
    opts: Options,
    main: String,
    aux: Option<String>,
    problem: Problem,
    count: usize,
    minimal: Option<(String, Option<String>)>,
}

/// Delta debugging: removes chunks of units while `fails` still holds.
fn ddmin(units: Vec<String>, fails: &mut dyn FnMut(&str) -> bool, budget: &mut usize) -> Vec<String> {
    let mut units = units;
    let mut n = 2usize;
    while units.len() >= 2 && *budget > 0 {
        let chunk = units.len().div_ceil(n);
        let mut reduced = false;
        let mut start = 0;
        while start < units.len() && *budget > 0 {
            let end = (start + chunk).min(units.len());
            let candidate: Vec<String> = units[..start].iter().chain(units[end..].iter()).cloned().collect();
            *budget -= 1;
            if fails(&candidate.concat()) {
                units = candidate;
                reduced = true;
                break;
            }
            start = end;
        }
        if reduced {
            n = (n - 1).max(2);
        } else if n >= units.len() {
            break;
        } else {
            n = (n * 2).min(units.len());
        }
    }
    units
}

fn minimise_text(text: &str, fails: &mut dyn FnMut(&str) -> bool, budget: &mut usize) -> String {
    let lines: Vec<String> = text.split_inclusive('\n').map(str::to_string).collect();
    let text = ddmin(lines, fails, budget).concat();
    // Tokens, each with the whitespace that follows it.
    let mut units: Vec<String> = Vec::new();
    for (k, t) in tokenize(&text) {
        match (k, units.last_mut()) {
            (K::Space, Some(last)) => last.push_str(&t),
            _ => units.push(t),
        }
    }
    let text = ddmin(units, fails, budget).concat();
    // Whitespace tidied where that keeps the failure.
    let squeezed = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if squeezed != text && *budget > 0 {
        *budget -= 1;
        if fails(&squeezed) {
            return squeezed;
        }
    }
    text
}

fn minimise(f: &Failure, cur: &Mutex<Current>) -> (String, Option<String>) {
    let signature = f.problem.signature.clone();
    let mut budget = 3000usize;
    let deadline = Instant::now() + Duration::from_secs(30);
    let opts = f.opts.clone();
    let mut main = f.main.clone();
    let mut aux = f.aux.clone();
    for _ in 0..2 {
        {
            let aux_now = aux.clone();
            let mut fails = |t: &str| {
                if Instant::now() > deadline {
                    return false;
                }
                set_current(cur, f.index, t, aux_now.as_deref(), "minimising");
                judge(t, aux_now.as_deref(), &opts).err().is_some_and(|p| p.signature == signature)
            };
            main = minimise_text(&main, &mut fails, &mut budget);
        }
        if let Some(a) = aux.clone() {
            let main_now = main.clone();
            let mut fails = |t: &str| {
                if Instant::now() > deadline {
                    return false;
                }
                set_current(cur, f.index, &main_now, Some(t), "minimising");
                judge(&main_now, Some(t), &opts).err().is_some_and(|p| p.signature == signature)
            };
            aux = Some(minimise_text(&a, &mut fails, &mut budget));
        } else {
            break;
        }
    }
    (main, aux)
}

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

const DEFAULT_SEED: u64 = 0x00a2_c4ec_f022_2025;
/// Default cases per category: mutations, grammar, soup (10,200 in all).
const DEFAULT_COUNTS: [usize; 3] = [4600, 3800, 1800];

struct Summary {
    counts: BTreeMap<&'static str, usize>,
    /// Checking time per category (generation excluded).
    times: BTreeMap<&'static str, Duration>,
    entry_builds: usize,
    clean: BTreeMap<&'static str, usize>,
    failures: Vec<Failure>,
    slowest: (Duration, usize),
    elapsed: Duration,
    /// With `ARCHC_FUZZ_STATS` set: how often each (blanked) first diagnostic came up.
    messages: BTreeMap<String, usize>,
}

fn run_all(seed: u64, total: usize, hang: Duration, cur: &Mutex<Current>) -> Summary {
    let corpus = Corpus::load();
    let default_total: usize = DEFAULT_COUNTS.iter().sum();
    let counts: Vec<usize> = DEFAULT_COUNTS.iter().map(|c| (c * total).div_ceil(default_total)).collect();
    let mut plan: Vec<u8> = Vec::new();
    for (cat, n) in counts.iter().enumerate() {
        plan.extend(std::iter::repeat_n(cat as u8, *n));
    }
    // Interleave the categories so a time limit hits all of them alike.
    let mut order = Rng(seed ^ 0x5eed);
    for i in (1..plan.len()).rev() {
        plan.swap(i, order.below(i + 1));
    }
    let start = Instant::now();
    let mut s = Summary {
        counts: BTreeMap::new(),
        times: BTreeMap::new(),
        entry_builds: 0,
        clean: BTreeMap::new(),
        failures: Vec::new(),
        slowest: (Duration::ZERO, 0),
        elapsed: Duration::ZERO,
        messages: BTreeMap::new(),
    };
    let stats = std::env::var_os("ARCHC_FUZZ_STATS").is_some();
    let dump = std::env::var_os("ARCHC_FUZZ_DUMP").map(PathBuf::from);
    let only = env_u64("ARCHC_FUZZ_ONLY").map(|n| n as usize);
    for (index, cat) in plan.iter().enumerate() {
        if only.is_some_and(|o| o != index) {
            continue;
        }
        let mut r = Rng(seed ^ (index as u64).wrapping_mul(0x2545_f491_4f6c_dd1d));
        let case = match cat {
            0 => make_mutation(&mut r, &corpus),
            1 => make_grammar(&mut r),
            _ => make_soup(&mut r),
        };
        if only.is_some() {
            eprintln!("case {index} ({}, {}):\n{}", case.category, case.origin, case.main);
            if let Some(a) = &case.aux {
                eprintln!("--- module aux:\n{a}");
            }
        }
        *s.counts.entry(case.category).or_default() += 1;
        let mut runs = vec![case.opts.clone()];
        if case.category == "grammar" && index % 8 == 0 {
            runs.push(entry_options(&mut r));
            s.entry_builds += 1;
        }
        for opts in runs {
            set_current(cur, index, &case.main, case.aux.as_deref(), "checking");
            let t0 = Instant::now();
            let verdict = judge(&case.main, case.aux.as_deref(), &opts);
            let took = t0.elapsed();
            *s.times.entry(case.category).or_default() += took;
            if only.is_some() {
                let shown = match &verdict {
                    Ok(None) => "clean".to_string(),
                    Ok(Some(m)) => format!("rejected: {m}"),
                    Err(p) => format!("FAILED: {}", p.detail),
                };
                eprintln!("{opts:?}: {shown} ({:.3} s)", took.as_secs_f64());
            }
            if took > s.slowest.0 {
                s.slowest = (took, index);
            }
            let verdict = match verdict {
                Ok(_) if took > hang => Err(Problem {
                    signature: "slow case".into(),
                    detail: format!("one check took {:.1} s (limit {:.1} s)", took.as_secs_f64(), hang.as_secs_f64()),
                    backtrace: None,
                }),
                v => v,
            };
            match verdict {
                Ok(None) => {
                    if opts.check_all {
                        *s.clean.entry(case.category).or_default() += 1;
                    }
                }
                Ok(Some(message)) => {
                    if let Some(dir) = &dump {
                        let n = s.messages.values().sum::<usize>();
                        if n < 400 {
                            let _ = std::fs::create_dir_all(dir);
                            let _ = std::fs::write(
                                dir.join(format!("{index}-{}.arch", case.category)),
                                format!("{}\n// {}\n", case.main, message.replace('\n', " ")),
                            );
                        }
                    }
                    if stats || dump.is_some() {
                        // Messages with names and numbers blanked, to see what the cases hit.
                        let shape: String = message
                            .split('`')
                            .enumerate()
                            .map(|(i, p)| if i % 2 == 1 { "`_`" } else { p })
                            .collect::<String>()
                            .chars()
                            .map(|c| if c.is_ascii_digit() { '#' } else { c })
                            .collect();
                        *s.messages.entry(format!("{} | {shape}", case.category)).or_default() += 1;
                    }
                }
                Err(problem) => {
                    if let Some(f) = s.failures.iter_mut().find(|f| f.problem.signature == problem.signature) {
                        f.count += 1;
                        if case.main.len() < f.main.len() && problem.signature != "slow case" {
                            f.main = case.main.clone();
                            f.aux = case.aux.clone();
                            f.index = index;
                            f.opts = opts.clone();
                            f.origin = case.origin.clone();
                            f.category = case.category;
                            f.problem = problem;
                        }
                    } else {
                        s.failures.push(Failure {
                            index,
                            category: case.category,
                            origin: case.origin.clone(),
                            opts: opts.clone(),
                            main: case.main.clone(),
                            aux: case.aux.clone(),
                            problem,
                            count: 1,
                            minimal: None,
                        });
                    }
                }
            }
        }
    }
    s.elapsed = start.elapsed();
    for f in s.failures.iter_mut().take(12) {
        if f.problem.signature != "slow case" {
            let (m, a) = minimise(f, cur);
            // The backtrace of the minimised program, which is the one reported.
            if let Err(p) = judge(&m, a.as_deref(), &f.opts) {
                if p.signature == f.problem.signature && p.backtrace.is_some() {
                    f.problem.backtrace = p.backtrace;
                }
            }
            f.minimal = Some((m, a));
        }
    }
    s
}

#[test]
fn checker_survives_random_and_mutated_programs() {
    install_panic_hook();
    if let Some(path) = std::env::var_os("ARCHC_FUZZ_FILE") {
        // Re-checks one saved program (`archc-fuzz-failure-N.arch`), with its `-aux` module.
        let path = PathBuf::from(path);
        let main = std::fs::read_to_string(&path).expect("ARCHC_FUZZ_FILE is readable");
        let aux_path =
            path.with_file_name(path.file_name().expect("file name").to_string_lossy().replacen(".", "-aux.", 1));
        let aux = std::fs::read_to_string(aux_path).ok();
        // As `archc check` does, then as `archc build` does.
        for opts in [check_all(), Options::default()] {
            let t0 = Instant::now();
            match judge(&main, aux.as_deref(), &opts) {
                Ok(v) => eprintln!(
                    "{} (check_all: {}): {} ({:.3} s)",
                    path.display(),
                    opts.check_all,
                    v.map_or("clean".to_string(), |m| format!("rejected: {m}")),
                    t0.elapsed().as_secs_f64()
                ),
                Err(p) => panic!(
                    "{} (check_all: {}): {}\n{}",
                    path.display(),
                    opts.check_all,
                    p.detail,
                    p.backtrace.unwrap_or_default()
                ),
            }
        }
        return;
    }
    let seed = env_u64("ARCHC_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let total = env_u64("ARCHC_FUZZ_CASES").map_or(DEFAULT_COUNTS.iter().sum(), |n| n as usize);
    let default_hang = if cfg!(debug_assertions) { 60 } else { 5 };
    let hang = Duration::from_secs(env_u64("ARCHC_FUZZ_HANG_SECS").unwrap_or(default_hang));
    let cur = Arc::new(Mutex::new(Current {
        index: 0,
        started: Instant::now(),
        main: String::new(),
        aux: None,
        phase: "starting",
    }));
    let (tx, rx) = mpsc::channel();
    let worker_cur = cur.clone();
    std::thread::Builder::new()
        .name("fuzz-check".into())
        .stack_size(8 << 20)
        .spawn(move || {
            let s = run_all(seed, total, hang, &worker_cur);
            let _ = tx.send(s);
        })
        .expect("spawn the fuzz worker");
    // Watchdog: a case running past twice the limit is a hang; fail with its program.
    let s = loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok(s) => break s,
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!("the fuzz worker died (a bug in this test)"),
            Err(mpsc::RecvTimeoutError::Timeout) => {
                let c = cur.lock().expect("lock");
                if c.started.elapsed() > hang * 2 {
                    let path = temp("archc-fuzz-failure-hang.arch");
                    let _ = std::fs::write(&path, &c.main);
                    let aux = c.aux.as_ref().map_or(String::new(), |a| {
                        let p = temp("archc-fuzz-failure-hang-aux.arch");
                        let _ = std::fs::write(&p, a);
                        format!("\n--- module aux ({}):\n{a}", p.display())
                    });
                    panic!(
                        "HANG: case {} (seed {seed:#x}) has been {} for {:.1} s; program saved to {}:\n{}{aux}",
                        c.index,
                        c.phase,
                        c.started.elapsed().as_secs_f64(),
                        path.display(),
                        c.main
                    );
                }
            }
        }
    };
    let total_cases: usize = s.counts.values().sum();
    let mut report = format!(
        "fuzz_check: seed {seed:#x}, {total_cases} programs ({}), plus {} entry builds; clean: {}; {:.1} s; slowest case {} ({:.3} s)\n",
        s.counts
            .iter()
            .map(|(k, v)| format!("{k} {v} in {:.1} s", s.times.get(k).map_or(0.0, |t| t.as_secs_f64())))
            .collect::<Vec<_>>()
            .join(", "),
        s.entry_builds,
        s.clean.iter().map(|(k, v)| format!("{k} {v}")).collect::<Vec<_>>().join(", "),
        s.elapsed.as_secs_f64(),
        s.slowest.1,
        s.slowest.0.as_secs_f64(),
    );
    eprint!("{report}");
    if !s.messages.is_empty() {
        let mut top: Vec<(&String, &usize)> = s.messages.iter().collect();
        top.sort_by(|a, b| b.1.cmp(a.1));
        for (m, n) in top.iter().take(60) {
            eprintln!("{n:6}  {m}");
        }
    }
    if s.failures.is_empty() {
        let only = std::env::var_os("ARCHC_FUZZ_ONLY").is_some();
        assert!(only || total_cases >= total.min(10_000), "only {total_cases} cases ran");
        return;
    }
    for (n, f) in s.failures.iter().enumerate() {
        let n = n + 1;
        let path = temp(&format!("archc-fuzz-failure-{n}.arch"));
        let _ = std::fs::write(&path, &f.main);
        if let Some(a) = &f.aux {
            let _ = std::fs::write(temp(&format!("archc-fuzz-failure-{n}-aux.arch")), a);
        }
        report.push_str(&format!(
            "\n=== failure {n}: {} ({} case(s); smallest: case {}, {}, {})\n{}\noptions: {:?}\nsaved to {}\n--- program:\n{}\n",
            f.problem.signature,
            f.count,
            f.index,
            f.category,
            f.origin,
            f.problem.detail,
            f.opts,
            path.display(),
            f.main
        ));
        if let Some(a) = &f.aux {
            report.push_str(&format!("--- module aux:\n{a}\n"));
        }
        if let Some((m, a)) = &f.minimal {
            let mpath = temp(&format!("archc-fuzz-failure-{n}.min.arch"));
            let _ = std::fs::write(&mpath, m);
            report.push_str(&format!("--- minimised ({}; backtrace below is of this one):\n{m}\n", mpath.display()));
            if let Some(a) = a {
                let _ = std::fs::write(temp(&format!("archc-fuzz-failure-{n}-aux.min.arch")), a);
                report.push_str(&format!("--- minimised module aux:\n{a}\n"));
            }
        }
        if let Some(bt) = &f.problem.backtrace {
            let frames: Vec<&str> = bt.lines().filter(|l| l.contains("archc")).take(16).collect();
            if !frames.is_empty() {
                report.push_str(&format!("--- backtrace (archc frames):\n{}\n", frames.join("\n")));
            }
        }
    }
    panic!("{report}\n{} distinct failure(s); see above", s.failures.len());
}
