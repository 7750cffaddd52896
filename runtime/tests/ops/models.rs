//! Whole small models built by hand, run end to end (also a speed smoke test).

use crate::common::*;
use archc_compiler::tir::{BinaryOp, DType, Dim, Init, Op, ParamDecl, PoolOp, Program, TensorType, UnaryOp, ValueId};
use archc_runtime::{Interpreter, Tensor};
use std::time::Instant;

/// Builds a program of one `main(x: f32[B, ...])` with params declared as used.
struct Model {
    f: FuncBuilder,
    params: Vec<ParamDecl>,
}

impl Model {
    fn param(&mut self, name: &str, shape: &[usize], bound: f64) -> ValueId {
        let ty = tt(DType::F32, shape);
        let init = Init::Uniform { low: -bound, high: bound };
        self.params.push(ParamDecl { name: name.into(), ty: ty.clone(), init, trainable: true });
        self.f.inst(Op::Param(name.into()), &[], ty)
    }

    /// `relu(conv(x, w) + b)` with `x: f32[B, c_in, *S]`, giving `f32[B, c_out, *out]`.
    fn conv_block(
        &mut self,
        name: &str,
        x: ValueId,
        (c_in, c_out): (usize, usize),
        k: &[usize],
        stride: i64,
        out: &[usize],
    ) -> ValueId {
        let nd = k.len();
        let w = self.param(&format!("{name}.w"), &[[c_out, c_in].as_slice(), k].concat(), 0.3);
        let b = self.param(&format!("{name}.b"), &[c_out], 0.1);
        let shape = |lead: &[&str]| {
            let mut dims: Vec<Dim> = lead.iter().map(|d| Dim::parse(d).unwrap()).collect();
            dims.extend(out.iter().map(|&d| Dim::constant(d as i64)));
            TensorType::new(DType::F32, dims)
        };
        let c = c_out.to_string();
        let conv = Op::Conv { stride: vec![stride; nd], padding: vec![(1, 1); nd], dilation: vec![1; nd], groups: 1 };
        let y = self.f.inst(conv, &[x, w], shape(&["B", &c]));
        let b_shape = [vec![c_out], vec![1; nd]].concat();
        let b = self.f.inst(Op::Reshape, &[b], tt(DType::F32, &b_shape));
        let b = self.f.inst(Op::Broadcast, &[b], shape(&["B", &c]));
        let y = self.f.inst(Op::Binary(BinaryOp::Add), &[y, b], shape(&["B", &c]));
        self.f.inst(Op::Unary(UnaryOp::Relu), &[y], shape(&["B", &c]))
    }

    fn linear(&mut self, name: &str, x: ValueId, d_in: usize, d_out: usize) -> ValueId {
        let w = self.param(&format!("{name}.w"), &[d_in, d_out], 0.1);
        let b = self.param(&format!("{name}.b"), &[d_out], 0.1);
        let out = ty(DType::F32, &["B", &d_out.to_string()]);
        let y = self.f.inst(Op::MatMul, &[x, w], out.clone());
        let b = self.f.inst(Op::Broadcast, &[b], out.clone());
        self.f.inst(Op::Binary(BinaryOp::Add), &[y, b], out)
    }

    fn finish(self, result: ValueId) -> Program {
        Program { name: "model".into(), params: self.params, funcs: vec![self.f.finish(&[result])] }
    }
}

/// The MNIST-1D CNN of examples/cnn_mnist1d.arch: 40 -> 19 -> 10 -> 5 points, 25 channels.
fn cnn_mnist1d() -> Program {
    let mut m = Model { f: FuncBuilder::new("main"), params: vec![] };
    let x = m.f.arg(ty(DType::F32, &["B", "1", "40"]));
    let h = m.conv_block("c1", x, (1, 25), &[5], 2, &[19]);
    let h = m.conv_block("c2", h, (25, 25), &[3], 2, &[10]);
    let h = m.conv_block("c3", h, (25, 25), &[3], 2, &[5]);
    let h = m.f.inst(Op::Reshape, &[h], ty(DType::F32, &["B", "125"]));
    let logits = m.linear("fc", h, 125, 10);
    m.finish(logits)
}

fn run_timed(p: &Program, x: Tensor) -> (Tensor, f64) {
    let mut it = Interpreter::new(p);
    it.init_params(0).unwrap();
    let start = Instant::now();
    let out = it.run("main", &[x]).unwrap().remove(0);
    (out, start.elapsed().as_secs_f64())
}

#[test]
fn cnn_mnist1d_forward() {
    let p = cnn_mnist1d();
    let x = f32s(&[32, 1, 40], &noise(32 * 40, 9));
    let (out, secs) = run_timed(&p, x.clone());
    assert_eq!(out.shape, vec![32, 10]);
    assert!(out.as_f32().unwrap().iter().all(|v| v.is_finite()));
    // Each sample is independent of the batch: sample 3 alone gives the same logits.
    let one = Tensor::from_f32(&[1, 1, 40], x.as_f32().unwrap()[3 * 40..4 * 40].to_vec());
    let (alone, _) = run_timed(&p, one);
    assert_eq!(alone.as_f32().unwrap(), &out.as_f32().unwrap()[30..40]);
    eprintln!("cnn_mnist1d, batch 32: {:.1} ms", secs * 1e3);
    if !cfg!(debug_assertions) {
        assert!(secs < 1.0, "took {secs} s");
    }
}

/// A bigger 2-d CNN, for timing by hand: `cargo test --release -p archc-runtime -- --ignored`.
#[test]
#[ignore]
fn bench_cnn2d() {
    let mut m = Model { f: FuncBuilder::new("main"), params: vec![] };
    let x = m.f.arg(ty(DType::F32, &["B", "3", "32", "32"]));
    let h = m.conv_block("c1", x, (3, 32), &[3, 3], 1, &[32, 32]);
    let pool = |window| Op::Pool { op: PoolOp::Max, window, stride: vec![2, 2], padding: vec![(0, 0); 2] };
    let h = m.f.inst(pool(vec![2, 2]), &[h], ty(DType::F32, &["B", "32", "16", "16"]));
    let h = m.conv_block("c2", h, (32, 64), &[3, 3], 1, &[16, 16]);
    let h = m.f.inst(pool(vec![2, 2]), &[h], ty(DType::F32, &["B", "64", "8", "8"]));
    let h = m.f.inst(Op::Reshape, &[h], ty(DType::F32, &["B", "4096"]));
    let logits = m.linear("fc", h, 4096, 10);
    let p = m.finish(logits);
    let (out, secs) = run_timed(&p, f32s(&[32, 3, 32, 32], &noise(32 * 3 * 1024, 1)));
    assert_eq!(out.shape, vec![32, 10]);
    eprintln!("cnn2d (about 180M multiply-adds), batch 32: {:.1} ms", secs * 1e3);
}
