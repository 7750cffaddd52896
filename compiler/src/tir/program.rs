//! TIR programs: parameters, functions, instructions.
//!
//! A program is a list of parameter declarations and functions; `main` is the entry.
//! Functions are in SSA form: every [`ValueId`] is defined once, by a function argument
//! or by one instruction, before it is used. Symbolic dims that appear in argument types
//! are the function's size parameters; every other dim is derived from them.
//!
//! An instruction has one or more results: the first is `result : ty`, any others are in
//! `extra` (empty for every op but `call`, `vmap` and `scan` of functions with several
//! results). [`Inst::results`] lists them all, in order.

use super::ops::{Init, Op};
use super::types::TensorType;
use archc_grammar::span::Span;
use std::fmt;

/// An SSA value, printed `%3`. Unique within a function.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ValueId(pub u32);

impl fmt::Display for ValueId {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "%{}", self.0)
    }
}

/// `param @fc1.w : f32[64, 128] = uniform(low=-0.125, high=0.125)`
/// (`buffer @bn.mean : ...` when not trainable).
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDecl {
    /// Dotted path of the owning instance, then the param name: `enc.0.attn.wq`.
    pub name: String,
    pub ty: TensorType,
    pub init: Init,
    pub trainable: bool,
}

/// One instruction: `%r = op(%a, %b) {attrs} : type`, or with several results
/// `%r, %s = op(%a) {attrs} : type_r, type_s`.
#[derive(Clone, Debug, PartialEq)]
pub struct Inst {
    /// The first result and its type.
    pub result: ValueId,
    pub op: Op,
    pub args: Vec<ValueId>,
    pub ty: TensorType,
    /// The results after the first, in order (empty for single-result instructions).
    pub extra: Vec<(ValueId, TensorType)>,
    /// Where in the `.arch` source this came from (not part of the text form).
    pub span: Option<Span>,
}

impl Inst {
    /// A single-result instruction without a span.
    pub fn new(result: ValueId, op: Op, args: Vec<ValueId>, ty: TensorType) -> Inst {
        Inst { result, op, args, ty, extra: Vec::new(), span: None }
    }

    /// An instruction with the results `results` (at least one), without a span.
    pub fn with_results(op: Op, args: Vec<ValueId>, results: Vec<(ValueId, TensorType)>) -> Inst {
        let mut it = results.into_iter();
        let (result, ty) = it.next().expect("an instruction has at least one result");
        Inst { result, op, args, ty, extra: it.collect(), span: None }
    }

    /// Every result with its type, the first one first.
    pub fn results(&self) -> impl Iterator<Item = (ValueId, &TensorType)> + '_ {
        std::iter::once((self.result, &self.ty)).chain(self.extra.iter().map(|(v, t)| (*v, t)))
    }

    /// Every result value, in order.
    pub fn result_ids(&self) -> impl Iterator<Item = ValueId> + '_ {
        self.results().map(|(v, _)| v)
    }

    /// The result types, in order.
    pub fn result_types(&self) -> Vec<TensorType> {
        self.results().map(|(_, t)| t.clone()).collect()
    }

    pub fn num_results(&self) -> usize {
        1 + self.extra.len()
    }

    /// Whether `v` is one of this instruction's results.
    pub fn defines(&self, v: ValueId) -> bool {
        self.result_ids().any(|r| r == v)
    }

    /// The type of result `v`, when this instruction defines it.
    pub fn type_of(&self, v: ValueId) -> Option<&TensorType> {
        self.results().find(|(r, _)| *r == v).map(|(_, t)| t)
    }
}

#[derive(Clone, Debug, PartialEq)]
pub struct Func {
    pub name: String,
    /// Arguments with their names in the source (`x`), printed as comments-free `%0: T`.
    pub args: Vec<(ValueId, TensorType)>,
    pub arg_names: Vec<String>,
    pub body: Vec<Inst>,
    pub results: Vec<ValueId>,
    pub result_names: Vec<String>,
}

impl Func {
    /// The type of a value defined in this function.
    pub fn type_of(&self, v: ValueId) -> Option<&TensorType> {
        self.args.iter().find(|(a, _)| *a == v).map(|(_, t)| t).or_else(|| self.body.iter().find_map(|i| i.type_of(v)))
    }

    pub fn result_types(&self) -> Vec<TensorType> {
        self.results.iter().map(|r| self.type_of(*r).cloned().expect("result defined")).collect()
    }

    /// The next unused value id.
    pub fn next_value(&self) -> ValueId {
        let max_arg = self.args.iter().map(|(v, _)| v.0 + 1).max().unwrap_or(0);
        let max_inst = self.body.iter().flat_map(|i| i.result_ids()).map(|v| v.0 + 1).max().unwrap_or(0);
        ValueId(max_arg.max(max_inst))
    }
}

#[derive(Clone, Debug, PartialEq, Default)]
pub struct Program {
    pub name: String,
    pub params: Vec<ParamDecl>,
    pub funcs: Vec<Func>,
}

impl Program {
    pub fn func(&self, name: &str) -> Option<&Func> {
        self.funcs.iter().find(|f| f.name == name)
    }

    pub fn main(&self) -> &Func {
        self.func("main").expect("program has a main function")
    }

    pub fn param(&self, name: &str) -> Option<&ParamDecl> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Total number of trainable scalars when every dim is concrete.
    pub fn param_count(&self) -> Option<usize> {
        self.params
            .iter()
            .filter(|p| p.trainable)
            .map(|p| p.ty.const_shape().map(|s| s.iter().product::<usize>()))
            .sum()
    }
}
