//! Blocks and layers: binding block parameters, instantiating specs under paths, running
//! a block body (params, inputs, lets, choices, outputs, forward `fn`), and applying
//! every kind of layer value (specs, instances, `skip`, lambdas, `repeat`, `stack`).

use super::args::CallArgs;
use super::scope::Scope;
use super::value::{BlockRef, Env, FnRef, Instance, Layer, TVal, Value};
use super::{join_path, Checker, R};
use crate::diag::{did_you_mean, Diagnostic};
use crate::tir::{DType, Dim, Op, Program, TensorType};
use archc_grammar::ast::{BlockKind, FnDef, ParamDef, Stmt, TypeExpr};
use archc_grammar::span::{FileId, Span};

/// Why an entry is being built.
#[derive(Copy, Clone, PartialEq, Eq, Debug)]
pub enum EntryKind {
    /// The program to emit or run: command-line `--args` apply.
    Program,
    /// `archc check` of a block with all-default parameters.
    Check,
}

/// Where a block's inputs come from.
pub enum Inputs {
    /// Applied to these values.
    Given(Vec<(Value, Span)>),
    /// The entry block: inputs become arguments of `main`.
    Entry,
}

impl Checker<'_> {
    /// Binds call arguments to declared parameters (defaults see earlier parameters).
    pub fn bind_params(
        &mut self,
        params: &[ParamDef],
        args: CallArgs,
        what: &str,
        span: Span,
        m: usize,
    ) -> R<Vec<(String, Value)>> {
        if args.positional.len() > params.len() {
            let extra = &args.positional[params.len()];
            return Err(Diagnostic::error(
                format!("{what} takes {} argument(s) but {} were given", params.len(), args.positional.len()),
                extra.1,
            )
            .with_help(signature(what, params)));
        }
        for (n, _, s) in &args.named {
            if !params.iter().any(|p| &p.name.node == n) {
                let mut d = Diagnostic::error(format!("{what} has no parameter `{n}`"), *s);
                if let Some(h) = did_you_mean(n, params.iter().map(|p| p.name.node.as_str())) {
                    d = d.with_help(format!("did you mean `{h}`?"));
                } else {
                    d = d.with_help(signature(what, params));
                }
                return Err(d);
            }
        }
        let scope = Scope::child(&self.globals[m]);
        let mut pos = args.positional.into_iter();
        let mut named = args.named;
        let mut bound = Vec::new();
        for p in params {
            let given = match pos.next() {
                Some(v) => Some(v),
                None => named.iter().position(|(n, _, _)| n == &p.name.node).map(|i| {
                    let (_, v, s) = named.remove(i);
                    (v, s)
                }),
            };
            let (v, vspan) = match (given, &p.default) {
                (Some(v), _) => v,
                (None, Some(d)) => (self.eval(d, &scope, m)?, d.span),
                (None, None) => {
                    return Err(Diagnostic::error(format!("{what} is missing argument `{}`", p.name.node), span)
                        .with_help(signature(what, params)))
                }
            };
            let v = self.check_value_type(p, v, vspan, what)?;
            scope.set(p.name.node.clone(), v.clone());
            bound.push((p.name.node.clone(), v));
        }
        Ok(bound)
    }

    /// Checks a non-tensor value against `int`, `float`, `bool`, `str`, `layer`, `dtype`.
    fn check_value_type(&mut self, p: &ParamDef, v: Value, span: Span, what: &str) -> R<Value> {
        let Some(TypeExpr::Named(t)) = &p.ty else { return Ok(v) };
        let ok = match (t.node.as_str(), &v) {
            ("int", Value::Int(_) | Value::Elastic { .. }) => true,
            ("float", Value::Int(d)) if d.is_const() => {
                return Ok(Value::Float(d.as_const().unwrap_or(0) as f64));
            }
            ("float", Value::Float(_)) | ("bool", Value::Bool(_)) | ("str", Value::Str(_)) => true,
            ("layer", Value::Layer(_) | Value::Func(_)) | ("dtype", Value::DType(_)) => true,
            ("layer", Value::Block(b)) => {
                let b = b.clone();
                return self.make_spec(&b, CallArgs::default(), span).map(Value::Layer);
            }
            ("int" | "float" | "bool" | "str" | "layer" | "dtype", _) => false,
            (other, _) => {
                return Err(Diagnostic::error(format!("unknown parameter type `{other}`"), t.span)
                    .with_help("parameter types are int, float, bool, str, layer, dtype or a tensor type"))
            }
        };
        if ok {
            Ok(v)
        } else {
            Err(Diagnostic::error(
                format!("argument `{}` of {what} must be {}, found {} `{v}`", p.name.node, t.node, v.kind()),
                span,
            ))
        }
    }

    /// `Block(args)`: a layer spec with its parameters bound (and checked) now.
    pub fn make_spec(&mut self, b: &BlockRef, args: CallArgs, span: Span) -> R<Layer> {
        let args = self.bind_params(&b.def.params, args, &b.def.name.node, span, b.module)?;
        Ok(Layer::Spec { block: b.clone(), args, span, tag: None })
    }

    pub fn apply_layer(&mut self, l: &Layer, inputs: Vec<(Value, Span)>, span: Span) -> R<Value> {
        match l {
            Layer::Spec { block, args, span: s, tag } => {
                let path = self.anon_path(&tagged(&block.def.name.node, tag));
                let inst = Instance { block: block.clone(), path, args: args.clone(), span: *s };
                self.apply_instance(&inst, inputs, span)
            }
            Layer::Instance(inst) => self.apply_instance(inst, inputs, span),
            Layer::Skip => single_input(inputs, "skip", span),
            Layer::Lambda { param, body, env, module } => {
                let x = single_input(inputs, "a lambda", span)?;
                let scope = Scope::child(env);
                scope.set(param.clone(), x);
                self.eval(body, &scope, *module)
            }
            Layer::Repeat { count, index, body, env, module, stack, name } => {
                let x = single_tensor(inputs, if *stack { "stack" } else { "repeat" }, span)?;
                let rep = Repeat {
                    count: *count,
                    index: index.as_deref(),
                    body,
                    env,
                    module: *module,
                    name: name.as_deref(),
                };
                if *stack {
                    self.apply_stack(&rep, x, span)
                } else {
                    self.apply_repeat(&rep, x, span)
                }
            }
            Layer::WithParams { inst, theta, .. } => self.apply_with_params(inst, theta, inputs, span),
            Layer::Func(c) => {
                let args = CallArgs { positional: inputs, named: Vec::new() };
                self.call_value(Value::Func(c.clone()), args, None, span, span)
            }
            Layer::Gated { gate, options } => {
                self.mix_gated(gate, options.len(), span, |c, j| c.apply_layer(&options[j], inputs.clone(), span))
            }
        }
    }

    pub fn apply_instance(&mut self, inst: &Instance, inputs: Vec<(Value, Span)>, span: Span) -> R<Value> {
        let user_site = span.file == FileId(0);
        if user_site {
            self.call_sites.push(span);
        }
        self.push_frame(inst.path.clone());
        let r = self.run_block(&inst.block, &inst.args, Inputs::Given(inputs), span).map_err(|d| self.locate(d));
        self.pop_frame();
        if user_site {
            self.call_sites.pop();
        }
        r
    }

    /// Runs a block body; returns the block's value (forward result or first output).
    /// A failed statement is recorded and poisons its name; the other statements still
    /// run (unless it was a check, `let _ = assert(..)`), and the block then fails with
    /// poison (see `recover`). A block that did not parse, or whose names clash, fails
    /// with poison at once: its errors are reported elsewhere.
    pub fn run_block(&mut self, b: &BlockRef, args: &[(String, Value)], inputs: Inputs, span: Span) -> R<Value> {
        let outer = self.grid.len();
        if b.def.kind == BlockKind::Operator {
            self.grid.extend(b.def.grid.iter().map(|g| g.node.clone()));
        }
        let r = self.run_block_body(b, args, inputs, span);
        self.grid.truncate(outer);
        r
    }

    fn run_block_body(&mut self, b: &BlockRef, args: &[(String, Value)], inputs: Inputs, span: Span) -> R<Value> {
        if self.modules[b.module].is_broken(b.def.span) {
            return Err(Diagnostic::poison());
        }
        let m = b.module;
        let def = b.def.clone();
        let is_entry = matches!(inputs, Inputs::Entry);
        let scope = Scope::child(&self.globals[m]);
        for (n, v) in args {
            scope.set(n.clone(), v.clone());
        }
        let mut body = Body {
            scope,
            m,
            grid: def.grid.iter().map(|g| g.node.clone()).collect(),
            operator: def.kind == BlockKind::Operator,
            given: match inputs {
                Inputs::Given(v) => Some(v.into_iter()),
                Inputs::Entry => None,
            },
            name: super::value::display_name(&def, args),
            span,
            outputs: Vec::new(),
            n_inputs: 0,
            missing_reported: false,
        };
        let mut forward: Option<&FnDef> = None;
        let mut failed = false;
        for stmt in &def.body {
            if let Stmt::Forward(f) = stmt {
                forward = Some(f);
                continue;
            }
            if self.attempt(|c| c.body_stmt(stmt, &mut body)).is_none() {
                failed = true;
                if guards_rest(stmt) {
                    return Err(Diagnostic::poison());
                }
                if let Some(n) = bound_name(stmt) {
                    body.scope.set(n, Value::Poison);
                }
            }
        }
        let name = &body.name;
        if let Some(f) = forward {
            if body.n_inputs > 0 {
                return Err(Diagnostic::error(format!("{name} has both `input`s and a forward `fn`"), f.span)
                    .with_help("a layer declares a `fn`; a network declares `input`s and `output`s"));
            }
            let vals = match body.given.take() {
                Some(it) => it.collect(),
                None => self.entry_fn_inputs(f, &body.scope, m)?,
            };
            let y = self.apply_fn(f, vals, &body.scope, m, name, span)?;
            if failed {
                return Err(Diagnostic::poison());
            }
            if let (true, Value::Tensor(t)) = (is_entry, &y) {
                self.entry_outputs = Some(vec![("y".into(), t.clone())]);
            }
            return Ok(y);
        }
        if let Some(mut extra) = body.given.take() {
            if let Some((_, s)) = extra.next() {
                return Err(Diagnostic::error(
                    format!("{name} takes {} input(s); this one is extra", body.n_inputs),
                    s,
                ));
            }
        }
        if failed {
            return Err(Diagnostic::poison());
        }
        let first =
            body.outputs.first().map(|(_, t)| Value::Tensor(t.clone())).ok_or_else(|| {
                Diagnostic::error(format!("{name} has no `output` and no forward `fn`"), def.name.span)
            })?;
        if is_entry {
            self.entry_outputs = Some(body.outputs);
        }
        Ok(first)
    }

    /// One statement of a block body (not the forward `fn`).
    fn body_stmt(&mut self, stmt: &Stmt, body: &mut Body) -> R<()> {
        let (scope, m) = (&body.scope.clone(), body.m);
        match stmt {
            Stmt::Param { name: pname, ty, init, cond, buffer, span: s } => {
                let p = super::params::ParamStmt { name: pname, ty, init, cond, buffer: *buffer, span: *s };
                self.param_stmt(&p, scope, m, &body.grid, body.operator)?;
            }
            Stmt::Input { name: iname, ty, span: s } => {
                body.n_inputs += 1;
                let v = match body.given.as_mut() {
                    None => Value::Tensor(self.entry_input(&iname.node, ty, scope, m)?),
                    Some(it) => {
                        let Some((v, vs)) = it.next() else {
                            // Only the first missing input is reported.
                            if std::mem::replace(&mut body.missing_reported, true) {
                                return Err(Diagnostic::poison());
                            }
                            return Err(Diagnostic::error(
                                format!("{} expects an input `{}`, none was given", body.name, iname.node),
                                body.span,
                            )
                            .with_related(*s, "declared here"));
                        };
                        self.check_tensor_arg(&iname.node, ty, v, vs, scope, m, &body.name)?
                    }
                };
                scope.set(iname.node.clone(), v);
            }
            Stmt::Output { name: oname, ty, value, .. } => {
                let v = self.eval(value, scope, m)?;
                let t = self.expect_tensor(v, value.span, &format!("output `{}`", oname.node))?;
                if let Some(ty) = ty {
                    self.unify(ty, &t.ty, scope, m, &format!("output `{}`", oname.node), value.span)?;
                }
                scope.set(oname.node.clone(), Value::Tensor(t.clone()));
                body.outputs.push((oname.node.clone(), t));
            }
            Stmt::Let { name: lname, ty, value, .. } => {
                let v = self.eval(value, scope, m)?;
                let v = self.bind_let(&lname.node, v);
                if let (Some(ty), Value::Tensor(t)) = (ty, &v) {
                    self.unify(ty, &t.ty, scope, m, &format!("`{}`", lname.node), value.span)?;
                }
                scope.set(lname.node.clone(), v);
            }
            Stmt::Choose { name: cname, options, shared, span: s } => {
                let v = self.choose(&cname.node, options, *shared, scope, m, *s)?;
                scope.set(cname.node.clone(), v);
            }
            Stmt::Forward(_) => {}
            // The parser reported it.
            Stmt::Error(_) => return Err(Diagnostic::poison()),
        }
        Ok(())
    }

    /// Applies a forward function `fn (x: T, ...) -> T { body }` in the block's scope.
    fn apply_fn(
        &mut self,
        f: &FnDef,
        inputs: Vec<(Value, Span)>,
        scope: &Env,
        m: usize,
        what: &str,
        span: Span,
    ) -> R<Value> {
        if inputs.len() > f.params.len() {
            return Err(Diagnostic::error(
                format!("{what} takes {} input(s) but {} were given", f.params.len(), inputs.len()),
                inputs[f.params.len()].1,
            ));
        }
        let fscope = Scope::child(scope);
        let mut it = inputs.into_iter();
        for p in &f.params {
            let v = match (it.next(), &p.default) {
                (Some((v, vs)), _) => match &p.ty {
                    Some(ty @ TypeExpr::Tensor { .. }) => {
                        self.check_tensor_arg(&p.name.node, ty, v, vs, &fscope, m, what)?
                    }
                    _ => v,
                },
                (None, Some(d)) => self.eval(d, &fscope, m)?,
                (None, None) => {
                    return Err(Diagnostic::error(format!("{what} is missing input `{}`", p.name.node), span)
                        .with_related(p.span, "declared here"))
                }
            };
            fscope.set(p.name.node.clone(), v);
        }
        let y = self.eval(&f.body, &fscope, m)?;
        if let (Some(ty), Value::Tensor(t)) = (&f.ret, &y) {
            self.unify(ty, &t.ty, &fscope, m, &format!("the result of {what}"), f.body.span)?;
        }
        Ok(y)
    }

    /// Calls a named user function: a fresh scope over its module's globals.
    pub fn call_user_fn(&mut self, fr: &FnRef, args: CallArgs, span: Span) -> R<Value> {
        if self.modules[fr.module].is_broken(fr.def.span) {
            return Err(Diagnostic::poison());
        }
        let name = fr.def.name.as_ref().map(|n| n.node.clone()).unwrap_or_default();
        let scope = Scope::child(&self.globals[fr.module]);
        let values = self.bind_fn_args(&fr.def.params, args, &name, span, &scope, fr.module)?;
        for (n, v) in values {
            scope.set(n, v);
        }
        let y = self.eval(&fr.def.body, &scope, fr.module)?;
        if let (Some(ty), Value::Tensor(t)) = (&fr.def.ret, &y) {
            self.unify(ty, &t.ty, &scope, fr.module, &format!("the result of `{name}`"), fr.def.body.span)?;
        }
        Ok(y)
    }

    fn bind_fn_args(
        &mut self,
        params: &[ParamDef],
        args: CallArgs,
        name: &str,
        span: Span,
        scope: &Env,
        m: usize,
    ) -> R<Vec<(String, Value)>> {
        let (tensor_params, plain): (Vec<usize>, Vec<usize>) =
            (0..params.len()).partition(|&i| matches!(params[i].ty, Some(TypeExpr::Tensor { .. })));
        let bound = self.bind_params(&strip_tensor_types(params), args, &format!("`{name}`"), span, m)?;
        let _ = plain;
        let mut out = Vec::new();
        for (i, (n, v)) in bound.into_iter().enumerate() {
            let v = if tensor_params.contains(&i) {
                let ty = params[i].ty.as_ref().expect("typed");
                self.check_tensor_arg(&n, ty, v, span, scope, m, &format!("`{name}`"))?
            } else {
                v
            };
            scope.set(n.clone(), v.clone());
            out.push((n, v));
        }
        Ok(out)
    }

    /// Builds `block` as the whole program (`main`).
    pub fn build_entry(&mut self, block: &BlockRef, kind: EntryKind) -> R<Program> {
        let name = block.def.name.node.clone();
        let mut args = CallArgs::default();
        if kind == EntryKind::Program {
            for (k, v) in &self.opts.args {
                args.named.push((k.clone(), parse_cli_value(v), block.def.name.span));
            }
        }
        let spec = self.make_spec(block, args, block.def.name.span).map_err(|d| {
            if d.message.contains("is missing argument") {
                d.with_help(format!(
                    "give every parameter of `{name}` a default, or pass values with `--args name=value,...`"
                ))
            } else {
                d
            }
        })?;
        let Layer::Spec { args, .. } = spec else { unreachable!("make_spec returns a spec") };
        self.build_spec(block, args)
    }

    /// Builds `block` with bound arguments as the whole program.
    pub fn build_spec(&mut self, block: &BlockRef, args: Vec<(String, Value)>) -> R<Program> {
        let name = block.def.name.node.clone();
        self.b.begin_func("main", &[]);
        self.entry_outputs = Some(Vec::new());
        self.push_frame(String::new());
        let r = self.run_block(block, &args, Inputs::Entry, block.def.name.span);
        self.pop_frame();
        if let Err(d) = r {
            self.b.discard_func();
            return Err(d);
        }
        let mut outputs = self.entry_outputs.take().unwrap_or_default();
        for (name, v) in std::mem::take(&mut self.buffer_updates) {
            outputs.push((format!("buffer:{name}"), v));
        }
        for (name, sym) in std::mem::take(&mut self.elastic_args) {
            let carrier = TensorType::new(DType::F32, vec![Dim::constant(0), Dim::sym(sym)]);
            self.b.add_arg(&format!("choice:{name}"), carrier);
        }
        self.b.end_func(&outputs);
        let b = std::mem::take(&mut self.b);
        let mut program = b.finish(&name);
        if self.opts.validate_only {
            // Every instruction was shape-checked as it was built; that is the answer.
            return Ok(program);
        }
        crate::passes::cleanup(&mut program);
        if self.made_shared && !self.shared_at_max {
            self.share_initialisers(block, args, &mut program);
        }
        if let Err(errors) = crate::tir::verify::verify(&program) {
            let msg: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
            return Err(Diagnostic::error(
                format!("internal error: the generated TIR does not verify: {}", msg.join("; ")),
                block.def.name.span,
            ));
        }
        Ok(program)
    }

    /// Gives the parameters of a candidate of a space with `shared` choices the
    /// initialisers of the candidate with every shared choice at its largest option, so
    /// that every candidate starts from the same weights (an init range computed from a
    /// chosen width would otherwise differ per candidate).
    fn share_initialisers(&self, block: &BlockRef, args: Vec<(String, Value)>, program: &mut Program) {
        let mut largest = Checker::new(self.modules, self.opts);
        largest.shared_at_max = true;
        let Ok(reference) = largest.build_spec(block, args) else { return };
        for p in &mut program.params {
            if let Some(r) = reference.param(&p.name).filter(|r| r.ty == p.ty) {
                p.init = r.init.clone();
            }
        }
    }

    /// Applies `repeat n { body }` to `x`: `n` fresh copies in sequence.
    fn apply_repeat(&mut self, rep: &Repeat, x: TVal, span: Span) -> R<Value> {
        let base = rep.name.map(str::to_string).unwrap_or_else(|| self.anon_path("repeat"));
        let mut h = Value::Tensor(x);
        for i in 0..rep.count {
            self.push_frame(join_path(&base, &i.to_string()));
            let r = self.repeat_iteration(rep, i, h, span);
            self.pop_frame();
            h = r?;
        }
        Ok(h)
    }

    fn repeat_iteration(&mut self, rep: &Repeat, i: usize, h: Value, span: Span) -> R<Value> {
        let scope = Scope::child(rep.env);
        if let Some(ix) = rep.index {
            scope.set(ix, Value::Int((i as i64).into()));
        }
        let body = self.eval(rep.body, &scope, rep.module)?;
        let layer = self.as_layer(body, rep.body.span)?;
        self.iteration_layer(layer, h, span)
    }

    /// Applies the layer a repeat body gave to the iteration's input `h`.
    fn iteration_layer(&mut self, layer: Layer, h: Value, span: Span) -> R<Value> {
        match layer {
            // A spec in a repeat body is the iteration's own instance: `repeat_0.3.w`.
            Layer::Spec { block, args, span: s, tag: None } => {
                let path = self.frame().path.clone();
                let inst = Instance { block, path, args, span: s };
                self.run_instance_here(&inst, vec![(h, span)], span)
            }
            // A supernet's option: its own weights below the iteration's path.
            Layer::Spec { block, args, span: s, tag: Some(t) } => {
                let path = join_path(&self.frame().path, &t);
                self.push_frame(path.clone());
                let inst = Instance { block, path, args, span: s };
                let r = self.run_instance_here(&inst, vec![(h, span)], span);
                self.pop_frame();
                r
            }
            Layer::Gated { gate, options } => self
                .mix_gated(&gate, options.len(), span, |c, j| c.iteration_layer(options[j].clone(), h.clone(), span)),
            other => self.apply_layer(&other, vec![(h, span)], span),
        }
    }

    /// Runs an instance whose path is the current frame's (no new frame).
    fn run_instance_here(&mut self, inst: &Instance, inputs: Vec<(Value, Span)>, span: Span) -> R<Value> {
        self.frame().counters.clear();
        self.run_block(&inst.block, &inst.args, Inputs::Given(inputs), span).map_err(|d| self.locate(d))
    }

    /// Applies `stack(n) { body }` to `x`: each block becomes its own TIR function.
    fn apply_stack(&mut self, rep: &Repeat, x: TVal, span: Span) -> R<Value> {
        let base = rep.name.map(str::to_string).unwrap_or_else(|| self.anon_path("stack"));
        let mut funcs = Vec::new();
        for i in 0..rep.count {
            let path = join_path(&base, &i.to_string());
            let arg = self.b.begin_func(&path, &[("x".to_string(), x.ty.clone())]).remove(0);
            self.push_frame(path);
            let r = self.repeat_iteration(rep, i, Value::Tensor(arg), span);
            self.pop_frame();
            let y = match r.and_then(|v| self.expect_tensor(v, rep.body.span, "a stack block")) {
                Ok(y) => y,
                Err(d) => {
                    self.b.discard_func();
                    return Err(d);
                }
            };
            if y.ty != x.ty {
                self.b.discard_func();
                return Err(Diagnostic::error(
                    format!(
                        "block {i} of this stack maps {} to {}; every block of a stack must keep the shape",
                        x.ty, y.ty
                    ),
                    rep.body.span,
                )
                .with_help(
                    "blocks may be skipped or repeated per sample, so each must map a tensor to one of the same type",
                ));
            }
            funcs.push(self.b.end_func(&[("y".to_string(), y)]));
        }
        if funcs.is_empty() {
            return Ok(Value::Tensor(x));
        }
        self.emit(Op::Stack(funcs), &[&x], None, span).map(Value::Tensor)
    }

    /// Turns a value into a layer (`Linear` with all defaults, a function, ...).
    pub fn as_layer(&mut self, v: Value, span: Span) -> R<Layer> {
        match v {
            Value::Layer(l) => Ok(l),
            Value::Func(c) => Ok(Layer::Func(c)),
            Value::Block(b) => self.make_spec(&b, CallArgs::default(), span),
            other => Err(Diagnostic::error(format!("expected a layer, found {} `{other}`", other.kind()), span)),
        }
    }

    pub fn expect_tensor(&self, v: Value, span: Span, what: &str) -> R<TVal> {
        match v {
            Value::Tensor(t) => Ok(t),
            other => Err(Diagnostic::error(format!("{what} must be a tensor, found {} `{other}`", other.kind()), span)),
        }
    }
}

/// A block body being run: its scope and what its statements have produced so far.
struct Body {
    scope: Env,
    m: usize,
    grid: Vec<String>,
    operator: bool,
    /// The inputs not yet taken by an `input` statement (`None` for the entry).
    given: Option<std::vec::IntoIter<(Value, Span)>>,
    /// The block as shown in messages: `Linear(4, 8)`.
    name: String,
    /// Where the block is applied.
    span: Span,
    outputs: Vec<(String, TVal)>,
    n_inputs: usize,
    /// Whether an input with no value was reported (later ones are not).
    missing_reported: bool,
}

/// Whether a statement is a check that the rest of its block relies on: `let _ = ..`
/// (`let _ = assert(c_in % groups == 0, ..)`) binds nothing that could be poisoned, so
/// when it fails the block stops there.
fn guards_rest(s: &Stmt) -> bool {
    matches!(s, Stmt::Let { name, .. } if name.node == "_")
}

/// The name a statement binds (poisoned when the statement fails).
fn bound_name(s: &Stmt) -> Option<String> {
    match s {
        Stmt::Param { name, .. }
        | Stmt::Input { name, .. }
        | Stmt::Output { name, .. }
        | Stmt::Let { name, .. }
        | Stmt::Choose { name, .. } => Some(name.node.clone()),
        Stmt::Forward(_) | Stmt::Error(_) => None,
    }
}

/// The pieces of a `repeat`/`stack` layer.
pub struct Repeat<'a> {
    pub count: usize,
    pub index: Option<&'a str>,
    pub body: &'a archc_grammar::ast::Expr,
    pub env: &'a Env,
    pub module: usize,
    /// The path given by `let`, if any.
    pub name: Option<&'a str>,
}

fn single_input(inputs: Vec<(Value, Span)>, what: &str, span: Span) -> R<Value> {
    let n = inputs.len();
    let mut it = inputs.into_iter();
    match (it.next(), n) {
        (Some((v, _)), 1) => Ok(v),
        _ => Err(Diagnostic::error(format!("{what} takes one input, {n} given"), span)),
    }
}

fn single_tensor(inputs: Vec<(Value, Span)>, what: &str, span: Span) -> R<TVal> {
    match single_input(inputs, what, span)? {
        Value::Tensor(t) => Ok(t),
        other => Err(Diagnostic::error(format!("{what} applies to a tensor, found {} `{other}`", other.kind()), span)),
    }
}

fn signature(what: &str, params: &[ParamDef]) -> String {
    let ps: Vec<String> = params
        .iter()
        .map(|p| {
            let ty = match &p.ty {
                Some(TypeExpr::Named(t)) => format!(": {}", t.node),
                Some(TypeExpr::Tensor { dtype, .. }) => format!(": {}[..]", dtype.node),
                None => String::new(),
            };
            let def = if p.default.is_some() { " = .." } else { "" };
            format!("{}{ty}{def}", p.name.node)
        })
        .collect();
    format!("the signature is {what}({})", ps.join(", "))
}

fn strip_tensor_types(params: &[ParamDef]) -> Vec<ParamDef> {
    params
        .iter()
        .map(|p| {
            let mut p = p.clone();
            if matches!(p.ty, Some(TypeExpr::Tensor { .. })) {
                p.ty = None;
            }
            p
        })
        .collect()
}

/// A command-line value: int, float, bool, else a string.
pub fn parse_cli_value(s: &str) -> Value {
    if let Ok(i) = s.parse::<i64>() {
        Value::Int(i.into())
    } else if let Ok(f) = s.parse::<f64>() {
        Value::Float(f)
    } else if let Ok(b) = s.parse::<bool>() {
        Value::Bool(b)
    } else {
        Value::Str(s.to_string())
    }
}

/// `base`, or `base_TAG` for a spec tagged by a supernet build's choice.
pub fn tagged(base: &str, tag: &Option<String>) -> String {
    match tag {
        Some(t) => format!("{base}_{t}"),
        None => base.to_string(),
    }
}
