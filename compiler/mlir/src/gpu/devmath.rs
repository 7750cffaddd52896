//! Device math without libdevice: scalar `math` ops inside `gpu.module`s become calls of
//! helper functions written in plain `arith`.
//!
//! Contract: this module is the helper library; the pass `archc-device-math`
//! (`passes::device_math`, at the end of `passes::pipelines::gpu_outline`) replaces every
//! scalar `math.*` op and every scalar `arith.remf` inside a `gpu.module` by
//! `func.call @archc_dm_<op>_<type>(...)` (`arith.remf` by `@archc_dm_fmod_<type>`) and
//! defines the helpers that module uses (and the helpers those call) in it as
//! `func.func private`; host code keeps the `math` dialect and `arith.remf`. A `math` op
//! this library does not implement, or one (or an `arith.remf`) on a vector or other
//! unsupported type, is an error naming the op. [`helper_defs`] gives the definitions by
//! helper name, [`helper_names`] lists them all, [`helper_for`] finds the helper for an op
//! on given types, [`helper_op`] names the op a helper replaces.
//!
//! Why: `convert-gpu-to-nvvm` (MLIR 22) turns every float `math` op, f32 `sqrt`, `absf`,
//! `floor`, `fma` and `copysign` included, and `arith.remf`, `arith.maxnumf` and
//! `arith.minnumf` into calls of CUDA's libdevice (`__nv_*`, `__nv_fmod` for `remf`), and
//! leaves `math.trunc`, `math.absi` and `math.ipowi` unconverted; `llvm.intr.sqrt`,
//! `fabs`, `floor` and friends are illegal there. Without libdevice those calls stay
//! unresolved. So every scalar float `math` op and every `remf` in a kernel goes through a
//! helper. (`maxnumf`/`minnumf` are not rewritten: the emitter never produces them. Its
//! `arith.maximumf`/`minimumf` stay native: `llvm.intr.maximum`/`minimum`, which the
//! NVPTX backend compiles to `max.NaN.f32`/`min.NaN.f32` and, for f64, to `max.f64` plus
//! NaN and signed-zero selects; checked with MLIR 22 for sm_80 and sm_90, `+ptx80` and `+ptx81`.)
//!
//! The helpers use only `arith` ops (`arith.bitcast` for exponent tricks, `arith.select`
//! for special values; no `arith.remf`, `maxnumf` or `minnumf`, which also become
//! libdevice calls), `func.call` between helpers, and `scf.while` loops (in `ipowi` and
//! `fmod`), so they compile on the CPU as well, which is how tests/devmath.rs checks
//! them against glibc. Each f64 float helper but fmod is branch-free straight-line code
//! (special cases are selected at the end); each f32 helper extends to f64, calls the f64
//! helper and rounds back (one extra rounding: results are within 1 ulp of the correctly
//! rounded f32; none for `fmod`, whose f64 result is the f32 result exactly).
//! `fastmath` flags on the replaced ops are dropped: the helpers are always precise.
//!
//! Accuracy of the f64 helpers (relative error, normal ranges): exp, exp2, expm1, log,
//! log2, log10, log1p, tanh, atan, atan2, erf, powf, cbrt, sqrt and rsqrt a few ulp
//! (well below 1e-14); sin, cos and tan the same for |x| < 2^20 pi/2 (about 1.6e6),
//! degrading slowly beyond (Cody-Waite reduction with a 3 x 33-bit split of pi/2, no
//! Payne-Hanek); floor, ceil, round, roundeven, trunc, absf, copysign and fmod are exact
//! (fmod is C's: the exact remainder x - n y, n = trunc(x / y), with x's sign, computed
//! by integer long division of the significands, 11 bits of exponent difference per loop
//! step; fmod(x, 0), fmod(+-inf, y) and NaN operands give NaN, fmod(finite x, +-inf) = x);
//! fma is exact-product-plus-sum (Dekker), not always correctly rounded. Special values
//! follow C99 Annex F (exp overflow to inf and underflow to 0, log(0) = -inf,
//! log(x < 0) = NaN, NaN propagates, pow's zero, infinity, and negative-base cases,
//! tanh and erf saturate to +-1, atan2 quadrants and signed zeros). `ipowi` wraps around
//! on overflow like `arith.muli`; for a negative exponent it gives 1 for base 1, +-1 for
//! base -1, and 0 otherwise (also for base 0, where C-like code would divide by zero).

use crate::error::{Error, Result};
use std::collections::BTreeSet;
use std::f64::consts::{FRAC_2_SQRT_PI, PI};
use std::fmt::Write;

/// The prefix of every helper symbol.
pub const PREFIX: &str = "archc_dm_";

/// The `func.func private` definitions of the named helpers (e.g. `archc_dm_exp_f32`)
/// and of every helper they call, each exactly once.
pub fn helper_defs(names: &[&str]) -> Result<String> {
    let mut wanted = BTreeSet::new();
    for name in names {
        let h = Helper::all().into_iter().find(|h| h.name() == *name);
        wanted.insert(h.ok_or_else(|| Error::Unsupported(format!("no device math helper named `{name}`")))?);
    }
    Ok(closure(&wanted).iter().map(|h| h.define()).collect())
}

/// Every helper this library defines, by symbol name.
pub fn helper_names() -> Vec<String> {
    Helper::all().iter().map(Helper::name).collect()
}

/// The helper implementing `math.<mnemonic>` (`op` is the mnemonic or the full op name,
/// `math.exp` or `arith.remf`) on the printed operand types (`["f32"]`, `["f64", "i32"]`
/// for `fpowi`), with its signature: `(name, argument types, result type)`; none is an
/// [`Error::Unsupported`].
pub fn helper_for(op: &str, types: &[&str]) -> Result<(String, Vec<String>, String)> {
    let full = if op.contains('.') { op.to_string() } else { format!("math.{op}") };
    let h = Helper::lookup(&full, types)?;
    let args = h.args().iter().map(|t| t.to_string()).collect();
    Ok((h.name(), args, h.result().to_string()))
}

/// The op (`math.exp`, `arith.remf`) that the helper named `name` replaces.
pub fn helper_op(name: &str) -> Option<String> {
    Helper::all().into_iter().find(|h| h.name() == name).map(|h| h.op.source())
}

// ---------------------------------------------------------------------------------------
// The helper catalogue

/// A scalar type a helper works on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ty {
    F32,
    F64,
    I32,
    I64,
}

impl Ty {
    fn parse(s: &str) -> Option<Ty> {
        Some(match s {
            "f32" => Ty::F32,
            "f64" => Ty::F64,
            "i32" => Ty::I32,
            "i64" => Ty::I64,
            _ => return None,
        })
    }

    fn name(self) -> &'static str {
        match self {
            Ty::F32 => "f32",
            Ty::F64 => "f64",
            Ty::I32 => "i32",
            Ty::I64 => "i64",
        }
    }

    fn is_float(self) -> bool {
        matches!(self, Ty::F32 | Ty::F64)
    }
}

impl std::fmt::Display for Ty {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The `math` ops with a helper.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Op {
    Exp,
    Exp2,
    Expm1,
    Log,
    Log2,
    Log10,
    Log1p,
    Sin,
    Cos,
    Tan,
    Tanh,
    Atan,
    Atan2,
    Erf,
    Powf,
    Sqrt,
    Rsqrt,
    Cbrt,
    Absf,
    Floor,
    Ceil,
    Round,
    Roundeven,
    Trunc,
    Fma,
    Copysign,
    /// C `fmod`, replacing `arith.remf`.
    Fmod,
    Isnan,
    Isinf,
    Isfinite,
    Fpowi,
    Ipowi,
    Absi,
}

/// How an op's operand and result types relate to the helper's type(s).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Shape {
    /// `n` float operands, float result of the same type.
    Float(usize),
    /// One float operand, i1 result.
    Predicate,
    /// `math.fpowi %x, %n : f64, i32`.
    FPowI,
    /// `n` integer operands, integer result of the same type.
    Int(usize),
}

impl Op {
    const ALL: [Op; 33] = [
        Op::Exp,
        Op::Exp2,
        Op::Expm1,
        Op::Log,
        Op::Log2,
        Op::Log10,
        Op::Log1p,
        Op::Sin,
        Op::Cos,
        Op::Tan,
        Op::Tanh,
        Op::Atan,
        Op::Atan2,
        Op::Erf,
        Op::Powf,
        Op::Sqrt,
        Op::Rsqrt,
        Op::Cbrt,
        Op::Absf,
        Op::Floor,
        Op::Ceil,
        Op::Round,
        Op::Roundeven,
        Op::Trunc,
        Op::Fma,
        Op::Copysign,
        Op::Fmod,
        Op::Isnan,
        Op::Isinf,
        Op::Isfinite,
        Op::Fpowi,
        Op::Ipowi,
        Op::Absi,
    ];

    fn mnemonic(self) -> &'static str {
        use Op::*;
        match self {
            Exp => "exp",
            Exp2 => "exp2",
            Expm1 => "expm1",
            Log => "log",
            Log2 => "log2",
            Log10 => "log10",
            Log1p => "log1p",
            Sin => "sin",
            Cos => "cos",
            Tan => "tan",
            Tanh => "tanh",
            Atan => "atan",
            Atan2 => "atan2",
            Erf => "erf",
            Powf => "powf",
            Sqrt => "sqrt",
            Rsqrt => "rsqrt",
            Cbrt => "cbrt",
            Absf => "absf",
            Floor => "floor",
            Ceil => "ceil",
            Round => "round",
            Roundeven => "roundeven",
            Trunc => "trunc",
            Fma => "fma",
            Copysign => "copysign",
            Fmod => "fmod",
            Isnan => "isnan",
            Isinf => "isinf",
            Isfinite => "isfinite",
            Fpowi => "fpowi",
            Ipowi => "ipowi",
            Absi => "absi",
        }
    }

    /// The op the helper replaces, as printed.
    fn source(self) -> String {
        match self {
            Op::Fmod => "arith.remf".to_string(),
            op => format!("math.{}", op.mnemonic()),
        }
    }

    fn shape(self) -> Shape {
        use Op::*;
        match self {
            Atan2 | Powf | Copysign | Fmod => Shape::Float(2),
            Fma => Shape::Float(3),
            Isnan | Isinf | Isfinite => Shape::Predicate,
            Fpowi => Shape::FPowI,
            Ipowi => Shape::Int(2),
            Absi => Shape::Int(1),
            _ => Shape::Float(1),
        }
    }
}

/// One helper function: an op at one type (`exp` = its exponent's type for `fpowi`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct Helper {
    op: Op,
    ty: Ty,
    exp: Option<Ty>,
}

impl Helper {
    fn all() -> Vec<Helper> {
        let mut all = Vec::new();
        for op in Op::ALL {
            let types: &[Ty] = if let Shape::Int(_) = op.shape() { &[Ty::I32, Ty::I64] } else { &[Ty::F32, Ty::F64] };
            for &ty in types {
                match op.shape() {
                    Shape::FPowI => all.extend([Ty::I32, Ty::I64].map(|e| Helper { op, ty, exp: Some(e) })),
                    _ => all.push(Helper { op, ty, exp: None }),
                }
            }
        }
        all
    }

    /// The helper for the op named `name` (`math.exp`, `arith.remf`) on `types`.
    pub(crate) fn lookup(name: &str, types: &[&str]) -> Result<Helper> {
        let refused = |why: &str| Error::Unsupported(format!("`{name}` on {}: {why}", types.join(", ")));
        let op = Op::ALL.into_iter().find(|o| o.source() == name);
        let op = op.ok_or_else(|| refused("no device implementation of this op"))?;
        let tys: Option<Vec<Ty>> = types.iter().map(|t| Ty::parse(t)).collect();
        let tys = tys.ok_or_else(|| refused("unsupported type (scalar f32, f64, i32, i64 only)"))?;
        let helper = match (op.shape(), tys.as_slice()) {
            (Shape::FPowI, &[ty, e]) if ty.is_float() && !e.is_float() => Helper { op, ty, exp: Some(e) },
            (Shape::Int(_), &[ty]) if !ty.is_float() => Helper { op, ty, exp: None },
            (Shape::Float(_) | Shape::Predicate, &[ty]) if ty.is_float() => Helper { op, ty, exp: None },
            _ => return Err(refused("unsupported type")),
        };
        Ok(helper)
    }

    pub(crate) fn name(&self) -> String {
        match self.exp {
            Some(e) => format!("{PREFIX}{}_{}_{e}", self.op.mnemonic(), self.ty),
            None => format!("{PREFIX}{}_{}", self.op.mnemonic(), self.ty),
        }
    }

    pub(crate) fn args(&self) -> Vec<Ty> {
        match self.op.shape() {
            Shape::Float(n) | Shape::Int(n) => vec![self.ty; n],
            Shape::Predicate => vec![self.ty],
            Shape::FPowI => vec![self.ty, self.exp.unwrap_or(Ty::I32)],
        }
    }

    fn result(&self) -> &'static str {
        match self.op.shape() {
            Shape::Predicate => "i1",
            _ => self.ty.name(),
        }
    }

    fn of(op: Op, ty: Ty) -> Helper {
        Helper { op, ty, exp: None }
    }

    /// The helpers this one calls.
    fn deps(&self) -> Vec<Helper> {
        match (self.op.shape(), self.ty, self.op) {
            (Shape::FPowI, _, _) => vec![Helper::of(Op::Powf, Ty::F64)],
            (Shape::Float(_), Ty::F32, op) => vec![Helper::of(op, Ty::F64)],
            (_, Ty::F64, Op::Tanh) => vec![Helper::of(Op::Expm1, Ty::F64)],
            (_, Ty::F64, Op::Log1p) => vec![Helper::of(Op::Log, Ty::F64)],
            _ => vec![],
        }
    }

    /// The `func.func private` text.
    pub(crate) fn define(&self) -> String {
        let mut b = Body::default();
        let args: Vec<V> = self.args().iter().enumerate().map(|(i, _)| format!("%a{i}")).collect();
        let result = match (self.op.shape(), self.ty) {
            (Shape::Float(_), Ty::F32) => via_f64(&mut b, self, &args),
            (Shape::Float(_), _) => float_body(&mut b, self.op, &args),
            (Shape::Predicate, ty) => predicate(&mut b, self.op, ty, &args[0]),
            (Shape::FPowI, ty) => fpowi(&mut b, ty, self.exp.unwrap_or(Ty::I32), &args),
            (Shape::Int(_), ty) => int_body(&mut b, self.op, ty, &args),
        };
        let params: Vec<String> = args.iter().zip(self.args()).map(|(a, t)| format!("{a}: {t}")).collect();
        format!(
            "func.func private @{}({}) -> {} {{\n{}  return {result} : {}\n}}\n",
            self.name(),
            params.join(", "),
            self.result(),
            b.text,
            self.result()
        )
    }
}

/// `helpers` and everything they call.
pub(crate) fn closure(helpers: &BTreeSet<Helper>) -> BTreeSet<Helper> {
    let mut all = helpers.clone();
    let mut todo: Vec<Helper> = helpers.iter().copied().collect();
    while let Some(h) = todo.pop() {
        for d in h.deps() {
            if all.insert(d) {
                todo.push(d);
            }
        }
    }
    all
}

// ---------------------------------------------------------------------------------------
// Building helper bodies

/// An SSA value name.
type V = String;

/// The straight-line body of one helper under construction. Float values are f64,
/// integers i64 and conditions i1 unless a method says otherwise; constants are emitted
/// once per body (so they must not be first created inside a region).
#[derive(Default)]
struct Body {
    text: String,
    next: usize,
    consts: Vec<(String, V)>,
}

impl Body {
    fn fresh(&mut self) -> V {
        self.next += 1;
        format!("%v{}", self.next - 1)
    }

    fn line(&mut self, s: &str) {
        let _ = writeln!(self.text, "  {s}");
    }

    fn def(&mut self, rhs: &str) -> V {
        let v = self.fresh();
        self.line(&format!("{v} = {rhs}"));
        v
    }

    fn constant(&mut self, literal: String) -> V {
        if let Some((_, v)) = self.consts.iter().find(|(l, _)| *l == literal) {
            return v.clone();
        }
        let v = self.def(&format!("arith.constant {literal}"));
        self.consts.push((literal, v.clone()));
        v
    }

    /// An f64 constant, printed as its bit pattern so it is exact.
    fn f(&mut self, c: f64) -> V {
        self.constant(format!("0x{:016X} : f64", c.to_bits()))
    }

    fn i(&mut self, c: i64) -> V {
        self.constant(format!("{c} : i64"))
    }

    fn fop(&mut self, op: &str, a: &str, b: &str) -> V {
        self.def(&format!("arith.{op} {a}, {b} : f64"))
    }

    fn add(&mut self, a: &str, b: &str) -> V {
        self.fop("addf", a, b)
    }

    fn sub(&mut self, a: &str, b: &str) -> V {
        self.fop("subf", a, b)
    }

    fn mul(&mut self, a: &str, b: &str) -> V {
        self.fop("mulf", a, b)
    }

    fn div(&mut self, a: &str, b: &str) -> V {
        self.fop("divf", a, b)
    }

    fn addc(&mut self, a: &str, c: f64) -> V {
        let c = self.f(c);
        self.add(a, &c)
    }

    fn mulc(&mut self, a: &str, c: f64) -> V {
        let c = self.f(c);
        self.mul(a, &c)
    }

    fn neg(&mut self, a: &str) -> V {
        self.def(&format!("arith.negf {a} : f64"))
    }

    fn fcmp(&mut self, pred: &str, a: &str, b: &str) -> V {
        self.def(&format!("arith.cmpf {pred}, {a}, {b} : f64"))
    }

    fn fcmpc(&mut self, pred: &str, a: &str, c: f64) -> V {
        let c = self.f(c);
        self.fcmp(pred, a, &c)
    }

    fn sel_t(&mut self, ty: &str, c: &str, a: &str, b: &str) -> V {
        self.def(&format!("arith.select {c}, {a}, {b} : {ty}"))
    }

    fn sel(&mut self, c: &str, a: &str, b: &str) -> V {
        self.sel_t("f64", c, a, b)
    }

    /// `c ? k : a` for a constant `k`.
    fn selc(&mut self, c: &str, k: f64, a: &str) -> V {
        let k = self.f(k);
        self.sel(c, &k, a)
    }

    fn iop(&mut self, op: &str, a: &str, b: &str) -> V {
        self.def(&format!("arith.{op} {a}, {b} : i64"))
    }

    fn iopc(&mut self, op: &str, a: &str, c: i64) -> V {
        let c = self.i(c);
        self.iop(op, a, &c)
    }

    fn icmpc(&mut self, pred: &str, a: &str, c: i64) -> V {
        let c = self.i(c);
        self.def(&format!("arith.cmpi {pred}, {a}, {c} : i64"))
    }

    fn and1(&mut self, a: &str, b: &str) -> V {
        self.def(&format!("arith.andi {a}, {b} : i1"))
    }

    fn or1(&mut self, a: &str, b: &str) -> V {
        self.def(&format!("arith.ori {a}, {b} : i1"))
    }

    fn not1(&mut self, a: &str) -> V {
        let t = self.constant("true".into());
        self.def(&format!("arith.xori {a}, {t} : i1"))
    }

    fn bits(&mut self, x: &str) -> V {
        self.def(&format!("arith.bitcast {x} : f64 to i64"))
    }

    fn float_bits(&mut self, i: &str) -> V {
        self.def(&format!("arith.bitcast {i} : i64 to f64"))
    }

    /// Truncating conversion; `x` must be in i64 range (else LLVM gives poison).
    fn fptosi(&mut self, x: &str) -> V {
        self.def(&format!("arith.fptosi {x} : f64 to i64"))
    }

    fn sitofp(&mut self, i: &str) -> V {
        self.def(&format!("arith.sitofp {i} : i64 to f64"))
    }

    fn call(&mut self, name: &str, args: &[&str], sig: &str) -> V {
        self.def(&format!("func.call @{name}({}) : {sig}", args.join(", ")))
    }
}

/// An f32 helper: extend, call the f64 helper, round back.
fn via_f64(b: &mut Body, h: &Helper, args: &[V]) -> V {
    let wide: Vec<V> = args.iter().map(|a| b.def(&format!("arith.extf {a} : f32 to f64"))).collect();
    let refs: Vec<&str> = wide.iter().map(String::as_str).collect();
    let f64s = vec!["f64"; args.len()].join(", ");
    let r = b.call(&Helper::of(h.op, Ty::F64).name(), &refs, &format!("({f64s}) -> f64"));
    b.def(&format!("arith.truncf {r} : f64 to f32"))
}

/// The f64 implementation of a float op.
fn float_body(b: &mut Body, op: Op, a: &[V]) -> V {
    use Op::*;
    let x = a[0].as_str();
    match op {
        Exp => exp(b, x),
        Exp2 => exp2(b, x),
        Expm1 => expm1(b, x),
        Log => log(b, x),
        Log2 => log2(b, x),
        Log10 => log10(b, x),
        Log1p => log1p(b, x),
        Sin => sin_cos_tan(b, x, Trig::Sin),
        Cos => sin_cos_tan(b, x, Trig::Cos),
        Tan => sin_cos_tan(b, x, Trig::Tan),
        Tanh => tanh(b, x),
        Atan => atan(b, x),
        Atan2 => atan2(b, x, &a[1]),
        Erf => erf(b, x),
        Powf => powf(b, x, &a[1]),
        Sqrt => sqrt_rsqrt(b, x, false),
        Rsqrt => sqrt_rsqrt(b, x, true),
        Cbrt => cbrt(b, x),
        Absf => abs(b, x),
        Floor => floor_ceil(b, x, true),
        Ceil => floor_ceil(b, x, false),
        Round => round(b, x),
        Roundeven => roundeven(b, x),
        Trunc => trunc(b, x),
        Fma => fma(b, x, &a[1], &a[2]),
        Copysign => copysign(b, x, &a[1]),
        Fmod => fmod(b, x, &a[1]),
        Isnan | Isinf | Isfinite | Fpowi | Ipowi | Absi => unreachable!("not a float op"),
    }
}

// ---------------------------------------------------------------------------------------
// Constants

/// ln 2 = LN2_HI + LN2_LO; LN2_HI has 42 significant bits, so `k * LN2_HI` is exact for
/// |k| < 2^11 (Cody & Waite).
const LN2_HI: f64 = f64::from_bits(0x3FE62E42FEFA3800);
const LN2_LO: f64 = f64::from_bits(0x3D2EF35793C76730);
/// log10(2) split the same way.
const LOG10_2_HI: f64 = f64::from_bits(0x3FD34413509F7800);
const LOG10_2_LO: f64 = f64::from_bits(0x3D1FEF311F12B358);
const INV_LN2: f64 = std::f64::consts::LOG2_E;
const LOG10_E: f64 = std::f64::consts::LOG10_E;
const SQRT2: f64 = std::f64::consts::SQRT_2;
/// pi/2 = PIO2[0] + PIO2[1] + PIO2[2] + PIO2[3] to about 150 bits; the first three carry
/// at most 33 significant bits, so `k * PIO2[i]` is exact for |k| < 2^20.
const PIO2: [f64; 4] = [
    f64::from_bits(0x3FF921FB54400000),
    f64::from_bits(0x3DD0B4611A600000),
    f64::from_bits(0x3BA3198A2E000000),
    f64::from_bits(0x397B839A252049C1),
];
/// pi = PI + PI_LO (double-double).
const PI_LO: f64 = f64::from_bits(0x3CA1A62633145C07);
const TWO_OVER_PI: f64 = std::f64::consts::FRAC_2_PI;
const INF: f64 = f64::INFINITY;
const TWO52: f64 = 4503599627370496.0;

// ---------------------------------------------------------------------------------------
// Building blocks (f64)

fn abs(b: &mut Body, x: &str) -> V {
    let i = b.bits(x);
    let m = b.iopc("andi", &i, i64::MAX);
    b.float_bits(&m)
}

/// |x| with the sign of `s`.
fn copysign(b: &mut Body, x: &str, s: &str) -> V {
    let (xi, si) = (b.bits(x), b.bits(s));
    let mag = b.iopc("andi", &xi, i64::MAX);
    let sign = b.iopc("andi", &si, i64::MIN);
    let r = b.iop("ori", &mag, &sign);
    b.float_bits(&r)
}

/// The sign bit of x (true for -0 and -NaN too).
fn signbit(b: &mut Body, x: &str) -> V {
    let i = b.bits(x);
    b.icmpc("slt", &i, 0)
}

fn is_nan(b: &mut Body, x: &str) -> V {
    b.fcmp("uno", x, x)
}

/// x clamped to [lo, hi]; NaN becomes `lo` (so later integer conversions stay defined).
/// (Compare and select: `arith.maxnumf`/`minnumf` would become libdevice calls.)
fn clamp(b: &mut Body, x: &str, lo: f64, hi: f64) -> V {
    let below = b.fcmpc("ult", x, lo);
    let x = b.selc(&below, lo, x);
    let above = b.fcmpc("ogt", &x, hi);
    b.selc(&above, hi, &x)
}

/// x rounded to the nearest integer (ties to even) for |x| < 2^51: adding and
/// subtracting 1.5 * 2^52 leaves no fraction bits.
fn round_small(b: &mut Body, x: &str) -> V {
    let s = b.addc(x, 1.5 * TWO52);
    let c = b.f(1.5 * TWO52);
    b.sub(&s, &c)
}

/// 2^k for an i64 `k` in [-1022, 1023], built from its exponent bits.
fn pow2(b: &mut Body, k: &str) -> V {
    let e = b.iopc("addi", k, 1023);
    let bits = b.iopc("shli", &e, 52);
    b.float_bits(&bits)
}

/// p * 2^k for k in [-2044, 2046] in two steps, so that both factors are normal and a
/// subnormal result is rounded once.
fn scale2(b: &mut Body, p: &str, k: &str) -> V {
    let k1 = b.iopc("shrsi", k, 1);
    let k2 = b.iop("subi", k, &k1);
    let (s1, s2) = (pow2(b, &k1), pow2(b, &k2));
    let t = b.mul(p, &s1);
    b.mul(&t, &s2)
}

/// c[0] + x (c[1] + x (c[2] + ...)) (Horner).
fn horner(b: &mut Body, x: &str, c: &[f64]) -> V {
    let mut acc = b.f(c[c.len() - 1]);
    for &k in c[..c.len() - 1].iter().rev() {
        let t = b.mul(x, &acc);
        acc = b.addc(&t, k);
    }
    acc
}

/// Taylor coefficients 1/k! for k in `range`.
fn inv_factorials(range: std::ops::RangeInclusive<u32>) -> Vec<f64> {
    range.map(|k| 1.0 / (1..=k).map(f64::from).product::<f64>()).collect()
}

/// (s, e) with s + e = a + b exactly (Knuth's TwoSum).
fn two_sum(b: &mut Body, x: &str, y: &str) -> (V, V) {
    let s = b.add(x, y);
    let yy = b.sub(&s, x);
    let xx = b.sub(&s, &yy);
    let ex = b.sub(x, &xx);
    let ey = b.sub(y, &yy);
    let e = b.add(&ex, &ey);
    (s, e)
}

/// (s, e) with s + e = a + b exactly, given |a| >= |b| (Dekker's Fast2Sum).
fn fast_two_sum(b: &mut Body, x: &str, y: &str) -> (V, V) {
    let s = b.add(x, y);
    let t = b.sub(&s, x);
    let e = b.sub(y, &t);
    (s, e)
}

/// x = hi + lo with hi keeping the top 26 significant bits (the low 27 bits of the
/// encoding cleared), so that products of halves are exact. Masking instead of Veltkamp's
/// multiply keeps this exact even if the backend contracts mul+add into fma.
fn split(b: &mut Body, x: &str) -> (V, V) {
    let i = b.bits(x);
    let m = b.iopc("andi", &i, !((1i64 << 27) - 1));
    let hi = b.float_bits(&m);
    let lo = b.sub(x, &hi);
    (hi, lo)
}

/// (p, e) with p + e = x * y up to ~2^-105 relative (Dekker's TwoProduct); |x|, |y|,
/// |xy| must stay below ~2^995.
fn two_prod(b: &mut Body, x: &str, y: &str) -> (V, V) {
    let p = b.mul(x, y);
    let (xh, xl) = split(b, x);
    let (yh, yl) = split(b, y);
    let hh = b.mul(&xh, &yh);
    let e0 = b.sub(&hh, &p);
    let hl = b.mul(&xh, &yl);
    let lh = b.mul(&xl, &yh);
    let e1 = b.add(&e0, &hl);
    let e2 = b.add(&e1, &lh);
    let ll = b.mul(&xl, &yl);
    let e = b.add(&e2, &ll);
    (p, e)
}

// ---------------------------------------------------------------------------------------
// Rounding, sign, fma

/// Toward zero: through i64 below 2^52 (above, every double is an integer).
fn trunc(b: &mut Body, x: &str) -> V {
    let ax = abs(b, x);
    let big = b.fcmpc("uge", &ax, TWO52);
    let zero = b.f(0.0);
    let safe = b.sel(&big, &zero, x);
    let i = b.fptosi(&safe);
    let t = b.sitofp(&i);
    let t = copysign(b, &t, x);
    b.sel(&big, x, &t)
}

/// floor(x) = trunc(x) - 1 where trunc rounded up; ceil likewise.
fn floor_ceil(b: &mut Body, x: &str, floor: bool) -> V {
    let t = trunc(b, x);
    let (pred, step) = if floor { ("ogt", -1.0) } else { ("olt", 1.0) };
    let moved = b.fcmp(pred, &t, x);
    let t2 = b.addc(&t, step);
    b.sel(&moved, &t2, &t)
}

/// Half away from zero: trunc(x) plus one unit when the dropped fraction is >= 1/2
/// (x - trunc(x) is exact, so 0.49999999999999994 stays 0).
fn round(b: &mut Body, x: &str) -> V {
    let t = trunc(b, x);
    let d = b.sub(x, &t);
    let ad = abs(b, &d);
    let up = b.fcmpc("oge", &ad, 0.5);
    let one = b.f(1.0);
    let unit = copysign(b, &one, x);
    let t2 = b.add(&t, &unit);
    b.sel(&up, &t2, &t)
}

/// Half to even: |x| + 2^52 - 2^52 rounds in the current (nearest-even) mode.
fn roundeven(b: &mut Body, x: &str) -> V {
    let ax = abs(b, x);
    let s = b.addc(&ax, TWO52);
    let c = b.f(TWO52);
    let r = b.sub(&s, &c);
    let r = copysign(b, &r, x);
    let small = b.fcmpc("olt", &ax, TWO52);
    b.sel(&small, &r, x)
}

/// x*y + z with the product kept exactly (TwoProduct, then TwoSum); plain x*y + z where
/// magnitudes near overflow would break the splitting.
fn fma(b: &mut Body, x: &str, y: &str, z: &str) -> V {
    let (p, pe) = two_prod(b, x, y);
    let (s, se) = two_sum(b, &p, z);
    let e = b.add(&se, &pe);
    let sum = b.add(&s, &e);
    let no_err = b.fcmpc("oeq", &e, 0.0);
    let exact = b.sel(&no_err, &s, &sum);
    let plain = b.add(&p, z);
    let (ap, az) = (abs(b, &p), abs(b, z));
    let p_ok = b.fcmpc("olt", &ap, 2f64.powi(990));
    let z_ok = b.fcmpc("olt", &az, 2f64.powi(990));
    let ok = b.and1(&p_ok, &z_ok);
    b.sel(&ok, &exact, &plain)
}

// ---------------------------------------------------------------------------------------
// Remainder

/// (m, e) with |x| = m 2^(e - 1075) for the bits `i` of a finite non-negative x: the
/// significand with its implicit bit (none for subnormals) and the exponent field, taken
/// as 1 for subnormals (so that e never decreases as |x| grows).
fn significand(b: &mut Body, i: &str) -> (V, V) {
    let field = b.iopc("shrui", i, 52);
    let frac = b.iopc("andi", i, (1i64 << 52) - 1);
    let sub = b.icmpc("eq", &field, 0);
    let with_bit = b.iopc("ori", &frac, 1i64 << 52);
    let m = b.sel_t("i64", &sub, &frac, &with_bit);
    let one = b.i(1);
    let e = b.sel_t("i64", &sub, &one, &field);
    (m, e)
}

/// C's fmod, exactly: for finite x, finite nonzero y and |x| >= |y|, with
/// |x| = mx 2^(ex - 1075) and |y| = my 2^(ey - 1075) (ex >= ey), the remainder is
/// (mx 2^(ex - ey) mod my) 2^(ey - 1075) with x's sign. The integer remainder is taken
/// by long division on i64, in an `scf.while` that shifts in at most 11 bits of the
/// exponent difference per step (the partial remainder stays below my < 2^53, so the
/// shifted value fits 64 bits): at most 191 steps, none when the exponents are equal.
/// The result, below 2^53 units of 2^(ey - 1075), converts and scales back exactly.
/// |x| < |y| (x = +-0, finite x with y = +-inf) gives x; infinite x, y = +-0 and NaN
/// operands give NaN. Those inputs run the loop on dummy operands (0 mod 1 ulp).
fn fmod(b: &mut Body, x: &str, y: &str) -> V {
    let (ax, ay) = (abs(b, x), abs(b, y));
    let x_bad = b.fcmpc("uge", &ax, INF);
    let y_bad = b.fcmpc("ueq", &ay, 0.0);
    let nan = b.or1(&x_bad, &y_bad);
    let keep = b.fcmp("olt", &ax, &ay);
    let skip = b.or1(&nan, &keep);
    let (xi, yi) = (b.bits(&ax), b.bits(&ay));
    let (zero, one, step) = (b.i(0), b.i(1), b.i(11));
    let xi = b.sel_t("i64", &skip, &zero, &xi);
    let yi = b.sel_t("i64", &skip, &one, &yi);
    let (mx, ex) = significand(b, &xi);
    let (my, ey) = significand(b, &yi);
    let d0 = b.iop("subi", &ex, &ey);
    let r0 = b.iop("remui", &mx, &my);
    let [w, r, d, more, r2, d2, big, s, sh, rn, dn] = std::array::from_fn(|_| b.fresh());
    b.line(&format!("{w}:2 = scf.while ({r} = {r0}, {d} = {d0}) : (i64, i64) -> (i64, i64) {{"));
    b.line(&format!("  {more} = arith.cmpi sgt, {d}, {zero} : i64"));
    b.line(&format!("  scf.condition({more}) {r}, {d} : i64, i64"));
    b.line("} do {");
    b.line(&format!("^bb0({r2}: i64, {d2}: i64):"));
    b.line(&format!("  {big} = arith.cmpi sgt, {d2}, {step} : i64"));
    b.line(&format!("  {s} = arith.select {big}, {step}, {d2} : i64"));
    b.line(&format!("  {sh} = arith.shli {r2}, {s} : i64"));
    b.line(&format!("  {rn} = arith.remui {sh}, {my} : i64"));
    b.line(&format!("  {dn} = arith.subi {d2}, {s} : i64"));
    b.line(&format!("  scf.yield {rn}, {dn} : i64, i64"));
    b.line("}");
    let rf = b.sitofp(&format!("{w}#0"));
    let k = b.iopc("subi", &ey, 1075);
    let mag = scale2(b, &rf, &k);
    let res = copysign(b, &mag, x);
    let res = b.sel(&keep, x, &res);
    b.selc(&nan, f64::NAN, &res)
}

// ---------------------------------------------------------------------------------------
// Roots

/// sqrt and 1/sqrt: a first guess of 1/sqrt(x) from the exponent bits
/// (bits(y) = 1.5 bits(1) - bits(x)/2, within 9%), five Newton steps
/// y <- y (3/2 - x y^2 / 2), then sqrt = x y with one Newton correction
/// s <- s + y (x - s^2) / 2. Subnormal and huge inputs are scaled by 2^+-108 first.
fn sqrt_rsqrt(b: &mut Body, x: &str, reciprocal: bool) -> V {
    let tiny = b.fcmpc("olt", x, f64::MIN_POSITIVE);
    let huge = b.fcmpc("ogt", x, 2f64.powi(1000));
    let scale = |b: &mut Body, e: i32| {
        let one = b.f(1.0);
        let s = b.selc(&huge, 2f64.powi(-e), &one);
        b.selc(&tiny, 2f64.powi(e), &s)
    };
    let sc = scale(b, 108);
    let xs = b.mul(x, &sc);
    let i = b.bits(&xs);
    let half_i = b.iopc("shrsi", &i, 1);
    let magic = b.i(0x5FE8000000000000);
    let y0 = b.iop("subi", &magic, &half_i);
    let mut y = b.float_bits(&y0);
    let h = b.mulc(&xs, 0.5);
    for _ in 0..5 {
        let hy = b.mul(&h, &y);
        let hyy = b.mul(&hy, &y);
        let c = b.f(1.5);
        let t = b.sub(&c, &hyy);
        y = b.mul(&y, &t);
    }
    if reciprocal {
        let back = scale(b, 54);
        let r = b.mul(&y, &back);
        return rsqrt_specials(b, x, &r);
    }
    let s = b.mul(&xs, &y);
    let ss = b.mul(&s, &s);
    let res = b.sub(&xs, &ss);
    let hy = b.mulc(&y, 0.5);
    let corr = b.mul(&hy, &res);
    let s = b.add(&s, &corr);
    let back = scale(b, -54);
    let r = b.mul(&s, &back);
    sqrt_specials(b, x, &r)
}

/// sqrt(+-0) = +-0, sqrt(inf) = inf, sqrt(x < 0) = NaN, NaN stays.
fn sqrt_specials(b: &mut Body, x: &str, r: &str) -> V {
    let zero_or_inf = b.fcmpc("oeq", x, 0.0);
    let inf = b.fcmpc("oeq", x, INF);
    let pass = b.or1(&zero_or_inf, &inf);
    let r = b.sel(&pass, x, r);
    let bad = b.fcmpc("ult", x, 0.0);
    b.selc(&bad, f64::NAN, &r)
}

/// rsqrt(+-0) = +-inf, rsqrt(inf) = 0, rsqrt(x < 0) = NaN, NaN stays.
fn rsqrt_specials(b: &mut Body, x: &str, r: &str) -> V {
    let zero = b.fcmpc("oeq", x, 0.0);
    let inf = b.f(INF);
    let sinf = copysign(b, &inf, x);
    let r = b.sel(&zero, &sinf, r);
    let big = b.fcmpc("oeq", x, INF);
    let r = b.selc(&big, 0.0, &r);
    let bad = b.fcmpc("ult", x, 0.0);
    b.selc(&bad, f64::NAN, &r)
}

/// Cube root: a first guess from the exponent bits (bits(y) = bits(1) + (bits(x) -
/// bits(1)) / 3), five Newton steps y <- (2y + x/y^2) / 3; subnormals scaled by 2^54.
fn cbrt(b: &mut Body, x: &str) -> V {
    let ax = abs(b, x);
    let tiny = b.fcmpc("olt", &ax, f64::MIN_POSITIVE);
    let scaled = b.mulc(&ax, 2f64.powi(54));
    let xs = b.sel(&tiny, &scaled, &ax);
    let i = b.bits(&xs);
    let d = b.iopc("subi", &i, 0x3FF0000000000000);
    let d3 = b.iopc("divsi", &d, 3);
    let y0 = b.iopc("addi", &d3, 0x3FF0000000000000);
    let mut y = b.float_bits(&y0);
    for _ in 0..5 {
        let yy = b.mul(&y, &y);
        let q = b.div(&xs, &yy);
        let y2 = b.add(&y, &y);
        let s = b.add(&y2, &q);
        y = b.mulc(&s, 1.0 / 3.0);
    }
    let down = b.f(2f64.powi(-18));
    let one = b.f(1.0);
    let scale = b.sel(&tiny, &down, &one);
    let r = b.mul(&y, &scale);
    let r = copysign(b, &r, x);
    let zero = b.fcmpc("oeq", x, 0.0);
    let inf = b.fcmpc("ueq", &ax, INF);
    let pass = b.or1(&zero, &inf);
    b.sel(&pass, x, &r)
}

// ---------------------------------------------------------------------------------------
// Exponentials

/// Cody & Waite reduction: x = k ln2 + r with k = round(x / ln2), |r| <= ln2/2 (plus
/// rounding). Needs |x| < 2^50; returns (r, k as i64).
fn reduce_ln2(b: &mut Body, x: &str) -> (V, V) {
    let q = b.mulc(x, INV_LN2);
    let kf = round_small(b, &q);
    let hi = b.mulc(&kf, LN2_HI);
    let t = b.sub(x, &hi);
    let lo = b.mulc(&kf, LN2_LO);
    let r = b.sub(&t, &lo);
    let k = b.fptosi(&kf);
    (r, k)
}

/// e^r - 1 for |r| <= 0.35: Taylor series to r^13 (truncation error < 2e-17 relative).
fn expm1_poly(b: &mut Body, r: &str) -> V {
    let p = horner(b, r, &inv_factorials(1..=13));
    b.mul(r, &p)
}

/// e^r * 2^k.
fn exp_scaled(b: &mut Body, r: &str, k: &str) -> V {
    let em = expm1_poly(b, r);
    let p = b.addc(&em, 1.0);
    scale2(b, &p, k)
}

/// e^x = 2^k e^r. Inputs are clamped to [-746, 710], beyond which the scaling overflows
/// to inf or underflows to 0 by itself.
fn exp(b: &mut Body, x: &str) -> V {
    let xc = clamp(b, x, -746.0, 710.0);
    let (r, k) = reduce_ln2(b, &xc);
    let e = exp_scaled(b, &r, &k);
    let nan = is_nan(b, x);
    b.sel(&nan, x, &e)
}

/// 2^x = 2^k e^((x - k) ln2), x - k exact.
fn exp2(b: &mut Body, x: &str) -> V {
    let xc = clamp(b, x, -1080.0, 1030.0);
    let kf = round_small(b, &xc);
    let f = b.sub(&xc, &kf);
    let r = b.mulc(&f, std::f64::consts::LN_2);
    let k = b.fptosi(&kf);
    let e = exp_scaled(b, &r, &k);
    let nan = is_nan(b, x);
    b.sel(&nan, x, &e)
}

/// e^x - 1 = 2^k (e^r - 1) + (2^k - 1), which has no cancellation for |k| <= 58 and is
/// just e^r - 1 for k = 0; above x = 40 the -1 no longer matters, below -40 the result
/// rounds to -1.
fn expm1(b: &mut Body, x: &str) -> V {
    let xc = clamp(b, x, -746.0, 710.0);
    let (r, k) = reduce_ln2(b, &xc);
    let em = expm1_poly(b, &r);
    let kc = clamp_int(b, &k, -60, 60);
    let two_k = pow2(b, &kc);
    let t = b.mul(&two_k, &em);
    let u = b.addc(&two_k, -1.0);
    let moderate = b.add(&t, &u);
    let p = b.addc(&em, 1.0);
    let e = scale2(b, &p, &k);
    let large = b.addc(&e, -1.0);
    let is_large = b.fcmpc("ogt", x, 40.0);
    let res = b.sel(&is_large, &large, &moderate);
    let is_small = b.fcmpc("olt", x, -40.0);
    let res = b.selc(&is_small, -1.0, &res);
    let keep = b.fcmpc("ueq", x, 0.0);
    b.sel(&keep, x, &res)
}

/// An i64 clamped to [lo, hi].
fn clamp_int(b: &mut Body, k: &str, lo: i64, hi: i64) -> V {
    let below = b.icmpc("slt", k, lo);
    let lo = b.i(lo);
    let k = b.sel_t("i64", &below, &lo, k);
    let above = b.icmpc("sgt", &k, hi);
    let hi = b.i(hi);
    b.sel_t("i64", &above, &hi, &k)
}

/// tanh|x| = t / (t + 2) with t = e^(2|x|) - 1 (no cancellation for small |x|); 1 above
/// |x| = 22, where 1 - tanh < 2^-62.
fn tanh(b: &mut Body, x: &str) -> V {
    let ax = abs(b, x);
    let a2 = b.mulc(&ax, 2.0);
    let t = b.call(&format!("{PREFIX}expm1_f64"), &[&a2], "(f64) -> f64");
    let d = b.addc(&t, 2.0);
    let q = b.div(&t, &d);
    let sat = b.fcmpc("ogt", &ax, 22.0);
    let q = b.selc(&sat, 1.0, &q);
    copysign(b, &q, x)
}

// ---------------------------------------------------------------------------------------
// Logarithms

/// x = 2^e (1 + f) with 1 + f in [sqrt(1/2), sqrt(2)), for positive finite x (subnormals
/// scaled by 2^54 first). Returns (e as f64, f); f = m - 1 is exact.
fn log_split(b: &mut Body, x: &str) -> (V, V) {
    let tiny = b.fcmpc("olt", x, f64::MIN_POSITIVE);
    let scaled = b.mulc(x, 2f64.powi(54));
    let xs = b.sel(&tiny, &scaled, x);
    let i = b.bits(&xs);
    let field = b.iopc("shrui", &i, 52);
    let field = b.iopc("andi", &field, 0x7FF);
    let e = b.iopc("subi", &field, 1023);
    let mant = b.iopc("andi", &i, (1i64 << 52) - 1);
    let mbits = b.iopc("ori", &mant, 0x3FF0000000000000);
    let m = b.float_bits(&mbits);
    let big = b.fcmpc("ogt", &m, SQRT2);
    let half = b.mulc(&m, 0.5);
    let m = b.sel(&big, &half, &m);
    let f = b.addc(&m, -1.0);
    let ef = b.sitofp(&e);
    let zero = b.f(0.0);
    let sub = b.selc(&tiny, -54.0, &zero);
    let up = b.selc(&big, 1.0, &zero);
    let adj = b.add(&sub, &up);
    let e = b.add(&ef, &adj);
    (e, f)
}

/// Coefficients 1/3, 1/5, ..., 1/23 of atanh(s)/s - 1 in powers of s^2.
fn atanh_coefs() -> Vec<f64> {
    (1..=11).map(|k| 1.0 / f64::from(2 * k + 1)).collect()
}

/// log(1 + f) for f in [sqrt(1/2) - 1, sqrt(2) - 1] as 2 atanh(s) with s = f / (2 + f),
/// |s| <= 0.1716: the atanh series to s^23 (truncation error < 1e-18 relative).
fn log1p_small(b: &mut Body, f: &str) -> V {
    let den = b.addc(f, 2.0);
    let s = b.div(f, &den);
    let z = b.mul(&s, &s);
    let p = horner(b, &z, &atanh_coefs());
    let sz = b.mul(&s, &z);
    let t = b.mul(&sz, &p);
    let u = b.add(&s, &t);
    b.mulc(&u, 2.0)
}

/// log(inf) = inf, log(+-0) = -inf, log(x < 0) = log(NaN) = NaN.
fn log_specials(b: &mut Body, x: &str, r: &str) -> V {
    let inf = b.fcmpc("oeq", x, INF);
    let r = b.sel(&inf, x, r);
    let zero = b.fcmpc("oeq", x, 0.0);
    let r = b.selc(&zero, -INF, &r);
    let bad = b.fcmpc("ult", x, 0.0);
    b.selc(&bad, f64::NAN, &r)
}

/// log x = e ln2 + log(1 + f), with e ln2 in Cody & Waite's two pieces.
fn log(b: &mut Body, x: &str) -> V {
    let (e, f) = log_split(b, x);
    let l = log1p_small(b, &f);
    let hi = b.mulc(&e, LN2_HI);
    let lo = b.mulc(&e, LN2_LO);
    let t = b.add(&l, &lo);
    let r = b.add(&hi, &t);
    log_specials(b, x, &r)
}

/// log2 x = e + log(1 + f) / ln2 (exact for powers of two).
fn log2(b: &mut Body, x: &str) -> V {
    let (e, f) = log_split(b, x);
    let l = log1p_small(b, &f);
    let t = b.mulc(&l, INV_LN2);
    let r = b.add(&e, &t);
    log_specials(b, x, &r)
}

/// log10 x = e log10(2) + log(1 + f) log10(e).
fn log10(b: &mut Body, x: &str) -> V {
    let (e, f) = log_split(b, x);
    let l = log1p_small(b, &f);
    let hi = b.mulc(&e, LOG10_2_HI);
    let lo = b.mulc(&e, LOG10_2_LO);
    let t = b.mulc(&l, LOG10_E);
    let t = b.add(&t, &lo);
    let r = b.add(&hi, &t);
    log_specials(b, x, &r)
}

/// log(1 + x) = log(u) * x / (u - 1) with u = 1 + x rounded (Kahan's trick: the
/// rounding error of u cancels); x itself where u rounds to 1.
fn log1p(b: &mut Body, x: &str) -> V {
    let u = b.addc(x, 1.0);
    let d = b.addc(&u, -1.0);
    let lu = b.call(&format!("{PREFIX}log_f64"), &[&u], "(f64) -> f64");
    let q = b.div(x, &d);
    let r = b.mul(&lu, &q);
    let same = b.fcmpc("oeq", &d, 0.0);
    let r = b.sel(&same, x, &r);
    let inf = b.fcmpc("oeq", x, INF);
    b.sel(&inf, x, &r)
}

/// log x as hi + lo (about 2^-100 relative) for positive finite x: `log`'s split and
/// series with s = f / (2 + f) carried as a double-double.
fn log_dd(b: &mut Body, x: &str) -> (V, V) {
    let (e, f) = log_split(b, x);
    let den = b.addc(&f, 2.0);
    let s = b.div(&f, &den);
    let d2 = b.addc(&den, -2.0);
    let den_lo = b.sub(&f, &d2);
    let (p, pe) = two_prod(b, &s, &den);
    let r0 = b.sub(&f, &p);
    let r1 = b.sub(&r0, &pe);
    let sd = b.mul(&s, &den_lo);
    let r2 = b.sub(&r1, &sd);
    let s_lo = b.div(&r2, &den);
    let z = b.mul(&s, &s);
    let pz = horner(b, &z, &atanh_coefs());
    let sz = b.mul(&s, &z);
    let tail = b.mul(&sz, &pz);
    let a = b.mulc(&e, LN2_HI);
    let s2 = b.mulc(&s, 2.0);
    let (th, te) = two_sum(b, &a, &s2);
    let lo = b.add(&s_lo, &tail);
    let lo = b.mulc(&lo, 2.0);
    let el = b.mulc(&e, LN2_LO);
    let lo = b.add(&lo, &el);
    let tl = b.add(&te, &lo);
    fast_two_sum(b, &th, &tl)
}

// ---------------------------------------------------------------------------------------
// Power

/// x^y = 2^k e^r from y log|x| computed as a double-double (log_dd, TwoProduct), then the
/// C99 special cases: sign from odd integer y, NaN for a negative base with non-integer
/// y, 0 or inf for zero or infinite operands, 1 for y = 0 or x = 1.
fn powf(b: &mut Body, x: &str, y: &str) -> V {
    let ax = abs(b, x);
    let mag = pow_core(b, &ax, y);
    let mag = pow_limits(b, &ax, y, &mag);
    pow_sign(b, x, y, &mag)
}

/// |x|^y for positive finite |x| (other inputs give garbage that pow_limits replaces).
fn pow_core(b: &mut Body, ax: &str, y: &str) -> V {
    let fin = b.fcmpc("olt", ax, INF);
    let pos = b.fcmpc("ogt", ax, 0.0);
    let ok = b.and1(&fin, &pos);
    let one = b.f(1.0);
    let axc = b.sel(&ok, ax, &one);
    let yc = clamp(b, y, -(2f64.powi(64)), 2f64.powi(64));
    let (lh, ll) = log_dd(b, &axc);
    let (zh, ze) = two_prod(b, &yc, &lh);
    let yl = b.mul(&yc, &ll);
    let zl = b.add(&ze, &yl);
    let zc = clamp(b, &zh, -800.0, 800.0);
    let azh = abs(b, &zh);
    let clamped = b.fcmpc("uge", &azh, 800.0);
    let zl = b.selc(&clamped, 0.0, &zl);
    let (r, k) = reduce_ln2(b, &zc);
    let r = b.add(&r, &zl);
    exp_scaled(b, &r, &k)
}

/// Zero or infinite |x| or infinite y: inf when y log|x| is +inf, else 0; |x| = 1: 1.
fn pow_limits(b: &mut Body, ax: &str, y: &str, mag: &str) -> V {
    let zero = b.fcmpc("oeq", ax, 0.0);
    let xinf = b.fcmpc("oeq", ax, INF);
    let ay = abs(b, y);
    let yinf = b.fcmpc("oeq", &ay, INF);
    let special = b.or1(&zero, &xinf);
    let special = b.or1(&special, &yinf);
    let gt1 = b.fcmpc("ogt", ax, 1.0);
    let ypos = b.fcmpc("ogt", y, 0.0);
    let grows = b.def(&format!("arith.cmpi eq, {gt1}, {ypos} : i1"));
    let (inf, z) = (b.f(INF), b.f(0.0));
    let limit = b.sel(&grows, &inf, &z);
    let mag = b.sel(&special, &limit, mag);
    let unit = b.fcmpc("oeq", ax, 1.0);
    b.selc(&unit, 1.0, &mag)
}

/// The sign and NaN rules of pow on the magnitude |x|^y.
fn pow_sign(b: &mut Body, x: &str, y: &str, mag: &str) -> V {
    let ty = trunc(b, y);
    let yint = b.fcmp("oeq", &ty, y);
    let ay = abs(b, y);
    let exact = b.fcmpc("olt", &ay, TWO52 * 2.0);
    let zero = b.f(0.0);
    let ys = b.sel(&exact, y, &zero);
    let yi = b.fptosi(&ys);
    let bit = b.iopc("andi", &yi, 1);
    let odd = b.icmpc("ne", &bit, 0);
    let odd = b.and1(&odd, &yint);
    let neg = signbit(b, x);
    let flip = b.and1(&neg, &odd);
    let nm = b.neg(mag);
    let res = b.sel(&flip, &nm, mag);
    let xneg = b.fcmpc("olt", x, 0.0);
    let xfin = b.fcmpc("ogt", x, -INF);
    let noint = b.not1(&yint);
    let bad = b.and1(&xneg, &xfin);
    let bad = b.and1(&bad, &noint);
    let res = b.selc(&bad, f64::NAN, &res);
    let (xn, yn) = (is_nan(b, x), is_nan(b, y));
    let nan = b.or1(&xn, &yn);
    let res = b.selc(&nan, f64::NAN, &res);
    let y0 = b.fcmpc("oeq", y, 0.0);
    let x1 = b.fcmpc("oeq", x, 1.0);
    let one = b.or1(&y0, &x1);
    b.selc(&one, 1.0, &res)
}

// ---------------------------------------------------------------------------------------
// Trigonometric functions

#[derive(Clone, Copy, PartialEq, Eq)]
enum Trig {
    Sin,
    Cos,
    Tan,
}

/// Cody & Waite reduction by pi/2 in four pieces: x = k pi/2 + r, |r| <= pi/4 (plus
/// rounding); the products k * PIO2[0..3] are exact for |k| < 2^20 and the first
/// subtraction is exact (Sterbenz), the second is carried with its error (TwoSum).
/// Returns (r, k as i64).
fn reduce_pio2(b: &mut Body, x: &str) -> (V, V) {
    let xc = clamp(b, x, -(2f64.powi(51)), 2f64.powi(51));
    let q = b.mulc(&xc, TWO_OVER_PI);
    let kf = round_small(b, &q);
    let p1 = b.mulc(&kf, PIO2[0]);
    let t1 = b.sub(&xc, &p1);
    let p2 = b.mulc(&kf, -PIO2[1]);
    let (t2, e2) = two_sum(b, &t1, &p2);
    let p3 = b.mulc(&kf, PIO2[2]);
    let p4 = b.mulc(&kf, PIO2[3]);
    let w = b.sub(&e2, &p3);
    let w = b.sub(&w, &p4);
    let r = b.add(&t2, &w);
    let k = b.fptosi(&kf);
    (r, k)
}

/// sin r for |r| <= pi/4: Taylor to r^17 (truncation error < 1e-19 relative).
fn sin_poly(b: &mut Body, r: &str) -> V {
    let c: Vec<f64> = (1..=8).map(|k| sign(k) * inv_factorials(2 * k + 1..=2 * k + 1)[0]).collect();
    let z = b.mul(r, r);
    let p = horner(b, &z, &c);
    let rz = b.mul(r, &z);
    let t = b.mul(&rz, &p);
    b.add(r, &t)
}

/// cos r for |r| <= pi/4: Taylor to r^16 (truncation error < 3e-18).
fn cos_poly(b: &mut Body, r: &str) -> V {
    let c: Vec<f64> = (1..=8).map(|k| sign(k) * inv_factorials(2 * k..=2 * k)[0]).collect();
    let z = b.mul(r, r);
    let p = horner(b, &z, &c);
    let t = b.mul(&z, &p);
    b.addc(&t, 1.0)
}

/// (-1)^k.
fn sign(k: u32) -> f64 {
    if k.is_multiple_of(2) {
        1.0
    } else {
        -1.0
    }
}

/// sin, cos or tan of x = k pi/2 + r from sin r and cos r by the quadrant k mod 4.
/// NaN for infinite x; sin and tan return tiny x itself (keeping -0).
fn sin_cos_tan(b: &mut Body, x: &str, f: Trig) -> V {
    let (r, k) = reduce_pio2(b, x);
    let s = sin_poly(b, &r);
    let c = cos_poly(b, &r);
    let bit0 = b.iopc("andi", &k, 1);
    let odd = b.icmpc("ne", &bit0, 0);
    let v = match f {
        Trig::Sin => {
            let v = b.sel(&odd, &c, &s);
            negate_if_bit1(b, &k, &v)
        }
        Trig::Cos => {
            let v = b.sel(&odd, &s, &c);
            let k1 = b.iopc("addi", &k, 1);
            negate_if_bit1(b, &k1, &v)
        }
        Trig::Tan => {
            let sc = b.div(&s, &c);
            let cs = b.div(&c, &s);
            let ncs = b.neg(&cs);
            b.sel(&odd, &ncs, &sc)
        }
    };
    let ax = abs(b, x);
    let v = if f == Trig::Cos {
        v
    } else {
        let tiny = b.fcmpc("olt", &ax, 2f64.powi(-27));
        b.sel(&tiny, x, &v)
    };
    let finite = b.fcmpc("olt", &ax, INF);
    let nan = b.f(f64::NAN);
    b.sel(&finite, &v, &nan)
}

/// -v where bit 1 of `k` is set, else v.
fn negate_if_bit1(b: &mut Body, k: &str, v: &str) -> V {
    let bit = b.iopc("andi", k, 2);
    let neg = b.icmpc("ne", &bit, 0);
    let nv = b.neg(v);
    b.sel(&neg, &nv, v)
}

/// m pi/8 as a double-double (hi, lo), for the atan breakpoints.
fn pi_eighths(m: u32) -> (f64, f64) {
    let m = f64::from(m);
    let p = m * PI;
    let e = m.mul_add(PI, -p);
    (p / 8.0, (e + m * PI_LO) / 8.0)
}

/// atan of a ratio a in [0, 1] (or the complement pi/2 - atan(a) when `inv`): reduced
/// by atan(a) = j pi/8 + atan((a - tan(j pi/8)) / (1 + a tan(j pi/8))), j in 0..=2, to
/// |t| <= tan(pi/16), then the Taylor series to t^23 (truncation error < 1e-18).
fn atan_core(b: &mut Body, a: &str, inv: &str) -> V {
    let h2 = b.fcmpc("ogt", a, (3.0 * PI / 16.0).tan());
    let h1 = b.fcmpc("ogt", a, (PI / 16.0).tan());
    let zero = b.f(0.0);
    let t1 = b.selc(&h1, f64::from_bits(0x3FDA827999FCEF32), &zero); // tan(pi/8)
    let tj = b.selc(&h2, 1.0, &t1);
    let num = b.sub(a, &tj);
    let at = b.mul(a, &tj);
    let den = b.addc(&at, 1.0);
    let t = b.div(&num, &den);
    let z = b.mul(&t, &t);
    let c: Vec<f64> = (1..=11).map(|k| sign(k) / f64::from(2 * k + 1)).collect();
    let p = horner(b, &z, &c);
    let tz = b.mul(&t, &z);
    let tp = b.mul(&tz, &p);
    let at = b.add(&t, &tp);
    let (i0, i1, i2) = (b.i(0), b.i(1), b.i(2));
    let j = b.sel_t("i64", &h1, &i1, &i0);
    let j = b.sel_t("i64", &h2, &i2, &j);
    let four = b.i(4);
    let four_j = b.iop("subi", &four, &j);
    let m = b.sel_t("i64", inv, &four_j, &j);
    let hi = select_table(b, &m, &(0..=4).map(|m| pi_eighths(m).0).collect::<Vec<_>>());
    let lo = select_table(b, &m, &(0..=4).map(|m| pi_eighths(m).1).collect::<Vec<_>>());
    let nat = b.neg(&at);
    let sat = b.sel(inv, &nat, &at);
    let l = b.add(&lo, &sat);
    b.add(&hi, &l)
}

/// table[m] for an i64 m in 0..table.len(), by a chain of selects.
fn select_table(b: &mut Body, m: &str, table: &[f64]) -> V {
    let mut v = b.f(table[0]);
    for (k, &t) in table.iter().enumerate().skip(1) {
        let is = b.icmpc("eq", m, k as i64);
        v = b.selc(&is, t, &v);
    }
    v
}

/// atan x = +-atan|x|, through pi/2 - atan(1/|x|) above 1.
fn atan(b: &mut Body, x: &str) -> V {
    let ax = abs(b, x);
    let inv = b.fcmpc("ogt", &ax, 1.0);
    let one = b.f(1.0);
    let r = b.div(&one, &ax);
    let a = b.sel(&inv, &r, &ax);
    let v = atan_core(b, &a, &inv);
    copysign(b, &v, x)
}

/// atan2(y, x) from atan(min/max of |y|, |x|), mirrored into x's half plane, with y's
/// sign; 0/0 counts as 0 and inf/inf as 1 (C99 values for zeros and infinities).
fn atan2(b: &mut Body, y: &str, x: &str) -> V {
    let (ay, ax) = (abs(b, y), abs(b, x));
    let inv = b.fcmp("ogt", &ay, &ax);
    let num = b.sel(&inv, &ax, &ay);
    let den = b.sel(&inv, &ay, &ax);
    let a = b.div(&num, &den);
    let y0 = b.fcmpc("oeq", &ay, 0.0);
    let a = b.selc(&y0, 0.0, &a);
    let xi = b.fcmpc("oeq", &ax, INF);
    let yi = b.fcmpc("oeq", &ay, INF);
    let both = b.and1(&xi, &yi);
    let a = b.selc(&both, 1.0, &a);
    let v = atan_core(b, &a, &inv);
    let pi = b.f(PI);
    let w = b.sub(&pi, &v);
    let w = b.addc(&w, PI_LO);
    let left = signbit(b, x);
    let v = b.sel(&left, &w, &v);
    let v = copysign(b, &v, y);
    let (xn, yn) = (is_nan(b, x), is_nan(b, y));
    let nan = b.or1(&xn, &yn);
    b.selc(&nan, f64::NAN, &v)
}

// ---------------------------------------------------------------------------------------
// erf

/// erf is evaluated on 13 pieces of width 1/2 centred at c = j/2 (j = 0..=12, covering
/// |x| < 6.25) by its Taylor polynomial at c to degree ERF_TERMS - 1; erf(x) rounds to
/// +-1 for |x| >= 6.
const ERF_PIECES: usize = 13;
const ERF_TERMS: usize = 18;

/// erf x = +-P_j(|x| - j/2), j = round(2|x|), where P_j is erf's Taylor polynomial at
/// j/2; the coefficients of all pieces are selected by j, then one Horner evaluation.
fn erf(b: &mut Body, x: &str) -> V {
    let ax = abs(b, x);
    let am = clamp(b, &ax, 0.0, 6.2);
    let s = b.mulc(&am, 2.0);
    let s = b.addc(&s, 0.5);
    let j = b.fptosi(&s);
    let jf = b.sitofp(&j);
    let c = b.mulc(&jf, 0.5);
    let d = b.sub(&ax, &c);
    let table: Vec<[f64; ERF_TERMS]> = (0..ERF_PIECES).map(|j| erf_taylor(j as f64 * 0.5)).collect();
    let coefs: Vec<V> =
        (0..ERF_TERMS).map(|n| select_table(b, &j, &table.iter().map(|t| t[n]).collect::<Vec<_>>())).collect();
    let mut acc = coefs[ERF_TERMS - 1].clone();
    for cf in coefs[..ERF_TERMS - 1].iter().rev() {
        let t = b.mul(&d, &acc);
        acc = b.add(&t, cf);
    }
    let sat = b.fcmpc("oge", &ax, 6.0);
    let v = b.selc(&sat, 1.0, &acc);
    copysign(b, &v, x)
}

/// The Taylor coefficients of erf at c, computed when the helper is generated: erf' = g
/// with g(t) = 2/sqrt(pi) e^(-t^2) satisfies g' = -2t g, so g's coefficients at c obey
/// (n+1) g_{n+1} = -2c g_n - 2 g_{n-1}, and erf's are f_0 = erf(c), f_{n+1} = g_n/(n+1).
fn erf_taylor(c: f64) -> [f64; ERF_TERMS] {
    let mut g = [0.0; ERF_TERMS];
    g[0] = FRAC_2_SQRT_PI * (-c * c).exp();
    g[1] = -2.0 * c * g[0];
    for n in 1..ERF_TERMS - 1 {
        g[n + 1] = (-2.0 * c * g[n] - 2.0 * g[n - 1]) / (n + 1) as f64;
    }
    let mut f = [0.0; ERF_TERMS];
    f[0] = erf_at(c);
    for n in 0..ERF_TERMS - 1 {
        f[n + 1] = g[n] / (n + 1) as f64;
    }
    f
}

/// erf(c) at generation time: the Maclaurin series sum (-1)^n c^(2n+1) / (n! (2n+1))
/// below 1.75 (little cancellation there), else 1 - erfc(c) with erfc from its
/// continued fraction e^(-c^2)/sqrt(pi) / (c + (1/2)/(c + 1/(c + (3/2)/(c + ...)))),
/// evaluated backwards from depth 400.
fn erf_at(c: f64) -> f64 {
    if c < 1.75 {
        let (mut sum, mut term, mut n) = (0.0, c, 0.0);
        while term.abs() > 1e-40 {
            sum += term / (2.0 * n + 1.0);
            n += 1.0;
            term *= -c * c / n;
        }
        return FRAC_2_SQRT_PI * sum;
    }
    let mut t = c;
    for k in (1..=400).rev() {
        t = c + (f64::from(k) / 2.0) / t;
    }
    1.0 - FRAC_2_SQRT_PI / 2.0 * (-c * c).exp() / t
}

// ---------------------------------------------------------------------------------------
// Predicates, fpowi and the integer ops

/// isnan, isinf, isfinite in the operand's own type.
fn predicate(b: &mut Body, op: Op, ty: Ty, x: &str) -> V {
    let (inf, ninf) = match ty {
        Ty::F32 => ("0x7F800000 : f32", "0xFF800000 : f32"),
        _ => ("0x7FF0000000000000 : f64", "0xFFF0000000000000 : f64"),
    };
    let (inf, ninf) = (b.constant(inf.into()), b.constant(ninf.into()));
    let cmp = |b: &mut Body, pred: &str, y: &str| b.def(&format!("arith.cmpf {pred}, {x}, {y} : {ty}"));
    match op {
        Op::Isnan => cmp(b, "uno", x),
        Op::Isinf => {
            let p = cmp(b, "oeq", &inf);
            let n = cmp(b, "oeq", &ninf);
            b.or1(&p, &n)
        }
        _ => {
            let p = cmp(b, "olt", &inf);
            let n = cmp(b, "ogt", &ninf);
            b.and1(&p, &n)
        }
    }
}

/// x^n for an integer n: powf(x, n) in f64 (exact conversion of n below 2^53).
fn fpowi(b: &mut Body, ty: Ty, exp: Ty, a: &[V]) -> V {
    let x = if ty == Ty::F32 { b.def(&format!("arith.extf {} : f32 to f64", a[0])) } else { a[0].clone() };
    let n = b.def(&format!("arith.sitofp {} : {exp} to f64", a[1]));
    let r = b.call(&format!("{PREFIX}powf_f64"), &[&x, &n], "(f64, f64) -> f64");
    if ty == Ty::F32 {
        b.def(&format!("arith.truncf {r} : f64 to f32"))
    } else {
        r
    }
}

fn int_body(b: &mut Body, op: Op, ty: Ty, a: &[V]) -> V {
    let zero = b.constant(format!("0 : {ty}"));
    if op == Op::Absi {
        let neg = b.def(&format!("arith.cmpi slt, {}, {zero} : {ty}", a[0]));
        let nx = b.def(&format!("arith.subi {zero}, {} : {ty}", a[0]));
        return b.sel_t(&ty.to_string(), &neg, &nx, &a[0]);
    }
    ipowi(b, ty, &a[0], &a[1])
}

/// Integer power by square-and-multiply over the exponent's bits (an `scf.while` that
/// stops when no bits are left); products wrap around. Negative exponents: 1 for base 1,
/// +-1 for base -1 (by the exponent's parity), else 0.
fn ipowi(b: &mut Body, ty: Ty, base: &str, n: &str) -> V {
    let c = |b: &mut Body, v: i64| b.constant(format!("{v} : {ty}"));
    let (zero, one, mone) = (c(b, 0), c(b, 1), c(b, -1));
    let neg = b.def(&format!("arith.cmpi slt, {n}, {zero} : {ty}"));
    let e0 = b.sel_t(&ty.to_string(), &neg, &zero, n);
    let [w, r, x, e, more, r2, x2, e2, bit, odd, rx, rn, xn, en] = std::array::from_fn(|_| b.fresh());
    let t3 = format!("{ty}, {ty}, {ty}");
    b.line(&format!("{w}:3 = scf.while ({r} = {one}, {x} = {base}, {e} = {e0}) : ({t3}) -> ({t3}) {{"));
    b.line(&format!("  {more} = arith.cmpi ne, {e}, {zero} : {ty}"));
    b.line(&format!("  scf.condition({more}) {r}, {x}, {e} : {t3}"));
    b.line("} do {");
    b.line(&format!("^bb0({r2}: {ty}, {x2}: {ty}, {e2}: {ty}):"));
    b.line(&format!("  {bit} = arith.andi {e2}, {one} : {ty}"));
    b.line(&format!("  {odd} = arith.cmpi ne, {bit}, {zero} : {ty}"));
    b.line(&format!("  {rx} = arith.muli {r2}, {x2} : {ty}"));
    b.line(&format!("  {rn} = arith.select {odd}, {rx}, {r2} : {ty}"));
    b.line(&format!("  {xn} = arith.muli {x2}, {x2} : {ty}"));
    b.line(&format!("  {en} = arith.shrui {e2}, {one} : {ty}"));
    b.line(&format!("  scf.yield {rn}, {xn}, {en} : {t3}"));
    b.line("}");
    let nbit = b.def(&format!("arith.andi {n}, {one} : {ty}"));
    let nodd = b.def(&format!("arith.cmpi ne, {nbit}, {zero} : {ty}"));
    let is1 = b.def(&format!("arith.cmpi eq, {base}, {one} : {ty}"));
    let ism1 = b.def(&format!("arith.cmpi eq, {base}, {mone} : {ty}"));
    let t = ty.to_string();
    let m1 = b.sel_t(&t, &nodd, &mone, &one);
    let nr = b.sel_t(&t, &ism1, &m1, &zero);
    let nr = b.sel_t(&t, &is1, &one, &nr);
    b.sel_t(&t, &neg, &nr, &format!("{w}#0"))
}
