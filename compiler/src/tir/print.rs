//! The TIR text form, written by `Display` for [`Program`] (and its parts) and read back
//! by [`super::parse::parse_program`].
//!
//! ```text
//! program Mlp
//!
//! param @fc1.w : f32[64, 128] = uniform(low=-0.125, high=0.125)
//! buffer @bn.mean : f32[16] = zeros()
//!
//! func @main(%0: f32[B, 64] "x") -> (f32[B, 10] "logits") {
//!   %1 = param() {name="fc1.w"} : f32[64, 128]
//!   %2 = matmul(%0, %1) : f32[B, 128]
//!   %3 = reduce.sum(%2) {axes=[1], keepdim=false} : f32[B]
//!   return %3
//! }
//! ```
//!
//! An instruction with several results lists them, and their types, in order:
//! `%5, %6 = scan(%1, %2) {func=@cell, axis=1, carries=1, xs=1, reverse=false} : f32[B, 8], f32[B, T, 8]`.
//!
//! Contract:
//! - Output is deterministic: params, then functions, in program order; attributes in the
//!   fixed order of [`op_attrs`] (the op's field order), omitted with their braces when
//!   the op has none.
//! - Names (program, params, functions) print bare when they consist of ASCII letters,
//!   digits, `_` and `.`, else as quoted strings (`@"odd name"`). Arg and result names are
//!   always quoted strings. Strings escape `\` `"` `\n` `\r` `\t` and other control
//!   characters (`\u{1b}`).
//! - Floats print with Rust's `{:?}` (`0.5`, `1e-5`, `-0.0`, `-inf`, `NaN`), which parses
//!   back bit-exactly (except NaN payloads); dims print with `Dim`'s `Display`.
//! - A result header entry is the result's type, or `?` when the returned value is not
//!   defined (so invalid programs still print). Names print only where the name lists
//!   have an entry, so the text round-trips exactly when `arg_names`/`result_names`
//!   match `args`/`results` in length (a verifier invariant). Spans are not printed.

use super::ops::{Init, Op};
use super::program::{Func, Inst, ParamDecl, Program};
use std::fmt::{self, Display};

impl Display for Program {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        writeln!(f, "program {}", name_text(&self.name))?;
        if !self.params.is_empty() {
            writeln!(f)?;
        }
        for p in &self.params {
            writeln!(f, "{p}")?;
        }
        for func in &self.funcs {
            writeln!(f)?;
            write!(f, "{func}")?;
        }
        Ok(())
    }
}

impl Display for ParamDecl {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let kind = if self.trainable { "param" } else { "buffer" };
        write!(f, "{kind} @{} : {} = {}", name_text(&self.name), self.ty, self.init)
    }
}

impl Display for Init {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let x = |v: &f64| float_text(*v);
        match self {
            Init::Zeros => write!(f, "zeros()"),
            Init::Ones => write!(f, "ones()"),
            Init::Constant(v) => write!(f, "constant(value={})", x(v)),
            Init::Normal { mean, std } => write!(f, "normal(mean={}, std={})", x(mean), x(std)),
            Init::Uniform { low, high } => write!(f, "uniform(low={}, high={})", x(low), x(high)),
        }
    }
}

/// The function with its body, each line ending in a newline.
impl Display for Func {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "func @{}(", name_text(&self.name))?;
        for (i, (v, t)) in self.args.iter().enumerate() {
            let sep = if i > 0 { ", " } else { "" };
            write!(f, "{sep}{v}: {t}{}", opt_name(self.arg_names.get(i)))?;
        }
        write!(f, ") -> (")?;
        for (i, r) in self.results.iter().enumerate() {
            let sep = if i > 0 { ", " } else { "" };
            let ty = self.type_of(*r).map_or("?".to_string(), |t| t.to_string());
            write!(f, "{sep}{ty}{}", opt_name(self.result_names.get(i)))?;
        }
        writeln!(f, ") {{")?;
        for inst in &self.body {
            writeln!(f, "  {inst}")?;
        }
        let results: Vec<String> = self.results.iter().map(|r| r.to_string()).collect();
        match results.is_empty() {
            true => writeln!(f, "  return")?,
            false => writeln!(f, "  return {}", results.join(", "))?,
        }
        writeln!(f, "}}")
    }
}

fn opt_name(name: Option<&String>) -> String {
    name.map_or(String::new(), |n| format!(" {}", quote(n)))
}

/// One instruction line, without indentation: `%2 = matmul(%0, %1) : f32[B, 128]`, or
/// `%3, %4 = call(%0) {func=@split} : f32[B, 64], f32[B, 64]`.
impl Display for Inst {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        let args: Vec<String> = self.args.iter().map(|a| a.to_string()).collect();
        let results: Vec<String> = self.result_ids().map(|r| r.to_string()).collect();
        write!(f, "{} = {}({})", results.join(", "), self.op.name(), args.join(", "))?;
        let attrs = op_attrs(&self.op);
        if !attrs.is_empty() {
            let kv: Vec<String> = attrs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            write!(f, " {{{}}}", kv.join(", "))?;
        }
        let types: Vec<String> = self.results().map(|(_, t)| t.to_string()).collect();
        write!(f, " : {}", types.join(", "))
    }
}

/// The attributes of `op` as `(key, value text)`, in the order they print.
pub fn op_attrs(op: &Op) -> Vec<(&'static str, String)> {
    match op {
        Op::Param(name) => vec![("name", quote(name))],
        Op::Const(v) => vec![("value", float_text(*v))],
        Op::Iota { axis } | Op::Concat { axis } | Op::Gather { axis } | Op::ScatterAdd { axis } | Op::Rfft { axis } => {
            vec![("axis", axis.to_string())]
        }
        Op::Reduce { axes, keepdim, .. } => vec![("axes", list(axes)), ("keepdim", keepdim.to_string())],
        Op::ArgMax { axis, keepdim } => vec![("axis", axis.to_string()), ("keepdim", keepdim.to_string())],
        Op::ArgSort { axis, descending } => vec![("axis", axis.to_string()), ("descending", descending.to_string())],
        Op::Einsum(spec) => vec![("spec", quote(spec))],
        Op::Permute(perm) => vec![("perm", list(perm))],
        Op::Irfft { axis, n } => vec![("axis", axis.to_string()), ("n", n.to_string())],
        Op::RandUniform { seed } | Op::RandNormal { seed } => vec![("seed", seed.to_string())],
        _ => layout_attrs(op).unwrap_or_else(|| func_attrs(op)),
    }
}

fn layout_attrs(op: &Op) -> Option<Vec<(&'static str, String)>> {
    Some(match op {
        Op::Conv { stride, padding, dilation, groups } => vec![
            ("stride", list(stride)),
            ("padding", pairs(padding)),
            ("dilation", list(dilation)),
            ("groups", groups.to_string()),
        ],
        Op::Pool { window, stride, padding, .. } => {
            vec![("window", list(window)), ("stride", list(stride)), ("padding", pairs(padding))]
        }
        Op::Slice { start, end, step } => vec![("start", list(start)), ("end", list(end)), ("step", list(step))],
        Op::Pad { padding, value } => vec![("padding", pairs(padding)), ("value", float_text(*value))],
        _ => return None,
    })
}

fn func_attrs(op: &Op) -> Vec<(&'static str, String)> {
    match op {
        Op::Call(f) => vec![("func", func_ref(f))],
        Op::Stack(fs) => vec![("funcs", list(&fs.iter().map(|f| func_ref(f)).collect::<Vec<_>>()))],
        Op::Vmap { func, keep, out_keep } => {
            vec![("func", func_ref(func)), ("keep", list(keep)), ("out_keep", list(out_keep))]
        }
        Op::Scan { func, axis, carries, xs, reverse } => vec![
            ("func", func_ref(func)),
            ("axis", axis.to_string()),
            ("carries", carries.to_string()),
            ("xs", xs.to_string()),
            ("reverse", reverse.to_string()),
        ],
        _ => Vec::new(),
    }
}

fn list<T: Display>(xs: &[T]) -> String {
    let items: Vec<String> = xs.iter().map(|x| x.to_string()).collect();
    format!("[{}]", items.join(", "))
}

fn pairs(ps: &[(i64, i64)]) -> String {
    let items: Vec<String> = ps.iter().map(|(lo, hi)| format!("[{lo}, {hi}]")).collect();
    format!("[{}]", items.join(", "))
}

fn func_ref(name: &str) -> String {
    format!("@{}", name_text(name))
}

/// A float that parses back bit-exactly (`{:?}`: `0.5`, `1e-5`, `-inf`, `NaN`).
pub fn float_text(v: f64) -> String {
    format!("{v:?}")
}

/// Whether `name` prints bare after `@` or `program`.
pub fn is_bare_name(name: &str) -> bool {
    !name.is_empty() && name.chars().all(is_name_char)
}

pub(crate) fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '.'
}

/// A name bare when possible, else quoted.
pub fn name_text(name: &str) -> String {
    if is_bare_name(name) {
        name.to_string()
    } else {
        quote(name)
    }
}

/// `s` as a double-quoted string literal of the text form.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tir::ops::{Init, ReduceOp};
    use crate::tir::program::ValueId;
    use crate::tir::testutil::{ty, FuncBuilder};

    fn mlp() -> Program {
        let mut p = Program {
            name: "Mlp".into(),
            params: vec![
                ParamDecl {
                    name: "fc1.w".into(),
                    ty: ty("f32[64, 128]"),
                    init: Init::Uniform { low: -0.125, high: 0.125 },
                    trainable: true,
                },
                ParamDecl { name: "bn.mean".into(), ty: ty("f32[16]"), init: Init::Zeros, trainable: false },
            ],
            funcs: Vec::new(),
        };
        let mut b = FuncBuilder::new("main");
        let x = b.arg("f32[B, 64]", "x");
        let w = b.op_as(&p, Op::Param("fc1.w".into()), &[], "f32[64, 128]");
        let h = b.op(&p, Op::MatMul, &[x, w]);
        let s = b.op(&p, Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdim: false }, &[h]);
        p.funcs.push(b.finish(&[(s, "logits")]));
        p
    }

    #[test]
    fn prints_the_documented_form() {
        let expected = r#"program Mlp

param @fc1.w : f32[64, 128] = uniform(low=-0.125, high=0.125)
buffer @bn.mean : f32[16] = zeros()

func @main(%0: f32[B, 64] "x") -> (f32[B] "logits") {
  %1 = param() {name="fc1.w"} : f32[64, 128]
  %2 = matmul(%0, %1) : f32[B, 128]
  %3 = reduce.sum(%2) {axes=[1], keepdim=false} : f32[B]
  return %3
}
"#;
        assert_eq!(mlp().to_string(), expected);
    }

    #[test]
    fn prints_attributes_of_layout_and_function_ops() {
        let conv = Op::Conv { stride: vec![1, 2], padding: vec![(1, 1), (0, 2)], dilation: vec![1, 1], groups: 2 };
        assert_eq!(
            op_attrs(&conv),
            vec![
                ("stride", "[1, 2]".to_string()),
                ("padding", "[[1, 1], [0, 2]]".to_string()),
                ("dilation", "[1, 1]".to_string()),
                ("groups", "2".to_string()),
            ]
        );
        let stack = Op::Stack(vec!["s.0".into(), "odd name".into()]);
        assert_eq!(op_attrs(&stack), vec![("funcs", r#"[@s.0, @"odd name"]"#.to_string())]);
        assert!(op_attrs(&Op::MatMul).is_empty());
    }

    #[test]
    fn prints_every_result_of_an_instruction() {
        let scan = Op::Scan { func: "cell".into(), axis: 1, carries: 1, xs: 1, reverse: true };
        let inst = Inst::with_results(
            scan,
            vec![ValueId(1), ValueId(2)],
            vec![(ValueId(5), ty("f32[B, 8]")), (ValueId(6), ty("f32[B, T, 8]"))],
        );
        assert_eq!(
            inst.to_string(),
            "%5, %6 = scan(%1, %2) {func=@cell, axis=1, carries=1, xs=1, reverse=true} : f32[B, 8], f32[B, T, 8]"
        );
        let vmap = Op::Vmap { func: "f".into(), keep: vec![true], out_keep: vec![true, false] };
        let inst =
            Inst::with_results(vmap, vec![ValueId(0)], vec![(ValueId(1), ty("f32[B, 4]")), (ValueId(2), ty("f32[B]"))]);
        assert_eq!(
            inst.to_string(),
            "%1, %2 = vmap(%0) {func=@f, keep=[true], out_keep=[true, false]} : f32[B, 4], f32[B]"
        );
    }

    #[test]
    fn floats_and_strings() {
        assert_eq!(float_text(1e-5), "1e-5");
        assert_eq!(float_text(2.0), "2.0");
        assert_eq!(float_text(f64::NEG_INFINITY), "-inf");
        assert_eq!(quote("a\"b\\c\nd\u{1b}é"), r#""a\"b\\c\nd\u{1b}é""#);
        assert_eq!(name_text("enc.0.w"), "enc.0.w");
        assert_eq!(name_text(""), "\"\"");
    }

    #[test]
    fn undefined_results_print_as_question_marks() {
        let mut p = mlp();
        p.funcs[0].results.push(ValueId(42));
        p.funcs[0].result_names.push("ghost".into());
        let text = p.to_string();
        assert!(text.contains(r#"-> (f32[B] "logits", ? "ghost") {"#), "{text}");
        assert!(text.contains("return %3, %42"), "{text}");
    }
}
