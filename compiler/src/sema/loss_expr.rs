//! Losses and metrics written as expressions in a `train` block:
//! `loss: mse(u, y) + 1e-4 * sum(fc.w * fc.w)`, `metrics: [mae(mean(abs(u - y)))]`.
//!
//! An expression reads the network's outputs and inputs by name, parameters by path
//! (`fc.w`, `encoder.fc1.b`), the file's functions, the builtins and the stdlib
//! `losses` functions (`mse`, `cross_entropy`, ...; no `use` needed); every other free
//! name is a field of the data set ([`data_names`]), typed by the caller from the data
//! ([`DataField`]: dtype and per-row shape; the batch axis is the network's, and a
//! field whose rows have the shape of an output's rows takes that output's dims, so a
//! grid of any resolution keeps matching).
//!
//! Contract: [`build`] gives one TIR function `loss` over the names the expressions
//! read (outputs, inputs, fields, in that order) returning `loss` and `metric:NAME`
//! per metric, each an f32 scalar (a mean over the batch); a value of another type,
//! a loss that creates parameters, or an unknown parameter path is an error with the
//! span of the expression.

use super::modules::{ModuleInfo, Options};
use super::scope::Scope;
use super::value::Value;
use super::Checker;
use crate::diag::Diagnostic;
use crate::tir::{DType, Dim, Op, Program, TensorType};
use archc_grammar::ast::{Expr, ExprKind, IndexItem};
use archc_grammar::span::Span;
use std::collections::HashMap;
use std::rc::Rc;

/// A field of the data set: its dtype and the shape of one row.
#[derive(Clone, Debug, PartialEq)]
pub struct DataField {
    pub name: String,
    pub dtype: DType,
    pub row: Vec<u64>,
}

/// A loss and its metrics, as written.
pub struct Objective<'e> {
    pub loss: &'e Expr,
    /// `(metric name, expression)`.
    pub metrics: Vec<(String, &'e Expr)>,
}

impl Objective<'_> {
    fn exprs(&self) -> impl Iterator<Item = &Expr> {
        std::iter::once(self.loss).chain(self.metrics.iter().map(|(_, e)| *e))
    }
}

/// The built loss: the function (in a program of its own, with the model's params) and
/// the names of its arguments, in order.
pub struct LossFunc {
    pub program: Program,
    pub args: Vec<String>,
    pub metrics: Vec<String>,
}

/// What a free name of a loss is.
#[derive(Clone, Debug, PartialEq)]
enum Kind {
    Output,
    Input,
    Param,
    Known,
    Field,
}

/// The free names of the expressions that are data fields, each with its first use.
pub fn data_names(modules: &[ModuleInfo], model: &Program, obj: &Objective) -> Vec<(String, Span)> {
    let (names, callees) = free_names(obj);
    names.into_iter().filter(|(n, _)| !callees.contains(n) && kind(modules, model, n) == Kind::Field).collect()
}

/// A function called by a name that is not known: an error each, with a suggestion;
/// and `training`, which has no value in a loss (one function for training and
/// evaluation).
pub fn unknown_callees(modules: &[ModuleInfo], model: &Program, obj: &Objective) -> Vec<Diagnostic> {
    let (names, callees) = free_names(obj);
    let mut known: Vec<String> = modules[0].globals.names();
    known.extend(losses_module(modules).map(|m| m.globals.names()).unwrap_or_default());
    known.extend(super::builtins::BUILTINS.iter().map(|s| s.to_string()));
    let training = names.iter().filter(|(n, _)| n == "training").map(|(_, span)| {
        Diagnostic::error("`training` has no value in a loss or metric", *span).with_help(
            "the loss is one function for training and evaluation: compute a training-only term in the \
             network, under `if training`, and give it as an output",
        )
    });
    let training: Vec<Diagnostic> = training.collect();
    names
        .into_iter()
        .filter(|(n, _)| callees.contains(n) && kind(modules, model, n) == Kind::Field)
        .map(|(n, span)| {
            let mut d = Diagnostic::error(format!("unknown function `{n}`"), span)
                .with_label("not a builtin, a function of this file or of the stdlib `losses`");
            if let Some(s) = crate::diag::did_you_mean(&n, known.iter().map(String::as_str)) {
                d = d.with_help(format!("did you mean `{s}`?"));
            }
            d
        })
        .chain(training)
        .collect()
}

/// The free names, in order of first use, and those called as functions.
fn free_names(obj: &Objective) -> (Vec<(String, Span)>, Vec<String>) {
    let mut out = Names::default();
    for e in obj.exprs() {
        walk(e, &mut Vec::new(), &mut out);
    }
    (out.names, out.callees)
}

#[derive(Default)]
struct Names {
    names: Vec<(String, Span)>,
    callees: Vec<String>,
}

fn walk(e: &Expr, bound: &mut Vec<String>, out: &mut Names) {
    if let ExprKind::Call(c, _) = &e.kind {
        if let ExprKind::Name(n) = &c.kind {
            if !bound.contains(n) && !out.callees.contains(n) {
                out.callees.push(n.clone());
            }
        }
    }
    let mut w = |e: &Expr, bound: &mut Vec<String>| walk(e, bound, out);
    match &e.kind {
        ExprKind::Name(n) => {
            if !bound.contains(n) && !out.names.iter().any(|(o, _)| o == n) {
                out.names.push((n.clone(), e.span));
            }
        }
        ExprKind::List(items) => items.iter().for_each(|i| w(i, bound)),
        ExprKind::Unary(_, x) | ExprKind::Field(x, _) => w(x, bound),
        ExprKind::Binary(_, a, b) | ExprKind::Pipe(a, b) => {
            w(a, bound);
            w(b, bound);
        }
        ExprKind::Call(c, args) => {
            w(c, bound);
            args.iter().for_each(|a| w(&a.value, bound));
        }
        ExprKind::Index(x, items) => {
            w(x, bound);
            for i in items {
                match i {
                    IndexItem::Expr(e) => w(e, bound),
                    IndexItem::Slice { start, end, step, .. } => {
                        [start, end, step].into_iter().flatten().for_each(|e| w(e, bound))
                    }
                    IndexItem::Ellipsis(_) => {}
                }
            }
        }
        ExprKind::If(c, a, b) => [c, a, b].into_iter().for_each(|e| w(e, bound)),
        ExprKind::Block(lets, result) => {
            let depth = bound.len();
            for l in lets {
                w(&l.value, bound);
                bound.push(l.name.node.clone());
            }
            w(result, bound);
            bound.truncate(depth);
        }
        ExprKind::Repeat { count, index, body, .. } => {
            w(count, bound);
            bound.extend(index.iter().map(|i| i.node.clone()));
            w(body, bound);
            bound.truncate(bound.len() - usize::from(index.is_some()));
        }
        ExprKind::Lambda(p, body) => {
            bound.push(p.node.clone());
            w(body, bound);
            bound.pop();
        }
        ExprKind::Int(_)
        | ExprKind::Float(_)
        | ExprKind::Bool(_)
        | ExprKind::Str(_)
        | ExprKind::Skip
        | ExprKind::Error => {}
    }
}

fn losses_module(modules: &[ModuleInfo]) -> Option<&ModuleInfo> {
    modules.iter().skip(1).find(|m| m.name == "losses")
}

fn kind(modules: &[ModuleInfo], model: &Program, n: &str) -> Kind {
    let main = model.main();
    if main.result_names.iter().any(|r| r == n) {
        Kind::Output
    } else if main.arg_names.iter().any(|a| a == n) {
        Kind::Input
    } else if model.params.iter().any(|p| p.name == n || p.name.strip_prefix(n).is_some_and(|r| r.starts_with('.'))) {
        Kind::Param
    } else if modules[0].globals.get(n).is_some()
        || super::builtins::lookup(n).is_some()
        || n == "training"
        || losses_module(modules).is_some_and(|m| m.globals.get(n).is_some())
    {
        Kind::Known
    } else {
        Kind::Field
    }
}

/// Builds the function `loss` (see the module docs).
pub fn build(
    modules: &[ModuleInfo],
    opts: &Options,
    model: &Program,
    obj: &Objective,
    fields: &[DataField],
) -> Result<LossFunc, Vec<Diagnostic>> {
    let (names, callees) = free_names(obj);
    let mut args: Vec<(String, TensorType)> = Vec::new();
    let mut errors = Vec::new();
    for wanted in [Kind::Output, Kind::Input, Kind::Field] {
        let of_kind = names.iter().filter(|(n, _)| !callees.contains(n) && kind(modules, model, n) == wanted);
        for (n, span) in of_kind {
            match arg_type(model, n, fields) {
                Some(t) => args.push((n.clone(), t)),
                None => errors.push(no_field(n, *span, fields)),
            }
        }
    }
    if !errors.is_empty() {
        return Err(errors);
    }
    let mut c = Checker::new(modules, opts);
    for p in &model.params {
        c.b.declare_param(p.clone()).map_err(|m| vec![Diagnostic::error(m, obj.loss.span)])?;
    }
    let vals = c.b.begin_func("loss", &args);
    let scope = loss_scope(&c, modules);
    for ((n, _), v) in args.iter().zip(vals) {
        scope.set(n.clone(), Value::Tensor(v));
    }
    for (n, _) in names.iter().filter(|(n, _)| kind(modules, model, n) == Kind::Param) {
        scope.set(n.clone(), Value::ParamPath(n.clone()));
    }
    // Unknown functions are reported by `unknown_callees`; calling one stops silently.
    for (n, _) in names.iter().filter(|(n, _)| callees.contains(n) && kind(modules, model, n) == Kind::Field) {
        scope.set(n.clone(), Value::Poison);
    }
    c.push_frame("loss".into());
    let r = results(&mut c, obj, &scope);
    c.pop_frame();
    // Errors of statements the checker recovered from, then those of the results.
    errors.append(&mut c.errors);
    let results = match r {
        Ok(v) if errors.is_empty() => v,
        Ok(_) => return Err(errors),
        Err(ds) => {
            errors.extend(ds);
            return Err(errors);
        }
    };
    if c.b.params.len() != model.params.len() {
        let d = Diagnostic::error("a loss cannot create parameters", obj.loss.span)
            .with_help("layers with weights belong in the network; the loss reads its outputs");
        return Err(vec![d]);
    }
    c.b.end_func(&results);
    let program = std::mem::take(&mut c.b).finish("loss");
    let metrics = obj.metrics.iter().map(|(n, _)| n.clone()).collect();
    Ok(LossFunc { program, args: args.into_iter().map(|(n, _)| n).collect(), metrics })
}

/// The scope of a loss: the file's globals, then the stdlib losses.
fn loss_scope(c: &Checker, modules: &[ModuleInfo]) -> Rc<Scope> {
    let scope = Scope::child(&c.globals[0]);
    if let Some(m) = losses_module(modules) {
        for n in m.globals.names() {
            if c.globals[0].get(&n).is_none() {
                if let Some(v) = m.globals.get(&n) {
                    scope.set(n, v);
                }
            }
        }
    }
    scope
}

/// `("loss", value)` and `("metric:NAME", value)`, each checked to be an f32 scalar;
/// every error otherwise (poison left out).
fn results(
    c: &mut Checker,
    obj: &Objective,
    scope: &Rc<Scope>,
) -> Result<Vec<(String, super::value::TVal)>, Vec<Diagnostic>> {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let all = std::iter::once(("loss".to_string(), obj.loss, "the loss".to_string()))
        .chain(obj.metrics.iter().map(|(n, e)| (format!("metric:{n}"), *e, format!("metric `{n}`"))));
    for (key, e, what) in all {
        match scalar(c, e, scope, &what) {
            Ok(v) => out.push((key, v)),
            Err(d) => errors.push(d),
        }
    }
    errors.retain(|d| !d.is_poison());
    if out.len() == 1 + obj.metrics.len() {
        Ok(out)
    } else {
        Err(errors)
    }
}

fn scalar(c: &mut Checker, e: &Expr, scope: &Rc<Scope>, what: &str) -> super::R<super::value::TVal> {
    match c.eval(e, scope, 0)? {
        Value::Tensor(t) if t.ty.rank() == 0 && t.ty.dtype == DType::F32 => Ok(t),
        Value::Tensor(t) if t.ty.rank() == 0 => c.emit(Op::Cast, &[&t], Some(TensorType::scalar(DType::F32)), e.span),
        Value::Tensor(t) => Err(Diagnostic::error(format!("{what} must be a scalar, found {}", t.ty), e.span)
            .with_help("reduce it over the batch, e.g. `mean(...)`")),
        Value::Poison => Err(Diagnostic::poison()),
        v => Err(Diagnostic::error(
            format!("{what} must be a tensor computed from the network's outputs, found {} `{v}`", v.a_kind()),
            e.span,
        )),
    }
}

/// The type of argument `n`: an output's or input's own, or a field's from the data.
fn arg_type(model: &Program, n: &str, fields: &[DataField]) -> Option<TensorType> {
    let main = model.main();
    if let Some(i) = main.result_names.iter().position(|r| r == n) {
        return main.results.get(i).and_then(|v| main.type_of(*v)).cloned();
    }
    if let Some(i) = main.arg_names.iter().position(|a| a == n) {
        return Some(main.args[i].1.clone());
    }
    let f = fields.iter().find(|f| f.name == n)?;
    Some(field_type(model, f, fields))
}

/// A field's type: the batch axis of the network's first input, then the row shape, or
/// an output's dims where the row has an output's row shape (see the module docs).
fn field_type(model: &Program, f: &DataField, fields: &[DataField]) -> TensorType {
    let main = model.main();
    let batch = main.args.first().and_then(|(_, t)| t.shape.first().cloned()).unwrap_or(Dim::constant(1));
    let env = input_sizes(model, fields);
    let row_dims = |t: &TensorType| -> Option<Vec<i64>> { t.shape[1..].iter().map(|d| d.eval(&env)).collect() };
    let want: Vec<i64> = f.row.iter().map(|&d| d as i64).collect();
    let matching = main
        .results
        .iter()
        .filter_map(|v| main.type_of(*v))
        .find(|t| t.rank() == f.row.len() + 1 && row_dims(t).as_ref() == Some(&want));
    let mut shape = vec![batch];
    match matching {
        Some(t) => shape.extend(t.shape[1..].iter().cloned()),
        None => shape.extend(want.iter().map(|&d| Dim::constant(d))),
    }
    TensorType::new(f.dtype, shape)
}

/// Sizes of the network's input symbols, read from the fields that feed its inputs.
fn input_sizes(model: &Program, fields: &[DataField]) -> HashMap<String, i64> {
    let main = model.main();
    let mut env = HashMap::new();
    for (name, (_, t)) in main.arg_names.iter().zip(&main.args) {
        let Some(f) = fields.iter().find(|f| &f.name == name) else { continue };
        if t.rank() != f.row.len() + 1 {
            continue;
        }
        for (d, &size) in t.shape[1..].iter().zip(&f.row) {
            if let [s] = d.symbols().as_slice() {
                if *d == Dim::sym(s.clone()) {
                    env.insert(s.clone(), size as i64);
                }
            }
        }
    }
    env
}

fn no_field(n: &str, span: Span, fields: &[DataField]) -> Diagnostic {
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    let mut d = Diagnostic::error(
        format!("`{n}` is not an output, an input or a parameter of the network, nor a field of the data"),
        span,
    );
    if !names.is_empty() {
        d = d.with_label(format!("the data's fields: {}", names.join(", ")));
    }
    if let Some(s) = crate::diag::did_you_mean(n, names.iter().copied()) {
        d = d.with_help(format!("did you mean `{s}`?"));
    }
    d
}
