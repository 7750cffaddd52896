//! One error per broken item: merging the error items that item-level recovery leaves
//! behind inside a broken item.
//!
//! After a syntax error at item level the parser drops tokens until one that may follow
//! an item, and `,` and `;` may (they separate items). Such a token is often inside the
//! broken item (`network A(d: int { input x: f32[B, d] ... }`), and parsing resumes there
//! as if a new item started, raising further errors until a real item begins. Those
//! errors are consequences of the first.
//!
//! Contract: an `Item::Error` that does not start at an item keyword (`use`, `layer`,
//! `network`, `operator`, `train`, `adapt`, or `fn` followed by a name) and follows
//! another `Item::Error` is merged into it, and the syntax errors found inside it are
//! dropped. Lexical errors are kept; so is every error of an item that parsed.

use crate::ast::Item;
use crate::error::ParseError;
use crate::lexer::{Spanned, Tok};
use crate::span::Span;

/// Byte offsets where an item can start.
pub(crate) fn item_starts(toks: &[Spanned]) -> Vec<usize> {
    let mut out = Vec::new();
    for (i, (start, tok, _)) in toks.iter().enumerate() {
        let next = toks.get(i + 1).map(|t| &t.1);
        let starts = match tok {
            Tok::Use | Tok::Layer | Tok::Network | Tok::Operator | Tok::Train | Tok::Adapt => true,
            Tok::Fn => matches!(next, Some(Tok::Ident(_))),
            _ => false,
        };
        if starts {
            out.push(*start);
        }
    }
    out
}

/// Merges continuation error items into the error item before them and drops the
/// syntax errors inside them (all but the first error of each merged item).
pub(crate) fn merge(items: Vec<Item>, syntax: &mut Vec<ParseError>, starts: &[usize], src_len: usize) -> Vec<Item> {
    let mut out: Vec<Item> = Vec::with_capacity(items.len());
    // For each continuation: the merged item's start and the continuation's span.
    let mut dropped: Vec<(u32, Span)> = Vec::new();
    for item in items {
        match (out.last_mut(), &item) {
            (Some(Item::Error(prev)), Item::Error(s)) if starts.binary_search(&(s.start as usize)).is_err() => {
                dropped.push((prev.start, *s));
                *prev = prev.to(*s);
            }
            _ => out.push(item),
        }
    }
    syntax.sort_by_key(|e| (e.span.start, e.span.end));
    let mut kept: Vec<ParseError> = Vec::with_capacity(syntax.len());
    for e in syntax.drain(..) {
        let consequence = dropped.iter().any(|(head, cont)| {
            inside(*cont, e.span, src_len) && kept.iter().any(|k| k.span.start >= *head && k.span.start <= e.span.start)
        });
        if !consequence {
            kept.push(e);
        }
    }
    *syntax = kept;
    out
}
/// Whether an error starts in a dropped region (one at the end of the file counts when
/// the region reaches it).
fn inside(region: Span, e: Span, src_len: usize) -> bool {
    let (start, end) = (region.start as usize, region.end as usize);
    let at = e.start as usize;
    (start <= at && at < end) || (at == end && end == src_len)
}
