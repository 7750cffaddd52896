use crate::common::*;
use archc_compiler::tir::{BinaryOp, DType, Func, Op, ValueId};
use archc_runtime::{Interpreter, RunError, Tensor};

/// `name(x: f32[N]) -> x op x`
fn self_op(name: &str, op: BinaryOp) -> Func {
    let mut f = FuncBuilder::new(name);
    let x = f.arg(ty(DType::F32, &["N"]));
    let r = f.inst(Op::Binary(op), &[x, x], ty(DType::F32, &["N"]));
    f.finish(&[r])
}

#[test]
fn call_binds_dims_per_activation() {
    // main(x: f32[B], y: f32[C]) -> (double(x), double(y)) with double over any N.
    let mut f = FuncBuilder::new("main");
    let x = f.arg(ty(DType::F32, &["B"]));
    let y = f.arg(ty(DType::F32, &["C"]));
    let a = f.inst(Op::Call("double".into()), &[x], ty(DType::F32, &["B"]));
    let b = f.inst(Op::Call("double".into()), &[y], ty(DType::F32, &["C"]));
    let p = program(vec![f.finish(&[a, b]), self_op("double", BinaryOp::Add)]);
    let r = Interpreter::new(&p).run("main", &[f32s(&[2], &[1.0, 2.0]), f32s(&[3], &[3.0, 4.0, 5.0])]).unwrap();
    assert_eq!(r[0].as_f32().unwrap(), &[2.0, 4.0]);
    assert_eq!(r[1].as_f32().unwrap(), &[6.0, 8.0, 10.0]);
}

#[test]
fn stack_applies_functions_in_order() {
    // stack [double, square]: (x + x)^2 = 4x^2; [square, double]: 2x^2.
    let mk = |funcs: &[&str]| {
        let mut f = FuncBuilder::new("main");
        let x = f.arg(ty(DType::F32, &["N"]));
        let r = f.inst(Op::Stack(funcs.iter().map(|s| s.to_string()).collect()), &[x], ty(DType::F32, &["N"]));
        program(vec![f.finish(&[r]), self_op("double", BinaryOp::Add), self_op("square", BinaryOp::Mul)])
    };
    let x = f32s(&[2], &[1.0, 3.0]);
    let p = mk(&["double", "square"]);
    assert_eq!(Interpreter::new(&p).run("main", &[x.clone()]).unwrap()[0].as_f32().unwrap(), &[4.0, 36.0]);
    let p = mk(&["square", "double"]);
    assert_eq!(Interpreter::new(&p).run("main", &[x.clone()]).unwrap()[0].as_f32().unwrap(), &[2.0, 18.0]);
    let p = mk(&[]);
    assert_eq!(Interpreter::new(&p).run("main", &[x.clone()]).unwrap()[0], x);
}

#[test]
fn vmap_slices_kept_and_dropped_axes() {
    // target(x: f32[1, 3], w: f32[3, 2]) -> x @ w; vmap over x: f32[B, 3] and
    // w_batch: f32[B, 3, 2] (keep = [true, false]) gives row i times w_batch[i].
    let mut t = FuncBuilder::new("target");
    let x = t.arg(ty(DType::F32, &["1", "3"]));
    let w = t.arg(ty(DType::F32, &["3", "2"]));
    let r = t.inst(Op::MatMul, &[x, w], ty(DType::F32, &["1", "2"]));
    let target = t.finish(&[r]);
    let mut f = FuncBuilder::new("main");
    let xs = f.arg(ty(DType::F32, &["B", "3"]));
    let ws = f.arg(ty(DType::F32, &["B", "3", "2"]));
    let vm = Op::Vmap { func: "target".into(), keep: vec![true, false] };
    let r = f.inst(vm, &[xs, ws], ty(DType::F32, &["B", "2"]));
    let p = program(vec![f.finish(&[r]), target]);
    // Sample 0: [1, 0, 0] picks w0's first row [1, 2]; sample 1: [0, 1, 1] sums w1's last rows.
    let xs = f32s(&[2, 3], &[1.0, 0.0, 0.0, 0.0, 1.0, 1.0]);
    let ws = f32s(&[2, 3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
    let got = Interpreter::new(&p).run("main", &[xs, ws]).unwrap();
    assert_eq!(got[0].as_f32().unwrap(), &[1.0, 2.0, 80.0, 100.0]);
    // B = 0 gives the empty result.
    let empty = Interpreter::new(&p)
        .run("main", &[Tensor::zeros(DType::F32, &[0, 3]), Tensor::zeros(DType::F32, &[0, 3, 2])])
        .unwrap();
    assert_eq!(empty[0].shape, vec![0, 2]);
}

#[test]
fn vmap_gives_each_sample_its_own_random_stream() {
    // noise(x: f32[1, 4]) -> rand.uniform {seed=0} : f32[1, 4]
    let mut t = FuncBuilder::new("noise");
    let _x = t.arg(ty(DType::F32, &["1", "4"]));
    let r = t.inst(Op::RandUniform { seed: 0 }, &[], ty(DType::F32, &["1", "4"]));
    let noise_fn = t.finish(&[r]);
    let mut f = FuncBuilder::new("main");
    let xs = f.arg(ty(DType::F32, &["B", "4"]));
    let r = f.inst(Op::Vmap { func: "noise".into(), keep: vec![true] }, &[xs], ty(DType::F32, &["B", "4"]));
    let p = program(vec![f.finish(&[r]), noise_fn]);
    let it = Interpreter::new(&p);
    let got = it.run("main", &[Tensor::zeros(DType::F32, &[2, 4])]).unwrap();
    let v = got[0].as_f32().unwrap();
    assert_ne!(v[..4], v[4..]);
    assert_eq!(it.run("main", &[Tensor::zeros(DType::F32, &[2, 4])]).unwrap(), got);
}

#[test]
fn scan_runs_a_recurrence() {
    // cell(h: f32[B], x: f32[B]) -> h + x; scan over axis 1 of xs: f32[B, T] from h0: f32[B]
    // stacks the running sums: result[b, t] = h0[b] + xs[b, 0] + ... + xs[b, t].
    let mut c = FuncBuilder::new("cell");
    let h = c.arg(ty(DType::F32, &["B"]));
    let x = c.arg(ty(DType::F32, &["B"]));
    let r = c.inst(Op::Binary(BinaryOp::Add), &[h, x], ty(DType::F32, &["B"]));
    let cell = c.finish(&[r]);
    let mut f = FuncBuilder::new("main");
    let h0 = f.arg(ty(DType::F32, &["B"]));
    let xs = f.arg(ty(DType::F32, &["B", "T"]));
    let r = f.inst(Op::Scan { func: "cell".into(), axis: 1 }, &[h0, xs], ty(DType::F32, &["B", "T"]));
    let p = program(vec![f.finish(&[r]), cell]);
    let h0 = f32s(&[2], &[0.0, 100.0]);
    let xs = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let got = Interpreter::new(&p).run("main", &[h0.clone(), xs]).unwrap();
    assert_eq!(got[0].as_f32().unwrap(), &[1.0, 3.0, 6.0, 104.0, 109.0, 115.0]);
    let empty = Interpreter::new(&p).run("main", &[h0, Tensor::zeros(DType::F32, &[2, 0])]).unwrap();
    assert_eq!(empty[0].shape, vec![2, 0]);
}

#[test]
fn declared_type_mismatch_names_the_instruction() {
    // main(x: f32[B, 4]) -> reduce.sum over axis 1, wrongly declared f32[B, 4].
    let mut f = FuncBuilder::new("main");
    let x = f.arg(ty(DType::F32, &["B", "4"]));
    let op = Op::Reduce { op: archc_compiler::tir::ReduceOp::Sum, axes: vec![1], keepdim: false };
    let r = f.inst(op, &[x], ty(DType::F32, &["B", "4"]));
    let p = program(vec![f.finish(&[r])]);
    let e = Interpreter::new(&p).run("main", &[Tensor::zeros(DType::F32, &[2, 4])]).unwrap_err();
    match &e {
        RunError::Inst { func, inst, message } => {
            assert_eq!((func.as_str(), inst.as_str()), ("main", "%1 = reduce.sum"));
            assert!(message.contains("result is f32[2], declared f32[B, 4] = f32[2, 4]"), "{message}");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn input_and_lookup_errors() {
    let p = program(vec![self_op("double", BinaryOp::Add)]);
    let it = Interpreter::new(&p);
    assert_eq!(it.run("nope", &[]).unwrap_err(), RunError::UnknownFunc("nope".into()));
    let e = it.run("double", &[Tensor::zeros(DType::F32, &[2, 2])]).unwrap_err();
    assert!(
        matches!(e, RunError::Input { .. }) && e.to_string().contains("input 0 is f32[2, 2], expected f32[N]"),
        "{e}"
    );
    let e = it.run("double", &[]).unwrap_err();
    assert!(e.to_string().contains("expects 1 inputs, got 0"), "{e}");
}

#[test]
fn errors_inside_calls_are_nested() {
    // main(x: f32[N]) -> call(bad); bad(x: f32[N]) -> add(x, x) declared f32[N + 1].
    let mut b = FuncBuilder::new("bad");
    let x = b.arg(ty(DType::F32, &["N"]));
    let r = b.inst(Op::Binary(BinaryOp::Add), &[x, x], ty(DType::F32, &["N + 1"]));
    let bad = b.finish(&[r]);
    let mut f = FuncBuilder::new("main");
    let x = f.arg(ty(DType::F32, &["N"]));
    let r = f.inst(Op::Call("bad".into()), &[x], ty(DType::F32, &["N"]));
    let p = program(vec![f.finish(&[r]), bad]);
    let e = Interpreter::new(&p).run("main", &[f32s(&[1], &[1.0])]).unwrap_err();
    assert!(matches!(e, RunError::Nested { .. }), "{e:?}");
    assert!(e.to_string().starts_with("in @main, %1 = call: in @bad, %1 = add: result is f32[1]"), "{e}");
}

#[test]
fn recursion_is_an_error_not_a_crash() {
    let mut f = FuncBuilder::new("main");
    let x = f.arg(ty(DType::F32, &["N"]));
    let r = f.inst(Op::Call("main".into()), &[x], ty(DType::F32, &["N"]));
    let p = program(vec![f.finish(&[r])]);
    let e = Interpreter::new(&p).run("main", &[f32s(&[1], &[1.0])]).unwrap_err();
    assert!(e.to_string().contains("recursion"), "{e}");
}

#[test]
fn undefined_values_are_errors() {
    let mut f = FuncBuilder::new("main");
    let x = f.arg(ty(DType::F32, &["N"]));
    let r = f.inst(Op::Binary(BinaryOp::Add), &[x, ValueId(7)], ty(DType::F32, &["N"]));
    let p = program(vec![f.finish(&[r])]);
    let e = Interpreter::new(&p).run("main", &[f32s(&[1], &[1.0])]).unwrap_err();
    assert!(e.to_string().contains("%7 is used before it is defined"), "{e}");
}
