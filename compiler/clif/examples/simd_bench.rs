//! Run times of compiled code with and without vector loops (`Options::simd`): the train
//! steps of MLP examples (their own optimizers) and an elementwise chain with a sum over
//! one million f32 elements. Medians of repeated runs, each compile run on the same
//! inputs; not a test.
//!
//! `cargo run --release -p archc-clif --example simd_bench [runs]`

#[path = "../tests/common/mod.rs"]
mod common;

use archc_clif::{compile_with, Compiled, Options};
use archc_compiler::tir::{BinaryOp, Func, Inst, Op, Program, ReduceOp, UnaryOp, ValueId};
use archc_runtime::interp::random::init_param;
use archc_runtime::Tensor;
use std::collections::HashMap;
use std::time::Instant;

fn median_ms(c: &Compiled, inputs: &[Tensor], params: &[Option<&Tensor>], runs: usize) -> f64 {
    let refs: Vec<&Tensor> = inputs.iter().collect();
    c.run(&refs, params, 0).expect("runs");
    let mut t: Vec<f64> = (0..runs)
        .map(|_| {
            let t0 = Instant::now();
            std::hint::black_box(c.run(&refs, params, 0).expect("runs"));
            t0.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    t.sort_by(f64::total_cmp);
    t[runs / 2]
}

fn bench(label: &str, p: &Program, func: &str, inputs: &[Tensor], runs: usize) {
    let params: Vec<Tensor> = p.params.iter().map(|d| init_param(d, 0).expect("init")).collect();
    let params: Vec<Option<&Tensor>> = params.iter().map(Some).collect();
    let scalar = compile_with(p, func, Options { simd: false }).expect("compiles");
    let vector = compile_with(p, func, Options { simd: true }).expect("compiles");
    // Interleaved, so drifts of the machine hit both.
    let (mut s, mut v) = (Vec::new(), Vec::new());
    for _ in 0..3 {
        s.push(median_ms(&scalar, inputs, &params, runs));
        v.push(median_ms(&vector, inputs, &params, runs));
    }
    s.sort_by(f64::total_cmp);
    v.sort_by(f64::total_cmp);
    println!("{label:<44} scalar {:>9.3} ms  vectors {:>9.3} ms  speedup {:.2}x", s[1], v[1], s[1] / v[1]);
}

/// `sum(max(relu(x * y + x) - y / 2, x) * y)` and the elementwise result, over `f32[N]`.
fn chain() -> Program {
    let t = |s: &str| archc_compiler::tir::testutil::ty(s);
    let (x, y) = (ValueId(0), ValueId(1));
    let mut body = Vec::new();
    let mut next = 2;
    let mut push = |body: &mut Vec<Inst>, op: Op, args: Vec<ValueId>, ty: &str| {
        next += 1;
        body.push(Inst::new(ValueId(next - 1), op, args, t(ty)));
        ValueId(next - 1)
    };
    let a = push(&mut body, Op::Binary(BinaryOp::Mul), vec![x, y], "f32[N]");
    let a = push(&mut body, Op::Binary(BinaryOp::Add), vec![a, x], "f32[N]");
    let a = push(&mut body, Op::Unary(UnaryOp::Relu), vec![a], "f32[N]");
    let h = push(&mut body, Op::Const(2.0), vec![], "f32[]");
    let h = push(&mut body, Op::Broadcast, vec![h], "f32[N]");
    let b = push(&mut body, Op::Binary(BinaryOp::Div), vec![y, h], "f32[N]");
    let a = push(&mut body, Op::Binary(BinaryOp::Sub), vec![a, b], "f32[N]");
    let a = push(&mut body, Op::Binary(BinaryOp::Max), vec![a, x], "f32[N]");
    let a = push(&mut body, Op::Binary(BinaryOp::Mul), vec![a, y], "f32[N]");
    let s = push(&mut body, Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdim: false }, vec![a], "f32[]");
    let f = Func {
        name: "main".into(),
        args: vec![(x, t("f32[N]")), (y, t("f32[N]"))],
        arg_names: vec!["x".into(), "y".into()],
        body,
        results: vec![a, s],
        result_names: vec!["y".into(), "s".into()],
    };
    Program { name: "chain".into(), params: vec![], funcs: vec![f] }
}

fn main() {
    let runs: usize = std::env::args().nth(1).and_then(|a| a.parse().ok()).unwrap_or(50);
    for name in ["train_mnist1d_mlp", "train_mnist5k_mlp", "train_digits"] {
        let path = common::repo().join(format!("examples/{name}.arch"));
        let p = common::train_step(&path, false).expect("a train block");
        for batch in [100, 1000] {
            let dims = HashMap::from([("B".to_string(), batch)]);
            let inputs = common::inputs(&p, "train_step", &dims);
            bench(&format!("{name} train_step, B = {batch}"), &p, "train_step", &inputs, runs);
        }
    }
    let p = chain();
    let n = 1 << 20;
    let inputs = [1, 2].map(|s| common::random(archc_compiler::tir::DType::F32, &[n], s));
    bench("elementwise chain + sum, f32[2^20]", &p, "main", &inputs, runs);
}
