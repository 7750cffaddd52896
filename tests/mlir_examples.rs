//! Differential tests of the MLIR CPU backend: every example's `main` compiled by MLIR
//! (verified, lowered, JIT-compiled) gives the reference interpreter's outputs on random
//! inputs (`B = 2`, other dims 16), relative error below 1e-5.

#![cfg(feature = "mlir")]

mod common;

use archc::inputs::{arg_shapes, random_tensor};
use archc_compiler::sema::Options;
use archc_mlir::backend::MlirCpu;
use archc_runtime::{Executor, Interpreter, Tensor};
use std::collections::HashMap;

/// `max |a - b| / max(max |b|, 1e-6)` over a tensor: relative to the output's scale.
fn scaled_error(got: &Tensor, want: &Tensor) -> f64 {
    let d = got.compare(want).expect("same shape");
    let scale = want.to_f64_vec().map(|v| v.iter().fold(0.0f64, |m, x| m.max(x.abs()))).unwrap_or(1.0);
    d.max_abs / scale.max(1e-6)
}

#[test]
fn every_example_matches_the_interpreter() {
    let mut failures = Vec::new();
    for path in common::arch_files("examples") {
        let out = common::check(&path, &Options::default());
        let program = out.program.expect("program");
        let main = program.main();
        let shapes = arg_shapes(main, &HashMap::new()).expect("input shapes");
        let inputs: Vec<Tensor> = main
            .args
            .iter()
            .zip(&shapes)
            .enumerate()
            .map(|(i, ((_, t), s))| random_tensor(t.dtype, s, i as u64))
            .collect();
        let mut interp = Interpreter::new(&program);
        interp.init_params(0).expect("params");
        let want = interp.run_func("main", &inputs, 7).expect("interpreter runs");
        let mut jit = MlirCpu::new(&program);
        jit.init_params(0).expect("params");
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        match jit.run_func("main", &inputs, 7) {
            Ok(got) => {
                for (i, (g, w)) in got.iter().zip(&want).enumerate() {
                    let e = scaled_error(g, w);
                    eprintln!("{name} output {i}: scaled error {e:.2e}");
                    if !(e < 1e-5) {
                        failures.push(format!("{name} output {i}: scaled error {e:.3e}"));
                    }
                }
            }
            Err(e) => failures.push(format!("{name}: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
