//! TIR programs: parameters, functions, instructions.
//!
//! A program is a list of parameter declarations and functions; `main` is the entry.
//! Functions are in SSA form: every [`ValueId`] is defined once, by a function argument
//! or by one instruction, before it is used. Symbolic dims that appear in argument types
//! are the function's size parameters; every other dim is derived from them.

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

/// One instruction: `%r = op(%a, %b) {attrs} : type`.
#[derive(Clone, Debug, PartialEq)]
pub struct Inst {
    pub result: ValueId,
    pub op: Op,
    pub args: Vec<ValueId>,
    pub ty: TensorType,
    /// Where in the `.arch` source this came from (not part of the text form).
    pub span: Option<Span>,
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
        self.args
            .iter()
            .find(|(a, _)| *a == v)
            .map(|(_, t)| t)
            .or_else(|| self.body.iter().find(|i| i.result == v).map(|i| &i.ty))
    }

    pub fn result_types(&self) -> Vec<TensorType> {
        self.results.iter().map(|r| self.type_of(*r).cloned().expect("result defined")).collect()
    }

    /// The next unused value id.
    pub fn next_value(&self) -> ValueId {
        let max_arg = self.args.iter().map(|(v, _)| v.0 + 1).max().unwrap_or(0);
        let max_inst = self.body.iter().map(|i| i.result.0 + 1).max().unwrap_or(0);
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
