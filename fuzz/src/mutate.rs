//! Mutators: token-level edits of `.arch` source, and byte-level edits of any input.
//!
//! Contract: every mutator is a pure function of its inputs and the random stream, and
//! keeps its output bounded (an edit adds at most [`MAX_GROWTH`] bytes), so a campaign
//! fuzzes the checker rather than the size of honest huge programs. Light edits (a small
//! number, two names of a file swapped) mostly keep a program building; heavy ones (edge
//! numbers, deleted, duplicated, swapped or spliced tokens, inserted `choose`/`repeat`,
//! raw bytes) mostly do not.

use crate::corpus::{tokens, Class, Corpus, Token};
use crate::rng::Rng;

/// The most bytes one edit adds.
pub const MAX_GROWTH: usize = 4096;

/// Numbers at the edges of the integer and float ranges the checker computes with.
#[rustfmt::skip]
pub const EDGE_NUMBERS: &[&str] = &[
    "0", "-1", "1", "2", "2147483648", "4294967296", "9007199254740992", "9007199254740993",
    "9223372036854775807", "-9223372036854775807", "9223372036854775808", "99999999999999999999999",
    "1e308", "1e999", "-0.0", "0.0", "1e-320", "0.5", "(2 ** 62)", "(2 ** 63 - 1)", "(-9223372036854775807 - 1)",
];

/// Small sizes that keep shapes plausible.
const SMALL_NUMBERS: &[&str] = &["1", "2", "3", "4", "8", "16"];

/// A `repeat` wrapped around the identity, spliced after a `|>`.
const REPEATS: &[&str] = &["repeat 2 { h => h } |> ", "repeat 1 as i { h => h * 1.0 } |> ", "repeat 0 { skip } |> "];

/// Raw bytes the byte mutator inserts.
const ODD_BYTES: &[u8] = &[0, b'\n', b'{', b'}', b'(', b')', b'[', b']', b'"', b'/', b'*', 0xff, 0xc3, b'#', b'\\'];

/// One light edit of `text`: a number made small, or two identifiers of the file swapped.
pub fn light(text: &str, r: &mut Rng) -> String {
    let toks = tokens(text);
    match r.below(2) {
        0 => replace_class(text, &toks, Class::Int, SMALL_NUMBERS, r),
        _ => swap_class(text, &toks, Class::Ident, r),
    }
}

/// `n` heavy edits of `text`, drawing spliced tokens and names from `corpus`.
pub fn heavy(text: &str, corpus: &Corpus, n: usize, r: &mut Rng) -> String {
    let mut text = text.to_string();
    for _ in 0..n {
        text = heavy_once(&text, corpus, r);
    }
    text
}

fn heavy_once(text: &str, corpus: &Corpus, r: &mut Rng) -> String {
    let toks = tokens(text);
    match r.below(13) {
        0 | 1 => replace_class(text, &toks, if r.chance(0.8) { Class::Int } else { Class::Float }, EDGE_NUMBERS, r),
        2 => replace_ident(text, &toks, &corpus.idents, r),
        3 => swap_class(text, &toks, Class::Ident, r),
        4 => delete_tokens(text, &toks, r),
        5 => duplicate_tokens(text, &toks, r),
        6 => swap_tokens(text, &toks, r),
        7 | 8 => splice(text, &toks, corpus, r),
        9 => insert_choose(text, &toks, r),
        10 => insert_repeat(text, &toks, r),
        11 => light(text, r),
        _ => String::from_utf8_lossy(&bytes(text.as_bytes(), 1 + r.below(3), r)).into_owned(),
    }
}

fn slice(text: &str, t: &Token) -> String {
    text[t.start..t.end].to_string()
}

/// `text` with the byte range `[start, end)` replaced.
fn replace(text: &str, start: usize, end: usize, with: &str) -> String {
    let with = &with[..floor_char(with, MAX_GROWTH.min(with.len()))];
    format!("{}{}{}", &text[..start], with, &text[end..])
}

fn floor_char(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

fn of_class(toks: &[Token], class: Class) -> Vec<Token> {
    toks.iter().copied().filter(|t| t.class == class).collect()
}

fn replace_class(text: &str, toks: &[Token], class: Class, with: &[&str], r: &mut Rng) -> String {
    let candidates = of_class(toks, class);
    if candidates.is_empty() {
        return text.to_string();
    }
    let t = *r.pick(&candidates);
    replace(text, t.start, t.end, r.pick::<&str>(with))
}

fn replace_ident(text: &str, toks: &[Token], idents: &[String], r: &mut Rng) -> String {
    let candidates = of_class(toks, Class::Ident);
    if candidates.is_empty() || idents.is_empty() {
        return text.to_string();
    }
    let t = *r.pick(&candidates);
    replace(text, t.start, t.end, r.pick::<String>(idents))
}

/// Swaps two tokens of `class` (two different spellings when the file has them).
fn swap_class(text: &str, toks: &[Token], class: Class, r: &mut Rng) -> String {
    let candidates = of_class(toks, class);
    if candidates.len() < 2 {
        return text.to_string();
    }
    let a = *r.pick(&candidates);
    let b = *r.pick(&candidates);
    swap_ranges(text, a, b)
}

fn swap_ranges(text: &str, a: Token, b: Token) -> String {
    let (a, b) = if a.start <= b.start { (a, b) } else { (b, a) };
    if a.end > b.start {
        return text.to_string();
    }
    format!("{}{}{}{}{}", &text[..a.start], slice(text, &b), &text[a.end..b.start], slice(text, &a), &text[b.end..])
}

/// A random run of 1 to `max` tokens: `(first, past the last)`.
fn run(toks: &[Token], max: usize, r: &mut Rng) -> (usize, usize) {
    let first = r.below(toks.len());
    (first, (first + 1 + r.below(max)).min(toks.len()))
}

fn delete_tokens(text: &str, toks: &[Token], r: &mut Rng) -> String {
    if toks.is_empty() {
        return text.to_string();
    }
    let (a, b) = run(toks, 3, r);
    replace(text, toks[a].start, toks[b - 1].end, "")
}

fn duplicate_tokens(text: &str, toks: &[Token], r: &mut Rng) -> String {
    if toks.is_empty() {
        return text.to_string();
    }
    let (a, b) = run(toks, 8, r);
    let piece = format!("{} ", &text[toks[a].start..toks[b - 1].end]);
    replace(text, toks[a].start, toks[a].start, &piece)
}

fn swap_tokens(text: &str, toks: &[Token], r: &mut Rng) -> String {
    if toks.len() < 2 {
        return text.to_string();
    }
    let a = *r.pick(toks);
    let b = *r.pick(toks);
    swap_ranges(text, a, b)
}

/// Inserts (or substitutes) a run of up to 30 tokens of another corpus file.
fn splice(text: &str, toks: &[Token], corpus: &Corpus, r: &mut Rng) -> String {
    let other = r.pick(&corpus.files);
    if other.tokens.is_empty() || toks.is_empty() {
        return text.to_string();
    }
    let (a, b) = run(&other.tokens, 30, r);
    let piece = format!(" {} ", &other.text[other.tokens[a].start..other.tokens[b - 1].end]);
    let at = *r.pick(toks);
    match r.chance(0.5) {
        true => replace(text, at.start, at.start, &piece),
        false => replace(text, at.start, at.end, &piece),
    }
}

/// Before an `input` statement, a `choose` over sizes; a later integer becomes the choice.
fn insert_choose(text: &str, toks: &[Token], r: &mut Rng) -> String {
    let inputs: Vec<usize> = (0..toks.len()).filter(|&i| &text[toks[i].start..toks[i].end] == "input").collect();
    if inputs.is_empty() {
        return text.to_string();
    }
    let i = *r.pick(&inputs);
    let later: Vec<Token> = of_class(&toks[i..], Class::Int);
    let stmt = format!("choose fz_c in [{}, {}]\n    ", r.pick(SMALL_NUMBERS), r.pick(EDGE_NUMBERS));
    let text2 = match later.is_empty() {
        true => text.to_string(),
        false => {
            let t = *r.pick(&later);
            replace(text, t.start, t.end, "fz_c")
        }
    };
    replace(&text2, toks[i].start, toks[i].start, &stmt)
}

/// After a `|>`, a `repeat` of the identity.
fn insert_repeat(text: &str, toks: &[Token], r: &mut Rng) -> String {
    let pipes: Vec<Token> = toks.iter().copied().filter(|t| &text[t.start..t.end] == "|>").collect();
    if pipes.is_empty() {
        return text.to_string();
    }
    let t = *r.pick(&pipes);
    replace(text, t.end, t.end, &format!(" {}", r.pick(REPEATS)))
}

/// `n` byte-level edits: a byte flipped, set, inserted or deleted; a range duplicated or
/// deleted; the input truncated.
pub fn bytes(input: &[u8], n: usize, r: &mut Rng) -> Vec<u8> {
    let mut b = input.to_vec();
    for _ in 0..n {
        byte_once(&mut b, r);
    }
    b
}

fn byte_once(b: &mut Vec<u8>, r: &mut Rng) {
    let len = b.len();
    if len == 0 {
        b.push(*r.pick(ODD_BYTES));
        return;
    }
    let i = r.below(len);
    match r.below(7) {
        0 => b[i] ^= 1 << r.below(8),
        1 => b[i] = *r.pick(&[0u8, 0xff, 0x7f, 0x80, b'9', b'-']),
        2 => b.insert(i, *r.pick(ODD_BYTES)),
        3 => {
            b.remove(i);
        }
        4 => {
            let end = (i + 1 + r.below(64)).min(len);
            let piece = b[i..end].to_vec();
            b.splice(i..i, piece);
        }
        5 => {
            let end = (i + 1 + r.below(16)).min(len);
            b.drain(i..end);
        }
        _ => b.truncate(i),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NET: &str = "network N(d: int = 4) {\n    input x: f32[B, d]\n    output y = x |> relu |> relu\n}\n";

    #[test]
    fn light_edits_keep_the_token_count() {
        let mut r = Rng::new(3);
        for _ in 0..50 {
            assert_eq!(tokens(&light(NET, &mut r)).len(), tokens(NET).len());
        }
    }

    /// An inserted `repeat` of the identity keeps the program building; an inserted
    /// `choose` parses.
    #[test]
    fn inserted_constructs_are_spelled_as_the_language_wants() {
        use archc_compiler::sema::{check_file, NoModules, Options};
        let mut r = Rng::new(1);
        for _ in 0..12 {
            let text = insert_repeat(NET, &tokens(NET), &mut r);
            assert!(text.contains("|> repeat"), "{text}");
            let out = check_file("n.arch", &text, &NoModules, &Options::default());
            assert!(out.program.is_some(), "{text}\n{:?}", out.diagnostics);
            let text = insert_choose(NET, &tokens(NET), &mut r);
            assert!(text.contains("choose fz_c in ["), "{text}");
            let (module, _) = archc_grammar::parse(archc_grammar::span::FileId(0), &text);
            assert!(!archc_grammar::fmt::has_errors(&module), "{text}");
        }
    }

    #[test]
    fn heavy_edits_stay_bounded() {
        let corpus = Corpus::from_texts(vec![("n.arch".into(), NET.into())]);
        let mut r = Rng::new(7);
        for _ in 0..200 {
            let out = heavy(NET, &corpus, 4, &mut r);
            assert!(out.len() <= NET.len() + 4 * MAX_GROWTH + 64);
        }
    }
}
