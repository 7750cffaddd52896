//! The check of an `adapt` block: `adapt Model.stack { moves: .., search: .., score: .. }`.
//!
//! Nothing executes `adapt` yet; checking it makes sure it could be run: the target
//! network builds and has a `stack(n) { .. }` (the named one, if a name is given), and
//! every entry and argument has a known name, the right type and a value in range:
//!
//! | key | values |
//! |---|---|
//! | `moves` | a non-empty list of `skip` and `repeat(max = 2)` (`max`: an integer ≥ 1) |
//! | `search` | `mcts(simulations = 100, length_penalty = 0.0)`, `greedy(length_penalty = 0.0)`, `beam(width = 4, length_penalty = 0.0)`: counts ≥ 1, penalties ≥ 0 |
//! | `score` | `confidence`, `entropy`, `margin` or `loss`, without arguments |
//!
//! Contract: every error of the block is reported, each with its span; an error in one
//! entry does not hide another's, and a target that fails to build still has its
//! entries checked.

use super::experiment::build_model;
use super::modules::{ModuleInfo, Options};
use super::settings::{call_name, Args, Range};
use super::train_config::unknown_key;
use super::Checker;
use crate::diag::{did_you_mean, Diagnostic};
use crate::tir::{Op, Program};
use archc_grammar::ast::{AdaptDef, Entry, Expr, ExprKind, Ident};

pub const ADAPT_KEYS: &[&str] = &["moves", "search", "score"];
pub const MOVES: &[&str] = &["skip", "repeat"];
pub const SEARCHES: &[&str] = &["mcts", "greedy", "beam"];
pub const SCORES: &[&str] = &["confidence", "entropy", "margin", "loss"];

/// Checks an `adapt` block; on failure, every error found.
pub fn check_adapt(modules: &[ModuleInfo], opts: &Options, a: &AdaptDef) -> Result<(), Vec<Diagnostic>> {
    let mut errors = Vec::new();
    match a.target.first() {
        Some(target) => {
            let model = Expr { kind: ExprKind::Name(target.node.clone()), span: target.span };
            match build_model(modules, opts, &model) {
                Ok(program) => errors.extend(check_stack(&program, target, a.target.get(1))),
                Err(ds) => errors.extend(ds),
            }
        }
        None => errors.push(Diagnostic::error("`adapt` needs a target", a.span)),
    }
    let mut c = Checker::new(modules, opts);
    for (i, e) in a.entries.iter().enumerate() {
        match a.entries[..i].iter().find(|p| p.key.node == e.key.node) {
            Some(prev) => errors.push(
                Diagnostic::error(format!("`{}` is given twice", e.key.node), e.key.span)
                    .with_related(prev.key.span, "first given here"),
            ),
            None => errors.extend(check_entry(&mut c, e)),
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

/// The target has a stack, and the one named `which` if a name is given.
fn check_stack(program: &Program, target: &Ident, which: Option<&Ident>) -> Option<Diagnostic> {
    let stacks: Vec<&str> = program
        .funcs
        .iter()
        .flat_map(|f| f.body.iter())
        .filter_map(|i| match &i.op {
            Op::Stack(funcs) => funcs.first().map(|f| f.rsplit_once('.').map_or(f.as_str(), |(base, _)| base)),
            _ => None,
        })
        .collect();
    if stacks.is_empty() {
        return Some(
            Diagnostic::error(format!("`{}` has no `stack(n) {{ .. }}` to adapt", target.node), target.span)
                .with_help("layer-loop adaptation skips or repeats the blocks of a stack"),
        );
    }
    let which = which?;
    if which.node == "stack" || stacks.contains(&which.node.as_str()) {
        return None;
    }
    let mut d = Diagnostic::error(format!("`{}` has no stack named `{}`", target.node, which.node), which.span)
        .with_label(format!("its stacks are: {}", stacks.join(", ")));
    if let Some(s) = did_you_mean(&which.node, stacks.iter().copied()) {
        d = d.with_help(format!("did you mean `{s}`?"));
    }
    Some(d)
}

fn check_entry(c: &mut Checker, e: &Entry) -> Vec<Diagnostic> {
    match e.key.node.as_str() {
        "moves" => match &e.value.kind {
            ExprKind::List(items) if items.is_empty() => {
                vec![Diagnostic::error("`moves` needs at least one move, e.g. [skip, repeat(max = 2)]", e.value.span)]
            }
            ExprKind::List(items) => items.iter().flat_map(|m| errors_of(check_move(c, m))).collect(),
            _ => vec![Diagnostic::error("`moves` must be a list like [skip, repeat(max = 2)]", e.value.span)],
        },
        "search" => errors_of(check_search(c, &e.value)),
        "score" => errors_of(check_call(c, &e.value, SCORES, "score", |_, _| {})),
        k => vec![unknown_key(k, e.key.span, ADAPT_KEYS, "adapt")],
    }
}

fn check_move(c: &mut Checker, e: &Expr) -> Result<(), Vec<Diagnostic>> {
    check_call(c, e, MOVES, "move", |_, a| {
        a.int("max", 2, Range::Positive);
    })
}

fn check_search(c: &mut Checker, e: &Expr) -> Result<(), Vec<Diagnostic>> {
    check_call(c, e, SEARCHES, "search strategy", |name, a| {
        match name {
            "mcts" => a.int("simulations", 100, Range::Positive),
            "beam" => a.int("width", 4, Range::Positive),
            _ => 0,
        };
        a.float("length_penalty", 0.0, Range::NonNegative);
    })
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
