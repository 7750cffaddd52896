//! Generated parameters: `inst.param_count` and `inst.with_params(theta)`.
//!
//! An instance's parameters, in declaration order and flattened row-major, are the
//! layout of `theta`. With `theta: f32[P]` the instance runs inline with its params
//! replaced by slices of `theta`. With `theta: f32[B, P]` (one parameter set per sample)
//! the instance is built as its own TIR function taking the params as arguments, and
//! a `vmap` op runs it once per sample.

use super::apply::Inputs;
use super::value::{Instance, TVal, Value};
use super::{Checker, R};
use crate::diag::Diagnostic;
use crate::tir::{Dim, Op, ParamDecl, TensorType};
use archc_grammar::span::Span;
use std::collections::HashMap;

impl Checker<'_> {
    /// The trainable params of an instance in declaration order (built once in a scratch
    /// function to discover them).
    pub fn instance_params(&mut self, inst: &Instance, span: Span) -> R<Vec<ParamDecl>> {
        // The scratch build evaluates the block's body, which may ask for its own
        // instance's parameters again (`let t = N(d); t.param_count` inside `N`).
        if self.depth >= super::MAX_DEPTH {
            return Err(Diagnostic::error("the parameters of this layer depend on themselves", span)
                .with_help("a layer that reads `.param_count` or `.with_params` of an instance of itself never ends"));
        }
        self.depth += 1;
        let r = self.instance_params_scratch(inst, span);
        self.depth -= 1;
        r
    }

    fn instance_params_scratch(&mut self, inst: &Instance, span: Span) -> R<Vec<ParamDecl>> {
        let saved = self.entry_outputs.take();
        self.b.begin_func("scratch", &[]);
        self.push_frame(inst.path.clone());
        let r = self.run_block(&inst.block, &inst.args, Inputs::Entry, span);
        self.pop_frame();
        self.b.discard_func();
        self.entry_outputs = saved;
        r.map_err(|d| self.locate(d))?;
        let prefix = format!("{}.", inst.path);
        Ok(self.b.params.iter().filter(|p| p.trainable && p.name.starts_with(&prefix)).cloned().collect())
    }

    pub fn param_count(&mut self, inst: &Instance, span: Span) -> R<Value> {
        let params = self.instance_params(inst, span)?;
        let total = params.iter().fold(Dim::constant(0), |acc, p| acc.add(&p.ty.numel()));
        Ok(Value::Int(total))
    }

    pub fn apply_with_params(
        &mut self,
        inst: &Instance,
        theta: &TVal,
        inputs: Vec<(Value, Span)>,
        span: Span,
    ) -> R<Value> {
        let params = self.instance_params(inst, span)?;
        let total = params.iter().fold(Dim::constant(0), |acc, p| acc.add(&p.ty.numel()));
        let name = super::value::layer_name(&super::value::Layer::Instance(std::rc::Rc::new(Instance {
            block: inst.block.clone(),
            path: inst.path.clone(),
            args: inst.args.clone(),
            span: inst.span,
        })));
        let per_sample = match theta.ty.rank() {
            1 => false,
            2 => true,
            r => {
                return Err(Diagnostic::error(
                    format!("`with_params` takes theta of shape [P] or [B, P], found rank {r} ({})", theta.ty),
                    span,
                ))
            }
        };
        let p_dim = theta.ty.shape.last().expect("rank >= 1");
        if p_dim != &total {
            return Err(Diagnostic::error(
                format!("theta has {p_dim} entries per parameter set but {name} has {total} parameters"),
                span,
            )
            .with_help("size the generator's output with the target's `.param_count`"));
        }
        let slices = self.split_theta(theta, &params, span)?;
        if per_sample {
            self.vmap_instance(inst, &params, slices, inputs, span)
        } else {
            let map: HashMap<String, TVal> = params.iter().map(|p| p.name.clone()).zip(slices).collect();
            self.overrides.push(map);
            let r = self.apply_instance(inst, inputs, span);
            self.overrides.pop();
            r
        }
    }

    /// Slices `theta` (`[P]` or `[B, P]`) into one tensor per param, reshaped.
    fn split_theta(&mut self, theta: &TVal, params: &[ParamDecl], span: Span) -> R<Vec<TVal>> {
        let lead: Vec<Dim> = theta.ty.shape[..theta.ty.rank() - 1].to_vec();
        let mut off = Dim::constant(0);
        let mut out = Vec::new();
        for p in params {
            let n = p.ty.numel();
            let end = off.add(&n);
            let mut start: Vec<Dim> = vec![Dim::constant(0); lead.len()];
            start.push(off.clone());
            let mut stop = lead.clone();
            stop.push(end.clone());
            let op = Op::Slice { start, end: stop, step: vec![1; lead.len() + 1] };
            let flat = self.emit(op, &[theta], None, span)?;
            let mut shape = lead.clone();
            shape.extend(p.ty.shape.iter().cloned());
            out.push(self.reshape(&flat, shape, span)?);
            off = end;
        }
        Ok(out)
    }

    fn vmap_instance(
        &mut self,
        inst: &Instance,
        params: &[ParamDecl],
        weights: Vec<TVal>,
        inputs: Vec<(Value, Span)>,
        span: Span,
    ) -> R<Value> {
        let mut xs = Vec::new();
        for (v, s) in inputs {
            xs.push(self.expect_tensor(v, s, "an input of a per-sample layer")?);
        }
        let mut arg_types: Vec<(String, TensorType)> = Vec::new();
        for (i, x) in xs.iter().enumerate() {
            let mut t = x.ty.clone();
            if t.rank() == 0 {
                return Err(Diagnostic::error("per-sample parameters need batched inputs (rank >= 1)", span));
            }
            t.shape[0] = Dim::constant(1);
            arg_types.push((format!("x{i}"), t));
        }
        for p in params {
            arg_types.push((p.name.clone(), p.ty.clone()));
        }
        let args = self.b.begin_func(&format!("{}.with_params", inst.path), &arg_types);
        let (fx, fw) = args.split_at(xs.len());
        let map: HashMap<String, TVal> = params.iter().map(|p| p.name.clone()).zip(fw.iter().cloned()).collect();
        self.overrides.push(map);
        let inner: Vec<(Value, Span)> = fx.iter().map(|t| (Value::Tensor(t.clone()), span)).collect();
        let r = self
            .apply_instance(inst, inner, span)
            .and_then(|v| self.expect_tensor(v, span, "a per-sample layer's result"));
        self.overrides.pop();
        let y = match r {
            Ok(y) => y,
            Err(d) => {
                self.b.discard_func();
                return Err(d);
            }
        };
        let func = self.b.end_func(&[("y".into(), y)]);
        let keep: Vec<bool> = xs.iter().map(|_| true).chain(weights.iter().map(|_| false)).collect();
        let operands: Vec<&TVal> = xs.iter().chain(weights.iter()).collect();
        self.emit(Op::Vmap { func, keep, out_keep: vec![true] }, &operands, None, span).map(Value::Tensor)
    }
}
