//! Name resolution of a whole module before evaluation, so that every unknown name in
//! a file is reported at once, each once: evaluation treats the uses reported here as
//! poison. Items that did not parse are skipped (their names may be lost to the error).
//! Names declared twice in one block are reported, and the block counts as broken.
//!
//! Names in the dims of `input` and `fn` parameter types may be new: they introduce
//! symbolic dims. Keys of `train`/`adapt` entries and dataset names are checked later.

use super::modules::ModuleInfo;
use crate::diag::{did_you_mean, Diagnostic};
use archc_grammar::ast::{DimExpr, Expr, ExprKind, FnDef, IndexItem, Item, Stmt, TypeExpr};
use archc_grammar::span::Span;
use std::collections::HashSet;

struct Resolver<'a> {
    module: &'a ModuleInfo,
    scopes: Vec<HashSet<String>>,
    out: Resolution,
}

/// What resolving a module found.
#[derive(Default)]
pub struct Resolution {
    pub errors: Vec<Diagnostic>,
    /// Where unknown names are used (each reported in `errors`).
    pub unknown: HashSet<Span>,
    /// Where names are declared a second time (each reported in `errors`).
    pub clashes: Vec<Span>,
}

pub fn resolve_module(modules: &[ModuleInfo], m: usize) -> Resolution {
    let module = &modules[m];
    let mut r = Resolver { module, scopes: Vec::new(), out: Resolution::default() };
    for item in module.ast.items.iter().filter(|i| !module.is_broken(i.span())) {
        r.scopes.clear();
        r.item(item);
    }
    r.out
}

impl Resolver<'_> {
    fn known(&self, name: &str) -> bool {
        self.scopes.iter().any(|s| s.contains(name))
            || self.module.globals.get(name).is_some()
            || super::builtins::lookup(name).is_some()
            || name == "training"
    }

    fn push(&mut self, names: impl IntoIterator<Item = String>) {
        self.scopes.push(names.into_iter().collect());
    }

    fn item(&mut self, item: &Item) {
        match item {
            Item::Block(b) => {
                self.duplicates(b.params.iter().map(|p| &p.name).chain(b.body.iter().filter_map(declared_name)));
                let mut names: Vec<String> = b.params.iter().map(|p| p.name.node.clone()).collect();
                names.extend(b.grid.iter().map(|g| g.node.clone()));
                for s in &b.body {
                    names.extend(stmt_names(s));
                }
                self.push(names);
                for p in &b.params {
                    if let Some(d) = &p.default {
                        self.expr(d);
                    }
                }
                for s in &b.body {
                    self.stmt(s);
                }
            }
            Item::Fn(f) => self.func(f),
            Item::Train(t) => {
                if let ExprKind::Call(callee, args) = &t.model.kind {
                    self.expr(callee);
                    for a in args {
                        self.expr(&a.value);
                    }
                } else {
                    self.expr(&t.model);
                }
            }
            Item::Adapt(a) => {
                if let Some(first) = a.target.first() {
                    if !self.known(&first.node) {
                        self.unknown(&first.node, first.span);
                    }
                }
            }
            Item::Use(_) | Item::Error(_) => {}
        }
    }

    /// Reports names declared twice (params, inputs, outputs, choices; `let` may shadow).
    fn duplicates<'i>(&mut self, names: impl Iterator<Item = &'i archc_grammar::ast::Ident>) {
        let mut seen: Vec<&archc_grammar::ast::Ident> = Vec::new();
        for n in names {
            if let Some(prev) = seen.iter().find(|p| p.node == n.node) {
                self.out.errors.push(
                    Diagnostic::error(format!("`{}` is defined twice", n.node), n.span)
                        .with_related(prev.span, "first defined here"),
                );
                self.out.clashes.push(n.span);
            } else {
                seen.push(n);
            }
        }
    }

    fn func(&mut self, f: &FnDef) {
        self.duplicates(f.params.iter().map(|p| &p.name));
        let mut names: Vec<String> = f.params.iter().map(|p| p.name.node.clone()).collect();
        for p in &f.params {
            if let Some(t) = &p.ty {
                names.extend(type_names(t));
            }
        }
        if let Some(t) = &f.ret {
            names.extend(type_names(t));
        }
        self.push(names);
        for p in &f.params {
            if let Some(d) = &p.default {
                self.expr(d);
            }
        }
        self.expr(&f.body);
        self.scopes.pop();
    }

    fn stmt(&mut self, s: &Stmt) {
        match s {
            Stmt::Param { ty, init, cond, .. } => {
                if let TypeExpr::Tensor { dims, .. } = ty {
                    for d in dims {
                        if let DimExpr::Expr(e) = d {
                            self.expr(e);
                        }
                    }
                }
                init.iter().chain(cond.iter()).for_each(|e| self.expr(e));
            }
            Stmt::Output { value, .. } | Stmt::Let { value, .. } => self.expr(value),
            Stmt::Choose { options, .. } => options.iter().for_each(|o| self.expr(o)),
            Stmt::Forward(f) => self.func(f),
            Stmt::Input { .. } | Stmt::Error(_) => {}
        }
    }

    fn unknown(&mut self, name: &str, span: Span) {
        if self.module.unknown_glob || !self.out.unknown.insert(span) {
            return;
        }
        let mut candidates: Vec<String> = self.scopes.iter().flat_map(|s| s.iter().cloned()).collect();
        candidates.extend(self.module.globals.names());
        candidates.extend(super::builtins::BUILTINS.iter().map(|s| s.to_string()));
        let mut d = Diagnostic::error(format!("unknown name `{name}`"), span).with_label("not defined here");
        if let Some(s) = did_you_mean(name, candidates.iter().map(|s| s.as_str())) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.out.errors.push(d);
    }

    fn expr(&mut self, e: &Expr) {
        match &e.kind {
            ExprKind::Name(n) => {
                if !self.known(n) {
                    self.unknown(n, e.span);
                }
            }
            ExprKind::List(items) => items.iter().for_each(|i| self.expr(i)),
            ExprKind::Unary(_, x) => self.expr(x),
            ExprKind::Binary(_, a, b) | ExprKind::Pipe(a, b) => {
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Call(f, args) => {
                self.expr(f);
                args.iter().for_each(|a| self.expr(&a.value));
            }
            ExprKind::Index(x, items) => {
                self.expr(x);
                for it in items {
                    match it {
                        IndexItem::Expr(e) => self.expr(e),
                        IndexItem::Slice { start, end, step, .. } => {
                            [start, end, step].into_iter().flatten().for_each(|e| self.expr(e))
                        }
                        IndexItem::Ellipsis(_) => {}
                    }
                }
            }
            ExprKind::Field(x, _) => self.expr(x),
            ExprKind::If(c, a, b) => {
                self.expr(c);
                self.expr(a);
                self.expr(b);
            }
            ExprKind::Block(lets, result) => {
                self.push(Vec::new());
                for l in lets {
                    self.expr(&l.value);
                    self.scopes.last_mut().expect("scope").insert(l.name.node.clone());
                }
                self.expr(result);
                self.scopes.pop();
            }
            ExprKind::Repeat { count, index, body, .. } => {
                self.expr(count);
                self.push(index.iter().map(|i| i.node.clone()));
                self.expr(body);
                self.scopes.pop();
            }
            ExprKind::Lambda(p, body) => {
                self.push([p.node.clone()]);
                self.expr(body);
                self.scopes.pop();
            }
            ExprKind::Int(_)
            | ExprKind::Float(_)
            | ExprKind::Bool(_)
            | ExprKind::Str(_)
            | ExprKind::Skip
            | ExprKind::Error => {}
        }
    }
}

/// The name a statement declares, when redeclaring it is an error.
fn declared_name(s: &Stmt) -> Option<&archc_grammar::ast::Ident> {
    match s {
        Stmt::Param { name, .. } | Stmt::Input { name, .. } | Stmt::Output { name, .. } | Stmt::Choose { name, .. } => {
            Some(name)
        }
        _ => None,
    }
}

fn stmt_names(s: &Stmt) -> Vec<String> {
    match s {
        Stmt::Param { name, .. } | Stmt::Output { name, .. } | Stmt::Let { name, .. } | Stmt::Choose { name, .. } => {
            vec![name.node.clone()]
        }
        Stmt::Input { name, ty, .. } => {
            let mut v = vec![name.node.clone()];
            v.extend(type_names(ty));
            v
        }
        Stmt::Forward(_) | Stmt::Error(_) => Vec::new(),
    }
}

/// Names used in a type's dims (they may introduce symbolic dims).
fn type_names(t: &TypeExpr) -> Vec<String> {
    let TypeExpr::Tensor { dims, .. } = t else { return Vec::new() };
    let mut out = Vec::new();
    for d in dims {
        if let DimExpr::Expr(e) = d {
            collect_names(e, &mut out);
        }
    }
    out
}

/// Every name mentioned in an arithmetic (dim) expression.
pub fn names_in(e: &Expr) -> Vec<String> {
    let mut out = Vec::new();
    collect_names(e, &mut out);
    out
}

fn collect_names(e: &Expr, out: &mut Vec<String>) {
    match &e.kind {
        ExprKind::Name(n) => out.push(n.clone()),
        ExprKind::Binary(_, a, b) => {
            collect_names(a, out);
            collect_names(b, out);
        }
        ExprKind::Unary(_, a) => collect_names(a, out),
        _ => {}
    }
}
