//! The train step built from `train` blocks: it verifies, and repeated steps on one
//! batch drive the loss down (a model can memorise a small batch); parameters and
//! optimizer state follow the ABI names.

mod common;

use archc::driver::FsModules;
use archc::inputs::random_tensor;
use archc_compiler::autodiff::build_train_program;
use archc_compiler::sema::{train_file, Options};
use archc_compiler::tir::DType;
use archc_runtime::{Interpreter, Tensor};
use std::collections::HashMap;

fn config(path: &str) -> archc_compiler::sema::train_config::TrainConfig {
    let text = std::fs::read_to_string(common::repo().join(path)).expect("example");
    let dir = common::repo().join(path).parent().expect("dir").to_path_buf();
    let out = train_file(path, &text, &FsModules { dir }, &Options::default());
    assert!(out.diagnostics.is_empty(), "{:?}", out.diagnostics);
    out.config.expect("config")
}

/// Runs `steps` train steps on one fixed batch; returns the losses.
fn overfit(path: &str, batch: usize, steps: usize, lr: f32) -> Vec<f64> {
    overfit_env(path, batch, steps, lr).0
}

/// Like [`overfit`], also returning the final arguments by name.
fn overfit_env(path: &str, batch: usize, steps: usize, lr: f32) -> (Vec<f64>, HashMap<String, Tensor>) {
    let cfg = config(path);
    let p = build_train_program(&cfg.program, Some(&cfg.training), &cfg.spec).unwrap_or_else(|e| panic!("{e}"));
    let f = p.func("train_step").expect("train_step");
    let mut interp = Interpreter::new(&p);
    interp.init_params(0).expect("init");
    let mut env: HashMap<String, Tensor> = HashMap::new();
    for (i, ((_, t), name)) in f.args.iter().zip(&f.arg_names).enumerate() {
        let shape: Vec<usize> = t
            .shape
            .iter()
            .map(|d| d.eval(&HashMap::from([("B".to_string(), batch as i64)])).expect("dim") as usize)
            .collect();
        let v = if let Some(pn) = name.strip_prefix("param:") {
            interp.param(pn).expect("initialised param").clone()
        } else if name.starts_with("state:") {
            Tensor::zeros(t.dtype, &shape)
        } else if name == "lr" {
            Tensor::scalar_f32(lr)
        } else if t.dtype == DType::I64 {
            Tensor::from_i64(&shape, (0..shape.iter().product::<usize>()).map(|k| (k % 10) as i64).collect())
        } else {
            random_tensor(t.dtype, &shape, i as u64)
        };
        env.insert(name.clone(), v);
    }
    let mut losses = Vec::new();
    for _ in 0..steps {
        let inputs: Vec<Tensor> = f.arg_names.iter().map(|n| env[n].clone()).collect();
        let out = interp.run("train_step", &inputs).unwrap_or_else(|e| panic!("{e}"));
        for (n, t) in f.result_names.iter().zip(out) {
            if n == "loss" {
                losses.push(t.to_f64_vec().expect("loss")[0]);
            } else if n.starts_with("param:") || n.starts_with("state:") {
                env.insert(n.clone(), t);
            }
        }
    }
    (losses, env)
}

#[test]
fn the_digits_mlp_memorises_a_batch() {
    let losses = overfit("examples/train_digits.arch", 16, 60, 1e-2);
    let (first, last) = (losses[0], *losses.last().expect("losses"));
    assert!(first > 1.5, "initial cross-entropy near ln(10): {first}");
    assert!(last < 0.2 * first, "loss went from {first} to {last}");
}

#[test]
fn batch_norm_running_statistics_are_updated_by_the_train_step() {
    let (losses, env) = overfit_env("tests/train_cases/bn_mlp.arch", 16, 3, 1e-2);
    assert!(losses.iter().all(|l| l.is_finite()));
    let mean = env["param:batchnorm1d_0.running_mean"].to_f64_vec().expect("f32");
    let var = env["param:batchnorm1d_0.running_var"].to_f64_vec().expect("f32");
    assert!(mean.iter().any(|m| m.abs() > 1e-4), "running mean still zero: {mean:?}");
    assert!(var.iter().any(|v| (v - 1.0).abs() > 1e-4), "running var still one: {var:?}");
}

/// `archc train --time-steps`: the step's arguments come from its signature (batch size
/// from the train block, other dims from `--dim`), without a data set.
#[test]
fn time_steps_build_arguments_from_the_signature() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/bench/gpu_fno1d.arch");
    let (out, _) = archc::training::read_config(&path, &archc_compiler::sema::Options::default()).expect("readable");
    let cfg = out.config.expect("train config");
    let program = archc::training::train_program(&cfg).expect("train step builds");
    let dims = std::collections::HashMap::from([("N".to_string(), 64)]);
    let args = archc::steptime::step_args(&cfg, &program, &dims).expect("arguments");
    let f = program.func("train_step").expect("train_step");
    let x = f.arg_names.iter().position(|n| n == "x").expect("data field x");
    assert_eq!(args[x].shape(), &[32, 64, 1]);
    let lr = f.arg_names.iter().position(|n| n == "lr").expect("lr");
    assert_eq!(args[lr].to_f64_vec().expect("real"), vec![cfg.lr as f32 as f64]);
    let mut interp = archc_runtime::Interpreter::new(&program);
    let times = archc::steptime::time_steps(&mut interp, &program, args, 1).expect("steps run");
    assert_eq!(times.sorted_ms.len(), 1);
}
