//! Evaluation of expressions to compile-time values, emitting TIR for tensor work.

use super::args::CallArgs;
use super::scope::Scope;
use super::value::{Callable, Env, Layer, TVal, Value};
use super::{Checker, MAX_DEPTH, R};
use crate::diag::{did_you_mean, Diagnostic};
use crate::tir::{Dim, UnaryOp};
use archc_grammar::ast::{BinOp, Expr, ExprKind, UnOp};
use archc_grammar::span::Span;
use std::rc::Rc;

impl Checker<'_> {
    pub fn eval(&mut self, e: &Expr, env: &Env, m: usize) -> R<Value> {
        if self.fuel == 0 {
            return Err(Diagnostic::error("this program is too large to build (evaluation budget exhausted)", e.span)
                .with_help("look for nested `repeat`s with large counts"));
        }
        self.fuel -= 1;
        match &e.kind {
            ExprKind::Int(i) if i.unsigned_abs() > super::tensor_ops::MAX_INT => {
                Err(Diagnostic::error(format!("integer {i} is too large (at most 2^53 in magnitude)"), e.span))
            }
            ExprKind::Int(i) => Ok(Value::Int(Dim::constant(*i))),
            ExprKind::Float(f) => Ok(Value::Float(*f)),
            ExprKind::Bool(b) => Ok(Value::Bool(*b)),
            ExprKind::Str(s) => Ok(Value::Str(s.clone())),
            ExprKind::Name(n) => self.lookup(n, e.span, env, m),
            ExprKind::Skip => Ok(Value::Layer(Layer::Skip)),
            ExprKind::List(items) => {
                let vals = items.iter().map(|i| self.eval(i, env, m)).collect::<R<Vec<_>>>()?;
                Ok(Value::List(vals))
            }
            ExprKind::Unary(op, x) => {
                let v = self.eval(x, env, m)?;
                self.unary(*op, v, e.span)
            }
            ExprKind::Binary(op, a, b) => {
                let va = self.eval(a, env, m)?;
                let vb = self.eval(b, env, m)?;
                self.binary(*op, va, vb, e.span)
            }
            ExprKind::Pipe(lhs, rhs) => {
                let x = self.eval(lhs, env, m)?;
                self.pipe(x, rhs, env, m)
            }
            ExprKind::Call(callee, args) => {
                let args = CallArgs::eval(self, args, env, m)?;
                self.eval_call(callee, args, None, e.span, env, m)
            }
            ExprKind::Index(x, items) => {
                let v = self.eval(x, env, m)?;
                self.index(v, items, e.span, env, m)
            }
            ExprKind::Field(x, name) => {
                let v = self.eval(x, env, m)?;
                self.field(v, &name.node, name.span)
            }
            ExprKind::If(c, a, b) => match self.eval(c, env, m)? {
                Value::Bool(true) => self.eval(a, env, m),
                Value::Bool(false) => self.eval(b, env, m),
                other => {
                    Err(Diagnostic::error(format!("`if` needs a compile-time bool, found {}", other.kind()), c.span)
                        .with_help("conditions are decided when the model is built; use `where(c, a, b)` for tensors"))
                }
            },
            ExprKind::Block(lets, result) => {
                let scope = Scope::child(env);
                for l in lets {
                    let v = match (&l.choose, &l.value.kind) {
                        (true, ExprKind::List(options)) => {
                            self.choose(&l.name.node, options, false, &scope, m, l.span)?
                        }
                        _ => self.eval(&l.value, &scope, m)?,
                    };
                    let v = self.bind_let(&l.name.node, v);
                    scope.set(l.name.node.clone(), v);
                }
                self.eval(result, &scope, m)
            }
            ExprKind::Repeat { count, index, body, stack } => {
                let n = self.eval(count, env, m)?;
                let count = self.concrete_count(&n, count.span)?;
                let index = index.as_ref().map(|i| i.node.clone());
                let body = Rc::new((**body).clone());
                Ok(Value::Layer(Layer::Repeat {
                    count,
                    index,
                    body,
                    env: env.clone(),
                    module: m,
                    stack: *stack,
                    name: None,
                }))
            }
            ExprKind::Lambda(p, body) => Ok(Value::Layer(Layer::Lambda {
                param: p.node.clone(),
                body: Rc::new((**body).clone()),
                env: env.clone(),
                module: m,
            })),
            // The syntax error is reported by the parser.
            ExprKind::Error => Err(Diagnostic::poison()),
        }
    }

    fn concrete_count(&self, v: &Value, span: Span) -> R<usize> {
        match v.as_const_int() {
            Some(n) if n >= 0 && n <= 10_000 => Ok(n as usize),
            Some(n) => Err(Diagnostic::error(format!("repeat count must be between 0 and 10000, found {n}"), span)),
            None if v.as_dim().is_some() => Err(Diagnostic::error(
                format!("repeat count must be known when the model is built; `{v}` is a symbolic dim"),
                span,
            )),
            None => Err(Diagnostic::error(format!("repeat count must be an int, found {} `{v}`", v.a_kind()), span)),
        }
    }

    /// `let` of a layer spec makes a named instance; other values bind as they are.
    pub fn bind_let(&mut self, name: &str, v: Value) -> Value {
        match v {
            Value::Layer(Layer::Spec { block, args, span, tag }) => {
                let path = self.let_path(&super::apply::tagged(name, &tag));
                Value::Layer(Layer::Instance(Rc::new(super::value::Instance { block, path, args, span })))
            }
            Value::Layer(Layer::Repeat { count, index, body, env, module, stack, name: None }) => {
                let name = Some(self.let_path(name));
                Value::Layer(Layer::Repeat { count, index, body, env, module, stack, name })
            }
            other => other,
        }
    }

    /// A name's value; a poisoned name, or an unknown one that resolution reported,
    /// stops evaluation silently.
    pub fn lookup(&mut self, name: &str, span: Span, env: &Env, m: usize) -> R<Value> {
        match env.get(name).or_else(|| self.globals[m].get(name)) {
            Some(Value::Poison) => return Err(Diagnostic::poison()),
            Some(v) => return Ok(v),
            None => {}
        }
        if name == "training" {
            return Ok(Value::Bool(self.opts.training));
        }
        if let Some(v) = super::builtins::lookup(name) {
            return Ok(v);
        }
        if self.modules[m].quiet_unknown(span) {
            return Err(Diagnostic::poison());
        }
        let mut names = env.names();
        names.extend(self.globals[m].names());
        let mut d = Diagnostic::error(format!("unknown name `{name}`"), span).with_label("not defined here");
        if let Some(s) = did_you_mean(name, names.iter().map(|s| s.as_str())) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        Err(d)
    }

    /// `x |> rhs`
    fn pipe(&mut self, x: Value, rhs: &Expr, env: &Env, m: usize) -> R<Value> {
        if let ExprKind::Call(callee, args) = &rhs.kind {
            let f = self.eval(callee, env, m)?;
            if matches!(f, Value::Func(Callable::User(_) | Callable::Builtin(_)) | Value::Block(_)) {
                let args = CallArgs::eval(self, args, env, m)?;
                return self.call_value(f, args, Some(x), rhs.span, callee.span);
            }
        }
        let f = self.eval(rhs, env, m)?;
        self.call_value(f, CallArgs::default(), Some(x), rhs.span, rhs.span)
    }

    /// `callee(args)`, with `piped` as an extra first argument for `x |> f(args)`.
    pub fn eval_call(
        &mut self,
        callee: &Expr,
        args: CallArgs,
        piped: Option<Value>,
        span: Span,
        env: &Env,
        m: usize,
    ) -> R<Value> {
        let f = self.eval(callee, env, m)?;
        self.call_value(f, args, piped, span, callee.span)
    }

    pub fn call_value(&mut self, f: Value, args: CallArgs, piped: Option<Value>, span: Span, fspan: Span) -> R<Value> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            self.depth -= 1;
            return Err(Diagnostic::error("calls are nested too deeply", span)
                .with_help("a layer or function that applies itself (directly or through others) never ends"));
        }
        let r = self.call_value_inner(f, args, piped, span, fspan);
        self.depth -= 1;
        r
    }

    fn call_value_inner(
        &mut self,
        f: Value,
        mut args: CallArgs,
        piped: Option<Value>,
        span: Span,
        fspan: Span,
    ) -> R<Value> {
        match f {
            Value::Func(Callable::Builtin(name)) => {
                args.prepend(piped, span);
                super::builtins::call(self, name, args, span)
            }
            Value::Func(Callable::WithParams(inst)) => {
                args.prepend(piped, span);
                let mut r = super::args::ArgReader::new("with_params", args, span);
                let theta = r.tensor("theta")?;
                r.finish()?;
                Ok(Value::Layer(Layer::WithParams { inst, theta, span }))
            }
            Value::Func(Callable::User(fr)) => {
                args.prepend(piped, span);
                self.call_user_fn(&fr, args, span)
            }
            Value::Block(b) => {
                let spec = self.make_spec(&b, args, span)?;
                match piped {
                    Some(x) => self.apply_layer(&spec, vec![(x, span)], span),
                    None => Ok(Value::Layer(spec)),
                }
            }
            Value::Layer(l) => {
                args.prepend(piped, span);
                let inputs = args.into_inputs(span)?;
                self.apply_layer(&l, inputs, span)
            }
            other => Err(Diagnostic::error(format!("{} is not callable", other.a_kind()), fspan)),
        }
    }

    fn unary(&mut self, op: UnOp, v: Value, span: Span) -> R<Value> {
        match (op, v) {
            (UnOp::Neg, Value::Int(d)) if d.as_const() != Some(i64::MIN) => Ok(Value::Int(d.neg())),
            (UnOp::Neg, Value::Elastic { value, chosen, max }) if chosen != i64::MIN && max != i64::MIN => {
                Ok(Value::Elastic { value: value.neg(), chosen: -chosen, max: -max })
            }
            (UnOp::Neg, Value::Float(f)) => Ok(Value::Float(-f)),
            (UnOp::Not, Value::Bool(b)) => Ok(Value::Bool(!b)),
            (UnOp::Neg, Value::Tensor(t)) => self.unary_tensor(UnaryOp::Neg, &t, span),
            (UnOp::Not, Value::Tensor(t)) => self.unary_tensor(UnaryOp::Not, &t, span),
            (op, v) => Err(Diagnostic::error(
                format!("cannot apply `{}` to a {}", if op == UnOp::Neg { "-" } else { "!" }, v.kind()),
                span,
            )),
        }
    }

    pub fn unary_tensor(&mut self, op: UnaryOp, t: &TVal, span: Span) -> R<Value> {
        self.emit(crate::tir::Op::Unary(op), &[t], None, span).map(Value::Tensor)
    }

    fn binary(&mut self, op: BinOp, a: Value, b: Value, span: Span) -> R<Value> {
        if let (Value::Tensor(_), _) | (_, Value::Tensor(_)) = (&a, &b) {
            return self.binary_tensor(op, a, b, span).map(Value::Tensor);
        }
        super::tensor_ops::binary_const(op, &a, &b).ok_or_else(|| {
            Diagnostic::error(
                format!("cannot apply `{}` to {} `{a}` and {} `{b}`", op.symbol(), a.kind(), b.kind()),
                span,
            )
        })
    }

    /// Emits an instruction, turning a shape-rule violation into a diagnostic.
    pub fn emit(
        &mut self,
        op: crate::tir::Op,
        args: &[&TVal],
        declared: Option<crate::tir::TensorType>,
        span: Span,
    ) -> R<TVal> {
        self.b.emit(op, args, declared, span).map_err(|msg| Diagnostic::error(msg, span))
    }
}
