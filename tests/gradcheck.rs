//! Gradient checks: every differentiable op's rule (through the reverse sweep) against
//! central finite differences, in f64.
//!
//! Each case builds `y = op(x...)` and the loss `sum(y * r)` with a fixed random `r`
//! (for complex `y`: `sum(real(y) * r + imag(y) * r2)`), differentiates it with
//! `archc_compiler::autodiff::gradient`, and compares every gradient element with
//! `(L(x + h) - L(x - h)) / 2h`. Real ops must agree to a relative error of 1e-6
//! (relative to max(1, |analytic|, |numeric|)); ops through `c64` (single precision,
//! the only complex dtype) or a cast to f32 to 2e-3.

use archc_compiler::autodiff::{gradient, FuncTable};
use archc_compiler::tir::testutil::{ty, FuncBuilder};
use archc_compiler::tir::{BinaryOp, DType, Dim, Func, Op, PoolOp, Program, ReduceOp, TensorType, UnaryOp, ValueId};
use archc_runtime::{Interpreter, Tensor};

struct Case {
    name: &'static str,
    inputs: Vec<&'static str>,
    /// Which inputs to differentiate (the others are indices or constants).
    wrt: Vec<usize>,
    /// Values drawn from [0.5, 2] instead of a standard normal.
    positive: bool,
    build: fn(&mut FuncBuilder, &Program, &[ValueId]) -> ValueId,
    /// Functions the case calls (bodies of `scan` and `vmap`).
    aux: fn() -> Vec<Func>,
}

fn no_aux() -> Vec<Func> {
    Vec::new()
}

fn case(
    name: &'static str,
    inputs: &[&'static str],
    build: fn(&mut FuncBuilder, &Program, &[ValueId]) -> ValueId,
) -> Case {
    let wrt = inputs.iter().enumerate().filter(|(_, t)| t.starts_with("f64")).map(|(i, _)| i).collect();
    Case { name, inputs: inputs.to_vec(), wrt, positive: false, build, aux: no_aux }
}

fn positive(mut c: Case) -> Case {
    c.positive = true;
    c
}

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        ((self.0 >> 11) as f64) / ((1u64 << 53) as f64)
    }

    fn normal(&mut self) -> f64 {
        let (u, v) = (self.next().max(1e-12), self.next());
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}

fn shape_of(t: &TensorType) -> Vec<usize> {
    t.const_shape().expect("concrete shapes in gradient checks")
}

fn random_input(t: &TensorType, rng: &mut Rng, positive: bool) -> Tensor {
    let s = shape_of(t);
    let n: usize = s.iter().product();
    match t.dtype {
        DType::F64 => {
            Tensor::from_f64(&s, (0..n).map(|_| if positive { 0.5 + 1.5 * rng.next() } else { rng.normal() }).collect())
        }
        DType::I64 => Tensor::from_i64(&s, (0..n).map(|_| (rng.next() * 3.0) as i64).collect()),
        other => panic!("unsupported input dtype {other}"),
    }
}

/// Builds `main(x..., r...) -> loss` for a case; returns it with the loss value.
fn program(c: &Case) -> (Program, ValueId) {
    let empty = Program { funcs: (c.aux)(), ..Program::default() };
    let mut b = FuncBuilder::new("main");
    let xs: Vec<ValueId> = c.inputs.iter().enumerate().map(|(i, t)| b.arg(t, &format!("x{i}"))).collect();
    let y = (c.build)(&mut b, &empty, &xs);
    let yt = b.type_of(y).clone();
    let all = |t: &TensorType| Op::Reduce { op: ReduceOp::Sum, axes: (0..t.rank()).collect(), keepdim: false };
    let loss = if yt.dtype == DType::C64 {
        let rt = yt.with_dtype(DType::F32).to_string().replace("f32", "f64");
        let r1 = b.arg(&rt, "r1");
        let r2 = b.arg(&rt, "r2");
        let re = b.op(&empty, Op::Real, &[y]);
        let im = b.op(&empty, Op::Imag, &[y]);
        let re = b.op_as(&empty, Op::Cast, &[re], &rt);
        let im = b.op_as(&empty, Op::Cast, &[im], &rt);
        let a = b.op(&empty, Op::Binary(BinaryOp::Mul), &[re, r1]);
        let bb = b.op(&empty, Op::Binary(BinaryOp::Mul), &[im, r2]);
        let s = b.op(&empty, Op::Binary(BinaryOp::Add), &[a, bb]);
        b.op(&empty, all(&ty(&rt)), &[s])
    } else {
        let r = b.arg(&yt.to_string(), "r");
        let p = b.op(&empty, Op::Binary(BinaryOp::Mul), &[y, r]);
        b.op(&empty, all(&yt), &[p])
    };
    let f = b.finish(&[(loss, "loss")]);
    let mut funcs = vec![f];
    funcs.extend(empty.funcs);
    (Program { name: c.name.into(), params: vec![], funcs }, loss)
}

fn loss_of(p: &Program, inputs: &[Tensor]) -> f64 {
    let out = Interpreter::new(p).run("main", inputs).expect("forward runs");
    out[0].to_f64_vec().expect("real loss")[0]
}

fn with_value(t: &Tensor, i: usize, v: f64) -> Tensor {
    let mut data = t.as_f64().expect("f64 input").to_vec();
    data[i] = v;
    Tensor::from_f64(t.shape(), data)
}

fn check(c: &Case) {
    let (p, loss) = program(c);
    let main: &Func = p.main();
    let wrt: Vec<ValueId> = c.wrt.iter().map(|&i| main.args[i].0).collect();
    let table = FuncTable::new(&p);
    let g = gradient(main, &table, loss, &wrt).unwrap_or_else(|e| panic!("{}: {e}", c.name));
    let mut funcs = vec![g];
    funcs.extend(p.funcs[1..].iter().cloned());
    funcs.extend(table.added.into_inner());
    let gp = Program { funcs, ..p.clone() };
    if let Err(e) = archc_compiler::tir::verify(&gp) {
        panic!("{}: gradient program does not verify: {e:?}\n{gp}", c.name);
    }
    let mut rng = Rng(0x5eed ^ c.name.len() as u64);
    let inputs: Vec<Tensor> = main
        .args
        .iter()
        .enumerate()
        .map(|(i, (_, t))| random_input(t, &mut rng, c.positive && i < c.inputs.len()))
        .collect();
    let out = Interpreter::new(&gp).run("main", &inputs).unwrap_or_else(|e| panic!("{}: {e}\n{gp}", c.name));
    // Anything routed through single precision (c64, or a cast to f32) is checked at
    // single-precision tolerance.
    let single = format!("{gp}").contains("c64") || format!("{gp}").contains("f32");
    let tol = if single { 2e-3 } else { 1e-6 };
    let h = if single { 1e-3 } else { 1e-6 };
    for (k, &i) in c.wrt.iter().enumerate() {
        let analytic = out[1 + k].to_f64_vec().expect("f64 gradient");
        let x = &inputs[i];
        for (j, a) in analytic.iter().enumerate() {
            let v = x.as_f64().expect("f64")[j];
            let mut plus = inputs.clone();
            plus[i] = with_value(x, j, v + h);
            let mut minus = inputs.clone();
            minus[i] = with_value(x, j, v - h);
            let numeric = (loss_of(&p, &plus) - loss_of(&p, &minus)) / (2.0 * h);
            let err = (a - numeric).abs() / 1f64.max(a.abs()).max(numeric.abs());
            assert!(err < tol, "{}: d/dx{i}[{j}]: analytic {a}, numeric {numeric} (rel err {err:.2e})", c.name);
        }
    }
}

fn un(u: UnaryOp) -> fn(&mut FuncBuilder, &Program, &[ValueId]) -> ValueId {
    macro_rules! f {
        ($($op:ident),*) => {
            match u {
                $(UnaryOp::$op => |b, p, x| b.op(p, Op::Unary(UnaryOp::$op), &[x[0]]),)*
                _ => unreachable!(),
            }
        };
    }
    f!(Neg, Exp, Log, Log1p, Sqrt, Rsqrt, Tanh, Sigmoid, Relu, Erf, Abs, Sin, Cos)
}

fn bin(o: BinaryOp) -> fn(&mut FuncBuilder, &Program, &[ValueId]) -> ValueId {
    macro_rules! f {
        ($($op:ident),*) => {
            match o {
                $(BinaryOp::$op => |b, p, x| b.op(p, Op::Binary(BinaryOp::$op), &[x[0], x[1]]),)*
                _ => unreachable!(),
            }
        };
    }
    f!(Add, Sub, Mul, Div, Pow, Rem, Max, Min)
}

fn cases() -> Vec<Case> {
    use UnaryOp::*;
    let mut v = Vec::new();
    for u in [Neg, Exp, Tanh, Sigmoid, Relu, Erf, Abs, Sin, Cos] {
        v.push(case("unary", &["f64[2, 3]"], un(u)));
    }
    for u in [Log, Log1p, Sqrt, Rsqrt] {
        v.push(positive(case("unary_positive", &["f64[2, 3]"], un(u))));
    }
    for o in [BinaryOp::Add, BinaryOp::Sub, BinaryOp::Mul, BinaryOp::Max, BinaryOp::Min] {
        v.push(case("binary", &["f64[2, 3]", "f64[2, 3]"], bin(o)));
    }
    for o in [BinaryOp::Div, BinaryOp::Pow, BinaryOp::Rem] {
        v.push(positive(case("binary_positive", &["f64[2, 3]", "f64[2, 3]"], bin(o))));
    }
    v.push(case("select", &["f64[2, 3]", "f64[2, 3]", "f64[2, 3]"], |b, p, x| {
        let c = b.op(p, Op::Binary(BinaryOp::Gt), &[x[0], x[1]]);
        b.op(p, Op::Select, &[c, x[1], x[2]])
    }));
    for r in [ReduceOp::Sum, ReduceOp::Mean, ReduceOp::Max, ReduceOp::Min] {
        v.push(case(
            "reduce",
            &["f64[2, 3, 4]"],
            match r {
                ReduceOp::Sum => {
                    |b, p, x| b.op(p, Op::Reduce { op: ReduceOp::Sum, axes: vec![0, 2], keepdim: false }, &[x[0]])
                }
                ReduceOp::Mean => {
                    |b, p, x| b.op(p, Op::Reduce { op: ReduceOp::Mean, axes: vec![1], keepdim: true }, &[x[0]])
                }
                ReduceOp::Max => {
                    |b, p, x| b.op(p, Op::Reduce { op: ReduceOp::Max, axes: vec![2], keepdim: false }, &[x[0]])
                }
                ReduceOp::Min => {
                    |b, p, x| b.op(p, Op::Reduce { op: ReduceOp::Min, axes: vec![0, 1], keepdim: true }, &[x[0]])
                }
            },
        ));
    }
    v.push(case("matmul", &["f64[2, 3, 4]", "f64[2, 4, 5]"], |b, p, x| b.op(p, Op::MatMul, &[x[0], x[1]])));
    v.push(case("einsum_mm", &["f64[3, 4]", "f64[4, 2]"], |b, p, x| {
        b.op(p, Op::Einsum("ij,jk->ik".into()), &[x[0], x[1]])
    }));
    v.push(case("einsum_outer_sum", &["f64[3, 4]", "f64[5]"], |b, p, x| {
        b.op(p, Op::Einsum("ij,k->kj".into()), &[x[0], x[1]])
    }));
    v.push(case("einsum_unary", &["f64[3, 4, 2]"], |b, p, x| b.op(p, Op::Einsum("ijk->ki".into()), &[x[0]])));
    v.push(case("conv1d", &["f64[2, 4, 9]", "f64[6, 2, 3]"], |b, p, x| {
        let op = Op::Conv { stride: vec![2], padding: vec![(1, 2)], dilation: vec![2], groups: 2 };
        b.op(p, op, &[x[0], x[1]])
    }));
    v.push(case("conv2d", &["f64[1, 2, 5, 6]", "f64[3, 2, 3, 2]"], |b, p, x| {
        let op = Op::Conv { stride: vec![1, 2], padding: vec![(1, 1), (0, 1)], dilation: vec![1, 1], groups: 1 };
        b.op(p, op, &[x[0], x[1]])
    }));
    v.push(case("conv2d_pointwise", &["f64[2, 3, 4, 2]", "f64[5, 3, 1, 1]"], |b, p, x| {
        let op = Op::Conv { stride: vec![1, 1], padding: vec![(0, 0), (0, 0)], dilation: vec![2, 1], groups: 1 };
        b.op(p, op, &[x[0], x[1]])
    }));
    v.push(case("pool_max", &["f64[2, 2, 7]"], |b, p, x| {
        let op = Op::Pool { op: PoolOp::Max, window: vec![3], stride: vec![2], padding: vec![(1, 1)] };
        b.op(p, op, &[x[0]])
    }));
    v.push(case("pool_avg2d", &["f64[1, 2, 5, 4]"], |b, p, x| {
        let op = Op::Pool { op: PoolOp::Avg, window: vec![2, 2], stride: vec![2, 1], padding: vec![(1, 0), (0, 0)] };
        b.op(p, op, &[x[0]])
    }));
    v.push(case("reshape_permute", &["f64[2, 3, 4]"], |b, p, x| {
        let r = b.op_as(p, Op::Reshape, &[x[0]], "f64[6, 4]");
        b.op(p, Op::Permute(vec![1, 0]), &[r])
    }));
    v.push(case("broadcast", &["f64[3, 1]"], |b, p, x| b.op_as(p, Op::Broadcast, &[x[0]], "f64[2, 3, 4]")));
    v.push(case("slice_step", &["f64[3, 8]"], |b, p, x| {
        let d = |c: i64| Dim::constant(c);
        b.op(p, Op::Slice { start: vec![d(1), d(1)], end: vec![d(3), d(8)], step: vec![1, 3] }, &[x[0]])
    }));
    v.push(case("concat", &["f64[2, 3]", "f64[2, 2]"], |b, p, x| b.op(p, Op::Concat { axis: 1 }, &[x[0], x[1]])));
    v.push(case("pad", &["f64[2, 3]"], |b, p, x| {
        b.op(p, Op::Pad { padding: vec![(1, 0), (2, 1)], value: 0.5 }, &[x[0]])
    }));
    v.push(case("gather", &["f64[4, 3]", "i64[5]"], |b, p, x| b.op(p, Op::Gather { axis: 0 }, &[x[0], x[1]])));
    v.push(case("scatter_add", &["f64[4, 3]", "i64[5]", "f64[5, 3]"], |b, p, x| {
        b.op(p, Op::ScatterAdd { axis: 0 }, &[x[0], x[1], x[2]])
    }));
    v.push(case("cast", &["f64[2, 3]"], |b, p, x| {
        let c = b.op_as(p, Op::Cast, &[x[0]], "f32[2, 3]");
        b.op_as(p, Op::Cast, &[c], "f64[2, 3]")
    }));
    v.push(case("rfft", &["f64[2, 6]"], |b, p, x| b.op(p, Op::Rfft { axis: 1 }, &[x[0]])));
    v.push(case("rfft_odd", &["f64[7]"], |b, p, x| b.op(p, Op::Rfft { axis: 0 }, &[x[0]])));
    v.push(case("irfft", &["f64[2, 4]", "f64[2, 4]"], |b, p, x| {
        let re = b.op_as(p, Op::Cast, &[x[0]], "f32[2, 4]");
        let im = b.op_as(p, Op::Cast, &[x[1]], "f32[2, 4]");
        let z = b.op(p, Op::Complex, &[re, im]);
        b.op_as(p, Op::Irfft { axis: 1, n: Dim::constant(6) }, &[z], "f64[2, 6]")
    }));
    v.push(case("spectral_layer", &["f64[2, 10]", "f64[2, 3]"], spectral_layer));
    v.push(case("complex_mul", &["f64[3]", "f64[3]", "f64[3]", "f64[3]"], |b, p, x| {
        let c: Vec<ValueId> = x.iter().map(|&v| b.op_as(p, Op::Cast, &[v], "f32[3]")).collect();
        let u = b.op(p, Op::Complex, &[c[0], c[1]]);
        let w = b.op(p, Op::Complex, &[c[2], c[3]]);
        b.op(p, Op::Binary(BinaryOp::Mul), &[u, w])
    }));
    v
}

/// A spectral convolution's pattern on `x: [2, 10]` with per-mode weights `w: [2, 3]`:
/// the first 3 bins of `rfft(x)`, scaled, zero-padded back to 6 bins, `irfft` to 10
/// points.
fn spectral_layer(b: &mut FuncBuilder, p: &Program, x: &[ValueId]) -> ValueId {
    let xf = b.op_as(p, Op::Cast, &[x[0]], "f32[2, 10]");
    let w = b.op_as(p, Op::Cast, &[x[1]], "f32[2, 3]");
    let spec = b.op(p, Op::Rfft { axis: 1 }, &[xf]);
    let lead =
        Op::Slice { start: vec![Dim::constant(0); 2], end: vec![Dim::constant(2), Dim::constant(3)], step: vec![1, 1] };
    let modes = b.op(p, lead, &[spec]);
    let zero = b.op_as(p, Op::Const(0.0), &[], "f32[]");
    let zeros = b.op_as(p, Op::Broadcast, &[zero], "f32[2, 3]");
    let mut parts = Vec::new();
    for part in [Op::Real, Op::Imag] {
        let v = b.op(p, part, &[modes]);
        let v = b.op(p, Op::Binary(BinaryOp::Mul), &[v, w]);
        parts.push(b.op(p, Op::Concat { axis: 1 }, &[v, zeros]));
    }
    let z = b.op(p, Op::Complex, &parts);
    b.op_as(p, Op::Irfft { axis: 1, n: Dim::constant(10) }, &[z], "f64[2, 10]")
}

/// `cell(h: [2, 3], x: [2, 4], w: [4, 3]) -> (tanh(h + x @ w), tanh(h + x @ w) * 2)`.
fn rnn_cell() -> Vec<Func> {
    let p = Program::default();
    let mut b = FuncBuilder::new("cell");
    let h = b.arg("f64[2, 3]", "h");
    let x = b.arg("f64[2, 4]", "x");
    let w = b.arg("f64[4, 3]", "w");
    let xw = b.op(&p, Op::MatMul, &[x, w]);
    let s = b.op(&p, Op::Binary(BinaryOp::Add), &[h, xw]);
    let t = b.op(&p, Op::Unary(UnaryOp::Tanh), &[s]);
    let y = b.op(&p, Op::Binary(BinaryOp::Mul), &[t, t]);
    vec![b.finish(&[(t, "h"), (y, "y")])]
}

/// `head(x: [1, 4], w: [4, 3]) -> (x @ w, sum(w))`.
fn head() -> Vec<Func> {
    let p = Program::default();
    let mut b = FuncBuilder::new("head");
    let x = b.arg("f64[1, 4]", "x");
    let w = b.arg("f64[4, 3]", "w");
    let y = b.op(&p, Op::MatMul, &[x, w]);
    let s = b.op(&p, Op::Reduce { op: ReduceOp::Sum, axes: vec![0, 1], keepdim: false }, &[w]);
    vec![b.finish(&[(y, "y"), (s, "s")])]
}

fn control_cases() -> Vec<Case> {
    let scan = |reverse: bool| Op::Scan { func: "cell".into(), axis: 1, carries: 1, xs: 1, reverse };
    let inputs = &["f64[2, 3]", "f64[2, 5, 4]", "f64[4, 3]"];
    let mut v = vec![
        case("scan_outputs", inputs, |b, p, x| {
            let r = b.op_multi(
                p,
                Op::Scan { func: "cell".into(), axis: 1, carries: 1, xs: 1, reverse: false },
                &[x[0], x[1], x[2]],
            );
            r[1]
        }),
        case("scan_final_carry", inputs, |b, p, x| {
            let r = b.op_multi(
                p,
                Op::Scan { func: "cell".into(), axis: 1, carries: 1, xs: 1, reverse: false },
                &[x[0], x[1], x[2]],
            );
            r[0]
        }),
        case("scan_reverse", inputs, |b, p, x| {
            let r = b.op_multi(
                p,
                Op::Scan { func: "cell".into(), axis: 1, carries: 1, xs: 1, reverse: true },
                &[x[0], x[1], x[2]],
            );
            let s = b.op(p, Op::Reduce { op: ReduceOp::Sum, axes: vec![1], keepdim: false }, &[r[1]]);
            b.op(p, Op::Binary(BinaryOp::Add), &[s, r[0]])
        }),
        case("vmap_kept_and_stacked", &["f64[5, 4]", "f64[5, 4, 3]"], |b, p, x| {
            let op = Op::Vmap { func: "head".into(), keep: vec![true, false], out_keep: vec![true, false] };
            let r = b.op_multi(p, op, &[x[0], x[1]]);
            let s = b.op_as(p, Op::Reshape, &[r[1]], "f64[5, 1]");
            let sb = b.op_as(p, Op::Broadcast, &[s], "f64[5, 3]");
            b.op(p, Op::Binary(BinaryOp::Mul), &[r[0], sb])
        }),
    ];
    let _ = scan;
    for c in v.iter_mut().take(3) {
        c.aux = rnn_cell;
    }
    v[3].aux = head;
    v
}

#[test]
fn scan_and_vmap_match_finite_differences() {
    for c in control_cases() {
        check(&c);
    }
}

#[test]
fn every_rule_matches_finite_differences() {
    for c in cases() {
        check(&c);
    }
}

/// The gradient of a spectral layer transforms only the bins the layer keeps: every
/// `rfft` is read through a slice of its first 3 bins, and every `irfft` operand is
/// 3 bins of each part followed by zeros (backends lower both as 3-bin transforms).
#[test]
fn spectral_layer_gradients_keep_the_truncation() {
    let c = case("spectral_layer", &["f64[2, 10]", "f64[2, 3]"], spectral_layer);
    let (p, loss) = program(&c);
    let main = p.main();
    let wrt: Vec<ValueId> = c.wrt.iter().map(|&i| main.args[i].0).collect();
    let g = gradient(main, &FuncTable::new(&p), loss, &wrt).expect("differentiates");
    let def = |v: ValueId| g.body.iter().find(|i| i.result == v).expect("defined");
    let three = |v: ValueId| g.type_of(v).expect("typed").shape[1] == Dim::constant(3);
    let (mut rffts, mut irffts) = (0, 0);
    for inst in &g.body {
        match &inst.op {
            Op::Rfft { .. } => {
                rffts += 1;
                let uses: Vec<_> = g.body.iter().filter(|u| u.args.contains(&inst.result)).collect();
                let sliced = uses.iter().all(|u| matches!(u.op, Op::Slice { .. }) && three(u.result));
                assert!(sliced, "an rfft read beyond 3 bins:\n{g}");
            }
            Op::Irfft { .. } => {
                irffts += 1;
                let z = def(inst.args[0]);
                assert_eq!(z.op, Op::Complex, "{g}");
                for &part in &z.args {
                    let c = def(part);
                    let padded = c.op == (Op::Concat { axis: 1 }) && three(c.args[0]);
                    assert!(padded, "an irfft operand is not 3 bins and zeros:\n{g}");
                }
            }
            _ => {}
        }
    }
    assert_eq!((rffts, irffts), (2, 2), "forward and backward transforms:\n{g}");
}

#[test]
fn a_value_used_twice_accumulates() {
    let c = case("square", &["f64[4]"], |b, p, x| b.op(p, Op::Binary(BinaryOp::Mul), &[x[0], x[0]]));
    check(&c);
}

#[test]
fn losses_other_than_real_scalars_are_rejected() {
    let mut b = FuncBuilder::new("main");
    let x = b.arg("f64[3]", "x");
    let f = b.finish(&[(x, "y")]);
    let p = Program { name: "t".into(), params: vec![], funcs: vec![f] };
    let err = gradient(p.main(), &FuncTable::new(&p), x, &[x]).unwrap_err();
    assert!(err.contains("real scalar"), "{err}");
    let _ = TensorType::scalar(DType::F64);
}
