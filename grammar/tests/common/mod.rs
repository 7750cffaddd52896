//! Helpers shared by the grammar tests: parsing shortcuts, comparing trees modulo
//! spans, and a compact S-expression view of expressions.
#![allow(dead_code)]

use archc_grammar::ast::*;
use archc_grammar::span::FileId;
use archc_grammar::{parse, ParseError};

pub const DESIGN: &str = include_str!("../data/design.arch");
pub const COVERAGE: &str = include_str!("../data/coverage.arch");

/// Parses and asserts there is no error.
pub fn parse_ok(src: &str) -> Module {
    let (m, errors) = parse(FileId(0), src);
    assert!(errors.is_empty(), "unexpected errors: {errors:#?}\nsource:\n{src}");
    m
}

pub fn parse_err(src: &str) -> (Module, Vec<ParseError>) {
    parse(FileId(0), src)
}

/// The `Debug` text of a value with every `Span { .. }` removed, so that trees parsed
/// from different texts can be compared.
pub fn without_spans<T: std::fmt::Debug>(v: &T) -> String {
    let text = format!("{v:?}");
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(i) = rest.find("Span {") {
        out.push_str(&rest[..i]);
        let close = rest[i..].find('}').expect("span closes") + i;
        out.push_str("Span");
        rest = &rest[close + 1..];
    }
    out.push_str(rest);
    out
}

/// The value expression of the first `let` statement of the first block item.
pub fn first_let_value(m: &Module) -> &Expr {
    for item in &m.items {
        if let Item::Block(b) = item {
            for s in &b.body {
                if let Stmt::Let { value, .. } = s {
                    return value;
                }
            }
        }
    }
    panic!("no let statement")
}

/// Parses `network T { let v = <expr> }` and returns the S-expression of `<expr>`.
pub fn sx(expr: &str) -> String {
    let src = format!("network T {{ let v = {expr} }}");
    sexpr(first_let_value(&parse_ok(&src)))
}

/// A compact, span-free rendering of an expression tree.
pub fn sexpr(e: &Expr) -> String {
    match &e.kind {
        ExprKind::Int(v) => v.to_string(),
        ExprKind::Float(v) => format!("{v:?}"),
        ExprKind::Bool(b) => b.to_string(),
        ExprKind::Str(s) => format!("{s:?}"),
        ExprKind::Name(n) => n.clone(),
        ExprKind::Skip => "skip".into(),
        ExprKind::List(xs) => format!("[{}]", join(xs.iter().map(sexpr))),
        ExprKind::Unary(op, x) => format!("({} {})", if *op == UnOp::Neg { "neg" } else { "not" }, sexpr(x)),
        ExprKind::Binary(op, a, b) => format!("({} {} {})", op.symbol(), sexpr(a), sexpr(b)),
        ExprKind::Pipe(a, b) => format!("(|> {} {})", sexpr(a), sexpr(b)),
        ExprKind::Call(f, args) => format!("(call {} {})", sexpr(f), join(args.iter().map(arg))),
        ExprKind::Index(x, items) => format!("(index {} {})", sexpr(x), join(items.iter().map(index_item))),
        ExprKind::Field(x, n) => format!("(. {} {})", sexpr(x), n.node),
        ExprKind::If(c, a, b) => format!("(if {} {} {})", sexpr(c), sexpr(a), sexpr(b)),
        ExprKind::Block(lets, r) => {
            let lets = lets.iter().map(|l| format!("(let {} {})", l.name.node, sexpr(&l.value)));
            format!("(block {} {})", join(lets), sexpr(r))
        }
        ExprKind::Repeat { count, index, body, stack } => format!(
            "({} {}{} {})",
            if *stack { "stack" } else { "repeat" },
            sexpr(count),
            index.as_ref().map(|i| format!(" as {}", i.node)).unwrap_or_default(),
            sexpr(body)
        ),
        ExprKind::Lambda(p, b) => format!("(=> {} {})", p.node, sexpr(b)),
        ExprKind::Error => "<error>".into(),
    }
}

fn arg(a: &Arg) -> String {
    match &a.name {
        Some(n) => format!("{}={}", n.node, sexpr(&a.value)),
        None => sexpr(&a.value),
    }
}

fn index_item(i: &IndexItem) -> String {
    let opt = |e: &Option<Expr>| e.as_ref().map(sexpr).unwrap_or_default();
    match i {
        IndexItem::Expr(e) => sexpr(e),
        IndexItem::Ellipsis(_) => "...".into(),
        IndexItem::Slice { start, end, step, .. } => {
            format!("{}:{}:{}", opt(start), opt(end), opt(step))
        }
    }
}

fn join(parts: impl Iterator<Item = String>) -> String {
    parts.collect::<Vec<_>>().join(" ")
}

/// The module with its `use` items moved first (stable), as the formatter prints them.
pub fn uses_first(mut m: Module) -> Module {
    let (uses, others): (Vec<Item>, Vec<Item>) = m.items.into_iter().partition(|i| matches!(i, Item::Use(_)));
    m.items = uses.into_iter().chain(others).collect();
    m
}

/// Checks the formatter's properties on an error-free source: the output parses without
/// errors to the same tree (modulo spans and the position of `use` items), formatting is
/// idempotent, and no comment is lost. Returns the formatted text.
pub fn check_roundtrip(src: &str) -> String {
    let m1 = parse_ok(src);
    let f1 = archc_grammar::format_module(&m1, src).expect("formats");
    let (m2, errors) = parse(FileId(0), &f1);
    assert!(errors.is_empty(), "formatted text has errors: {errors:#?}\n--- input:\n{src}\n--- formatted:\n{f1}");
    assert_eq!(
        without_spans(&uses_first(m1)),
        without_spans(&m2),
        "tree changed\n--- input:\n{src}\n--- formatted:\n{f1}"
    );
    let f2 = archc_grammar::format_module(&m2, &f1).expect("formats again");
    assert_eq!(f1, f2, "not idempotent\n--- input:\n{src}");
    assert_eq!(comment_texts(src), comment_texts(&f1), "comments lost\n--- input:\n{src}\n--- formatted:\n{f1}");
    f1
}

/// The sorted texts of all comments (lines trimmed), to check that none is lost.
pub fn comment_texts(src: &str) -> Vec<String> {
    let mut texts: Vec<String> = archc_grammar::lexer::comments(src)
        .iter()
        .map(|c| c.text.lines().map(str::trim).collect::<Vec<_>>().join("\n"))
        .collect();
    texts.sort();
    texts
}
