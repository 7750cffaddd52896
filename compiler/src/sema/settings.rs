//! Typed, range-checked settings: the values and call arguments of `train` and `adapt`
//! entries (`batch: 64`, `adam(lr = 1e-3)`, `mcts(simulations = 100)`).
//!
//! Contract: every setting is checked for its type and its range, and every argument
//! name against the ones its call accepts, each error with the span of what is wrong.
//! A reader collects all the errors of one call instead of stopping at the first; where
//! a value is wrong its default stands in, and the caller uses the values only when no
//! error was found.

use super::args::{ArgReader, CallArgs};
use super::scope::Scope;
use super::value::Value;
use super::{Checker, R};
use crate::diag::{did_you_mean, Diagnostic};
use archc_grammar::ast::{Expr, ExprKind};
use archc_grammar::span::Span;

/// The values a number setting accepts.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum Range {
    /// `x > 0`
    Positive,
    /// `x >= 0`
    NonNegative,
    /// `0 <= x < 1` (momenta, betas, smoothing)
    Fraction,
    /// `0 < x < 1`
    OpenFraction,
    /// `0 < x <= 1` (split fractions)
    Share,
}

impl Range {
    pub fn admits(self, x: f64) -> bool {
        x.is_finite()
            && match self {
                Range::Positive => x > 0.0,
                Range::NonNegative => x >= 0.0,
                Range::Fraction => (0.0..1.0).contains(&x),
                Range::OpenFraction => x > 0.0 && x < 1.0,
                Range::Share => x > 0.0 && x <= 1.0,
            }
    }

    /// What the range asks for, to finish "must be ...".
    pub fn describe(self) -> &'static str {
        match self {
            Range::Positive => "positive",
            Range::NonNegative => "at least 0",
            Range::Fraction => "in [0, 1)",
            Range::OpenFraction => "in (0, 1)",
            Range::Share => "in (0, 1]",
        }
    }
}

/// An integer setting: `what` names it in messages (`` `batch` ``).
pub fn int_value(v: &Value, span: Span, what: &str, range: Range) -> R<i64> {
    let i = v
        .as_const_int()
        .ok_or_else(|| Diagnostic::error(format!("{what} must be an integer, found {} `{v}`", v.kind()), span))?;
    if !range.admits(i as f64) {
        let want = match range {
            Range::Positive => "a positive integer".to_string(),
            Range::NonNegative => "a non-negative integer".to_string(),
            r => format!("an integer {}", r.describe()),
        };
        return Err(Diagnostic::error(format!("{what} must be {want}, found {i}"), span));
    }
    Ok(i)
}

/// A number setting (ints are accepted as numbers).
pub fn float_value(v: &Value, span: Span, what: &str, range: Range) -> R<f64> {
    let x = v
        .as_float()
        .ok_or_else(|| Diagnostic::error(format!("{what} must be a number, found {} `{v}`", v.kind()), span))?;
    if !range.admits(x) {
        return Err(Diagnostic::error(format!("{what} must be {}, found {x:?}", range.describe()), span));
    }
    Ok(x)
}

/// Evaluates a setting's expression in the main module's global scope.
pub fn eval(c: &mut Checker, e: &Expr) -> R<Value> {
    let env = Scope::child(&c.globals[0]);
    c.eval(e, &env, 0)
}

/// A call's name, checked against `known`: `callee(..)`, a bare name, or `skip` (when
/// it is known).
pub fn call_name<'e>(e: &'e Expr, known: &[&str], what: &str) -> R<(&'e str, Span)> {
    let (name, span) = match &e.kind {
        ExprKind::Call(callee, _) => match &callee.kind {
            ExprKind::Name(n) => (n.as_str(), callee.span),
            _ => return Err(Diagnostic::error(format!("expected a {what} name"), callee.span)),
        },
        ExprKind::Name(n) => (n.as_str(), e.span),
        ExprKind::Skip => ("skip", e.span),
        _ => return Err(Diagnostic::error(format!("expected a {what}, e.g. `{}(..)`", known[0]), e.span)),
    };
    if known.contains(&name) {
        return Ok((name, span));
    }
    let mut d =
        Diagnostic::error(format!("unknown {what} `{name}`"), span).with_label(format!("known: {}", known.join(", ")));
    if let Some(s) = did_you_mean(name, known.iter().copied()) {
        d = d.with_help(format!("did you mean `{s}`?"));
    }
    Err(d)
}

/// The arguments of a settings call, read one by one with their errors collected.
pub struct Args {
    r: ArgReader,
    errors: Vec<Diagnostic>,
}

impl Args {
    /// The evaluated arguments of `e` (a call, or a bare name with none), read as
    /// `name`'s.
    pub fn of(c: &mut Checker, e: &Expr, name: &str) -> R<Args> {
        let args = match &e.kind {
            ExprKind::Call(_, args) => {
                let env = Scope::child(&c.globals[0]);
                CallArgs::eval(c, args, &env, 0)?
            }
            _ => CallArgs::default(),
        };
        Ok(Args { r: ArgReader::new(name, args, e.span), errors: Vec::new() })
    }

    /// Arguments already evaluated.
    pub fn new(r: ArgReader) -> Args {
        Args { r, errors: Vec::new() }
    }

    pub fn float(&mut self, name: &'static str, default: f64, range: Range) -> f64 {
        match self.r.opt(name) {
            Some((v, s)) => {
                let what = format!("argument `{name}` of `{}`", self.r.fname());
                self.keep(float_value(&v, s, &what, range)).unwrap_or(default)
            }
            None => default,
        }
    }

    pub fn int(&mut self, name: &'static str, default: i64, range: Range) -> i64 {
        match self.r.opt(name) {
            Some((v, s)) => {
                let what = format!("argument `{name}` of `{}`", self.r.fname());
                self.keep(int_value(&v, s, &what, range)).unwrap_or(default)
            }
            None => default,
        }
    }

    pub fn bool(&mut self, name: &'static str, default: bool) -> bool {
        match self.r.opt(name) {
            Some((Value::Bool(b), _)) => b,
            Some((v, s)) => {
                let d = self.r.wrong(name, "a bool", &v, s);
                self.errors.push(d);
                default
            }
            None => default,
        }
    }

    /// The next argument called `name`, unchecked.
    pub fn opt(&mut self, name: &'static str) -> Option<(Value, Span)> {
        self.r.opt(name)
    }

    /// Records a failed check (its value is then unused).
    pub fn keep<T>(&mut self, r: R<T>) -> Option<T> {
        r.map_err(|d| self.errors.push(d)).ok()
    }

    /// Every error found, leftover arguments included.
    pub fn finish(self) -> Result<(), Vec<Diagnostic>> {
        let mut errors = self.errors;
        errors.extend(self.r.unused());
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }
}
