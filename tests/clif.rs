//! The Cranelift tier from the CLI (`--backend cranelift`, `build --emit clif`), and its
//! compile and run times against the MLIR CPU backend (an ignored test that prints a
//! table: `cargo test --release --test clif -- --ignored --nocapture`).

mod common;

use archc::inputs::{arg_shapes, random_tensor};
use archc_compiler::sema::Options;
use archc_compiler::tir::Program;
use archc_runtime::{Executor, Tensor};
use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, Instant};

fn archc(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_archc"))
        .args(args)
        .current_dir(common::repo())
        .output()
        .expect("archc runs")
}

#[test]
fn run_on_cranelift_prints_the_interpreters_outputs() {
    let run = |backend| archc(&["run", "examples/cnn_mnist1d.arch", "--backend", backend]);
    let (clif, interp) = (run("cranelift"), run("interp"));
    assert!(clif.status.success(), "{}", String::from_utf8_lossy(&clif.stderr));
    let (got, want) = (String::from_utf8_lossy(&clif.stdout), String::from_utf8_lossy(&interp.stdout));
    // `name: type  mean M  std S` per output: equal words, numbers within 1e-4.
    let words = |s: &str| s.split_whitespace().map(str::to_string).collect::<Vec<_>>();
    let (g, w) = (words(&got), words(&want));
    assert_eq!(g.len(), w.len(), "{got}\n{want}");
    for (a, b) in g.iter().zip(&w) {
        match (a.parse::<f64>(), b.parse::<f64>()) {
            (Ok(x), Ok(y)) => assert!((x - y).abs() <= 1e-4 * y.abs().max(1e-3), "{got}\n{want}"),
            _ => assert_eq!(a, b, "{got}\n{want}"),
        }
    }
}

#[test]
fn build_emits_cranelift_ir() {
    let out = archc(&["build", "examples/mlp.arch", "--emit", "clif"]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.starts_with("; @main (f32[B, 64]) -> (f32[B, 10])\nfunction u0:0(i64, i64, i64, i64)"), "{text}");
    assert!(text.contains("u0:1 = archc_clif_alloc"), "{text}");
}

/// A workload: a program, the function timed and its inputs.
struct Work {
    name: String,
    program: Program,
    func: &'static str,
    inputs: Vec<Tensor>,
}

fn work(name: &str, program: Program, func: &'static str, dims: &[(&str, i64)]) -> Work {
    let f = program.func(func).expect("function");
    let dims: HashMap<String, i64> = dims.iter().map(|(k, v)| (k.to_string(), *v)).collect();
    let shapes = arg_shapes(f, &dims).expect("shapes");
    let inputs = f.args.iter().zip(&shapes).enumerate().map(|(i, ((_, t), s))| random_tensor(t.dtype, s, i as u64));
    Work { name: name.into(), func, inputs: inputs.collect(), program }
}

fn forward(path: &str) -> Program {
    common::check(Path::new(path), &Options::default()).program.expect("program")
}

fn train_step(path: &str) -> Program {
    let (out, _) = archc::training::read_config(&common::repo().join(path), &Options::default()).expect("readable");
    archc::training::train_program(&out.config.expect("train config")).expect("train step")
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// A backend: an executor of a program, parameters initialised.
type Make = dyn for<'p> Fn(&'p Program) -> Box<dyn Executor + 'p>;

#[cfg(feature = "mlir")]
fn clif(p: &Program) -> Box<dyn Executor + '_> {
    let mut e = archc_clif::ClifCpu::new(p);
    e.init_params(0).expect("params");
    Box::new(e)
}

#[cfg(feature = "mlir")]
fn mlir(p: &Program) -> Box<dyn Executor + '_> {
    let mut e = archc_mlir::backend::MlirCpu::new(p);
    e.init_params(0).expect("params");
    Box::new(e)
}

/// The median compile time over `n` fresh executors, then the median time of `n` runs.
fn measure(w: &Work, n: usize, make: &Make) -> (Duration, Duration) {
    let mut compiles = Vec::new();
    let mut runs = Vec::new();
    for _ in 0..n {
        let mut exec = make(&w.program);
        let t = Instant::now();
        exec.run_func(w.func, &w.inputs, 0).expect("runs");
        compiles.push(t.elapsed());
        for _ in 0..3 {
            let t = Instant::now();
            exec.run_func(w.func, &w.inputs, 0).expect("runs");
            runs.push(t.elapsed());
        }
    }
    // The first run compiles: its time less a run's is the compile time.
    let run = median(runs);
    (median(compiles).saturating_sub(run), run)
}

#[cfg(feature = "mlir")]
#[test]
#[ignore = "a measurement: cargo test --release --test clif -- --ignored --nocapture"]
fn compile_and_run_times_against_mlir() {
    let works = vec![
        work("mlp forward (B=2)", forward("examples/mlp.arch"), "main", &[]),
        work("cnn_mnist1d forward (B=2)", forward("examples/cnn_mnist1d.arch"), "main", &[]),
        work(
            "mnist1d CNN train step (B=100)",
            train_step("examples/train_mnist1d_cnn.arch"),
            "train_step",
            &[("B", 100)],
        ),
        work("mnist_5k train step (B=64)", train_step("examples/bench_mnist5k.arch"), "train_step", &[("B", 64)]),
        work("digits train step (B=64)", train_step("examples/train_digits.arch"), "train_step", &[("B", 64)]),
    ];
    println!("| workload | Cranelift compile | MLIR compile | Cranelift run | MLIR run | run speed Cranelift / MLIR |");
    println!("|---|---|---|---|---|---|");
    for w in &works {
        let (cc, cr) = measure(w, 5, &clif);
        let (mc, mr) = measure(w, 3, &mlir);
        println!(
            "| {} | {:.1} ms | {:.1} ms | {:.3} ms | {:.3} ms | {:.2}x |",
            w.name,
            ms(cc),
            ms(mc),
            ms(cr),
            ms(mr),
            mr.as_secs_f64() / cr.as_secs_f64()
        );
    }
}
