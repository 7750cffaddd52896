//! The vector-Jacobian product of a network's forward pass as one TIR function, `vjp`
//! (what `archc grad` runs on every backend).
//!
//! ABI (matched by name; [`build_vjp_program`] adds the function, `main` is kept as it was):
//! `vjp(X..., param:NAME..., cot:OUT...)` returns `output:OUT...`, `grad.input.X...`,
//! `grad.param.NAME...`, where
//! - `X...` are `main`'s arguments, unchanged and in order;
//! - `param:NAME...` is every parameter the program declares, in declaration order
//!   (buffers too: they are read, never differentiated);
//! - `cot:OUT...` is one cotangent per float (`f32`/`f64`) output of `main`, of the
//!   output's type; integer and boolean outputs (`argmax` indices) take none;
//! - `output:OUT...` are `main`'s outputs, every one, in order;
//! - `grad.input.X` for each float argument `X` of `main`, in order;
//! - `grad.param.NAME` for each trainable float parameter, in declaration order (zeros
//!   for one the forward pass does not read).
//!
//! The gradients are those of the scalar `Σ_OUT sum(OUT * cot:OUT)` (in the outputs'
//! float type, or `f64` when they mix `f32` and `f64`), i.e. the transposed Jacobian
//! of the forward pass applied to the cotangents. The forward pass is `main` with calls
//! and stacks inlined and parameter reads turned into the `param:` arguments, also
//! inside `scan`/`vmap` bodies, exactly as the train step builds it. Results named
//! `buffer:NAME` (new buffer values of a training-mode build) are neither returned nor
//! differentiated. The program is verified before it is returned; an error is a
//! message, never a panic.

use super::control::FuncTable;
use super::emit::{Emitter, Res, V};
use super::expand::{hoist_params, inline_calls, params_to_args};
use super::reverse::gradient;
use super::train_step::{add_arg, verified};
use crate::tir::{DType, Func, Op, Program, ReduceOp, ValueId};
use std::collections::HashSet;

/// The name of the function [`build_vjp_program`] adds.
pub const VJP: &str = "vjp";

/// `program` with the function [`VJP`] added (see the module docs for its ABI).
pub fn build_vjp_program(program: &Program) -> Res<Program> {
    if program.func(VJP).is_some() {
        return Err(format!("the program already has a function `{VJP}`"));
    }
    let main = program.func("main").ok_or("the program has no function `main`")?;
    let table = FuncTable::new(program);
    let func = build_vjp(program, main, &table)?;
    let mut out = program.clone();
    out.funcs.push(func);
    out.funcs.extend(table.added.into_inner());
    if let Some(f) = out.funcs.iter_mut().find(|f| f.name == VJP) {
        crate::passes::dead_code(f);
    }
    crate::passes::drop_unreached(&mut out, &["main", VJP]);
    verified(out, "vjp function")
}

fn build_vjp(program: &Program, main: &Func, table: &FuncTable) -> Res<Func> {
    let mut f = hoist_params(table, &inline_calls(program, main)?)?;
    f.name = VJP.into();
    let n_inputs = f.args.len();
    let outputs: Vec<(String, ValueId)> = f
        .result_names
        .iter()
        .zip(&f.results)
        .filter(|(n, _)| !n.starts_with("buffer:"))
        .map(|(n, v)| (n.clone(), *v))
        .collect();
    params_to_args(program, &mut f);
    every_param_an_arg(program, &mut f, n_inputs);
    f.results.clear();
    f.result_names.clear();
    let mut e = Emitter::new(f, table);
    let loss = emit_inner_product(&mut e, &outputs)?;
    let f = e.func;

    let mut wrt: Vec<ValueId> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for (i, ((v, t), name)) in f.args.iter().zip(&f.arg_names).enumerate() {
        if i < n_inputs && t.dtype.is_float() && !name.starts_with("choice:") {
            wrt.push(*v);
            labels.push(format!("grad.input.{name}"));
        } else if let Some(p) = name.strip_prefix("param:") {
            let decl = program.param(p).ok_or_else(|| format!("internal: `{name}` is not a declared parameter"))?;
            if decl.trainable && t.dtype.is_float() {
                wrt.push(*v);
                labels.push(format!("grad.param.{p}"));
            }
        }
    }
    let mut g = gradient(&f, table, loss, &wrt)?;
    let grads: Vec<ValueId> = g.results[g.results.len() - wrt.len()..].to_vec();
    g.results.clear();
    g.result_names.clear();
    for (name, v) in &outputs {
        g.results.push(*v);
        g.result_names.push(format!("output:{name}"));
    }
    g.results.extend(grads);
    g.result_names.extend(labels);
    Ok(g)
}

/// Adds an argument `param:NAME` for each declared parameter the forward pass does not
/// read, and puts the parameter arguments (from `first` on) in declaration order.
fn every_param_an_arg(program: &Program, f: &mut Func, first: usize) {
    for p in &program.params {
        let arg = format!("param:{}", p.name);
        if !f.arg_names.contains(&arg) {
            let v = f.next_value();
            f.args.push((v, p.ty.clone()));
            f.arg_names.push(arg);
        }
    }
    let rank = |n: &str| n.strip_prefix("param:").and_then(|p| program.params.iter().position(|d| d.name == p));
    let mut tail: Vec<_> = f.args.drain(first..).zip(f.arg_names.drain(first..)).collect();
    tail.sort_by_key(|(_, n)| rank(n).unwrap_or(usize::MAX));
    for (a, n) in tail {
        f.args.push(a);
        f.arg_names.push(n);
    }
}

/// Adds an argument `cot:OUT` per float output and returns `Σ_OUT sum(OUT * cot:OUT)`.
fn emit_inner_product(e: &mut Emitter, outputs: &[(String, ValueId)]) -> Res<V> {
    let mut terms: Vec<V> = Vec::new();
    for (name, y) in outputs {
        let t = e.ty(*y);
        if !t.dtype.is_float() {
            continue;
        }
        let c = add_arg(e, &format!("cot:{name}"), t.clone());
        let prod = e.mul(*y, c)?;
        // `sum(y * c)`; a scalar output is its own sum.
        let term = match t.rank() {
            0 => prod,
            r => e.op(Op::Reduce { op: ReduceOp::Sum, axes: (0..r).collect(), keepdim: false }, &[prod], None)?,
        };
        terms.push(term);
    }
    let dtypes: HashSet<DType> = terms.iter().map(|t| e.ty(*t).dtype).collect();
    let dtype = match dtypes.len() {
        0 => return Err("the network has no float output to differentiate".into()),
        1 => e.ty(terms[0]).dtype,
        _ => DType::F64,
    };
    let mut loss = e.cast(terms[0], dtype)?;
    for t in &terms[1..] {
        let t = e.cast(*t, dtype)?;
        loss = e.add(loss, t)?;
    }
    Ok(loss)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tir::parse_program;

    const MLP: &str = "program P
param @w : f32[3, 2] = zeros()
buffer @s : f32[2] = zeros()
param @unused : f32[4] = zeros()
func @main(%0: f32[B, 3] \"x\", %1: i64[B] \"k\") -> (f32[B, 2] \"y\", i64[B] \"i\") {
  %2 = param() {name=\"w\"} : f32[3, 2]
  %3 = matmul(%0, %2) : f32[B, 2]
  %4 = param() {name=\"s\"} : f32[2]
  %5 = broadcast(%4) : f32[B, 2]
  %6 = add(%3, %5) : f32[B, 2]
  %7 = argmax(%6) {axis=1, keepdim=false} : i64[B]
  return %6, %7
}
";

    #[test]
    fn the_abi_names_inputs_params_cotangents_outputs_and_gradients() {
        let p = match parse_program(MLP) {
            Ok(p) => p,
            Err(e) => panic!("{e}\n{MLP}"),
        };
        let out = build_vjp_program(&p).unwrap_or_else(|e| panic!("{e}"));
        let f = out.func(VJP).expect("vjp added");
        assert_eq!(f.arg_names, ["x", "k", "param:w", "param:s", "param:unused", "cot:y"]);
        assert_eq!(f.result_names, ["output:y", "output:i", "grad.input.x", "grad.param.w", "grad.param.unused"]);
        assert_eq!(out.func("main"), p.func("main"), "main is kept as it was");
        assert!(build_vjp_program(&out).is_err(), "a second vjp is refused");
    }
}
