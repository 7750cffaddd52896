//! Syntax errors as reported by [`crate::parse`].
//!
//! Contract: every lexical error, every syntax error the parser recovered from, and every
//! error raised while building the tree (e.g. nesting too deep) becomes one
//! [`ParseError`] with a span, a human message (`unexpected `)``) and a deduplicated,
//! sorted list of human-friendly names of what was expected (`identifier`, `` `,` ``).

use crate::lexer::{LexError, Never, Tok};
use crate::span::{FileId, Span};

/// One syntax error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub span: Span,
    pub message: String,
    /// What would have been accepted here; empty when not applicable.
    pub expected: Vec<String>,
}

impl std::fmt::Display for ParseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)?;
        if !self.expected.is_empty() {
            write!(f, "; expected {}", self.expected.join(", "))?;
        }
        Ok(())
    }
}

/// lalrpop's error type for this grammar.
pub(crate) type LalrpopError = lalrpop_util::ParseError<usize, Tok, Never>;

/// An error recorded while parsing, before it is turned into a [`ParseError`].
#[derive(Clone, Debug)]
pub(crate) enum RawError {
    /// A syntax error lalrpop recovered from.
    Syntax(LalrpopError),
    /// An error raised by a grammar action.
    Custom { start: usize, end: usize, message: String },
}

/// Turns the raw errors into [`ParseError`]s (dropping syntax errors whose token is a
/// [`Tok::Error`]: the lexer already reported those).
pub(crate) fn convert(file: FileId, src_len: usize, raw: Vec<RawError>) -> Vec<ParseError> {
    raw.into_iter().filter_map(|r| convert_one(file, src_len, r)).collect()
}

fn convert_one(file: FileId, src_len: usize, raw: RawError) -> Option<ParseError> {
    match raw {
        RawError::Custom { start, end, message } => {
            Some(ParseError { span: Span::new(file, start, end), message, expected: vec![] })
        }
        RawError::Syntax(e) => from_lalrpop(file, src_len, e),
    }
}

/// Converts one lalrpop error (`None` for an error at a lexical-error token).
pub(crate) fn from_lalrpop(file: FileId, src_len: usize, e: LalrpopError) -> Option<ParseError> {
    use lalrpop_util::ParseError as E;
    let (start, end, message, expected) = match e {
        E::UnrecognizedToken { token: (_, Tok::Error, _), .. } => return None,
        E::UnrecognizedToken { token: (l, t, r), expected } => (l, r, format!("unexpected {}", t.describe()), expected),
        E::ExtraToken { token: (l, t, r) } => (l, r, format!("unexpected {}", t.describe()), vec![]),
        E::UnrecognizedEof { location, expected } => {
            (location, location, "unexpected end of file".to_string(), expected)
        }
        E::InvalidToken { location } => (location, location, "invalid token".to_string(), vec![]),
        E::User { error } => match error {},
    };
    let (start, end) = (start.min(src_len), end.min(src_len));
    let expected = friendly(expected);
    let message = if expected == ["`as`", "`{`"] { message + BODY_HINT } else { message };
    Some(ParseError { span: Span::new(file, start, end), message, expected })
}

/// Where only a body can follow (`stack(n)`, `repeat n`): a bare `stack(xs)` of a list
/// held by a name lands here.
const BODY_HINT: &str =
    " (`stack(n)` and `repeat n` take a body `{ .. }`; to stack the tensors of a list held by a name, write `stack(xs, \
     axis = 0)`)";

/// A lexical error as a [`ParseError`].
pub(crate) fn from_lex(file: FileId, e: &LexError) -> ParseError {
    ParseError { span: Span::new(file, e.start, e.end), message: e.kind.message().to_string(), expected: vec![] }
}

/// Maps lalrpop's terminal names (`"\"(\""`, `"IDENT"`) to human names, deduplicated
/// and sorted.
fn friendly(expected: Vec<String>) -> Vec<String> {
    let starts_expr = EXPR_START.iter().all(|t| expected.iter().any(|e| e == t));
    let line_start = |e: &str| e == "\"NL(\"" || e == "\"NL[\"" || (starts_expr && ARG_KEYWORDS.contains(&e));
    let mut out: Vec<String> = expected
        .iter()
        .filter(|e| !(starts_expr && (EXPR_START.contains(&e.as_str()) || line_start(e))))
        .map(|s| friendly_one(s))
        .collect();
    if starts_expr {
        out.push("expression".to_string());
    }
    out.sort();
    out.dedup();
    out
}

/// Keywords accepted as argument names (`data(train = ..)`): not worth listing where an
/// expression is expected.
const ARG_KEYWORDS: &[&str] = &[
    "\"train\"",
    "\"input\"",
    "\"output\"",
    "\"on\"",
    "\"in\"",
    "\"over\"",
    "\"grid\"",
    "\"shared\"",
    "\"as\"",
    "\"param\"",
    "\"buffer\"",
    "\"adapt\"",
];

/// The terminals that can start an expression; when all are expected they are reported
/// as one "expression".
const EXPR_START: &[&str] = &[
    "IDENT",
    "INT",
    "FLOAT",
    "STR",
    "\"(\"",
    "\"[\"",
    "\"{\"",
    "\"-\"",
    "\"!\"",
    "\"if\"",
    "\"repeat\"",
    "\"stack\"",
    "\"true\"",
    "\"false\"",
    "\"skip\"",
];

fn friendly_one(terminal: &str) -> String {
    match terminal {
        "\"NL(\"" => "`(`".to_string(),
        "\"NL[\"" => "`[`".to_string(),
        "IDENT" => "identifier".to_string(),
        "INT" => "integer".to_string(),
        "FLOAT" => "float".to_string(),
        "STR" => "string".to_string(),
        _ => {
            let bare = terminal.trim_matches('"');
            let bare = bare.replace("\\\"", "\"").replace("\\\\", "\\");
            format!("`{bare}`")
        }
    }
}
