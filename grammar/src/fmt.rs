//! The canonical formatter.
//!
//! Contract: [`format_module`] prints an error-free module in canonical form, or returns
//! `None` when the module contains error nodes ([`format_source`] also refuses a source
//! with any lexical or syntax error). The output parses to the same tree (modulo spans),
//! and formatting it again gives the same text.
//!
//! Layout: 4-space indentation, one statement / entry / `let` per line, `use` items
//! first (in source order, as one group), then the other items in source order, one
//! blank line between items, spaces around binary operators, `name = value` for keyword arguments, minimal
//! parentheses. Block expressions with `let`s are printed on several lines with a `;`
//! after every `let`. A statement whose value is a pipe chain too long for one line
//! (over 100 columns) gets one `|> stage` per continuation line; other long lines are not
//! broken. A `repeat` count that is not a plain name, literal, call, field or
//! index is printed in braces: `repeat { n - 1 } { .. }`.
//!
//! Comments are kept. A comment on the line of the end of an item, statement, entry or
//! block-expression line stays at the end of that line; every other comment is printed on
//! its own line before the next item / statement / entry / `let` / block end that follows
//! it; a comment inside an item that no line of it takes (`use // c` + newline +
//! `nn.Linear`) goes on its own line before the item, where it stays on every later pass.
//! Limitations: comments inside a one-line expression move to their own line before
//! what follows the expression; blank lines inside blocks are not kept; comments in the
//! leading run of a file (before the first item) that is followed by a blank line stay at
//! the top, other comments travel with the item they precede when `use` items are
//! moved first.

use crate::ast::*;
use crate::lexer::{comments, Comment, KEYWORDS};
use crate::span::{FileId, Span};

/// Formats `src`, or `None` when it has any lexical or syntax error.
pub fn format_source(src: &str) -> Option<String> {
    let (module, errors) = crate::parse(FileId(0), src);
    if !errors.is_empty() {
        return None;
    }
    format_module(&module, src)
}

/// Formats a parsed module; `src` is the text it was parsed from (for comments and the
/// spelling of float literals). `None` when the module contains error nodes.
pub fn format_module(m: &Module, src: &str) -> Option<String> {
    if has_errors(m) {
        return None;
    }
    let mut p = Printer::new(src);
    p.module(m);
    Some(p.finish())
}

/// One expression as `archc fmt` prints it (no comments; float literals in their
/// shortest form), e.g. to name a search option.
pub fn format_expr(e: &Expr) -> String {
    let mut p = Printer::new("");
    p.expr(e, 0);
    p.finish().trim().to_string()
}

// ---------------------------------------------------------------- error detection

/// Whether the module contains any `Item::Error`, `Stmt::Error` or `ExprKind::Error`.
pub fn has_errors(m: &Module) -> bool {
    m.items.iter().any(item_has_errors)
}

fn item_has_errors(item: &Item) -> bool {
    match item {
        Item::Error(_) => true,
        Item::Use(_) => false,
        Item::Fn(f) => fn_has_errors(f),
        Item::Block(b) => b.params.iter().any(param_has_errors) || b.body.iter().any(stmt_has_errors),
        Item::Train(t) => {
            expr_has_errors(&t.model) || expr_has_errors(&t.data) || t.entries.iter().any(|e| expr_has_errors(&e.value))
        }
        Item::Adapt(a) => a.entries.iter().any(|e| expr_has_errors(&e.value)),
    }
}

fn fn_has_errors(f: &FnDef) -> bool {
    f.params.iter().any(param_has_errors) || f.ret.as_ref().is_some_and(type_has_errors) || expr_has_errors(&f.body)
}

fn param_has_errors(p: &ParamDef) -> bool {
    p.ty.as_ref().is_some_and(type_has_errors) || opt_has_errors(&p.default)
}

fn type_has_errors(t: &TypeExpr) -> bool {
    match t {
        TypeExpr::Named(_) => false,
        TypeExpr::Tensor { dims, .. } => dims.iter().any(|d| match d {
            DimExpr::Ellipsis(_) => false,
            DimExpr::Expr(e) => expr_has_errors(e),
        }),
    }
}

fn stmt_has_errors(s: &Stmt) -> bool {
    match s {
        Stmt::Error(_) => true,
        Stmt::Param { ty, init, cond, .. } => type_has_errors(ty) || opt_has_errors(init) || opt_has_errors(cond),
        Stmt::Input { ty, .. } => type_has_errors(ty),
        Stmt::Output { ty, value, .. } | Stmt::Let { ty, value, .. } => {
            ty.as_ref().is_some_and(type_has_errors) || expr_has_errors(value)
        }
        Stmt::Choose { options, .. } => options.iter().any(expr_has_errors),
        Stmt::Forward(f) => fn_has_errors(f),
    }
}

fn opt_has_errors(e: &Option<Expr>) -> bool {
    e.as_ref().is_some_and(expr_has_errors)
}

fn expr_has_errors(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Error => true,
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Str(_)
        | ExprKind::Name(_)
        | ExprKind::Skip => false,
        ExprKind::List(xs) => xs.iter().any(expr_has_errors),
        ExprKind::Unary(_, x) | ExprKind::Field(x, _) | ExprKind::Lambda(_, x) => expr_has_errors(x),
        ExprKind::Binary(_, a, b) | ExprKind::Pipe(a, b) => expr_has_errors(a) || expr_has_errors(b),
        ExprKind::Call(f, args) => expr_has_errors(f) || args.iter().any(|a| expr_has_errors(&a.value)),
        ExprKind::Index(x, items) => expr_has_errors(x) || items.iter().any(index_has_errors),
        ExprKind::If(c, a, b) => expr_has_errors(c) || expr_has_errors(a) || expr_has_errors(b),
        ExprKind::Block(lets, r) => lets.iter().any(|l| expr_has_errors(&l.value)) || expr_has_errors(r),
        ExprKind::Repeat { count, body, .. } => expr_has_errors(count) || expr_has_errors(body),
    }
}

fn index_has_errors(i: &IndexItem) -> bool {
    match i {
        IndexItem::Expr(e) => expr_has_errors(e),
        IndexItem::Slice { start, end, step, .. } => {
            opt_has_errors(start) || opt_has_errors(end) || opt_has_errors(step)
        }
        IndexItem::Ellipsis(_) => false,
    }
}

// ---------------------------------------------------------------- precedence

/// Binding strength of each expression form (higher binds tighter).
mod prec {
    pub const LAMBDA: u8 = 0;
    pub const PIPE: u8 = 1;
    pub const OR: u8 = 2;
    pub const AND: u8 = 3;
    pub const CMP: u8 = 4;
    pub const SUM: u8 = 5;
    pub const PROD: u8 = 6;
    pub const MATMUL: u8 = 7;
    pub const UNARY: u8 = 8;
    pub const POW: u8 = 9;
    pub const POSTFIX: u8 = 10;
    pub const ATOM: u8 = 11;
}

fn expr_prec(e: &Expr) -> u8 {
    match &e.kind {
        ExprKind::Lambda(..) => prec::LAMBDA,
        ExprKind::Pipe(..) => prec::PIPE,
        ExprKind::Binary(op, ..) => binop_prec(*op),
        ExprKind::Unary(..) => prec::UNARY,
        ExprKind::Call(..) | ExprKind::Index(..) | ExprKind::Field(..) => prec::POSTFIX,
        _ => prec::ATOM,
    }
}

fn binop_prec(op: BinOp) -> u8 {
    use BinOp::*;
    match op {
        Or => prec::OR,
        And => prec::AND,
        Eq | Ne | Lt | Le | Gt | Ge => prec::CMP,
        Add | Sub => prec::SUM,
        Mul | Div | Rem => prec::PROD,
        MatMul => prec::MATMUL,
        Pow => prec::POW,
    }
}

/// The minimum precedences of the left and right operands of `op`.
fn operand_precs(op: BinOp) -> (u8, u8) {
    let p = binop_prec(op);
    match op {
        BinOp::Pow => (prec::POSTFIX, prec::UNARY),
        BinOp::Eq | BinOp::Ne | BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => (p + 1, p + 1),
        _ => (p, p + 1),
    }
}

/// Whether `e` can be written as the count of `repeat COUNT { .. }` without braces: a
/// name, literal or `if`, followed by calls, indexing or fields.
fn is_plain_count(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Str(_)
        | ExprKind::Bool(_)
        | ExprKind::Skip
        | ExprKind::If(..) => true,
        ExprKind::Name(n) => !KEYWORDS.contains(&n.as_str()),
        ExprKind::Call(x, _) | ExprKind::Index(x, _) | ExprKind::Field(x, _) => is_plain_count(x),
        _ => false,
    }
}

// ---------------------------------------------------------------- printer

/// Lines longer than this are broken at `|>` where the expression is a pipe chain.
const MAX_WIDTH: usize = 100;

struct Printer<'a> {
    src: &'a str,
    out: String,
    indent: usize,
    comments: Vec<Comment>,
    taken: Vec<bool>,
    /// Comments before this offset belong to an enclosing or earlier construct.
    lo: usize,
}

impl<'a> Printer<'a> {
    fn new(src: &'a str) -> Self {
        let comments = comments(src);
        let taken = vec![false; comments.len()];
        Printer { src, out: String::new(), indent: 0, comments, taken, lo: 0 }
    }

    fn finish(self) -> String {
        let mut lines: Vec<&str> = self.out.lines().map(str::trim_end).collect();
        while lines.first().is_some_and(|l| l.is_empty()) {
            lines.remove(0);
        }
        while lines.last().is_some_and(|l| l.is_empty()) {
            lines.pop();
        }
        if lines.is_empty() {
            return String::new();
        }
        lines.join("\n") + "\n"
    }

    fn push(&mut self, s: &str) {
        self.out.push_str(s);
    }

    /// Starts a new line at the current indentation.
    fn nl(&mut self) {
        self.out.push('\n');
        for _ in 0..self.indent {
            self.out.push_str("    ");
        }
    }

    // ------------------------------------------------------------ comments

    /// Prints, each on its own line, the comments not yet printed that start in
    /// `[lo, hi)`.
    fn flush_range(&mut self, lo: usize, hi: usize) {
        for i in 0..self.comments.len() {
            let c = &self.comments[i];
            if self.taken[i] || c.start < lo || c.start >= hi {
                continue;
            }
            self.taken[i] = true;
            let text = c.text.clone();
            self.nl();
            self.push(&text);
        }
    }

    fn flush_lines(&mut self, hi: usize) {
        self.flush_range(self.lo, hi);
    }

    /// The comment that ends the line of a construct ending at `end`, if any: it starts
    /// after `end` with only blanks, `;` or `,` in between.
    fn trailing_comment(&self, end: usize) -> Option<usize> {
        let i = self.comments.partition_point(|c| c.start < end);
        let c = self.comments.get(i)?;
        let gap = self.src.get(end..c.start)?;
        let same_line = gap.chars().all(|ch| ch == ';' || ch == ',' || ch == ' ' || ch == '\t');
        (same_line && !self.taken[i]).then_some(i)
    }

    /// Appends the trailing comment of a construct ending at `end`.
    fn trailing(&mut self, end: usize) {
        if let Some(i) = self.trailing_comment(end) {
            self.taken[i] = true;
            let text = self.comments[i].text.clone();
            self.push(" ");
            self.push(&text);
        }
    }

    /// End of the construct ending at `end`, its trailing comment included.
    fn end_with_trailing(&self, end: usize) -> usize {
        self.trailing_comment(end).map_or(end, |i| self.comments[i].end)
    }

    // ------------------------------------------------------------ module

    fn module(&mut self, m: &Module) {
        let first_start = m.items.iter().map(|i| i.span().start as usize).min();
        let header = self.header_end(first_start.unwrap_or(usize::MAX));
        self.flush_range(0, header);
        let mut leading_lo = Vec::with_capacity(m.items.len());
        let mut prev_end = header;
        for item in &m.items {
            leading_lo.push(prev_end);
            prev_end = self.end_with_trailing(item.span().end as usize);
        }
        let mut prev: Option<&Item> = None;
        for i in item_order(m) {
            let item = &m.items[i];
            let both_uses = matches!((prev, item), (Some(Item::Use(_)), Item::Use(_)));
            if (prev.is_some() || header > 0) && !both_uses {
                self.out.push('\n');
            }
            prev = Some(item);
            self.item_with_comments(item, leading_lo[i]);
        }
        if !self.out.is_empty() && self.taken.iter().any(|t| !t) {
            self.out.push('\n');
        }
        self.flush_range(0, usize::MAX);
    }

    /// End of the file's header: the leading comments before `first_item` that are
    /// followed by a blank line (0 when there are none).
    fn header_end(&self, first_item: usize) -> usize {
        let mut end = 0;
        for (i, c) in self.comments.iter().enumerate() {
            if c.start >= first_item {
                break;
            }
            let next = self.comments.get(i + 1).map_or(first_item, |n| n.start.min(first_item));
            let gap = self.src.get(c.end..next.min(self.src.len())).unwrap_or("");
            if gap.matches('\n').count() >= 2 || next == usize::MAX {
                end = c.end;
            }
        }
        end
    }

    fn item_with_comments(&mut self, item: &Item, leading_lo: usize) {
        let span = item.span();
        let (start, end) = (span.start as usize, span.end as usize);
        self.flush_range(leading_lo, start);
        self.lo = start;
        let before = self.out.len();
        self.nl();
        self.item(item);
        self.trailing(end);
        // Comments inside the item that no line of it took (`use // c` + newline +
        // `nn.Linear`) go on their own lines before it: formatting the output again
        // finds them there as the item's leading comments, so the result is a fixed point.
        let printed = self.out.split_off(before);
        self.flush_range(start, end);
        self.out.push_str(&printed);
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Use(u) => self.use_item(u),
            Item::Fn(f) => self.fn_def(f),
            Item::Block(b) => self.block_def(b),
            Item::Train(t) => self.train(t),
            Item::Adapt(a) => self.adapt(a),
            Item::Error(_) => {}
        }
    }

    fn use_item(&mut self, u: &UseItem) {
        self.push("use ");
        self.push(&join_idents(&u.path, "."));
        match &u.names {
            UseNames::Module => {}
            UseNames::Glob => self.push(".*"),
            UseNames::List(names) if names.len() == 1 => {
                self.push(".");
                self.push(&names[0].node);
            }
            UseNames::List(names) => {
                self.push(".{");
                self.push(&join_idents(names, ", "));
                self.push("}");
            }
        }
    }

    fn fn_def(&mut self, f: &FnDef) {
        self.push("fn ");
        if let Some(name) = &f.name {
            self.push(&name.node);
        }
        self.params(&f.params);
        if let Some(ret) = &f.ret {
            self.push(" -> ");
            self.ty(ret);
        }
        self.push(" ");
        self.braced_lines(&f.body, f.span.end as usize);
    }

    fn params(&mut self, params: &[ParamDef]) {
        self.push("(");
        for (i, p) in params.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.push(&p.name.node);
            if let Some(t) = &p.ty {
                self.push(": ");
                self.ty(t);
            }
            if let Some(d) = &p.default {
                self.push(" = ");
                self.expr(d, prec::LAMBDA);
            }
        }
        self.push(")");
    }

    fn block_def(&mut self, b: &BlockDef) {
        self.push(match b.kind {
            BlockKind::Layer => "layer ",
            BlockKind::Network => "network ",
            BlockKind::Operator => "operator ",
        });
        self.push(&b.name.node);
        if !b.params.is_empty() {
            self.params(&b.params);
        }
        if !b.grid.is_empty() {
            self.push(" over grid ");
            self.push(&join_idents(&b.grid, ", "));
        }
        self.push(" {");
        self.indent += 1;
        for s in &b.body {
            self.stmt_line(s);
        }
        self.close_block(b.span.end as usize);
    }

    /// Prints the comments left before `close`, then `}` on its own line.
    fn close_block(&mut self, close: usize) {
        self.flush_lines(close);
        self.indent -= 1;
        if self.out.ends_with('{') {
            self.push("}");
        } else {
            self.nl();
            self.push("}");
        }
    }

    fn train(&mut self, t: &TrainDef) {
        self.push("train ");
        self.expr(&t.model, prec::LAMBDA);
        self.push(" on ");
        self.expr(&t.data, prec::LAMBDA);
        self.entries(&t.entries, t.span.end as usize);
    }

    fn adapt(&mut self, a: &AdaptDef) {
        self.push("adapt ");
        self.push(&join_idents(&a.target, "."));
        self.entries(&a.entries, a.span.end as usize);
    }

    fn entries(&mut self, entries: &[Entry], close: usize) {
        self.push(" {");
        self.indent += 1;
        for e in entries {
            self.flush_lines(e.span.start as usize);
            self.nl();
            self.push(&e.key.node);
            self.push(": ");
            self.expr_stmt(&e.value);
            self.trailing(e.span.end as usize);
        }
        self.close_block(close);
    }

    // ------------------------------------------------------------ statements

    fn stmt_line(&mut self, s: &Stmt) {
        let span = s.span();
        self.flush_lines(span.start as usize);
        self.nl();
        self.stmt(s);
        self.trailing(span.end as usize);
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Param { name, ty, init, cond, buffer, .. } => {
                self.push(if *buffer { "buffer " } else { "param " });
                self.typed_name(name, Some(ty));
                self.opt_expr(" = ", init);
                self.opt_expr(" if ", cond);
            }
            Stmt::Input { name, ty, .. } => {
                self.push("input ");
                self.typed_name(name, Some(ty));
            }
            Stmt::Output { name, ty, value, .. } => {
                self.push("output ");
                self.typed_name(name, ty.as_ref());
                self.push(" = ");
                self.expr_stmt(value);
            }
            Stmt::Let { name, ty, value, .. } => {
                self.push("let ");
                self.typed_name(name, ty.as_ref());
                self.push(" = ");
                self.expr_stmt(value);
            }
            Stmt::Choose { name, options, shared, .. } => self.choose(name, options, *shared),
            Stmt::Forward(f) => self.fn_def(f),
            Stmt::Error(_) => {}
        }
    }

    fn typed_name(&mut self, name: &Ident, ty: Option<&TypeExpr>) {
        self.push(&name.node);
        if let Some(t) = ty {
            self.push(": ");
            self.ty(t);
        }
    }

    fn opt_expr(&mut self, prefix: &str, e: &Option<Expr>) {
        if let Some(e) = e {
            self.push(prefix);
            self.expr(e, prec::LAMBDA);
        }
    }

    fn choose(&mut self, name: &Ident, options: &[Expr], shared: bool) {
        self.push("choose ");
        self.push(&name.node);
        self.push(" in ");
        self.list(options);
        if shared {
            self.push(" shared");
        }
    }

    // ------------------------------------------------------------ types

    fn ty(&mut self, t: &TypeExpr) {
        match t {
            TypeExpr::Named(n) => self.push(&n.node),
            TypeExpr::Tensor { dtype, dims, .. } => {
                self.push(&dtype.node);
                self.push("[");
                for (i, d) in dims.iter().enumerate() {
                    if i > 0 {
                        self.push(", ");
                    }
                    match d {
                        DimExpr::Ellipsis(_) => self.push("..."),
                        DimExpr::Expr(e) => self.expr(e, prec::LAMBDA),
                    }
                }
                self.push("]");
            }
        }
    }

    // ------------------------------------------------------------ expressions

    /// Prints the whole expression of a statement line; a pipe chain that would make the
    /// line longer than [`MAX_WIDTH`] is broken before every `|>`.
    fn expr_stmt(&mut self, e: &Expr) {
        let (start, taken) = (self.out.len(), self.taken.clone());
        self.expr(e, prec::LAMBDA);
        let added = &self.out[start..];
        let line_start = self.out[..start].rfind('\n').map_or(0, |i| i + 1);
        let width = self.out[line_start..].chars().count();
        if !matches!(e.kind, ExprKind::Pipe(..)) || added.contains('\n') || width <= MAX_WIDTH {
            return;
        }
        self.out.truncate(start);
        self.taken = taken;
        self.pipe_lines(e);
    }

    /// `a` then `|> stage` on continuation lines, one per stage.
    fn pipe_lines(&mut self, e: &Expr) {
        let mut stages = Vec::new();
        let mut head = e;
        while let ExprKind::Pipe(a, b) = &head.kind {
            stages.push(b.as_ref());
            head = a;
        }
        self.expr(head, prec::PIPE);
        self.indent += 1;
        for stage in stages.into_iter().rev() {
            self.nl();
            self.push("|> ");
            self.expr(stage, prec::OR);
        }
        self.indent -= 1;
    }

    /// Prints `e` in a position that needs at least precedence `min`.
    fn expr(&mut self, e: &Expr, min: u8) {
        let paren = expr_prec(e) < min;
        if paren {
            self.push("(");
        }
        self.expr_bare(e);
        if paren {
            self.push(")");
        }
    }

    fn expr_bare(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Int(v) => self.push(&v.to_string()),
            ExprKind::Float(v) => self.float(*v, e.span),
            ExprKind::Bool(b) => self.push(if *b { "true" } else { "false" }),
            ExprKind::Str(s) => self.push(&quote(s)),
            ExprKind::Name(n) => self.push(n),
            ExprKind::Skip => self.push("skip"),
            ExprKind::List(xs) => self.list(xs),
            ExprKind::Unary(op, x) => {
                self.push(if *op == UnOp::Neg { "-" } else { "!" });
                self.expr(x, prec::UNARY);
            }
            ExprKind::Binary(op, a, b) => self.binary(*op, a, b),
            ExprKind::Pipe(a, b) => {
                self.expr(a, prec::PIPE);
                self.push(" |> ");
                self.expr(b, prec::OR);
            }
            ExprKind::Call(f, args) => self.call(f, args),
            ExprKind::Index(x, items) => self.index(x, items),
            ExprKind::Field(x, name) => {
                self.expr(x, prec::POSTFIX);
                self.push(".");
                self.push(&name.node);
            }
            ExprKind::If(c, a, b) => self.if_expr(c, a, b),
            ExprKind::Block(..) => self.braced_lines(e, e.span.end as usize),
            ExprKind::Repeat { count, index, body, stack } => self.repeat(count, index.as_ref(), body, *stack),
            ExprKind::Lambda(p, body) => {
                self.push(&p.node);
                self.push(" => ");
                self.expr(body, prec::LAMBDA);
            }
            ExprKind::Error => {}
        }
    }

    /// A float as written in the source when that spelling means the same value.
    fn float(&mut self, v: f64, span: Span) {
        let written = self.src.get(span.range()).filter(|s| s.parse::<f64>() == Ok(v));
        let text = match written {
            Some(s) if crate::lexer::lex(s).0.len() == 1 && s.contains(['.', 'e', 'E']) => s.to_string(),
            _ => format!("{v:?}"),
        };
        self.push(&text);
    }

    fn binary(&mut self, op: BinOp, a: &Expr, b: &Expr) {
        let (lp, rp) = operand_precs(op);
        self.expr(a, lp);
        self.push(" ");
        self.push(op.symbol());
        self.push(" ");
        self.expr(b, rp);
    }

    fn list(&mut self, xs: &[Expr]) {
        self.push("[");
        for (i, x) in xs.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            self.expr(x, prec::LAMBDA);
        }
        self.push("]");
    }

    fn call(&mut self, f: &Expr, args: &[Arg]) {
        self.expr(f, prec::POSTFIX);
        self.push("(");
        for (i, a) in args.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            if let Some(n) = &a.name {
                self.push(&n.node);
                self.push(" = ");
            }
            self.expr(&a.value, prec::LAMBDA);
        }
        self.push(")");
    }

    fn index(&mut self, x: &Expr, items: &[IndexItem]) {
        self.expr(x, prec::POSTFIX);
        self.push("[");
        for (i, item) in items.iter().enumerate() {
            if i > 0 {
                self.push(", ");
            }
            match item {
                IndexItem::Expr(e) => self.expr(e, prec::LAMBDA),
                IndexItem::Ellipsis(_) => self.push("..."),
                IndexItem::Slice { start, end, step, .. } => self.slice(start, end, step),
            }
        }
        self.push("]");
    }

    fn slice(&mut self, start: &Option<Expr>, end: &Option<Expr>, step: &Option<Expr>) {
        self.opt_expr("", start);
        self.push(":");
        self.opt_expr("", end);
        self.opt_expr(":", step);
    }

    fn if_expr(&mut self, c: &Expr, a: &Expr, b: &Expr) {
        self.push("if ");
        self.expr(c, prec::LAMBDA);
        self.push(" ");
        self.braced_inline(a);
        self.push(" else ");
        if let ExprKind::If(c2, a2, b2) = &b.kind {
            self.if_expr(c2, a2, b2);
        } else {
            self.braced_inline(b);
        }
    }

    fn repeat(&mut self, count: &Expr, index: Option<&Ident>, body: &Expr, stack: bool) {
        if stack {
            self.push("stack(");
            self.expr(count, prec::LAMBDA);
            self.push(")");
        } else if is_plain_count(count) {
            self.push("repeat ");
            self.expr(count, prec::POSTFIX);
        } else {
            self.push("repeat { ");
            self.expr(count, prec::LAMBDA);
            self.push(" }");
        }
        if let Some(i) = index {
            self.push(" as ");
            self.push(&i.node);
        }
        self.push(" ");
        self.braced_inline(body);
    }

    /// `{ e }` on one line, or on several lines when `e` is a block with lets.
    fn braced_inline(&mut self, e: &Expr) {
        if let ExprKind::Block(..) = e.kind {
            self.braced_lines(e, e.span.end as usize);
        } else {
            self.push("{ ");
            self.expr(e, prec::LAMBDA);
            self.push(" }");
        }
    }

    /// `{`, the lets and result of `e` one per line, `}`; comments before `close` that
    /// are still pending are printed before the `}`.
    fn braced_lines(&mut self, e: &Expr, close: usize) {
        self.push("{");
        self.indent += 1;
        let result = match &e.kind {
            ExprKind::Block(lets, result) => {
                for (i, l) in lets.iter().enumerate() {
                    let last = i + 1 == lets.len();
                    self.let_line(l, last && needs_semicolon_before(result));
                }
                result.as_ref()
            }
            _ => e,
        };
        self.flush_lines(result.span.start as usize);
        self.nl();
        self.expr_stmt(result);
        self.trailing(result.span.end as usize);
        self.close_block(close);
    }

    fn let_line(&mut self, l: &LetBinding, semicolon: bool) {
        self.flush_lines(l.span.start as usize);
        self.nl();
        self.push(if l.choose { "choose " } else { "let " });
        self.push(&l.name.node);
        self.push(if l.choose { " in " } else { " = " });
        self.expr_stmt(&l.value);
        if semicolon {
            self.push(";");
        }
        self.trailing(l.span.end as usize);
    }
}

/// Whether a block's result would continue the last `let` without a `;`: it starts with
/// `-` or `!` (read as a binary operator or rejected), `{`, or is a lambda. A `(` or `[`
/// at the start of a line always begins a new expression.
fn needs_semicolon_before(e: &Expr) -> bool {
    match &e.kind {
        ExprKind::Unary(..) | ExprKind::Block(..) | ExprKind::Lambda(..) => true,
        ExprKind::Binary(_, a, _) | ExprKind::Pipe(a, _) => needs_semicolon_before(a),
        ExprKind::Call(f, _) | ExprKind::Index(f, _) | ExprKind::Field(f, _) => needs_semicolon_before(f),
        ExprKind::Int(v) => *v < 0,
        ExprKind::Float(v) => v.is_sign_negative(),
        _ => false,
    }
}

/// The order items are printed in: `use` items first, each group in source order.
fn item_order(m: &Module) -> Vec<usize> {
    let is_use = |i: &usize| matches!(m.items[*i], Item::Use(_));
    let uses = (0..m.items.len()).filter(is_use);
    let others = (0..m.items.len()).filter(|i| !is_use(i));
    uses.chain(others).collect()
}

fn join_idents(ids: &[Ident], sep: &str) -> String {
    ids.iter().map(|i| i.node.as_str()).collect::<Vec<_>>().join(sep)
}

/// A string literal with the escapes of the language.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}
