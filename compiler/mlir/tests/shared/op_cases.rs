// The backend-independent part of the op-by-op differential tests, included by
// `compiler/mlir/tests/ops.rs` and `compiler/clif/tests/ops.rs`. The including file
// defines what differs between backends: `BACKEND` (its name in messages), `tol()`,
// `backend()` (a fresh executor), `run_checked()` (a run whose refusals are errors),
// `SHORT_SLICE` (the words of a slice past a shorter input's end), `long_ffts()` (whether
// the 65,536-point transform is run), `check_long_reductions()` and `check_long_ffts()`
// (how the backend lowers those cases).

/// `max |a - b| / max(max |b|, 1e-6)`, the scale taken over `want`'s finite elements.
fn scaled_error(got: &Tensor, want: &Tensor) -> f64 {
    let d = got.compare(want).expect("shapes checked first");
    let scale = (0..want.numel()).map(|i| want.data.get_c128(i).norm()).filter(|v| v.is_finite()).fold(0.0, f64::max);
    d.max_abs / scale.max(1e-6)
}

/// Every disagreement between the backend's outputs and the interpreter's.
fn mismatches(label: &str, names: &[String], got: &[Tensor], want: &[Tensor]) -> Vec<String> {
    if got.len() != want.len() {
        return vec![format!("{label}: {} outputs, the interpreter gives {}", got.len(), want.len())];
    }
    let mut out = Vec::new();
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let name = names.get(i).map(String::as_str).unwrap_or("?");
        let what = format!("{label}: output {i} `{name}`");
        if g.dtype() != w.dtype() || g.shape() != w.shape() {
            out.push(format!("{what}: {} but the interpreter gives {}", g.type_string(), w.type_string()));
            continue;
        }
        match w.dtype() {
            DType::I64 | DType::Bool => {
                if g.data != w.data {
                    let at = (0..w.numel()).find(|&k| g.data.get_c128(k) != w.data.get_c128(k)).unwrap_or(0);
                    out.push(format!("{what}: differs at flat index {at}\n   got: {g}\n  want: {w}"));
                }
            }
            _ => {
                let e = scaled_error(g, w);
                if e.is_nan() || e >= tol() {
                    out.push(format!("{what}: scaled error {e:.3e}\n   got: {g}\n  want: {w}"));
                }
            }
        }
    }
    out
}

/// Runs `func` of `p` on `inputs` once per seed in the interpreter and in the backend
/// under test (one compile; parameters of both initialised from seed 0) and asserts that
/// every output agrees. Returns the interpreter's outputs of the last seed.
fn check(p: &Program, func: &str, inputs: &[Tensor], seeds: &[u64]) -> Vec<Tensor> {
    check_edges(p, func, inputs, seeds, Edges::Full)
}

/// [`check`] with the edge inputs of `edges`.
fn check_edges(p: &Program, func: &str, inputs: &[Tensor], seeds: &[u64], edges: Edges) -> Vec<Tensor> {
    let mut interp = Interpreter::new(p);
    interp.init_params(0).expect("interpreter parameters");
    let mut jit = backend(p, 0);
    check_with(p, func, (inputs, edges), seeds, &mut interp, jit.as_mut())
}

fn check_with(
    p: &Program,
    func: &str,
    (inputs, edges): (&[Tensor], Edges),
    seeds: &[u64],
    interp: &mut Interpreter,
    jit: &mut dyn Executor,
) -> Vec<Tensor> {
    let names = p.func(func).expect("function").result_names.clone();
    assert!(!names.is_empty(), "{}/@{func} has no results to compare", p.name);
    let mut failures = Vec::new();
    let mut last = Vec::new();
    for &seed in seeds {
        let want =
            interp.run_func(func, inputs, seed).unwrap_or_else(|e| panic!("{}/@{func}: interpreter: {e}", p.name));
        let got = jit.run_func(func, inputs, seed).unwrap_or_else(|e| panic!("{}/@{func}: {BACKEND}: {e}", p.name));
        failures.extend(mismatches(&format!("{}/@{func} (seed {seed})", p.name), &names, &got, &want));
        last = want;
    }
    let edge = edge_inputs(inputs, edges);
    if edge.iter().zip(inputs).any(|(e, x)| e != x) {
        failures.extend(edge_mismatches(p, func, &names, &edge, seeds[0], interp, jit));
    }
    assert!(failures.is_empty(), "{} mismatch(es):\n{}", failures.len(), failures.join("\n"));
    last
}

/// The outputs' disagreements on the edge inputs `edge`; when the interpreter refuses
/// them, the backend must refuse them too.
fn edge_mismatches(
    p: &Program,
    func: &str,
    names: &[String],
    edge: &[Tensor],
    seed: u64,
    interp: &mut Interpreter,
    jit: &mut dyn Executor,
) -> Vec<String> {
    let label = format!("{}/@{func} (edge inputs)", p.name);
    match (interp.run_func(func, edge, seed), run_checked(jit, func, edge, seed)) {
        (Ok(want), Ok(got)) => mismatches(&label, names, &got, &want),
        (Err(_), Err(_)) => vec![],
        (Ok(_), Err(e)) => vec![format!("{label}: the {BACKEND} refuses: {e}")],
        (Err(e), Ok(_)) => vec![format!("{label}: the interpreter refuses ({e}) but the {BACKEND} runs")],
    }
}

/// Which edge values a comparison's second pass draws its float inputs from.
#[derive(Copy, Clone, Debug, PartialEq)]
enum Edges {
    /// Every value of [`EDGE`]: for ops whose results do not depend on an order of
    /// summation (elementwise, casts, movement, reductions).
    Full,
    /// No infinities or values past 1e15: for sums of products (contractions, windows,
    /// transforms), where `inf - inf` or an f32 product past the largest float would make
    /// NaN or infinity depend on the order and precision of the sum (the interpreter sums
    /// in f64), and for complex arithmetic, whose handling of infinities is
    /// implementation-defined (C99 Annex G).
    Finite,
    /// [`Edges::Finite`] without NaN: for fast transforms, whose butterflies carry a NaN
    /// into some outputs only (which ones depends on the algorithm; a DFT matrix carries
    /// it into all).
    Numbers,
    /// No magnitude past 20 besides NaN: for chains of ops (control flow, gradient
    /// programs), where an ulp of difference in a huge intermediate value moves `sin` or
    /// `tanh` of it anywhere.
    Moderate,
}

/// Edge values for float inputs: signed zeros, tiny and huge magnitudes (1e-30, the
/// smallest normal and subnormal f32, 1e15, 1e30, the largest f32), infinities, NaN, and
/// plain values between them.
const EDGE: [f64; 22] = [
    0.0,
    -0.0,
    1e-30,
    -1e-30,
    1e30,
    -1e30,
    f64::INFINITY,
    f64::NEG_INFINITY,
    f64::NAN,
    1.1754943508222875e-38,
    -1e-45,
    3.4028234663852886e38,
    -3.4028234663852886e38,
    1.0,
    -1.0,
    0.5,
    -2.5,
    1e-8,
    -1e-8,
    20.0,
    1e15,
    -1e15,
];

impl Edges {
    fn values(self) -> Vec<f64> {
        let keep = |v: &f64| match self {
            Edges::Full => true,
            Edges::Finite => !(v.abs() > 1e15),
            Edges::Numbers => v.abs() <= 1e15,
            Edges::Moderate => !(v.abs() > 20.0),
        };
        EDGE.iter().copied().filter(keep).collect()
    }
}

/// `inputs` with every float and complex tensor filled from `edges`' values (each input
/// starting at another offset, so operands meet in many combinations; complex ones never
/// from [`Edges::Full`]); integer and bool inputs (indices, conditions) are kept.
fn edge_inputs(inputs: &[Tensor], edges: Edges) -> Vec<Tensor> {
    let cycle = |values: Vec<f64>| {
        let mut at = 0usize;
        move || {
            at += 7;
            values[at % values.len()]
        }
    };
    let mut real = cycle(edges.values());
    let mut complex = cycle(if edges == Edges::Full { Edges::Finite.values() } else { edges.values() });
    inputs
        .iter()
        .enumerate()
        .map(|(k, t)| {
            let n = t.numel();
            for _ in 0..k {
                real();
            }
            match t.dtype() {
                DType::F32 => Tensor::from_f32(t.shape(), (0..n).map(|_| real() as f32).collect()),
                DType::F64 => Tensor::from_f64(t.shape(), (0..n).map(|_| real()).collect()),
                DType::C64 => {
                    let v = (0..n).map(|_| C64 { re: complex() as f32, im: complex() as f32 }).collect();
                    Tensor::from_c64(t.shape(), v)
                }
                DType::I64 | DType::Bool => t.clone(),
            }
        })
        .collect()
}

#[test]
fn the_comparison_catches_mismatches() {
    let count = |got: Vec<Tensor>, want: Tensor| mismatches("t", &["y".to_string()], &got, &[want]).len();
    let w = Tensor::from_f32(&[3], vec![1.0, -2.0, f32::NAN]);
    // Equal, NaN pairs included, and a scaled error of 5e-7.
    assert_eq!(count(vec![w.clone()], w.clone()), 0);
    assert_eq!(count(vec![Tensor::from_f32(&[3], vec![1.000001, -2.0, f32::NAN])], w.clone()), 0);
    // A scaled error of 5 x the bound, a NaN for a number, a wrong shape or dtype, one
    // output short.
    let off = 1.0 + 10.0 * tol() as f32;
    assert_eq!(count(vec![Tensor::from_f32(&[3], vec![off, -2.0, f32::NAN])], w.clone()), 1);
    assert_eq!(count(vec![Tensor::from_f32(&[3], vec![f32::NAN, -2.0, f32::NAN])], w.clone()), 1);
    assert_eq!(count(vec![Tensor::from_f32(&[1, 3], vec![1.0, -2.0, f32::NAN])], w.clone()), 1);
    assert_eq!(count(vec![w.cast(DType::F64)], w.clone()), 1);
    assert_eq!(count(vec![], w), 1);
    // Integers and bools must be equal.
    let i = Tensor::from_i64(&[2], vec![1, 1 << 40]);
    assert_eq!(count(vec![Tensor::from_i64(&[2], vec![1, (1 << 40) + 1])], i.clone()), 1);
    assert_eq!(count(vec![i.clone()], i), 0);
    let b = Tensor::from_bool(&[2], vec![true, false]);
    assert_eq!(count(vec![Tensor::from_bool(&[2], vec![true, true])], b), 1);
    // Complex values are compared by modulus.
    let z = Tensor::from_c64(&[1], vec![C64 { re: 1.0, im: 2.0 }]);
    assert_eq!(count(vec![Tensor::from_c64(&[1], vec![C64 { re: 1.0, im: 2.001 }])], z), 1);
}

// ---------------------------------------------------------------------------------------
// Building programs and inputs

/// The `main` function of a test program, with named results.
struct Main {
    b: FuncBuilder,
    sigs: Program,
    outs: Vec<(ValueId, String)>,
    args: usize,
}

impl Main {
    /// `callees` are the other functions of the program.
    fn new(callees: Vec<Func>) -> Main {
        Main {
            b: FuncBuilder::new("main"),
            sigs: Program { funcs: callees, ..Program::default() },
            outs: vec![],
            args: 0,
        }
    }

    fn arg(&mut self, t: &str) -> ValueId {
        self.args += 1;
        self.b.arg(t, &format!("a{}", self.args - 1))
    }

    fn ty(&self, v: ValueId) -> TensorType {
        self.b.type_of(v).clone()
    }

    fn op(&mut self, op: Op, args: &[ValueId]) -> ValueId {
        self.b.op(&self.sigs, op, args)
    }

    fn op_as(&mut self, op: Op, args: &[ValueId], t: &str) -> ValueId {
        self.b.op_as(&self.sigs, op, args, t)
    }

    fn multi(&mut self, op: Op, args: &[ValueId]) -> Vec<ValueId> {
        self.b.op_multi(&self.sigs, op, args)
    }

    /// Whether the type rules accept `op(args)`.
    fn accepts(&self, op: &Op, args: &[ValueId]) -> bool {
        let tys: Vec<&TensorType> = args.iter().map(|a| self.b.type_of(*a)).collect();
        infer(op, &tys, None, &self.sigs).is_ok()
    }

    fn out(&mut self, v: ValueId, name: impl Into<String>) {
        self.outs.push((v, name.into()));
    }

    /// `op(args)` as a result named `name`.
    fn emit(&mut self, op: Op, args: &[ValueId], name: impl Into<String>) -> ValueId {
        let v = self.op(op, args);
        self.out(v, name);
        v
    }

    fn emit_as(&mut self, op: Op, args: &[ValueId], t: &str, name: impl Into<String>) -> ValueId {
        let v = self.op_as(op, args, t);
        self.out(v, name);
        v
    }

    /// Every result as a named result.
    fn emit_multi(&mut self, op: Op, args: &[ValueId], name: &str) -> Vec<ValueId> {
        let vs = self.multi(op, args);
        for (i, v) in vs.iter().enumerate() {
            self.out(*v, format!("{name}#{i}"));
        }
        vs
    }

    /// An instruction the type rules do not check (for cases beyond them).
    fn emit_raw(&mut self, op: Op, args: &[ValueId], t: &str, name: impl Into<String>) -> ValueId {
        let v = self.b.raw(op, args, ty(t));
        self.out(v, name);
        v
    }

    fn program(self, name: &str, params: Vec<ParamDecl>) -> Program {
        let outs: Vec<(ValueId, &str)> = self.outs.iter().map(|(v, n)| (*v, n.as_str())).collect();
        let main = self.b.finish(&outs);
        let mut funcs = vec![main];
        funcs.extend(self.sigs.funcs);
        Program { name: name.into(), params, funcs }
    }

    /// The program, checked by the TIR verifier.
    fn verified(self, name: &str) -> Program {
        verified(self.program(name, vec![]))
    }
}

fn verified(p: Program) -> Program {
    if let Err(e) = verify(&p) {
        panic!("{} does not verify: {e:?}\n{p}", p.name);
    }
    p
}

/// A deterministic generator of test inputs (an LCG).
struct Gen(u64);

impl Gen {
    /// Uniform in [0, 1).
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }

    fn uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.next()
    }

    fn f32s(&mut self, shape: &[usize], lo: f64, hi: f64) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f32(shape, (0..n).map(|_| self.uniform(lo, hi) as f32).collect())
    }

    fn f64s(&mut self, shape: &[usize], lo: f64, hi: f64) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_f64(shape, (0..n).map(|_| self.uniform(lo, hi)).collect())
    }

    /// Integers in `[lo, hi)`.
    fn i64s(&mut self, shape: &[usize], lo: i64, hi: i64) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_i64(shape, (0..n).map(|_| lo + (self.next() * (hi - lo) as f64) as i64).collect())
    }

    fn bools(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_bool(shape, (0..n).map(|_| self.next() < 0.5).collect())
    }

    fn c64s(&mut self, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        let v =
            (0..n).map(|_| C64 { re: self.uniform(-2.0, 2.0) as f32, im: self.uniform(-2.0, 2.0) as f32 }).collect();
        Tensor::from_c64(shape, v)
    }

    /// A tensor of the given type with values suited to most ops: floats in [-2, 2),
    /// integers in [-20, 20), random bools, complex parts in [-2, 2).
    fn any(&mut self, t: &TensorType) -> Tensor {
        let shape = t.const_shape().expect("concrete input types");
        match t.dtype {
            DType::F32 => self.f32s(&shape, -2.0, 2.0),
            DType::F64 => self.f64s(&shape, -2.0, 2.0),
            DType::I64 => self.i64s(&shape, -20, 20),
            DType::Bool => self.bools(&shape),
            DType::C64 => self.c64s(&shape),
        }
    }
}

fn f32s(shape: &[usize], v: &[f32]) -> Tensor {
    Tensor::from_f32(shape, v.to_vec())
}

fn d(c: i64) -> Dim {
    Dim::constant(c)
}

fn reduce(op: ReduceOp, axes: &[usize], keepdim: bool) -> Op {
    Op::Reduce { op, axes: axes.to_vec(), keepdim }
}

fn bin(op: BinaryOp) -> Op {
    Op::Binary(op)
}

// ---------------------------------------------------------------------------------------
// Forward: elementwise

/// Every unary and binary op on every dtype the type rules accept it on, plus `select`.
#[test]
fn elementwise_on_every_dtype() {
    let mut m = Main::new(vec![]);
    let dtypes = [DType::F32, DType::F64, DType::I64, DType::Bool, DType::C64];
    let operands: Vec<(DType, ValueId, ValueId)> = dtypes
        .iter()
        .map(|&dt| {
            let t = format!("{dt}[3, 4]");
            (dt, m.arg(&t), m.arg(&t))
        })
        .collect();
    let mut accepted = Vec::new();
    for u in UNARY_OPS {
        for &(dt, x, _) in &operands {
            if m.accepts(&Op::Unary(u), &[x]) {
                let name = format!("{}({dt})", unary_name(u));
                m.emit(Op::Unary(u), &[x], &name);
                accepted.push(name);
            }
        }
    }
    for b in BINARY_OPS {
        for &(dt, x, y) in &operands {
            if m.accepts(&bin(b), &[x, y]) {
                let name = format!("{}({dt})", binary_name(b));
                m.emit(bin(b), &[x, y], &name);
                accepted.push(name);
            }
        }
    }
    // Unary: 15 on each float, neg/abs/sign/relu/floor on i64, not on bool, neg on c64.
    // Binary: all but and/or on floats, all but pow/and/or on i64, eq/ne/and/or on bool,
    // + - * / == != on c64.
    assert_eq!(accepted.len(), (15 + 15 + 5 + 1 + 1) + (14 + 14 + 13 + 4 + 6), "{accepted:?}");
    for &(dt, x, y) in &operands {
        let c = operands[3].1;
        m.emit(Op::Select, &[c, x, y], format!("select({dt})"));
    }
    let p = m.verified("elementwise");
    let mut g = Gen(11);
    let mut inputs: Vec<Tensor> = p.main().args.iter().map(|(_, t)| g.any(t)).collect();
    // i64 divisors: non-zero, mixed signs, one large; a few large dividends (wrapping `mul`).
    let div = vec![3, -2, 7, 1 << 30, 1, -1, 4, 4, -9, 2, -3, 5];
    inputs[5] = Tensor::from_i64(&[3, 4], div);
    let mut a = inputs[4].as_i64().unwrap().to_vec();
    a[0] = 1 << 40;
    a[1] = -(1 << 35);
    a[2] = 0;
    a[6] = 9;
    inputs[4] = Tensor::from_i64(&[3, 4], a);
    // Ties between the operands (comparisons, max, min).
    for (k, dt) in [(0, DType::F32), (2, DType::F64), (4, DType::I64)] {
        let (x, y) = (&inputs[k], &inputs[k + 1]);
        let mut yv = y.to_f64_vec().unwrap();
        let xv = x.to_f64_vec().unwrap();
        yv[1] = xv[1];
        yv[6] = xv[6];
        inputs[k + 1] = Tensor::from_f64(&[3, 4], yv).cast(dt);
    }
    check(&p, "main", &inputs, &[0]);
}

/// f32 elementwise ops on positive values (log, sqrt, pow) and on special values: signed
/// zeros, infinities, NaN, ties, zero divisors.
#[test]
fn elementwise_f32_special_values() {
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[3, 5]");
    let p = m.arg("f32[3, 5]");
    let q = m.arg("f32[3, 5]");
    let s = m.arg("f32[3, 5]");
    let t = m.arg("f32[3, 5]");
    for u in UNARY_OPS.iter().filter(|u| **u != UnaryOp::Not) {
        for (v, n) in [(p, "p"), (s, "s")] {
            m.emit(Op::Unary(*u), &[v], format!("{}({n})", unary_name(*u)));
        }
    }
    for b in BINARY_OPS.iter().filter(|b| !matches!(b, BinaryOp::And | BinaryOp::Or)) {
        for (l, r, n) in [(x, q, "x, q"), (p, x, "p, x"), (s, t, "s, t"), (t, s, "t, s")] {
            m.emit(bin(*b), &[l, r], format!("{}({n})", binary_name(*b)));
        }
    }
    let lt = m.op(bin(BinaryOp::Lt), &[x, q]);
    m.emit(Op::Select, &[lt, x, q], "select(x < q)");
    let ge = m.op(bin(BinaryOp::Ge), &[s, t]);
    m.emit(Op::Select, &[ge, s, t], "select(s >= t)");
    let prog = m.verified("elementwise_f32");
    let mut g = Gen(12);
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let sv = [0.0, -0.0, 1.0, -1.0, 2.5, -2.5, 3.0, -3.0, 0.5, -0.5, nan, inf, -inf, 1e-30, -7.25];
    let tv = [0.0, 0.0, 1.0, 2.0, -2.5, -2.5, 0.5, -3.0, inf, -inf, 1.0, inf, 2.0, nan, 1.5];
    let mut qv = g.f32s(&[15], 0.3, 2.0).as_f32().unwrap().to_vec();
    for (i, v) in qv.iter_mut().enumerate() {
        if i % 3 == 1 {
            *v = -*v;
        }
    }
    let inputs = vec![
        g.f32s(&[3, 5], -3.0, 3.0),
        g.f32s(&[3, 5], 0.2, 3.0),
        f32s(&[3, 5], &qv),
        f32s(&[3, 5], &sv),
        f32s(&[3, 5], &tv),
    ];
    check(&prog, "main", &inputs, &[0]);
}

/// `cast` between every pair of dtypes the type rules allow (complex only to complex).
#[test]
fn cast_between_every_pair_of_dtypes() {
    let dtypes = [DType::F32, DType::F64, DType::I64, DType::Bool, DType::C64];
    let mut m = Main::new(vec![]);
    let xs: Vec<ValueId> = dtypes.iter().map(|dt| m.arg(&format!("{dt}[9]"))).collect();
    let mut n = 0;
    for (&from, &x) in dtypes.iter().zip(&xs) {
        for &to in &dtypes {
            let t = format!("{to}[9]");
            let declared = [ty(&t)];
            if infer(&Op::Cast, &[&m.ty(x)], Some(&declared), &m.sigs).is_ok() {
                m.emit_as(Op::Cast, &[x], &t, format!("cast {from} -> {to}"));
                n += 1;
            }
        }
    }
    assert_eq!(n, 4 * 5 + 1);
    let p = m.verified("cast");
    let c = |re: f32, im: f32| C64 { re, im };
    let inputs = vec![
        f32s(&[9], &[-2.7, -0.5, -0.0, 0.0, 0.3, 1.0, 2.5, 123456.78, -1e10]),
        Tensor::from_f64(&[9], vec![-2.7, 1e-300, 1.000000001, 3.5, -0.0, 0.0, -1e15, 16777217.0, 0.1]),
        Tensor::from_i64(&[9], vec![-3, -1, 0, 1, 2, 1 << 40, (1 << 53) + 1, -(1 << 60), 16777217]),
        Tensor::from_bool(&[9], vec![true, false, true, true, false, false, true, false, true]),
        Tensor::from_c64(&[9], (0..9).map(|i| c(i as f32 - 4.0, 0.5 * i as f32)).collect()),
    ];
    check(&p, "main", &inputs, &[0]);
}

// ---------------------------------------------------------------------------------------
// Forward: reductions and contractions

#[test]
fn reductions_and_argmax() {
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[2, 3, 4]");
    let i = m.arg("i64[2, 3, 4]");
    let f = m.arg("f64[2, 3, 4]");
    let z = m.arg("c64[2, 3, 4]");
    let ties = m.arg("f32[2, 3, 4]");
    let nan = m.arg("f32[3, 4]");
    let axes_sets: [&[usize]; 7] = [&[], &[0], &[1], &[2], &[0, 2], &[1, 2], &[0, 1, 2]];
    for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
        for axes in axes_sets {
            for keepdim in [false, true] {
                m.emit(reduce(op, axes, keepdim), &[x], format!("{op:?} {axes:?} keepdim={keepdim} (f32)"));
            }
        }
        m.emit(reduce(op, &[1], false), &[f], format!("{op:?} [1] (f64)"));
        m.emit(reduce(op, &[0, 2], true), &[f], format!("{op:?} [0, 2] keepdim (f64)"));
        m.emit(reduce(op, &[1], false), &[nan], format!("{op:?} [1] (NaN, inf)"));
        if op != ReduceOp::Mean {
            m.emit(reduce(op, &[1], false), &[i], format!("{op:?} [1] (i64)"));
            m.emit(reduce(op, &[0, 2], true), &[i], format!("{op:?} [0, 2] keepdim (i64)"));
        }
        if matches!(op, ReduceOp::Sum | ReduceOp::Mean) {
            m.emit(reduce(op, &[1], false), &[z], format!("{op:?} [1] (c64)"));
            m.emit(reduce(op, &[0, 1, 2], false), &[z], format!("{op:?} all (c64)"));
        }
    }
    for axis in 0..3 {
        for keepdim in [false, true] {
            let am = Op::ArgMax { axis, keepdim };
            m.emit(am.clone(), &[x], format!("argmax {axis} keepdim={keepdim} (f32)"));
            m.emit(am.clone(), &[ties], format!("argmax {axis} keepdim={keepdim} (f32 ties)"));
            m.emit(am.clone(), &[i], format!("argmax {axis} keepdim={keepdim} (i64 ties)"));
            m.emit(am, &[f], format!("argmax {axis} keepdim={keepdim} (f64)"));
        }
    }
    m.emit(Op::ArgMax { axis: 1, keepdim: false }, &[nan], "argmax 1 (NaN, inf)");
    m.emit(Op::ArgMax { axis: 0, keepdim: true }, &[nan], "argmax 0 (NaN, inf)");
    // Sums of a broadcast constant (lowered as the constant times the count).
    for (c, t, big) in [(0.1, "f32[]", "f32[300, 7, 50]"), (1e-3, "f64[]", "f64[300, 7, 50]")] {
        let k = m.op_as(Op::Const(c), &[], t);
        let b = m.op_as(Op::Broadcast, &[k], big);
        m.emit(reduce(ReduceOp::Sum, &[0, 2], false), &[b], format!("sum [0, 2] of broadcast {c} ({t})"));
        m.emit(reduce(ReduceOp::Sum, &[0, 1, 2], true), &[b], format!("sum all keepdim of broadcast {c} ({t})"));
    }
    let p = m.verified("reduce");
    let mut g = Gen(21);
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let ties: Vec<f32> = (0..24).map(|_| (g.next() * 3.0).floor() as f32 - 1.0).collect();
    let inputs = vec![
        g.f32s(&[2, 3, 4], -2.0, 2.0),
        g.i64s(&[2, 3, 4], -3, 3),
        g.f64s(&[2, 3, 4], -2.0, 2.0),
        g.c64s(&[2, 3, 4]),
        f32s(&[2, 3, 4], &ties),
        f32s(&[3, 4], &[1.0, nan, 3.0, nan, -inf, -inf, -inf, -inf, 2.0, inf, -1.0, inf]),
    ];
    check(&p, "main", &inputs, &[0]);
}

/// `argsort` along every axis, both directions, on random values, ties (stable order),
/// NaN and infinities (NaN largest), signed zeros (equal) and every real dtype, with a
/// row length known only at run time and an empty axis; `stop_gradient` is its operand.
#[test]
fn argsort_and_stop_gradient() {
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[2, 3, 4]");
    let i = m.arg("i64[2, 3, 4]");
    let f = m.arg("f64[2, 3, 4]");
    let ties = m.arg("f32[2, 3, 4]");
    let nan = m.arg("f32[3, 4]");
    let zeros = m.arg("f32[2, 4]");
    let z = m.arg("c64[2, 3]");
    for axis in 0..3 {
        for descending in [false, true] {
            let op = Op::ArgSort { axis, descending };
            for (v, what) in [(x, "f32"), (i, "i64 ties"), (f, "f64"), (ties, "f32 ties")] {
                m.emit(op.clone(), &[v], format!("argsort {axis} descending={descending} ({what})"));
            }
        }
    }
    for (axis, descending) in [(0, false), (1, false), (0, true), (1, true)] {
        m.emit(Op::ArgSort { axis, descending }, &[nan], format!("argsort {axis} {descending} (NaN, inf)"));
        m.emit(Op::ArgSort { axis, descending }, &[zeros], format!("argsort {axis} {descending} (signed zeros)"));
    }
    m.emit(Op::StopGradient, &[x], "stop_gradient (f32)");
    m.emit(Op::StopGradient, &[z], "stop_gradient (c64)");
    let p = m.verified("argsort");
    let mut g = Gen(33);
    let (inf, nan) = (f32::INFINITY, f32::NAN);
    let ties: Vec<f32> = (0..24).map(|_| (g.next() * 3.0).floor() as f32 - 1.0).collect();
    let inputs = vec![
        g.f32s(&[2, 3, 4], -2.0, 2.0),
        g.i64s(&[2, 3, 4], -2, 2),
        g.f64s(&[2, 3, 4], -2.0, 2.0),
        f32s(&[2, 3, 4], &ties),
        f32s(&[3, 4], &[1.0, nan, 3.0, nan, -inf, -inf, nan, -inf, 2.0, inf, -1.0, inf]),
        f32s(&[2, 4], &[0.0, -0.0, 0.0, -0.0, -0.0, 1.0, 0.0, -1.0]),
        g.c64s(&[2, 3]),
    ];
    check(&p, "main", &inputs, &[0]);

    // Rows longer than the CPU target sorts in loops (`SORT_IN_LOOPS`): the runtime's
    // sort, with ties, NaNs, infinities and signed zeros.
    let mut m = Main::new(vec![]);
    let (x, i, f) = (m.arg("f32[3, 100]"), m.arg("i64[100, 2]"), m.arg("f64[2, 100]"));
    for descending in [false, true] {
        m.emit(Op::ArgSort { axis: 1, descending }, &[x], format!("argsort of 100 f32 ({descending})"));
        m.emit(Op::ArgSort { axis: 0, descending }, &[i], format!("argsort of 100 i64 along axis 0 ({descending})"));
        m.emit(Op::ArgSort { axis: 1, descending }, &[f], format!("argsort of 100 f64 ({descending})"));
    }
    let p = m.verified("argsort_long");
    let mut g = Gen(34);
    let mut xs: Vec<f32> = (0..300).map(|_| (g.next() * 7.0).floor() as f32 - 3.0).collect();
    for (k, v) in [(5, nan), (17, nan), (40, inf), (41, -0.0), (42, 0.0), (250, -inf), (251, nan)] {
        xs[k] = v;
    }
    let inputs = vec![f32s(&[3, 100], &xs), g.i64s(&[100, 2], -3, 3), g.f64s(&[2, 100], -2.0, 2.0)];
    check(&p, "main", &inputs, &[0]);

    // A row length known only at run time, and rows of no elements.
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[2, N]");
    m.emit(Op::ArgSort { axis: 1, descending: true }, &[x], "argsort of N");
    m.emit(Op::ArgSort { axis: 0, descending: false }, &[x], "argsort along 2 rows");
    let p = m.verified("argsort_dynamic");
    let mut interp = Interpreter::new(&p);
    let mut jit = backend(&p, 0);
    for n in [5, 1, 0] {
        let v: Vec<f32> = (0..2 * n).map(|k| ((k * 7) % 5) as f32).collect();
        check_with(&p, "main", (&[f32s(&[2, n], &v)], Edges::Full), &[0], &mut interp, jit.as_mut());
    }
}

/// Reductions of many elements into few results, which the GPU target folds in two
/// stages (chunks, then the partial results): all dtypes, sum/mean/max/min, full and
/// partial, with results on either side of the reduced axes.
#[test]
fn long_reductions_into_few_results() {
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[64, 128, 3]");
    let flat = m.arg("f32[8192]");
    let i = m.arg("i64[64, 128]");
    let f = m.arg("f64[2, 4096]");
    let z = m.arg("c64[64, 128]");
    let conv = m.arg("f32[8, 6, 1024]");
    for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
        m.emit(reduce(op, &[0, 1], false), &[x], format!("{op:?} [0, 1] (f32, 3 results)"));
        m.emit(reduce(op, &[0, 2], false), &[conv], format!("{op:?} [0, 2] (f32, a bias gradient's axes)"));
        m.emit(reduce(op, &[0, 1, 2], true), &[x], format!("{op:?} all keepdim (f32)"));
        m.emit(reduce(op, &[0], false), &[flat], format!("{op:?} [0] (f32)"));
        m.emit(reduce(op, &[1], false), &[f], format!("{op:?} [1] (f64, 2 results)"));
        if op != ReduceOp::Mean {
            m.emit(reduce(op, &[0, 1], false), &[i], format!("{op:?} all (i64)"));
        }
        if matches!(op, ReduceOp::Sum | ReduceOp::Mean) {
            m.emit(reduce(op, &[0, 1], false), &[z], format!("{op:?} all (c64)"));
        }
    }
    let p = m.verified("long_reduce");
    let mut g = Gen(22);
    let inputs = vec![
        g.f32s(&[64, 128, 3], -2.0, 2.0),
        g.f32s(&[8192], 0.0, 1.0),
        g.i64s(&[64, 128], -1000, 1000),
        g.f64s(&[2, 4096], -2.0, 2.0),
        g.c64s(&[64, 128]),
        g.f32s(&[8, 6, 1024], -2.0, 2.0),
    ];
    check(&p, "main", &inputs, &[0]);
    check_long_reductions(&p, &inputs);
}

#[test]
fn matmul_and_einsum() {
    let mut m = Main::new(vec![]);
    let a2 = m.arg("f32[3, 4]");
    let b2 = m.arg("f32[4, 5]");
    let a3 = m.arg("f32[2, 3, 4]");
    let b3 = m.arg("f32[2, 4, 5]");
    let a4 = m.arg("f32[2, 2, 3, 4]");
    let b4 = m.arg("f32[2, 2, 4, 3]");
    let fa = m.arg("f64[3, 4]");
    let fb = m.arg("f64[4, 5]");
    let za = m.arg("c64[2, 3, 4]");
    let zb = m.arg("c64[2, 4, 2]");
    let v = m.arg("f32[6]");
    let q = m.arg("f32[2, 2, 3, 4]");
    let k = m.arg("f32[2, 2, 5, 4]");
    let la = m.arg("f32[8, 3, 600]");
    let lb = m.arg("f32[8, 2, 600]");
    let kk = m.arg("f32[2, 5, 3, 4]");
    m.emit(Op::MatMul, &[a2, b2], "matmul rank 2");
    m.emit(Op::MatMul, &[a3, b3], "matmul rank 3");
    m.emit(Op::MatMul, &[a4, b4], "matmul rank 4");
    m.emit(Op::MatMul, &[fa, fb], "matmul f64");
    m.emit(Op::MatMul, &[za, zb], "matmul c64 rank 3");
    let z2 = m.op(Op::Permute(vec![1, 0]), &[b2]);
    let z2 = m.op_as(Op::Cast, &[z2], "c64[5, 4]");
    let z1 = m.op_as(Op::Cast, &[a2], "c64[3, 4]");
    let z1t = m.op(Op::Permute(vec![1, 0]), &[z1]);
    m.emit(Op::MatMul, &[z2, z1t], "matmul c64 rank 2");
    let z4 = m.op_as(Op::Cast, &[a4], "c64[2, 2, 3, 4]");
    let w4 = m.op_as(Op::Cast, &[b4], "c64[2, 2, 4, 3]");
    m.emit(Op::MatMul, &[z4, w4], "matmul c64 rank 4");
    // Attention's products: `[B, T, H, D]` operands permuted to `[B, H, T, D]` (one
    // batched product over the collapsed `B x H`).
    let qh = m.op(Op::Permute(vec![0, 2, 1, 3]), &[q]);
    let kt = m.op(Op::Permute(vec![0, 2, 3, 1]), &[kk]);
    m.emit(Op::MatMul, &[qh, kt], "matmul rank 4 of permuted operands");
    m.emit(Op::MatMul, &[fa, fb], "matmul f64 rank 2");
    // A channels-first activation read by a `Linear` (an FNO's projection): the rows of
    // `[B, C, N]` transposed to `[B * N, C]`, a batched product over the strided view.
    let rows = m.op(Op::Permute(vec![0, 2, 1]), &[la]);
    let rows = m.op_as(Op::Reshape, &[rows], "f32[4800, 3]");
    m.emit(Op::MatMul, &[rows, a2], "matmul of the rows of a transposed [8, 3, 600]");
    // Products summed over their batch (lowered as one: see `FnLower::summed_matmul`):
    // short f32 sums, long ones (8 x 600 terms, one operand a transposed view), and a
    // product also read on its own.
    let sum0 = reduce(ReduceOp::Sum, &[0], false);
    let p3 = m.op(Op::MatMul, &[a3, b3]);
    m.emit(sum0.clone(), &[p3], "sum over the batch of matmul rank 3");
    let lt = m.op(Op::Permute(vec![0, 2, 1]), &[lb]);
    let pl = m.op(Op::MatMul, &[la, lt]);
    m.emit(sum0.clone(), &[pl], "sum over the batch of a long matmul");
    let pr = m.op(Op::MatMul, &[a3, b3]);
    m.emit(sum0, &[pr], "sum over the batch of a matmul also read");
    m.emit(Op::Unary(UnaryOp::Neg), &[pr], "neg(the matmul summed above)");
    let es = |s: &str| Op::Einsum(s.into());
    m.emit(es("ij,jk->ik"), &[a2, b2], "ij,jk->ik");
    m.emit(es("ij,jk->ki"), &[a2, b2], "ij,jk->ki");
    m.emit(es("bij,bjk->bik"), &[a3, b3], "bij,bjk->bik");
    m.emit(es("ijk->ki"), &[a3], "ijk->ki");
    m.emit(es("ijk->"), &[a3], "ijk->");
    m.emit(es("i,j->ij"), &[v, v], "i,j->ij (outer)");
    m.emit(es("ij,k->kj"), &[a2, v], "ij,k->kj");
    m.emit(es("bhqd,bhkd->bhqk"), &[q, k], "bhqd,bhkd->bhqk");
    m.emit(es("ij,jk->ik"), &[fa, fb], "ij,jk->ik (f64)");
    // Contractions and reductions without a summed axis, read through a broadcast (MLIR's
    // elementwise fusion must not turn their accumulator into a repeated output).
    let t = m.op(es("ij->ji"), &[a2]);
    let t = m.op_as(Op::Reshape, &[t], "f32[4, 1, 3]");
    m.emit_as(Op::Broadcast, &[t], "f32[4, 2, 3]", "broadcast(einsum ij->ji)");
    let o = m.op(es("i,j->ij"), &[v, v]);
    let o = m.op_as(Op::Reshape, &[o], "f32[6, 1, 6]");
    m.emit_as(Op::Broadcast, &[o], "f32[6, 3, 6]", "broadcast(einsum i,j->ij)");
    for op in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
        let r = m.op(reduce(op, &[], false), &[a2]);
        let r = m.op_as(Op::Reshape, &[r], "f32[3, 1, 4]");
        m.emit_as(Op::Broadcast, &[r], "f32[3, 2, 4]", format!("broadcast(reduce.{op:?} [])"));
    }
    let p = m.verified("contract");
    let mut g = Gen(31);
    let inputs: Vec<Tensor> = p.main().args.iter().map(|(_, t)| g.any(t)).collect();
    check_edges(&p, "main", &inputs, &[0], Edges::Finite);
}

// ---------------------------------------------------------------------------------------
// Forward: windows

#[test]
fn conv_and_pool() {
    let mut m = Main::new(vec![]);
    let x1 = m.arg("f32[2, 4, 9]");
    let w1 = m.arg("f32[6, 2, 3]");
    let x2 = m.arg("f32[1, 2, 5, 6]");
    let w2 = m.arg("f32[3, 2, 3, 2]");
    let x3 = m.arg("f32[2, 4, 6, 5]");
    let w3 = m.arg("f32[4, 2, 2, 3]");
    let x4 = m.arg("f32[1, 3, 7]");
    let w4 = m.arg("f32[3, 1, 3]");
    let xf = m.arg("f64[2, 4, 9]");
    let wf = m.arg("f64[6, 2, 3]");
    let neg = m.arg("f32[2, 2, 7]");
    let w_pt = m.arg("f32[3, 4, 1]");
    let w_pt2 = m.arg("f32[5, 4, 1, 1]");
    let w_ptf = m.arg("f64[2, 4, 1]");
    let w_ptt = m.arg("f32[3, 9, 1]");
    let conv = |stride: &[i64], padding: &[(i64, i64)], dilation: &[i64], groups| Op::Conv {
        stride: stride.to_vec(),
        padding: padding.to_vec(),
        dilation: dilation.to_vec(),
        groups,
    };
    m.emit(conv(&[2], &[(1, 2)], &[2], 2), &[x1, w1], "conv1d stride 2, dilation 2, groups 2, pad (1, 2)");
    let w = reshape_w(&mut m, w1);
    m.emit(conv(&[1], &[(0, 0)], &[1], 1), &[x1, w], "conv1d plain");
    m.emit(conv(&[1, 2], &[(1, 1), (0, 1)], &[1, 1], 1), &[x2, w2], "conv2d stride (1, 2), pad ((1, 1), (0, 1))");
    m.emit(conv(&[2, 1], &[(0, 1), (2, 0)], &[2, 1], 2), &[x3, w3], "conv2d dilation (2, 1), groups 2");
    m.emit(conv(&[1], &[(2, 1)], &[1], 3), &[x4, w4], "conv1d depthwise");
    m.emit(conv(&[2], &[(1, 2)], &[2], 2), &[xf, wf], "conv1d f64");
    // Pointwise (one batched product reading the weight through a stride-0 view).
    m.emit(conv(&[1], &[(0, 0)], &[1], 1), &[x1, w_pt], "conv1d pointwise");
    m.emit(conv(&[1, 1], &[(0, 0), (0, 0)], &[2, 1], 1), &[x3, w_pt2], "conv2d pointwise");
    m.emit(conv(&[1], &[(0, 0)], &[3], 1), &[xf, w_ptf], "conv1d pointwise f64");
    let xt = m.op(Op::Permute(vec![0, 2, 1]), &[x1]);
    m.emit(conv(&[1], &[(0, 0)], &[1], 1), &[xt, w_ptt], "conv1d pointwise of a transposed input");
    let pool = |op, window: &[i64], stride: &[i64], padding: &[(i64, i64)]| Op::Pool {
        op,
        window: window.to_vec(),
        stride: stride.to_vec(),
        padding: padding.to_vec(),
    };
    for (x, n) in [(x1, "x"), (neg, "negative x")] {
        m.emit(pool(PoolOp::Max, &[3], &[2], &[(1, 1)]), &[x], format!("pool.max 1d pad (1, 1) ({n})"));
        m.emit(pool(PoolOp::Avg, &[3], &[2], &[(1, 1)]), &[x], format!("pool.avg 1d pad (1, 1) ({n})"));
        m.emit(pool(PoolOp::Max, &[2], &[2], &[(0, 1)]), &[x], format!("pool.max 1d pad (0, 1) ({n})"));
    }
    m.emit(pool(PoolOp::Avg, &[2, 2], &[2, 1], &[(1, 0), (0, 0)]), &[x2], "pool.avg 2d");
    m.emit(pool(PoolOp::Max, &[3, 2], &[1, 2], &[(1, 1), (0, 1)]), &[x3], "pool.max 2d");
    m.emit(pool(PoolOp::Avg, &[2, 3], &[1, 1], &[(0, 1), (1, 1)]), &[x3], "pool.avg 2d asymmetric");
    m.emit(pool(PoolOp::Max, &[2], &[1], &[(0, 0)]), &[xf], "pool.max f64");
    let p = m.verified("windows");
    let mut g = Gen(41);
    let mut inputs: Vec<Tensor> = p.main().args.iter().map(|(_, t)| g.any(t)).collect();
    inputs[10] = g.f32s(&[2, 2, 7], -3.0, -0.5);
    check_edges(&p, "main", &inputs, &[0], Edges::Finite);
}

/// `w: [6, 2, 3]` as `[3, 4, 3]`, a weight for an ungrouped conv of 4 channels.
fn reshape_w(m: &mut Main, w: ValueId) -> ValueId {
    let s = m.op(Op::Slice { start: vec![d(0), d(0), d(0)], end: vec![d(6), d(2), d(3)], step: vec![2, 1, 1] }, &[w]);
    let c = m.op(Op::Concat { axis: 1 }, &[s, s]);
    m.op_as(Op::Reshape, &[c], "f32[3, 4, 3]")
}

// ---------------------------------------------------------------------------------------
// Forward: data movement

#[test]
fn movement_and_indexing() {
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[2, 3, 4]");
    let s = m.arg("f32[]");
    let one = m.arg("f32[1, 1]");
    let col = m.arg("f32[3, 1]");
    let row = m.arg("f32[4]");
    let table = m.arg("f32[5, 3]");
    let idx = m.arg("i64[6]");
    let idx2 = m.arg("i64[2, 2]");
    let x5 = m.arg("f32[2, 5, 3]");
    let src = m.arg("f32[6, 3]");
    let src2 = m.arg("f32[2, 2, 2, 3]");
    let it = m.arg("i64[5, 3]");
    let isrc = m.arg("i64[6, 3]");
    let b = m.arg("bool[2, 3, 4]");
    let x1 = m.arg("f32[2, 1, 4]");
    for t in ["f32[6, 4]", "f32[24]", "f32[4, 3, 2]", "f32[2, 12]", "f32[1, 24, 1]"] {
        m.emit_as(Op::Reshape, &[x], t, format!("reshape to {t}"));
    }
    m.emit_as(Op::Reshape, &[one], "f32[]", "reshape [1, 1] to []");
    m.emit_as(Op::Reshape, &[s], "f32[1, 1, 1]", "reshape [] to [1, 1, 1]");
    m.emit_as(Op::Reshape, &[s], "f32[1]", "reshape [] to [1]");
    m.emit_as(Op::Reshape, &[b], "bool[4, 6]", "reshape bool");
    for perm in [vec![2, 0, 1], vec![0, 2, 1], vec![1, 0, 2], vec![0, 1, 2]] {
        m.emit(Op::Permute(perm.clone()), &[x], format!("permute {perm:?}"));
    }
    m.emit(Op::Permute(vec![1, 0]), &[it], "permute i64");
    m.emit_as(Op::Broadcast, &[col], "f32[2, 3, 4]", "broadcast [3, 1] to [2, 3, 4]");
    m.emit_as(Op::Broadcast, &[s], "f32[2, 2]", "broadcast [] to [2, 2]");
    m.emit_as(Op::Broadcast, &[row], "f32[3, 4]", "broadcast [4] to [3, 4]");
    m.emit_as(Op::Broadcast, &[one], "f32[3, 1, 2]", "broadcast [1, 1] to [3, 1, 2]");
    m.emit_as(Op::Broadcast, &[x1], "f32[2, 3, 4]", "broadcast [2, 1, 4] to [2, 3, 4]");
    let slice = |start: &[i64], end: &[i64], step: &[i64]| Op::Slice {
        start: start.iter().map(|&c| d(c)).collect(),
        end: end.iter().map(|&c| d(c)).collect(),
        step: step.to_vec(),
    };
    m.emit(slice(&[0, 1, 1], &[2, 3, 4], &[1, 1, 2]), &[x], "slice [:, 1:, 1::2]");
    m.emit(slice(&[1, 0, 0], &[2, 3, 4], &[1, 2, 3]), &[x], "slice [1:, ::2, ::3]");
    m.emit(slice(&[0, 2, 3], &[2, 10, 9], &[2, 1, 1]), &[x], "slice with ends past the size");
    m.emit(slice(&[0, 0, 0], &[2, 3, 4], &[1, 1, 1]), &[x], "slice (all)");
    m.emit(slice(&[1, 0], &[5, 3], &[3, 2]), &[it], "slice i64");
    m.emit(Op::Concat { axis: 1 }, &[x, x1, x], "concat axis 1");
    m.emit(Op::Concat { axis: 0 }, &[x, x], "concat axis 0");
    m.emit(Op::Concat { axis: 2 }, &[x1, x1], "concat axis 2");
    m.emit(Op::Concat { axis: 0 }, &[b, b], "concat bool");
    m.emit(Op::Pad { padding: vec![(1, 0), (0, 2), (2, 1)], value: 0.5 }, &[x], "pad value 0.5");
    m.emit(Op::Pad { padding: vec![(0, 0), (0, 0), (0, 0)], value: 1.0 }, &[x], "pad nothing");
    m.emit(Op::Pad { padding: vec![(2, 1), (0, 1)], value: -3.0 }, &[it], "pad i64");
    m.emit(Op::Pad { padding: vec![(1, 1), (1, 0)], value: f64::NEG_INFINITY }, &[table], "pad -inf");
    m.emit(Op::Gather { axis: 0 }, &[table, idx], "gather axis 0");
    m.emit(Op::Gather { axis: 1 }, &[table, idx2], "gather axis 1, 2-d indices");
    m.emit(Op::Gather { axis: 1 }, &[x5, idx2], "gather axis 1 of rank 3");
    m.emit(Op::Gather { axis: 2 }, &[x5, idx2], "gather axis 2 (last)");
    m.emit(Op::Gather { axis: 0 }, &[it, idx], "gather i64");
    let i0 = m.op_as(Op::Const(3.0), &[], "i64[]");
    m.emit(Op::Gather { axis: 0 }, &[table, i0], "gather with a rank-0 index");
    m.emit(Op::Gather { axis: 1 }, &[x5, i0], "gather axis 1 with a rank-0 index");
    m.emit(slice(&[0, 3, 0], &[2, 3, 4], &[1, 1, 1]), &[x], "slice (empty)");
    m.emit(Op::ScatterAdd { axis: 0 }, &[table, idx, src], "scatter_add axis 0, duplicates");
    m.emit(Op::ScatterAdd { axis: 1 }, &[x5, idx2, src2], "scatter_add axis 1, 2-d indices");
    m.emit(Op::ScatterAdd { axis: 0 }, &[it, idx, isrc], "scatter_add i64");
    let p = m.verified("movement");
    let mut g = Gen(51);
    let mut inputs: Vec<Tensor> = p.main().args.iter().map(|(_, t)| g.any(t)).collect();
    inputs[6] = Tensor::from_i64(&[6], vec![4, 0, 2, 4, 4, 1]);
    inputs[7] = Tensor::from_i64(&[2, 2], vec![2, 0, 2, 2]);
    check(&p, "main", &inputs, &[0]);
}

// ---------------------------------------------------------------------------------------
// Forward: spectral and complex

#[test]
fn fft_and_complex_parts() {
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[2, 6]");
    let y = m.arg("f32[7, 3]");
    let f = m.arg("f64[5]");
    let z = m.arg("c64[2, 4]");
    let re = m.arg("f32[2, 4]");
    let im = m.arg("f32[2, 4]");
    let z3 = m.arg("c64[3, 4, 2]");
    let zx = m.emit(Op::Rfft { axis: 1 }, &[x], "rfft even n, axis 1");
    m.emit(Op::Rfft { axis: 0 }, &[x], "rfft n = 2, axis 0");
    let zy = m.emit(Op::Rfft { axis: 0 }, &[y], "rfft odd n, axis 0");
    m.emit(Op::Rfft { axis: 1 }, &[y], "rfft n = 3, axis 1");
    m.emit(Op::Rfft { axis: 0 }, &[f], "rfft f64");
    m.emit(Op::Irfft { axis: 1, n: d(6) }, &[zx], "irfft(rfft) even n");
    m.emit(Op::Irfft { axis: 0, n: d(7) }, &[zy], "irfft(rfft) odd n");
    m.emit(Op::Irfft { axis: 1, n: d(6) }, &[z], "irfft n = 6");
    m.emit(Op::Irfft { axis: 1, n: d(7) }, &[z], "irfft n = 7");
    m.emit_as(Op::Irfft { axis: 1, n: d(6) }, &[z], "f64[2, 6]", "irfft to f64");
    m.emit(Op::Irfft { axis: 1, n: d(6) }, &[z3], "irfft axis 1 of rank 3");
    m.emit(Op::Irfft { axis: 0, n: d(4) }, &[z3], "irfft axis 0 of rank 3");
    m.emit(Op::Real, &[zx], "real");
    m.emit(Op::Imag, &[zx], "imag");
    m.emit(Op::Complex, &[re, im], "complex");
    let p = m.verified("spectral");
    let mut g = Gen(61);
    let inputs: Vec<Tensor> = p.main().args.iter().map(|(_, t)| g.any(t)).collect();
    check_edges(&p, "main", &inputs, &[0], Edges::Numbers);
}

/// Ops the interpreter and the backend define beyond the type rules (so the program is
/// not verified): `irfft` with fewer or more input coefficients than `n / 2 + 1` (zero
/// padded, or the extra ones ignored), `einsum` of three operands and with a letter
/// repeated within one operand (a trace or diagonal).
#[test]
fn irfft_coefficient_counts_and_einsum_of_three() {
    let mut m = Main::new(vec![]);
    let z3 = m.arg("c64[2, 3]");
    let z4 = m.arg("c64[2, 4]");
    let z5 = m.arg("c64[2, 5]");
    let zt = m.arg("c64[5, 2]");
    m.emit_raw(Op::Irfft { axis: 1, n: d(6) }, &[z3], "f32[2, 6]", "n = 6 from 3 (fewer)");
    m.emit_raw(Op::Irfft { axis: 1, n: d(8) }, &[z4], "f32[2, 8]", "n = 8 from 4 (fewer, no Nyquist)");
    m.emit_raw(Op::Irfft { axis: 1, n: d(6) }, &[z5], "f32[2, 6]", "n = 6 from 5 (more)");
    m.emit_raw(Op::Irfft { axis: 1, n: d(5) }, &[z4], "f32[2, 5]", "n = 5 from 4 (more, odd)");
    m.emit_raw(Op::Irfft { axis: 1, n: d(2) }, &[z5], "f32[2, 2]", "n = 2 from 5 (more)");
    m.emit_raw(Op::Irfft { axis: 0, n: d(4) }, &[zt], "f32[4, 2]", "n = 4 from 5 along axis 0");
    m.emit_raw(Op::Irfft { axis: 1, n: d(9) }, &[z3], "f32[2, 9]", "n = 9 from 3 (fewer, odd)");
    let a = m.arg("f32[2, 3]");
    let b = m.arg("f32[3, 4]");
    let c = m.arg("f32[4, 5]");
    let e = m.arg("f32[2, 3, 4]");
    let f = m.arg("f32[5, 2]");
    let es = |s: &str| Op::Einsum(s.into());
    m.emit_raw(es("ij,jk,kl->il"), &[a, b, c], "f32[2, 5]", "ij,jk,kl->il");
    m.emit_raw(es("bij,jk,kl->lbi"), &[e, c, f], "f32[2, 2, 3]", "bij,jk,kl->lbi");
    m.emit_raw(es("ij,jk,ij->ik"), &[a, b, a], "f32[2, 4]", "ij,jk,ij->ik");
    let sq = m.arg("f32[4, 4]");
    let cube = m.arg("f32[3, 3, 3]");
    m.emit_raw(es("ii->"), &[sq], "f32[]", "ii-> (trace)");
    m.emit_raw(es("ii->i"), &[sq], "f32[4]", "ii->i (diagonal)");
    m.emit_raw(es("ij,jj->i"), &[b, sq], "f32[3]", "ij,jj->i");
    m.emit_raw(es("iji->j"), &[cube], "f32[3]", "iji->j");
    m.emit_raw(es("iii->i"), &[cube], "f32[3]", "iii->i");
    let p = m.program("beyond_type_rules", vec![]);
    let mut g = Gen(62);
    let inputs: Vec<Tensor> = p.main().args.iter().map(|(_, t)| g.any(t)).collect();
    check_edges(&p, "main", &inputs, &[0], Edges::Numbers);
}

// ---------------------------------------------------------------------------------------
// Forward: edge cases and refusals

/// Asserts that both the interpreter and the backend refuse `func` on `inputs` (the
/// backend when emitting or by a run-time failure), each with a message containing
/// `want`.
fn assert_refused(p: &Program, func: &str, inputs: &[Tensor], want: &str) {
    let mut interp = Interpreter::new(p);
    interp.init_params(0).expect("interpreter parameters");
    let mut jit = backend(p, 0);
    refused_by_both(&mut interp, jit.as_mut(), func, inputs, want);
}

fn refused_by_both(interp: &mut Interpreter, jit: &mut dyn Executor, func: &str, inputs: &[Tensor], want: &str) {
    match interp.run_func(func, inputs, 0) {
        Err(e) => assert!(e.to_string().contains(want), "the interpreter refuses with `{e}`, expected `{want}`"),
        Ok(v) => panic!("the interpreter runs: {v:?}"),
    }
    match run_checked(jit, func, inputs, 0) {
        Err(e) => assert!(e.contains(want), "the {BACKEND} refuses with `{e}`, expected `{want}`"),
        Ok(v) => panic!("the {BACKEND} runs: {v:?}"),
    }
}

/// `log1p` of values below the epsilon keeps them (`log(1 + x)` would give 0): the
/// stdlib's `softplus(-20) = log1p(exp(-20))`.
#[test]
fn log1p_of_tiny_values() {
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[6]");
    let f = m.arg("f64[4]");
    m.emit(Op::Unary(UnaryOp::Log1p), &[x], "log1p (f32)");
    m.emit(Op::Unary(UnaryOp::Log1p), &[f], "log1p (f64)");
    let e = m.op(Op::Unary(UnaryOp::Exp), &[x]);
    m.emit(Op::Unary(UnaryOp::Log1p), &[e], "softplus = log1p(exp(x))");
    let p = m.verified("log1p");
    let inputs = vec![
        f32s(&[6], &[1e-8, -1e-8, 1e-30, -20.0, -30.0, 3e-9]),
        Tensor::from_f64(&[4], vec![1e-17, -1e-17, 1e-300, 2e-20]),
    ];
    let want = check(&p, "main", &inputs, &[0]);
    assert_eq!(want[0].as_f32().unwrap()[0], 1e-8, "the interpreter's log1p");
}

/// Gather indices count from the end when negative; outside `[-n, n)` both refuse, also
/// through `scatter_add` and with several index axes.
#[test]
fn gather_and_scatter_add_indices_at_the_edges() {
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[5, 3]");
    let i = m.arg("i64[2]");
    let src = m.arg("f32[2, 3]");
    m.emit(Op::Gather { axis: 0 }, &[x, i], "gather");
    m.emit(Op::Gather { axis: 1 }, &[x, i], "gather axis 1");
    m.emit(Op::ScatterAdd { axis: 0 }, &[x, i, src], "scatter_add");
    let p = m.verified("indices");
    let mut g = Gen(61);
    let (xv, sv) = (g.f32s(&[5, 3], -2.0, 2.0), g.f32s(&[2, 3], -2.0, 2.0));
    let idx = |v: &[i64]| Tensor::from_i64(&[2], v.to_vec());
    check(&p, "main", &[xv.clone(), idx(&[-1, -3]), sv.clone()], &[0]);
    check(&p, "main", &[xv.clone(), idx(&[2, -2]), sv.clone()], &[0]);
    // -3 is in range for axis 1 (size 3) and axis 0; 5 and -6 are not.
    assert_refused(&p, "main", &[xv.clone(), idx(&[-1, 5]), sv.clone()], "index 5 out of range [-5, 5) on axis 0");
    assert_refused(&p, "main", &[xv.clone(), idx(&[-6, 0]), sv.clone()], "index -6 out of range [-5, 5) on axis 0");
    assert_refused(&p, "main", &[xv, idx(&[0, 3]), sv], "index 3 out of range [-3, 3) on axis 1");
}

/// `max`, `min` and `argmax` over an empty axis are refused (also where the size is
/// known only at run time); `sum` gives 0 and `mean` NaN, as in PyTorch.
#[test]
fn reductions_over_an_empty_axis() {
    let slice0 = Op::Slice { start: vec![d(0), d(0)], end: vec![Dim::sym("B"), d(0)], step: vec![1, 1] };
    for (op, want) in [
        (reduce(ReduceOp::Max, &[1], false), "reduce.max over zero elements"),
        (reduce(ReduceOp::Min, &[1], false), "reduce.min over zero elements"),
        (Op::ArgMax { axis: 1, keepdim: false }, "argmax over zero elements"),
    ] {
        let mut m = Main::new(vec![]);
        let x = m.arg("f32[B, 3]");
        let e = m.op(slice0.clone(), &[x]);
        m.emit(op.clone(), &[e], "reduction");
        let p = m.verified("empty_reduce");
        assert_refused(&p, "main", &[f32s(&[2, 3], &[1.0; 6])], want);
        // The reduced size known only at run time: `N` becomes dynamic once it changes.
        let mut m = Main::new(vec![]);
        let x = m.arg("f32[2, N]");
        m.emit(op, &[x], "reduction");
        let p = m.verified("dynamic_reduce");
        let mut interp = Interpreter::new(&p);
        let mut jit = backend(&p, 0);
        for n in [3, 4] {
            check_with(&p, "main", (&[f32s(&[2, n], &vec![0.5; 2 * n])], Edges::Full), &[0], &mut interp, jit.as_mut());
        }
        refused_by_both(&mut interp, jit.as_mut(), "main", &[f32s(&[2, 0], &[])], want);
    }
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[B, 3]");
    let e = m.op(slice0, &[x]);
    m.emit(reduce(ReduceOp::Sum, &[1], false), &[e], "sum of nothing");
    m.emit(reduce(ReduceOp::Mean, &[1], false), &[e], "mean of nothing");
    let p = m.verified("empty_sum");
    let want = check(&p, "main", &[f32s(&[2, 3], &[1.0; 6])], &[0]);
    assert_eq!(want[0].as_f32().unwrap(), &[0.0, 0.0]);
    assert!(want[1].as_f32().unwrap().iter().all(|v| v.is_nan()));
}

/// `concat` with pieces of size 0 along the axis: last, first, between, only.
#[test]
fn concat_with_empty_pieces() {
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[2, 3, 2]");
    let empty =
        m.op(Op::Slice { start: vec![d(0), d(0), d(0)], end: vec![d(2), d(3), d(0)], step: vec![1, 1, 1] }, &[x]);
    m.emit(Op::Concat { axis: 2 }, &[x, empty], "concat [x, empty]");
    m.emit(Op::Concat { axis: 2 }, &[empty, x], "concat [empty, x]");
    m.emit(Op::Concat { axis: 2 }, &[x, empty, x], "concat [x, empty, x]");
    m.emit(Op::Concat { axis: 2 }, &[empty, empty], "concat [empty, empty]");
    let p = m.verified("concat_empty");
    let mut g = Gen(62);
    check(&p, "main", &[g.f32s(&[2, 3, 2], -2.0, 2.0)], &[0]);
}

/// A slice whose end the shape rules trusted (`:16` of a symbolic `N`) on an axis that
/// turns out shorter: both refuse, with the interpreter's wording when the sizes are
/// known, and by a run-time failure when `N` is dynamic; a negative constant start is
/// clamped like an end past the axis.
#[test]
fn slices_past_the_end_and_before_the_start() {
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[2, N]");
    let head = Op::Slice { start: vec![d(0), d(0)], end: vec![d(2), d(16)], step: vec![1, 1] };
    m.emit_as(head, &[x], "f32[2, 16]", "x[:, :16]");
    let p = m.verified("slice_past");
    assert_refused(&p, "main", &[f32s(&[2, 8], &[1.0; 16])], "result is f32[2, 8], declared f32[2, 16]");
    let mut interp = Interpreter::new(&p);
    let mut jit = backend(&p, 0);
    for n in [20, 24] {
        let x = Gen(63).f32s(&[2, n], -1.0, 1.0);
        check_with(&p, "main", (&[x], Edges::Full), &[0], &mut interp, jit.as_mut());
    }
    let short = f32s(&[2, 8], &[1.0; 16]);
    refused_by_both(&mut interp, jit.as_mut(), "main", &[short.clone()], "declared");
    assert!(run_checked(jit.as_mut(), "main", &[short], 0).unwrap_err().contains(SHORT_SLICE));
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[8]");
    for (start, end) in [(-92, 3), (-1, 100), (-8, 8)] {
        let op = Op::Slice { start: vec![d(start)], end: vec![d(end)], step: vec![1] };
        m.emit(op, &[x], format!("x[{start}:{end}] (bounds already normalised)"));
    }
    let p = m.verified("slice_clamped");
    check(&p, "main", &[Gen(64).f32s(&[8], -1.0, 1.0)], &[0]);
}

/// Long real transforms agree with the interpreter (each backend checks how it computes
/// them in `check_long_ffts`).
#[test]
fn long_real_ffts() {
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[2, 4096]");
    let f = m.arg("f64[3, 1000]");
    let long = long_ffts().then(|| m.arg("f32[1, 65536]"));
    let z = m.emit(Op::Rfft { axis: 1 }, &[x], "rfft 4096 points");
    m.emit(Op::Irfft { axis: 1, n: d(4096) }, &[z], "irfft 4096 points");
    let zf = m.emit(Op::Rfft { axis: 1 }, &[f], "rfft f64 1000 points");
    m.emit_as(Op::Irfft { axis: 1, n: d(1000) }, &[zf], "f64[3, 1000]", "irfft to f64 1000 points");
    let zt = m.emit(Op::Rfft { axis: 0 }, &[f], "rfft 3 points (a table)");
    m.emit(Op::Irfft { axis: 0, n: d(3) }, &[zt], "irfft 3 points (a table)");
    if let Some(long) = long {
        let zl = m.op(Op::Rfft { axis: 1 }, &[long]);
        let keep = Op::Slice { start: vec![d(0), d(0)], end: vec![d(1), d(16)], step: vec![1, 1] };
        m.emit(keep, &[zl], "the first 16 of 32769 coefficients of 65536 points");
    }
    let p = m.verified("long_fft");
    let mut g = Gen(65);
    let inputs: Vec<Tensor> = p.main().args.iter().map(|(_, t)| g.any(t)).collect();
    check_edges(&p, "main", &inputs, &[0], Edges::Numbers);
    check_long_ffts(&p, &inputs);
}

// ---------------------------------------------------------------------------------------
// Forward: creation and parameters

#[test]
fn iota_const_and_param() {
    let param =
        |name: &str, t: &str, init: Init, trainable| ParamDecl { name: name.into(), ty: ty(t), init, trainable };
    let params = vec![
        param("p.zeros", "f32[2, 3]", Init::Zeros, true),
        param("p.ones", "f64[3]", Init::Ones, true),
        param("p.const", "f32[4]", Init::Constant(0.25), false),
        param("p.normal", "f32[3, 4]", Init::Normal { mean: 0.5, std: 2.0 }, true),
        param("p.uniform", "f64[2, 2]", Init::Uniform { low: -1.0, high: 3.0 }, true),
        param("layer.0.w", "f32[5]", Init::Uniform { low: -0.1, high: 0.1 }, true),
    ];
    let mut m = Main::new(vec![]);
    let x = m.arg("f32[3, 4]");
    m.emit_as(Op::Iota { axis: 0 }, &[], "i64[3, 4]", "iota i64 axis 0");
    m.emit_as(Op::Iota { axis: 1 }, &[], "i64[3, 4]", "iota i64 axis 1");
    m.emit_as(Op::Iota { axis: 0 }, &[], "f32[5]", "iota f32");
    m.emit_as(Op::Iota { axis: 1 }, &[], "f64[2, 3]", "iota f64 axis 1");
    m.emit_as(Op::Iota { axis: 2 }, &[], "i64[2, 2, 3]", "iota rank 3 axis 2");
    for (v, t) in [
        (0.5, "f32[]"),
        (f64::NEG_INFINITY, "f32[]"),
        (1e-5, "f32[]"),
        (0.1, "f64[]"),
        (-1e300, "f64[]"),
        (3.0, "i64[]"),
        (-7.0, "i64[]"),
        (1.0, "bool[]"),
        (0.0, "bool[]"),
        (2.5, "c64[]"),
    ] {
        m.emit_as(Op::Const(v), &[], t, format!("const {v} : {t}"));
    }
    for p in &params {
        let t = p.ty.to_string();
        m.emit_as(Op::Param(p.name.clone()), &[], &t, format!("param {}", p.name));
    }
    let w = m.op_as(Op::Param("p.normal".into()), &[], "f32[3, 4]");
    m.emit(bin(BinaryOp::Mul), &[w, x], "param * x");
    let p = verified(m.program("creation", params));
    let inputs = vec![Gen(71).f32s(&[3, 4], -1.0, 1.0)];
    let mut interp = Interpreter::new(&p);
    interp.init_params(3).expect("params");
    let mut jit = backend(&p, 3);
    check_with(&p, "main", (&inputs, Edges::Full), &[0], &mut interp, jit.as_mut());
    // A parameter set after the first run reaches the compiled module.
    let value = Gen(72).f32s(&[3, 4], -5.0, 5.0);
    interp.set_param_value("p.normal", value.clone()).unwrap();
    jit.set_param_value("p.normal", value.clone()).unwrap();
    let want = check_with(&p, "main", (&inputs, Edges::Full), &[0], &mut interp, jit.as_mut());
    assert_eq!(want[p.main().result_names.iter().position(|n| n == "param p.normal").unwrap()], value);
}

// ---------------------------------------------------------------------------------------
// Forward: random values

/// A function of `(args) -> results` built by `body`.
fn func(
    name: &str,
    sigs: &Program,
    args: &[&str],
    body: impl FnOnce(&mut FuncBuilder, &Program, &[ValueId]) -> Vec<ValueId>,
) -> Func {
    let mut b = FuncBuilder::new(name);
    let xs: Vec<ValueId> = args.iter().enumerate().map(|(i, t)| b.arg(t, &format!("x{i}"))).collect();
    let rs = body(&mut b, sigs, &xs);
    let names: Vec<String> = (0..rs.len()).map(|i| format!("r{i}")).collect();
    let outs: Vec<(ValueId, &str)> = rs.iter().zip(&names).map(|(v, n)| (*v, n.as_str())).collect();
    b.finish(&outs)
}

fn sigs_of(funcs: &[Func]) -> Program {
    Program { funcs: funcs.to_vec(), ..Program::default() }
}

/// `rand.uniform` / `rand.normal` at the top level and inside `call`, `stack`, `vmap`,
/// `scan` (forward and reverse) and nested (`vmap` of `call`, `scan` of `vmap` of `call`),
/// value for value, for several seeds.
#[test]
fn random_values_match_everywhere() {
    let mut fs: Vec<Func> = Vec::new();
    let uni = |seed| Op::RandUniform { seed };
    let nor = |seed| Op::RandNormal { seed };
    fs.push(func("noisy", &sigs_of(&fs), &["f32[2, 3]"], |b, p, x| {
        let u = b.op_as(p, uni(1), &[], "f32[2, 3]");
        let y = b.op(p, bin(BinaryOp::Add), &[x[0], u]);
        let n = b.op_as(p, nor(2), &[], "f32[3]");
        vec![y, n]
    }));
    fs.push(func("jitter", &sigs_of(&fs), &["f32[3]"], |b, p, x| {
        let u = b.op_as(p, uni(8), &[], "f32[3]");
        vec![b.op(p, bin(BinaryOp::Add), &[x[0], u])]
    }));
    fs.push(func("row", &sigs_of(&fs), &["f32[3]"], |b, p, x| {
        let n = b.op_as(p, nor(3), &[], "f32[3]");
        let y = b.op(p, bin(BinaryOp::Mul), &[x[0], n]);
        let c = b.op(p, Op::Call("jitter".into()), &[y]);
        let u = b.op_as(p, uni(4), &[], "f64[2]");
        vec![c, u]
    }));
    fs.push(func("row.kept", &sigs_of(&fs), &["f32[1, 3]"], |b, p, x| {
        let u = b.op_as(p, uni(u64::MAX - 5), &[], "f32[1, 3]");
        vec![b.op(p, bin(BinaryOp::Add), &[x[0], u])]
    }));
    fs.push(func("step", &sigs_of(&fs), &["f32[3]", "f32[3]"], |b, p, x| {
        let n = b.op_as(p, nor(5), &[], "f32[3]");
        let xn = b.op(p, bin(BinaryOp::Mul), &[x[1], n]);
        let h = b.op(p, bin(BinaryOp::Add), &[x[0], xn]);
        let h = b.op(p, Op::Call("jitter".into()), &[h]);
        let u = b.op_as(p, uni(6), &[], "f64[2]");
        vec![h, u]
    }));
    fs.push(func("rows.step", &sigs_of(&fs), &["f32[3]", "f32[2, 3]"], |b, p, x| {
        let vm = Op::Vmap { func: "row".into(), keep: vec![false], out_keep: vec![false, false] };
        let r = b.op_multi(p, vm, &[x[1]]);
        let s = b.op(p, reduce(ReduceOp::Sum, &[0], false), &[r[0]]);
        let h = b.op(p, bin(BinaryOp::Add), &[x[0], s]);
        vec![h, r[1]]
    }));
    for (name, seed) in [("s.0", 7), ("s.1", 9)] {
        fs.push(func(name, &sigs_of(&fs), &["f32[2, 3]"], |b, p, x| {
            let u = b.op_as(p, if seed == 7 { uni(seed) } else { nor(seed) }, &[], "f32[2, 3]");
            vec![b.op(p, bin(BinaryOp::Add), &[x[0], u])]
        }));
    }
    let mut m = Main::new(fs);
    let x = m.arg("f32[2, 3]");
    let rows = m.arg("f32[4, 3]");
    let seq = m.arg("f32[5, 3]");
    let h0 = m.arg("f32[3]");
    m.emit_as(uni(3), &[], "f32[2, 5]", "uniform f32");
    m.emit_as(uni(3), &[], "f64[7]", "uniform f64");
    m.emit_as(nor(4), &[], "f32[7]", "normal f32 (odd count)");
    m.emit_as(nor(4), &[], "f64[2, 3]", "normal f64");
    m.emit_as(nor(u64::MAX), &[], "f32[3]", "normal, largest op seed");
    m.emit_multi(Op::Call("noisy".into()), &[x], "call noisy");
    m.emit_multi(Op::Call("noisy".into()), &[x], "call noisy again");
    m.emit(Op::Stack(vec!["s.0".into(), "s.1".into(), "s.0".into()]), &[x], "stack");
    let vm = Op::Vmap { func: "row".into(), keep: vec![false], out_keep: vec![false, false] };
    m.emit_multi(vm, &[rows], "vmap row");
    let vk = Op::Vmap { func: "row.kept".into(), keep: vec![true], out_keep: vec![true] };
    m.emit_multi(vk, &[rows], "vmap row.kept");
    for reverse in [false, true] {
        let sc = Op::Scan { func: "step".into(), axis: 0, carries: 1, xs: 1, reverse };
        m.emit_multi(sc, &[h0, seq], &format!("scan step reverse={reverse}"));
    }
    let rows_seq = m.arg("f32[3, 2, 3]");
    let sc = Op::Scan { func: "rows.step".into(), axis: 0, carries: 1, xs: 1, reverse: true };
    m.emit_multi(sc, &[h0, rows_seq], "scan of vmap of call");
    let p = m.verified("random");
    let mut g = Gen(81);
    let inputs: Vec<Tensor> = p.main().args.iter().map(|(_, t)| g.any(t)).collect();
    check(&p, "main", &inputs, &[0, 42, 0xdead_beef_0000_0001]);
}

// ---------------------------------------------------------------------------------------
// Forward: control

/// `call` with several results, `stack` repeating an entry, every `vmap` keep/out_keep
/// combination, and `scan` forward and reverse with several carries, outputs and
/// invariants along axes 0, 1 and 2, and nested inside each other.
#[test]
fn call_stack_vmap_and_scan() {
    let mut fs: Vec<Func> = Vec::new();
    fs.push(func("split", &sigs_of(&fs), &["f32[2, 4]"], |b, p, x| {
        let sl = |lo, hi| Op::Slice { start: vec![d(0), d(lo)], end: vec![d(2), d(hi)], step: vec![1, 1] };
        let a = b.op(p, sl(0, 2), &[x[0]]);
        let c = b.op(p, sl(2, 4), &[x[0]]);
        let c = b.op(p, bin(BinaryOp::Mul), &[c, c]);
        let s = b.op(p, reduce(ReduceOp::Sum, &[1], false), &[x[0]]);
        vec![a, c, s]
    }));
    fs.push(func("st.a", &sigs_of(&fs), &["f32[2, 4]"], |b, p, x| {
        let y = b.op(p, Op::Permute(vec![1, 0]), &[x[0]]);
        let y = b.op(p, Op::MatMul, &[x[0], y]);
        let y = b.op(p, Op::MatMul, &[y, x[0]]);
        vec![b.op(p, Op::Unary(UnaryOp::Tanh), &[y])]
    }));
    fs.push(func("st.b", &sigs_of(&fs), &["f32[2, 4]"], |b, p, x| {
        let s = b.op(p, Op::Unary(UnaryOp::Sigmoid), &[x[0]]);
        vec![b.op(p, bin(BinaryOp::Mul), &[x[0], s])]
    }));
    fs.push(func("pair", &sigs_of(&fs), &["f32[1, 4]", "f32[4]"], |b, p, x| {
        let v = b.op_as(p, Op::Broadcast, &[x[1]], "f32[1, 4]");
        let y = b.op(p, bin(BinaryOp::Mul), &[x[0], v]);
        let s = b.op(p, reduce(ReduceOp::Sum, &[0], false), &[x[1]]);
        vec![y, s]
    }));
    fs.push(func("rowdot", &sigs_of(&fs), &["f32[4]", "f32[4]"], |b, p, x| {
        let m = b.op(p, bin(BinaryOp::Mul), &[x[0], x[1]]);
        let s = b.op(p, reduce(ReduceOp::Sum, &[0], false), &[m]);
        let a = b.op(p, bin(BinaryOp::Sub), &[x[0], x[1]]);
        vec![s, a]
    }));
    fs.push(func("diff", &sigs_of(&fs), &["f32[1, 4]", "f32[1, 4]"], |b, p, x| {
        vec![b.op(p, bin(BinaryOp::Sub), &[x[0], x[1]])]
    }));
    fs.push(func(
        "cell2",
        &sigs_of(&fs),
        &["f32[2, 3]", "i64[]", "f32[2, 4]", "f32[2, 3]", "f32[4, 3]", "f32[2, 3]"],
        |b, p, x| {
            let xw = b.op(p, Op::MatMul, &[x[2], x[4]]);
            let s = b.op(p, bin(BinaryOp::Add), &[x[0], xw]);
            let s = b.op(p, bin(BinaryOp::Add), &[s, x[5]]);
            let h = b.op(p, Op::Unary(UnaryOp::Tanh), &[s]);
            let one = b.op_as(p, Op::Const(1.0), &[], "i64[]");
            let c = b.op(p, bin(BinaryOp::Add), &[x[1], one]);
            let y1 = b.op(p, bin(BinaryOp::Mul), &[h, x[3]]);
            let y2 = b.op(p, reduce(ReduceOp::Sum, &[1], false), &[h]);
            vec![h, c, y1, y2]
        },
    ));
    fs.push(func("acc", &sigs_of(&fs), &["f32[3]", "f32[3]"], |b, p, x| {
        let s = b.op(p, bin(BinaryOp::Add), &[x[0], x[1]]);
        let y = b.op(p, bin(BinaryOp::Mul), &[x[0], x[1]]);
        vec![s, y]
    }));
    fs.push(func("mix2", &sigs_of(&fs), &["f32[2, 3]", "f32[2, 3]"], |b, p, x| {
        let y = b.op(p, bin(BinaryOp::Mul), &[x[0], x[1]]);
        let h = b.op(p, bin(BinaryOp::Add), &[x[0], y]);
        let h = b.op(p, Op::Unary(UnaryOp::Sin), &[h]);
        vec![h, y]
    }));
    fs.push(func("jitterless", &sigs_of(&fs), &["f32[4]"], |b, p, x| vec![b.op(p, Op::Unary(UnaryOp::Cos), &[x[0]])]));
    fs.push(func("nest", &sigs_of(&fs), &["f32[4]", "f32[2, 4]"], |b, p, x| {
        let vm = Op::Vmap { func: "rowdot".into(), keep: vec![false, false], out_keep: vec![false, false] };
        let r = b.op_multi(p, vm, &[x[1], x[1]]);
        let s = b.op(p, reduce(ReduceOp::Sum, &[0], false), &[r[1]]);
        let h = b.op(p, bin(BinaryOp::Add), &[x[0], s]);
        let h = b.op(p, Op::Call("jitterless".into()), &[h]);
        vec![h, r[0]]
    }));
    let mut m = Main::new(fs);
    let x = m.arg("f32[2, 4]");
    let xs = m.arg("f32[5, 4]");
    let vs = m.arg("f32[5, 4]");
    let h0 = m.arg("f32[2, 3]");
    let c0 = m.arg("i64[]");
    let seq = m.arg("f32[2, 6, 4]");
    let mask = m.arg("f32[2, 6, 3]");
    let wc = m.arg("f32[4, 3]");
    let bias = m.arg("f32[2, 3]");
    let s0 = m.arg("f32[3]");
    let seq0 = m.arg("f32[4, 3]");
    let seq2 = m.arg("f32[2, 3, 5]");
    let n0 = m.arg("f32[4]");
    let nseq = m.arg("f32[3, 2, 4]");
    m.emit_multi(Op::Call("split".into()), &[x], "call split");
    m.emit(Op::Stack(vec!["st.a".into(), "st.b".into(), "st.a".into()]), &[x], "stack");
    let vmap = |func: &str, keep: &[bool], out_keep: &[bool]| Op::Vmap {
        func: func.into(),
        keep: keep.to_vec(),
        out_keep: out_keep.to_vec(),
    };
    m.emit_multi(vmap("pair", &[true, false], &[true, false]), &[xs, vs], "vmap keep [t, f] out_keep [t, f]");
    m.emit_multi(vmap("rowdot", &[false, false], &[false, false]), &[xs, vs], "vmap keep [f, f] out_keep [f, f]");
    m.emit_multi(vmap("diff", &[true, true], &[false]), &[xs, vs], "vmap keep [t, t] out_keep [f]");
    m.emit_multi(vmap("diff", &[true, true], &[true]), &[xs, vs], "vmap keep [t, t] out_keep [t]");
    for reverse in [false, true] {
        let sc = Op::Scan { func: "cell2".into(), axis: 1, carries: 2, xs: 2, reverse };
        m.emit_multi(sc, &[h0, c0, seq, mask, wc, bias], &format!("scan cell2 axis 1 reverse={reverse}"));
        let sc = Op::Scan { func: "acc".into(), axis: 0, carries: 1, xs: 1, reverse };
        m.emit_multi(sc, &[s0, seq0], &format!("scan acc axis 0 reverse={reverse}"));
        let sc = Op::Scan { func: "mix2".into(), axis: 2, carries: 1, xs: 1, reverse };
        m.emit_multi(sc, &[h0, seq2], &format!("scan mix2 axis 2 reverse={reverse}"));
        let sc = Op::Scan { func: "nest".into(), axis: 0, carries: 1, xs: 1, reverse };
        m.emit_multi(sc, &[n0, nseq], &format!("scan nest (vmap and call inside) reverse={reverse}"));
    }
    let empty_seq = m.arg("f32[0, 3]");
    let empty_rows = m.arg("f32[0, 4]");
    for reverse in [false, true] {
        let sc = Op::Scan { func: "acc".into(), axis: 0, carries: 1, xs: 1, reverse };
        m.emit_multi(sc, &[s0, empty_seq], &format!("scan of no steps reverse={reverse}"));
    }
    m.emit_multi(vmap("rowdot", &[false, false], &[false, false]), &[empty_rows, empty_rows], "vmap of no samples");
    let p = m.verified("control");
    let mut g = Gen(91);
    let inputs: Vec<Tensor> = p.main().args.iter().map(|(_, t)| g.any(t)).collect();
    check_edges(&p, "main", &inputs, &[0], Edges::Moderate);
}

// ---------------------------------------------------------------------------------------
// Forward: the sample program

/// Every function of `testutil::sample_program()` (which uses every op variant), through a
/// copy that returns every value the function defines, on concrete sizes.
#[test]
fn every_function_of_the_sample_program() {
    let mut p = sample_program();
    let sizes = [("B", 2), ("T", 3), ("L", 6), ("N", 3), ("M", 2), ("K", 2)];
    let mut probes = Vec::new();
    for f in &p.funcs {
        let mut probe = f.clone();
        probe.name = format!("probe.{}", f.name);
        for inst in &f.body {
            for (r, _) in inst.results() {
                probe.results.push(r);
                probe.result_names.push(format!("{r} = {}", inst.op.name()));
            }
        }
        probes.push(probe);
    }
    let names: Vec<String> = probes.iter().map(|f| f.name.clone()).collect();
    p.funcs.extend(probes);
    let p = verified(p);
    let mut g = Gen(101);
    for name in names {
        let f = p.func(&name).unwrap();
        let inputs: Vec<Tensor> = f
            .args
            .iter()
            .map(|(_, t)| {
                let shape: Vec<Dim> = t
                    .shape
                    .iter()
                    .map(|dim| match dim.as_const() {
                        Some(_) => dim.clone(),
                        None => {
                            let s = dim.to_string();
                            d(sizes.iter().find(|(n, _)| *n == s).unwrap_or_else(|| panic!("size {s}")).1)
                        }
                    })
                    .collect();
                let t = TensorType::new(t.dtype, shape);
                match t.dtype {
                    DType::I64 => g.i64s(&t.const_shape().unwrap(), 0, 100),
                    _ => g.any(&t),
                }
            })
            .collect();
        check_edges(&p, &name, &inputs, &[5], Edges::Moderate);
    }
}

// ---------------------------------------------------------------------------------------
// Gradients

/// How a gradient test input is drawn.
#[derive(Copy, Clone)]
enum In {
    /// Uniform in [-2, 2).
    Any,
    /// Uniform in [0.5, 2).
    Positive,
    /// i64 indices in `[0, n)`.
    Index(i64),
}

/// Builds `main(x..., r...) -> loss` with `loss = sum_k sum(y_k * r_k)` over the values
/// `y_k` that `build` returns (complex `y`: `sum(real(y) * r + imag(y) * r')`), its
/// gradient program with respect to every f32 input (`call`/`stack` inlined, then
/// `autodiff::gradient`, as `tests/gradcheck.rs` and train steps build it), and checks
/// the loss and every gradient.
fn grad_check(
    name: &str,
    inputs: &[(&str, In)],
    aux: Vec<Func>,
    build: impl FnOnce(&mut FuncBuilder, &Program, &[ValueId]) -> Vec<(ValueId, String)>,
) {
    let sigs = sigs_of(&aux);
    let mut b = FuncBuilder::new("main");
    let xs: Vec<ValueId> = inputs.iter().enumerate().map(|(i, (t, _))| b.arg(t, &format!("x{i}"))).collect();
    let ys = build(&mut b, &sigs, &xs);
    assert!(!ys.is_empty());
    let mut loss: Option<ValueId> = None;
    for (k, (y, _)) in ys.iter().enumerate() {
        let yt = b.type_of(*y).clone();
        let all = |t: &TensorType| reduce(ReduceOp::Sum, &(0..t.rank()).collect::<Vec<_>>(), false);
        let l = if yt.dtype == DType::C64 {
            let rt = yt.with_dtype(DType::F32);
            let r1 = b.arg(&rt.to_string(), &format!("r{k}.re"));
            let r2 = b.arg(&rt.to_string(), &format!("r{k}.im"));
            let re = b.op(&sigs, Op::Real, &[*y]);
            let im = b.op(&sigs, Op::Imag, &[*y]);
            let a = b.op(&sigs, bin(BinaryOp::Mul), &[re, r1]);
            let c = b.op(&sigs, bin(BinaryOp::Mul), &[im, r2]);
            let s = b.op(&sigs, bin(BinaryOp::Add), &[a, c]);
            b.op(&sigs, all(&rt), &[s])
        } else {
            let r = b.arg(&yt.to_string(), &format!("r{k}"));
            let p = b.op(&sigs, bin(BinaryOp::Mul), &[*y, r]);
            b.op(&sigs, all(&yt), &[p])
        };
        loss = Some(match loss {
            None => l,
            Some(acc) => b.op(&sigs, bin(BinaryOp::Add), &[acc, l]),
        });
    }
    let f = b.finish(&[(loss.expect("a loss"), "loss")]);
    // `call` and `stack` are inlined before differentiation, as train steps do.
    let f = inline_calls(&sigs, &f).unwrap_or_else(|e| panic!("{name}: {e}"));
    let loss = f.results[0];
    let wrt_idx: Vec<usize> = (0..inputs.len()).filter(|&i| f.args[i].1.dtype == DType::F32).collect();
    let wrt: Vec<ValueId> = wrt_idx.iter().map(|&i| f.args[i].0).collect();
    let mut funcs = vec![f];
    funcs.extend(aux);
    let p = Program { name: name.into(), params: vec![], funcs };
    let table = FuncTable::new(&p);
    let mut g = gradient(p.main(), &table, loss, &wrt).unwrap_or_else(|e| panic!("{name}: {e}"));
    for (k, &i) in wrt_idx.iter().enumerate() {
        // Name each gradient after the output(s) its input feeds.
        let me = format!("x{i}");
        let feeds: Vec<&str> = ys
            .iter()
            .filter(|(_, n)| n.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == me))
            .map(|(_, n)| n.as_str())
            .collect();
        g.result_names[1 + k] = format!("d/dx{i} ({})", feeds.join("; "));
    }
    let mut funcs = vec![g];
    funcs.extend(p.funcs[1..].iter().cloned());
    funcs.extend(table.added.into_inner());
    let gp = verified(Program { funcs, ..p.clone() });
    assert_eq!(gp.main().results.len(), 1 + wrt.len());
    let mut rng = Gen(0x5eed ^ name.len() as u64);
    let values: Vec<Tensor> = gp
        .main()
        .args
        .iter()
        .enumerate()
        .map(|(i, (_, t))| {
            let shape = t.const_shape().expect("concrete");
            match inputs.get(i).map(|x| x.1).unwrap_or(In::Any) {
                In::Any => rng.any(t),
                In::Positive => rng.f32s(&shape, 0.5, 2.0),
                In::Index(n) => rng.i64s(&shape, 0, n),
            }
        })
        .collect();
    check_edges(&gp, "main", &values, &[0], Edges::Moderate);
}

/// The inputs' names in `build`'s output labels: `x3` for input 3.
fn label(op: &str, xs: &[usize]) -> String {
    let names: Vec<String> = xs.iter().map(|i| format!("x{i}")).collect();
    format!("{op}({})", names.join(", "))
}

#[test]
fn gradients_of_unary_and_binary_ops() {
    let unary: Vec<UnaryOp> = UNARY_OPS.iter().copied().filter(|u| *u != UnaryOp::Not).collect();
    let binary = [
        (BinaryOp::Add, In::Any),
        (BinaryOp::Sub, In::Any),
        (BinaryOp::Mul, In::Any),
        (BinaryOp::Max, In::Any),
        (BinaryOp::Min, In::Any),
        (BinaryOp::Div, In::Positive),
        (BinaryOp::Pow, In::Positive),
        (BinaryOp::Rem, In::Positive),
    ];
    let mut inputs: Vec<(&str, In)> = Vec::new();
    for u in &unary {
        let positive = matches!(u, UnaryOp::Log | UnaryOp::Log1p | UnaryOp::Sqrt | UnaryOp::Rsqrt);
        inputs.push(("f32[2, 3]", if positive { In::Positive } else { In::Any }));
    }
    for (_, kind) in &binary {
        inputs.push(("f32[2, 3]", *kind));
        inputs.push(("f32[2, 3]", *kind));
    }
    inputs.extend([("f32[2, 3]", In::Any); 3]);
    grad_check("grad_elementwise", &inputs, vec![], |b, p, x| {
        let mut ys = Vec::new();
        for (i, u) in unary.iter().enumerate() {
            ys.push((b.op(p, Op::Unary(*u), &[x[i]]), label(unary_name(*u), &[i])));
        }
        let n = unary.len();
        for (k, (op, _)) in binary.iter().enumerate() {
            let (l, r) = (n + 2 * k, n + 2 * k + 1);
            ys.push((b.op(p, bin(*op), &[x[l], x[r]]), label(binary_name(*op), &[l, r])));
        }
        let s = n + 2 * binary.len();
        let c = b.op(p, bin(BinaryOp::Gt), &[x[s], x[s + 1]]);
        ys.push((b.op(p, Op::Select, &[c, x[s + 1], x[s + 2]]), label("select", &[s, s + 1, s + 2])));
        ys
    });
}

#[test]
fn gradients_of_reductions_and_contractions() {
    let inputs = [
        ("f32[2, 3, 4]", In::Any),    // 0: reduce.sum
        ("f32[2, 3, 4]", In::Any),    // 1: reduce.mean
        ("f32[2, 3, 4]", In::Any),    // 2: reduce.max
        ("f32[2, 3, 4]", In::Any),    // 3: reduce.min
        ("f32[3, 4]", In::Any),       // 4, 5: matmul rank 2
        ("f32[4, 5]", In::Any),       //
        ("f32[2, 3, 4]", In::Any),    // 6, 7: matmul rank 3
        ("f32[2, 4, 5]", In::Any),    //
        ("f32[2, 2, 3, 4]", In::Any), // 8, 9: matmul rank 4
        ("f32[2, 2, 4, 3]", In::Any), //
        ("f32[3, 4]", In::Any),       // 10, 11: einsum ij,jk->ik
        ("f32[4, 2]", In::Any),       //
        ("f32[3, 4]", In::Any),       // 12, 13: einsum ij,k->kj
        ("f32[5]", In::Any),          //
        ("f32[3, 4, 2]", In::Any),    // 14: einsum ijk->ki
        ("f32[2, 3, 4]", In::Any),    // 15, 16: einsum bij,bkj->bik
        ("f32[2, 5, 4]", In::Any),    //
        ("f32[2, 3, 4]", In::Any),    // 17: reduce.sum over no axes
    ];
    grad_check("grad_reduce_contract", &inputs, vec![], |b, p, x| {
        let mut ys = Vec::new();
        let mut add = |b: &mut FuncBuilder, op: Op, xs: &[usize], what: &str| {
            let args: Vec<ValueId> = xs.iter().map(|&i| x[i]).collect();
            ys.push((b.op(p, op, &args), label(what, xs)));
        };
        add(b, reduce(ReduceOp::Sum, &[0, 2], false), &[0], "reduce.sum [0, 2]");
        add(b, reduce(ReduceOp::Mean, &[1], true), &[1], "reduce.mean [1] keepdim");
        add(b, reduce(ReduceOp::Max, &[2], false), &[2], "reduce.max [2]");
        add(b, reduce(ReduceOp::Min, &[0, 1], true), &[3], "reduce.min [0, 1] keepdim");
        add(b, Op::MatMul, &[4, 5], "matmul");
        add(b, Op::MatMul, &[6, 7], "matmul");
        add(b, Op::MatMul, &[8, 9], "matmul");
        add(b, Op::Einsum("ij,jk->ik".into()), &[10, 11], "einsum ij,jk->ik");
        add(b, Op::Einsum("ij,k->kj".into()), &[12, 13], "einsum ij,k->kj");
        add(b, Op::Einsum("ijk->ki".into()), &[14], "einsum ijk->ki");
        add(b, Op::Einsum("bij,bkj->bik".into()), &[15, 16], "einsum bij,bkj->bik");
        add(b, reduce(ReduceOp::Sum, &[], false), &[17], "reduce.sum []");
        ys
    });
}

#[test]
fn gradients_of_windows_and_movement() {
    let inputs = [
        ("f32[2, 4, 9]", In::Any),    // 0, 1: conv1d groups 2, stride 2, dilation 2
        ("f32[6, 2, 3]", In::Any),    //
        ("f32[1, 2, 5, 6]", In::Any), // 2, 3: conv2d stride (1, 2)
        ("f32[3, 2, 3, 2]", In::Any), //
        ("f32[1, 3, 7]", In::Any),    // 4, 5: depthwise conv1d
        ("f32[3, 1, 3]", In::Any),    //
        ("f32[2, 2, 7]", In::Any),    // 6: pool.max
        ("f32[1, 2, 5, 4]", In::Any), // 7: pool.avg 2d
        ("f32[2, 3, 4]", In::Any),    // 8: reshape + permute
        ("f32[3, 1]", In::Any),       // 9: broadcast
        ("f32[3, 8]", In::Any),       // 10: slice with steps
        ("f32[2, 3]", In::Any),       // 11, 12: concat
        ("f32[2, 2]", In::Any),       //
        ("f32[2, 3]", In::Any),       // 13: pad
        ("f32[4, 3]", In::Any),       // 14: gather (15: indices)
        ("i64[5]", In::Index(4)),     //
        ("f32[4, 3]", In::Any),       // 16, 18: scatter_add (17: indices)
        ("i64[5]", In::Index(4)),     //
        ("f32[5, 3]", In::Any),       //
        ("f32[2, 3]", In::Any),       // 19: cast f32 -> f64 -> f32
        ("f32[2, 2, 5]", In::Any),    // 20: gather along axis 2 (21: indices)
        ("i64[2, 3]", In::Index(5)),  //
        ("f32[2, 3, 4]", In::Any),    // 22: permute
        ("f32[2, 4, 9]", In::Any),    // 23, 24: pointwise conv1d of a transposed input
        ("f32[3, 9, 1]", In::Any),    //
        ("f32[2, 4, 3, 2]", In::Any), // 25, 26: pointwise conv2d
        ("f32[2, 4, 1, 1]", In::Any), //
    ];
    grad_check("grad_windows_movement", &inputs, vec![], |b, p, x| {
        let mut ys: Vec<(ValueId, String)> = Vec::new();
        let conv = |stride: &[i64], padding: &[(i64, i64)], dilation: &[i64], groups| Op::Conv {
            stride: stride.to_vec(),
            padding: padding.to_vec(),
            dilation: dilation.to_vec(),
            groups,
        };
        let y = b.op(p, conv(&[2], &[(1, 2)], &[2], 2), &[x[0], x[1]]);
        ys.push((y, label("conv1d", &[0, 1])));
        let y = b.op(p, conv(&[1, 2], &[(1, 1), (0, 1)], &[1, 1], 1), &[x[2], x[3]]);
        ys.push((y, label("conv2d", &[2, 3])));
        let y = b.op(p, conv(&[1], &[(2, 1)], &[1], 3), &[x[4], x[5]]);
        ys.push((y, label("conv1d depthwise", &[4, 5])));
        let xt = b.op(p, Op::Permute(vec![0, 2, 1]), &[x[23]]);
        let y = b.op(p, conv(&[1], &[(0, 0)], &[1], 1), &[xt, x[24]]);
        ys.push((y, label("conv1d pointwise", &[23, 24])));
        let y = b.op(p, conv(&[1, 1], &[(0, 0), (0, 0)], &[1, 1], 1), &[x[25], x[26]]);
        ys.push((y, label("conv2d pointwise", &[25, 26])));
        let pool = Op::Pool { op: PoolOp::Max, window: vec![3], stride: vec![2], padding: vec![(1, 1)] };
        ys.push((b.op(p, pool, &[x[6]]), label("pool.max", &[6])));
        let pool = Op::Pool { op: PoolOp::Avg, window: vec![2, 2], stride: vec![2, 1], padding: vec![(1, 0), (0, 0)] };
        ys.push((b.op(p, pool, &[x[7]]), label("pool.avg", &[7])));
        let r = b.op_as(p, Op::Reshape, &[x[8]], "f32[6, 4]");
        ys.push((b.op(p, Op::Permute(vec![1, 0]), &[r]), label("reshape, permute", &[8])));
        ys.push((b.op_as(p, Op::Broadcast, &[x[9]], "f32[2, 3, 4]"), label("broadcast", &[9])));
        let sl = Op::Slice { start: vec![d(1), d(1)], end: vec![d(3), d(8)], step: vec![1, 3] };
        ys.push((b.op(p, sl, &[x[10]]), label("slice", &[10])));
        ys.push((b.op(p, Op::Concat { axis: 1 }, &[x[11], x[12], x[11]]), label("concat", &[11, 12])));
        let pad = Op::Pad { padding: vec![(1, 0), (2, 1)], value: 0.5 };
        ys.push((b.op(p, pad, &[x[13]]), label("pad", &[13])));
        ys.push((b.op(p, Op::Gather { axis: 0 }, &[x[14], x[15]]), label("gather", &[14])));
        let sc = b.op(p, Op::ScatterAdd { axis: 0 }, &[x[16], x[17], x[18]]);
        ys.push((sc, label("scatter_add", &[16, 18])));
        let c = b.op_as(p, Op::Cast, &[x[19]], "f64[2, 3]");
        let c = b.op(p, Op::Unary(UnaryOp::Sin), &[c]);
        ys.push((b.op_as(p, Op::Cast, &[c], "f32[2, 3]"), label("cast, sin, cast", &[19])));
        ys.push((b.op(p, Op::Gather { axis: 2 }, &[x[20], x[21]]), label("gather axis 2", &[20])));
        ys.push((b.op(p, Op::Permute(vec![2, 0, 1]), &[x[22]]), label("permute", &[22])));
        ys
    });
}

#[test]
fn gradients_of_fft_and_complex_ops() {
    let inputs = [
        ("f32[2, 6]", In::Any), // 0: rfft even
        ("f32[7]", In::Any),    // 1: rfft odd
        ("f32[2, 4]", In::Any), // 2, 3: irfft(complex(re, im))
        ("f32[2, 4]", In::Any), //
        ("f32[3, 5]", In::Any), // 4: irfft(rfft) odd, axis 1
        ("f32[6, 2]", In::Any), // 5: irfft(rfft) even, axis 0
        ("f32[3]", In::Any),    // 6..9: complex multiply
        ("f32[3]", In::Any),
        ("f32[3]", In::Any),
        ("f32[3]", In::Any),
    ];
    grad_check("grad_fft", &inputs, vec![], |b, p, x| {
        let mut ys = Vec::new();
        ys.push((b.op(p, Op::Rfft { axis: 1 }, &[x[0]]), label("rfft", &[0])));
        ys.push((b.op(p, Op::Rfft { axis: 0 }, &[x[1]]), label("rfft", &[1])));
        let z = b.op(p, Op::Complex, &[x[2], x[3]]);
        ys.push((b.op(p, Op::Irfft { axis: 1, n: d(6) }, &[z]), label("irfft(complex)", &[2, 3])));
        let z = b.op(p, Op::Rfft { axis: 1 }, &[x[4]]);
        ys.push((b.op(p, Op::Irfft { axis: 1, n: d(5) }, &[z]), label("irfft(rfft)", &[4])));
        let z = b.op(p, Op::Rfft { axis: 0 }, &[x[5]]);
        let z = b.op(p, bin(BinaryOp::Mul), &[z, z]);
        ys.push((b.op(p, Op::Irfft { axis: 0, n: d(6) }, &[z]), label("irfft(rfft^2)", &[5])));
        let u = b.op(p, Op::Complex, &[x[6], x[7]]);
        let v = b.op(p, Op::Complex, &[x[8], x[9]]);
        ys.push((b.op(p, bin(BinaryOp::Mul), &[u, v]), label("complex mul", &[6, 7, 8, 9])));
        ys
    });
}

/// `cell(h: [2, 3], x: [2, 4], w: [4, 3]) -> (tanh(h + x @ w), tanh(..)^2)`.
fn rnn_cell() -> Func {
    func("cell", &Program::default(), &["f32[2, 3]", "f32[2, 4]", "f32[4, 3]"], |b, p, x| {
        let xw = b.op(p, Op::MatMul, &[x[1], x[2]]);
        let s = b.op(p, bin(BinaryOp::Add), &[x[0], xw]);
        let t = b.op(p, Op::Unary(UnaryOp::Tanh), &[s]);
        let y = b.op(p, bin(BinaryOp::Mul), &[t, t]);
        vec![t, y]
    })
}

/// `head(x: [1, 4], w: [4, 3]) -> (x @ w, sum(w))`.
fn head() -> Func {
    func("head", &Program::default(), &["f32[1, 4]", "f32[4, 3]"], |b, p, x| {
        let y = b.op(p, Op::MatMul, &[x[0], x[1]]);
        let s = b.op(p, reduce(ReduceOp::Sum, &[0, 1], false), &[x[1]]);
        vec![y, s]
    })
}

/// `sq(x: [2, 3]) -> x * sin(x)`, an entry of a `stack`.
fn sq() -> Func {
    func("sq", &Program::default(), &["f32[2, 3]"], |b, p, x| {
        let s = b.op(p, Op::Unary(UnaryOp::Sin), &[x[0]]);
        vec![b.op(p, bin(BinaryOp::Mul), &[x[0], s])]
    })
}

#[test]
fn gradients_of_scan_vmap_call_and_stack() {
    let cell = ["f32[2, 3]", "f32[2, 5, 4]", "f32[4, 3]"];
    let mut inputs: Vec<(&str, In)> = Vec::new();
    for _ in 0..3 {
        inputs.extend(cell.iter().map(|t| (*t, In::Any)));
    }
    inputs.push(("f32[5, 4]", In::Any));
    inputs.push(("f32[5, 4, 3]", In::Any));
    inputs.push(("f32[1, 4]", In::Any));
    inputs.push(("f32[4, 3]", In::Any));
    inputs.push(("f32[2, 3]", In::Any));
    grad_check("grad_control", &inputs, vec![rnn_cell(), head(), sq()], |b, p, x| {
        let scan = |reverse| Op::Scan { func: "cell".into(), axis: 1, carries: 1, xs: 1, reverse };
        let mut ys = Vec::new();
        let r = b.op_multi(p, scan(false), &[x[0], x[1], x[2]]);
        ys.push((r[1], label("scan outputs", &[0, 1, 2])));
        let r = b.op_multi(p, scan(false), &[x[3], x[4], x[5]]);
        ys.push((r[0], label("scan final carry", &[3, 4, 5])));
        let r = b.op_multi(p, scan(true), &[x[6], x[7], x[8]]);
        let s = b.op(p, reduce(ReduceOp::Sum, &[1], false), &[r[1]]);
        ys.push((b.op(p, bin(BinaryOp::Add), &[s, r[0]]), label("reverse scan", &[6, 7, 8])));
        let vm = Op::Vmap { func: "head".into(), keep: vec![true, false], out_keep: vec![true, false] };
        let r = b.op_multi(p, vm, &[x[9], x[10]]);
        let s = b.op_as(p, Op::Reshape, &[r[1]], "f32[5, 1]");
        let sb = b.op_as(p, Op::Broadcast, &[s], "f32[5, 3]");
        ys.push((b.op(p, bin(BinaryOp::Mul), &[r[0], sb]), label("vmap", &[9, 10])));
        let r = b.op_multi(p, Op::Call("head".into()), &[x[11], x[12]]);
        ys.push((r[0], label("call", &[11, 12])));
        ys.push((r[1], label("call", &[12])));
        let st = b.op(p, Op::Stack(vec!["sq".into(), "sq".into()]), &[x[13]]);
        ys.push((st, label("stack", &[13])));
        ys
    });
}
