//! The truncated transforms of the Cranelift tier (the spectral convolution's shape): an
//! `rfft` read only through leading slices along its axis computes just those
//! coefficients, and an `irfft` of `complex(concat(re, 0), concat(im, 0))` contracts just
//! the heads; both against the interpreter (scaled error below 1e-5) at even and odd
//! lengths, along the last axis and an inner one, keeping one mode up to all of them.

#[allow(dead_code)]
mod common;

use archc_clif::ClifCpu;
use archc_compiler::tir::testutil::{ty, FuncBuilder};
use archc_compiler::tir::{DType, Dim, Op, Program};
use archc_runtime::{Executor, Interpreter, Tensor};
use common::{random, scaled_error};

const TOL: f64 = 1e-5;

/// `shape` as text for a type of `dtype`.
fn text(dtype: &str, shape: &[usize]) -> String {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    format!("{dtype}[{}]", dims.join(", "))
}

fn dims(v: &[usize]) -> Vec<Dim> {
    v.iter().map(|&d| Dim::constant(d as i64)).collect()
}

/// Runs `main` of a one-function program on both and compares every result.
fn compare(func: archc_compiler::tir::Func, inputs: &[Tensor], label: &str) {
    let p = Program { name: "spectral".into(), params: Vec::new(), funcs: vec![func] };
    let want = Interpreter::new(&p).run("main", inputs).expect("interpreter");
    let mut jit = ClifCpu::new(&p);
    let got = jit.run_func("main", inputs, 0).expect("Cranelift tier");
    assert_eq!(got.len(), want.len());
    for (i, (g, w)) in got.iter().zip(&want).enumerate() {
        assert_eq!(g.shape, w.shape, "{label}: result {i}");
        let e = scaled_error(g, w);
        assert!(e < TOL, "{label}: result {i} scaled error {e:.3e}\n got: {g}\nwant: {w}");
    }
}

/// `rfft(x)[.., :k, ..]` (and a shorter slice of it) along `axis` of `shape`.
fn rfft_slices(shape: &[usize], axis: usize, k: usize) {
    let n = shape[axis];
    let m = n / 2 + 1;
    let mut b = FuncBuilder::new("main");
    let x = b.arg(&text("f32", shape), "x");
    let mut zt = shape.to_vec();
    zt[axis] = m;
    let z = b.raw(Op::Rfft { axis }, &[x], ty(&text("c64", &zt)));
    let slice = |b: &mut FuncBuilder, k: usize| {
        let mut end = zt.clone();
        end[axis] = k;
        let op = Op::Slice { start: dims(&vec![0; shape.len()]), end: dims(&end), step: vec![1; shape.len()] };
        b.raw(op, &[z], ty(&text("c64", &end)))
    };
    let s = slice(&mut b, k);
    let short = slice(&mut b, k.div_ceil(2));
    let f = b.finish(&[(s, "s"), (short, "short")]);
    compare(f, &[random(DType::F32, shape, 3)], &format!("rfft of {shape:?} along {axis}, k = {k}"));
}

/// `irfft(complex(concat(re, 0), concat(im, 0)), n)` along `axis`, `re` and `im` of `k`
/// coefficients; with `keep_z` the padded operand is a result too (so it is computed, and
/// the transform reads its first coefficients, not the heads).
fn padded_irfft(shape: &[usize], axis: usize, n: usize, k: usize, keep_z: bool) {
    let m = n / 2 + 1;
    let mut head = shape.to_vec();
    head[axis] = k;
    let mut rest = shape.to_vec();
    rest[axis] = m - k;
    let mut full = shape.to_vec();
    full[axis] = m;
    let mut out = shape.to_vec();
    out[axis] = n;
    let mut b = FuncBuilder::new("main");
    let re = b.arg(&text("f32", &head), "re");
    let im = b.arg(&text("f32", &head), "im");
    let c = b.raw(Op::Const(0.0), &[], ty("f32[]"));
    let zeros = b.raw(Op::Broadcast, &[c], ty(&text("f32", &rest)));
    let pr = b.raw(Op::Concat { axis }, &[re, zeros], ty(&text("f32", &full)));
    let pi = b.raw(Op::Concat { axis }, &[im, zeros], ty(&text("f32", &full)));
    let z = b.raw(Op::Complex, &[pr, pi], ty(&text("c64", &full)));
    let y = b.raw(Op::Irfft { axis, n: Dim::constant(n as i64) }, &[z], ty(&text("f32", &out)));
    let f = if keep_z { b.finish(&[(y, "y"), (z, "z")]) } else { b.finish(&[(y, "y")]) };
    let inputs = [random(DType::F32, &head, 5), random(DType::F32, &head, 6)];
    compare(f, &inputs, &format!("irfft to {out:?} along {axis} from k = {k}, operand kept: {keep_z}"));
}

/// Transform lengths `n` with mode counts `k` (1 to `n / 2 + 1`): edges, halves, and 16.
fn lengths_and_modes() -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for n in [1, 2, 5, 7, 8, 16, 33, 64, 100, 1024] {
        let m = n / 2 + 1;
        out.extend([1, 2, m / 2, m - 1, m, 16].into_iter().filter(|&k| k >= 1 && k <= m).map(|k| (n, k)));
    }
    out
}

#[test]
fn truncated_rfft_matches_the_interpreter() {
    for (n, k) in lengths_and_modes() {
        rfft_slices(&[3, n], 1, k);
        rfft_slices(&[2, n, 3], 1, k);
    }
    rfft_slices(&[4, 8, 256], 2, 16);
}

#[test]
fn padded_irfft_matches_the_interpreter() {
    for (n, k) in lengths_and_modes() {
        for keep_z in [false, true] {
            padded_irfft(&[3, 0], 1, n, k, keep_z);
            padded_irfft(&[2, 0, 3], 1, n, k, keep_z);
        }
    }
    padded_irfft(&[4, 8, 0], 2, 256, 16, false);
    padded_irfft(&[4, 8, 0], 2, 256, 16, true);
    padded_irfft(&[3, 0], 1, 4096, 200, false); // a full FFT from the heads
}

/// The layer as written in `spectral.SpectralConv1d` keeps its values (a smoke check
/// that both shortcuts apply together).
#[test]
fn rfft_then_padded_irfft_round_trip() {
    let (r, n, k) = (6, 64, 8);
    let m = n / 2 + 1;
    let mut b = FuncBuilder::new("main");
    let x = b.arg(&text("f32", &[r, n]), "x");
    let z = b.raw(Op::Rfft { axis: 1 }, &[x], ty(&text("c64", &[r, m])));
    let s = b.raw(
        Op::Slice { start: dims(&[0, 0]), end: dims(&[r, k]), step: vec![1, 1] },
        &[z],
        ty(&text("c64", &[r, k])),
    );
    let re = b.raw(Op::Real, &[s], ty(&text("f32", &[r, k])));
    let im = b.raw(Op::Imag, &[s], ty(&text("f32", &[r, k])));
    let c = b.raw(Op::Const(0.0), &[], ty("f32[]"));
    let zeros = b.raw(Op::Broadcast, &[c], ty(&text("f32", &[r, m - k])));
    let pr = b.raw(Op::Concat { axis: 1 }, &[re, zeros], ty(&text("f32", &[r, m])));
    let pi = b.raw(Op::Concat { axis: 1 }, &[im, zeros], ty(&text("f32", &[r, m])));
    let zz = b.raw(Op::Complex, &[pr, pi], ty(&text("c64", &[r, m])));
    let y = b.raw(Op::Irfft { axis: 1, n: Dim::constant(n as i64) }, &[zz], ty(&text("f32", &[r, n])));
    let f = b.finish(&[(y, "y")]);
    compare(f, &[random(DType::F32, &[r, n], 9)], "rfft, slice, pad, irfft");
}
