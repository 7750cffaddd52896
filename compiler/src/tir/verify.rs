//! The TIR verifier: checks the invariants every well-formed program keeps and reports
//! *all* violations (it never stops at the first).
//!
//! Invariants:
//! 1. Program: a function `main` exists; function names are unique; parameter names are
//!    unique.
//! 2. Names: `arg_names` has one entry per argument, `result_names` one per result.
//! 3. SSA: a function's arguments are distinct values; every value is defined once (by an
//!    argument or by one result of one instruction); every operand is defined before it
//!    is used.
//! 4. Results: every returned value is defined in the function.
//! 5. Types: an instruction has as many results as its op gives, and their types equal
//!    [`infer`] of its op and operand types, given the instruction's types as the
//!    declared ones (so declared-type ops are validated).
//! 6. Params: a `param` op names a declared parameter and has exactly its type.
//! 7. Calls: the targets of `call`, `stack`, `vmap` and `scan` exist, and the call graph
//!    is acyclic (no recursion, direct or mutual).
//! 8. Symbols: in a function with arguments, every symbol in an instruction's types or dim
//!    attributes (`slice` bounds, `irfft` n) appears in some argument type: argument
//!    dims are the function's size parameters and everything else derives from them.
//!    (Functions without arguments are exempt.)
//!
//! Instructions whose operands are undefined, or whose callees are missing or have
//! undefined results, are not type-checked: the root cause is reported instead.

use super::infer::{infer, FuncSigs};
use super::ops::Op;
use super::program::{Func, Inst, Program, ValueId};
use super::types::TensorType;
use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// One violated invariant. `func` is empty for program-level errors; `inst` is an index
/// into the function's body.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyError {
    pub func: String,
    pub inst: Option<usize>,
    pub message: String,
}

impl fmt::Display for VerifyError {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match (self.func.as_str(), self.inst) {
            ("", _) => write!(f, "program: {}", self.message),
            (func, None) => write!(f, "@{func}: {}", self.message),
            (func, Some(i)) => write!(f, "@{func}, instruction {i}: {}", self.message),
        }
    }
}

impl std::error::Error for VerifyError {}

/// Checks every invariant in the module docs.
pub fn verify(p: &Program) -> Result<(), Vec<VerifyError>> {
    let mut errs = Vec::new();
    let ix = Index::new(p);
    check_program(p, &mut errs);
    check_call_graph(p, &ix, &mut errs);
    for f in &p.funcs {
        FuncCheck { ix: &ix, f, errs: &mut errs }.run();
    }
    if errs.is_empty() {
        Ok(())
    } else {
        Err(errs)
    }
}

/// Functions, signatures and parameters by name (programs can have many thousands).
struct Index<'p> {
    funcs: HashMap<&'p str, &'p Func>,
    sigs: HashMap<&'p str, (Vec<TensorType>, Vec<TensorType>)>,
    params: HashMap<&'p str, &'p super::program::ParamDecl>,
}

impl<'p> Index<'p> {
    fn new(p: &'p Program) -> Self {
        let mut funcs = HashMap::new();
        let mut sigs = HashMap::new();
        for f in &p.funcs {
            funcs.entry(f.name.as_str()).or_insert(f);
            if let Some(sig) = p.sig(&f.name) {
                sigs.entry(f.name.as_str()).or_insert(sig);
            }
        }
        let mut params = HashMap::new();
        for d in &p.params {
            params.entry(d.name.as_str()).or_insert(d);
        }
        Index { funcs, sigs, params }
    }
}

impl FuncSigs for Index<'_> {
    fn sig(&self, name: &str) -> Option<(Vec<TensorType>, Vec<TensorType>)> {
        self.sigs.get(name).cloned()
    }
}

fn program_error(message: String) -> VerifyError {
    VerifyError { func: String::new(), inst: None, message }
}

fn check_program(p: &Program, errs: &mut Vec<VerifyError>) {
    if p.func("main").is_none() {
        errs.push(program_error("there is no function `main`".into()));
    }
    for name in duplicates(p.funcs.iter().map(|f| f.name.as_str())) {
        errs.push(program_error(format!("function @{name} is defined more than once")));
    }
    for name in duplicates(p.params.iter().map(|d| d.name.as_str())) {
        errs.push(program_error(format!("parameter `{name}` is declared more than once")));
    }
}

/// Names that occur more than once, in order of their second occurrence.
fn duplicates<'a>(names: impl Iterator<Item = &'a str>) -> Vec<&'a str> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for n in names {
        if !seen.insert(n) && !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

/// Reports each cycle of the call graph once (missing targets are reported per
/// instruction).
fn check_call_graph(p: &Program, ix: &Index, errs: &mut Vec<VerifyError>) {
    let mut state: HashMap<&str, bool> = HashMap::new(); // false: on the path, true: done
    for f in &p.funcs {
        let mut path = Vec::new();
        visit(ix, &f.name, &mut state, &mut path, errs);
    }
}

fn visit<'a>(
    p: &Index<'a>,
    name: &'a str,
    state: &mut HashMap<&'a str, bool>,
    path: &mut Vec<&'a str>,
    errs: &mut Vec<VerifyError>,
) {
    match state.get(name) {
        Some(true) => return,
        Some(false) => {
            let start = path.iter().position(|n| *n == name).expect("on the path");
            let cycle: Vec<String> = path[start..].iter().chain([&name]).map(|n| format!("@{n}")).collect();
            let message = format!("recursion is not allowed: {}", cycle.join(" -> "));
            errs.push(VerifyError { func: name.to_string(), inst: None, message });
            return;
        }
        None => {}
    }
    let Some(f) = p.funcs.get(name).copied() else { return };
    state.insert(name, false);
    path.push(name);
    for callee in f.body.iter().flat_map(|i| i.op.callees()) {
        visit(p, callee, state, path, errs);
    }
    path.pop();
    state.insert(name, true);
}

struct FuncCheck<'a> {
    ix: &'a Index<'a>,
    f: &'a Func,
    errs: &'a mut Vec<VerifyError>,
}

impl<'a> FuncCheck<'a> {
    fn err(&mut self, inst: Option<usize>, message: String) {
        self.errs.push(VerifyError { func: self.f.name.clone(), inst, message });
    }

    fn run(&mut self) {
        self.check_names();
        let defined = self.check_body();
        for r in &self.f.results {
            if !defined.contains_key(r) {
                self.err(None, format!("returns {r}, which is not defined"));
            }
        }
        self.check_symbols();
    }

    fn check_names(&mut self) {
        let f = self.f;
        if f.arg_names.len() != f.args.len() {
            self.err(None, format!("has {} arguments but {} argument names", f.args.len(), f.arg_names.len()));
        }
        if f.result_names.len() != f.results.len() {
            self.err(None, format!("has {} results but {} result names", f.results.len(), f.result_names.len()));
        }
    }

    /// SSA and per-instruction checks; returns the defined values with their types.
    fn check_body(&mut self) -> HashMap<ValueId, &'a TensorType> {
        let mut defined: HashMap<ValueId, &'a TensorType> = HashMap::new();
        for (v, t) in &self.f.args {
            if defined.insert(*v, t).is_some() {
                self.err(None, format!("argument {v} is listed more than once"));
            }
        }
        for (i, inst) in self.f.body.iter().enumerate() {
            let operands = self.operands(i, inst, &defined);
            for (r, t) in inst.results() {
                if let Entry::Vacant(e) = defined.entry(r) {
                    e.insert(t);
                } else {
                    self.err(Some(i), format!("{r} is defined more than once"));
                }
            }
            if let Some(tys) = operands {
                self.check_inst(i, inst, &tys);
            }
        }
        defined
    }

    /// The operand types, or `None` (after reporting) when one is not yet defined.
    fn operands(
        &mut self,
        i: usize,
        inst: &Inst,
        defined: &HashMap<ValueId, &'a TensorType>,
    ) -> Option<Vec<&'a TensorType>> {
        let mut tys = Some(Vec::new());
        for a in &inst.args {
            match defined.get(a) {
                Some(t) => tys.iter_mut().for_each(|v| v.push(*t)),
                None => {
                    let later = self.f.body[i..].iter().any(|b| b.defines(*a));
                    let why = if later { "before it is defined" } else { "but never defined" };
                    self.err(Some(i), format!("operand {a} is used {why}"));
                    tys = None;
                }
            }
        }
        tys
    }

    fn check_inst(&mut self, i: usize, inst: &Inst, tys: &[&TensorType]) {
        let mut callable = true;
        for c in inst.op.callees() {
            if !self.ix.funcs.contains_key(c) {
                self.err(Some(i), format!("{} targets @{c}, which does not exist", inst.op.name()));
            }
            callable &= self.ix.sigs.contains_key(c);
        }
        if let Op::Param(name) = &inst.op {
            self.check_param(i, name, &inst.ty);
        }
        if callable {
            if let Err(e) = infer(&inst.op, tys, Some(&inst.result_types()), self.ix) {
                self.err(Some(i), e);
            }
        }
    }

    fn check_param(&mut self, i: usize, name: &str, ty: &TensorType) {
        match self.ix.params.get(name) {
            None => self.err(Some(i), format!("reads parameter `{name}`, which is not declared")),
            Some(d) if d.ty != *ty => {
                self.err(Some(i), format!("reads parameter `{name}` as {ty}, but it is declared as {}", d.ty))
            }
            Some(_) => {}
        }
    }

    fn check_symbols(&mut self) {
        if self.f.args.is_empty() {
            return;
        }
        let bound: BTreeSet<String> =
            self.f.args.iter().flat_map(|(_, t)| t.shape.iter().flat_map(|d| d.symbols())).collect();
        for (i, inst) in self.f.body.iter().enumerate() {
            let mut dims: Vec<_> = inst.results().flat_map(|(_, t)| &t.shape).collect();
            match &inst.op {
                Op::Slice { start, end, .. } => dims.extend(start.iter().chain(end)),
                Op::Irfft { n, .. } => dims.push(n),
                _ => {}
            }
            let free: BTreeSet<String> = dims.iter().flat_map(|d| d.symbols()).filter(|s| !bound.contains(s)).collect();
            for s in free {
                self.err(Some(i), format!("symbol `{s}` does not appear in any argument type of @{}", self.f.name));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tir::parse::parse_program;
    use crate::tir::testutil::{sample_program, ty};

    /// The messages of all errors in `text` (a program), as `Display` shows them.
    fn errors(text: &str) -> Vec<String> {
        let p = parse_program(text).unwrap_or_else(|e| panic!("{e}"));
        match verify(&p) {
            Ok(()) => Vec::new(),
            Err(es) => es.iter().map(|e| e.to_string()).collect(),
        }
    }

    /// `text` has exactly one error, equal to `expected`.
    fn one_error(text: &str, expected: &str) {
        assert_eq!(errors(text), vec![expected.to_string()]);
    }

    const MAIN: &str = "func @main(%0: f32[B] \"x\") -> (f32[B] \"y\") {\n  return %0\n}\n";

    #[test]
    fn the_sample_is_valid() {
        assert_eq!(verify(&sample_program()), Ok(()));
        let p = parse_program(&sample_program().to_string()).unwrap();
        assert_eq!(verify(&p), Ok(()));
    }

    #[test]
    fn main_must_exist() {
        one_error("program P\nfunc @f() -> () {\n  return\n}\n", "program: there is no function `main`");
    }

    #[test]
    fn function_names_are_unique() {
        let text = format!("program P\n{MAIN}{MAIN}");
        one_error(&text, "program: function @main is defined more than once");
    }

    #[test]
    fn param_names_are_unique() {
        let text = format!("program P\nparam @w : f32[2] = zeros()\nbuffer @w : f32[2] = ones()\n{MAIN}");
        one_error(&text, "program: parameter `w` is declared more than once");
    }

    #[test]
    fn name_lists_match() {
        let mut p = parse_program(&format!("program P\n{MAIN}")).unwrap();
        p.funcs[0].arg_names.clear();
        p.funcs[0].result_names.push("extra".into());
        let errs: Vec<String> = verify(&p).unwrap_err().iter().map(|e| e.to_string()).collect();
        assert_eq!(errs, ["@main: has 1 arguments but 0 argument names", "@main: has 1 results but 2 result names"]);
    }

    #[test]
    fn arguments_are_distinct() {
        let text = "program P\nfunc @main(%0: f32[B] \"x\", %0: f32[B] \"y\") -> (f32[B] \"y\") {\n  return %0\n}\n";
        one_error(text, "@main: argument %0 is listed more than once");
    }

    #[test]
    fn values_are_defined_once() {
        let text =
            "program P\nfunc @main(%0: f32[B] \"x\") -> (f32[B] \"y\") {\n  %0 = exp(%0) : f32[B]\n  return %0\n}\n";
        one_error(text, "@main, instruction 0: %0 is defined more than once");
    }

    #[test]
    fn operands_are_defined_before_use() {
        let text = "program P\nfunc @main(%0: f32[B] \"x\") -> (f32[B] \"y\") {\n  %1 = add(%0, %2) : f32[B]\n  \
                    %2 = exp(%0) : f32[B]\n  %3 = exp(%9) : f32[B]\n  return %1\n}\n";
        assert_eq!(
            errors(text),
            [
                "@main, instruction 0: operand %2 is used before it is defined",
                "@main, instruction 2: operand %9 is used but never defined"
            ]
        );
    }

    #[test]
    fn results_are_defined() {
        let text = "program P\nfunc @main(%0: f32[B] \"x\") -> (? \"y\") {\n  return %4\n}\n";
        one_error(text, "@main: returns %4, which is not defined");
    }

    #[test]
    fn instruction_types_follow_the_rules() {
        let text = "program P\nfunc @main(%0: f32[B] \"x\") -> (f32[B] \"y\") {\n  %1 = exp(%0) : f32[B, 2]\n  \
                    %2 = reshape(%0) : f32[B, 2]\n  return %0\n}\n";
        assert_eq!(
            errors(text),
            [
                "@main, instruction 0: exp: declared type f32[B, 2] differs from the inferred type f32[B]",
                "@main, instruction 1: reshape: element counts differ: f32[B] has B, f32[B, 2] has 2 * B"
            ]
        );
    }

    #[test]
    fn every_result_is_checked() {
        let split = "func @split(%0: f32[N] \"x\") -> (f32[N] \"a\", f32[] \"b\") {\n  \
                     %1 = reduce.sum(%0) {axes=[0], keepdim=false} : f32[]\n  return %0, %1\n}\n";
        let main = |line: &str| {
            format!("program P\nfunc @main(%0: f32[B] \"x\") -> (f32[B] \"y\") {{\n  {line}\n  return %0\n}}\n{split}")
        };
        assert_eq!(errors(&main("%1, %2 = call(%0) {func=@split} : f32[B], f32[]")), Vec::<String>::new());
        one_error(
            &main("%1 = call(%0) {func=@split} : f32[B]"),
            "@main, instruction 0: call: 1 result type declared, but the op gives 2",
        );
        one_error(
            &main("%1, %2, %3 = call(%0) {func=@split} : f32[B], f32[], f32[]"),
            "@main, instruction 0: call: 3 result types declared, but the op gives 2",
        );
        one_error(
            &main("%1, %2 = call(%0) {func=@split} : f32[B], f64[]"),
            "@main, instruction 0: call: declared type f64[] of result 1 differs from the inferred type f32[]",
        );
        one_error(
            &main("%1, %2 = exp(%0) : f32[B], f32[B]"),
            "@main, instruction 0: exp: 2 result types declared, but the op gives 1",
        );
        one_error(
            &main("%1, %1 = call(%0) {func=@split} : f32[B], f32[]"),
            "@main, instruction 0: %1 is defined more than once",
        );
        one_error(
            &main("%1, %0 = call(%0) {func=@split} : f32[B], f32[]"),
            "@main, instruction 0: %0 is defined more than once",
        );
        // A second result used before its instruction.
        let text = "program P\nfunc @main(%0: f32[B] \"x\") -> (f32[] \"y\") {\n  %1 = neg(%3) : f32[]\n  \
                    %2, %3 = call(%0) {func=@split} : f32[B], f32[]\n  return %3\n}\n";
        one_error(&format!("{text}{split}"), "@main, instruction 0: operand %3 is used before it is defined");
    }

    #[test]
    fn params_are_declared_with_their_type() {
        let text = "program P\nparam @w : f32[2] = zeros()\nfunc @main(%0: f32[B] \"x\") -> (f32[B] \"y\") {\n  \
                    %1 = param() {name=\"w\"} : f32[3]\n  %2 = param() {name=\"v\"} : f32[2]\n  return %0\n}\n";
        assert_eq!(
            errors(text),
            [
                "@main, instruction 0: reads parameter `w` as f32[3], but it is declared as f32[2]",
                "@main, instruction 1: reads parameter `v`, which is not declared"
            ]
        );
    }

    #[test]
    fn call_targets_exist() {
        let text = "program P\nfunc @main(%0: f32[B] \"x\") -> (f32[B] \"y\") {\n  \
                    %1 = stack(%0) {funcs=[@nope]} : f32[B]\n  return %1\n}\n";
        one_error(text, "@main, instruction 0: stack targets @nope, which does not exist");
    }

    #[test]
    fn recursion_is_rejected() {
        let text =
            "program P\nfunc @main(%0: f32[B] \"x\") -> (f32[B] \"y\") {\n  %1 = call(%0) {func=@a} : f32[B]\n  \
                    return %1\n}\nfunc @a(%0: f32[N] \"x\") -> (f32[N] \"y\") {\n  %1 = call(%0) {func=@b} : f32[N]\n  \
                    return %1\n}\nfunc @b(%0: f32[N] \"x\") -> (f32[N] \"y\") {\n  %1 = call(%0) {func=@a} : f32[N]\n  \
                    %2 = call(%0) {func=@b} : f32[N]\n  return %1\n}\n";
        assert_eq!(
            errors(text),
            ["@a: recursion is not allowed: @a -> @b -> @a", "@b: recursion is not allowed: @b -> @b"]
        );
    }

    #[test]
    fn symbols_come_from_arguments() {
        let text = "program P\nfunc @main(%0: f32[B] \"x\") -> (f32[B] \"y\") {\n  \
                    %1 = rand.normal() {seed=1} : f32[K]\n  %2 = slice(%0) {start=[0], end=[B], step=[1]} : f32[B]\n  \
                    return %0\n}\nfunc @gen() -> (f32[K] \"y\") {\n  %0 = rand.normal() {seed=1} : f32[K]\n  return %0\n}\n";
        one_error(text, "@main, instruction 0: symbol `K` does not appear in any argument type of @main");
    }

    #[test]
    fn all_errors_are_collected() {
        let mut p = sample_program();
        p.funcs.retain(|f| f.name != "head");
        p.funcs[0].body[0].ty = ty("f32[8, 17]");
        p.params.push(p.params[0].clone());
        let errs = verify(&p).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs[0].message.contains("parameter `fc.w` is declared more than once"));
        assert_eq!(errs[1].inst, Some(0));
        assert_eq!(errs[3].message, "vmap targets @head, which does not exist");
    }
}
