//! The Cranelift tier on every example: each forward program (`main`, `B = 2` and
//! `B = 3` through one compiled function, other dims 16) and each train step (plain SGD
//! at learning rate 1, so updated parameters give the gradients) matches the
//! interpreter on random inputs within 1e-5 scaled error; integer outputs are equal.

mod common;

use archc_clif::ClifCpu;
use archc_compiler::tir::Program;
use archc_runtime::{Executor, Interpreter, Tensor};
use common::*;
use std::collections::HashMap;

const TOL: f64 = 1e-5;

/// Runs `func` of `p` in the interpreter and the tier on inputs for each `B`; every
/// disagreement (or a refusal by the tier).
fn compare(p: &Program, func: &str, label: &str, batches: &[i64]) -> Vec<String> {
    let names = p.func(func).expect("function").result_names.clone();
    let mut interp = Interpreter::new(p);
    interp.init_params(0).expect("params");
    let mut clif = ClifCpu::new(p);
    clif.init_params(0).expect("params");
    let mut failures = Vec::new();
    for &b in batches {
        let dims = HashMap::from([("B".to_string(), b)]);
        let args = inputs(p, func, &dims);
        let want = match interp.run_func(func, &args, 5) {
            Ok(w) => w,
            Err(e) => {
                failures.push(format!("{label} (B = {b}): the interpreter refuses: {e}"));
                continue;
            }
        };
        match clif.run_func(func, &args, 5) {
            Ok(got) => failures.extend(mismatches(&format!("{label} (B = {b})"), &names, &got, &want, TOL)),
            Err(e) => failures.push(format!("{label} (B = {b}): {e}")),
        }
    }
    if let Ok(c) = clif.prepare(func) {
        if !c.reference_ops.is_empty() {
            eprintln!("{label}: reference kernels for {}", c.reference_ops.join(", "));
        }
    }
    failures
}

#[test]
fn every_example_forward_matches_the_interpreter() {
    let mut failures = Vec::new();
    for path in examples() {
        let p = forward(&path);
        failures.extend(compare(&p, "main", &stem(&path), &[2, 3]));
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

#[test]
fn every_train_step_matches_the_interpreter() {
    let mut failures = Vec::new();
    for path in examples() {
        let Some(p) = sgd_train_step(&path) else { continue };
        failures.extend(compare(&p, "train_step", &format!("{}.train_step", stem(&path)), &[2, 3]));
    }
    assert!(failures.is_empty(), "{} failure(s):\n{}", failures.len(), failures.join("\n"));
}

/// Keeps `Tensor` in scope for helpers shared with other test crates.
#[allow(dead_code)]
fn _uses(_: Tensor) {}
