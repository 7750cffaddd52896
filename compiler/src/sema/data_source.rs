//! `file(...)`: a `train` block's data from the user's own files.
//!
//! `train Net on file("data.npz", x = "features", y = "price", split = [0.8, 0.2])`:
//! the one positional argument is the file or folder (a string, relative to the `.arch`
//! file; without it every field names its own `.npy` file); `split` and `seed` split it
//! as for the built-in data sets; `test = "test.npz"` names a test file read with the
//! same fields instead, and `test = file("data.npz", x = "x_test", ...)` one with fields
//! of its own. Every other named argument maps a field the training reads (an
//! input of the network or a name the loss reads from the data) to what holds it: a
//! string (an array, tensor, column or file name) or, for a CSV file, a list of column
//! names stacked as `[N, k]`. A field that is not mapped is read under its own name.
//!
//! Contract: reading is checking, every error with its span; the paths are kept as
//! written (the caller resolves them and reads the files, which this crate never does).
//! Whether each mapped name is a field the training reads is checked by the caller of
//! [`file_source`] once the model and the loss are known ([`check_mapping`]).

use super::settings::{eval, float_value, int_value, Range};
use super::value::Value;
use super::Checker;
use crate::diag::{did_you_mean, Diagnostic};
use archc_grammar::ast::{Arg, Expr, ExprKind};
use archc_grammar::span::Span;

/// How a field is found in the data file.
#[derive(Clone, Debug, PartialEq)]
pub enum FieldSelect {
    /// The array, tensor, column or `.npy` file of this name.
    Name(String),
    /// CSV columns, stacked as `[N, k]`.
    Columns(Vec<String>),
}

/// `NAME = "field"` in `file(...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct FieldMap {
    pub name: String,
    pub select: FieldSelect,
    pub span: Span,
}

/// The user's data files of a `train` block.
#[derive(Clone, Debug, PartialEq)]
pub struct FileData {
    /// The file or folder as written (`None`: one `.npy` file per field).
    pub path: Option<String>,
    /// The test file (`test = "path"`: the same fields; `test = file(...)`: its own).
    pub test: Option<Box<FileData>>,
    pub fields: Vec<FieldMap>,
}

impl FileData {
    /// How field `name` is read: its mapping, or its own name.
    pub fn select(&self, name: &str) -> FieldSelect {
        self.fields
            .iter()
            .find(|f| f.name == name)
            .map_or_else(|| FieldSelect::Name(name.to_string()), |f| f.select.clone())
    }
}

/// What `file(...)` says: the files, and the split settings.
pub struct FileArgs {
    pub data: FileData,
    pub split: Option<Vec<f64>>,
    pub seed: u64,
}

/// Reads `file(args)`; every error goes to `errors`.
pub fn file_source(c: &mut Checker, args: &[Arg], span: Span, errors: &mut Vec<Diagnostic>) -> Option<FileArgs> {
    let mut out = FileArgs { data: FileData { path: None, test: None, fields: Vec::new() }, split: None, seed: 0 };
    let mut positional = 0;
    let mut seen: Vec<&str> = Vec::new();
    let mut inherit = false;
    for a in args {
        let Some(name) = &a.name else {
            positional += 1;
            match (positional, string(c, &a.value, "the data file", errors)) {
                (1, Some(p)) => out.data.path = Some(p),
                (1, None) => {}
                _ => {
                    errors.push(Diagnostic::error("`file` takes one path; name the fields: `x = \"features\"`", a.span))
                }
            }
            continue;
        };
        if seen.contains(&name.node.as_str()) {
            errors.push(Diagnostic::error(format!("`{}` is given twice", name.node), name.span));
            continue;
        }
        seen.push(&name.node);
        match name.node.as_str() {
            "split" => out.split = split(c, &a.value, errors),
            "seed" => {
                let v = eval(c, &a.value).and_then(|v| int_value(&v, a.value.span, "`seed`", Range::NonNegative));
                out.seed = keep(v, errors).map_or(0, |s| s as u64);
            }
            "test" => {
                inherit = !is_file_call(&a.value);
                out.data.test = test_source(c, &a.value, errors);
            }
            field => {
                if let Some(select) = selector(c, &a.value, field, errors) {
                    out.data.fields.push(FieldMap { name: field.to_string(), select, span: name.span });
                }
            }
        }
    }
    if out.data.path.is_none() && positional == 0 {
        errors.extend(npy_pairs_errors(&out.data, inherit, span));
    }
    if let (Some(test), true) = (&mut out.data.test, inherit) {
        test.fields = out.data.fields.clone();
    }
    if out.split.is_some() && out.data.test.is_some() {
        errors.push(Diagnostic::error("give either `split` or `test`, not both", span));
    }
    // With errors too, so that the mapped names are checked.
    Some(out)
}

/// Without a path, every field is a `.npy` file, and a test file cannot be named.
fn npy_pairs_errors(data: &FileData, test_path: bool, span: Span) -> Vec<Diagnostic> {
    if data.fields.is_empty() {
        return vec![Diagnostic::error("`file` needs a data file or folder, or a `.npy` file per field", span)
            .with_help("e.g. `file(\"data.npz\")` or `file(x = \"x.npy\", y = \"y.npy\")`")];
    }
    let mut out = Vec::new();
    if data.test.is_some() && test_path {
        out.push(Diagnostic::error(
            "`test` needs a data file or folder; with one `.npy` file per field, use `split`",
            span,
        ));
    }
    out.extend(data.fields.iter().filter_map(|f| {
        match &f.select {
            FieldSelect::Name(n) if n.ends_with(".npy") => None,
            _ => Some(
                Diagnostic::error(
                    format!("field `{}` must name a `.npy` file when `file` has no path", f.name),
                    f.span,
                )
                .with_help("give the data file first: `file(\"data.npz\", x = \"features\")`"),
            ),
        }
    }));
    out
}

fn is_file_call(e: &Expr) -> bool {
    matches!(&e.kind, ExprKind::Call(callee, _) if matches!(&callee.kind, ExprKind::Name(n) if n == "file"))
}

/// `test = "path"` (its fields are the training file's, filled in later) or
/// `test = file(...)` (fields of its own; no split or test of its own).
fn test_source(c: &mut Checker, e: &Expr, errors: &mut Vec<Diagnostic>) -> Option<Box<FileData>> {
    let ExprKind::Call(_, args) = &e.kind else {
        let path = string(c, e, "`test`", errors)?;
        return Some(Box::new(FileData { path: Some(path), test: None, fields: Vec::new() }));
    };
    if !is_file_call(e) {
        let path = string(c, e, "`test`", errors)?;
        return Some(Box::new(FileData { path: Some(path), test: None, fields: Vec::new() }));
    }
    let inner = file_source(c, args, e.span, errors)?;
    if inner.split.is_some() || inner.data.test.is_some() {
        errors.push(Diagnostic::error("a test `file(...)` has no `split` or `test` of its own", e.span));
    }
    Some(Box::new(inner.data))
}

fn keep<T>(r: super::R<T>, errors: &mut Vec<Diagnostic>) -> Option<T> {
    r.map_err(|d| errors.push(d)).ok()
}

fn string(c: &mut Checker, e: &Expr, what: &str, errors: &mut Vec<Diagnostic>) -> Option<String> {
    match keep(eval(c, e), errors)? {
        Value::Str(s) if !s.is_empty() => Some(s),
        v => {
            errors.push(Diagnostic::error(format!("{what} must be a path, found {} `{v}`", v.a_kind()), e.span));
            None
        }
    }
}

/// `"name"` or `["col", ...]`.
fn selector(c: &mut Checker, e: &Expr, field: &str, errors: &mut Vec<Diagnostic>) -> Option<FieldSelect> {
    let bad = |v: &Value| {
        Diagnostic::error(
            format!(
                "field `{field}` must name what holds it (a string, or a list of CSV columns), found {} `{v}`",
                v.a_kind()
            ),
            e.span,
        )
    };
    match keep(eval(c, e), errors)? {
        Value::Str(s) if !s.is_empty() => Some(FieldSelect::Name(s)),
        Value::List(items) if !items.is_empty() => {
            let names: Option<Vec<String>> = items
                .iter()
                .map(|v| match v {
                    Value::Str(s) if !s.is_empty() => Some(s.clone()),
                    _ => None,
                })
                .collect();
            let Some(names) = names else {
                errors.push(bad(&Value::List(items)));
                return None;
            };
            Some(FieldSelect::Columns(names))
        }
        v => {
            errors.push(bad(&v));
            None
        }
    }
}

fn split(c: &mut Checker, e: &Expr, errors: &mut Vec<Diagnostic>) -> Option<Vec<f64>> {
    match keep(eval(c, e), errors)? {
        Value::List(items) => {
            let mut out = Vec::new();
            for v in &items {
                out.push(keep(float_value(v, e.span, "each fraction of `split`", Range::Share), errors)?);
            }
            let total: f64 = out.iter().sum();
            if out.is_empty() || total > 1.0 + 1e-9 {
                errors.push(Diagnostic::error(
                    format!("`split` fractions must add up to at most 1, found {total}"),
                    e.span,
                ));
                return None;
            }
            Some(out)
        }
        v => {
            let d =
                Diagnostic::error(format!("`split` must be a list of fractions, found {} `{v}`", v.a_kind()), e.span);
            errors.push(d);
            None
        }
    }
}

/// Each mapped name must be a field the training reads (`wanted`: the network's inputs
/// and the loss's data names).
pub fn check_mapping(data: &FileData, wanted: &[String], errors: &mut Vec<Diagnostic>) {
    if let Some(test) = &data.test {
        check_mapping(test, wanted, errors);
    }
    for f in &data.fields {
        if wanted.contains(&f.name) {
            continue;
        }
        let mut d = Diagnostic::error(format!("`{}` is not a field this training reads", f.name), f.span)
            .with_label(format!("it reads: {}", wanted.join(", ")));
        if let Some(s) = did_you_mean(&f.name, wanted.iter().map(String::as_str)) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        errors.push(d);
    }
}
