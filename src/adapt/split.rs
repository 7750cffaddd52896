//! A network cut around one `stack` of its own body, so chains of its blocks can run:
//! `@adapt.prefix` (everything before the stack), the stack's block functions as they
//! are, and `@adapt.suffix` (everything after it).
//!
//! Contract: for any inputs, `suffix(blocks[k-1](..blocks[0](prefix(..)).., ..), ..)`
//! computes what `@main` computes with the stack's trained order: the prefix and suffix
//! are `@main`'s own instructions, values crossing the cut are passed as arguments (the
//! network's inputs straight from the caller, never through the prefix). The cut
//! program verifies, or [`split`] says why not.

use archc_compiler::tir::{verify, Func, Inst, Op, Program, TensorType, ValueId};
use std::collections::HashSet;

pub const PREFIX: &str = "adapt.prefix";
pub const SUFFIX: &str = "adapt.suffix";

/// Where a value crossing the cut comes from.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Src {
    /// Input `i` of the network.
    Input(usize),
    /// Result `i` of the prefix.
    Prefix(usize),
}

/// The cut program and how its pieces connect.
#[derive(Clone, Debug)]
pub struct Split {
    /// The network plus `@adapt.prefix` (when it has results) and `@adapt.suffix`.
    pub program: Program,
    /// The stack's block functions, in trained order.
    pub blocks: Vec<String>,
    /// Whether `@adapt.prefix` exists (it is left out when it would return nothing).
    pub has_prefix: bool,
    /// The stack's operands: the carried value, then the values every block also takes.
    pub operands: Vec<Src>,
    /// The suffix's arguments after the stack's result.
    pub suffix_args: Vec<Src>,
    /// Which of the network's outputs chains are scored on (the first by default).
    pub output: usize,
}

impl Split {
    pub fn depth(&self) -> usize {
        self.blocks.len()
    }
}

/// The base name of a stack's functions: `blocks` for `@blocks.0`.
pub fn stack_base(funcs: &[String]) -> Option<&str> {
    funcs.first().map(|f| f.rsplit_once('.').map_or(f.as_str(), |(base, _)| base))
}

/// Cuts `model` around the stack named `stack` in `@main` (see the module docs).
pub fn split(model: &Program, stack: &str) -> Result<Split, String> {
    let main = model.func("main").ok_or("the network has no @main")?;
    let (k, blocks) = main
        .body
        .iter()
        .enumerate()
        .find_map(|(k, i)| match &i.op {
            Op::Stack(fs) if stack_base(fs) == Some(stack) => Some((k, fs)),
            _ => None,
        })
        .ok_or_else(|| format!("the network has no stack `{stack}` in its own body"))?;
    let at = &main.body[k];
    let (before, after) = (&main.body[..k], &main.body[k + 1..]);
    let defined_before: HashSet<ValueId> = before.iter().flat_map(|i| i.result_ids()).collect();
    let defined_after: HashSet<ValueId> = after.iter().flat_map(|i| i.result_ids()).collect();
    let mut used_after: Vec<ValueId> =
        after.iter().flat_map(|i| i.args.iter().copied()).chain(main.results.iter().copied()).collect();
    used_after.retain(|v| *v != at.result && !defined_after.contains(v));
    used_after.sort();
    used_after.dedup();
    let mut prefix_results: Vec<ValueId> = Vec::new();
    let mut src = |v: ValueId| -> Result<Src, String> {
        if let Some(i) = main.args.iter().position(|(a, _)| *a == v) {
            return Ok(Src::Input(i));
        }
        if !defined_before.contains(&v) {
            return Err(format!("{v} is used across the stack but defined nowhere before it"));
        }
        let i = prefix_results.iter().position(|r| *r == v).unwrap_or_else(|| {
            prefix_results.push(v);
            prefix_results.len() - 1
        });
        Ok(Src::Prefix(i))
    };
    let operands = at.args.iter().map(|&v| src(v)).collect::<Result<Vec<_>, _>>()?;
    let suffix_args = used_after.iter().map(|&v| src(v)).collect::<Result<Vec<_>, _>>()?;
    let mut program = model.clone();
    let has_prefix = !prefix_results.is_empty();
    if has_prefix {
        program.funcs.push(prefix(main, before, &prefix_results));
    }
    program.funcs.push(suffix(main, at, after, &used_after)?);
    verify(&program).map_err(|errs| {
        let shown: Vec<String> = errs.iter().take(3).map(|e| e.to_string()).collect();
        format!("the network cannot be cut around its stack `{stack}`: {}", shown.join("; "))
    })?;
    Ok(Split { program, blocks: blocks.clone(), has_prefix, operands, suffix_args, output: 0 })
}

fn type_in(main: &Func, v: ValueId) -> Result<TensorType, String> {
    main.type_of(v).cloned().ok_or_else(|| format!("{v} of @main has no type"))
}

fn prefix(main: &Func, before: &[Inst], results: &[ValueId]) -> Func {
    Func {
        name: PREFIX.into(),
        args: main.args.clone(),
        arg_names: main.arg_names.clone(),
        body: before.to_vec(),
        results: results.to_vec(),
        result_names: results.iter().map(|v| format!("v{}", v.0)).collect(),
    }
}

fn suffix(main: &Func, stack: &Inst, after: &[Inst], used: &[ValueId]) -> Result<Func, String> {
    let mut args = vec![(stack.result, stack.ty.clone())];
    let mut arg_names = vec!["h".to_string()];
    for &v in used {
        args.push((v, type_in(main, v)?));
        let input = main.args.iter().position(|(a, _)| *a == v);
        arg_names.push(input.map_or_else(|| format!("v{}", v.0), |i| main.arg_names[i].clone()));
    }
    Ok(Func {
        name: SUFFIX.into(),
        args,
        arg_names,
        body: after.to_vec(),
        results: main.results.clone(),
        result_names: main.result_names.clone(),
    })
}

/// `model` with the stack `stack` (the only one of `@main` when `None`) running the
/// blocks of `chain` instead of its trained order: what `archc run --chain` runs.
pub fn with_chain(model: &Program, stack: Option<&str>, chain: &[usize]) -> Result<Program, String> {
    let mut program = model.clone();
    let main = program.funcs.iter_mut().find(|f| f.name == "main").ok_or("the network has no @main")?;
    let mut stacks = main.body.iter_mut().filter_map(|i| match &mut i.op {
        Op::Stack(fs) => Some(fs),
        _ => None,
    });
    let funcs = match stack {
        Some(name) => stacks
            .find(|fs| stack_base(fs) == Some(name))
            .ok_or_else(|| format!("the network has no stack `{name}` in its own body"))?,
        None => {
            let first = stacks.next().ok_or("the network has no stack in its own body to run a chain of")?;
            if stacks.next().is_some() {
                return Err("the network has several stacks: name one, `--chain NAME=0,1,1`".into());
            }
            first
        }
    };
    let blocks = funcs.clone();
    if let Some(&b) = chain.iter().find(|&&b| b >= blocks.len()) {
        return Err(format!("block {b} does not exist (the stack has {} blocks)", blocks.len()));
    }
    *funcs = chain.iter().map(|&b| blocks[b].clone()).collect();
    Ok(program)
}

/// `archc run --chain [NAME=]0,1,1,3`: the model with that chain (see [`with_chain`]).
pub fn with_chain_arg(model: &Program, arg: &str) -> Result<Program, String> {
    let (stack, list) = match arg.split_once('=') {
        Some((name, list)) => (Some(name.trim()), list),
        None => (None, arg),
    };
    let chain = list
        .split(',')
        .filter(|p| !p.trim().is_empty())
        .map(|p| p.trim().parse::<usize>().map_err(|_| format!("--chain {arg}: `{p}` is not a block index")))
        .collect::<Result<Vec<_>, _>>()?;
    with_chain(model, stack, &chain).map_err(|e| format!("--chain {arg}: {e}"))
}
