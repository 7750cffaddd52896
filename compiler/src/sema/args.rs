//! Call arguments: evaluation, and typed access for builtins.

use super::value::{Env, TVal, Value};
use super::{Checker, R};
use crate::diag::{did_you_mean, Diagnostic};
use crate::tir::Dim;
use archc_grammar::ast::Arg;
use archc_grammar::span::Span;
use std::collections::VecDeque;

#[derive(Default, Debug)]
pub struct CallArgs {
    pub positional: Vec<(Value, Span)>,
    pub named: Vec<(String, Value, Span)>,
}

impl CallArgs {
    pub fn eval(c: &mut Checker, args: &[Arg], env: &Env, m: usize) -> R<CallArgs> {
        let mut out = CallArgs::default();
        for a in args {
            let v = c.eval(&a.value, env, m)?;
            match &a.name {
                Some(n) => {
                    if out.named.iter().any(|(k, _, _)| k == &n.node) {
                        return Err(Diagnostic::error(format!("argument `{}` is given twice", n.node), n.span));
                    }
                    out.named.push((n.node.clone(), v, a.span))
                }
                None if !out.named.is_empty() => {
                    return Err(Diagnostic::error("positional argument after a named one", a.span))
                }
                None => out.positional.push((v, a.span)),
            }
        }
        Ok(out)
    }

    pub fn prepend(&mut self, v: Option<Value>, span: Span) {
        if let Some(v) = v {
            self.positional.insert(0, (v, span));
        }
    }

    /// Arguments of a layer application: positional only.
    pub fn into_inputs(self, span: Span) -> R<Vec<(Value, Span)>> {
        if let Some((n, _, s)) = self.named.first() {
            return Err(Diagnostic::error(format!("layers take inputs by position; `{n} =` is not allowed here"), *s)
                .with_related(span, "in this application"));
        }
        Ok(self.positional)
    }
}

/// Typed access to a builtin's arguments, positional or by name, in declaration order.
pub struct ArgReader {
    fname: String,
    pos: VecDeque<(Value, Span)>,
    named: Vec<(String, Value, Span)>,
    span: Span,
    accepted: Vec<&'static str>,
}

impl ArgReader {
    pub fn new(fname: impl Into<String>, args: CallArgs, span: Span) -> Self {
        ArgReader { fname: fname.into(), pos: args.positional.into(), named: args.named, span, accepted: Vec::new() }
    }

    pub fn span(&self) -> Span {
        self.span
    }

    /// The next argument called `name`, if given.
    pub fn opt(&mut self, name: &'static str) -> Option<(Value, Span)> {
        self.accepted.push(name);
        if let Some(i) = self.named.iter().position(|(k, _, _)| k == name) {
            let (_, v, s) = self.named.remove(i);
            return Some((v, s));
        }
        self.pos.pop_front()
    }

    pub fn req(&mut self, name: &'static str) -> R<(Value, Span)> {
        self.opt(name)
            .ok_or_else(|| Diagnostic::error(format!("`{}` is missing argument `{name}`", self.fname), self.span))
    }

    /// All remaining positional arguments.
    pub fn rest(&mut self) -> Vec<(Value, Span)> {
        self.pos.drain(..).collect()
    }

    pub fn tensor(&mut self, name: &'static str) -> R<TVal> {
        let (v, s) = self.req(name)?;
        match v {
            Value::Tensor(t) => Ok(t),
            other => Err(self.wrong(name, "a tensor", &other, s)),
        }
    }

    pub fn int(&mut self, name: &'static str) -> R<i64> {
        let (v, s) = self.req(name)?;
        v.as_const_int().ok_or_else(|| self.wrong(name, "a compile-time int", &v, s))
    }

    pub fn int_or(&mut self, name: &'static str, default: i64) -> R<i64> {
        match self.opt(name) {
            Some((v, s)) => v.as_const_int().ok_or_else(|| self.wrong(name, "a compile-time int", &v, s)),
            None => Ok(default),
        }
    }

    pub fn dim(&mut self, name: &'static str) -> R<Dim> {
        let (v, s) = self.req(name)?;
        v.as_dim().ok_or_else(|| self.wrong(name, "an int", &v, s))
    }

    pub fn float_or(&mut self, name: &'static str, default: f64) -> R<f64> {
        match self.opt(name) {
            Some((v, s)) => v.as_float().ok_or_else(|| self.wrong(name, "a number", &v, s)),
            None => Ok(default),
        }
    }

    pub fn bool_or(&mut self, name: &'static str, default: bool) -> R<bool> {
        match self.opt(name) {
            Some((Value::Bool(b), _)) => Ok(b),
            Some((v, s)) => Err(self.wrong(name, "a bool", &v, s)),
            None => Ok(default),
        }
    }

    pub fn str_or(&mut self, name: &'static str, default: &str) -> R<String> {
        match self.opt(name) {
            Some((Value::Str(s), _)) => Ok(s),
            Some((v, s)) => Err(self.wrong(name, "a string", &v, s)),
            None => Ok(default.to_string()),
        }
    }

    /// An int or a list of ints (`stride = 2` or `stride = [2, 1]`).
    pub fn ints_or(&mut self, name: &'static str, default: Option<Vec<i64>>) -> R<Option<Vec<i64>>> {
        match self.opt(name) {
            Some((v, s)) => ints_of(&v).map(Some).ok_or_else(|| self.wrong(name, "an int or a list of ints", &v, s)),
            None => Ok(default),
        }
    }

    /// A list of dims (`[B, d * 2]`); `-1` is allowed only when `holes` is true.
    pub fn dims(&mut self, name: &'static str) -> R<Vec<Dim>> {
        self.dims_with(name, false)
    }

    pub fn dims_with(&mut self, name: &'static str, holes: bool) -> R<Vec<Dim>> {
        let (v, s) = self.req(name)?;
        let dims = match &v {
            Value::List(items) => items.iter().map(|i| i.as_dim()).collect::<Option<Vec<_>>>(),
            _ => v.as_dim().map(|d| vec![d]),
        }
        .ok_or_else(|| self.wrong(name, "a list of ints", &v, s))?;
        for d in &dims {
            if d.as_const().is_some_and(|c| c < 0 && !(holes && c == -1)) {
                return Err(Diagnostic::error(format!("dim `{d}` in `{name}` is negative"), s));
            }
        }
        Ok(dims)
    }

    pub fn wrong(&self, name: &str, expected: &str, found: &Value, span: Span) -> Diagnostic {
        Diagnostic::error(
            format!("argument `{name}` of `{}` must be {expected}, found {} `{found}`", self.fname, found.kind()),
            span,
        )
    }

    pub fn fname(&self) -> &str {
        &self.fname
    }

    /// Rejects leftover arguments (the first one).
    pub fn finish(self) -> R<()> {
        match self.unused().into_iter().next() {
            Some(d) => Err(d),
            None => Ok(()),
        }
    }

    /// One error for the leftover positional arguments and one per leftover named one.
    pub fn unused(self) -> Vec<Diagnostic> {
        let mut out = Vec::new();
        if let Some((_, s)) = self.pos.front() {
            out.push(Diagnostic::error(format!("too many arguments to `{}`", self.fname), *s));
        }
        for (n, _, s) in &self.named {
            let mut d = Diagnostic::error(format!("`{}` has no argument `{n}`", self.fname), *s);
            if let Some(h) = did_you_mean(n, self.accepted.iter().copied()) {
                d = d.with_help(format!("did you mean `{h}`?"));
            }
            out.push(d);
        }
        out
    }
}

pub fn ints_of(v: &Value) -> Option<Vec<i64>> {
    match v {
        Value::List(items) => items.iter().map(|i| i.as_const_int()).collect(),
        _ => v.as_const_int().map(|i| vec![i]),
    }
}
