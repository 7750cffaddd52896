//! Indexing (`x[..., 0:k]`, `x[i]`, `x[idx]`, `shape[-1]`) and field access (`x.T`,
//! `x.shape`, `inst.param_count`, `inst.w`, `nn.Linear`, `init.normal`).

use super::value::{Callable, Env, Layer, TVal, Value};
use super::{Checker, R};
use crate::diag::{did_you_mean, Diagnostic};
use crate::tir::{Dim, Op};
use archc_grammar::ast::IndexItem;
use archc_grammar::span::Span;

/// One resolved index entry for a tensor axis.
enum Pick {
    Range(Dim, Dim, i64),
    /// `Range`, then read backwards (a negative step).
    Reversed(Dim, Dim, i64),
    One(Dim),
    Gather(TVal),
}

impl Checker<'_> {
    pub fn index(&mut self, v: Value, items: &[IndexItem], span: Span, env: &Env, m: usize) -> R<Value> {
        match v {
            Value::Tensor(t) => self.index_tensor(&t, items, span, env, m).map(Value::Tensor),
            Value::List(vals) => {
                let [IndexItem::Expr(e)] = items else {
                    return Err(Diagnostic::error("a list takes one index", span));
                };
                let i = self
                    .eval(e, env, m)?
                    .as_const_int()
                    .ok_or_else(|| Diagnostic::error("a list index must be a compile-time int", e.span))?;
                let n = vals.len() as i64;
                let j = if i < 0 { i + n } else { i };
                vals.get(usize::try_from(j).unwrap_or(usize::MAX))
                    .cloned()
                    .ok_or_else(|| Diagnostic::error(format!("index {i} is out of range for a list of {n}"), e.span))
            }
            other => Err(Diagnostic::error(format!("{} cannot be indexed", other.a_kind()), span)),
        }
    }

    fn index_tensor(&mut self, t: &TVal, items: &[IndexItem], span: Span, env: &Env, m: usize) -> R<TVal> {
        let picks = self.resolve_picks(t, items, span, env, m)?;
        let rank = t.ty.rank();
        let (mut start, mut end, mut step) = (Vec::new(), Vec::new(), Vec::new());
        let mut keep_shape = Vec::new();
        let mut gather = None;
        let mut reversed = Vec::new();
        for (axis, p) in picks.into_iter().enumerate() {
            let size = t.ty.shape[axis].clone();
            let whole = match &p {
                Pick::Range(s, e, st) | Pick::Reversed(s, e, st) => s.as_const() == Some(0) && *e == size && *st == 1,
                Pick::One(_) => false,
                Pick::Gather(_) => true,
            };
            self.check_grid_slice(&size, whole, span)?;
            match p {
                Pick::Range(s, e, st) => {
                    start.push(s);
                    end.push(e);
                    step.push(st);
                    keep_shape.push(axis);
                }
                Pick::Reversed(s, e, st) => {
                    start.push(s);
                    end.push(e);
                    step.push(st);
                    reversed.push(keep_shape.len());
                    keep_shape.push(axis);
                }
                Pick::One(i) => {
                    start.push(i.clone());
                    end.push(i.add(&Dim::constant(1)));
                    step.push(1);
                }
                Pick::Gather(idx) => {
                    if gather.is_some() {
                        return Err(Diagnostic::error("only one axis can be indexed by a tensor", span));
                    }
                    gather = Some((keep_shape.len(), idx));
                    start.push(Dim::constant(0));
                    end.push(size);
                    step.push(1);
                    keep_shape.push(axis);
                }
            }
        }
        let trivial = (0..rank).all(|a| start[a].as_const() == Some(0) && end[a] == t.ty.shape[a] && step[a] == 1);
        let mut y = if trivial { t.clone() } else { self.emit(Op::Slice { start, end, step }, &[t], None, span)? };
        if keep_shape.len() != rank {
            let shape: Vec<Dim> = keep_shape.iter().map(|&a| y.ty.shape[a].clone()).collect();
            y = self.reshape(&y, shape, span)?;
        }
        for axis in reversed {
            y = super::resample::reverse(self, &y, axis, span)?;
        }
        if let Some((axis, idx)) = gather {
            y = self.emit(Op::Gather { axis }, &[&y, &idx], None, span)?;
        }
        Ok(y)
    }

    fn resolve_picks(&mut self, t: &TVal, items: &[IndexItem], span: Span, env: &Env, m: usize) -> R<Vec<Pick>> {
        let rank = t.ty.rank();
        let n_ell = items.iter().filter(|i| matches!(i, IndexItem::Ellipsis(_))).count();
        let explicit = items.len() - n_ell;
        if n_ell > 1 || explicit > rank {
            return Err(Diagnostic::error(format!("too many indices for a tensor of type {}", t.ty), span));
        }
        let mut picks = Vec::new();
        for it in items {
            match it {
                IndexItem::Ellipsis(_) => {
                    for _ in 0..rank - explicit {
                        let a = picks.len();
                        picks.push(Pick::Range(Dim::constant(0), t.ty.shape[a].clone(), 1));
                    }
                }
                IndexItem::Expr(e) => {
                    let size = t.ty.shape[picks.len()].clone();
                    match self.eval(e, env, m)? {
                        Value::Tensor(idx) if idx.ty.dtype == crate::tir::DType::I64 => picks.push(Pick::Gather(idx)),
                        v => {
                            let i = v.as_dim().ok_or_else(|| {
                                Diagnostic::error(
                                    format!("an index must be an int or an i64 tensor, found {} `{v}`", v.kind()),
                                    e.span,
                                )
                            })?;
                            let axis = picks.len();
                            check_magnitude(&i, e.span)?;
                            let j = normalise(&i, &size);
                            if let (Some(c), Some(n)) = (j.as_const(), size.as_const()) {
                                if c < 0 || c >= n {
                                    return Err(Diagnostic::error(
                                        format!("index {i} is out of range for axis {axis} of size {n}"),
                                        e.span,
                                    ));
                                }
                            }
                            picks.push(Pick::One(j));
                        }
                    }
                }
                IndexItem::Slice { start, end, step, .. } if self.negative_step(step, env, m)? => {
                    let size = t.ty.shape[picks.len()].clone();
                    let st = self.opt_dim(step, env, m)?.and_then(|d| d.as_const()).expect("checked");
                    let (s, e) = (self.opt_dim(start, env, m)?, self.opt_dim(end, env, m)?);
                    picks.push(backwards(s, e, st, &size, span)?);
                }
                IndexItem::Slice { start, end, step, .. } => {
                    let size = t.ty.shape[picks.len()].clone();
                    let s =
                        self.opt_dim(start, env, m)?.map(|d| bound(normalise(&d, &size))).unwrap_or(Dim::constant(0));
                    let e = self.opt_dim(end, env, m)?.map(|d| bound(normalise(&d, &size))).unwrap_or(size);
                    let st = match self.opt_dim(step, env, m)? {
                        Some(d) => d.as_const().filter(|c| *c > 0).ok_or_else(|| {
                            Diagnostic::error("a slice step must be a positive compile-time int", span)
                        })?,
                        None => 1,
                    };
                    picks.push(Pick::Range(s, e, st));
                }
            }
        }
        while picks.len() < rank {
            let a = picks.len();
            picks.push(Pick::Range(Dim::constant(0), t.ty.shape[a].clone(), 1));
        }
        Ok(picks)
    }

    /// Whether a slice step is a negative compile-time int.
    fn negative_step(&mut self, step: &Option<archc_grammar::ast::Expr>, env: &Env, m: usize) -> R<bool> {
        Ok(self.opt_dim(step, env, m)?.and_then(|d| d.as_const()).is_some_and(|c| c < 0))
    }

    fn opt_dim(&mut self, e: &Option<archc_grammar::ast::Expr>, env: &Env, m: usize) -> R<Option<Dim>> {
        match e {
            None => Ok(None),
            Some(e) => {
                let d = self.eval_dim(e, env, m)?;
                check_magnitude(&d, e.span)?;
                Ok(Some(d))
            }
        }
    }

    pub fn field(&mut self, v: Value, name: &str, span: Span) -> R<Value> {
        match v {
            Value::Tensor(t) => self.tensor_field(&t, name, span),
            Value::Layer(Layer::Instance(inst)) => match name {
                "param_count" => self.param_count(&inst, span),
                "with_params" => Ok(Value::Func(Callable::WithParams(inst))),
                _ => self.instance_param(&inst, name, span),
            },
            Value::Layer(Layer::Spec { .. }) if matches!(name, "param_count" | "with_params") => {
                Err(Diagnostic::error(format!("`{name}` needs a layer instance"), span)
                    .with_help("bind the layer with `let` first: `let target = ...`, then use `target.param_count`"))
            }
            Value::Module(id) => self.globals[id].get(name).ok_or_else(|| {
                let names = self.globals[id].names();
                let mut d = Diagnostic::error(format!("module `{}` has no item `{name}`", self.modules[id].name), span);
                if let Some(s) = did_you_mean(name, names.iter().map(|s| s.as_str())) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                d
            }),
            Value::InitNamespace => super::builtins::init_fn(name).ok_or_else(|| {
                let mut d = Diagnostic::error(format!("unknown initialiser `init.{name}`"), span);
                if let Some(s) = did_you_mean(name, super::builtins::INIT_FNS.iter().copied()) {
                    d = d.with_help(format!("did you mean `init.{s}`?"));
                }
                d
            }),
            Value::ParamPath(prefix) => self.param_path(&prefix, name, span),
            other => Err(Diagnostic::error(format!("{} has no field `{name}`", other.a_kind()), span)),
        }
    }

    /// `prefix.name` in a loss: the parameter of that path, or a longer prefix.
    fn param_path(&mut self, prefix: &str, name: &str, span: Span) -> R<Value> {
        let full = format!("{prefix}.{name}");
        if let Some(p) = self.b.param(&full) {
            let ty = p.ty.clone();
            return self.emit(Op::Param(full), &[], Some(ty), span).map(Value::Tensor);
        }
        let below = format!("{full}.");
        if self.b.params.iter().any(|p| p.name.starts_with(&below)) {
            return Ok(Value::ParamPath(full));
        }
        let under = format!("{prefix}.");
        let names: Vec<&str> = self
            .b
            .params
            .iter()
            .filter_map(|p| p.name.strip_prefix(&under))
            .map(|n| n.split('.').next().unwrap_or(n))
            .collect();
        let mut d = Diagnostic::error(format!("the model has no parameter `{full}`"), span);
        if let Some(s) = did_you_mean(name, names.iter().copied()) {
            d = d.with_help(format!("did you mean `{prefix}.{s}`?"));
        } else if !names.is_empty() {
            let mut names = names;
            names.dedup();
            d = d.with_label(format!("under `{prefix}`: {}", names.join(", ")));
        }
        Err(d)
    }

    fn tensor_field(&mut self, t: &TVal, name: &str, span: Span) -> R<Value> {
        match name {
            "T" => {
                let r = t.ty.rank();
                if r < 2 {
                    return Err(Diagnostic::error(format!("`.T` needs rank >= 2, found {}", t.ty), span));
                }
                let mut perm: Vec<usize> = (0..r).collect();
                perm.swap(r - 2, r - 1);
                self.emit(Op::Permute(perm), &[t], None, span).map(Value::Tensor)
            }
            "shape" => Ok(Value::List(t.ty.shape.iter().cloned().map(Value::Int).collect())),
            "rank" => Ok(Value::Int((t.ty.rank() as i64).into())),
            "dtype" => Ok(Value::DType(t.ty.dtype)),
            _ => Err(Diagnostic::error(format!("a tensor has no field `{name}`"), span)
                .with_help("tensor fields are T, shape, rank, dtype")),
        }
    }

    fn instance_param(&mut self, inst: &super::value::Instance, name: &str, span: Span) -> R<Value> {
        let params = self.instance_params(inst, span)?;
        let full = format!("{}.{name}", inst.path);
        match params.iter().find(|p| p.name == full) {
            Some(p) => self.emit(Op::Param(full), &[], Some(p.ty.clone()), span).map(Value::Tensor),
            None => {
                let locals: Vec<String> = params.iter().map(|p| p.name[inst.path.len() + 1..].to_string()).collect();
                let mut d = Diagnostic::error(format!("this layer has no parameter or field `{name}`"), span);
                if let Some(s) = did_you_mean(name, locals.iter().map(|s| s.as_str())) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                Err(d)
            }
        }
    }
}

/// Indices beyond any real axis (|i| > 2^40) are errors even against a symbolic size.
fn check_magnitude(i: &Dim, span: Span) -> R<()> {
    match i.as_const() {
        Some(c) if c.unsigned_abs() > 1 << 40 => {
            Err(Diagnostic::error(format!("index {c} is out of range for any axis"), span))
        }
        _ => Ok(()),
    }
}

/// `start:end:step` with `step < 0`, as Python reads it (`start` from the last element,
/// `end` past the first when absent; bounds counted from the end and clamped), as an
/// ascending slice read backwards. A symbolic axis takes only `::-1`.
fn backwards(start: Option<Dim>, end: Option<Dim>, step: i64, size: &Dim, span: Span) -> R<Pick> {
    let k = -step;
    let Some(n) = size.as_const() else {
        if start.is_none() && end.is_none() && k == 1 {
            return Ok(Pick::Reversed(Dim::constant(0), size.clone(), 1));
        }
        return Err(Diagnostic::error(
            format!("a negative slice step on an axis of symbolic size {size} must be `::-1`"),
            span,
        ));
    };
    let clamp = |d: Option<Dim>, default: i64| -> R<i64> {
        let Some(d) = d else { return Ok(default) };
        let c =
            d.as_const().ok_or_else(|| Diagnostic::error("slice bounds with a negative step must be ints", span))?;
        Ok((if c < 0 { c + n } else { c }).clamp(-1, n - 1))
    };
    let (s, e) = (clamp(start, n - 1)?, clamp(end, -1)?);
    let count = if s > e { (s - e + k - 1) / k } else { 0 };
    let first = s - (count - 1).max(0) * k;
    let (lo, hi) = if count == 0 { (0, 0) } else { (first, s + 1) };
    Ok(Pick::Reversed(Dim::constant(lo), Dim::constant(hi), k))
}

/// A slice bound still negative after counting from the end is clamped to 0, as Python
/// and PyTorch do (`x[-100:3]` on 5 elements is `x[0:3]`); TIR never holds a negative
/// constant bound.
fn bound(d: Dim) -> Dim {
    match d.as_const() {
        Some(c) if c < 0 => Dim::constant(0),
        _ => d,
    }
}

/// A negative index counts from the end.
fn normalise(i: &Dim, size: &Dim) -> Dim {
    match i.as_const() {
        Some(c) if c < 0 => size.add(i),
        _ => i.clone(),
    }
}
