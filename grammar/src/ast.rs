//! The abstract syntax tree of `.arch` files.
//!
//! The tree is what the parser saw, with spans, and nothing more: names are not resolved
//! and shapes are not known. A syntax error becomes an `Item::Error`, `Stmt::Error` or
//! `ExprKind::Error` node in place of what could not be parsed, so later stages can
//! still look at the rest of the file.

use crate::span::{Span, Spanned};

pub type Ident = Spanned<String>;

/// One parsed file.
#[derive(Clone, Debug, PartialEq)]
pub struct Module {
    pub items: Vec<Item>,
}

#[derive(Clone, Debug, PartialEq)]
pub enum Item {
    Use(UseItem),
    Fn(FnDef),
    Block(BlockDef),
    Train(TrainDef),
    Adapt(AdaptDef),
    /// A syntax error where an item was expected.
    Error(Span),
}

impl Item {
    pub fn span(&self) -> Span {
        match self {
            Item::Use(u) => u.span,
            Item::Fn(f) => f.span,
            Item::Block(b) => b.span,
            Item::Train(t) => t.span,
            Item::Adapt(a) => a.span,
            Item::Error(s) => *s,
        }
    }
}

/// `use nn.{Linear, relu}`, `use nn.*`, `use nn`, `use nn.Linear`.
#[derive(Clone, Debug, PartialEq)]
pub struct UseItem {
    /// Module path, e.g. `["nn"]` or `["nn", "attention"]`.
    pub path: Vec<Ident>,
    pub names: UseNames,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub enum UseNames {
    /// `use nn`: the module itself is bound to its last path segment.
    Module,
    /// `use nn.*`
    Glob,
    /// `use nn.{a, b}` or `use nn.a` (a one-element list).
    List(Vec<Ident>),
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BlockKind {
    Layer,
    Network,
    Operator,
}

/// `layer`, `network` or `operator` definition.
#[derive(Clone, Debug, PartialEq)]
pub struct BlockDef {
    pub kind: BlockKind,
    pub name: Ident,
    pub params: Vec<ParamDef>,
    /// `over grid N, M` (operators only).
    pub grid: Vec<Ident>,
    pub body: Vec<Stmt>,
    pub span: Span,
}

/// A compile-time parameter of a block or function: `d: int = 4`.
#[derive(Clone, Debug, PartialEq)]
pub struct ParamDef {
    pub name: Ident,
    pub ty: Option<TypeExpr>,
    pub default: Option<Expr>,
    pub span: Span,
}

/// A named top-level function, or a layer's anonymous forward function.
#[derive(Clone, Debug, PartialEq)]
pub struct FnDef {
    /// `None` for a layer's forward `fn (x: ..) -> .. { .. }`.
    pub name: Option<Ident>,
    pub params: Vec<ParamDef>,
    pub ret: Option<TypeExpr>,
    pub body: Expr,
    pub span: Span,
}

/// Statements inside a block body.
#[derive(Clone, Debug, PartialEq)]
pub enum Stmt {
    /// `param w: f32[d] = init.zeros() if cond` (and `buffer ...`).
    Param { name: Ident, ty: TypeExpr, init: Option<Expr>, cond: Option<Expr>, buffer: bool, span: Span },
    /// `input x: f32[B, d]`
    Input { name: Ident, ty: TypeExpr, span: Span },
    /// `output y = expr` (or `output y: T = expr`)
    Output { name: Ident, ty: Option<TypeExpr>, value: Expr, span: Span },
    /// `let name = expr` (or `let name: T = expr`)
    Let { name: Ident, ty: Option<TypeExpr>, value: Expr, span: Span },
    /// `choose name in [options] shared?`
    Choose { name: Ident, options: Vec<Expr>, shared: bool, span: Span },
    /// The forward function of a layer.
    Forward(FnDef),
    /// A syntax error where a statement was expected.
    Error(Span),
}

impl Stmt {
    pub fn span(&self) -> Span {
        match self {
            Stmt::Param { span, .. }
            | Stmt::Input { span, .. }
            | Stmt::Output { span, .. }
            | Stmt::Let { span, .. }
            | Stmt::Choose { span, .. }
            | Stmt::Error(span) => *span,
            Stmt::Forward(f) => f.span,
        }
    }
}

/// A type as written: `f32[B, d * 4]`, `int`, `layer`, `f32[..., d]`, `f32[]`.
#[derive(Clone, Debug, PartialEq)]
pub enum TypeExpr {
    /// A named type without dims: `int`, `float`, `bool`, `str`, `layer`, `dtype`.
    Named(Ident),
    /// A tensor type: dtype name and dims.
    Tensor { dtype: Ident, dims: Vec<DimExpr>, span: Span },
}

impl TypeExpr {
    pub fn span(&self) -> Span {
        match self {
            TypeExpr::Named(i) => i.span,
            TypeExpr::Tensor { span, .. } => *span,
        }
    }
}

/// One dim in a tensor type: an expression, or `...` (any number of leading dims).
#[derive(Clone, Debug, PartialEq)]
pub enum DimExpr {
    Ellipsis(Span),
    Expr(Expr),
}

/// `train Model(args) on data(args) { key: value ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainDef {
    pub model: Expr,
    pub data: Expr,
    pub entries: Vec<Entry>,
    pub span: Span,
}

/// `adapt Model.stack { key: value ... }`.
#[derive(Clone, Debug, PartialEq)]
pub struct AdaptDef {
    /// Dotted path: `Looped.blocks`.
    pub target: Vec<Ident>,
    pub entries: Vec<Entry>,
    pub span: Span,
}

/// `key: value` in a `train`/`adapt` block.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    pub key: Ident,
    pub value: Expr,
    pub span: Span,
}

#[derive(Clone, Debug, PartialEq)]
pub struct Expr {
    pub kind: ExprKind,
    pub span: Span,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Rem,
    Pow,
    MatMul,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinOp {
    pub fn symbol(self) -> &'static str {
        use BinOp::*;
        match self {
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Rem => "%",
            Pow => "**",
            MatMul => "@",
            Eq => "==",
            Ne => "!=",
            Lt => "<",
            Le => "<=",
            Gt => ">",
            Ge => ">=",
            And => "&&",
            Or => "||",
        }
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum UnOp {
    Neg,
    Not,
}

/// A call argument: positional or `name = value`.
#[derive(Clone, Debug, PartialEq)]
pub struct Arg {
    pub name: Option<Ident>,
    pub value: Expr,
    pub span: Span,
}

/// One entry of an index expression `x[...]`.
#[derive(Clone, Debug, PartialEq)]
pub enum IndexItem {
    /// `e` (an int picks one position and drops the axis; an i64 tensor gathers).
    Expr(Expr),
    /// `a:b:s`, each part optional.
    Slice { start: Option<Expr>, end: Option<Expr>, step: Option<Expr>, span: Span },
    /// `...`
    Ellipsis(Span),
}

#[derive(Clone, Debug, PartialEq)]
pub enum ExprKind {
    Int(i64),
    Float(f64),
    Bool(bool),
    Str(String),
    Name(String),
    /// `skip`, the identity layer.
    Skip,
    List(Vec<Expr>),
    Unary(UnOp, Box<Expr>),
    Binary(BinOp, Box<Expr>, Box<Expr>),
    /// `lhs |> rhs`
    Pipe(Box<Expr>, Box<Expr>),
    Call(Box<Expr>, Vec<Arg>),
    Index(Box<Expr>, Vec<IndexItem>),
    Field(Box<Expr>, Ident),
    /// `if c { a } else { b }`; `else` is required.
    If(Box<Expr>, Box<Expr>, Box<Expr>),
    /// `{ let a = e; ...; result }`
    Block(Vec<LetBinding>, Box<Expr>),
    /// `repeat n as i { body }` (`stack: false`) or `stack(n) as i { body }` (`stack: true`).
    Repeat {
        count: Box<Expr>,
        index: Option<Ident>,
        body: Box<Expr>,
        stack: bool,
    },
    /// `x => body`
    Lambda(Ident, Box<Expr>),
    /// A syntax error where an expression was expected.
    Error,
}

/// `let name = value` inside a block expression, or `choose name in [a, b]` (a
/// search-space decision inside a forward function, e.g. which earlier tensor feeds a
/// node): then `choose` is true and `value` is the list of options.
#[derive(Clone, Debug, PartialEq)]
pub struct LetBinding {
    pub name: Ident,
    pub value: Expr,
    pub choose: bool,
    pub span: Span,
}
