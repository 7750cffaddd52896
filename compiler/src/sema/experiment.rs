//! Search-space choice picking, and the checks of `train` and `adapt` blocks (their
//! runtime lives elsewhere; here the model must build and every entry must make sense).

use super::modules::{ChoiceMode, ModuleInfo, Options};
use super::value::{Layer, Value};
use super::{Checker, R};
use crate::diag::{did_you_mean, Diagnostic};
use crate::tir::{Op, Program};
use archc_grammar::ast::{AdaptDef, Entry, Expr, ExprKind, TrainDef};
use archc_grammar::span::Span;

pub const TRAIN_KEYS: &[&str] =
    &["loss", "optimizer", "schedule", "batch", "epochs", "seed", "metrics", "clip", "noise", "eval_every"];
pub const TRAIN_SCHEDULES: &[&str] = &["constant", "step", "cosine", "onecycle"];
pub const LOSSES: &[&str] = &["cross_entropy", "mse", "rel_l2", "bce"];
pub const OPTIMIZERS: &[&str] = &["sgd", "adam", "adamw", "rmsprop"];
pub const SCHEDULES: &[&str] = &["constant", "step", "cosine", "onecycle"];
pub const DATASETS: &[&str] = &["digits", "permuted_digits", "mnist_5k", "mnist1d", "darcy", "burgers"];
pub const ADAPT_KEYS: &[&str] = &["moves", "search", "score"];
pub const MOVES: &[&str] = &["skip", "repeat"];
pub const SEARCHES: &[&str] = &["mcts", "greedy", "beam"];
pub const SCORES: &[&str] = &["confidence", "entropy", "margin", "loss"];

/// The option index for choice `qualified` (also addressable by its local `name`).
pub fn pick_option(mode: &ChoiceMode, qualified: &str, name: &str, vals: &[Value]) -> Result<usize, String> {
    let n = vals.len();
    match mode {
        ChoiceMode::First => Ok(0),
        ChoiceMode::Sample(seed) => Ok((splitmix(seed ^ fnv1a(qualified)) % n as u64) as usize),
        ChoiceMode::Explicit(list) => {
            let Some((_, want)) =
                list.iter().find(|(k, _)| k == qualified).or_else(|| list.iter().find(|(k, _)| k == name))
            else {
                return Ok(0);
            };
            let shown: Vec<String> = vals.iter().map(|v| v.to_string()).collect();
            if let Some(i) = shown.iter().position(|s| s == want) {
                return Ok(i);
            }
            let all_ints = vals.iter().all(|v| v.as_const_int().is_some());
            match want.parse::<usize>() {
                Ok(i) if !all_ints && i < n => Ok(i),
                _ => Err(format!("`{name}={want}` is not an option of `{name}`: options are [{}]", shown.join(", "))),
            }
        }
    }
}

fn fnv1a(s: &str) -> u64 {
    s.bytes().fold(0xcbf29ce484222325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x100000001b3))
}

fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e3779b97f4a7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
    z ^ (z >> 31)
}

/// Builds the model of a `train` block and checks its entries.
pub fn check_train(modules: &[ModuleInfo], opts: &Options, t: &TrainDef) -> R<()> {
    let program = build_model(modules, opts, &t.model)?;
    check_call_name(&t.data, DATASETS, "dataset")?;
    for e in &t.entries {
        check_train_entry(e, &program)?;
    }
    for required in ["loss", "optimizer"] {
        if !t.entries.iter().any(|e| e.key.node == required) {
            return Err(Diagnostic::error(format!("this `train` block has no `{required}`"), t.span));
        }
    }
    Ok(())
}

pub fn build_model(modules: &[ModuleInfo], opts: &Options, model: &Expr) -> R<Program> {
    let mut c = Checker::new(modules, opts);
    let env = super::scope::Scope::child(&c.globals[0]);
    let v = c.eval(model, &env, 0)?;
    let v = match v {
        Value::Block(b) => Value::Layer(c.make_spec(&b, Default::default(), model.span)?),
        v => v,
    };
    let Value::Layer(Layer::Spec { block, args, .. }) = v else {
        return Err(Diagnostic::error("expected a network, e.g. `Mlp(64, 128, 10)`", model.span));
    };
    c.build_spec(&block, args)
}

fn check_train_entry(e: &Entry, program: &Program) -> R<()> {
    let key = e.key.node.as_str();
    match key {
        "loss" => {
            check_call_name(&e.value, LOSSES, "loss")?;
            if let ExprKind::Call(_, args) = &e.value.kind {
                if let Some(ExprKind::Name(out)) = args.first().map(|a| &a.value.kind) {
                    let outs = &program.main().result_names;
                    if !outs.contains(out) {
                        let mut d = Diagnostic::error(format!("the model has no output `{out}`"), args[0].value.span)
                            .with_label(format!("outputs are: {}", outs.join(", ")));
                        if let Some(s) = did_you_mean(out, outs.iter().map(|s| s.as_str())) {
                            d = d.with_help(format!("did you mean `{s}`?"));
                        }
                        return Err(d);
                    }
                }
            }
            Ok(())
        }
        "optimizer" => check_call_name(&e.value, OPTIMIZERS, "optimizer"),
        "schedule" => check_call_name(&e.value, SCHEDULES, "schedule"),
        "batch" | "epochs" | "seed" | "eval_every" => match e.value.kind {
            ExprKind::Int(n) if n > 0 || (key == "seed" && n >= 0) => Ok(()),
            _ => Err(Diagnostic::error(format!("`{key}` must be a positive integer"), e.value.span)),
        },
        _ if TRAIN_KEYS.contains(&key) => Ok(()),
        _ => Err(unknown_key(key, e.key.span, TRAIN_KEYS, "train")),
    }
}

/// `callee(...)` or a bare name must be one of `known`.
fn check_call_name(e: &Expr, known: &[&str], what: &str) -> R<()> {
    let (name, span) = match &e.kind {
        ExprKind::Call(callee, _) => match &callee.kind {
            ExprKind::Name(n) => (n.as_str(), callee.span),
            _ => return Err(Diagnostic::error(format!("expected a {what} name"), callee.span)),
        },
        ExprKind::Name(n) => (n.as_str(), e.span),
        ExprKind::Skip if known.contains(&"skip") => return Ok(()),
        _ => return Err(Diagnostic::error(format!("expected a {what}, e.g. `{}(...)`", known[0]), e.span)),
    };
    if known.contains(&name) {
        return Ok(());
    }
    let mut d =
        Diagnostic::error(format!("unknown {what} `{name}`"), span).with_label(format!("known: {}", known.join(", ")));
    if let Some(s) = did_you_mean(name, known.iter().copied()) {
        d = d.with_help(format!("did you mean `{s}`?"));
    }
    Err(d)
}

fn unknown_key(key: &str, span: Span, known: &[&str], block: &str) -> Diagnostic {
    let mut d = Diagnostic::error(format!("unknown `{block}` entry `{key}`"), span)
        .with_label(format!("known entries: {}", known.join(", ")));
    if let Some(s) = did_you_mean(key, known.iter().copied()) {
        d = d.with_help(format!("did you mean `{s}`?"));
    }
    d
}

/// Builds the adapted network and checks that it has a stack and sensible entries.
pub fn check_adapt(modules: &[ModuleInfo], opts: &Options, a: &AdaptDef) -> R<()> {
    let target = a.target.first().ok_or_else(|| Diagnostic::error("`adapt` needs a target", a.span))?;
    let model = Expr { kind: ExprKind::Name(target.node.clone()), span: target.span };
    let program = build_model(modules, opts, &model)?;
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
        return Err(Diagnostic::error(format!("`{}` has no `stack(n) {{ .. }}` to adapt", target.node), target.span)
            .with_help("layer-loop adaptation skips or repeats the blocks of a stack"));
    }
    if let Some(which) = a.target.get(1) {
        if which.node != "stack" && !stacks.contains(&which.node.as_str()) {
            let mut d = Diagnostic::error(format!("`{}` has no stack named `{}`", target.node, which.node), which.span)
                .with_label(format!("its stacks are: {}", stacks.join(", ")));
            if let Some(s) = did_you_mean(&which.node, stacks.iter().copied()) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            return Err(d);
        }
    }
    for e in &a.entries {
        match e.key.node.as_str() {
            "moves" => match &e.value.kind {
                ExprKind::List(items) => items.iter().try_for_each(|i| check_call_name(i, MOVES, "move"))?,
                _ => {
                    return Err(Diagnostic::error("`moves` must be a list like [skip, repeat(max = 2)]", e.value.span))
                }
            },
            "search" => check_call_name(&e.value, SEARCHES, "search strategy")?,
            "score" => check_call_name(&e.value, SCORES, "score")?,
            k => return Err(unknown_key(k, e.key.span, ADAPT_KEYS, "adapt")),
        }
    }
    Ok(())
}
