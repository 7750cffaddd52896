//! Tensor types as written (`f32[B, d * 4]`, `f32[..., d]`) against tensor types as
//! built: creating entry inputs with symbolic dims, and unifying declared types with
//! actual ones (binding symbols and `...` in the scope as a side effect).

use super::value::{Env, Value};
use super::{Checker, R};
use crate::diag::Diagnostic;
use crate::tir::{DType, Dim, TensorType};
use archc_grammar::ast::{DimExpr, Expr, ExprKind, TypeExpr};
use archc_grammar::span::Span;

const ELLIPSIS: &str = "...";

impl Checker<'_> {
    /// A name's value if it is defined (without reporting an error).
    pub fn try_lookup(&self, name: &str, scope: &Env, m: usize) -> Option<Value> {
        scope
            .get(name)
            .or_else(|| self.globals[m].get(name))
            .or_else(|| (name == "training").then_some(Value::Bool(self.opts.training)))
            .or_else(|| super::builtins::lookup(name))
    }

    pub fn dtype_of(&self, t: &archc_grammar::ast::Ident) -> R<DType> {
        DType::from_name(&t.node).ok_or_else(|| {
            Diagnostic::error(format!("unknown dtype `{}`", t.node), t.span)
                .with_help("dtypes are f32, f64, i64, bool, c64")
        })
    }

    fn tensor_parts<'t>(&self, ty: &'t TypeExpr) -> R<(DType, &'t [DimExpr])> {
        match ty {
            TypeExpr::Tensor { dtype, dims, .. } => Ok((self.dtype_of(dtype)?, dims)),
            TypeExpr::Named(n) => Err(Diagnostic::error(format!("expected a tensor type, found `{}`", n.node), n.span)
                .with_help("tensor types look like f32[B, 64]")),
        }
    }

    /// Binds every undefined name in the dims as a symbolic dim of the same name.
    fn bind_symbols(&self, dims: &[DimExpr], scope: &Env, m: usize) {
        for d in dims {
            if let DimExpr::Expr(e) = d {
                for n in names_in(e) {
                    if self.try_lookup(&n, scope, m).is_none() {
                        scope.set(n.clone(), Value::Int(Dim::sym(n)));
                    }
                }
            }
        }
    }

    /// The type of an entry input: undefined names become symbolic dims.
    pub fn entry_type(&mut self, ty: &TypeExpr, scope: &Env, m: usize, allow_ellipsis: bool) -> R<TensorType> {
        let (dtype, dims) = self.tensor_parts(ty)?;
        self.bind_symbols(dims, scope, m);
        let mut shape = Vec::new();
        for d in dims {
            match d {
                DimExpr::Ellipsis(_) if allow_ellipsis => scope.set(ELLIPSIS, Value::List(Vec::new())),
                DimExpr::Ellipsis(s) => {
                    return Err(Diagnostic::error("`...` is only allowed in the parameter types of a `fn`", *s))
                }
                DimExpr::Expr(e) => {
                    let d = self.eval_dim(e, scope, m)?;
                    if d.as_const().is_some_and(|c| c < 0) {
                        return Err(Diagnostic::error(format!("dim `{d}` is negative"), e.span));
                    }
                    shape.push(d);
                }
            }
        }
        let t = TensorType::new(dtype, shape);
        match t.size_error() {
            Some(e) => Err(Diagnostic::error(e, ty.span())),
            None => Ok(t),
        }
    }

    pub fn eval_dim(&mut self, e: &Expr, scope: &Env, m: usize) -> R<Dim> {
        let v = self.eval(e, scope, m)?;
        v.as_dim().ok_or_else(|| Diagnostic::error(format!("a dim must be an int, found {} `{v}`", v.kind()), e.span))
    }

    /// Checks `actual` against the written type, binding undefined names and `...`.
    pub fn unify(
        &mut self,
        ty: &TypeExpr,
        actual: &TensorType,
        scope: &Env,
        m: usize,
        what: &str,
        span: Span,
    ) -> R<()> {
        let (dtype, dims) = self.tensor_parts(ty)?;
        let mismatch = |c: &Self, why: String| {
            Diagnostic::error(format!("{what} has type {actual}, expected {}", c.render_type(ty, scope, m)), span)
                .with_label(why)
        };
        if dtype != actual.dtype {
            return Err(mismatch(self, format!("dtype {} is not {dtype}", actual.dtype)));
        }
        let ell = dims.iter().position(|d| matches!(d, DimExpr::Ellipsis(_)));
        let fixed = dims.len() - usize::from(ell.is_some());
        let rank_ok = if ell.is_some() { actual.rank() >= fixed } else { actual.rank() == fixed };
        if !rank_ok {
            return Err(mismatch(self, format!("rank {} does not fit {} dims", actual.rank(), fixed)));
        }
        let mut pairs: Vec<(&Expr, &Dim)> = Vec::new();
        let mut ai = 0;
        for d in dims {
            match d {
                DimExpr::Ellipsis(_) => {
                    let n = actual.rank() - fixed;
                    let lead: Vec<Value> = actual.shape[ai..ai + n].iter().cloned().map(Value::Int).collect();
                    match scope.get(ELLIPSIS) {
                        Some(Value::List(prev)) if !same_dims(&prev, &lead) => {
                            return Err(mismatch(self, "its leading dims differ from the input's `...`".into()))
                        }
                        _ => scope.set(ELLIPSIS, Value::List(lead)),
                    }
                    ai += n;
                }
                DimExpr::Expr(e) => {
                    pairs.push((e, &actual.shape[ai]));
                    ai += 1;
                }
            }
        }
        // Bare undefined names bind first, so `f32[N, N / 2]` can refer back to `N`.
        for (e, a) in &pairs {
            if let ExprKind::Name(n) = &e.kind {
                if self.try_lookup(n, scope, m).is_none() {
                    scope.set(n.clone(), Value::Int((*a).clone()));
                }
            }
        }
        for (e, a) in pairs {
            let want = self.eval_dim(e, scope, m)?;
            if &want != a {
                return Err(mismatch(self, format!("dim `{a}` is not `{want}`")));
            }
        }
        Ok(())
    }

    /// Checks a tensor argument against its written type; returns it as a value.
    #[allow(clippy::too_many_arguments)]
    pub fn check_tensor_arg(
        &mut self,
        name: &str,
        ty: &TypeExpr,
        v: Value,
        vspan: Span,
        scope: &Env,
        m: usize,
        what: &str,
    ) -> R<Value> {
        match v {
            Value::Tensor(t) => {
                self.unify(ty, &t.ty, scope, m, &format!("input `{name}` of {what}"), vspan)?;
                Ok(Value::Tensor(t))
            }
            other => Err(Diagnostic::error(
                format!("input `{name}` of {what} must be a tensor, found {} `{other}`", other.kind()),
                vspan,
            )),
        }
    }

    /// The written type with every dim that can be evaluated shown by value.
    pub fn render_type(&self, ty: &TypeExpr, scope: &Env, m: usize) -> String {
        let TypeExpr::Tensor { dtype, dims, .. } = ty else { return String::from("?") };
        let shown: Vec<String> = dims
            .iter()
            .map(|d| match d {
                DimExpr::Ellipsis(_) => "...".to_string(),
                DimExpr::Expr(e) => render_dim(self, e, scope, m),
            })
            .collect();
        format!("{}[{}]", dtype.node, shown.join(", "))
    }
}

fn render_dim(c: &Checker, e: &Expr, scope: &Env, m: usize) -> String {
    match &e.kind {
        ExprKind::Int(i) => i.to_string(),
        ExprKind::Name(n) => match c.try_lookup(n, scope, m).and_then(|v| v.as_dim()) {
            Some(d) => d.to_string(),
            None => n.clone(),
        },
        ExprKind::Binary(op, a, b) => {
            format!("{} {} {}", render_dim(c, a, scope, m), op.symbol(), render_dim(c, b, scope, m))
        }
        _ => "?".to_string(),
    }
}

fn same_dims(a: &[Value], b: &[Value]) -> bool {
    a.len() == b.len() && a.iter().zip(b).all(|(x, y)| x.as_dim() == y.as_dim())
}

/// Every name mentioned in a dim expression.
fn names_in(e: &Expr) -> Vec<String> {
    match &e.kind {
        ExprKind::Name(n) => vec![n.clone()],
        ExprKind::Binary(_, a, b) => {
            let mut v = names_in(a);
            v.extend(names_in(b));
            v
        }
        ExprKind::Unary(_, a) => names_in(a),
        _ => Vec::new(),
    }
}
