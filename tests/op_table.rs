//! The op table: every place a TIR op is implemented, checked op by op. The places, in
//! the order an op is added, are described in `docs/adding-an-op.md`.
//!
//! [`TABLE`] has one row per op: every `Op` variant, with `unary`, `binary`, `reduce.*`
//! and `pool.*` split into their ops, keyed by the op's name in TIR text. [`key`] maps
//! every op to its row by a `match` without a wildcard, so a new variant of `Op`,
//! `UnaryOp`, `BinaryOp`, `ReduceOp` or `PoolOp` does not compile here until it has a
//! row, and [`instances`] (built from `tir::testutil::sample_program`, which uses every
//! variant) must give every row an instance.
//!
//! Each test checks one place for every row: by behaviour where the place can be called
//! (the type rules, TIR text, FLOP counts, the checker, the interpreter, autodiff, the
//! MLIR emitter for the CPU and the GPU with its device math, the Cranelift tier, the
//! PyTorch fixtures), otherwise by reading the place's source (comments stripped) for
//! the op's pattern: the family file of each implementation, the op cases every backend
//! runs (`compiler/mlir/tests/shared/op_cases.rs`), `tests/gradcheck.rs`, the
//! interpreter's unit tests, `docs/language.md` and the fuzz vocabulary. A row's entry
//! for such a place is `A` (found by the place's default pattern for the op, see
//! [`patterns`]), `Na` (no gradient: see the row's `grad`), an `Exempt` with its reason,
//! or a `Gap`: missing today, and checked to be still missing, so the row is updated
//! when the gap is filled. Places that list op names as text (`tir/parse.rs`, the
//! checker's `BUILTINS`) are also checked to name no op the table lacks.

mod common;

use archc_compiler::autodiff::expand::inline_calls;
use archc_compiler::autodiff::rules::vjp;
use archc_compiler::autodiff::{emit::Emitter, gradient, FuncTable};
use archc_compiler::sema::{builtins::BUILTINS, check_file, NoModules, Options};
use archc_compiler::tir::ops::{BINARY_OPS, UNARY_OPS};
use archc_compiler::tir::testutil::{sample_program, FuncBuilder};
use archc_compiler::tir::{
    cost, infer, parse_program, verify, BinaryOp, DType, Dim, Func, Op, PoolOp, Program, ReduceOp, TensorType, UnaryOp,
    ValueId,
};
use archc_runtime::elem::C64;
use archc_runtime::{Executor, Interpreter, RunError, Tensor};
use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::OnceLock;

// ---------------------------------------------------------------------------------------
// The table

/// How `.arch` source reaches an op (checked by building `body` in [`PRELUDE`]'s network
/// and finding the op in the TIR; the docs and the fuzz vocabulary are checked for the
/// name or token).
#[derive(Debug)]
enum Arch {
    /// A builtin function (`sema/builtins.rs`'s `BUILTINS`): its name, then the body.
    Bi(&'static str, &'static str),
    /// Syntax: the text `docs/language.md` shows it by, the token in the fuzz vocabulary,
    /// then the body.
    Sy(&'static str, &'static str, &'static str),
    /// Not reachable from `.arch`, with the reason.
    Internal(&'static str),
}

/// The gradient rule (`compiler/src/autodiff`); the file is under `autodiff/rules/`
/// (`Rule`, `No`) or `autodiff/` (`Control`).
#[derive(Debug)]
enum Grad {
    /// A vector-Jacobian product in `rules/<file>.rs`.
    Rule(&'static str),
    /// No gradient flows through the op (`rules/<file>.rs` says so), with the reason.
    No(&'static str, &'static str),
    /// A control op, differentiated by `<file>.rs` (`expand`: inlined first; `control`:
    /// `scan`/`vmap` bodies).
    Control(&'static str),
}

/// A place checked by reading its source.
#[derive(Debug)]
enum Src {
    /// Found by the place's default pattern for the op ([`patterns`]).
    A,
    /// Not applicable: the op has no gradient (the row's `grad` is `No`).
    Na,
    /// Deliberately absent, with the reason.
    Exempt(&'static str),
    /// Missing today (a known gap): checked to be still missing. No row has one now; a
    /// gap found later is recorded with it until it is filled.
    #[allow(dead_code)]
    Gap(&'static str),
}

struct Row {
    /// The op's name in TIR text (`Op::name`).
    name: &'static str,
    arch: Arch,
    /// Counted by `tir::cost::flops` (else it counts 0: data movement, creation).
    flops: bool,
    /// Its kernel in the reference interpreter: `runtime/src/interp/<file>.rs`.
    interp: &'static str,
    grad: Grad,
    /// Its lowering in the MLIR emitter: `compiler/mlir/src/emit/<file>.rs`.
    mlir: &'static str,
    /// Its lowering in the Cranelift tier: `compiler/clif/src/<file>.rs`.
    clif: &'static str,
    /// The interpreter's unit tests, `runtime/tests/ops/*.rs`.
    unit: Src,
    /// A forward case of `compiler/mlir/tests/shared/op_cases.rs` (MLIR CPU and GPU,
    /// Cranelift; the sections before "the sample program", which runs every op anyway).
    cases: Src,
    /// A gradient case of the same file (its "Gradients" section).
    grad_cases: Src,
    /// A finite-difference case of `tests/gradcheck.rs`.
    gradcheck: Src,
    /// A PyTorch reference: a program of `tests/fixtures/*.arch` or
    /// `tests/fixtures/grad/*.arch` (written by `scripts/gen_fixtures.py`) contains it.
    torch: Src,
    /// The `.arch` name or token in `tests/fuzz_check.rs`'s vocabulary.
    fuzz: Src,
}

#[allow(clippy::too_many_arguments)]
const fn r(
    name: &'static str,
    arch: Arch,
    flops: bool,
    interp: &'static str,
    grad: Grad,
    mlir: &'static str,
    clif: &'static str,
    tests: [Src; 6],
) -> Row {
    let [unit, cases, grad_cases, gradcheck, torch, fuzz] = tests;
    Row { name, arch, flops, interp, grad, mlir, clif, unit, cases, grad_cases, gradcheck, torch, fuzz }
}

use Arch::{Bi, Internal, Sy};
use Grad::{Control, No, Rule};
use Src::{Exempt, Gap, Na, A};

/// Ops without a PyTorch fixture: the fixtures test stdlib layers and whole models, and
/// no fixture program uses these; their references are the interpreter (op cases on
/// every backend) and finite differences (`tests/gradcheck.rs`).
const NO_FX: Src = Exempt("no layer of a PyTorch fixture uses it");
/// `call` and `stack` have no rule of their own: autodiff inlines them first
/// (`autodiff/expand.rs`), so their gradient is their bodies' (checked op by op).
const INLINED: Src = Exempt("inlined before differentiation: the gradient is the body's");
/// `Grad::No` reasons.
const NO_OPERANDS: &str = "no operands";
const INT_RESULT: &str = "an integer result";
const PREDICATE: &str = "a bool result";
const PIECEWISE: &str = "piecewise constant: zero almost everywhere";

const STOPS: &str = "the identity that stops gradients";
/// `call` is not in the language: autodiff builds it (`loss::objective`, `vmap`'s vjp).
const CALL: &str = "built by autodiff only";
const STACK: &str = "x |> stack(2) { Lin(4, 4) }";
/// A per-sample hypernetwork: `with_params` of `f32[B, P]` maps the target with `vmap`.
const VMAP: &str = "let t = Lin(4, 2)  let theta = y |> Lin(4, t.param_count)  output o = t.with_params(theta)(x)";

/// `tests` for ops without a gradient.
const fn nd(unit: Src, cases: Src, torch: Src, fuzz: Src) -> [Src; 6] {
    [unit, cases, Na, Na, torch, fuzz]
}

/// Every op. Columns: name, `.arch`, FLOPs counted, interpreter file, autodiff,
/// MLIR emitter file, Cranelift file, then the sources: interpreter unit tests, op cases,
/// gradient op cases, gradcheck, PyTorch fixtures, fuzz vocabulary.
#[rustfmt::skip]
const TABLE: &[Row] = &[
    // Creation and parameters.
    r("param",        Sy("`param w:", "param", "Lin(4, 4)(x)"),   false, "mod",        No("mod", NO_OPERANDS),
      "control", "lower/mod",      nd(A, A, A, A)),
    r("const",        Bi("full", "full([B, 4], 0.5)"),            false, "mod",        No("mod", NO_OPERANDS),
      "elementwise",  "lower/ew",       nd(A, A, A, A)),
    r("iota",         Bi("arange", "arange(4)"),                  false, "elementwise", No("mod", NO_OPERANDS),
      "elementwise",  "lower/ew",       nd(A, A, A, A)),
    r("rand.uniform", Bi("rand_like", "rand_like(x)"),            false, "random",     No("mod", NO_OPERANDS),
      "control", "kernels/native", nd(A, A, NO_FX, A)),
    r("rand.normal",  Bi("randn_like", "randn_like(x)"),          false, "random",     No("mod", NO_OPERANDS),
      "control", "kernels/native", nd(A, A, NO_FX, A)),
    // Unary.
    r("neg",          Sy("unary `- !`", "-", "-x"),               true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("exp",          Bi("exp", "exp(x)"),                        true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("log",          Bi("log", "log(x)"),                        true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("log1p",        Bi("log1p", "log1p(x)"),                    true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("sqrt",         Bi("sqrt", "sqrt(x)"),                      true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("rsqrt",        Bi("rsqrt", "rsqrt(x)"),                    true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("tanh",         Bi("tanh", "tanh(x)"),                      true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("sigmoid",      Bi("sigmoid", "sigmoid(x)"),                true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("relu",         Bi("relu", "relu(x)"),                      true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("erf",          Bi("erf", "erf(x)"),                        true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("abs",          Bi("abs", "abs(x)"),                        true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("sin",          Bi("sin", "sin(x)"),                        true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("cos",          Bi("cos", "cos(x)"),                        true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("sign",         Bi("sign", "sign(x)"),                      true,  "elementwise", No("elementwise", PIECEWISE),
      "scalar",  "lower/ew",       nd(A, A, A, A)),
    r("floor",        Bi("floor", "floor(x)"),                    true,  "elementwise", No("elementwise", PIECEWISE),
      "scalar",  "lower/ew",       nd(A, A, A, A)),
    r("not",          Sy("unary `- !`", "!", "!(x < y)"),         true,  "elementwise", No("elementwise", PREDICATE),
      "scalar",  "lower/ew",       nd(A, A, A, A)),
    // Binary.
    r("add",          Sy("`+ -`", "+", "x + y"),                  true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("sub",          Sy("`+ -`", "-", "x - y"),                  true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("mul",          Sy("`* / %`", "*", "x * y"),                true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("div",          Sy("`* / %`", "/", "x / y"),                true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("pow",          Bi("pow", "pow(x, y)"),                     true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("rem",          Sy("`* / %`", "%", "x % y"),                true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("max",          Bi("maximum", "maximum(x, y)"),             true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("min",          Bi("minimum", "minimum(x, y)"),             true,  "elementwise", Rule("elementwise"),
      "scalar",  "lower/ew",       [A, A, A, A, A, A]),
    r("eq",           Sy("`== != < <= > >=`", "==", "x == y"),    true,  "elementwise", No("elementwise", PREDICATE),
      "scalar",  "lower/ew",       nd(A, A, A, A)),
    r("ne",           Sy("`== != < <= > >=`", "!=", "x != y"),    true,  "elementwise", No("elementwise", PREDICATE),
      "scalar",  "lower/ew",       nd(A, A, A, A)),
    r("lt",           Sy("`== != < <= > >=`", "<", "x < y"),      true,  "elementwise", No("elementwise", PREDICATE),
      "scalar",  "lower/ew",       nd(A, A, A, A)),
    r("le",           Sy("`== != < <= > >=`", "<=", "x <= y"),    true,  "elementwise", No("elementwise", PREDICATE),
      "scalar",  "lower/ew",       nd(A, A, A, A)),
    r("gt",           Sy("`== != < <= > >=`", ">", "x > y"),      true,  "elementwise", No("elementwise", PREDICATE),
      "scalar",  "lower/ew",       nd(A, A, A, A)),
    r("ge",           Sy("`== != < <= > >=`", ">=", "x >= y"),    true,  "elementwise", No("elementwise", PREDICATE),
      "scalar",  "lower/ew",       nd(A, A, A, A)),
    r("and",          Sy("`&&`", "&&", "(x < y) && (x > y)"),     true,  "elementwise", No("elementwise", PREDICATE),
      "scalar",  "lower/ew",       nd(A, A, A, A)),
    r("or",           Sy("`||`", "||", "(x < y) || (x > y)"),     true,  "elementwise", No("elementwise", PREDICATE),
      "scalar",  "lower/ew",       nd(A, A, A, A)),
    // Other elementwise.
    r("select",       Bi("where", "where(x > y, x, y)"),          true,  "elementwise", Rule("movement"),
      "elementwise",  "lower/ew",       [A, A, A, A, A, A]),
    r("cast",         Bi("cast", "cast(x, f64)"),                 false, "mod",        Rule("movement"),
      "elementwise",  "lower/ew",       [A, A, A, A, A, A]),
    // Reductions and sorting.
    r("reduce.sum",   Bi("sum", "sum(x, axis = 1)"),              true,  "reduce",     Rule("reduce"),
      "reduce",  "lower/reduce",   [A, A, A, A, A, A]),
    r("reduce.mean",  Bi("mean", "mean(x, axis = 1)"),            true,  "reduce",     Rule("reduce"),
      "reduce",  "lower/reduce",   [A, A, A, A, A, A]),
    r("reduce.max",   Bi("max", "max(x, axis = 1)"),              true,  "reduce",     Rule("reduce"),
      "reduce",  "lower/reduce",   [A, A, A, A, A, A]),
    r("reduce.min",   Bi("min", "min(x, axis = 1)"),              true,  "reduce",     Rule("reduce"),
      "reduce",  "lower/reduce",   [A, A, A, A, A, A]),
    r("argmax",       Bi("argmax", "argmax(x)"),                  true,  "reduce",     No("mod", INT_RESULT),
      "reduce",  "kernels/native", nd(A, A, A, A)),
    r("argsort",      Bi("argsort", "argsort(x)"),                true,  "sort",       No("mod", INT_RESULT),
      "sort",    "kernels/native", nd(A, A, A, A)),
    r("stop_gradient", Bi("stop_gradient", "stop_gradient(x)"),    false, "mod",        No("mod", STOPS),
      "lower",   "lower/movement", nd(A, A, A, A)),
    // Contractions and windows.
    r("matmul",       Bi("matmul", "matmul(x, ones([4, 4]))"),    true,  "contract",   Rule("contract"),
      "contract",  "kernels/native", [A, A, A, A, A, A]),
    r("einsum",       Bi("einsum", "einsum(\"bi,bj->bij\", x, y)"), true,  "contract",   Rule("contract"),
      "contract",  "kernels/native", [A, A, A, A, A, A]),
    r("conv",         Bi("conv", "conv(s, ones([3, 2, 3]))"),     true,  "conv",       Rule("conv"),
      "conv",  "kernels/native", [A, A, A, A, A, A]),
    r("pool.max",     Bi("max_pool", "max_pool(s, 2)"),           true,  "conv",       Rule("conv"),
      "conv",  "kernels/native", [A, A, A, A, A, A]),
    r("pool.avg",     Bi("avg_pool", "avg_pool(s, 2)"),           true,  "conv",       Rule("conv"),
      "conv",  "kernels/native", [A, A, A, A, A, A]),
    // Data movement.
    r("reshape",      Bi("reshape", "reshape(q, [B, 12])"),       false, "movement",   Rule("mod"),
      "data",    "lower/movement", [A, A, A, A, A, A]),
    r("permute",      Bi("permute", "permute(q, [0, 2, 1])"),     false, "movement",   Rule("movement"),
      "data",    "lower/movement", [A, A, A, A, A, A]),
    r("broadcast",    Bi("broadcast", "broadcast(x, [2, B, 4])"), false, "movement",   Rule("mod"),
      "data",    "lower/movement", [A, A, A, A, A, A]),
    r("slice",        Sy("`x[a:b]`", ":", "x[:, 1:3]"),           false, "index",      Rule("movement"),
      "data",    "lower/movement", [A, A, A, A, A, A]),
    r("concat",       Bi("concat", "concat([x, y], 1)"),          false, "movement",   Rule("movement"),
      "data",    "lower/movement", [A, A, A, A, A, A]),
    r("pad",          Bi("pad", "pad(x, [[1, 2]])"),              false, "movement",   Rule("movement"),
      "data",    "lower/movement", [A, A, A, A, A, A]),
    r("gather",       Bi("gather", "gather(x, i, 0)"),            false, "index",      Rule("movement"),
      "data",    "kernels/native", [A, A, A, A, A, A]),
    r("scatter_add",  Bi("scatter_add", "scatter_add(x, i, y, 0)"), true,  "index",      Rule("movement"),
      "data",    "kernels/native", [A, A, A, A, A, A]),
    // Spectral and complex.
    r("rfft",         Bi("rfft", "rfft(s)"),                      true,  "fft",        Rule("fft"),
      "fft",     "kernels/native", [A, A, A, A, A, A]),
    r("irfft",        Bi("irfft", "irfft(rfft(s), 8)"),           true,  "fft",        Rule("fft"),
      "fft",     "kernels/native", [A, A, A, A, A, A]),
    r("real",         Bi("real", "real(rfft(s))"),                false, "fft",        Rule("fft"),
      "elementwise",  "kernels/native", [A, A, A, A, A, A]),
    r("imag",         Bi("imag", "imag(rfft(s))"),                false, "fft",        Rule("fft"),
      "elementwise",  "kernels/native", [A, A, A, A, A, A]),
    r("complex",      Bi("complex", "complex(x, y)"),             false, "fft",        Rule("fft"),
      "elementwise",  "kernels/native", [A, A, A, A, A, A]),
    // Control.
    r("call",         Internal(CALL),                             true,  "control",    Control("expand"),
      "control", "lower/control",  [A, A, A, INLINED, NO_FX, Exempt("not in the language")]),
    r("stack",        Sy("`stack(n) { body }`", "stack", STACK),  true,  "control",    Control("expand"),
      "control", "lower/control",  [A, A, A, INLINED, NO_FX, A]),
    r("vmap",         Sy("`l.with_params(theta)`", "with_params", VMAP), true,  "control",    Control("control"),
      "control", "lower/control",  [A, A, A, A, A, A]),
    r("scan",         Bi("scan", "scan(Cell(4), q, x)"),          true,  "control",    Control("control"),
      "control", "lower/control",  [A, A, A, A, A, A]),
];

/// Builtins of the checker that are not one op: compositions of the primitive ops (so
/// every backend and autodiff get them), compile-time functions and state.
#[rustfmt::skip]
const COMPOSITE_BUILTINS: &[&str] = &[
    // sema/sorting.rs
    "argmin", "sort", "topk", "argtopk", "take_along",
    // sema/resample.rs
    "conv_transpose", "upsample",
    // sema/spectral.rs: DFT-matrix einsums
    "fft", "ifft", "fft2", "ifft2", "rfft2", "irfft2",
    // sema/builtins.rs: reshapes, permutes, concatenations, fills
    "transpose", "flatten", "unsqueeze", "squeeze", "stack", "zeros", "ones", "linspace",
    // compile-time values and checks, buffer state
    "len", "per_axis", "int", "float", "assert", "update",
];

/// The row of `op`: its name in TIR text. No wildcard, so that a new op has a row.
fn key(op: &Op) -> &'static str {
    match op {
        Op::Param(_) => "param",
        Op::Const(_) => "const",
        Op::Iota { .. } => "iota",
        Op::Unary(u) => match u {
            UnaryOp::Neg => "neg",
            UnaryOp::Exp => "exp",
            UnaryOp::Log => "log",
            UnaryOp::Log1p => "log1p",
            UnaryOp::Sqrt => "sqrt",
            UnaryOp::Rsqrt => "rsqrt",
            UnaryOp::Tanh => "tanh",
            UnaryOp::Sigmoid => "sigmoid",
            UnaryOp::Relu => "relu",
            UnaryOp::Erf => "erf",
            UnaryOp::Abs => "abs",
            UnaryOp::Sin => "sin",
            UnaryOp::Cos => "cos",
            UnaryOp::Sign => "sign",
            UnaryOp::Floor => "floor",
            UnaryOp::Not => "not",
        },
        Op::Binary(b) => match b {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "sub",
            BinaryOp::Mul => "mul",
            BinaryOp::Div => "div",
            BinaryOp::Pow => "pow",
            BinaryOp::Rem => "rem",
            BinaryOp::Max => "max",
            BinaryOp::Min => "min",
            BinaryOp::Eq => "eq",
            BinaryOp::Ne => "ne",
            BinaryOp::Lt => "lt",
            BinaryOp::Le => "le",
            BinaryOp::Gt => "gt",
            BinaryOp::Ge => "ge",
            BinaryOp::And => "and",
            BinaryOp::Or => "or",
        },
        Op::Select => "select",
        Op::Cast => "cast",
        Op::Reduce { op, .. } => match op {
            ReduceOp::Sum => "reduce.sum",
            ReduceOp::Mean => "reduce.mean",
            ReduceOp::Max => "reduce.max",
            ReduceOp::Min => "reduce.min",
        },
        Op::ArgMax { .. } => "argmax",
        Op::ArgSort { .. } => "argsort",
        Op::StopGradient => "stop_gradient",
        Op::MatMul => "matmul",
        Op::Einsum(_) => "einsum",
        Op::Conv { .. } => "conv",
        Op::Pool { op, .. } => match op {
            PoolOp::Max => "pool.max",
            PoolOp::Avg => "pool.avg",
        },
        Op::Reshape => "reshape",
        Op::Permute(_) => "permute",
        Op::Broadcast => "broadcast",
        Op::Slice { .. } => "slice",
        Op::Concat { .. } => "concat",
        Op::Pad { .. } => "pad",
        Op::Gather { .. } => "gather",
        Op::ScatterAdd { .. } => "scatter_add",
        Op::Rfft { .. } => "rfft",
        Op::Irfft { .. } => "irfft",
        Op::Real => "real",
        Op::Imag => "imag",
        Op::Complex => "complex",
        Op::RandUniform { .. } => "rand.uniform",
        Op::RandNormal { .. } => "rand.normal",
        Op::Call(_) => "call",
        Op::Stack(_) => "stack",
        Op::Vmap { .. } => "vmap",
        Op::Scan { .. } => "scan",
    }
}

fn row(name: &str) -> &'static Row {
    TABLE.iter().find(|r| r.name == name).unwrap_or_else(|| panic!("op `{name}` has no row in TABLE"))
}

fn is_control(op: &Op) -> bool {
    matches!(op, Op::Call(_) | Op::Stack(_) | Op::Vmap { .. } | Op::Scan { .. })
}

// ---------------------------------------------------------------------------------------
// Op instances

/// One op as a program: `main` holds the instruction alone (its operands are arguments,
/// its results the results), with concrete sizes, beside the sample program's parameters
/// and other functions (the callees of `call`, `stack`, `vmap` and `scan`).
struct Instance {
    key: &'static str,
    /// Where it comes from, for messages.
    label: String,
    op: Op,
    program: Program,
    inputs: Vec<Tensor>,
}

/// Every op of `sample_program` (once per row), then every unary and binary op on every
/// dtype the type rules accept it on, and a float `cast`.
fn instances() -> &'static [Instance] {
    static ALL: OnceLock<Vec<Instance>> = OnceLock::new();
    ALL.get_or_init(|| {
        let sample = sample_program();
        let env: HashMap<String, Dim> = SIZES.iter().map(|(s, v)| (s.to_string(), Dim::constant(*v))).collect();
        let main = sample.main();
        let mut seen = BTreeSet::new();
        let mut out = Vec::new();
        for inst in &main.body {
            if !seen.insert(key(&inst.op)) {
                continue;
            }
            let args = inst.args.iter().map(|a| subst_ty(main.type_of(*a).expect("operand"), &env)).collect();
            let results = inst.results().map(|(_, t)| subst_ty(t, &env)).collect();
            out.push(single(&sample, "sample_program", subst_op(&inst.op, &env), args, results));
        }
        let dtypes = [DType::F32, DType::F64, DType::I64, DType::Bool, DType::C64];
        let none = Program::default();
        let elementwise =
            UNARY_OPS.iter().map(|u| (Op::Unary(*u), 1)).chain(BINARY_OPS.iter().map(|b| (Op::Binary(*b), 2)));
        for (op, n) in elementwise {
            for dt in dtypes {
                let t = TensorType::new(dt, vec![Dim::constant(2), Dim::constant(3)]);
                let args = vec![t; n];
                let refs: Vec<&TensorType> = args.iter().collect();
                if let Ok(results) = infer(&op, &refs, None, &none) {
                    out.push(single(&sample, &format!("on {dt}"), op.clone(), args, results));
                }
            }
        }
        let (x, y) =
            (TensorType::new(DType::F32, vec![Dim::constant(3)]), TensorType::new(DType::F64, vec![Dim::constant(3)]));
        out.push(single(&sample, "f32 to f64", Op::Cast, vec![x], vec![y]));
        out
    })
}

/// The sizes of the sample program's symbols: `main`'s, then its callees' (as `main`
/// calls them), so that every function is concrete.
const SIZES: [(&str, i64); 6] = [("B", 2), ("T", 3), ("L", 8), ("N", 2), ("M", 2), ("K", 2)];

fn subst_ty(t: &TensorType, env: &HashMap<String, Dim>) -> TensorType {
    TensorType::new(t.dtype, t.shape.iter().map(|d| d.subst(env)).collect())
}

/// `op` with the size symbols of its attributes replaced.
fn subst_op(op: &Op, env: &HashMap<String, Dim>) -> Op {
    let dims = |v: &[Dim]| v.iter().map(|d| d.subst(env)).collect();
    match op {
        Op::Slice { start, end, step } => Op::Slice { start: dims(start), end: dims(end), step: step.clone() },
        Op::Irfft { axis, n } => Op::Irfft { axis: *axis, n: n.subst(env) },
        other => other.clone(),
    }
}

/// `f` with concrete sizes.
fn subst_func(f: &Func, env: &HashMap<String, Dim>) -> Func {
    let mut f = f.clone();
    for (_, t) in &mut f.args {
        *t = subst_ty(t, env);
    }
    for inst in &mut f.body {
        inst.op = subst_op(&inst.op, env);
        inst.ty = subst_ty(&inst.ty, env);
        for (_, t) in &mut inst.extra {
            *t = subst_ty(t, env);
        }
    }
    f
}

fn single(sample: &Program, label: &str, op: Op, args: Vec<TensorType>, results: Vec<TensorType>) -> Instance {
    let mut b = FuncBuilder::new("main");
    let vs: Vec<ValueId> = args.iter().enumerate().map(|(i, t)| b.arg(&t.to_string(), &format!("a{i}"))).collect();
    let rs = b.raw_multi(op.clone(), &vs, results);
    let names: Vec<String> = (0..rs.len()).map(|i| format!("r{i}")).collect();
    let pairs: Vec<(ValueId, &str)> = rs.iter().copied().zip(names.iter().map(String::as_str)).collect();
    let mut funcs = vec![b.finish(&pairs)];
    let env: HashMap<String, Dim> = SIZES.iter().map(|(s, v)| (s.to_string(), Dim::constant(*v))).collect();
    funcs.extend(sample.funcs.iter().filter(|f| f.name != "main").map(|f| subst_func(f, &env)));
    let program = Program { name: "OpTable".into(), params: sample.params.clone(), funcs };
    let label = format!("`{}` {label}", op.name());
    if let Err(e) = verify(&program) {
        panic!("{label}: the single-op program does not verify: {e:?}\n{program}");
    }
    let inputs = args.iter().enumerate().map(|(i, t)| input(t, i as u64 + 1)).collect();
    Instance { key: key(&op), label, op, program, inputs }
}

/// Inputs: floats in [-2, 2), integers 1 or 2 (valid indices, non-zero divisors).
fn input(t: &TensorType, seed: u64) -> Tensor {
    let shape = t.const_shape().expect("concrete sizes");
    let n: usize = shape.iter().product();
    let mut s = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    let mut next = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 11) as f64 / (1u64 << 53) as f64
    };
    match t.dtype {
        DType::F32 => Tensor::from_f32(&shape, (0..n).map(|_| (next() * 4.0 - 2.0) as f32).collect()),
        DType::F64 => Tensor::from_f64(&shape, (0..n).map(|_| next() * 4.0 - 2.0).collect()),
        DType::I64 => Tensor::from_i64(&shape, (0..n).map(|_| 1 + (next() * 2.0) as i64).collect()),
        DType::Bool => Tensor::from_bool(&shape, (0..n).map(|_| next() < 0.5).collect()),
        DType::C64 => Tensor::from_c64(
            &shape,
            (0..n).map(|_| C64 { re: (next() * 4.0 - 2.0) as f32, im: (next() * 4.0 - 2.0) as f32 }).collect(),
        ),
    }
}

/// Panics with every failure, one per line.
fn report(place: &str, failures: Vec<String>) {
    assert!(
        failures.is_empty(),
        "{place}: {} failure(s) (see docs/adding-an-op.md):\n  {}",
        failures.len(),
        failures.join("\n  ")
    );
}

// ---------------------------------------------------------------------------------------
// Reading sources

fn read(rel: &str) -> String {
    let path = common::repo().join(rel);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `rel` without `//` comments.
fn code(rel: &str) -> String {
    strip_comments(&read(rel))
}

fn strip_comments(text: &str) -> String {
    text.lines().map(|l| l.find("//").map_or(l, |i| &l[..i])).collect::<Vec<_>>().join("\n")
}

/// The Rust files of a folder of the repository, comments stripped, concatenated.
fn code_dir(rel: &str) -> String {
    let mut files: Vec<_> = std::fs::read_dir(common::repo().join(rel))
        .unwrap_or_else(|e| panic!("{rel}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "rs"))
        .collect();
    files.sort();
    files.iter().map(|p| strip_comments(&std::fs::read_to_string(p).expect("readable"))).collect::<Vec<_>>().join("\n")
}

fn is_ident(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// `pat` occurs in `text` not inside a longer identifier.
fn has_word(text: &str, pat: &str) -> bool {
    text.match_indices(pat).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + pat.len()..].chars().next();
        let joins_before = before.is_some_and(is_ident) && pat.starts_with(is_ident);
        let joins_after = after.is_some_and(is_ident) && pat.ends_with(is_ident);
        !joins_before && !joins_after
    })
}

/// The Rust identifier of the op's variant: `Erf`, `ArgSort`, `Sum` (of `reduce.sum`).
fn ident(op: &Op) -> String {
    let text = match op {
        Op::Unary(u) => format!("{u:?}"),
        Op::Binary(b) => format!("{b:?}"),
        Op::Reduce { op, .. } => format!("{op:?}"),
        Op::Pool { op, .. } => format!("{op:?}"),
        other => format!("{other:?}"),
    };
    text.chars().take_while(|c| is_ident(*c)).collect()
}

/// The enum paths the op is written as in test sources: `UnaryOp::Erf` (or its alias
/// `U::Erf`), `Op::ArgSort`, `ReduceOp::Sum`.
fn paths(op: &Op) -> Vec<String> {
    let id = ident(op);
    let prefixes: &[&str] = match op {
        Op::Unary(_) => &["UnaryOp", "U"],
        Op::Binary(_) => &["BinaryOp", "B"],
        Op::Reduce { .. } => &["ReduceOp", "R"],
        Op::Pool { .. } => &["PoolOp"],
        _ => &["Op"],
    };
    prefixes.iter().map(|p| format!("{p}::{id}")).collect()
}

/// The places read for source patterns.
#[derive(Clone, Copy, Debug)]
enum Place {
    /// `runtime/tests/ops/*.rs`
    Unit,
    /// The forward sections of `op_cases.rs`.
    Cases,
    /// The gradient section of `op_cases.rs`.
    GradCases,
    /// `tests/gradcheck.rs`
    Gradcheck,
}

/// The default patterns of an op in a place: its enum paths, and where the place runs
/// every unary or binary op from `UNARY_OPS` / `BINARY_OPS` (the op cases), those lists
/// when they hold the op; `tests/gradcheck.rs` names unary ops bare (`use UnaryOp::*`).
fn patterns(place: Place, op: &Op) -> Vec<String> {
    let mut p = paths(op);
    match (place, op) {
        (Place::Cases | Place::GradCases, Op::Unary(u)) if UNARY_OPS.contains(u) => p.push("UNARY_OPS".into()),
        (Place::Cases, Op::Binary(b)) if BINARY_OPS.contains(b) => p.push("BINARY_OPS".into()),
        (Place::Gradcheck, Op::Unary(_)) => p.push(ident(op)),
        _ => {}
    }
    p
}

/// The sections of `op_cases.rs`: forward cases (before "the sample program", which
/// runs every op without naming it) and gradient cases.
fn op_case_sections() -> (String, String) {
    let text = read("compiler/mlir/tests/shared/op_cases.rs");
    let at = |h: &str| text.find(h).unwrap_or_else(|| panic!("op_cases.rs has no section `{h}`"));
    let (fwd, sample, grad) = (at("// Forward: elementwise"), at("// Forward: the sample program"), at("// Gradients"));
    (strip_comments(&text[fwd..sample]), strip_comments(&text[grad..]))
}

/// Checks `entry` of every row against `text` by the place's default patterns.
fn check_source(place: Place, text: &str, entry: fn(&Row) -> &Src, failures: &mut Vec<String>) {
    for inst in first_instances() {
        let row = row(inst.key);
        let pats = patterns(place, &inst.op);
        let found = pats.iter().any(|p| has_word(text, p));
        match entry(row) {
            Src::A if !found => failures.push(format!("`{}`: {place:?} names it by none of {pats:?}", row.name)),
            Src::Gap(why) if found => failures.push(format!(
                "`{}`: {place:?} now names it ({pats:?}): the gap \"{why}\" is filled, make the entry `A`",
                row.name
            )),
            Src::Na if !matches!(row.grad, No(..)) => {
                failures.push(format!("`{}`: {place:?} is `Na` but the op has a gradient", row.name))
            }
            _ => {}
        }
    }
}

/// The first instance of each row.
fn first_instances() -> Vec<&'static Instance> {
    let mut seen = BTreeSet::new();
    instances().iter().filter(|i| seen.insert(i.key)).collect()
}

/// Checks that the file names the op (in code or docs): its identifier, its TIR name, the
/// last part of a dotted name (`sum` of `reduce.sum`) or the identifier in snake case,
/// alone or as the start of a longer name (`slice_back`).
fn check_family(what: &str, path: &str, op: &Op, failures: &mut Vec<String>) {
    let Ok(text) = std::fs::read_to_string(common::repo().join(path)) else {
        failures.push(format!("`{}`: {what} file {path} does not exist", op.name()));
        return;
    };
    let id = ident(op);
    let name = op.name();
    let last = name.rsplit('.').next().unwrap_or(&name).to_string();
    let snake: String = id
        .chars()
        .enumerate()
        .flat_map(|(i, c)| {
            let lower = c.to_ascii_lowercase();
            if c.is_ascii_uppercase() && i > 0 {
                vec!['_', lower]
            } else {
                vec![lower]
            }
        })
        .collect();
    let pats = [id, name.clone(), last, snake];
    let starts_name = |p: &str| {
        text.match_indices(p).any(|(i, _)| {
            !text[..i].chars().next_back().is_some_and(is_ident)
                && !text[i + p.len()..].chars().next().is_some_and(|c| c.is_ascii_alphanumeric())
        })
    };
    if !pats.iter().any(|p| starts_name(p)) {
        failures.push(format!("`{name}`: {what} file {path} names it by none of {pats:?}"));
    }
}

// ---------------------------------------------------------------------------------------
// The table itself

#[test]
fn every_op_has_one_row_and_every_row_an_instance() {
    let mut failures = Vec::new();
    let mut names = BTreeSet::new();
    for r in TABLE {
        if !names.insert(r.name) {
            failures.push(format!("`{}` has two rows", r.name));
        }
    }
    for inst in instances() {
        if inst.op.name() != inst.key {
            failures.push(format!("{}: `Op::name` is `{}`, its row `{}`", inst.label, inst.op.name(), inst.key));
        }
        if !names.contains(inst.key) {
            failures.push(format!("{}: no row `{}` in TABLE", inst.label, inst.key));
        }
    }
    for r in TABLE {
        let srcs = [&r.unit, &r.cases, &r.grad_cases, &r.gradcheck, &r.torch, &r.fuzz];
        let mut reasons: Vec<&str> =
            srcs.iter().filter_map(|e| if let Exempt(why) | Gap(why) = e { Some(*why) } else { None }).collect();
        if let Internal(why) = r.arch {
            reasons.push(why);
        }
        if let No(_, why) = r.grad {
            reasons.push(why);
        }
        if reasons.iter().any(|w| w.trim().is_empty()) {
            failures.push(format!("`{}`: an exemption without a reason", r.name));
        }
    }
    let covered: BTreeSet<&str> = instances().iter().map(|i| i.key).collect();
    for r in TABLE {
        if !covered.contains(r.name) {
            failures.push(format!(
                "`{}`: no instance: use it in tir::testutil::sample_program (a unary or binary op: add it to \
                 UNARY_OPS / BINARY_OPS)",
                r.name
            ));
        }
    }
    report("the table", failures);
}

// ---------------------------------------------------------------------------------------
// compiler/src/tir: type rules, text, cost

/// Every instance verifies (in `single`): `tir::infer` types it. Its text (`tir/print.rs`)
/// parses back (`tir/parse.rs`) to the same text, and `parse.rs` names no op the table
/// lacks.
#[test]
fn tir_text_round_trips_every_op() {
    let mut failures = Vec::new();
    for inst in instances() {
        let text = inst.program.to_string();
        match parse_program(&text) {
            Ok(p) if p.to_string() == text => {}
            Ok(p) => failures.push(format!("{}: printed\n{text}\nreparsed as\n{p}", inst.label)),
            Err(e) => failures.push(format!("{}: its text does not parse: {e}\n{text}", inst.label)),
        }
    }
    let parse = code("compiler/src/tir/parse.rs");
    let mut named = 0;
    for line in parse.lines() {
        let t = line.trim();
        if !t.starts_with('"') || !(t.contains("=> Op::") || t.contains("=> PoolOp::")) {
            continue;
        }
        let name = &t[1..t[1..].find('"').expect("closing quote") + 1];
        named += 1;
        if !TABLE.iter().any(|r| r.name == name) {
            failures.push(format!("tir/parse.rs parses `{name}`, which has no row"));
        }
    }
    assert!(named >= 20, "tir/parse.rs: only {named} op names found: has its layout changed?");
    report("TIR text (compiler/src/tir/print.rs, parse.rs)", failures);
}

/// `tir::cost::flops` counts the ops the row says it counts, and no other.
#[test]
fn cost_counts_the_ops_it_should() {
    let mut failures = Vec::new();
    for inst in instances() {
        let row = row(inst.key);
        match cost::flops(&inst.program, "main", &HashMap::new()) {
            Ok(n) if (n > 0) == row.flops => {}
            Ok(n) => failures.push(format!("{}: {n} FLOPs, but its row says flops: {}", inst.label, row.flops)),
            Err(e) => failures.push(format!("{}: {e}", inst.label)),
        }
    }
    report("FLOP counts (compiler/src/tir/cost.rs)", failures);
}

// ---------------------------------------------------------------------------------------
// The checker and the docs

/// The network every `.arch` body of the table is built in.
const PRELUDE: &str = "
layer Lin(i: int, o: int) {
    param w: f32[i, o] = init.normal(std = 0.1)
    fn (x: f32[..., i]) -> f32[..., o] { x @ w }
}
layer Cell(d: int) {
    param w: f32[d, d] = init.normal(std = 0.1)
    fn (h: f32[B, d], x: f32[B, d]) -> f32[B, d] { tanh(h @ w + x) }
}
network Ops() {
    input x: f32[B, 4]
    input y: f32[B, 4]
    input s: f32[B, 2, 8]
    input i: i64[B]
    input q: f32[B, 3, 4]
    BODY
}
";

/// Each row's `.arch` body builds and its TIR contains the op; every builtin of the
/// checker is a row's or a listed composition.
#[test]
fn the_checker_builds_every_op_reachable_from_arch() {
    let mut failures = Vec::new();
    for r in TABLE {
        let body = match r.arch {
            Bi(_, body) | Sy(_, _, body) => body,
            Internal(_) => continue,
        };
        let body = if body.contains("output ") { body.to_string() } else { format!("output o = {body}") };
        let src = PRELUDE.replace("BODY", &body);
        let out = check_file("ops.arch", &src, &NoModules, &Options::default());
        let Some(p) = out.program.filter(|_| out.diagnostics.is_empty()) else {
            let msgs: Vec<&str> = out.diagnostics.iter().map(|d| d.message.as_str()).collect();
            failures.push(format!("`{}`: `{body}` does not build: {msgs:?}", r.name));
            continue;
        };
        if !p.funcs.iter().flat_map(|f| &f.body).any(|i| key(&i.op) == r.name) {
            failures.push(format!("`{}`: the TIR of `{body}` does not contain it:\n{p}", r.name));
        }
        if let Bi(name, _) = r.arch {
            if !BUILTINS.contains(&name) {
                failures.push(format!("`{}`: `{name}` is not in sema::builtins::BUILTINS", r.name));
            }
        }
    }
    for b in BUILTINS {
        let of_row = TABLE.iter().any(|r| matches!(r.arch, Bi(n, _) if n == *b));
        if !of_row && !COMPOSITE_BUILTINS.contains(b) {
            failures.push(format!("builtin `{b}` is neither a row's nor listed in COMPOSITE_BUILTINS"));
        }
    }
    report("the checker (compiler/src/sema)", failures);
}

/// `docs/language.md` names every op reachable from `.arch`.
#[test]
fn the_language_reference_names_every_op() {
    let doc = read("docs/language.md");
    let mut failures = Vec::new();
    for r in TABLE {
        match r.arch {
            Bi(name, _) if !has_word(&doc, name) => failures.push(format!("`{}`: `{name}` is not in the docs", r.name)),
            Sy(text, _, _) if !doc.contains(text) => {
                failures.push(format!("`{}`: `{text}` is not in the docs", r.name))
            }
            _ => {}
        }
    }
    report("docs/language.md", failures);
}

/// The fuzz test's vocabulary (`tests/fuzz_check.rs`) has every op's name or token.
#[test]
fn the_fuzz_vocabulary_has_every_op() {
    let fuzz = code("tests/fuzz_check.rs");
    let mut failures = Vec::new();
    for r in TABLE {
        let token = match r.arch {
            Bi(name, _) | Sy(_, name, _) => name,
            Internal(_) => "",
        };
        let found = !token.is_empty() && fuzz.contains(&format!("\"{token}\""));
        match (&r.fuzz, found) {
            (A, false) => failures.push(format!("`{}`: \"{token}\" is not in tests/fuzz_check.rs", r.name)),
            (Gap(why), true) => {
                failures.push(format!("`{}`: \"{token}\" is now fuzzed: the gap \"{why}\" is filled", r.name))
            }
            (Na, _) => failures.push(format!("`{}`: the fuzz entry cannot be `Na`", r.name)),
            _ => {}
        }
    }
    report("the fuzz vocabulary (tests/fuzz_check.rs)", failures);
}

// ---------------------------------------------------------------------------------------
// The interpreter

/// Runs every instance on the executor `make` builds (parameters from seed 1); the
/// failures, by instance.
fn run_every_instance(make: impl for<'p> Fn(&'p Program) -> Result<Box<dyn Executor + 'p>, RunError>) -> Vec<String> {
    let mut failures = Vec::new();
    for inst in instances() {
        let run = make(&inst.program).and_then(|mut exec| exec.run_func("main", &inst.inputs, 7));
        if let Err(e) = run {
            failures.push(format!("{}: {e}", inst.label));
        }
    }
    failures
}

/// The reference interpreter runs every instance; the row's file has the kernel.
#[test]
fn the_interpreter_runs_every_op() {
    let mut failures = run_every_instance(|p| {
        let mut interp = Interpreter::new(p);
        interp.init_params(1)?;
        Ok(Box::new(interp))
    });
    for inst in first_instances() {
        let file = format!("runtime/src/interp/{}.rs", row(inst.key).interp);
        check_family("the interpreter", &file, &inst.op, &mut failures);
    }
    report("the interpreter (runtime/src/interp)", failures);
}

/// The interpreter's unit tests (`runtime/tests/ops`) name every op.
#[test]
fn the_interpreter_unit_tests_name_every_op() {
    let mut failures = Vec::new();
    check_source(Place::Unit, &code_dir("runtime/tests/ops"), |r| &r.unit, &mut failures);
    report("the interpreter's unit tests (runtime/tests/ops)", failures);
}

// ---------------------------------------------------------------------------------------
// Autodiff

/// The first real result of the instance and its loss: `sum` over every axis (of the
/// real part of a complex result), appended to `main`.
fn with_loss(p: &Program) -> Option<(Func, ValueId)> {
    let main = p.main();
    let y = main.results.iter().copied().find(|r| main.type_of(*r).is_some_and(|t| t.dtype.is_inexact()))?;
    let mut e = Emitter::new(main.clone(), p);
    let y = if e.ty(y).dtype == DType::C64 { e.op(Op::Real, &[y], None).ok()? } else { y };
    let axes = (0..e.ty(y).rank()).collect();
    let loss = e.op(Op::Reduce { op: ReduceOp::Sum, axes, keepdim: false }, &[y], None).ok()?;
    let mut f = e.func;
    f.results.push(loss);
    f.result_names.push("loss".into());
    Some((f, loss))
}

/// Every op with a real result is differentiated (`autodiff::gradient`, after inlining
/// calls as train steps do); a `Rule` op's vector-Jacobian product gives some real
/// operand a cotangent, a `No` op's none.
#[test]
fn autodiff_has_a_rule_or_a_reason_for_every_op() {
    let mut failures = Vec::new();
    let mut gives: HashMap<&str, bool> = HashMap::new();
    for inst in instances() {
        let p = &inst.program;
        if let Some((f, _)) = with_loss(p) {
            let table = FuncTable::new(p);
            let grad = inline_calls(p, &f).and_then(|f| {
                let loss = *f.results.last().expect("the loss");
                let wrt: Vec<ValueId> = f.args.iter().filter(|(_, t)| t.dtype.is_inexact()).map(|(v, _)| *v).collect();
                gradient(&f, &table, loss, &wrt)
            });
            match grad {
                Ok(g) => {
                    let mut q = p.clone();
                    q.funcs[0] = g;
                    q.funcs.extend(table.added.into_inner());
                    if let Err(e) = verify(&q) {
                        failures.push(format!("{}: its gradient does not verify: {e:?}", inst.label));
                    }
                }
                Err(e) => failures.push(format!("{}: gradient: {e}", inst.label)),
            }
        }
        if is_control(&inst.op) {
            continue;
        }
        let main = p.main();
        let i = &main.body[0];
        let mut some = false;
        if i.ty.dtype.is_inexact() {
            let mut e = Emitter::new(main.clone(), p);
            let ct = e.fill(1.0, &i.ty).expect("a cotangent");
            match vjp(&mut e, i, ct) {
                Ok(cts) => {
                    some = cts
                        .iter()
                        .zip(&i.args)
                        .any(|(c, a)| c.is_some() && main.type_of(*a).is_some_and(|t| t.dtype.is_inexact()))
                }
                Err(e) => failures.push(format!("{}: vjp: {e}", inst.label)),
            }
        }
        *gives.entry(inst.key).or_default() |= some;
    }
    for inst in first_instances() {
        let row = row(inst.key);
        let gave = gives.get(row.name).copied().unwrap_or(false);
        let file = match row.grad {
            Rule(file) | No(file, _) => format!("compiler/src/autodiff/rules/{file}.rs"),
            Control(file) => format!("compiler/src/autodiff/{file}.rs"),
        };
        match row.grad {
            Rule(_) if !gave => failures.push(format!("`{}`: no operand gets a cotangent, but it is `Rule`", row.name)),
            No(_, why) if gave => failures.push(format!("`{}`: it has a gradient, but it is `No` ({why})", row.name)),
            Control(_) if !is_control(&inst.op) => failures.push(format!("`{}` is not a control op", row.name)),
            _ => {}
        }
        if !matches!(row.grad, Control(_)) && is_control(&inst.op) {
            failures.push(format!("`{}` is a control op: its entry must be `Control`", row.name));
        }
        check_family("autodiff", &file, &inst.op, &mut failures);
    }
    report("autodiff (compiler/src/autodiff)", failures);
}

/// `tests/gradcheck.rs` (finite differences) has a case of every op with a gradient.
#[test]
fn gradcheck_covers_every_op_with_a_gradient() {
    let mut failures = Vec::new();
    check_source(Place::Gradcheck, &code("tests/gradcheck.rs"), |r| &r.gradcheck, &mut failures);
    report("tests/gradcheck.rs", failures);
}

// ---------------------------------------------------------------------------------------
// Backends

/// The MLIR emitter lowers every instance for the CPU and for the GPU, and device math
/// (`gpu/devmath.rs`) has a helper for every `math` op (and `arith.remf`) it writes.
#[test]
fn mlir_emits_every_op_for_the_cpu_and_the_gpu() {
    use archc_mlir::emit::{emit_module_for, Target};
    use archc_mlir::gpu::devmath;
    let helpers: BTreeSet<String> = devmath::helper_names().iter().filter_map(|h| devmath::helper_op(h)).collect();
    let mut failures = Vec::new();
    let mut seen = BTreeSet::new();
    for inst in instances() {
        let shapes: Vec<_> = inst.inputs.iter().map(|t| (t.dtype(), t.shape().to_vec())).collect();
        for target in [Target::Cpu, Target::Gpu] {
            match emit_module_for(&inst.program, "main", &shapes, None, target) {
                Ok(m) if target == Target::Gpu => {
                    for op in math_ops(&m.text) {
                        if !helpers.contains(&op) {
                            failures.push(format!("{}: `{op}` has no device-math helper (gpu/devmath.rs)", inst.label));
                        }
                        seen.insert(op);
                    }
                }
                Ok(_) => {}
                Err(e) => failures.push(format!("{}: {target:?}: {e}", inst.label)),
            }
        }
    }
    assert!(seen.contains("math.erf") && seen.contains("math.exp"), "no math ops found in the GPU modules: {seen:?}");
    for inst in first_instances() {
        let file = format!("compiler/mlir/src/emit/{}.rs", row(inst.key).mlir);
        check_family("the MLIR emitter", &file, &inst.op, &mut failures);
    }
    report("the MLIR emitter (compiler/mlir/src/emit, gpu/devmath.rs)", failures);
}

/// The `math.*` ops and `arith.remf` of MLIR text.
fn math_ops(text: &str) -> BTreeSet<String> {
    let mut ops = BTreeSet::new();
    for (i, _) in text.match_indices("math.") {
        if text[..i].chars().next_back().is_some_and(is_ident) {
            continue;
        }
        let name: String = text[i + 5..].chars().take_while(|c| is_ident(*c)).collect();
        ops.insert(format!("math.{name}"));
    }
    if text.contains("arith.remf") {
        ops.insert("arith.remf".into());
    }
    ops
}

/// The Cranelift tier compiles and runs every instance.
#[test]
fn cranelift_runs_every_op() {
    let mut failures = run_every_instance(|p| {
        let mut jit = archc_clif::ClifCpu::new(p);
        jit.init_params(1)?;
        Ok(Box::new(jit))
    });
    for inst in first_instances() {
        let file = format!("compiler/clif/src/{}.rs", row(inst.key).clif);
        check_family("the Cranelift tier", &file, &inst.op, &mut failures);
    }
    report("the Cranelift tier (compiler/clif)", failures);
}

/// The op cases every backend runs against the interpreter (`compiler/mlir/tests/ops.rs`,
/// `compiler/clif/tests/ops.rs`) have a forward case of every op and a gradient case of
/// every op with a gradient.
#[test]
fn op_cases_cover_every_op() {
    let (fwd, grad) = op_case_sections();
    let mut failures = Vec::new();
    check_source(Place::Cases, &fwd, |r| &r.cases, &mut failures);
    check_source(Place::GradCases, &grad, |r| &r.grad_cases, &mut failures);
    report("the op cases (compiler/mlir/tests/shared/op_cases.rs)", failures);
}

// ---------------------------------------------------------------------------------------
// PyTorch references

/// The ops of the PyTorch fixture programs are exactly the rows whose `torch` entry is
/// `A`.
#[test]
fn pytorch_fixtures_cover_the_ops_listed() {
    let mut used: BTreeSet<&str> = BTreeSet::new();
    let mut files = common::arch_files("tests/fixtures");
    files.extend(common::arch_files("tests/fixtures/grad"));
    for file in &files {
        let out = common::check(file, &Options::default());
        let p = out.program.as_ref().unwrap_or_else(|| panic!("{}: {}", file.display(), common::rendered(&out)));
        used.extend(p.funcs.iter().flat_map(|f| &f.body).map(|i| key(&i.op)));
    }
    let mut failures = Vec::new();
    for r in TABLE {
        match (&r.torch, used.contains(r.name)) {
            (A, false) => failures.push(format!("`{}`: no PyTorch fixture program uses it", r.name)),
            (Exempt(_) | Gap(_), true) => failures
                .push(format!("`{}`: a PyTorch fixture program now uses it: make its `torch` entry `A`", r.name)),
            (Na, _) => failures.push(format!("`{}`: the torch entry cannot be `Na`", r.name)),
            _ => {}
        }
    }
    assert!(Path::new(&common::repo().join("scripts/gen_fixtures.py")).exists());
    report("the PyTorch fixtures (tests/fixtures, scripts/gen_fixtures.py)", failures);
}
