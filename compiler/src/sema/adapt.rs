//! The check of an `adapt` block, `adapt Model.stack { moves: .., search: .., score: .. }`,
//! and its settings read into plain values for `archc adapt`.
//!
//! Checking makes sure the block could be run: the target network builds and has a
//! `stack(n) { .. }` in its own body (the named one; with several stacks a name is
//! needed), and every entry and argument has a known name, the right type and a value
//! in range:
//!
//! | key | values |
//! |---|---|
//! | `moves` | a non-empty list of `skip` and `repeat(max = 2)` (`max`: an integer ≥ 1) |
//! | `search` | `mcts(simulations = 100, length_penalty = 0.0, epsilon = 0.1)`, `greedy(length_penalty = 0.0)`, `beam(width = 4, length_penalty = 0.0)`: counts ≥ 1, penalties ≥ 0, `epsilon` in [0, 1) |
//! | `score` | `oracle`, `loss`, `confidence`, `entropy`, `margin` or `agreement`, without arguments |
//! | `length` | `[min, max]`: the bounds of a chain's length (1 ≤ min ≤ max) |
//!
//! Contract: every error of the block is reported, each with its span; an error in one
//! entry does not hide another's, and a target that fails to build still has its
//! entries checked. [`settings`] reads the entries alone (their values are literals, so
//! no module is needed) with the same checks; omitted entries take the defaults above
//! (`moves: [skip, repeat(max = 2)]`, `search: mcts()`, `score: confidence`).

use super::experiment::build_model;
use super::modules::{ModuleInfo, Options};
use super::scope::Scope;
use super::settings::{call_name, eval, int_value, Args, Range};
use super::train_config::unknown_key;
use super::Checker;
use crate::diag::{did_you_mean, Diagnostic};
use crate::tir::{Op, Program};
use archc_grammar::ast::{self, AdaptDef, Entry, Expr, ExprKind, Ident};
use archc_grammar::span::Span;
use std::collections::HashSet;
use std::rc::Rc;

pub const ADAPT_KEYS: &[&str] = &["moves", "search", "score", "length"];
pub const MOVES: &[&str] = &["skip", "repeat"];
pub const SEARCHES: &[&str] = &["mcts", "greedy", "beam"];
pub const SCORES: &[&str] = &["oracle", "loss", "confidence", "entropy", "margin", "agreement"];

/// How chains are searched.
#[derive(Clone, Debug, PartialEq)]
pub enum SearchKind {
    /// Monte Carlo tree search: `simulations` per sample, `epsilon` random selection.
    Mcts { simulations: u64, epsilon: f64 },
    /// Hill climbing: the best neighbour while it improves.
    Greedy,
    /// The `width` best chains of each length step.
    Beam { width: u64 },
}

/// The settings of an `adapt` block.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptSettings {
    /// The network named by the target (`Looped` of `Looped.blocks`) and its span.
    pub model: String,
    pub model_span: Span,
    /// The stack named (`blocks`; `None` when the target names the network alone).
    pub stack: Option<String>,
    pub stack_span: Option<Span>,
    pub skip: bool,
    /// `Some(max)` when `repeat` is a move: how often one block may appear in a chain.
    pub repeat_max: Option<u64>,
    pub search: SearchKind,
    pub length_penalty: f64,
    pub score: String,
    /// `[min, max]` chain lengths, when given.
    pub length: Option<(u64, u64)>,
    /// The whole block.
    pub span: Span,
}

/// Checks an `adapt` block; on failure, every error found.
pub fn check_adapt(modules: &[ModuleInfo], opts: &Options, a: &AdaptDef) -> Result<(), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    match a.target.first() {
        Some(target) => {
            let model = Expr { kind: ExprKind::Name(target.node.clone()), span: target.span };
            match build_model(modules, opts, &model) {
                Ok(program) => errors.extend(check_stack(&program, target, &a.target[1..])),
                Err(ds) => errors.extend(ds),
            }
        }
        None => errors.push(Diagnostic::error("`adapt` needs a target", a.span)),
    }
    let mut c = Checker::new(modules, opts);
    errors.extend(read_entries(&mut c, a).err().unwrap_or_default());
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The settings of `a` (see the module docs); every error of its entries otherwise.
pub fn settings(a: &AdaptDef) -> Result<AdaptSettings, Vec<Diagnostic>> {
    let module = ModuleInfo {
        name: "main".into(),
        file: a.span.file,
        ast: Rc::new(ast::Module { items: Vec::new() }),
        globals: Scope::root(),
        broken: Vec::new(),
        unresolved: HashSet::new(),
        unknown_glob: false,
    };
    let modules = [module];
    let opts = Options::default();
    let mut c = Checker::new(&modules, &opts);
    read_entries(&mut c, a)
}

/// The stack of `program` that `path` (the target after the network's name) names: its
/// base name (`blocks` for `@blocks.0`, ..) and the function holding it; a diagnostic
/// otherwise.
pub fn find_stack<'p>(program: &'p Program, target: &Ident, path: &[Ident]) -> Result<(String, &'p str), Diagnostic> {
    let stacks = stacks_of(program);
    if stacks.is_empty() {
        return Err(Diagnostic::error(format!("`{}` has no `stack(n) {{ .. }}` to adapt", target.node), target.span)
            .with_help("layer-loop adaptation skips or repeats the blocks of a stack"));
    }
    let Some(last) = path.last() else {
        return match stacks.as_slice() {
            [(name, func)] => Ok((name.clone(), func)),
            _ => Err(Diagnostic::error(format!("`{}` has several stacks; name one", target.node), target.span)
                .with_label(format!("its stacks are: {}", names(&stacks)))
                .with_help(format!("e.g. `adapt {}.{} {{ .. }}`", target.node, stacks[0].0))),
        };
    };
    let want = path.iter().map(|i| i.node.as_str()).collect::<Vec<_>>().join(".");
    // A stack inside a block is named by its whole path (`outer.0.inner`), which a
    // target cannot spell; its last segments find it too.
    let nested = |n: &str| n.ends_with(&format!(".{want}"));
    let found = match want.as_str() {
        "stack" if stacks.len() == 1 => stacks.first(),
        _ => stacks.iter().find(|(n, _)| *n == want).or_else(|| stacks.iter().find(|(n, _)| nested(n))),
    };
    let span = path[0].span.to(last.span);
    match found {
        Some((name, "main")) => Ok((name.clone(), "main")),
        Some((name, func)) => Err(Diagnostic::error(
            format!("the stack `{name}` is inside `@{func}`; adaptation runs a stack of the network's own body"),
            span,
        )),
        None => {
            let mut d = Diagnostic::error(format!("`{}` has no stack named `{want}`", target.node), span)
                .with_label(format!("its stacks are: {}", names(&stacks)));
            if let Some(s) = did_you_mean(&want, stacks.iter().map(|(n, _)| n.as_str())) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            Err(d)
        }
    }
}

/// Every stack of `program`: its base name and the function it is in.
fn stacks_of(program: &Program) -> Vec<(String, &str)> {
    let mut out = Vec::new();
    for f in &program.funcs {
        for i in &f.body {
            if let Op::Stack(funcs) = &i.op {
                if let Some(first) = funcs.first() {
                    let base = first.rsplit_once('.').map_or(first.as_str(), |(base, _)| base);
                    out.push((base.to_string(), f.name.as_str()));
                }
            }
        }
    }
    out
}

fn names(stacks: &[(String, &str)]) -> String {
    stacks.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", ")
}

/// The target has the stack it names (see [`find_stack`]).
fn check_stack(program: &Program, target: &Ident, path: &[Ident]) -> Option<Diagnostic> {
    find_stack(program, target, path).err()
}

/// Reads every entry, each key once; all errors of the entries otherwise.
fn read_entries(c: &mut Checker, a: &AdaptDef) -> Result<AdaptSettings, Vec<Diagnostic>> {
    let first = a.target.first();
    let rest = a.target.get(1..).unwrap_or_default();
    let mut s = AdaptSettings {
        model: first.map(|t| t.node.clone()).unwrap_or_default(),
        model_span: first.map_or(a.span, |t| t.span),
        stack: (!rest.is_empty()).then(|| rest.iter().map(|i| i.node.as_str()).collect::<Vec<_>>().join(".")),
        stack_span: rest.first().zip(rest.last()).map(|(f, l)| f.span.to(l.span)),
        skip: true,
        repeat_max: Some(2),
        search: SearchKind::Mcts { simulations: 100, epsilon: 0.1 },
        length_penalty: 0.0,
        score: "confidence".into(),
        length: None,
        span: a.span,
    };
    let mut errors = Vec::new();
    for (i, e) in a.entries.iter().enumerate() {
        match a.entries[..i].iter().find(|p| p.key.node == e.key.node) {
            Some(prev) => errors.push(
                Diagnostic::error(format!("`{}` is given twice", e.key.node), e.key.span)
                    .with_related(prev.key.span, "first given here"),
            ),
            None => errors.extend(read_entry(c, e, &mut s)),
        }
    }
    if errors.is_empty() {
        Ok(s)
    } else {
        Err(errors)
    }
}

fn read_entry(c: &mut Checker, e: &Entry, s: &mut AdaptSettings) -> Vec<Diagnostic> {
    match e.key.node.as_str() {
        "moves" => match &e.value.kind {
            ExprKind::List(items) if items.is_empty() => {
                vec![Diagnostic::error("`moves` needs at least one move, e.g. [skip, repeat(max = 2)]", e.value.span)]
            }
            ExprKind::List(items) => {
                s.skip = false;
                s.repeat_max = None;
                items.iter().flat_map(|m| errors_of(read_move(c, m, s))).collect()
            }
            _ => vec![Diagnostic::error("`moves` must be a list like [skip, repeat(max = 2)]", e.value.span)],
        },
        "search" => errors_of(read_search(c, &e.value, s)),
        "score" => {
            let mut name = None;
            let r = check_call(c, &e.value, SCORES, "score", |n, _| name = Some(n.to_string()));
            s.score = name.unwrap_or_else(|| s.score.clone());
            errors_of(r)
        }
        "length" => errors_of(read_length(c, &e.value, s)),
        k => vec![unknown_key(k, e.key.span, ADAPT_KEYS, "adapt")],
    }
}

fn read_move(c: &mut Checker, e: &Expr, s: &mut AdaptSettings) -> Result<(), Vec<Diagnostic>> {
    check_call(c, e, MOVES, "move", |name, a| match name {
        "repeat" => s.repeat_max = Some(a.int("max", 2, Range::Positive) as u64),
        _ => s.skip = true,
    })
}

fn read_search(c: &mut Checker, e: &Expr, s: &mut AdaptSettings) -> Result<(), Vec<Diagnostic>> {
    check_call(c, e, SEARCHES, "search strategy", |name, a| {
        s.search = match name {
            "mcts" => {
                let simulations = a.int("simulations", 100, Range::Positive) as u64;
                let epsilon = a.float("epsilon", 0.1, Range::Fraction);
                SearchKind::Mcts { simulations, epsilon }
            }
            "beam" => SearchKind::Beam { width: a.int("width", 4, Range::Positive) as u64 },
            _ => SearchKind::Greedy,
        };
        s.length_penalty = a.float("length_penalty", 0.0, Range::NonNegative);
    })
}

/// `length: [min, max]`, two positive integers with `min <= max`.
fn read_length(c: &mut Checker, e: &Expr, s: &mut AdaptSettings) -> Result<(), Vec<Diagnostic>> {
    let shape = || vec![Diagnostic::error("`length` must be a list `[min, max]` of two integers", e.span)];
    let ExprKind::List(items) = &e.kind else { return Err(shape()) };
    let [lo, hi] = items.as_slice() else { return Err(shape()) };
    let mut bound =
        |x: &Expr, what: &str| eval(c, x).and_then(|v| int_value(&v, x.span, what, Range::Positive)).map(|i| i as u64);
    let (lo_v, hi_v) = (bound(lo, "the shortest chain length"), bound(hi, "the longest chain length"));
    match (lo_v, hi_v) {
        (Ok(l), Ok(h)) if l <= h => {
            s.length = Some((l, h));
            Ok(())
        }
        (Ok(l), Ok(h)) => Err(vec![Diagnostic::error(format!("`length` is empty: {l} > {h}"), e.span)]),
        (a, b) => Err([a.err(), b.err()].into_iter().flatten().collect()),
    }
}

/// A call whose name is one of `known`, with the arguments `read` takes and no others.
fn check_call(
    c: &mut Checker,
    e: &Expr,
    known: &[&str],
    what: &str,
    read: impl FnOnce(&str, &mut Args),
) -> Result<(), Vec<Diagnostic>> {
    let (name, _) = call_name(e, known, what).map_err(|d| vec![d])?;
    let mut args = Args::of(c, e, name).map_err(|d| vec![d])?;
    read(name, &mut args);
    args.finish()
}

fn errors_of(r: Result<(), Vec<Diagnostic>>) -> Vec<Diagnostic> {
    r.err().unwrap_or_default()
}
