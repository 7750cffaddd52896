//! The `.arch` front end: tokens ([`lexer`]), the grammar (`grammar.lalrpop`), the
//! syntax tree ([`ast`]), spans ([`span`]), parse errors, and the canonical formatter
//! ([`fmt`]).
//!
//! Architecture invariant: this crate knows nothing of shapes, types or backends.
//! Parsing never fails: [`parse`] returns a module with error nodes and the list of
//! every syntax error it recovered from.

pub mod ast;
pub mod span;
