//! Construction of the TIR program during checking.
//!
//! The builder owns the parameter table and a stack of functions under construction
//! (the entry `main` at the bottom; `stack` blocks, `scan` cells and `vmap` bodies are
//! built on top and finished before the instruction that calls them). Every instruction
//! goes through [`crate::tir::infer::infer`], so the checker and the verifier share one
//! set of shape rules: [`Builder::emit`] appends a single-result instruction,
//! [`Builder::emit_multi`] one with all the results its op gives (`scan`, multi-result
//! `call`/`vmap`).

use super::value::TVal;
use crate::tir::infer::{infer, FuncSigs};
use crate::tir::{Func, Inst, Op, ParamDecl, Program, TensorType, ValueId};
use archc_grammar::span::Span;
use std::collections::HashMap;

/// The largest function the checker builds.
pub const MAX_INSTS: usize = 1_000_000;

struct FuncInProgress {
    index: usize,
    func: Func,
    next: u32,
}

#[derive(Default)]
pub struct Builder {
    pub params: Vec<ParamDecl>,
    param_index: HashMap<String, usize>,
    finished: Vec<Func>,
    open: Vec<FuncInProgress>,
    func_count: usize,
    names: HashMap<String, usize>,
    seed: u64,
    sigs: SigMap,
}

/// Signatures of the finished functions, by name.
type SigMap = HashMap<String, (Vec<TensorType>, Vec<TensorType>)>;

struct Sigs<'a>(&'a SigMap);

impl FuncSigs for Sigs<'_> {
    fn sig(&self, name: &str) -> Option<(Vec<TensorType>, Vec<TensorType>)> {
        self.0.get(name).cloned()
    }
}

impl Builder {
    /// Starts a function; returns its argument values.
    pub fn begin_func(&mut self, name: &str, args: &[(String, TensorType)]) -> Vec<TVal> {
        let index = self.func_count;
        self.func_count += 1;
        let mut func = Func {
            name: self.unique_func_name(name),
            args: Vec::new(),
            arg_names: Vec::new(),
            body: Vec::new(),
            results: Vec::new(),
            result_names: Vec::new(),
        };
        let mut vals = Vec::new();
        for (i, (n, ty)) in args.iter().enumerate() {
            func.args.push((ValueId(i as u32), ty.clone()));
            func.arg_names.push(n.clone());
            vals.push(TVal { id: ValueId(i as u32), ty: ty.clone(), func: index });
        }
        self.open.push(FuncInProgress { index, func, next: args.len() as u32 });
        vals
    }

    fn unique_func_name(&mut self, name: &str) -> String {
        let n = self.names.entry(name.to_string()).or_insert(0);
        *n += 1;
        if *n == 1 {
            name.to_string()
        } else {
            format!("{name}.{}", *n - 1)
        }
    }

    /// Finishes the innermost function; returns its name.
    pub fn end_func(&mut self, results: &[(String, TVal)]) -> String {
        let mut f = self.open.pop().expect("a function is open");
        f.func.results = results.iter().map(|(_, v)| v.id).collect();
        f.func.result_names = results.iter().map(|(n, _)| n.clone()).collect();
        let name = f.func.name.clone();
        let sig =
            (f.func.args.iter().map(|(_, t)| t.clone()).collect(), results.iter().map(|(_, v)| v.ty.clone()).collect());
        self.sigs.insert(name.clone(), sig);
        self.finished.push(f.func);
        name
    }

    /// Abandons the innermost function (after an error, or for a dry run).
    pub fn discard_func(&mut self) {
        self.open.pop();
    }

    /// How many functions are under construction.
    pub fn open_funcs(&self) -> usize {
        self.open.len()
    }

    /// Abandons functions until only `n` are under construction (after an error).
    pub fn close_funcs_to(&mut self, n: usize) {
        self.open.truncate(n);
    }

    pub fn current_func(&self) -> Option<usize> {
        self.open.last().map(|f| f.index)
    }

    /// Appends `op(args)`, which must have one result; its type comes from the shared
    /// shape rules (`declared` for ops that need it).
    pub fn emit(&mut self, op: Op, args: &[&TVal], declared: Option<TensorType>, span: Span) -> Result<TVal, String> {
        let name = op.name();
        let mut vals = self.push(op, args, declared, span)?;
        match vals.len() {
            1 => Ok(vals.pop().expect("one result")),
            n => Err(format!("{name}: gives {n} results where one is expected")),
        }
    }

    /// Appends `op(args)` with every result the shared shape rules give it, in order.
    pub fn emit_multi(&mut self, op: Op, args: &[&TVal], span: Span) -> Result<Vec<TVal>, String> {
        self.push(op, args, None, span)
    }

    fn push(&mut self, op: Op, args: &[&TVal], declared: Option<TensorType>, span: Span) -> Result<Vec<TVal>, String> {
        let Some(cur) = self.current_func() else {
            return Err("tensor operations are only allowed inside a network or layer".into());
        };
        if args.iter().any(|a| a.func != cur) {
            return Err("this tensor belongs to an enclosing network and cannot be used inside a \
                        `stack`, `scan` or per-sample block; pass it in as an input"
                .into());
        }
        let f = self.open.last().expect("a function is open");
        if f.func.body.len() >= MAX_INSTS {
            return Err(format!("a function of more than {MAX_INSTS} instructions is too large to build"));
        }
        let tys: Vec<&TensorType> = args.iter().map(|a| &a.ty).collect();
        let types = infer(&op, &tys, declared.as_ref().map(std::slice::from_ref), &Sigs(&self.sigs))?;
        if let Some(e) = types.iter().find_map(TensorType::size_error) {
            return Err(format!("{}: {e}", op.name()));
        }
        let f = self.open.last_mut().expect("a function is open");
        let results: Vec<(ValueId, TensorType)> = types
            .into_iter()
            .map(|t| {
                f.next += 1;
                (ValueId(f.next - 1), t)
            })
            .collect();
        let vals = results.iter().map(|(id, ty)| TVal { id: *id, ty: ty.clone(), func: cur }).collect();
        let mut inst = Inst::with_results(op, args.iter().map(|a| a.id).collect(), results);
        inst.span = Some(span);
        f.func.body.push(inst);
        Ok(vals)
    }

    /// Declares a parameter (idempotent for the same name and type).
    pub fn declare_param(&mut self, decl: ParamDecl) -> Result<(), String> {
        if let Some(e) = decl.ty.size_error() {
            return Err(format!("parameter `{}`: {e}", decl.name));
        }
        if let Some(&i) = self.param_index.get(&decl.name) {
            let old = &self.params[i];
            if old.ty != decl.ty {
                return Err(format!(
                    "parameter `{}` is declared as {} here but as {} elsewhere",
                    decl.name, decl.ty, old.ty
                ));
            }
            return Ok(());
        }
        self.param_index.insert(decl.name.clone(), self.params.len());
        self.params.push(decl);
        Ok(())
    }

    pub fn param(&self, name: &str) -> Option<&ParamDecl> {
        self.param_index.get(name).map(|&i| &self.params[i])
    }

    /// Parameters declared since `mark` (a value of `params.len()`), in order.
    pub fn params_since(&self, mark: usize) -> &[ParamDecl] {
        &self.params[mark..]
    }

    /// Forgets parameters declared since `mark` (after a dry run).
    pub fn truncate_params(&mut self, mark: usize) {
        for p in self.params.drain(mark..) {
            self.param_index.remove(&p.name);
        }
    }

    /// A fresh seed for a random op.
    pub fn next_seed(&mut self) -> u64 {
        self.seed += 1;
        self.seed
    }

    /// Finishes the program: `main` first, then the other functions in build order.
    pub fn finish(self, name: &str) -> Program {
        let mut funcs = self.finished;
        if let Some(i) = funcs.iter().position(|f| f.name == "main") {
            let main = funcs.remove(i);
            funcs.insert(0, main);
        }
        Program { name: name.to_string(), params: self.params, funcs }
    }
}

impl Builder {
    /// Adds an argument to the innermost function (entry inputs appear as they are met).
    pub fn add_arg(&mut self, name: &str, ty: TensorType) -> TVal {
        let f = self.open.last_mut().expect("a function is open");
        let id = ValueId(f.next);
        f.next += 1;
        f.func.args.push((id, ty.clone()));
        f.func.arg_names.push(name.to_string());
        TVal { id, ty, func: f.index }
    }
}
