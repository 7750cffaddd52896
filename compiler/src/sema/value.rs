//! Compile-time values of the checker.
//!
//! Checking a `.arch` program is evaluating it at build time: numbers, dims, layer specs
//! and instances are values; tensors are SSA values of the TIR function being built
//! ([`TVal`]). A `Value` never outlives the build of one program.

use crate::tir::{DType, Dim, Init, TensorType, ValueId};
use archc_grammar::ast::{BlockDef, Expr, FnDef};
use archc_grammar::span::Span;
use std::fmt;
use std::rc::Rc;

/// A tensor being built: SSA value `id` of TIR function number `func`.
#[derive(Clone, Debug, PartialEq)]
pub struct TVal {
    pub id: ValueId,
    pub ty: TensorType,
    pub func: usize,
}

/// A block definition and the module it lives in.
#[derive(Clone, Debug)]
pub struct BlockRef {
    pub def: Rc<BlockDef>,
    pub module: usize,
}

/// A named function definition and the module it lives in.
#[derive(Clone, Debug)]
pub struct FnRef {
    pub def: Rc<FnDef>,
    pub module: usize,
}

/// Lexical environment captured by lambdas and repeat bodies.
pub type Env = Rc<super::scope::Scope>;

/// A layer instance: one set of parameters under `path`.
#[derive(Debug)]
pub struct Instance {
    pub block: BlockRef,
    pub path: String,
    pub args: Vec<(String, Value)>,
    /// Where it was created (for diagnostics).
    pub span: Span,
}

/// Anything that can be applied to tensors.
#[derive(Clone, Debug)]
pub enum Layer {
    /// `Linear(4, 8)`: instantiated where it is applied or bound by `let`.
    Spec {
        block: BlockRef,
        args: Vec<(String, Value)>,
        span: Span,
        /// In a supernet build, the option of a `choose` this spec is (`op1`): instances
        /// made from it are named with it, so each option has weights of its own.
        tag: Option<String>,
    },
    Instance(Rc<Instance>),
    /// `skip`
    Skip,
    /// `h => expr`
    Lambda {
        param: String,
        body: Rc<Expr>,
        env: Env,
        module: usize,
    },
    /// `repeat n { body }` / `stack(n) { body }`
    /// `name` is the instance path once bound by `let` (applications then share params).
    Repeat {
        count: usize,
        index: Option<String>,
        body: Rc<Expr>,
        env: Env,
        module: usize,
        stack: bool,
        name: Option<String>,
    },
    /// `inst.with_params(theta)`
    WithParams {
        inst: Rc<Instance>,
        theta: TVal,
        span: Span,
    },
    /// A ProxylessNAS build's choice among layers (see `sema::gated`): every option
    /// applied, their results summed, each times its element of the gate parameter.
    Gated {
        gate: String,
        options: Vec<Layer>,
    },
    /// A function used as a layer: `x |> relu`.
    Func(Callable),
}

/// A callable that is not a layer: a user `fn` or a builtin.
#[derive(Clone, Debug)]
pub enum Callable {
    User(FnRef),
    Builtin(&'static str),
    /// `inst.with_params`, waiting for its `theta`.
    WithParams(Rc<Instance>),
}

#[derive(Clone, Debug)]
pub enum Value {
    Int(Dim),
    /// A `shared` (elastic) choice: its value (the chosen option, or in a supernet build
    /// the choice's size symbol), the chosen option and the largest option.
    Elastic {
        value: Dim,
        chosen: i64,
        max: i64,
    },
    Float(f64),
    Bool(bool),
    Str(String),
    DType(DType),
    List(Vec<Value>),
    Tensor(TVal),
    Layer(Layer),
    /// A block name, not yet given arguments: `Linear`.
    Block(BlockRef),
    Func(Callable),
    Module(usize),
    Init(Init),
    /// The `init` namespace.
    InitNamespace,
    /// A prefix of parameter paths in a `train` block's loss (`fc1` of `fc1.w`).
    ParamPath(String),
    /// What a name is bound to when computing its value failed (the error is reported
    /// once): using it stops evaluation silently, so no follow-on errors appear.
    Poison,
}

impl Value {
    /// The kind with its article: "an int", "a tensor".
    pub fn a_kind(&self) -> String {
        let k = self.kind();
        let vowel = k.starts_with(['a', 'e', 'i', 'o', 'u']);
        format!("{} {k}", if vowel { "an" } else { "a" })
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Value::Int(_) | Value::Elastic { .. } => "int",
            Value::Float(_) => "float",
            Value::Bool(_) => "bool",
            Value::Str(_) => "str",
            Value::DType(_) => "dtype",
            Value::List(_) => "list",
            Value::Tensor(_) => "tensor",
            Value::Layer(_) => "layer",
            Value::Block(_) => "block",
            Value::Func(_) => "function",
            Value::Module(_) => "module",
            Value::Init(_) => "initialiser",
            Value::InitNamespace => "namespace",
            Value::ParamPath(_) => "parameter path",
            Value::Poison => "error",
        }
    }

    /// The int as a dim (elastic ints give their chosen value).
    pub fn as_dim(&self) -> Option<Dim> {
        match self {
            Value::Int(d) => Some(d.clone()),
            Value::Elastic { value, .. } => Some(value.clone()),
            _ => None,
        }
    }

    /// The dim with every elastic choice at its largest option.
    pub fn max_dim(&self) -> Option<Dim> {
        match self {
            Value::Elastic { max, .. } => Some(Dim::constant(*max)),
            _ => self.as_dim(),
        }
    }

    pub fn as_const_int(&self) -> Option<i64> {
        self.as_dim().and_then(|d| d.as_const())
    }

    pub fn as_float(&self) -> Option<f64> {
        match self {
            Value::Float(f) => Some(*f),
            // A size symbol as a number: its chosen option, for this build only (see
            // `tensor_ops::elastic`).
            Value::Elastic { value, chosen, .. } if !value.is_const() => Some(*chosen as f64),
            _ => self.as_const_int().map(|i| i as f64),
        }
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Value::Int(d) => write!(f, "{d}"),
            Value::Elastic { value, .. } => write!(f, "{value}"),
            Value::Float(x) => write!(f, "{x:?}"),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Str(s) => write!(f, "{s:?}"),
            Value::DType(d) => write!(f, "{d}"),
            Value::List(items) => {
                write!(f, "[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        write!(f, ", ")?;
                    }
                    write!(f, "{v}")?;
                }
                write!(f, "]")
            }
            Value::Tensor(t) => write!(f, "{}", t.ty),
            Value::Layer(l) => write!(f, "{}", layer_name(l)),
            Value::Block(b) => write!(f, "{}", b.def.name.node),
            Value::Func(Callable::User(u)) => {
                write!(f, "{}", u.def.name.as_ref().map(|n| n.node.as_str()).unwrap_or("fn"))
            }
            Value::Func(Callable::Builtin(b)) => write!(f, "{b}"),
            Value::Func(Callable::WithParams(i)) => write!(f, "{}.with_params", i.path),
            Value::Module(_) => write!(f, "module"),
            Value::Init(i) => write!(f, "{i:?}"),
            Value::InitNamespace => write!(f, "init"),
            Value::ParamPath(p) => write!(f, "{p}"),
            Value::Poison => write!(f, "<error>"),
        }
    }
}

/// A short human name for a layer value: `Linear(4, 8)`, `skip`, `lambda`.
pub fn layer_name(l: &Layer) -> String {
    match l {
        Layer::Spec { block, args, .. } => spec_name(&block.def, args),
        Layer::Instance(i) => spec_name(&i.block.def, &i.args),
        Layer::Skip => "skip".into(),
        Layer::Lambda { .. } => "lambda".into(),
        Layer::Repeat { count, stack: false, .. } => format!("repeat {count}"),
        Layer::Repeat { count, stack: true, .. } => format!("stack({count})"),
        Layer::WithParams { inst, .. } => format!("{}.with_params", spec_name(&inst.block.def, &inst.args)),
        Layer::Func(c) => Value::Func(c.clone()).to_string(),
        Layer::Gated { options, .. } => {
            let names: Vec<String> = options.iter().map(layer_name).collect();
            format!("gated [{}]", names.join(", "))
        }
    }
}

fn spec_name(block: &BlockDef, args: &[(String, Value)]) -> String {
    display_name(block, args)
}

/// `Linear(32, 10)`: a block with the arguments of its parameters that have no default
/// (just the name when every parameter has one).
pub fn display_name(def: &BlockDef, args: &[(String, Value)]) -> String {
    let shown: Vec<String> =
        def.params.iter().zip(args).filter(|(p, _)| p.default.is_none()).map(|(_, (_, v))| v.to_string()).collect();
    if shown.is_empty() {
        def.name.node.clone()
    } else {
        format!("{}({})", def.name.node, shown.join(", "))
    }
}
