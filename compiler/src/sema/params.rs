//! Parameters, search-space choices and entry inputs of a block body.
//!
//! A `param` declares `path.name` once (idempotently, so every application of an
//! instance shares it) and reads it with a `param` op. Under `with_params`, the read is
//! replaced by the generated tensor. Parameters whose shape depends on a `shared`
//! choice are declared at the largest option and sliced to the chosen one. In an
//! `operator`, a parameter whose shape mentions a grid dim is an error.

use super::modules::ChoiceRecord;
use super::value::{Env, Layer, TVal, Value};
use super::{join_path, Checker, R};
use crate::diag::Diagnostic;
use crate::tir::{Dim, Init, Op, ParamDecl, TensorType};
use archc_grammar::ast::{DimExpr, Expr, ExprKind, FnDef, Ident, TypeExpr};
use archc_grammar::span::Span;

/// The pieces of a `param`/`buffer` statement.
pub struct ParamStmt<'a> {
    pub name: &'a Ident,
    pub ty: &'a TypeExpr,
    pub init: &'a Option<Expr>,
    pub cond: &'a Option<Expr>,
    pub buffer: bool,
    pub span: Span,
}

impl Checker<'_> {
    pub fn param_stmt(&mut self, p: &ParamStmt, scope: &Env, m: usize, grid: &[String], operator: bool) -> R<()> {
        if let Some(c) = p.cond {
            match self.eval(c, scope, m)? {
                Value::Bool(true) => {}
                Value::Bool(false) => return Ok(()),
                v => {
                    return Err(Diagnostic::error(
                        format!("the condition of a param must be a compile-time bool, found {} `{v}`", v.kind()),
                        c.span,
                    ))
                }
            }
        }
        let (ty, max_ty) = self.param_types(p, scope, m, grid, operator)?;
        let init = match p.init {
            Some(e) => match self.eval(e, scope, m)? {
                Value::Init(i) => i,
                v => {
                    return Err(Diagnostic::error(format!("expected an initialiser, found {} `{v}`", v.kind()), e.span)
                        .with_help("e.g. `init.normal(std = 0.02)`"))
                }
            },
            None => Init::Zeros,
        };
        let full = join_path(&self.frames.last().expect("frame").path, &p.name.node);
        let value = match self.override_for(&full) {
            Some(t) => check_override(&full, t, &ty, p.span)?,
            None => {
                let decl = ParamDecl { name: full.clone(), ty: max_ty, init, trainable: !p.buffer };
                let (whole, t) = self.read_param(decl, &ty, p.span)?;
                if p.buffer {
                    self.buffer_reads.insert((t.func, t.id), full);
                    if whole.id != t.id {
                        self.elastic_buffers.insert((t.func, t.id), whole);
                    }
                }
                t
            }
        };
        scope.set(p.name.node.clone(), Value::Tensor(value));
        Ok(())
    }

    /// The chosen type and the allocated (largest elastic) type of a param.
    fn param_types(
        &mut self,
        p: &ParamStmt,
        scope: &Env,
        m: usize,
        grid: &[String],
        operator: bool,
    ) -> R<(TensorType, TensorType)> {
        let TypeExpr::Tensor { dtype, dims, .. } = p.ty else {
            return Err(Diagnostic::error("a param needs a tensor type like f32[d, d]", p.ty.span()));
        };
        let dtype = self.dtype_of(dtype)?;
        let (mut shape, mut max) = (Vec::new(), Vec::new());
        for d in dims {
            let DimExpr::Expr(e) = d else {
                return Err(Diagnostic::error("`...` is not allowed in a param's type", p.ty.span()));
            };
            if let Some(g) = super::resolve::names_in(e).into_iter().find(|n| grid.contains(n)) {
                return Err(grid_error(p.name, &g, e.span, format!("this dim mentions `{g}`")));
            }
            let v = self.eval(e, scope, m)?;
            let (Some(dim), Some(dmax)) = (v.as_dim(), v.max_dim()) else {
                return Err(Diagnostic::error(format!("a dim must be an int, found {} `{v}`", v.kind()), e.span));
            };
            if let Some(g) = dim.symbols().into_iter().find(|s| grid.contains(s)) {
                let _ = operator;
                return Err(grid_error(p.name, &g, e.span, format!("this dim is `{dim}`")));
            }
            let elastic = matches!(v, Value::Elastic { .. }) && dmax.is_const();
            if !dim.is_const() && !elastic {
                return Err(Diagnostic::error(
                    format!(
                        "the shape of parameter `{}` must be known when the model is built; `{dim}` is symbolic",
                        p.name.node
                    ),
                    e.span,
                ));
            }
            if dim.as_const().is_some_and(|c| c < 0) {
                return Err(Diagnostic::error(
                    format!("parameter `{}` has a negative dim `{dim}`", p.name.node),
                    e.span,
                ));
            }
            shape.push(dim);
            max.push(dmax);
        }
        Ok((TensorType::new(dtype, shape), TensorType::new(dtype, max)))
    }

    fn override_for(&self, name: &str) -> Option<TVal> {
        self.overrides.iter().rev().find_map(|o| o.get(name).cloned())
    }

    /// Declares and reads a param: `(whole, chosen)`, the allocated value and, for an
    /// elastic param, its slice to the chosen shape (otherwise the same value).
    fn read_param(&mut self, decl: ParamDecl, ty: &TensorType, span: Span) -> R<(TVal, TVal)> {
        let name = decl.name.clone();
        let alloc = decl.ty.clone();
        self.b.declare_param(decl).map_err(|msg| Diagnostic::error(msg, span))?;
        let t = self.emit(Op::Param(name), &[], Some(alloc.clone()), span)?;
        if &alloc == ty {
            return Ok((t.clone(), t));
        }
        let zero = vec![Dim::constant(0); ty.rank()];
        let op = Op::Slice { start: zero, end: ty.shape.clone(), step: vec![1; ty.rank()] };
        let chosen = self.emit(op, &[&t], None, span)?;
        Ok((t, chosen))
    }

    /// The whole value of an elastic buffer with its chosen part replaced by `value`
    /// (the rest kept): one concat per elastic axis, innermost shapes grown in order.
    pub fn widen_update(&mut self, whole: &TVal, value: TVal, span: Span) -> R<TVal> {
        let mut cur = value;
        let rank = whole.ty.rank();
        for axis in 0..rank {
            let (have, full) = (cur.ty.shape[axis].clone(), whole.ty.shape[axis].clone());
            if have == full {
                continue;
            }
            let mut start = vec![Dim::constant(0); rank];
            start[axis] = have;
            let mut end = cur.ty.shape.clone();
            end[axis] = full;
            let rest = self.emit(Op::Slice { start, end, step: vec![1; rank] }, &[whole], None, span)?;
            cur = self.emit(Op::Concat { axis }, &[&cur, &rest], None, span)?;
        }
        Ok(cur)
    }

    /// `choose name in [options] shared?`
    pub fn choose(
        &mut self,
        name: &str,
        options: &[Expr],
        shared: bool,
        scope: &Env,
        m: usize,
        span: Span,
    ) -> R<Value> {
        if options.is_empty() {
            return Err(Diagnostic::error(format!("choice `{name}` has no options"), span));
        }
        let vals = options.iter().map(|o| self.eval(o, scope, m)).collect::<R<Vec<_>>>()?;
        let qualified = join_path(&self.frames.last().expect("frame").path, name);
        let labels: Vec<String> = vals.iter().zip(options).map(|(v, o)| choice_label(v, o)).collect();
        let i = if shared && self.shared_at_max {
            largest_option(&vals)
        } else {
            super::experiment::pick_option(&self.opts.choices, &qualified, name, &vals, &labels)
                .map_err(|msg| Diagnostic::error(msg, span))?
        };
        self.made_shared |= shared;
        if !self.choices.iter().any(|(n, _)| n == &qualified) {
            self.choices.push((qualified.clone(), labels[i].clone()));
            self.decisions.push(ChoiceRecord { name: qualified.clone(), options: labels, chosen: i, span });
        }
        if !shared && self.opts.gated_choices && super::gated::all_layers(&vals) {
            return self.gated_choice(name, &qualified, &vals, span);
        }
        if !shared {
            return Ok(self.tag_option(vals[i].clone(), name, i, &vals));
        }
        let ints: Option<Vec<i64>> = vals.iter().map(|v| v.as_const_int()).collect();
        match ints {
            Some(ints) => {
                let max = *ints.iter().max().expect("non-empty");
                let value = match self.opts.elastic_symbols && !self.shared_at_max {
                    true => self.elastic_symbol(&qualified),
                    false => Dim::constant(ints[i]),
                };
                Ok(Value::Elastic { value, chosen: ints[i], max })
            }
            None => Err(Diagnostic::error(format!("a `shared` choice must have int options; `{name}` does not"), span)
                .with_help("`shared` makes one weight tensor serve every width, sliced to the chosen one")),
        }
    }

    /// An `input` of the entry block: an argument of `main`.
    pub fn entry_input(&mut self, name: &str, ty: &TypeExpr, scope: &Env, m: usize) -> R<TVal> {
        let t = self.entry_type(ty, scope, m, false)?;
        Ok(self.b.add_arg(name, t))
    }

    /// The forward `fn` parameters of an entry layer become arguments of `main`.
    pub fn entry_fn_inputs(&mut self, f: &FnDef, scope: &Env, m: usize) -> R<Vec<(Value, Span)>> {
        let mut out = Vec::new();
        for p in &f.params {
            let Some(ty @ TypeExpr::Tensor { .. }) = &p.ty else {
                return Err(Diagnostic::error(
                    format!("to build this layer on its own, input `{}` needs a tensor type", p.name.node),
                    p.span,
                ));
            };
            let t = self.entry_type(ty, scope, m, true)?;
            out.push((Value::Tensor(self.b.add_arg(&p.name.node, t)), p.span));
        }
        Ok(out)
    }
}

/// How a chosen option is shown: its value, and for a layer also the keyword arguments
/// the option names (`Conv1d(16, 16, 3, padding = 1, groups = 16)`), so that options
/// differing only in those are told apart.
fn choice_label(v: &Value, option: &Expr) -> String {
    if let Some(names) = tensor_option_names(v, option) {
        return names;
    }
    let (Value::Layer(Layer::Spec { block, args, .. }), ExprKind::Call(_, call)) = (v, &option.kind) else {
        return v.to_string();
    };
    let named: Vec<String> = call
        .iter()
        .filter_map(|a| a.name.as_ref())
        .filter(|n| block.def.params.iter().any(|p| p.name.node == n.node && p.default.is_some()))
        .filter_map(|n| args.iter().find(|(k, _)| k == &n.node).map(|(k, v)| format!("{k} = {v}")))
        .collect();
    let base = v.to_string();
    match (named.is_empty(), base.strip_suffix(')')) {
        (true, _) => base,
        (false, Some(open)) => format!("{open}, {})", named.join(", ")),
        (false, None) => format!("{base}({})", named.join(", ")),
    }
}

/// A tensor option (an edge choice, `choose src in [x, stem]`) is shown as it is written
/// (`x`, `[x, stem]`, `x * 0.5`); its value would only show a type.
fn tensor_option_names(v: &Value, option: &Expr) -> Option<String> {
    match (v, &option.kind) {
        (Value::Tensor(_), ExprKind::Name(n)) => Some(n.clone()),
        (Value::Tensor(_), _) => Some(archc_grammar::fmt::format_expr(option)),
        (Value::List(vs), ExprKind::List(es)) if vs.iter().any(|v| matches!(v, Value::Tensor(_))) => {
            let parts: Option<Vec<String>> = vs.iter().zip(es).map(|(v, e)| tensor_option_names(v, e)).collect();
            parts.map(|p| format!("[{}]", p.join(", ")))
        }
        _ => None,
    }
}

impl Checker<'_> {
    /// In a supernet build, a layer option of a choice among several layers, tagged with
    /// the choice's name and the option's index (see `Layer::Spec::tag`).
    pub(super) fn tag_option(&self, v: Value, name: &str, i: usize, vals: &[Value]) -> Value {
        let layers = vals.iter().filter(|v| matches!(v, Value::Layer(Layer::Spec { .. }))).count();
        match v {
            Value::Layer(Layer::Spec { block, args, span, tag: None })
                if (self.opts.option_tags || self.opts.gated_choices) && layers > 1 =>
            {
                Value::Layer(Layer::Spec { block, args, span, tag: Some(format!("{name}{i}")) })
            }
            other => other,
        }
    }

    /// The size symbol of the shared choice `qualified` in a supernet build, recorded so
    /// that `main` gets the argument that binds it (see `Options::elastic_symbols`).
    fn elastic_symbol(&mut self, qualified: &str) -> Dim {
        let sym = elastic_symbol_name(qualified);
        if !self.elastic_args.iter().any(|(q, _)| q == qualified) {
            self.elastic_args.push((qualified.to_string(), sym.clone()));
        }
        Dim::sym(sym)
    }
}

/// `elastic_` and the qualified choice name with every other character than a letter,
/// digit or `_` replaced by `_`.
pub fn elastic_symbol_name(qualified: &str) -> String {
    let body: String = qualified.chars().map(|c| if c.is_ascii_alphanumeric() || c == '_' { c } else { '_' }).collect();
    format!("elastic_{body}")
}

/// The index of the largest int option (the first when none is an int).
fn largest_option(vals: &[Value]) -> usize {
    let key = |v: &Value| v.as_const_int().unwrap_or(i64::MIN);
    (0..vals.len()).fold(0, |best, i| if key(&vals[i]) > key(&vals[best]) { i } else { best })
}

fn grid_error(name: &Ident, grid: &str, span: Span, label: String) -> Diagnostic {
    Diagnostic::error(format!("parameter `{}` depends on grid dim `{grid}`", name.node), span)
        .with_label(label)
        .with_help("an operator must be discretisation-agnostic: no parameter shape may depend on a grid dim")
}

fn check_override(name: &str, t: TVal, ty: &TensorType, span: Span) -> R<TVal> {
    if &t.ty == ty || t.ty.numel() == ty.numel() && t.ty.dtype == ty.dtype {
        Ok(t)
    } else {
        Err(Diagnostic::error(format!("generated parameter `{name}` has type {}, expected {ty}", t.ty), span))
    }
}
