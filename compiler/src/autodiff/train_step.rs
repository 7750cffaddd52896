//! The train step: one TIR function that runs the forward pass, the loss, the backward
//! pass and the optimizer update, with parameters and optimizer state as arguments and
//! results (so the loop only feeds and collects tensors).
//!
//! ABI (matched by name):
//! - `train_step(data..., param:NAME..., state:NAME.SLOT..., state:step, lr)` returns
//!   `loss`, `metric:NAME...`, `param:NAME...`, `state:NAME.SLOT...`, `state:step`.
//! - `eval_step(data..., param:NAME...)` returns `loss`, `metric:NAME...`.
//!
//! The data arguments are the model's inputs followed by the loss target (named by
//! [`TrainSpec::target`]). Buffers (non-trainable params) are passed as `param:NAME`
//! and returned unchanged.

use super::control::FuncTable;
use super::emit::{Emitter, Res, V};
use super::expand::{hoist_params, inline_calls, params_to_args};
use super::loss::{emit_loss, objective, Loss};
use super::optim::{add_noise, clip_global_norm, update, Optimizer, UpdateCtx};
use super::reverse::gradient;
use crate::tir::{DType, Func, Program, TensorType, ValueId};

#[derive(Clone, Debug)]
pub struct TrainSpec {
    /// The model output the loss reads.
    pub output: String,
    pub loss: Loss,
    /// The name of the target argument (`label`, `y`).
    pub target: String,
    pub optimizer: Optimizer,
    /// Clip the global gradient norm to this value.
    pub clip: Option<f64>,
    /// Annealed gradient noise `(eta, gamma)`.
    pub noise: Option<(f64, f64)>,
}

/// The program with `train_step` and `eval_step` added (and `main` kept for inference).
/// `training`, when given, is the same model built in training mode (dropout active,
/// batch statistics): `train_step` differentiates its forward pass, `eval_step` uses
/// `program`'s.
pub fn build_train_program(program: &Program, training: Option<&Program>, spec: &TrainSpec) -> Res<Program> {
    with_step(program, training, spec, "train step", build_train)
}

/// The program with `eval_step` and the step `build` makes from the training forward
/// (`train.main`, or `main` without a training build) added, cleaned up and verified.
pub(super) fn with_step(
    program: &Program,
    training: Option<&Program>,
    spec: &TrainSpec,
    what: &str,
    build: fn(&Program, &str, &TrainSpec, &FuncTable) -> Res<Func>,
) -> Res<Program> {
    let mut base = program.clone();
    let train_main = match training {
        Some(t) => {
            base.funcs.extend(prefixed(t, "train."));
            add_training_only_params(&mut base, t);
            "train.main"
        }
        None => "main",
    };
    let mut out = base.clone();
    let table = FuncTable::new(&base);
    let eval = build_eval(&base, "main", spec, &table)?;
    let step = build(&base, train_main, spec, &table)?;
    out.funcs.push(step);
    out.funcs.push(eval);
    out.funcs.extend(table.added.into_inner());
    crate::passes::cleanup(&mut out);
    verified(out, what)
}

/// `program`, or the error of a program that does not verify (an internal error).
pub(super) fn verified(program: Program, what: &str) -> Res<Program> {
    match crate::tir::verify::verify(&program) {
        Ok(()) => Ok(program),
        Err(errors) => {
            let msgs: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            Err(format!("internal error: the {what} does not verify: {}", msgs.join("; ")))
        }
    }
}

/// Declares in `base` the parameters that only the training-mode build reads (a layer
/// used under `if training { .. }`), so the train step can take and update them.
fn add_training_only_params(base: &mut Program, training: &Program) {
    for p in &training.params {
        if base.param(&p.name).is_none() {
            base.params.push(p.clone());
        }
    }
}

/// The forward function with parameters as arguments, a target argument and the loss.
pub(super) struct Forward {
    pub func: Func,
    /// New values of buffers computed by the forward pass (training mode), by name.
    pub buffers: Vec<(String, ValueId)>,
    pub params: Vec<String>,
    pub loss: ValueId,
    pub metrics: Vec<(String, ValueId)>,
    pub data_args: usize,
    /// The model output the loss reads, for a built-in loss.
    pub pred: Option<ValueId>,
}

pub(super) fn forward(program: &Program, main: &str, spec: &TrainSpec, name: &str, table: &FuncTable) -> Res<Forward> {
    if let Loss::Func { .. } | Loss::Unresolved(_) = &spec.loss {
        return forward_objective(program, main, spec, name, table);
    }
    let main = program.func(main).ok_or_else(|| format!("internal: no function `{main}`"))?;
    let mut f = hoist_params(table, &inline_calls(program, main)?)?;
    f.name = name.to_string();
    let out_idx = f
        .result_names
        .iter()
        .position(|n| n == &spec.output)
        .ok_or_else(|| format!("the model has no output `{}`", spec.output))?;
    let pred = f.results[out_idx];
    let buffers: Vec<(String, ValueId)> = f
        .result_names
        .iter()
        .zip(&f.results)
        .filter_map(|(n, v)| n.strip_prefix("buffer:").map(|b| (b.to_string(), *v)))
        .collect();
    let pred_t = f.type_of(pred).cloned().ok_or("output undefined")?;
    let target_t = spec.loss.target_type(&pred_t)?;
    let target = f.next_value();
    f.args.push((target, target_t));
    f.arg_names.push(spec.target.clone());
    let data_args = f.args.len();
    let params = params_to_args(program, &mut f);
    f.results.clear();
    f.result_names.clear();
    let mut e = Emitter::new(f, table);
    let (loss, metrics) = emit_loss(&mut e, &spec.loss, pred, target)?;
    Ok(Forward { func: e.func, buffers, params, loss, metrics, data_args, pred: Some(pred) })
}

/// [`forward`] of a loss written as an expression: the model and the loss function as
/// one function ([`objective`]), inlined.
fn forward_objective(program: &Program, main: &str, spec: &TrainSpec, name: &str, table: &FuncTable) -> Res<Forward> {
    let w = objective(program, main, &spec.loss, table)?;
    let mut f = hoist_params(table, &inline_calls(program, &w)?)?;
    f.name = name.to_string();
    let named = |prefix: &str| -> Vec<(String, ValueId)> {
        f.result_names
            .iter()
            .zip(&f.results)
            .filter_map(|(n, v)| n.strip_prefix(prefix).map(|b| (b.to_string(), *v)))
            .collect()
    };
    let (buffers, metrics) = (named("buffer:"), named("metric:"));
    let loss = f.results[0];
    let data_args = f.args.len();
    let params = params_to_args(program, &mut f);
    f.results.clear();
    f.result_names.clear();
    Ok(Forward { func: f, buffers, params, loss, metrics, data_args, pred: None })
}

fn build_eval(program: &Program, main: &str, spec: &TrainSpec, table: &FuncTable) -> Res<Func> {
    let fw = forward(program, main, spec, "eval_step", table)?;
    let mut f = fw.func;
    f.results.push(fw.loss);
    f.result_names.push("loss".into());
    for (n, v) in fw.metrics {
        f.results.push(v);
        f.result_names.push(format!("metric:{n}"));
    }
    let _ = fw.data_args;
    Ok(f)
}

fn build_train(program: &Program, main: &str, spec: &TrainSpec, table: &FuncTable) -> Res<Func> {
    let fw = forward(program, main, spec, "train_step", table)?;
    let trainable: Vec<bool> =
        fw.params.iter().map(|n| program.param(n).map(|p| p.trainable).unwrap_or(true)).collect();
    let n_data = fw.data_args;
    let param_vals: Vec<ValueId> = fw.func.args[n_data..].iter().map(|(v, _)| *v).collect();
    let wrt: Vec<ValueId> = param_vals.iter().zip(&trainable).filter(|(_, t)| **t).map(|(v, _)| *v).collect();
    let g = gradient(&fw.func, table, fw.loss, &wrt)?;
    let grads: Vec<ValueId> = g.results[g.results.len() - wrt.len()..].to_vec();
    let mut f = g;
    f.results.clear();
    f.result_names.clear();
    let mut e = Emitter::new(f, table);
    let step = add_arg(&mut e, "state:step", TensorType::scalar(DType::F32));
    let lr = add_arg(&mut e, "lr", TensorType::scalar(DType::F32));
    let one = e.op(crate::tir::Op::Const(1.0), &[], Some(TensorType::scalar(DType::F32)))?;
    let t = e.add(step, one)?;
    let mut grads = grads;
    if let Some(max) = spec.clip {
        grads = clip_global_norm(&mut e, &grads, max)?;
    }
    if let Some((eta, gamma)) = spec.noise {
        grads = add_noise(&mut e, &grads, step, eta, gamma, 1 << 32)?;
    }
    let ctx = UpdateCtx { lr, t };
    let mut results: Vec<(String, V)> = vec![("loss".into(), fw.loss)];
    results.extend(fw.metrics.iter().map(|(n, v)| (format!("metric:{n}"), *v)));
    let mut states: Vec<(String, V)> = Vec::new();
    let mut gi = 0;
    for ((name, &p), &tr) in fw.params.iter().zip(&param_vals).zip(&trainable) {
        if !tr {
            let updated = fw.buffers.iter().find(|(b, _)| b == name).map_or(p, |(_, v)| *v);
            results.push((format!("param:{name}"), updated));
            continue;
        }
        let pt = e.ty(p);
        let slots: Vec<V> =
            spec.optimizer.slots().iter().map(|s| add_arg(&mut e, &format!("state:{name}.{s}"), pt.clone())).collect();
        let (np, ns) = update(&mut e, &spec.optimizer, &ctx, p, grads[gi], &slots)?;
        gi += 1;
        results.push((format!("param:{name}"), np));
        for (s, v) in spec.optimizer.slots().iter().zip(ns) {
            states.push((format!("state:{name}.{s}"), v));
        }
    }
    results.extend(states);
    results.push(("state:step".into(), t));
    let mut f = e.func;
    move_args_last(&mut f, &["state:step", "lr"]);
    for (n, v) in results {
        f.results.push(v);
        f.result_names.push(n);
    }
    Ok(f)
}

/// The functions of `p` renamed with `prefix`, references included.
pub fn prefixed(p: &Program, prefix: &str) -> Vec<Func> {
    let name = |n: &str| format!("{prefix}{n}");
    p.funcs
        .iter()
        .map(|f| {
            let mut g = f.clone();
            g.name = name(&f.name);
            for i in &mut g.body {
                match &mut i.op {
                    crate::tir::Op::Call(c) => *c = name(c),
                    crate::tir::Op::Stack(fs) => fs.iter_mut().for_each(|c| *c = name(c)),
                    crate::tir::Op::Vmap { func, .. } | crate::tir::Op::Scan { func, .. } => *func = name(func),
                    _ => {}
                }
            }
            g
        })
        .collect()
}

pub(super) fn add_arg(e: &mut Emitter, name: &str, ty: TensorType) -> V {
    let v = ValueId(e.func.next_value().0.max(e.peek_next()));
    e.bump_past(v);
    e.func.args.push((v, ty));
    e.func.arg_names.push(name.to_string());
    v
}

/// Moves the named arguments to the end, in the given order.
pub(super) fn move_args_last(f: &mut Func, names: &[&str]) {
    for n in names {
        if let Some(i) = f.arg_names.iter().position(|a| a == n) {
            let a = f.args.remove(i);
            let an = f.arg_names.remove(i);
            f.args.push(a);
            f.arg_names.push(an);
        }
    }
}
