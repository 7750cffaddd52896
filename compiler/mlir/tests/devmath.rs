//! The device math library (src/gpu/devmath.rs): every helper JIT-compiled for the CPU
//! and compared with glibc, and the kernel rewrite (the pass `archc-device-math`,
//! src/passes/device_math.rs) checked through MLIR's NVVM pipeline.
//!
//! Agreement: f64 helpers have a relative error |got - want| / max(|want|, 2^-1022) of
//! at most 1e-14 (0 for the exact ops: rounding, absf, copysign); f32 helpers are within
//! 2 ulp of the f64 reference rounded to f32. NaN must meet NaN, infinities and the sign
//! of zero must match. fmod (for `arith.remf`) must match Rust's `%` (C fmod) bit for bit
//! in both types. `cargo test --test devmath -- --nocapture` prints each op's
//! measured maximum error.
//!
//! The NVVM checks need `mlir-opt-22` on PATH and are skipped (with a message) without it.

#![cfg(feature = "llvm")]

use archc_mlir::gpu::devmath;
use archc_mlir::jit::context;
use archc_mlir::passes::{run_on_text, ArchcPass, Pipeline, RunOptions, Step};
use melior::ir::operation::{OperationLike, OperationPrintingFlags};
use melior::ir::Module;
use melior::pass::PassManager;
use melior::utility::parse_pass_pipeline;
use melior::{Context, ExecutionEngine};
use std::f64::consts::{FRAC_PI_2, PI};
use std::process::Command;

extern "C" {
    /// glibc's erf (libm is linked by std), the reference for `math.erf`.
    fn erf(x: f64) -> f64;
}

const TOL: f64 = 1e-14;
const F32_ULPS: f64 = 2.0;

// ---------------------------------------------------------------------------------------
// JIT

/// Helpers (and a `@t_<helper>` wrapper per named one) compiled for the CPU.
struct Jit {
    engine: ExecutionEngine,
    _context: Context,
}

const CPU_PIPELINE: &str = "builtin.module(convert-scf-to-cf,convert-arith-to-llvm,convert-cf-to-llvm,\
convert-func-to-llvm,reconcile-unrealized-casts)";

/// `func.func @t_<name>` calling the helper; i1 results come back as i32.
fn wrapper(name: &str, args: &[&str], result: &str) -> String {
    let params: Vec<String> = args.iter().enumerate().map(|(i, t)| format!("%a{i}: {t}")).collect();
    let names: Vec<String> = (0..args.len()).map(|i| format!("%a{i}")).collect();
    let call = format!("func.call @{name}({}) : ({}) -> {result}", names.join(", "), args.join(", "));
    let (ret, body) = if result == "i1" {
        ("i32", format!("    %c = {call}\n    %r = arith.extui %c : i1 to i32\n"))
    } else {
        (result, format!("    %r = {call}\n"))
    };
    format!(
        "  func.func @t_{name}({}) -> {ret} attributes {{llvm.emit_c_interface}} {{\n{body}    return %r : {ret}\n  }}\n",
        params.join(", ")
    )
}

impl Jit {
    /// Compiles helpers given as (name, argument types, result type).
    fn new(helpers: &[(&str, &[&str], &str)]) -> Jit {
        let names: Vec<&str> = helpers.iter().map(|h| h.0).collect();
        let mut text = String::from("module {\n");
        text += &devmath::helper_defs(&names).expect("known helpers");
        for (name, args, result) in helpers {
            text += &wrapper(name, args, result);
        }
        text += "}\n";
        let context = context();
        let mut module = Module::parse(&context, &text).unwrap_or_else(|| panic!("helpers do not parse:\n{text}"));
        assert!(module.as_operation().verify(), "helpers do not verify");
        let pm = PassManager::new(&context);
        parse_pass_pipeline(pm.as_operation_pass_manager(), CPU_PIPELINE).expect("pipeline parses");
        pm.run(&mut module).expect("lowering to LLVM");
        let engine = ExecutionEngine::new(&module, 2, &[], false, false);
        Jit { engine, _context: context }
    }

    /// Calls `@t_<name>` with pointers to the arguments, then to the result.
    fn call<R: Default>(&self, name: &str, args: &mut [*mut ()]) -> R {
        let mut out = R::default();
        let mut packed: Vec<*mut ()> = args.to_vec();
        packed.push(ptr(&mut out));
        // SAFETY: the pointers match @t_<name>'s argument and result types and live for
        // the call.
        unsafe { self.engine.invoke_packed(&format!("t_{name}"), &mut packed) }.expect("invoke");
        out
    }

    fn f64s(&self, name: &str, xs: &[f64]) -> f64 {
        let mut xs = xs.to_vec();
        let mut ptrs: Vec<*mut ()> = xs.iter_mut().map(ptr).collect();
        self.call(name, &mut ptrs)
    }

    fn f32s(&self, name: &str, xs: &[f32]) -> f32 {
        let mut xs = xs.to_vec();
        let mut ptrs: Vec<*mut ()> = xs.iter_mut().map(ptr).collect();
        self.call(name, &mut ptrs)
    }
}

/// An argument or result slot for `invoke_packed`.
fn ptr<T>(x: &mut T) -> *mut () {
    x as *mut T as *mut ()
}

// ---------------------------------------------------------------------------------------
// Errors

/// Relative error, with NaN, infinities and signed zeros required to match.
fn rel_err(got: f64, want: f64) -> f64 {
    if want.is_nan() || got.is_nan() {
        return if want.is_nan() && got.is_nan() { 0.0 } else { f64::INFINITY };
    }
    if want.is_infinite() || got.is_infinite() || (want == 0.0 && got == 0.0) {
        let same = got == want && got.is_sign_negative() == want.is_sign_negative();
        return if same { 0.0 } else { f64::INFINITY };
    }
    (got - want).abs() / want.abs().max(f64::MIN_POSITIVE)
}

/// Distance in ulps between two f32s (same special-value rules).
fn ulp_err(got: f32, want: f32) -> f64 {
    if want.is_nan() || got.is_nan() || want.is_infinite() || got.is_infinite() || (want == 0.0 && got == 0.0) {
        return rel_err(got as f64, want as f64);
    }
    let ord = |x: f32| {
        let i = x.to_bits() as i32 as i64;
        if i < 0 {
            i32::MIN as i64 - i
        } else {
            i
        }
    };
    (ord(got) - ord(want)).abs() as f64
}

/// The largest error over a set of points, with where it happened.
#[derive(Default)]
struct Worst {
    err: f64,
    at: String,
    count: usize,
}

impl Worst {
    fn add(&mut self, err: f64, at: impl FnOnce() -> String) {
        self.count += 1;
        if err > self.err || (err.is_nan() && !self.err.is_nan()) {
            self.err = err;
            self.at = at();
        }
    }

    fn check(&self, what: &str, tol: f64, unit: &str) {
        eprintln!("{what:>16}: max error {:.3e} {unit} over {} points{}", self.err, self.count, self.at);
        assert!(self.err <= tol, "{what}: error {:e} {unit} > {tol:e}{}", self.err, self.at);
    }
}

// ---------------------------------------------------------------------------------------
// Inputs (deterministic)

struct Rng(u64);

impl Rng {
    /// SplitMix64.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E3779B97F4A7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58476D1CE4E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D049BB133111EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn uniform(&mut self, lo: f64, hi: f64, n: usize) -> Vec<f64> {
        (0..n).map(|_| lo + (hi - lo) * self.unit()).collect()
    }

    /// Magnitudes log-uniform in [2^lo, 2^hi], both signs.
    fn log_uniform(&mut self, lo: f64, hi: f64, n: usize) -> Vec<f64> {
        (0..n)
            .map(|i| {
                let m = (lo + (hi - lo) * self.unit()).exp2();
                if i % 2 == 0 {
                    m
                } else {
                    -m
                }
            })
            .collect()
    }
}

fn specials() -> Vec<f64> {
    let mut v = vec![
        0.0,
        1.0,
        0.5,
        2.0,
        3.0,
        10.0,
        100.0,
        0.1,
        PI,
        FRAC_PI_2,
        PI / 4.0,
        1e-20,
        1e-300,
        f64::MIN_POSITIVE,
        5e-324,
        1e-310,
        f64::MAX,
        f64::EPSILON,
        1.0 + f64::EPSILON,
        1.0 - f64::EPSILON / 2.0,
        0.49999999999999994,
        2.5,
        1e5,
        4503599627370497.0,
        f64::INFINITY,
    ];
    v.extend(v.clone().iter().map(|x| -x));
    v.push(f64::NAN);
    v
}

fn points(rng: &mut Rng, parts: &[(f64, f64, usize)], logs: &[(f64, f64, usize)]) -> Vec<f64> {
    let mut v = specials();
    for &(lo, hi, n) in parts {
        v.extend(rng.uniform(lo, hi, n));
    }
    for &(lo, hi, n) in logs {
        v.extend(rng.log_uniform(lo, hi, n));
    }
    v
}

// ---------------------------------------------------------------------------------------
// Checking ops

/// Runs `archc_dm_<op>_f64` and `_f32` on `inputs` against `reference`.
fn check_unary(op: &str, reference: impl Fn(f64) -> f64, inputs: &[f64], tol: f64) {
    let (n64, n32) = (format!("archc_dm_{op}_f64"), format!("archc_dm_{op}_f32"));
    let jit = Jit::new(&[(&n64, &["f64"], "f64"), (&n32, &["f32"], "f32")]);
    let mut worst = Worst::default();
    for &x in inputs {
        worst.add(rel_err(jit.f64s(&n64, &[x]), reference(x)), || format!(" at x = {x:e}"));
    }
    worst.check(&format!("{op} f64"), tol, "rel");
    let mut worst = Worst::default();
    for &x in inputs {
        let x = x as f32;
        let want = reference(x as f64) as f32;
        worst.add(ulp_err(jit.f32s(&n32, &[x]), want), || format!(" at x = {x:e}"));
    }
    worst.check(&format!("{op} f32"), if tol == 0.0 { 0.0 } else { F32_ULPS }, "ulp");
}

/// Like `check_unary` for two- and three-operand ops.
fn check_nary(op: &str, reference: impl Fn(&[f64]) -> f64, inputs: &[Vec<f64>], tol: f64) {
    let arity = inputs[0].len();
    let (n64, n32) = (format!("archc_dm_{op}_f64"), format!("archc_dm_{op}_f32"));
    let (a64, a32) = (vec!["f64"; arity], vec!["f32"; arity]);
    let jit = Jit::new(&[(&n64, &a64, "f64"), (&n32, &a32, "f32")]);
    let mut worst = Worst::default();
    for xs in inputs {
        worst.add(rel_err(jit.f64s(&n64, xs), reference(xs)), || format!(" at {xs:?}"));
    }
    worst.check(&format!("{op} f64"), tol, "rel");
    let mut worst = Worst::default();
    for xs in inputs {
        let xs32: Vec<f32> = xs.iter().map(|&x| x as f32).collect();
        let wide: Vec<f64> = xs32.iter().map(|&x| x as f64).collect();
        let want = reference(&wide) as f32;
        worst.add(ulp_err(jit.f32s(&n32, &xs32), want), || format!(" at {xs32:?}"));
    }
    worst.check(&format!("{op} f32"), if tol == 0.0 { 0.0 } else { F32_ULPS }, "ulp");
}

/// Every pair of `a` and `b`.
fn grid(a: &[f64], b: &[f64]) -> Vec<Vec<f64>> {
    a.iter().flat_map(|&x| b.iter().map(move |&y| vec![x, y])).collect()
}

fn zip(a: &[f64], b: &[f64]) -> Vec<Vec<f64>> {
    a.iter().zip(b).map(|(&x, &y)| vec![x, y]).collect()
}

#[test]
fn exp_family() {
    let mut rng = Rng(1);
    let xs = points(&mut rng, &[(-750.0, 720.0, 3000), (-2.0, 2.0, 1000)], &[(-1000.0, 10.0, 1000)]);
    check_unary("exp", f64::exp, &xs, TOL);
    let xs = points(&mut rng, &[(-1100.0, 1030.0, 3000), (-2.0, 2.0, 1000)], &[(-1000.0, 10.0, 1000)]);
    check_unary("exp2", f64::exp2, &xs, TOL);
    let xs = points(&mut rng, &[(-50.0, 50.0, 2000), (-1.0, 1.0, 2000), (-750.0, 720.0, 500)], &[(-1074.0, 5.0, 2000)]);
    check_unary("expm1", f64::exp_m1, &xs, TOL);
}

#[test]
fn log_family() {
    let mut rng = Rng(2);
    let logs = [(-1074.0, 1024.0, 3000), (-60.0, 60.0, 1000)];
    let xs = points(&mut rng, &[(0.0, 3.0, 2000), (0.5, 1.5, 1000)], &logs);
    check_unary("log", f64::ln, &xs, TOL);
    check_unary("log2", f64::log2, &xs, TOL);
    check_unary("log10", f64::log10, &xs, TOL);
    let xs = points(&mut rng, &[(-1.0, 1.0, 2000), (-1.0, 100.0, 1000)], &[(-1074.0, 0.0, 2000), (0.0, 1024.0, 500)]);
    check_unary("log1p", f64::ln_1p, &xs, TOL);
}

/// Beyond 2^20 pi/2 the argument reduction of sin, cos and tan is no longer exact (no
/// Payne-Hanek); results there must only stay in range.
const TRIG_EXACT: f64 = 1_647_099.0;

#[test]
fn trigonometric() {
    let mut rng = Rng(3);
    let mut xs =
        points(&mut rng, &[(-10.0, 10.0, 2000), (-1e5, 1e5, 2000), (-1.6e6, 1.6e6, 1000)], &[(-1074.0, 3.0, 1000)]);
    // Near multiples of pi/2, where the reduction cancels most.
    xs.extend((0..2000).map(|_| ((rng.next() % 130_000) as f64 - 65_000.0) * FRAC_PI_2));
    xs.extend((1..200).map(|k| k as f64 * PI));
    let (near, far): (Vec<f64>, Vec<f64>) = xs.into_iter().partition(|x| x.abs() <= TRIG_EXACT || x.is_nan());
    check_unary("sin", f64::sin, &near, TOL);
    check_unary("cos", f64::cos, &near, TOL);
    check_unary("tan", f64::tan, &near, TOL);
    let mut far = far;
    far.extend(rng.log_uniform(21.0, 1024.0, 1000));
    trig_far(&far);
    let xs = points(&mut rng, &[(-25.0, 25.0, 2000), (-1.0, 1.0, 1000)], &[(-1074.0, 10.0, 1000)]);
    check_unary("tanh", f64::tanh, &xs, TOL);
    let xs = points(&mut rng, &[(-3.0, 3.0, 3000)], &[(-1074.0, 1024.0, 2000)]);
    check_unary("atan", f64::atan, &xs, TOL);
}

/// Far out, sin and cos stay within [-1, 1] and tan is not NaN; prints the error seen up
/// to 1e9 for information.
fn trig_far(xs: &[f64]) {
    let helpers = ["archc_dm_sin_f64", "archc_dm_cos_f64", "archc_dm_tan_f64"];
    let jit = Jit::new(&helpers.map(|h| (h, &["f64"][..], "f64")));
    let mut worst = Worst::default();
    for &x in xs {
        let (s, c, t) = (jit.f64s(helpers[0], &[x]), jit.f64s(helpers[1], &[x]), jit.f64s(helpers[2], &[x]));
        assert!(s.abs() <= 1.0 && c.abs() <= 1.0 && !t.is_nan() || x.is_infinite(), "sin/cos/tan({x}) = {s}, {c}, {t}");
        if x.abs() < 1e9 {
            worst.add(rel_err(s, x.sin()).max(rel_err(c, x.cos())), || format!(" at x = {x:e}"));
        }
    }
    worst.check("sin/cos < 1e9", f64::INFINITY, "rel (not checked)");
}

#[test]
fn atan2() {
    let mut rng = Rng(4);
    let s = specials();
    let mut pairs = grid(&s, &s);
    pairs.extend(zip(&rng.uniform(-10.0, 10.0, 3000), &rng.uniform(-10.0, 10.0, 3000)));
    pairs.extend(zip(&rng.log_uniform(-1074.0, 1024.0, 3000), &rng.log_uniform(-1074.0, 1024.0, 3000)));
    check_nary("atan2", |a| a[0].atan2(a[1]), &pairs, TOL);
}

#[test]
fn erf_saturates_and_matches_glibc() {
    let mut rng = Rng(5);
    let xs = points(&mut rng, &[(-7.0, 7.0, 4000), (-1.0, 1.0, 1000)], &[(-1074.0, 0.0, 1000)]);
    // SAFETY: glibc's erf is a pure function.
    check_unary("erf", |x| unsafe { erf(x) }, &xs, TOL);
}

#[test]
fn powf() {
    let mut rng = Rng(6);
    let s = specials();
    let mut pairs = grid(&s, &s);
    let xs = rng.log_uniform(-1074.0, 1024.0, 3000).iter().map(|x| x.abs()).collect::<Vec<_>>();
    pairs.extend(zip(&xs, &rng.uniform(-10.0, 10.0, 3000)));
    pairs.extend(zip(&rng.uniform(0.0, 3.0, 3000), &rng.uniform(-300.0, 300.0, 3000)));
    pairs.extend(zip(&rng.uniform(0.999, 1.001, 1000), &rng.log_uniform(0.0, 60.0, 1000)));
    // Negative bases with integer exponents (signed results) and with fractions (NaN).
    let ys: Vec<f64> = (0..2000).map(|i| (i % 61) as f64 - 30.0).collect();
    pairs.extend(zip(&rng.uniform(-20.0, 0.0, 2000), &ys));
    pairs.extend(zip(&rng.uniform(-20.0, 0.0, 500), &rng.uniform(-5.0, 5.0, 500)));
    check_nary("powf", |a| a[0].powf(a[1]), &pairs, TOL);
}

#[test]
fn roots() {
    let mut rng = Rng(7);
    let xs = points(&mut rng, &[(0.0, 10.0, 2000)], &[(-1074.0, 1024.0, 4000)]);
    check_unary("sqrt", f64::sqrt, &xs, TOL);
    check_unary("rsqrt", |x| 1.0 / x.sqrt(), &xs, TOL);
    check_unary("cbrt", f64::cbrt, &xs, TOL);
}

#[test]
fn exact_ops() {
    let mut rng = Rng(8);
    let mut xs = points(&mut rng, &[(-10.0, 10.0, 2000), (-1e6, 1e6, 1000)], &[(-1074.0, 1024.0, 2000)]);
    xs.extend((-40..40).map(|i| i as f64 * 0.5));
    xs.extend([4503599627370495.5, -4503599627370495.5, 2251799813685248.5, 0.5000000000000001]);
    check_unary("absf", f64::abs, &xs, 0.0);
    check_unary("floor", f64::floor, &xs, 0.0);
    check_unary("ceil", f64::ceil, &xs, 0.0);
    check_unary("round", f64::round, &xs, 0.0);
    check_unary("roundeven", f64::round_ties_even, &xs, 0.0);
    check_unary("trunc", f64::trunc, &xs, 0.0);
    let s = specials();
    check_nary("copysign", |a| a[0].copysign(a[1]), &grid(&s, &s), 0.0);
}

/// Bit-exact equality, any NaN matching any NaN.
fn same_bits64(got: f64, want: f64) -> bool {
    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
}

fn same_bits32(got: f32, want: f32) -> bool {
    got.to_bits() == want.to_bits() || (got.is_nan() && want.is_nan())
}

/// A random double: random bits with the exponent field uniform over 0..=2046 (every
/// binade, subnormals included, no inf/NaN), either sign.
fn any_finite(rng: &mut Rng) -> f64 {
    let bits = rng.next();
    let field = (bits >> 52) % 2047;
    f64::from_bits((bits & 0x800F_FFFF_FFFF_FFFF) | (field << 52))
}

/// The f32 counterpart of `any_finite` (exponent field 0..=254).
fn any_finite32(rng: &mut Rng) -> f32 {
    let bits = rng.next() as u32;
    let field = (bits >> 23) % 255;
    f32::from_bits((bits & 0x807F_FFFF) | (field << 23))
}

/// `arith.remf`'s helpers against Rust's `%` (which is C's fmod) bit for bit: special
/// values, random operands over the whole exponent range (both orders of magnitude, up
/// to the largest exponent difference), subnormals, near-equal exponents, exact
/// multiples and small integers.
#[test]
fn fmod_is_exact() {
    let mut rng = Rng(11);
    let (n64, n32) = ("archc_dm_fmod_f64", "archc_dm_fmod_f32");
    let jit = Jit::new(&[(n64, &["f64", "f64"], "f64"), (n32, &["f32", "f32"], "f32")]);
    let mut s = specials();
    s.extend([f64::MAX, 2.0 * f64::MIN_POSITIVE, f64::MIN_POSITIVE - 5e-324, 3.0 * 5e-324, 7.0, 1e308, 1e-308]);
    s.extend(s.clone().iter().map(|x| -x));
    let mut pairs = grid(&s, &s);
    for _ in 0..20_000 {
        pairs.push(vec![any_finite(&mut rng), any_finite(&mut rng)]);
    }
    // Subnormal divisors and dividends.
    let sub = |rng: &mut Rng| f64::from_bits(rng.next() & 0x800F_FFFF_FFFF_FFFF);
    for _ in 0..5_000 {
        pairs.push(vec![any_finite(&mut rng), sub(&mut rng)]);
        pairs.push(vec![sub(&mut rng), sub(&mut rng)]);
        pairs.push(vec![sub(&mut rng), any_finite(&mut rng)]);
    }
    // Close exponents (quotients up to ~2^40) and huge differences.
    let xs = rng.log_uniform(-1074.0, 1023.0, 10_000);
    let ks = rng.log_uniform(0.0, 40.0, 10_000);
    pairs.extend(xs.iter().zip(&ks).map(|(&y, &k)| vec![y * k, y]));
    pairs.extend(zip(&rng.log_uniform(900.0, 1023.9, 2000), &rng.log_uniform(-1074.0, -1000.0, 2000)));
    // Exact multiples (result +-0) and integers, e.g. -7 % 3 = -1.
    for _ in 0..2000 {
        let y = any_finite(&mut rng);
        let k = (rng.next() % 1_000_000) as f64;
        pairs.push(vec![y * k, y]);
    }
    for a in -20..=20 {
        for b in -7..=7 {
            pairs.push(vec![a as f64, b as f64]);
        }
    }
    for p in &pairs {
        let (x, y) = (p[0], p[1]);
        let (got, want) = (jit.f64s(n64, &[x, y]), x % y);
        assert!(same_bits64(got, want), "fmod f64({x:e}, {y:e}) = {got:e}, want {want:e}");
    }
    eprintln!("      fmod f64: bit-exact over {} points", pairs.len());

    let mut s32: Vec<f32> = s.iter().map(|&x| x as f32).collect();
    s32.extend([f32::MAX, f32::MIN_POSITIVE, 1e-45, 3e-45, f32::MIN_POSITIVE - 1e-45, 7.0, 1e38, -1e38]);
    let mut pairs32: Vec<(f32, f32)> = s32.iter().flat_map(|&x| s32.iter().map(move |&y| (x, y))).collect();
    let sub32 = |rng: &mut Rng| f32::from_bits(rng.next() as u32 & 0x807F_FFFF);
    for _ in 0..20_000 {
        pairs32.push((any_finite32(&mut rng), any_finite32(&mut rng)));
    }
    for _ in 0..5_000 {
        pairs32.push((any_finite32(&mut rng), sub32(&mut rng)));
        pairs32.push((sub32(&mut rng), sub32(&mut rng)));
        let y = any_finite32(&mut rng);
        pairs32.push((y * (rng.next() % 100_000) as f32, y));
    }
    for &(x, y) in &pairs32 {
        let (got, want) = (jit.f32s(n32, &[x, y]), x % y);
        assert!(same_bits32(got, want), "fmod f32({x:e}, {y:e}) = {got:e}, want {want:e}");
    }
    eprintln!("      fmod f32: bit-exact over {} points", pairs32.len());
}

#[test]
fn fma() {
    let mut rng = Rng(9);
    let n = 5000;
    let (a, b, c) = (rng.log_uniform(-300.0, 300.0, n), rng.uniform(-4.0, 4.0, n), rng.log_uniform(-300.0, 300.0, n));
    let mut triples: Vec<Vec<f64>> = (0..n).map(|i| vec![a[i], b[i], c[i]]).collect();
    let s = [0.0, -0.0, 1.0, -1.0, f64::INFINITY, f64::NAN, f64::MAX, 3.0];
    for x in s {
        for y in s {
            triples.extend(s.iter().map(|&z| vec![x, y, z]));
        }
    }
    check_nary("fma", |a| a[0].mul_add(a[1], a[2]), &triples, TOL);
}

#[test]
fn fpowi_matches_powf() {
    let mut rng = Rng(10);
    let names = ["archc_dm_fpowi_f64_i32", "archc_dm_fpowi_f64_i64", "archc_dm_fpowi_f32_i32"];
    let jit = Jit::new(&[
        (names[0], &["f64", "i32"], "f64"),
        (names[1], &["f64", "i64"], "f64"),
        (names[2], &["f32", "i32"], "f32"),
    ]);
    let mut worst = Worst::default();
    for (x, n) in points(&mut rng, &[(-3.0, 3.0, 2000)], &[]).into_iter().zip((0..).map(|i: i32| i % 41 - 20)) {
        let want = x.powf(n as f64);
        let (mut x1, mut n1, mut n2) = (x, n, n as i64);
        let g1: f64 = jit.call(names[0], &mut [ptr(&mut x1), ptr(&mut n1)]);
        let g2: f64 = jit.call(names[1], &mut [ptr(&mut x1), ptr(&mut n2)]);
        let mut x32 = x as f32;
        let g3: f32 = jit.call(names[2], &mut [ptr(&mut x32), ptr(&mut n1)]);
        worst.add(rel_err(g1, want).max(rel_err(g2, want)), || format!(" at {x:e}^{n}"));
        assert!(ulp_err(g3, (x32 as f64).powf(n as f64) as f32) <= F32_ULPS, "fpowi f32 at {x32}^{n}: {g3}");
    }
    worst.check("fpowi f64", TOL, "rel");
}

/// C-like integer power in `bits`-bit two's complement: wrapping products; negative
/// exponents give 0 except for bases +-1.
fn ipow_ref(b: i64, n: i64, bits: u32) -> i64 {
    let wrap = |v: i64| (v << (64 - bits)) >> (64 - bits);
    match (n < 0, b) {
        (false, _) => {
            let (mut r, mut x, mut e) = (1i64, b, n as u64);
            while e != 0 {
                if e & 1 == 1 {
                    r = wrap(r.wrapping_mul(x));
                }
                x = wrap(x.wrapping_mul(x));
                e >>= 1;
            }
            r
        }
        (true, 1) => 1,
        (true, -1) => {
            if n % 2 == 0 {
                1
            } else {
                -1
            }
        }
        (true, _) => 0,
    }
}

#[test]
fn integer_ops() {
    let jit = Jit::new(&[
        ("archc_dm_ipowi_i64", &["i64", "i64"], "i64"),
        ("archc_dm_ipowi_i32", &["i32", "i32"], "i32"),
        ("archc_dm_absi_i64", &["i64"], "i64"),
        ("archc_dm_absi_i32", &["i32"], "i32"),
    ]);
    let bases = [0i64, 1, -1, 2, -2, 3, -3, 7, 10, -10, 12345, i64::MAX, i64::MIN];
    let exps = [0i64, 1, 2, 3, 5, 10, 31, 32, 62, 63, 64, 65, 1000, -1, -2, -3, i64::MIN, i64::MAX];
    for &b in &bases {
        let (mut b64, mut b32) = (b, b as i32);
        for &n in &exps {
            let (mut n64, mut n32) = (n, n as i32);
            let g: i64 = jit.call("archc_dm_ipowi_i64", &mut [ptr(&mut b64), ptr(&mut n64)]);
            assert_eq!(g, ipow_ref(b, n, 64), "ipowi i64 {b}^{n}");
            let g: i32 = jit.call("archc_dm_ipowi_i32", &mut [ptr(&mut b32), ptr(&mut n32)]);
            assert_eq!(g as i64, ipow_ref(b32 as i64, n32 as i64, 32), "ipowi i32 {b32}^{n32}");
        }
        let g: i64 = jit.call("archc_dm_absi_i64", &mut [ptr(&mut b64)]);
        assert_eq!(g, b.wrapping_abs(), "absi {b}");
        let g: i32 = jit.call("archc_dm_absi_i32", &mut [ptr(&mut b32)]);
        assert_eq!(g, b32.wrapping_abs(), "absi {b32}");
    }
}

#[test]
fn predicates() {
    let ops = ["isnan", "isinf", "isfinite"];
    let helpers: Vec<(String, &[&str], &str)> = ops
        .iter()
        .flat_map(|op| {
            [(format!("archc_dm_{op}_f64"), &["f64"][..], "i1"), (format!("archc_dm_{op}_f32"), &["f32"][..], "i1")]
        })
        .collect();
    let refs: Vec<(&str, &[&str], &str)> = helpers.iter().map(|(n, a, r)| (n.as_str(), *a, *r)).collect();
    let jit = Jit::new(&refs);
    for x in specials() {
        let want = [x.is_nan(), x.is_infinite(), x.is_finite()];
        for (op, want) in ops.iter().zip(want) {
            let mut x64 = x;
            let g: i32 = jit.call(&format!("archc_dm_{op}_f64"), &mut [ptr(&mut x64)]);
            assert_eq!(g != 0, want, "{op} f64 {x}");
        }
        let x32 = x as f32;
        let want = [x32.is_nan(), x32.is_infinite(), x32.is_finite()];
        for (op, want) in ops.iter().zip(want) {
            let mut x32 = x32;
            let g: i32 = jit.call(&format!("archc_dm_{op}_f32"), &mut [ptr(&mut x32)]);
            assert_eq!(g != 0, want, "{op} f32 {x32}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// The kernel rewrite

/// A module as MLIR prints it after `gpu-kernel-outlining` (a linalg.generic with math
/// ops, mapped to blocks), with math in the host function too.
const OUTLINED: &str = r#"#map = affine_map<(d0)[s0, s1] -> ((d0 - s0) ceildiv s1)>
#map1 = affine_map<(d0)[s0, s1] -> (d0 * s0 + s1)>
module attributes {gpu.container_module} {
  func.func @f(%arg0: memref<16xf32>, %arg1: memref<16xf64>, %arg2: memref<16xi64>) -> f64 {
    %c0 = arith.constant 0 : index
    %c16 = arith.constant 16 : index
    %c1 = arith.constant 1 : index
    %0 = affine.apply #map(%c16)[%c0, %c1]
    gpu.launch_func  @f_kernel::@f_kernel blocks in (%0, %c1, %c1) threads in (%c1, %c1, %c1)  args(%c1 : index, %c0 : index, %arg0 : memref<16xf32>, %arg1 : memref<16xf64>, %arg2 : memref<16xi64>)
    %cst = arith.constant 1.000000e+00 : f64
    %1 = math.exp %cst : f64
    return %1 : f64
  }
  gpu.module @f_kernel {
    gpu.func @f_kernel(%arg0: index, %arg1: index, %arg2: memref<16xf32>, %arg3: memref<16xf64>, %arg4: memref<16xi64>) kernel attributes {known_block_size = array<i32: 1, 1, 1>} {
      %block_id_x = gpu.block_id  x
      %0 = affine.apply #map1(%block_id_x)[%arg0, %arg1]
      %1 = memref.load %arg2[%0] : memref<16xf32>
      %2 = memref.load %arg3[%0] : memref<16xf64>
      %3 = memref.load %arg4[%0] : memref<16xi64>
      %5 = math.exp %1 : f32
      %6 = math.powf %2, %2 fastmath<contract> : f64
      %7 = math.fma %1, %5, %1 : f32
      %8 = math.ipowi %3, %3 : i64
      %10 = math.sqrt %2 : f64
      %11 = math.rsqrt %1 : f32
      %13 = math.atan2 %2, %10 : f64
      %14 = math.copysign %1, %11 : f32
      %15 = math.tanh %1 fastmath<fast> : f32
      %16 = arith.addf %6, %13 : f64
      %18 = arith.addf %7, %14 : f32
      %19 = arith.addf %18, %15 : f32
      %20 = arith.remf %16, %2 : f64
      %21 = arith.remf %19, %1 fastmath<fast> : f32 loc("k.py":3:7)
      memref.store %21, %arg2[%0] : memref<16xf32>
      memref.store %20, %arg3[%0] : memref<16xf64>
      memref.store %8, %arg4[%0] : memref<16xi64>
      gpu.return
    }
  }
}
"#;

/// The brief's NVVM lowering, after `lower-affine` for the outlined index arithmetic.
const NVVM_PIPELINE: &str = "builtin.module(lower-affine,nvvm-attach-target{chip=sm_90 features=+ptx81 O=3},\
gpu.module(convert-scf-to-cf,convert-gpu-to-nvvm,reconcile-unrealized-casts),gpu-module-to-binary{format=isa})";

/// The lines outside `gpu.module` regions (by indentation, enough for printed modules).
fn host_lines(text: &str) -> Vec<&str> {
    let mut inside = None;
    let mut out = Vec::new();
    for line in text.lines() {
        let indent = line.len() - line.trim_start().len();
        match inside {
            Some(i) if line.trim() == "}" && indent == i => inside = None,
            Some(_) => {}
            None if line.trim_start().starts_with("gpu.module @") => inside = Some(indent),
            None => out.push(line),
        }
    }
    out
}

/// Runs the NVVM pipeline on `text` with mlir-opt-22; None (after a message) without it.
fn mlir_opt_to_ptx(text: &str, tag: &str) -> Option<String> {
    if Command::new("mlir-opt-22").arg("--version").output().is_err() {
        eprintln!("mlir-opt-22 not found: skipping the NVVM check");
        return None;
    }
    let path = std::env::temp_dir().join(format!("archc-devmath-{tag}-{}.mlir", std::process::id()));
    std::fs::write(&path, text).expect("write temp file");
    let out = Command::new("mlir-opt-22").arg(&path).arg(format!("--pass-pipeline={NVVM_PIPELINE}")).output();
    let _ = std::fs::remove_file(&path);
    let out = out.expect("run mlir-opt-22");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "mlir-opt-22 failed:\n{stderr}");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// `text` after the pass `archc-device-math`, as MLIR prints it.
fn lower(text: &str) -> Result<String, String> {
    Ok(run_on_text(&ArchcPass::DeviceMath, text)?)
}

/// `text` parsed and printed unchanged (the form [`lower`]'s output is compared with).
fn printed(text: &str) -> String {
    let context = context();
    let module = Module::parse(&context, text).expect("input parses");
    module.as_operation().to_string()
}

#[test]
fn rewrites_kernel_math_and_leaves_host_alone() {
    let lowered = lower(OUTLINED).expect("lowering");
    assert_eq!(host_lines(&lowered), host_lines(&printed(OUTLINED)), "host code changed");
    assert!(lowered.contains("    %1 = math.exp %cst : f64\n"), "host math rewritten");
    let kernel = lowered.split("gpu.module @f_kernel").nth(1).unwrap();
    let kernel_ops: Vec<&str> =
        kernel.lines().filter(|l| l.contains(" = math.") || l.contains(" = arith.remf")).collect();
    assert!(kernel_ops.is_empty(), "math left in the kernel: {kernel_ops:?}");
    for call in [
        " = func.call @archc_dm_exp_f32(%1) : (f32) -> f32\n",
        " = func.call @archc_dm_powf_f64(%2, %2) : (f64, f64) -> f64\n",
        " = func.call @archc_dm_ipowi_i64(%3, %3) : (i64, i64) -> i64\n",
        " = func.call @archc_dm_fmod_f64(",
        " = func.call @archc_dm_fmod_f32(",
        " = func.call @archc_dm_tanh_f32(%1) : (f32) -> f32\n",
    ] {
        assert!(kernel.contains(call), "no `{call}` in {kernel}");
    }
    // Helpers (and what they call) are defined once, inside the module, before its end.
    for name in
        ["exp_f32", "exp_f64", "tanh_f32", "tanh_f64", "expm1_f64", "ipowi_i64", "powf_f64", "fmod_f32", "fmod_f64"]
    {
        let def = format!("    func.func private @archc_dm_{name}(");
        assert_eq!(lowered.matches(&def).count(), 1, "{name} defined once");
        assert!(kernel.find(&def).unwrap() < kernel.find("\n  }\n").unwrap(), "{name} inside the module");
    }
    let context = context();
    assert!(
        Module::parse(&context, &lowered).is_some_and(|m| m.as_operation().verify()),
        "rewritten module is invalid"
    );
    assert_eq!(lower(&lowered).as_deref(), Ok(lowered.as_str()), "not idempotent");
    if let Some(ptx) = mlir_opt_to_ptx(&lowered, "outlined") {
        assert!(ptx.contains("gpu.binary @f_kernel"), "no binary:\n{ptx}");
        assert!(!ptx.contains("__nv_"), "libdevice call left:\n{ptx}");
    }
}

/// A call keeps the location of the op it replaces.
#[test]
fn calls_keep_the_op_location() {
    let context = context();
    let mut module = Module::parse(&context, OUTLINED).expect("input parses");
    let pipeline = Pipeline::new("device-math", [Step::Archc(ArchcPass::DeviceMath)]);
    pipeline.run(&context, &mut module, &RunOptions::default()).expect("lowering");
    let flags = OperationPrintingFlags::new().enable_debug_info(true, false);
    let text = module.as_operation().to_string_with_flags(flags).expect("printing");
    let line = text.lines().find(|l| l.contains("@archc_dm_fmod_f32(") && l.contains("func.call")).expect("call");
    // The printer writes locations as aliases (`loc(#loc38)`, defined at the end).
    let alias = line.rsplit("loc(").next().unwrap_or_default().trim_end_matches(')');
    assert!(text.contains(&format!("{alias} = loc(\"k.py\":3:7)")), "{line}");
}

/// The control for the checks above: without the rewrite, `arith.remf` in a kernel does
/// become a libdevice call (`__nv_fmod`, `__nv_fmodf`), while `arith.maximumf` and
/// `minimumf` (which the emitter uses) stay native for f32 and f64; with it, none is left.
#[test]
fn remf_needs_the_rewrite_and_maximumf_does_not() {
    let module = "module attributes {gpu.container_module} {\n  gpu.module @rem {\n    \
gpu.func @k(%p: memref<4xf32>, %q: memref<4xf64>) kernel {\n      %c0 = arith.constant 0 : index\n      \
%c1 = arith.constant 1 : index\n      %c2 = arith.constant 2 : index\n      %c3 = arith.constant 3 : index\n      \
%a = memref.load %p[%c0] : memref<4xf32>\n      %b = memref.load %p[%c1] : memref<4xf32>\n      \
%x = memref.load %q[%c0] : memref<4xf64>\n      %y = memref.load %q[%c1] : memref<4xf64>\n      \
%0 = arith.remf %a, %b : f32\n      %1 = arith.remf %x, %y fastmath<contract> : f64\n      \
%2 = arith.maximumf %a, %b : f32\n      %3 = arith.minimumf %x, %y : f64\n      \
%4 = arith.maximumf %x, %y : f64\n      %5 = arith.minimumf %a, %b : f32\n      \
memref.store %0, %p[%c2] : memref<4xf32>\n      memref.store %1, %q[%c2] : memref<4xf64>\n      \
memref.store %2, %p[%c3] : memref<4xf32>\n      memref.store %3, %q[%c3] : memref<4xf64>\n      \
memref.store %4, %q[%c1] : memref<4xf64>\n      memref.store %5, %p[%c1] : memref<4xf32>\n      \
gpu.return\n    }\n  }\n}\n";
    let lowered = lower(module).expect("lowering");
    assert!(!lowered.contains("arith.remf"), "{lowered}");
    assert!(lowered.contains(" = func.call @archc_dm_fmod_f64(%"), "{lowered}");
    assert!(lowered.contains(") : (f64, f64) -> f64\n"), "{lowered}");
    assert_eq!(lowered.matches("arith.maximumf").count(), 2, "maximumf is left alone");
    let Some(plain) = mlir_opt_to_ptx(module, "rem-plain") else { return };
    assert!(plain.contains("__nv_fmodf,") && plain.contains("__nv_fmod,"), "remf did not need libdevice:\n{plain}");
    let ptx = mlir_opt_to_ptx(&lowered, "rem").expect("mlir-opt-22 ran before");
    assert!(!ptx.contains("__nv_"), "libdevice call left:\n{ptx}");
    for native in ["max.NaN.f32", "min.NaN.f32", "max.f64", "min.f64"] {
        assert!(ptx.contains(native), "no {native} in:\n{ptx}");
    }
}

/// One kernel applying every supported op at every type, rewritten, then compiled to PTX.
#[test]
fn every_helper_compiles_to_ptx_without_libdevice() {
    let mut body = String::new();
    let mut n = 0;
    let mut op = |body: &mut String, text: String| {
        n += 1;
        *body += &format!("      %r{n} = {text}\n");
    };
    for name in devmath::helper_names() {
        let parts: Vec<&str> = name.trim_start_matches("archc_dm_").split('_').collect();
        let args = match parts[..] {
            [_, t, e] => format!("%{t}, %{e} : {t}, {e}"),
            ["atan2" | "powf" | "copysign" | "fmod" | "ipowi", t] => format!("%{t}, %{t} : {t}"),
            ["fma", t] => format!("%{t}, %{t}, %{t} : {t}"),
            [_, t] => format!("%{t} : {t}"),
            _ => panic!("odd helper name {name}"),
        };
        let source = devmath::helper_op(&name).expect("helper replaces an op");
        op(&mut body, format!("{source} {args}"));
    }
    let module = format!(
        "module attributes {{gpu.container_module}} {{\n  gpu.module @all {{\n    gpu.func @k(%f32: f32, %f64: f64, %i32: i32, %i64: i64) kernel {{\n{body}      gpu.return\n    }}\n  }}\n}}\n"
    );
    assert!(module.contains("arith.remf %f32, %f32 : f32") && module.contains("arith.remf %f64, %f64 : f64"));
    let lowered = lower(&module).expect("lowering");
    assert!(!lowered.contains(" = math.") && !lowered.contains(" = arith.remf"), "math left");
    if let Some(ptx) = mlir_opt_to_ptx(&lowered, "all") {
        assert!(!ptx.contains("__nv_"), "libdevice call left");
        assert!(ptx.contains("gpu.binary @all"), "no binary");
    }
}

#[test]
fn unsupported_ops_are_errors_naming_the_op() {
    let module = |op: &str| {
        format!(
            "module {{\n  gpu.module @g {{\n    func.func @f(%x: f32, %v: vector<4xf32>, %h: f16) {{\n      %0 = {op}\n      return\n    }}\n  }}\n}}\n"
        )
    };
    let (name, args, result) = devmath::helper_for("fpowi", &["f32", "i64"]).unwrap();
    assert_eq!(
        (name.as_str(), args, result.as_str()),
        ("archc_dm_fpowi_f32_i64", vec!["f32".into(), "i64".into()], "f32")
    );
    let err = lower(&module("math.sinh %x : f32")).unwrap_err();
    assert!(err.contains("`math.sinh` on f32: no device implementation"), "{err}");
    let err = lower(&module("math.exp %v : vector<4xf32>")).unwrap_err();
    assert!(err.contains("`math.exp` on vector<4xf32>: unsupported type"), "{err}");
    let err = lower(&module("math.exp %h : f16")).unwrap_err();
    assert!(err.contains("`math.exp` on f16: unsupported type"), "{err}");
    let (name, args, result) = devmath::helper_for("arith.remf", &["f64"]).unwrap();
    assert_eq!((name.as_str(), args, result.as_str()), ("archc_dm_fmod_f64", vec!["f64".into(), "f64".into()], "f64"));
    assert_eq!(devmath::helper_op("archc_dm_fmod_f32").as_deref(), Some("arith.remf"));
    assert_eq!(devmath::helper_op("archc_dm_exp_f32").as_deref(), Some("math.exp"));
    let err = lower(&module("arith.remf %v, %v : vector<4xf32>")).unwrap_err();
    assert!(err.contains("`arith.remf` on vector<4xf32>"), "{err}");
    let err = lower(&module("arith.remf %h, %h : f16")).unwrap_err();
    assert!(err.contains("`arith.remf` on f16"), "{err}");
    // Outside gpu.modules nothing is checked or changed.
    let host = "module {\n  func.func @h(%x: f32) -> f32 {\n    %0 = math.sinh %x : f32\n    %1 = arith.remf %0, %x : f32\n    return %1 : f32\n  }\n}\n";
    assert_eq!(lower(host).as_deref(), Ok(printed(host).as_str()));
}
