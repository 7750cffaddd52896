use crate::common::*;
use archc_compiler::tir::{DType, Func, Init, Op, ParamDecl, Program};
use archc_runtime::{Interpreter, RunError, Tensor};

/// main() -> (rand.uniform {seed=1}, rand.uniform {seed=1}, rand.uniform {seed=2}, rand.normal {seed=1})
fn rand_program(n: usize) -> Program {
    let mut f = FuncBuilder::new("main");
    let t = tt(DType::F32, &[n]);
    let a = f.inst(Op::RandUniform { seed: 1 }, &[], t.clone());
    let b = f.inst(Op::RandUniform { seed: 1 }, &[], t.clone());
    let c = f.inst(Op::RandUniform { seed: 2 }, &[], t.clone());
    let d = f.inst(Op::RandNormal { seed: 1 }, &[], t);
    program(vec![f.finish(&[a, b, c, d])])
}

fn stats(t: &Tensor) -> (f64, f64) {
    let v = t.to_f64_vec().unwrap();
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / v.len() as f64;
    (mean, var.sqrt())
}

#[test]
fn rand_ops_are_deterministic_per_seed() {
    let p = rand_program(10_000);
    let mut it = Interpreter::new(&p);
    let r1 = it.run("main", &[]).unwrap();
    let r2 = it.run("main", &[]).unwrap();
    assert_eq!(r1, r2);
    assert_eq!(r1[0], r1[1]); // same op seed, same stream
    assert_ne!(r1[0], r1[2]);
    it.set_seed(7);
    let r3 = it.run("main", &[]).unwrap();
    assert_ne!(r1[0], r3[0]);
    // Uniform in [0, 1) with mean 1/2 and std 1/sqrt(12); normal with mean 0, std 1.
    assert!(r1[0].as_f32().unwrap().iter().all(|&u| (0.0..1.0).contains(&u)));
    let (m, s) = stats(&r1[0]);
    assert!((m - 0.5).abs() < 0.02 && (s - 0.2887).abs() < 0.02, "{m} {s}");
    let (m, s) = stats(&r1[3]);
    assert!(m.abs() < 0.05 && (s - 1.0).abs() < 0.05, "{m} {s}");
}

#[test]
fn rand_f64_and_bad_dtype() {
    let got = eval(Op::RandNormal { seed: 3 }, &[], tt(DType::F64, &[2, 3]));
    assert_eq!(got.shape, vec![2, 3]);
    let e = eval_err(Op::RandUniform { seed: 3 }, &[], tt(DType::I64, &[2]));
    assert!(e.contains("rand.uniform of dtype i64"), "{e}");
}

fn decl(name: &str, dtype: DType, dims: &[&str], init: Init) -> ParamDecl {
    ParamDecl { name: name.into(), ty: ty(dtype, dims), init, trainable: true }
}

fn param_program(params: Vec<ParamDecl>) -> Program {
    let mut f = FuncBuilder::new("main");
    let results: Vec<_> = params.iter().map(|p| f.inst(Op::Param(p.name.clone()), &[], p.ty.clone())).collect();
    let main: Func = f.finish(&results);
    Program { name: "p".into(), params, funcs: vec![main] }
}

#[test]
fn init_params_by_init_kind() {
    let p = param_program(vec![
        decl("z", DType::F32, &["2"], Init::Zeros),
        decl("o", DType::I64, &["3"], Init::Ones),
        decl("c", DType::F64, &["2", "2"], Init::Constant(0.25)),
        decl("n", DType::F32, &["100", "100"], Init::Normal { mean: 2.0, std: 0.5 }),
        decl("u", DType::F32, &["10000"], Init::Uniform { low: -0.125, high: 0.25 }),
        decl("u2", DType::F32, &["10000"], Init::Uniform { low: -0.125, high: 0.25 }),
    ]);
    let mut it = Interpreter::new(&p);
    it.init_params(42).unwrap();
    let r = it.run("main", &[]).unwrap();
    assert_eq!(r[0].as_f32().unwrap(), &[0.0, 0.0]);
    assert_eq!(r[1].as_i64().unwrap(), &[1, 1, 1]);
    assert_eq!(r[2].as_f64().unwrap(), &[0.25; 4]);
    let (m, s) = stats(&r[3]);
    assert!((m - 2.0).abs() < 0.02 && (s - 0.5).abs() < 0.02, "{m} {s}");
    assert!(r[4].as_f32().unwrap().iter().all(|&u| (-0.125..0.25).contains(&u)));
    let (m, _) = stats(&r[4]);
    assert!((m - 0.0625).abs() < 0.01, "{m}");
    // Same declaration, other name: another stream.
    assert_ne!(r[4], r[5]);
    // Deterministic in the seed.
    let mut again = Interpreter::new(&p);
    again.init_params(42).unwrap();
    assert_eq!(again.param("n"), it.param("n"));
    again.init_params(43).unwrap();
    assert_ne!(again.param("n"), it.param("n"));
}

#[test]
fn param_errors() {
    let p = param_program(vec![decl("w", DType::F32, &["2"], Init::Zeros)]);
    let mut it = Interpreter::new(&p);
    // Never set: reading it fails at the param instruction.
    let e = it.run("main", &[]).unwrap_err();
    assert!(e.to_string().contains("%0 = param: parameter @w has no value"), "{e}");
    let e = it.set_param("w", Tensor::zeros(DType::F32, &[3])).unwrap_err();
    assert!(e.to_string().contains("value is f32[3], declared f32[2]"), "{e}");
    assert!(matches!(it.set_param("v", Tensor::zeros(DType::F32, &[2])), Err(RunError::Param { .. })));
    it.set_param("w", Tensor::from_f32(&[2], vec![1.0, 2.0])).unwrap();
    assert_eq!(it.run("main", &[]).unwrap()[0].as_f32().unwrap(), &[1.0, 2.0]);

    let p = param_program(vec![decl("s", DType::F32, &["B"], Init::Zeros)]);
    let e = Interpreter::new(&p).init_params(0).unwrap_err();
    assert!(e.to_string().contains("param @s: declared type f32[B] is not concrete"), "{e}");
}
