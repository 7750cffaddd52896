//! `--backend auto` (`archc::tiered`): a hot function moves from Cranelift to MLIR's
//! module, compiled in the background, and gives the interpreter's results on both
//! tiers; a run that ends during a compile returns; the CLI reports compiles per tier.

#![cfg(feature = "mlir")]

mod common;

use archc::tiered::Tiered;
use archc_compiler::sema::Options;
use archc_compiler::tir::Program;
use archc_runtime::{Executor, Interpreter, Tensor};
use std::path::Path;
use std::time::{Duration, Instant};

fn forward(path: &str) -> Program {
    let out = common::check(Path::new(path), &Options::default());
    assert!(out.diagnostics.is_empty(), "{}", common::rendered(&out));
    out.program.expect("program")
}

/// The interpreter and the tiered executor with the same parameters.
fn pair(p: &Program) -> (Interpreter<'_>, Tiered<'_>) {
    let mut interp = Interpreter::new(p);
    interp.init_params(3).expect("params");
    let mut tiered = Tiered::new(p);
    for (name, t) in interp.params() {
        tiered.set_param_value(name, t.clone()).expect("param");
    }
    (interp, tiered)
}

fn in_use(t: &Tiered) -> bool {
    t.compile_times().iter().any(|c| c.tier == "mlir-cpu" && c.detail.contains("in use from call"))
}

fn assert_close(got: &[Tensor], want: &[Tensor], when: &str) {
    for (g, w) in got.iter().zip(want) {
        let err = common::scaled_error(g, w);
        assert!(err <= 1e-5, "{when}: scaled error {err:e}");
    }
}

#[test]
fn a_hot_function_switches_to_mlir_and_keeps_the_interpreters_results() {
    let p = forward("examples/cnn_mnist1d.arch");
    let (interp, mut tiered) = pair(&p);
    let x = common::random_inputs(p.main());
    let want = interp.run("main", &x).expect("interpreter");
    assert_close(&tiered.run_func("main", &x, 0).expect("first call"), &want, "first call (Cranelift)");
    let only_clif = tiered.compile_times();
    assert_eq!(only_clif.len(), 1, "{only_clif:?}");
    assert_eq!(only_clif[0].tier, "cranelift");
    let t0 = Instant::now();
    while !in_use(&tiered) {
        assert!(t0.elapsed() < Duration::from_secs(120), "no switch to MLIR within 120 s");
        tiered.run_func("main", &x, 0).expect("runs");
    }
    assert_close(&tiered.run_func("main", &x, 0).expect("on MLIR"), &want, "after the switch");
    // Other input types start on Cranelift again, with the same compiled function.
    let x4 = common::random_inputs_with(p.main(), &[("B".to_string(), 4)].into());
    let want4 = interp.run("main", &x4).expect("interpreter");
    assert_close(&tiered.run_func("main", &x4, 0).expect("B = 4"), &want4, "B = 4");
    let times = tiered.compile_times();
    let tiers: Vec<&str> = times.iter().map(|c| c.tier).collect();
    assert_eq!(tiers, ["cranelift", "mlir-cpu"], "{times:?}");
    assert!(times[1].detail.contains("background, inputs f32[2,1,40]"), "{}", times[1].detail);
}

#[test]
fn a_run_ending_during_a_compile_returns() {
    let p = forward("examples/cnn_mnist1d.arch");
    let (_, mut tiered) = pair(&p);
    let x = common::random_inputs(p.main());
    // Hot enough to be queued (30 times the Cranelift compile), not long enough for
    // MLIR to finish: the executor is dropped with the compile in flight.
    let t0 = Instant::now();
    while t0.elapsed() < Duration::from_millis(300) {
        tiered.run_func("main", &x, 0).expect("runs");
    }
    let t1 = Instant::now();
    drop(tiered);
    assert!(t1.elapsed() < Duration::from_secs(60), "drop waited {:?}", t1.elapsed());
}

#[test]
fn cli_reports_compiles_per_tier() {
    let dir = tempfile::tempdir().expect("temp dir");
    let out = dir.path().join("run");
    let o = common::archc(&[
        "train",
        "examples/train_digits.arch",
        "--backend",
        "auto",
        "--epochs",
        "1",
        "--timings",
        "--quiet",
        "--out",
        out.to_str().expect("utf-8 path"),
    ]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("timings (compile, per tier):"), "{err}");
    assert!(err.contains("cranelift @train_step"), "{err}");
    assert!(err.contains("cranelift: 2 compile(s)"), "{err}");
    let o = common::archc(&["build", "examples/mlp.arch", "--emit", "mlir", "--timings"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains(", Cranelift ") && err.contains(", LLVM JIT "), "{err}");
    // MLIR's time report lists every pass of the CPU pipeline, archc's own too.
    assert!(err.contains("Execution time report") && err.contains("archc-parallel-loops"), "{err}");
}
