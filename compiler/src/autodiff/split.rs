//! The train step split in two, for gradients accumulated over several models that share
//! their parameters before one update (a supernet's subnets).
//!
//! ABI (matched by name, like `train_step`'s):
//! - `grad_step(data..., param:NAME..., loss_scale, grad:NAME...)` returns `loss`, `metric:NAME...`,
//!   `param:BUFFER...` (buffers' new values, as `train_step` returns them) and
//!   `grad:NAME...`: each trainable parameter's accumulator plus this model's gradient
//!   times `loss_scale` (a scalar: 1 for the gradient itself; a supernet weighs subnets by it),
//!   then, for a built-in loss, `output`: the model output the loss reads (a supernet's
//!   largest subnet teaches the others with it).
//! - `apply_step(param:NAME..., grad:NAME..., state:NAME.SLOT..., state:step, lr)` returns
//!   `param:NAME...`, `state:NAME.SLOT...`, `state:step` and `grad:NAME...`: the update
//!   `train_step` would make with the accumulated gradients (clipped and with noise as
//!   the spec says), and the accumulators zeroed. It is built from a list of parameters,
//!   so one update serves every subnet of a supernet.
//!
//! A `grad_step` followed by an `apply_step` with zeroed accumulators is the `train_step`
//! of the same model (tested).

use super::control::FuncTable;
use super::emit::{Emitter, Res, V};
use super::optim::{add_noise, clip_global_norm, update, UpdateCtx};
use super::reverse::gradient;
use super::train_step::{add_arg, forward, move_args_last, verified, with_step, TrainSpec};
use crate::tir::{DType, Func, Op, Program, TensorType};

/// The program with `grad_step` and `eval_step` added (`training` as for
/// [`super::build_train_program`]).
pub fn build_grad_program(program: &Program, training: Option<&Program>, spec: &TrainSpec) -> Res<Program> {
    with_step(program, training, spec, "grad step", build_grad)
}

fn build_grad(program: &Program, main: &str, spec: &TrainSpec, table: &FuncTable) -> Res<Func> {
    let mut fw = forward(program, main, spec, "grad_step", table)?;
    let trainable = |n: &String| program.param(n).map(|p| p.trainable).unwrap_or(true);
    let param_vals: Vec<V> = fw.func.args[fw.data_args..].iter().map(|(v, _)| *v).collect();
    let wrt: Vec<V> = fw.params.iter().zip(&param_vals).filter(|(n, _)| trainable(n)).map(|(_, v)| *v).collect();
    // The gradients are those of `loss_scale * loss` (1 for the plain gradient).
    let mut e = Emitter::new(fw.func, table);
    let scale = add_arg(&mut e, "loss_scale", TensorType::scalar(DType::F32));
    let scale = match e.ty(fw.loss).dtype {
        DType::F32 => scale,
        d => e.op(Op::Cast, &[scale], Some(TensorType::scalar(d)))?,
    };
    let scaled = e.mul(fw.loss, scale)?;
    fw.func = e.func;
    let g = gradient(&fw.func, table, scaled, &wrt)?;
    let grads: Vec<V> = g.results[g.results.len() - wrt.len()..].to_vec();
    let mut f = g;
    f.results.clear();
    f.result_names.clear();
    let mut e = Emitter::new(f, table);
    let mut results: Vec<(String, V)> = vec![("loss".into(), fw.loss)];
    results.extend(fw.metrics.iter().map(|(n, v)| (format!("metric:{n}"), *v)));
    let mut sums = Vec::new();
    let mut gi = 0;
    for (name, &p) in fw.params.iter().zip(&param_vals) {
        if !trainable(name) {
            let updated = fw.buffers.iter().find(|(b, _)| b == name).map_or(p, |(_, v)| *v);
            results.push((format!("param:{name}"), updated));
            continue;
        }
        let ty = e.ty(p);
        let acc = add_arg(&mut e, &format!("grad:{name}"), ty);
        sums.push((format!("grad:{name}"), e.add(acc, grads[gi])?));
        gi += 1;
    }
    results.extend(sums);
    results.extend(fw.pred.map(|v| ("output".to_string(), v)));
    let mut f = e.func;
    for (n, v) in results {
        f.results.push(v);
        f.result_names.push(n);
    }
    Ok(f)
}

/// `apply_step` over the trainable parameters `params` (name and type, in order); see
/// the module docs.
pub fn build_apply_func(params: &[(String, TensorType)], spec: &TrainSpec) -> Res<Func> {
    let empty = Program { name: "apply".into(), params: Vec::new(), funcs: Vec::new() };
    let table = FuncTable::new(&empty);
    let func = Func {
        name: "apply_step".into(),
        args: Vec::new(),
        arg_names: Vec::new(),
        body: Vec::new(),
        results: Vec::new(),
        result_names: Vec::new(),
    };
    let mut e = Emitter::new(func, &table);
    let ps: Vec<V> = params.iter().map(|(n, t)| add_arg(&mut e, &format!("param:{n}"), t.clone())).collect();
    let mut grads: Vec<V> = params.iter().map(|(n, t)| add_arg(&mut e, &format!("grad:{n}"), t.clone())).collect();
    let step = add_arg(&mut e, "state:step", TensorType::scalar(DType::F32));
    let lr = add_arg(&mut e, "lr", TensorType::scalar(DType::F32));
    let one = e.op(Op::Const(1.0), &[], Some(TensorType::scalar(DType::F32)))?;
    let t = e.add(step, one)?;
    if let Some(max) = spec.clip {
        grads = clip_global_norm(&mut e, &grads, max)?;
    }
    if let Some((eta, gamma)) = spec.noise {
        grads = add_noise(&mut e, &grads, step, eta, gamma, 1 << 32)?;
    }
    let ctx = UpdateCtx { lr, t };
    let (mut new_params, mut states, mut zeros) = (Vec::new(), Vec::new(), Vec::new());
    for (((name, ty), &p), &g) in params.iter().zip(&ps).zip(&grads) {
        let slots: Vec<V> =
            spec.optimizer.slots().iter().map(|s| add_arg(&mut e, &format!("state:{name}.{s}"), ty.clone())).collect();
        let (np, ns) = update(&mut e, &spec.optimizer, &ctx, p, g, &slots)?;
        new_params.push((format!("param:{name}"), np));
        for (s, v) in spec.optimizer.slots().iter().zip(ns) {
            states.push((format!("state:{name}.{s}"), v));
        }
        zeros.push((format!("grad:{name}"), e.fill(0.0, ty)?));
    }
    let mut f = e.func;
    move_args_last(&mut f, &["state:step", "lr"]);
    let results = new_params.into_iter().chain(states).chain([("state:step".to_string(), t)]).chain(zeros);
    for (n, v) in results {
        f.results.push(v);
        f.result_names.push(n);
    }
    // Verified as the entry of a program of its own (a program's entry is `main`).
    f.name = "main".into();
    let program = Program { name: "apply".into(), params: Vec::new(), funcs: vec![f] };
    let mut f = verified(program, "apply step")?.funcs.remove(0);
    f.name = "apply_step".into();
    Ok(f)
}
