//! The seed corpus: every `.arch` file of the repository's `examples/`, `stdlib/`,
//! `tests/ui/` and `tests/defects/`, lexed once, with the facts the mutators use.
//!
//! Contract: [`Corpus::load`] reads the files in a fixed order (sorted paths), so a
//! campaign seed names the same inputs on every run over the same tree. Token ranges come
//! from the language's own lexer (`archc_grammar::lexer::lex`), so mutations act on real
//! tokens (comments and whitespace stay between them).

use archc_grammar::lexer::{lex, Tok};
use std::path::Path;

/// The seed folders, relative to the repository root.
pub const SEED_DIRS: [&str; 4] = ["examples", "stdlib", "tests/ui", "tests/defects"];

/// What a token is, for the mutators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Ident,
    Int,
    Float,
    Str,
    /// Keywords, punctuation and error tokens.
    Other,
}

/// One token's byte range and class.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Token {
    pub start: usize,
    pub end: usize,
    pub class: Class,
}

/// Lexes `text` into classified byte ranges.
pub fn tokens(text: &str) -> Vec<Token> {
    let (toks, _) = lex(text);
    toks.into_iter().map(|(start, tok, end)| Token { start, end, class: classify(&tok) }).collect()
}

fn classify(tok: &Tok) -> Class {
    match tok {
        Tok::Ident(_) => Class::Ident,
        Tok::Int(_) => Class::Int,
        Tok::Float(_) => Class::Float,
        Tok::Str(_) => Class::Str,
        _ => Class::Other,
    }
}

/// One seed file.
#[derive(Clone, Debug)]
pub struct SeedFile {
    /// The path relative to the repository root.
    pub name: String,
    pub text: String,
    pub tokens: Vec<Token>,
    /// Whether the file has a `train` item.
    pub has_train: bool,
}

/// The seeds and the identifiers they use.
#[derive(Clone, Debug, Default)]
pub struct Corpus {
    pub files: Vec<SeedFile>,
    /// Every distinct identifier of the corpus, sorted.
    pub idents: Vec<String>,
}

impl Corpus {
    /// Reads the seed folders under `root` (a missing folder is skipped).
    pub fn load(root: &Path) -> Result<Corpus, String> {
        let mut texts = Vec::new();
        for dir in SEED_DIRS {
            for path in arch_files(&root.join(dir)) {
                let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
                let name = path.strip_prefix(root).unwrap_or(&path).to_string_lossy().into_owned();
                texts.push((name, text));
            }
        }
        if texts.is_empty() {
            return Err(format!("no .arch files under {} ({})", root.display(), SEED_DIRS.join(", ")));
        }
        Ok(Corpus::from_texts(texts))
    }

    /// A corpus of `(name, text)` files.
    pub fn from_texts(texts: Vec<(String, String)>) -> Corpus {
        let files: Vec<SeedFile> = texts.into_iter().map(|(name, text)| seed_file(name, text)).collect();
        let mut idents: Vec<String> = files
            .iter()
            .flat_map(|f| {
                f.tokens.iter().filter(|t| t.class == Class::Ident).map(|t| f.text[t.start..t.end].to_string())
            })
            .collect();
        idents.sort();
        idents.dedup();
        Corpus { files, idents }
    }
}

fn seed_file(name: String, text: String) -> SeedFile {
    let tokens = tokens(&text);
    let has_train = text.lines().any(|l| l.starts_with("train "));
    SeedFile { name, text, tokens, has_train }
}

/// The `.arch` files directly in `dir`, sorted.
fn arch_files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut paths: Vec<_> = entries
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "arch"))
        .collect();
    paths.sort();
    paths
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_classified_byte_ranges() {
        let text = "network N(d: int = 4) { input x: f32[B, d] // c\n output y = x * 0.5 }";
        let toks = tokens(text);
        let ints: Vec<&str> = toks.iter().filter(|t| t.class == Class::Int).map(|t| &text[t.start..t.end]).collect();
        assert_eq!(ints, ["4"]);
        let floats: Vec<&str> =
            toks.iter().filter(|t| t.class == Class::Float).map(|t| &text[t.start..t.end]).collect();
        assert_eq!(floats, ["0.5"]);
        assert!(toks.iter().all(|t| !text[t.start..t.end].contains("//")));
    }
}
