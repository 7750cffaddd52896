//! Tokens of the `.arch` language and the lexer that feeds the parser.
//!
//! Contract: [`lex`] never fails and never panics. It returns every token of the source
//! as a `(start, Tok, end)` byte triple (the shape lalrpop's external-lexer interface
//! wants) plus the lexical errors it met. Every lexical error (an invalid character, an
//! unterminated string or block comment, a bad escape, an out-of-range number) is also
//! present in the token stream as one [`Tok::Error`] token, so the parser sees a syntax
//! error there and recovers; the parser does not report those tokens a second time.
//! Whitespace and comments are skipped; [`comments`] lists the comments for the
//! formatter.

use logos::Logos;
use std::fmt;

/// What went wrong while lexing one token.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum LexErrorKind {
    #[default]
    InvalidChar,
    UnterminatedString,
    UnterminatedComment,
    BadEscape,
    IntOutOfRange,
    FloatOutOfRange,
    TooDeep,
}

impl LexErrorKind {
    pub fn message(&self) -> &'static str {
        match self {
            LexErrorKind::InvalidChar => "invalid character",
            LexErrorKind::UnterminatedString => "unterminated string literal",
            LexErrorKind::UnterminatedComment => "unterminated block comment",
            LexErrorKind::BadEscape => "unknown escape in string (only \\\" \\\\ \\n are allowed)",
            LexErrorKind::IntOutOfRange => "integer literal out of range",
            LexErrorKind::FloatOutOfRange => "float literal out of range",
            LexErrorKind::TooDeep => "brackets nested too deeply",
        }
    }
}

/// A lexical error with its byte range.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LexError {
    pub kind: LexErrorKind,
    pub start: usize,
    pub end: usize,
}

/// The error type of lalrpop's external-lexer interface. Never produced: lexical errors
/// travel as [`Tok::Error`] tokens so that the parser can recover from them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Never {}

/// One token.
#[derive(Logos, Clone, Debug, PartialEq)]
#[logos(error = LexErrorKind)]
#[logos(skip r"[ \t\r\n\f]+")]
pub enum Tok {
    // Keywords.
    #[token("use")]
    Use,
    #[token("layer")]
    Layer,
    #[token("network")]
    Network,
    #[token("operator")]
    Operator,
    #[token("over")]
    Over,
    #[token("grid")]
    Grid,
    #[token("fn")]
    Fn,
    #[token("param")]
    Param,
    #[token("buffer")]
    Buffer,
    #[token("input")]
    Input,
    #[token("output")]
    Output,
    #[token("let")]
    Let,
    #[token("repeat")]
    Repeat,
    #[token("stack")]
    Stack,
    #[token("choose")]
    Choose,
    #[token("in")]
    In,
    #[token("shared")]
    Shared,
    #[token("if")]
    If,
    #[token("else")]
    Else,
    #[token("train")]
    Train,
    #[token("on")]
    On,
    #[token("adapt")]
    Adapt,
    #[token("as")]
    As,
    #[token("true")]
    True,
    #[token("false")]
    False,
    #[token("skip")]
    Skip,

    // Literals and names.
    #[regex(r"[A-Za-z_][A-Za-z0-9_]*", |lex| lex.slice().to_string())]
    Ident(String),
    #[regex(r"[0-9]+", lex_int)]
    Int(i64),
    #[regex(r"[0-9]+\.[0-9]+([eE][+-]?[0-9]+)?", lex_float)]
    #[regex(r"[0-9]+[eE][+-]?[0-9]+", lex_float)]
    Float(f64),
    #[token("\"", lex_string)]
    Str(String),

    // Punctuation.
    #[token("(")]
    LParen,
    #[token(")")]
    RParen,
    #[token("[")]
    LBracket,
    /// `(` as the first token of a line: it opens a parenthesised expression and never
    /// a call, so a `let` value does not swallow a result on the next line.
    LParenLine,
    /// `[` as the first token of a line: a list, never an index.
    LBracketLine,
    #[token("]")]
    RBracket,
    #[token("{")]
    LBrace,
    #[token("}")]
    RBrace,
    #[token(",")]
    Comma,
    #[token(":")]
    Colon,
    #[token(";")]
    Semi,
    #[token(".")]
    Dot,
    #[token("...")]
    Ellipsis,
    #[token("=")]
    Assign,
    #[token("=>")]
    FatArrow,
    #[token("->")]
    Arrow,
    #[token("|>")]
    Pipe,
    #[token("+")]
    Plus,
    #[token("-")]
    Minus,
    #[token("*")]
    Star,
    #[token("/")]
    Slash,
    #[token("%")]
    Percent,
    #[token("**")]
    StarStar,
    #[token("@")]
    At,
    #[token("==")]
    EqEq,
    #[token("!=")]
    NotEq,
    #[token("<")]
    Lt,
    #[token("<=")]
    Le,
    #[token(">")]
    Gt,
    #[token(">=")]
    Ge,
    #[token("&&")]
    AndAnd,
    #[token("||")]
    OrOr,
    #[token("!")]
    Bang,

    // Comments: produced by logos, filtered out by `lex`, collected by `comments`.
    #[regex(r"//[^\n]*", allow_greedy = true)]
    LineComment,
    #[token("/*", lex_block_comment)]
    BlockComment,

    /// Stands for a lexical error in the stream handed to the parser.
    Error,
}

fn lex_int(lex: &mut logos::Lexer<Tok>) -> Result<i64, LexErrorKind> {
    lex.slice().parse().map_err(|_| LexErrorKind::IntOutOfRange)
}

fn lex_float(lex: &mut logos::Lexer<Tok>) -> Result<f64, LexErrorKind> {
    match lex.slice().parse::<f64>() {
        Ok(v) if v.is_finite() => Ok(v),
        _ => Err(LexErrorKind::FloatOutOfRange),
    }
}

/// Scans a string body after the opening quote. A raw newline or the end of input ends
/// an unterminated string (the newline is not part of the token).
fn lex_string(lex: &mut logos::Lexer<Tok>) -> Result<String, LexErrorKind> {
    let rest = lex.remainder();
    let mut out = String::new();
    let mut bad_escape = false;
    let mut chars = rest.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => {
                lex.bump(i + 1);
                return if bad_escape { Err(LexErrorKind::BadEscape) } else { Ok(out) };
            }
            '\n' => {
                lex.bump(i);
                return Err(LexErrorKind::UnterminatedString);
            }
            '\\' => match chars.next() {
                Some((_, '"')) => out.push('"'),
                Some((_, '\\')) => out.push('\\'),
                Some((_, 'n')) => out.push('\n'),
                Some((j, '\n')) => {
                    lex.bump(j);
                    return Err(LexErrorKind::UnterminatedString);
                }
                Some(_) => bad_escape = true,
                None => break,
            },
            _ => out.push(c),
        }
    }
    lex.bump(rest.len());
    Err(LexErrorKind::UnterminatedString)
}

fn lex_block_comment(lex: &mut logos::Lexer<Tok>) -> Result<(), LexErrorKind> {
    let rest = lex.remainder();
    match rest.find("*/") {
        Some(i) => {
            lex.bump(i + 2);
            Ok(())
        }
        None => {
            lex.bump(rest.len());
            Err(LexErrorKind::UnterminatedComment)
        }
    }
}

/// A `(start, token, end)` triple as lalrpop's external lexer interface wants it.
pub type Spanned = (usize, Tok, usize);

/// Lexes the whole source: tokens without comments, and lexical errors. Runs of
/// adjacent invalid characters become a single error (and a single [`Tok::Error`]).
pub fn lex(src: &str) -> (Vec<Spanned>, Vec<LexError>) {
    let mut toks: Vec<Spanned> = Vec::new();
    let mut errors: Vec<LexError> = Vec::new();
    let mut lexer = Tok::lexer(src);
    while let Some(res) = lexer.next() {
        let range = lexer.span();
        match res {
            Ok(Tok::LineComment | Tok::BlockComment) => {}
            Ok(tok) => toks.push((range.start, tok, range.end)),
            // A literal that is well-formed but too large is reported once and parsed as
            // a placeholder value, so it causes no follow-on syntax errors.
            Err(LexErrorKind::IntOutOfRange) => {
                errors.push(LexError { kind: LexErrorKind::IntOutOfRange, start: range.start, end: range.end });
                toks.push((range.start, Tok::Int(0), range.end));
            }
            Err(LexErrorKind::FloatOutOfRange) => {
                errors.push(LexError { kind: LexErrorKind::FloatOutOfRange, start: range.start, end: range.end });
                toks.push((range.start, Tok::Float(0.0), range.end));
            }
            Err(kind) => push_error(&mut toks, &mut errors, kind, range.start, range.end),
        }
    }
    mark_line_starts(src, &mut toks);
    let toks = limit_nesting(toks, &mut errors);
    (toks, errors)
}

/// Turns `(`/`[` that begin a line into [`Tok::LParenLine`]/[`Tok::LBracketLine`].
fn mark_line_starts(src: &str, toks: &mut [Spanned]) {
    let mut prev_end = 0;
    for (l, tok, r) in toks.iter_mut() {
        let new_line = prev_end > 0 && src[prev_end..*l].contains('\n');
        match tok {
            Tok::LParen if new_line => *tok = Tok::LParenLine,
            Tok::LBracket if new_line => *tok = Tok::LBracketLine,
            _ => {}
        }
        prev_end = *r;
    }
}

/// The deepest bracket nesting (`(`, `[`, `{` together) handed to the parser.
pub const MAX_BRACKET_DEPTH: usize = 256;

/// Replaces every run of tokens nested deeper than [`MAX_BRACKET_DEPTH`] by one
/// [`Tok::Error`] (and one error), so the parser's stack and error recovery stay small.
fn limit_nesting(toks: Vec<Spanned>, errors: &mut Vec<LexError>) -> Vec<Spanned> {
    let mut out = Vec::with_capacity(toks.len());
    let mut depth = 0usize;
    let mut in_run = false;
    for (l, tok, r) in toks {
        let opens = matches!(tok, Tok::LParen | Tok::LBracket | Tok::LBrace | Tok::LParenLine | Tok::LBracketLine);
        if matches!(tok, Tok::RParen | Tok::RBracket | Tok::RBrace) {
            depth = depth.saturating_sub(1);
        }
        let too_deep = depth >= MAX_BRACKET_DEPTH;
        depth += opens as usize;
        match (too_deep, in_run) {
            (false, _) => out.push((l, tok, r)),
            (true, true) => {
                out.last_mut().expect("a run has its error token").2 = r;
                errors.last_mut().expect("a run has its error").end = r;
            }
            (true, false) => {
                errors.push(LexError { kind: LexErrorKind::TooDeep, start: l, end: r });
                out.push((l, Tok::Error, r));
            }
        }
        in_run = too_deep;
    }
    out
}

fn push_error(toks: &mut Vec<Spanned>, errors: &mut Vec<LexError>, kind: LexErrorKind, start: usize, end: usize) {
    if kind == LexErrorKind::InvalidChar {
        if let (Some(last), Some((_, Tok::Error, tok_end))) = (errors.last_mut(), toks.last_mut()) {
            if last.kind == LexErrorKind::InvalidChar && last.end == start && *tok_end == start {
                last.end = end;
                *tok_end = end;
                return;
            }
        }
    }
    errors.push(LexError { kind, start, end });
    toks.push((start, Tok::Error, end));
}

/// A comment in the source, for the formatter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Comment {
    pub start: usize,
    pub end: usize,
    /// The comment text as written, delimiters included, trailing whitespace removed.
    pub text: String,
    /// `true` for a `/* */` comment.
    pub block: bool,
}

/// Every comment of the source, in order (an unterminated block comment included).
pub fn comments(src: &str) -> Vec<Comment> {
    let mut out = Vec::new();
    let mut lexer = Tok::lexer(src);
    while let Some(res) = lexer.next() {
        let r = lexer.span();
        let block = match res {
            Ok(Tok::LineComment) => false,
            Ok(Tok::BlockComment) | Err(LexErrorKind::UnterminatedComment) => true,
            _ => continue,
        };
        let text = src[r.clone()].trim_end().to_string();
        out.push(Comment { start: r.start, end: r.end, text, block });
    }
    out
}

impl Tok {
    /// A human-friendly description, as used in "unexpected ..." messages.
    pub fn describe(&self) -> String {
        match self {
            Tok::Ident(s) => format!("identifier `{s}`"),
            Tok::Int(v) => format!("integer `{v}`"),
            Tok::Float(v) => format!("float `{v:?}`"),
            Tok::Str(_) => "string literal".to_string(),
            Tok::Error => "invalid token".to_string(),
            Tok::LineComment | Tok::BlockComment => "comment".to_string(),
            other => format!("`{}`", other.text().unwrap_or("?")),
        }
    }

    /// The fixed spelling of keywords and punctuation (`None` for tokens with data).
    pub fn text(&self) -> Option<&'static str> {
        keyword_text(self).or_else(|| punct_text(self))
    }

    /// `true` for the keywords.
    pub fn is_keyword(&self) -> bool {
        keyword_text(self).is_some()
    }
}

fn keyword_text(t: &Tok) -> Option<&'static str> {
    use Tok::*;
    Some(match t {
        Use => "use",
        Layer => "layer",
        Network => "network",
        Operator => "operator",
        Over => "over",
        Grid => "grid",
        Fn => "fn",
        Param => "param",
        Buffer => "buffer",
        Input => "input",
        Output => "output",
        Let => "let",
        Repeat => "repeat",
        Stack => "stack",
        Choose => "choose",
        In => "in",
        Shared => "shared",
        If => "if",
        Else => "else",
        Train => "train",
        On => "on",
        Adapt => "adapt",
        As => "as",
        True => "true",
        False => "false",
        Skip => "skip",
        _ => return None,
    })
}

fn punct_text(t: &Tok) -> Option<&'static str> {
    use Tok::*;
    Some(match t {
        LParen | LParenLine => "(",
        RParen => ")",
        LBracket | LBracketLine => "[",
        RBracket => "]",
        LBrace => "{",
        RBrace => "}",
        Comma => ",",
        Colon => ":",
        Semi => ";",
        Dot => ".",
        Ellipsis => "...",
        Assign => "=",
        FatArrow => "=>",
        Arrow => "->",
        Pipe => "|>",
        Plus => "+",
        Minus => "-",
        Star => "*",
        Slash => "/",
        Percent => "%",
        StarStar => "**",
        At => "@",
        EqEq => "==",
        NotEq => "!=",
        Lt => "<",
        Le => "<=",
        Gt => ">",
        Ge => ">=",
        AndAnd => "&&",
        OrOr => "||",
        Bang => "!",
        _ => return None,
    })
}

impl fmt::Display for Tok {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}

/// All keywords, as written.
pub const KEYWORDS: &[&str] = &[
    "use", "layer", "network", "operator", "over", "grid", "fn", "param", "buffer", "input", "output", "let", "repeat",
    "stack", "choose", "in", "shared", "if", "else", "train", "on", "adapt", "as", "true", "false", "skip",
];
