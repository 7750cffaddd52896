//! Tree-building helpers called by the grammar's actions.
//!
//! Contract: expressions are built bottom-up together with their nesting depth
//! ([`PExpr`]). A node that would nest deeper than [`MAX_DEPTH`] is replaced by an
//! `ExprKind::Error` node and one "nested too deeply" error is recorded for the whole
//! enclosing expression; this keeps every tree shallow enough for recursive `Drop`,
//! `Clone`, the formatter and later passes. Block expressions without `let`s are
//! transparent (like parentheses), so `{ x }` is just `x`.

use crate::ast::*;
use crate::error::RawError;
use crate::span::{FileId, Span};

/// The deepest expression nesting the parser builds.
pub const MAX_DEPTH: u32 = 256;
/// The most stages one `|>` chain may have.
pub const MAX_CHAIN: u32 = 4096;
/// Depth marker of an error node that replaced a too-deep subtree.
const TOO_DEEP: u32 = u32::MAX;

/// An expression with its nesting depth.
pub struct PExpr {
    pub e: Expr,
    pub d: u32,
}

/// A call argument, an index item or a `let` binding, with the depth of its expressions.
pub type PArg = (Arg, u32);
pub type PIndex = (IndexItem, u32);
pub type PLet = (LetBinding, u32);

pub type Errors = Vec<RawError>;

pub fn span(file: FileId, l: usize, r: usize) -> Span {
    Span::new(file, l, r)
}

pub fn ident(file: FileId, l: usize, name: String, r: usize) -> Ident {
    Ident::new(name, span(file, l, r))
}

/// A leaf expression (literal, name, `skip`).
pub fn leaf(kind: ExprKind, span: Span) -> PExpr {
    PExpr { e: Expr { kind, span }, d: 1 }
}

/// An error expression (from error recovery).
pub fn error_expr(span: Span) -> PExpr {
    leaf(ExprKind::Error, span)
}

/// Builds a node whose children have the given depths, enforcing [`MAX_DEPTH`].
fn node(errors: &mut Errors, depths: &[u32], kind: ExprKind, span: Span) -> PExpr {
    let max = depths.iter().copied().max().unwrap_or(0);
    if max == TOO_DEEP {
        return PExpr { e: Expr { kind: ExprKind::Error, span }, d: TOO_DEEP };
    }
    if max + 1 > MAX_DEPTH {
        errors.push(RawError::Custom {
            start: span.start as usize,
            end: span.end as usize,
            message: format!("expression nested too deeply (more than {MAX_DEPTH} levels)"),
        });
        return PExpr { e: Expr { kind: ExprKind::Error, span }, d: TOO_DEEP };
    }
    PExpr { e: Expr { kind, span }, d: max + 1 }
}

pub fn unary(errors: &mut Errors, op: UnOp, x: PExpr, span: Span) -> PExpr {
    node(errors, &[x.d], ExprKind::Unary(op, Box::new(x.e)), span)
}

pub fn binary(errors: &mut Errors, op: BinOp, a: PExpr, b: PExpr, span: Span) -> PExpr {
    node(errors, &[a.d, b.d], ExprKind::Binary(op, Box::new(a.e), Box::new(b.e)), span)
}

/// `a |> b`. A flat chain `x |> f |> g |> ...` nests to the left, one level per stage;
/// its stages do not count as nesting (a chain of 300 layers is an ordinary program),
/// but a chain is limited to [`MAX_CHAIN`] stages.
pub fn pipe(errors: &mut Errors, a: PExpr, b: PExpr, span: Span) -> PExpr {
    if a.d == TOO_DEEP || b.d == TOO_DEEP {
        return PExpr { e: Expr { kind: ExprKind::Error, span }, d: TOO_DEEP };
    }
    if chain_len(&a.e) >= MAX_CHAIN {
        errors.push(RawError::Custom {
            start: span.start as usize,
            end: span.end as usize,
            message: format!("a chain of more than {MAX_CHAIN} `|>` stages"),
        });
        return PExpr { e: Expr { kind: ExprKind::Error, span }, d: TOO_DEEP };
    }
    let inner = node(errors, &[b.d], ExprKind::Error, span);
    if inner.d == TOO_DEEP {
        return inner;
    }
    PExpr { e: Expr { kind: ExprKind::Pipe(Box::new(a.e), Box::new(b.e)), span }, d: a.d.max(inner.d) }
}

/// The stages of a pipe chain along its left spine (0 for anything else), counted up to
/// [`MAX_CHAIN`].
fn chain_len(mut e: &Expr) -> u32 {
    let mut n = 0;
    while let ExprKind::Pipe(a, _) = &e.kind {
        n += 1;
        if n >= MAX_CHAIN {
            break;
        }
        e = a;
    }
    n
}

pub fn list(errors: &mut Errors, items: Vec<PExpr>, span: Span) -> PExpr {
    let depths: Vec<u32> = items.iter().map(|x| x.d).collect();
    let items = items.into_iter().map(|x| x.e).collect();
    node(errors, &depths, ExprKind::List(items), span)
}

pub fn call(errors: &mut Errors, f: PExpr, args: Vec<PArg>, span: Span) -> PExpr {
    let mut depths: Vec<u32> = args.iter().map(|a| a.1).collect();
    depths.push(f.d);
    let args = args.into_iter().map(|a| a.0).collect();
    node(errors, &depths, ExprKind::Call(Box::new(f.e), args), span)
}

/// `repeat(args)` or `stack(args)` used as an ordinary call.
pub fn keyword_call(errors: &mut Errors, name: Ident, args: Vec<PArg>, span: Span) -> PExpr {
    let callee = leaf(ExprKind::Name(name.node), name.span);
    call(errors, callee, args, span)
}

pub fn index(errors: &mut Errors, x: PExpr, items: Vec<PIndex>, span: Span) -> PExpr {
    let mut depths: Vec<u32> = items.iter().map(|a| a.1).collect();
    depths.push(x.d);
    let items = items.into_iter().map(|a| a.0).collect();
    node(errors, &depths, ExprKind::Index(Box::new(x.e), items), span)
}

pub fn field(errors: &mut Errors, x: PExpr, name: Ident, span: Span) -> PExpr {
    node(errors, &[x.d], ExprKind::Field(Box::new(x.e), name), span)
}

pub fn if_expr(errors: &mut Errors, c: PExpr, a: PExpr, b: PExpr, span: Span) -> PExpr {
    let kind = ExprKind::If(Box::new(c.e), Box::new(a.e), Box::new(b.e));
    node(errors, &[c.d, a.d, b.d], kind, span)
}

/// `{ lets; result }`; without lets this is just `result`.
pub fn block(errors: &mut Errors, lets: Vec<PLet>, result: PExpr, span: Span) -> PExpr {
    if lets.is_empty() {
        return result;
    }
    let mut depths: Vec<u32> = lets.iter().map(|l| l.1).collect();
    depths.push(result.d);
    let lets = lets.into_iter().map(|l| l.0).collect();
    node(errors, &depths, ExprKind::Block(lets, Box::new(result.e)), span)
}

pub fn let_binding(name: Ident, value: PExpr, span: Span) -> PLet {
    (LetBinding { name, value: value.e, choose: false, span }, value.d)
}

/// `choose name in [options]` inside a block expression.
pub fn choose_binding(errors: &mut Errors, name: Ident, options: Vec<PExpr>, list_span: Span, span: Span) -> PLet {
    let value = list(errors, options, list_span);
    (LetBinding { name, value: value.e, choose: true, span }, value.d)
}

pub fn repeat(errors: &mut Errors, count: PExpr, index: Option<Ident>, body: PExpr, stack: bool, span: Span) -> PExpr {
    let kind = ExprKind::Repeat { count: Box::new(count.e), index, body: Box::new(body.e), stack };
    node(errors, &[count.d, body.d], kind, span)
}

pub fn lambda(errors: &mut Errors, param: Ident, body: PExpr, span: Span) -> PExpr {
    node(errors, &[body.d], ExprKind::Lambda(param, Box::new(body.e)), span)
}

pub fn arg(name: Option<Ident>, value: PExpr, span: Span) -> PArg {
    (Arg { name, value: value.e, span }, value.d)
}

pub fn slice(start: Option<PExpr>, end: Option<PExpr>, step: Option<PExpr>, span: Span) -> PIndex {
    let d = [&start, &end, &step].iter().filter_map(|x| x.as_ref().map(|x| x.d)).max();
    let item = IndexItem::Slice { start: start.map(|x| x.e), end: end.map(|x| x.e), step: step.map(|x| x.e), span };
    (item, d.unwrap_or(0))
}

/// `use a.b.c`: the last segment is the imported name; `use a`: the module itself.
pub fn use_path(mut path: Vec<Ident>, span: Span) -> UseItem {
    if path.len() == 1 {
        return UseItem { path, names: UseNames::Module, span };
    }
    let last = path.pop().expect("non-empty path");
    UseItem { path, names: UseNames::List(vec![last]), span }
}
