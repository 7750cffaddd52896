//! The `.arch` front end: tokens ([`lexer`]), the grammar (`grammar.lalrpop`), the
//! syntax tree ([`ast`]), spans ([`span`]), parse errors ([`error`]), and the canonical
//! formatter ([`fmt`]).
//!
//! Architecture invariant: this crate knows nothing of shapes, types or backends.
//! Parsing never fails: [`parse`] returns a module with error nodes and the list of
//! every syntax error it recovered from.

pub mod ast;
mod builder;
pub mod error;
pub mod fmt;
pub mod lexer;
pub mod span;

lalrpop_util::lalrpop_mod!(
    #[allow(clippy::all, unused)]
    grammar
);

pub use builder::MAX_DEPTH;
pub use error::ParseError;
pub use fmt::{format_module, format_source};

use span::{FileId, Span};

/// Parses one file. Never fails and never panics: syntax errors become `Item::Error`,
/// `Stmt::Error` or `ExprKind::Error` nodes, and every error (lexical or syntactic) is
/// returned, sorted by position.
pub fn parse(file: FileId, src: &str) -> (ast::Module, Vec<ParseError>) {
    let (toks, lex_errors) = lexer::lex(src);
    let mut raw = Vec::new();
    let tokens = toks.into_iter().map(Ok::<_, lexer::Never>);
    let result = grammar::ModuleParser::new().parse(file, &mut raw, tokens);
    let mut errors: Vec<ParseError> = lex_errors.iter().map(|e| error::from_lex(file, e)).collect();
    errors.extend(error::convert(file, src.len(), raw));
    let module = match result {
        Ok(m) => m,
        Err(e) => {
            errors.extend(error::from_lalrpop(file, src.len(), e));
            ast::Module { items: vec![ast::Item::Error(Span::new(file, 0, src.len()))] }
        }
    };
    errors.sort_by_key(|e| (e.span.start, e.span.end));
    (module, errors)
}
