//! The vector loops of the Cranelift tier (`lower/simd.rs`) against the interpreter, at
//! lengths around the vector widths (0, 1, 3, 4, 5, 7, 8, 17 and a long 1027: empty
//! loops, tails only, whole vectors, vectors and tails), on inputs with NaN, infinities
//! and signed zeros, with splat (broadcast scalar) and broadcast operands, and through
//! one compile per program (the length is a size symbol read at run time).
//!
//! Every program is compiled twice, with vectors and without (`Options::simd`), and both
//! must agree with the interpreter: elementwise results and max/min reductions bit for
//! bit (NaN as NaN, zeros with their sign), sums within the tier's scaled error (their
//! lanes add in another order), integers and bools exactly. The vector compile must
//! contain vector instructions and the scalar one none, so both paths are the ones
//! tested.

use archc_clif::{compile_with, emit_clif_with, Options};
use archc_compiler::tir::testutil::FuncBuilder;
use archc_compiler::tir::{verify, BinaryOp, DType, Op, Program, ReduceOp, UnaryOp, ValueId};
use archc_runtime::{Data, Executor, Interpreter, Tensor};

const LENGTHS: [usize; 9] = [0, 1, 3, 4, 5, 7, 8, 17, 1027];

/// A program `main` built op by op, every named value a result.
struct Main {
    b: FuncBuilder,
    sigs: Program,
    outs: Vec<(ValueId, String)>,
    args: usize,
}

impl Main {
    fn new() -> Main {
        Main { b: FuncBuilder::new("main"), sigs: Program::default(), outs: vec![], args: 0 }
    }

    fn arg(&mut self, t: &str) -> ValueId {
        self.args += 1;
        self.b.arg(t, &format!("a{}", self.args - 1))
    }

    fn op(&mut self, op: Op, args: &[ValueId]) -> ValueId {
        self.b.op(&self.sigs, op, args)
    }

    fn op_as(&mut self, op: Op, args: &[ValueId], t: &str) -> ValueId {
        self.b.op_as(&self.sigs, op, args, t)
    }

    fn emit(&mut self, op: Op, args: &[ValueId], name: impl Into<String>) -> ValueId {
        let v = self.op(op, args);
        self.outs.push((v, name.into()));
        v
    }

    fn program(self, name: &str) -> Program {
        let outs: Vec<(ValueId, &str)> = self.outs.iter().map(|(v, n)| (*v, n.as_str())).collect();
        let p = Program { name: name.into(), params: vec![], funcs: vec![self.b.finish(&outs)] };
        verify(&p).unwrap_or_else(|e| panic!("{name} does not verify: {e:?}"));
        p
    }
}

/// Deterministic values: mostly uniform in [-2, 2), with NaN, infinities, signed zeros,
/// ones and tiny values mixed in (`specials` of them in every 8 on average).
struct Gen(u64);

impl Gen {
    fn unit(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }

    fn value(&mut self, specials: f64) -> f64 {
        const SPECIAL: [f64; 9] = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0, -0.0, 1.0, -1.0, 1e-40, -3e38];
        if self.unit() < specials / 8.0 {
            SPECIAL[(self.unit() * SPECIAL.len() as f64) as usize]
        } else {
            self.unit() * 4.0 - 2.0
        }
    }

    fn f32s(&mut self, shape: &[usize], specials: f64) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|_| self.value(specials) as f32).collect())
    }

    fn f64s(&mut self, shape: &[usize], specials: f64) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f64(shape, (0..n).map(|_| self.value(specials)).collect())
    }

    fn i64s(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        let big = [i64::MAX, i64::MIN, -1, 0, 1 << 40];
        Tensor::from_i64(
            shape,
            (0..n)
                .map(|_| {
                    let u = self.unit();
                    if u < 0.2 {
                        big[(self.unit() * big.len() as f64) as usize]
                    } else {
                        (u * 2000.0) as i64 - 1000
                    }
                })
                .collect(),
        )
    }

    fn bools(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_bool(shape, (0..n).map(|_| self.unit() < 0.5).collect())
    }
}

/// How a result must agree with the interpreter's.
#[derive(Clone, Copy, PartialEq)]
enum Agree {
    /// Same bits (any NaN for NaN).
    Bits,
    /// Scaled error below 1e-5 (NaN for NaN, equal infinities).
    Scaled,
}

fn float_at(d: &Data, k: usize) -> f64 {
    match d {
        Data::F32(v) => v[k] as f64,
        Data::F64(v) => v[k],
        _ => unreachable!("floats only"),
    }
}

fn bits_at(d: &Data, k: usize) -> u64 {
    match d {
        Data::F32(v) => v[k].to_bits() as u64,
        Data::F64(v) => v[k].to_bits(),
        _ => unreachable!("floats only"),
    }
}

/// Every disagreement of `got` with `want`.
fn disagreements(label: &str, got: &Tensor, want: &Tensor, agree: Agree) -> Vec<String> {
    if got.dtype() != want.dtype() || got.shape() != want.shape() {
        return vec![format!("{label}: {} but the interpreter gives {}", got.type_string(), want.type_string())];
    }
    if matches!(want.dtype(), DType::I64 | DType::Bool) {
        return if got.data == want.data {
            vec![]
        } else {
            vec![format!("{label}: differs\n got: {got}\nwant: {want}")]
        };
    }
    let n = want.numel();
    let scale = (0..n).map(|k| float_at(&want.data, k).abs()).filter(|v| v.is_finite()).fold(1e-6, f64::max);
    let mut out = Vec::new();
    for k in 0..n {
        let (g, w) = (float_at(&got.data, k), float_at(&want.data, k));
        let ok = if w.is_nan() || g.is_nan() {
            w.is_nan() && g.is_nan()
        } else if agree == Agree::Bits || w.is_infinite() {
            bits_at(&got.data, k) == bits_at(&want.data, k)
        } else {
            (g - w).abs() / scale < 1e-5
        };
        if !ok {
            out.push(format!(
                "{label}[{k}]: got {g:e} ({:#x}), the interpreter {w:e} ({:#x})",
                bits_at(&got.data, k),
                bits_at(&want.data, k)
            ));
        }
    }
    out
}

/// Runs `main` of `p` on each input set in the interpreter and in both compiles of the
/// tier (each compiled once); `agree(name)` says how a result must agree. A run the
/// interpreter refuses must be refused by both compiles.
fn check(p: &Program, runs: &[Vec<Tensor>], agree: impl Fn(&str) -> Agree) {
    let f = p.func("main").expect("main");
    let simd = emit_clif_with(p, "main", Options { simd: true }).expect("lowers");
    let scalar = emit_clif_with(p, "main", Options { simd: false }).expect("lowers");
    let vector_types = ["f32x4", "f64x2", "i64x2", "i32x4"];
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert!(vector_types.iter().any(|t| simd.contains(t)), "{}: no vector code with vectors on", p.name);
    }
    assert!(!vector_types.iter().any(|t| scalar.contains(t)), "{}: vector code with vectors off", p.name);
    let mut interp = Interpreter::new(p);
    let compiled = [("vectors", true), ("scalar", false)]
        .map(|(what, simd)| (what, compile_with(p, "main", Options { simd }).expect("compiles")));
    let mut failures = Vec::new();
    for inputs in runs {
        let size = inputs[0].shape().to_vec();
        let want = interp.run_func("main", inputs, 0);
        for (what, c) in &compiled {
            let refs: Vec<&Tensor> = inputs.iter().collect();
            let label = format!("{} ({what}, first input of shape {size:?})", p.name);
            match (&want, c.run(&refs, &[], 0)) {
                (Ok(want), Ok(got)) => {
                    for (i, (g, w)) in got.iter().zip(want).enumerate() {
                        let name = &f.result_names[i];
                        failures.extend(disagreements(&format!("{label} `{name}`"), g, w, agree(name)));
                    }
                }
                (Err(_), Err(_)) => {}
                (Ok(_), Err(e)) => failures.push(format!("{label}: refused ({e}) where the interpreter runs")),
                (Err(e), Ok(_)) => failures.push(format!("{label}: runs where the interpreter refuses ({e})")),
            }
        }
    }
    assert!(failures.is_empty(), "{} mismatch(es):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn elementwise_vector_loops_agree_bit_for_bit() {
    use BinaryOp::*;
    use UnaryOp::*;
    let mut m = Main::new();
    let (x, y, c) = (m.arg("f32[N]"), m.arg("f32[N]"), m.arg("bool[N]"));
    let (xd, yd) = (m.arg("f64[N]"), m.arg("f64[N]"));
    let (i, j) = (m.arg("i64[N]"), m.arg("i64[N]"));
    let row = m.arg("f32[N]");
    let grid = m.arg("f32[3, N]");
    for u in [Neg, Abs, Sqrt, Rsqrt, Relu, Sign, Floor, Exp] {
        m.emit(Op::Unary(u), &[x], format!("{u:?} f32"));
        m.emit(Op::Unary(u), &[xd], format!("{u:?} f64"));
    }
    for b in [Add, Sub, Mul, Div, Max, Min, Pow, Eq, Ne, Lt, Le, Gt, Ge] {
        m.emit(Op::Binary(b), &[x, y], format!("{b:?} f32"));
        m.emit(Op::Binary(b), &[xd, yd], format!("{b:?} f64"));
    }
    for b in [Add, Sub, Mul, Max, Lt] {
        m.emit(Op::Binary(b), &[i, j], format!("{b:?} i64"));
    }
    m.emit(Op::Unary(Neg), &[i], "Neg i64");
    // Splat operands (broadcast scalars) on either side, a splat condition, splat bools.
    let two = m.op_as(Op::Const(2.5), &[], "f32[]");
    let two = m.op_as(Op::Broadcast, &[two], "f32[N]");
    let zero = m.op_as(Op::Const(-0.0), &[], "f64[]");
    let zero = m.op_as(Op::Broadcast, &[zero], "f64[N]");
    let yes = m.op_as(Op::Const(1.0), &[], "bool[]");
    let yes = m.op_as(Op::Broadcast, &[yes], "bool[N]");
    let neg = m.op_as(Op::Const(-1.0), &[], "i64[]");
    let neg = m.op_as(Op::Broadcast, &[neg], "i64[N]");
    m.emit(Op::Binary(Sub), &[two, x], "2.5 - x");
    m.emit(Op::Binary(Div), &[x, two], "x / 2.5");
    m.emit(Op::Binary(Max), &[xd, zero], "max(xd, -0)");
    m.emit(Op::Binary(Min), &[zero, xd], "min(-0, xd)");
    m.emit(Op::Binary(Add), &[i, neg], "i - 1");
    m.emit(Op::Binary(Ge), &[x, two], "x >= 2.5");
    m.emit(Op::Select, &[c, x, y], "where(c, x, y)");
    m.emit(Op::Select, &[c, x, two], "where(c, x, 2.5)");
    m.emit(Op::Select, &[yes, x, y], "where(true, x, y)");
    m.emit(Op::Select, &[c, xd, yd], "where(c, xd, yd)");
    // A relu gradient as autodiff writes it: where(x > 0, g, 0).
    let pos = m.op(Op::Binary(Gt), &[x, two]);
    let zf = m.op_as(Op::Const(0.0), &[], "f32[]");
    let zf = m.op_as(Op::Broadcast, &[zf], "f32[N]");
    m.emit(Op::Select, &[pos, y, zf], "where(x > 2.5, y, 0)");
    for (from, to) in [(x, "bool"), (c, "f32"), (x, "f64"), (xd, "f32"), (c, "f64"), (i, "f32"), (x, "i64")] {
        let t = format!("{to}[N]");
        let v = m.op_as(Op::Cast, &[from], &t);
        m.outs.push((v, format!("cast {} -> {to}", m.b.type_of(from))));
    }
    // A broadcast (copied) row and a chain of vector ops over the broadcast grid.
    let b = m.op_as(Op::Broadcast, &[row], "f32[3, N]");
    let s = m.emit(Op::Binary(Add), &[grid, b], "grid + row");
    let r = m.emit(Op::Unary(Relu), &[s], "relu(grid + row)");
    m.emit(Op::Binary(Mul), &[r, s], "relu(grid + row) * (grid + row)");
    let p = m.program("elementwise");
    let mut g = Gen(7);
    let runs: Vec<Vec<Tensor>> = LENGTHS
        .iter()
        .map(|&n| {
            vec![
                g.f32s(&[n], 3.0),
                g.f32s(&[n], 3.0),
                g.bools(&[n]),
                g.f64s(&[n], 3.0),
                g.f64s(&[n], 3.0),
                g.i64s(&[n]),
                g.i64s(&[n]),
                g.f32s(&[n], 2.0),
                g.f32s(&[3, n], 2.0),
            ]
        })
        .collect();
    check(&p, &runs, |_| Agree::Bits);
}

/// Rows of `n` floats for max/min: random rows with specials, then rows of zeros with
/// signs mixed (the first zero's sign decides), rows whose extreme is a zero beside
/// negative (positive) values, NaN at the first, a middle and the last position.
fn extreme_rows(g: &mut Gen, n: usize, f64_: bool) -> Tensor {
    let mut rows: Vec<Vec<f64>> = (0..4).map(|_| (0..n).map(|_| g.value(1.0)).collect()).collect();
    for k in 0..n.min(6) {
        rows.push((0..n).map(|i| if (i + k) % 3 == 0 { 0.0 } else { -0.0 }).collect());
    }
    rows.push(
        (0..n)
            .map(|i| {
                if i % 5 == 2 {
                    0.0
                } else if i % 5 == 4 {
                    -0.0
                } else {
                    -1.0 - g.unit()
                }
            })
            .collect(),
    );
    rows.push(
        (0..n)
            .map(|i| {
                if i % 5 == 3 {
                    -0.0
                } else if i % 5 == 1 {
                    0.0
                } else {
                    1.0 + g.unit()
                }
            })
            .collect(),
    );
    for at in [0, n / 2, n.saturating_sub(1)] {
        rows.push((0..n).map(|i| if i == at { f64::NAN } else { g.value(0.0) }).collect());
    }
    rows.push((0..n).map(|i| if i % 2 == 0 { f64::NEG_INFINITY } else { f64::INFINITY }).collect());
    let flat: Vec<f64> = rows.concat();
    let shape = [rows.len(), n];
    if f64_ {
        Tensor::from_f64(&shape, flat)
    } else {
        Tensor::from_f32(&shape, flat.iter().map(|&v| v as f32).collect())
    }
}

#[test]
fn max_and_min_reductions_agree_bit_for_bit() {
    let mut m = Main::new();
    // 14 rows: 4 random, up to 6 zero rows (fewer for short rows), 2 zero extremes, 3
    // with NaN, 1 of infinities; the row count is a symbol too.
    let x = m.arg("f32[R, N]");
    let xd = m.arg("f64[R, N]");
    let i = m.arg("i64[R, N]");
    for op in [ReduceOp::Max, ReduceOp::Min] {
        for (v, t) in [(x, "f32"), (xd, "f64"), (i, "i64")] {
            m.emit(Op::Reduce { op, axes: vec![1], keepdim: false }, &[v], format!("{op:?} rows {t}"));
            m.emit(Op::Reduce { op, axes: vec![0], keepdim: true }, &[v], format!("{op:?} columns {t}"));
            m.emit(Op::Reduce { op, axes: vec![0, 1], keepdim: false }, &[v], format!("{op:?} all {t}"));
        }
    }
    let p = m.program("extremes");
    let mut g = Gen(11);
    let runs: Vec<Vec<Tensor>> = LENGTHS
        .iter()
        .map(|&n| {
            let (a, b) = (extreme_rows(&mut g, n, false), extreme_rows(&mut g, n, true));
            let ints = g.i64s(a.shape());
            vec![a, b, ints]
        })
        .collect();
    // Length 0: both refuse (a max over nothing), as the interpreter.
    check(&p, &runs, |_| Agree::Bits);
}

#[test]
fn sums_and_means_of_long_and_short_rows() {
    let mut m = Main::new();
    let x = m.arg("f32[3, N]");
    let xd = m.arg("f64[3, N]");
    let i = m.arg("i64[3, N]");
    let big = m.arg("f32[N, 5]");
    for op in [ReduceOp::Sum, ReduceOp::Mean] {
        for (v, t) in [(x, "f32"), (xd, "f64")] {
            m.emit(Op::Reduce { op, axes: vec![1], keepdim: false }, &[v], format!("{op:?} rows {t}"));
            m.emit(Op::Reduce { op, axes: vec![0], keepdim: false }, &[v], format!("{op:?} columns {t}"));
            m.emit(Op::Reduce { op, axes: vec![1, 0], keepdim: true }, &[v], format!("{op:?} all {t}"));
        }
        m.emit(Op::Reduce { op, axes: vec![0], keepdim: false }, &[big], format!("{op:?} over N (f32, permuted)"));
    }
    m.emit(Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdim: false }, &[i], "Sum rows i64");
    m.emit(Op::Reduce { op: ReduceOp::Sum, axes: vec![0, 1], keepdim: false }, &[i], "Sum all i64");
    let p = m.program("sums");
    let mut g = Gen(5);
    let mut runs: Vec<Vec<Tensor>> = LENGTHS
        .iter()
        .map(|&n| vec![g.f32s(&[3, n], 0.0), g.f64s(&[3, n], 0.0), g.i64s(&[3, n]), g.f32s(&[n, 5], 0.0)])
        .collect();
    // Rows with NaN and infinities (a NaN or an infinity sum whatever the order).
    runs.extend(
        [5, 17, 1027].map(|n| vec![g.f32s(&[3, n], 2.0), g.f64s(&[3, n], 2.0), g.i64s(&[3, n]), g.f32s(&[n, 5], 2.0)]),
    );
    // A long row of large and tiny terms that cancel (f32 sums accumulate in f64).
    let n = 4099;
    let wide: Vec<f32> = (0..3 * n).map(|k| if k % 2 == 0 { 1e8 + (k % 7) as f32 } else { -1e8 }).collect();
    runs.push(vec![Tensor::from_f32(&[3, n], wide), g.f64s(&[3, n], 0.0), g.i64s(&[3, n]), g.f32s(&[n, 5], 0.0)]);
    check(&p, &runs, |name| if name.contains("i64") { Agree::Bits } else { Agree::Scaled });
}

#[test]
fn vector_code_is_deterministic_and_guards_its_tail() {
    // The vector lowering of an elementwise op and a reduction has a vector loop and a
    // scalar tail; the text is the same on every emission.
    let mut m = Main::new();
    let x = m.arg("f32[N]");
    let y = m.arg("f32[N]");
    let s = m.emit(Op::Binary(BinaryOp::Mul), &[x, y], "x * y");
    m.emit(Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdim: false }, &[s], "sum");
    let p = m.program("dot");
    let text = emit_clif_with(&p, "main", Options { simd: true }).expect("lowers");
    assert_eq!(text, emit_clif_with(&p, "main", Options { simd: true }).expect("lowers"));
    if cfg!(any(target_arch = "x86_64", target_arch = "aarch64")) {
        assert!(text.contains("load.f32x4"), "{text}");
        assert!(text.contains("fvpromote_low"), "{text}");
        assert_eq!(text.matches(" = fmul ").count(), 2, "a vector and a scalar multiplication: {text}");
    }
}
