//! The sorting and selection builtins as a user writes them (`sort`, `argsort`, `topk`,
//! `argtopk`, `argmin`, `take_along`, `stop_gradient`, `inf`, integer `abs`/`sign`/
//! `relu`/`floor`), on hand-computed rows in the interpreter, and `take_along`'s run-time
//! refusal of an index outside its axis through `archc run` on every CPU backend.
//! Gradients: tests/grad_fixtures.rs (`sorting`, against PyTorch and central
//! differences); every backend against the interpreter: the op tests of `compiler/mlir`
//! and `compiler/clif`.

mod common;

use archc_compiler::sema::Options;
use archc_runtime::{io, Interpreter, Tensor};

const ROWS: &str = "network Rows {
    input x: f32[B, 5]
    input n: i64[B, 5]
    input i: i64[B, 2]
    output up = sort(x)
    output down = sort(x, axis = 0, descending = true)
    output order = argsort(x, descending = true)
    output top = topk(x, 2)
    output low = argtopk(x, 2, largest = false)
    output least = argmin(x, axis = 1)
    output least_int = argmin(n, keepdim = true)
    output picked = take_along(x, i)
    output clipped = maximum(x, -inf) + minimum(x, inf) - 2.0 * stop_gradient(x)
    output ints = abs(n) * 1000 + sign(n) * 100 + relu(n) * 10 + floor(n)
}
";

fn run_rows(inputs: &[Tensor]) -> Vec<Tensor> {
    let dir = tempfile::tempdir().expect("temp dir");
    let arch = dir.path().join("rows.arch");
    std::fs::write(&arch, ROWS).expect("write");
    let out = common::check(&arch, &Options::default());
    assert!(out.diagnostics.is_empty(), "{}", common::rendered(&out));
    let program = out.program.expect("program");
    Interpreter::new(&program).run("main", inputs).expect("runs")
}

#[test]
fn builtins_on_hand_computed_rows() {
    let nan = f32::NAN;
    let x = Tensor::from_f32(&[2, 5], vec![3.0, -1.0, nan, 2.0, -1.0, 0.5, 4.0, -2.0, 0.5, 1.0]);
    let n = Tensor::from_i64(&[2, 5], vec![7, i64::MIN, -3, i64::MAX, i64::MIN, 0, 2, 2, -5, -5]);
    let i = Tensor::from_i64(&[2, 2], vec![4, -5, -1, 1]);
    let out = run_rows(&[x, n, i]);
    let f = |k: usize| out[k].as_f32().expect("f32").to_vec();
    let ints = |k: usize| out[k].as_i64().expect("i64").to_vec();
    let same =
        |a: &[f32], b: &[f32]| a.len() == b.len() && a.iter().zip(b).all(|(p, q)| p == q || p.is_nan() && q.is_nan());
    // Ascending, NaN last, the two -1s (indices 1 and 4) in their order.
    assert!(same(&f(0), &[-1.0, -1.0, 2.0, 3.0, nan, -2.0, 0.5, 0.5, 1.0, 4.0]), "{:?}", f(0));
    // Along the batch, descending: NaN first.
    assert!(same(&f(1), &[3.0, 4.0, nan, 2.0, 1.0, 0.5, -1.0, -2.0, 0.5, -1.0]), "{:?}", f(1));
    assert_eq!(ints(2), [2, 0, 3, 1, 4, 1, 4, 0, 3, 2]);
    assert!(same(&f(3), &[nan, 3.0, 4.0, 1.0]), "{:?}", f(3));
    assert_eq!(ints(4), [1, 4, 2, 0]);
    // argmin: a NaN wins (as in argmax); otherwise the first minimum.
    assert_eq!(ints(5), [2, 2]);
    // i64 extremes: the first i64::MIN, and the first of the tied -5s.
    assert_eq!(ints(6), [1, 3]);
    // Negative indices count from the end: [x[0, 4], x[0, 0]], [x[1, 4], x[1, 1]].
    assert!(same(&f(7), &[-1.0, 3.0, 1.0, 4.0]), "{:?}", f(7));
    // maximum(x, -inf) + minimum(x, inf) - 2x is 0 where x is a number.
    assert!(f(8).iter().enumerate().all(|(k, v)| if k == 2 { v.is_nan() } else { *v == 0.0 }), "{:?}", f(8));
    // Row 1 (row 0 holds i64::MIN, whose abs wraps).
    let want: Vec<i64> =
        [0i64, 2, 2, -5, -5].iter().map(|&v| v.abs() * 1000 + v.signum() * 100 + v.max(0) * 10 + v).collect();
    assert_eq!(&ints(9)[5..], &want[..]);
}

#[test]
fn take_along_refuses_an_index_outside_its_axis_on_every_backend() {
    let dir = tempfile::tempdir().expect("temp dir");
    let arch = dir.path().join("pick.arch");
    std::fs::write(
        &arch,
        "network Pick {\n    input x: f32[B, 4]\n    input i: i64[B, 1]\n    output y = take_along(x, i)\n}\n",
    )
    .expect("write");
    let x = Tensor::from_f32(&[2, 4], (0..8).map(|v| v as f32).collect());
    io::write_npy(dir.path().join("x.npy"), &x).expect("npy");
    let mut backends = vec!["interp", "cranelift"];
    if cfg!(feature = "mlir") {
        backends.push("mlir-cpu");
    }
    for (idx, ok) in [([3i64, -4], true), ([4, 0], false), ([0, -5], false)] {
        io::write_npy(dir.path().join("i.npy"), &Tensor::from_i64(&[2, 1], idx.to_vec())).expect("npy");
        for backend in &backends {
            let (xs, is) = (dir.path().join("x.npy"), dir.path().join("i.npy"));
            let args = ["run", arch.to_str().unwrap(), "--backend", backend, "--input"];
            let x_arg = format!("x={}", xs.display());
            let i_arg = format!("i={}", is.display());
            let out = common::archc(&[&args[..], &[&x_arg, "--input", &i_arg]].concat());
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.success(), ok, "{backend} {idx:?}: {stderr}");
            if !ok {
                assert!(stderr.contains("out of range"), "{backend} {idx:?}: {stderr}");
            }
        }
    }
}
