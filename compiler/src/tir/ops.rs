//! The TIR primitive operations.
//!
//! Every op is a pure function of its operands (tensors) and attributes (compile-time
//! data); the instruction that uses it records its result types. Every op has exactly
//! one result except `call`, `vmap` (one per result of the callee) and `scan` (the final
//! carries, then the stacked per-step outputs). Conventions shared by every backend:
//! - Elementwise binary ops, `select` and comparisons take operands of *identical*
//!   shapes: the checker inserts `broadcast` ops, so no backend implements broadcasting.
//! - Axes in attributes are non-negative and already normalised.
//! - Integer division and remainder round toward negative infinity.
//!
//! Each variant's doc shows one instruction in TIR text.

use super::dim::Dim;
use super::types::DType;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum UnaryOp {
    Neg,
    Exp,
    Log,
    Log1p,
    Sqrt,
    Rsqrt,
    Tanh,
    Sigmoid,
    Relu,
    Erf,
    Abs,
    Sin,
    Cos,
    Sign,
    Floor,
    /// Logical not (bool only).
    Not,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Pow,
    Rem,
    Max,
    Min,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    And,
    Or,
}

impl BinaryOp {
    /// Comparisons and logic produce `bool`.
    pub fn is_predicate(self) -> bool {
        use BinaryOp::*;
        matches!(self, Eq | Ne | Lt | Le | Gt | Ge | And | Or)
    }
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum ReduceOp {
    Sum,
    Mean,
    Max,
    Min,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum PoolOp {
    Max,
    Avg,
}

/// How a parameter starts its life.
#[derive(Clone, Debug, PartialEq)]
pub enum Init {
    Zeros,
    Ones,
    Constant(f64),
    Normal { mean: f64, std: f64 },
    Uniform { low: f64, high: f64 },
}

/// A TIR operation. Operands are listed as `(%a, %b)` in the text form.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Reads a program parameter or buffer. `%1 = param() {name="fc1.w"} : f32[64, 128]`
    Param(String),
    /// A scalar constant (rank 0). `%2 = const() {value=0.5} : f32[]`
    Const(f64),
    /// `0, 1, 2, ...` along `axis` of the result type. `%3 = iota() {axis=0} : i64[8]`
    Iota { axis: usize },
    /// `%4 = exp(%3) : f32[B, 8]`
    Unary(UnaryOp),
    /// `%5 = add(%3, %4) : f32[B, 8]` (identical operand shapes)
    Binary(BinaryOp),
    /// `cond ? a : b` elementwise. `%6 = select(%c, %a, %b) : f32[B, 8]`
    Select,
    /// `%7 = cast(%6) : f64[B, 8]` (to the result dtype)
    Cast,
    /// `%8 = reduce.sum(%7) {axes=[1], keepdim=false} : f64[B]`
    Reduce { op: ReduceOp, axes: Vec<usize>, keepdim: bool },
    /// Index of the maximum along `axis`. `%9 = argmax(%7) {axis=1, keepdim=false} : i64[B]`
    ArgMax { axis: usize, keepdim: bool },
    /// The indices that sort `axis` (stable: equal values keep their order; NaN is the
    /// largest value, `-0.0` equals `0.0`), descending when `descending`.
    /// `%9 = argsort(%7) {axis=1, descending=false} : i64[B, 10]`
    ArgSort { axis: usize, descending: bool },
    /// The operand's value, through which no gradient flows.
    /// `%9 = stop_gradient(%7) : f32[B, 10]`
    StopGradient,
    /// `[..., m, k] x [..., k, n] -> [..., m, n]`, identical batch dims.
    /// `%10 = matmul(%a, %b) : f32[B, 10]`
    MatMul,
    /// Explicit `lhs,rhs->out` subscripts (letters only, no ellipsis).
    /// `%11 = einsum(%a, %b) {spec="bi,io->bo"} : f32[B, 16]`
    Einsum(String),
    /// N-d cross-correlation, PyTorch layout: x `[B, C_in, *S]`, w `[C_out, C_in / groups, *K]`.
    /// `padding` holds `(lo, hi)` per spatial axis.
    /// `%12 = conv(%x, %w) {stride=[1], padding=[[1, 1]], dilation=[1], groups=1} : f32[B, 8, N]`
    Conv { stride: Vec<i64>, padding: Vec<(i64, i64)>, dilation: Vec<i64>, groups: i64 },
    /// N-d pooling over the trailing `window.len()` axes (avg pooling counts padding as zeros).
    /// `%13 = pool.max(%x) {window=[2], stride=[2], padding=[[0, 0]]} : f32[B, 8, N / 2]`
    Pool { op: PoolOp, window: Vec<i64>, stride: Vec<i64>, padding: Vec<(i64, i64)> },
    /// Same element count, row-major. `%14 = reshape(%x) : f32[B, 4, 2]`
    Reshape,
    /// `result.shape[i] = x.shape[perm[i]]`. `%15 = permute(%x) {perm=[0, 2, 1]} : f32[B, 2, 4]`
    Permute(Vec<usize>),
    /// Numpy broadcasting to the result shape (leading axes added, size-1 axes stretched).
    /// `%16 = broadcast(%c) : f32[B, 8]`
    Broadcast,
    /// Strided slice per axis: `start`, `end` (exclusive, clamped), `step > 0`.
    /// `%17 = slice(%x) {start=[0, 0], end=[B, 4], step=[1, 1]} : f32[B, 4]`
    Slice { start: Vec<Dim>, end: Vec<Dim>, step: Vec<i64> },
    /// `%18 = concat(%a, %b) {axis=1} : f32[B, 16]`
    Concat { axis: usize },
    /// Constant padding, `(lo, hi)` per axis (non-negative).
    /// `%19 = pad(%x) {padding=[[0, 0], [1, 2]], value=0.0} : f32[B, 11]`
    Pad { padding: Vec<(i64, i64)>, value: f64 },
    /// `x.shape[:axis] + idx.shape + x.shape[axis+1:]`; indices are i64 in `[0, size)`.
    /// `%20 = gather(%table, %idx) {axis=0} : f32[B, 16]`
    Gather { axis: usize },
    /// Adds `src` into a copy of `x` at `idx` along `axis` (the inverse layout of `gather`).
    /// `%21 = scatter_add(%x, %idx, %src) {axis=0} : f32[100, 16]`
    ScatterAdd { axis: usize },
    /// Real-to-complex FFT along `axis` (`n / 2 + 1` outputs).
    /// `%22 = rfft(%x) {axis=2} : c64[B, C, N / 2 + 1]`
    Rfft { axis: usize },
    /// Complex-to-real inverse FFT along `axis` producing `n` points (normalised by `1/n`).
    /// `%23 = irfft(%x) {axis=2, n=N} : f32[B, C, N]`
    Irfft { axis: usize, n: Dim },
    /// `%24 = real(%z) : f32[B, 8]`
    Real,
    /// `%25 = imag(%z) : f32[B, 8]`
    Imag,
    /// `%26 = complex(%re, %im) : c64[B, 8]`
    Complex,
    /// Uniform in `[0, 1)`; `seed` makes each op's stream distinct.
    /// `%27 = rand.uniform() {seed=3} : f32[B, 8]`
    RandUniform { seed: u64 },
    /// Standard normal. `%28 = rand.normal() {seed=4} : f32[B, 8]`
    RandNormal { seed: u64 },
    /// Calls another function of the program; its results are the callee's results.
    /// `%29 = call(%x) {func=@block0} : f32[B, 8]`,
    /// `%29, %30 = call(%x) {func=@split} : f32[B, 4], f32[B, 4]`
    Call(String),
    /// Applies the functions in order (a `stack` of same-shape blocks); the runtime may
    /// skip or repeat entries per sample. `%30 = stack(%x) {funcs=[@s.0, @s.1]} : f32[B, 8]`
    Stack(Vec<String>),
    /// Maps `func` over axis 0 of every operand. Operand `i` is passed with that axis
    /// kept (size 1) when `keep[i]`, else dropped. The op has one result per callee
    /// result: result `j` concatenates the per-sample values along axis 0 when
    /// `out_keep[j]` (each has a leading axis of size 1), else stacks them along a new
    /// axis 0. `%31 = vmap(%x, %w) {func=@target, keep=[true, false], out_keep=[true]} : f32[B, 10]`,
    /// `%31, %32 = vmap(%x) {func=@two, keep=[true], out_keep=[true, false]} : f32[B, 4], f32[B]`
    Vmap { func: String, keep: Vec<bool>, out_keep: Vec<bool> },
    /// A loop over `axis`, like `jax.lax.scan`. Operands: `carries` initial carry values,
    /// then `xs` sequences (all of one length `T` along `axis`), then invariants (every
    /// remaining operand, passed unchanged to every step, e.g. parameters of a cell).
    /// Each step is `func(carry..., x_t..., invariant...) -> (carry..., y_t...)`, where
    /// `x_t` is a sequence at index `t` with `axis` removed and every carry keeps its
    /// initial type. Steps run `t = 0..T`, or from `T - 1` down to 0 when `reverse`.
    /// Results: the final carries, then each output `y` stacked along `axis`
    /// (`y.shape[..axis] + [T] + y.shape[axis..]`, `y_t` at index `t` in either
    /// direction). With `T = 0` the carries are the initial values and the outputs are
    /// empty. `%32, %33 = scan(%h0, %xs, %w) {func=@cell, axis=1, carries=1, xs=1,
    /// reverse=false} : f32[B, 64], f32[B, T, 64]`
    Scan { func: String, axis: usize, carries: usize, xs: usize, reverse: bool },
}

impl Op {
    /// The op name in TIR text.
    pub fn name(&self) -> String {
        match self {
            Op::Param(_) => "param".into(),
            Op::Const(_) => "const".into(),
            Op::Iota { .. } => "iota".into(),
            Op::Unary(u) => unary_name(*u).into(),
            Op::Binary(b) => binary_name(*b).into(),
            Op::Select => "select".into(),
            Op::Cast => "cast".into(),
            Op::ArgSort { .. } => "argsort".into(),
            Op::StopGradient => "stop_gradient".into(),
            Op::Reduce { op, .. } => format!("reduce.{}", reduce_name(*op)),
            Op::ArgMax { .. } => "argmax".into(),
            Op::MatMul => "matmul".into(),
            Op::Einsum(_) => "einsum".into(),
            Op::Conv { .. } => "conv".into(),
            Op::Pool { op: PoolOp::Max, .. } => "pool.max".into(),
            Op::Pool { op: PoolOp::Avg, .. } => "pool.avg".into(),
            Op::Reshape => "reshape".into(),
            Op::Permute(_) => "permute".into(),
            Op::Broadcast => "broadcast".into(),
            Op::Slice { .. } => "slice".into(),
            Op::Concat { .. } => "concat".into(),
            Op::Pad { .. } => "pad".into(),
            Op::Gather { .. } => "gather".into(),
            Op::ScatterAdd { .. } => "scatter_add".into(),
            Op::Rfft { .. } => "rfft".into(),
            Op::Irfft { .. } => "irfft".into(),
            Op::Real => "real".into(),
            Op::Imag => "imag".into(),
            Op::Complex => "complex".into(),
            Op::RandUniform { .. } => "rand.uniform".into(),
            Op::RandNormal { .. } => "rand.normal".into(),
            Op::Call(_) => "call".into(),
            Op::Stack(_) => "stack".into(),
            Op::Vmap { .. } => "vmap".into(),
            Op::Scan { .. } => "scan".into(),
        }
    }

    /// Functions this op calls.
    pub fn callees(&self) -> Vec<&str> {
        match self {
            Op::Call(f) | Op::Vmap { func: f, .. } | Op::Scan { func: f, .. } => vec![f.as_str()],
            Op::Stack(fs) => fs.iter().map(|s| s.as_str()).collect(),
            _ => Vec::new(),
        }
    }
}

pub const UNARY_OPS: [UnaryOp; 16] = {
    use UnaryOp::*;
    [Neg, Exp, Log, Log1p, Sqrt, Rsqrt, Tanh, Sigmoid, Relu, Erf, Abs, Sin, Cos, Sign, Floor, Not]
};

pub const BINARY_OPS: [BinaryOp; 16] = {
    use BinaryOp::*;
    [Add, Sub, Mul, Div, Pow, Rem, Max, Min, Eq, Ne, Lt, Le, Gt, Ge, And, Or]
};

pub fn unary_name(op: UnaryOp) -> &'static str {
    use UnaryOp::*;
    match op {
        Neg => "neg",
        Exp => "exp",
        Log => "log",
        Log1p => "log1p",
        Sqrt => "sqrt",
        Rsqrt => "rsqrt",
        Tanh => "tanh",
        Sigmoid => "sigmoid",
        Relu => "relu",
        Erf => "erf",
        Abs => "abs",
        Sin => "sin",
        Cos => "cos",
        Sign => "sign",
        Floor => "floor",
        Not => "not",
    }
}

pub fn binary_name(op: BinaryOp) -> &'static str {
    use BinaryOp::*;
    match op {
        Add => "add",
        Sub => "sub",
        Mul => "mul",
        Div => "div",
        Pow => "pow",
        Rem => "rem",
        Max => "max",
        Min => "min",
        Eq => "eq",
        Ne => "ne",
        Lt => "lt",
        Le => "le",
        Gt => "gt",
        Ge => "ge",
        And => "and",
        Or => "or",
    }
}

pub fn reduce_name(op: ReduceOp) -> &'static str {
    match op {
        ReduceOp::Sum => "sum",
        ReduceOp::Mean => "mean",
        ReduceOp::Max => "max",
        ReduceOp::Min => "min",
    }
}

/// The dtype a value of `op` may have, for ops whose dtype is fixed by the op.
pub fn fixed_result_dtype(op: &Op) -> Option<DType> {
    match op {
        Op::Binary(b) if b.is_predicate() => Some(DType::Bool),
        Op::ArgMax { .. } | Op::ArgSort { .. } => Some(DType::I64),
        Op::Rfft { .. } | Op::Complex => Some(DType::C64),
        _ => None,
    }
}
