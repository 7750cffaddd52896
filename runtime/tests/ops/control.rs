use crate::common::*;
use archc_compiler::tir::{BinaryOp, DType, Func, Op, ReduceOp, ValueId};
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
    let vm = Op::Vmap { func: "target".into(), keep: vec![true, false], out_keep: vec![true] };
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
    let vm = Op::Vmap { func: "noise".into(), keep: vec![true], out_keep: vec![true] };
    let r = f.inst(vm, &[xs], ty(DType::F32, &["B", "4"]));
    let p = program(vec![f.finish(&[r]), noise_fn]);
    let it = Interpreter::new(&p);
    let got = it.run("main", &[Tensor::zeros(DType::F32, &[2, 4])]).unwrap();
    let v = got[0].as_f32().unwrap();
    assert_ne!(v[..4], v[4..]);
    assert_eq!(it.run("main", &[Tensor::zeros(DType::F32, &[2, 4])]).unwrap(), got);
}

/// `scan {func, axis, carries, xs, reverse}`.
fn scan_op(func: &str, axis: usize, carries: usize, xs: usize, reverse: bool) -> Op {
    Op::Scan { func: func.into(), axis, carries, xs, reverse }
}

/// `cell(h: f32[B], x: f32[B]) -> (h + x, h + x)`: the running sum as carry and output.
fn sum_cell() -> Func {
    let mut c = FuncBuilder::new("cell");
    let h = c.arg(ty(DType::F32, &["B"]));
    let x = c.arg(ty(DType::F32, &["B"]));
    let r = c.inst(Op::Binary(BinaryOp::Add), &[h, x], ty(DType::F32, &["B"]));
    c.finish(&[r, r])
}

/// `main(h0: f32[B], xs: f32[B, T]) -> scan(h0, xs) {axis=1}` with both results.
fn sum_scan(reverse: bool) -> archc_compiler::tir::Program {
    let mut f = FuncBuilder::new("main");
    let h0 = f.arg(ty(DType::F32, &["B"]));
    let xs = f.arg(ty(DType::F32, &["B", "T"]));
    let rs = f.inst_multi(
        scan_op("cell", 1, 1, 1, reverse),
        &[h0, xs],
        &[ty(DType::F32, &["B"]), ty(DType::F32, &["B", "T"])],
    );
    program(vec![f.finish(&rs), sum_cell()])
}

#[test]
fn scan_runs_a_recurrence() {
    // Forward: result[b, t] = h0[b] + xs[b, 0] + ... + xs[b, t]; the final carry is the
    // last column.
    let p = sum_scan(false);
    let h0 = f32s(&[2], &[0.0, 100.0]);
    let xs = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let got = Interpreter::new(&p).run("main", &[h0.clone(), xs]).unwrap();
    assert_eq!(got[0].as_f32().unwrap(), &[6.0, 115.0]);
    assert_eq!(got[1].as_f32().unwrap(), &[1.0, 3.0, 6.0, 104.0, 109.0, 115.0]);
    // T = 0: the carry is the initial value, the stacked output is empty.
    let empty = Interpreter::new(&p).run("main", &[h0.clone(), Tensor::zeros(DType::F32, &[2, 0])]).unwrap();
    assert_eq!(empty[0], h0);
    assert_eq!(empty[1].shape, vec![2, 0]);
}

#[test]
fn reverse_scan_computes_suffix_sums() {
    // Steps run t = 2, 1, 0 and y_t is stored at index t:
    // y[b, t] = h0[b] + xs[b, t] + ... + xs[b, T - 1].
    let p = sum_scan(true);
    let h0 = f32s(&[2], &[0.0, 100.0]);
    let xs = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let got = Interpreter::new(&p).run("main", &[h0, xs]).unwrap();
    assert_eq!(got[0].as_f32().unwrap(), &[6.0, 115.0]);
    assert_eq!(got[1].as_f32().unwrap(), &[6.0, 5.0, 3.0, 115.0, 111.0, 106.0]);
}

#[test]
fn scan_with_two_carries_and_an_invariant() {
    // cell(acc: f32[N], n: i64[], x: f32[N], w: f32[N]) -> (acc + x * w, n + 1, sum(acc + x * w))
    // over axis 0 of xs: f32[T, N], with w passed unchanged to every step.
    let mut c = FuncBuilder::new("cell");
    let acc = c.arg(ty(DType::F32, &["N"]));
    let n = c.arg(ty(DType::I64, &[]));
    let x = c.arg(ty(DType::F32, &["N"]));
    let w = c.arg(ty(DType::F32, &["N"]));
    let xw = c.inst(Op::Binary(BinaryOp::Mul), &[x, w], ty(DType::F32, &["N"]));
    let acc2 = c.inst(Op::Binary(BinaryOp::Add), &[acc, xw], ty(DType::F32, &["N"]));
    let one = c.inst(Op::Const(1.0), &[], ty(DType::I64, &[]));
    let n2 = c.inst(Op::Binary(BinaryOp::Add), &[n, one], ty(DType::I64, &[]));
    let total = Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdim: false };
    let y = c.inst(total, &[acc2], ty(DType::F32, &[]));
    let cell = c.finish(&[acc2, n2, y]);
    let mut f = FuncBuilder::new("main");
    let acc0 = f.arg(ty(DType::F32, &["N"]));
    let n0 = f.arg(ty(DType::I64, &[]));
    let xs = f.arg(ty(DType::F32, &["T", "N"]));
    let w = f.arg(ty(DType::F32, &["N"]));
    let types = [ty(DType::F32, &["N"]), ty(DType::I64, &[]), ty(DType::F32, &["T"])];
    let rs = f.inst_multi(scan_op("cell", 0, 2, 1, false), &[acc0, n0, xs, w], &types);
    let p = program(vec![f.finish(&rs), cell]);
    archc_compiler::tir::verify(&p).unwrap();
    // w = [1, 2]; xs rows [1, 1], [2, 0], [0, 3]: acc goes [1, 2], [3, 2], [3, 8].
    let inputs = [
        f32s(&[2], &[0.0, 0.0]),
        i64s(&[], &[5]),
        f32s(&[3, 2], &[1.0, 1.0, 2.0, 0.0, 0.0, 3.0]),
        f32s(&[2], &[1.0, 2.0]),
    ];
    let got = Interpreter::new(&p).run("main", &inputs).unwrap();
    assert_eq!(got[0].as_f32().unwrap(), &[3.0, 8.0]);
    assert_eq!(got[1], i64s(&[], &[8]));
    assert_eq!(got[2].as_f32().unwrap(), &[3.0, 5.0, 11.0]);
}

#[test]
fn scan_steps_are_keyed_by_their_time_index() {
    // cell(c: f32[], x: f32[]) -> (c, rand.uniform): every step draws its own values, and a
    // reverse scan at the same site draws the same values at the same time index.
    let mut c = FuncBuilder::new("cell");
    let carry = c.arg(ty(DType::F32, &[]));
    let _x = c.arg(ty(DType::F32, &[]));
    let r = c.inst(Op::RandUniform { seed: 7 }, &[], ty(DType::F32, &["2"]));
    let cell = c.finish(&[carry, r]);
    let run = |reverse: bool| {
        let mut f = FuncBuilder::new("main");
        let c0 = f.arg(ty(DType::F32, &[]));
        let xs = f.arg(ty(DType::F32, &["T"]));
        let types = [ty(DType::F32, &[]), ty(DType::F32, &["T", "2"])];
        let rs = f.inst_multi(scan_op("cell", 0, 1, 1, reverse), &[c0, xs], &types);
        let p = program(vec![f.finish(&rs), cell.clone()]);
        let got = Interpreter::new(&p).run("main", &[f32s(&[], &[0.0]), Tensor::zeros(DType::F32, &[3])]).unwrap();
        got[1].as_f32().unwrap().to_vec()
    };
    let forward = run(false);
    assert!(forward[0..2] != forward[2..4] && forward[2..4] != forward[4..6], "{forward:?}");
    assert_eq!(run(true), forward);
}

#[test]
fn scan_rejects_a_carry_that_changes_type() {
    // cell(h: f32[N], x: f32[N]) -> (concat(h, x), h) declared as if it kept the type.
    let mut c = FuncBuilder::new("cell");
    let h = c.arg(ty(DType::F32, &["N"]));
    let x = c.arg(ty(DType::F32, &["N"]));
    let hx = c.inst(Op::Concat { axis: 0 }, &[h, x], ty(DType::F32, &["2 * N"]));
    let cell = c.finish(&[hx, h]);
    let mut f = FuncBuilder::new("main");
    let h0 = f.arg(ty(DType::F32, &["N"]));
    let xs = f.arg(ty(DType::F32, &["T", "N"]));
    let rs = f.inst_multi(
        scan_op("cell", 0, 1, 1, false),
        &[h0, xs],
        &[ty(DType::F32, &["N"]), ty(DType::F32, &["T", "N"])],
    );
    let p = program(vec![f.finish(&rs), cell]);
    let e = Interpreter::new(&p).run("main", &[f32s(&[1], &[1.0]), f32s(&[2, 1], &[1.0, 2.0])]).unwrap_err();
    assert!(e.to_string().contains("@cell returns f32[2] for carry 0, whose type is f32[1]"), "{e}");
}

/// `split(x: f32[N]) -> (x * x, sum(x))`.
fn split() -> Func {
    let mut s = FuncBuilder::new("split");
    let x = s.arg(ty(DType::F32, &["N"]));
    let sq = s.inst(Op::Binary(BinaryOp::Mul), &[x, x], ty(DType::F32, &["N"]));
    let total = Op::Reduce { op: ReduceOp::Sum, axes: vec![0], keepdim: false };
    let sum = s.inst(total, &[x], ty(DType::F32, &[]));
    s.finish(&[sq, sum])
}

#[test]
fn call_returns_every_result() {
    let mut f = FuncBuilder::new("main");
    let x = f.arg(ty(DType::F32, &["B"]));
    let rs = f.inst_multi(Op::Call("split".into()), &[x], &[ty(DType::F32, &["B"]), ty(DType::F32, &[])]);
    let p = program(vec![f.finish(&rs), split()]);
    archc_compiler::tir::verify(&p).unwrap();
    let got = Interpreter::new(&p).run("main", &[f32s(&[3], &[1.0, 2.0, 3.0])]).unwrap();
    assert_eq!(got, vec![f32s(&[3], &[1.0, 4.0, 9.0]), f32s(&[], &[6.0])]);
    // A declared type that the run contradicts names the result.
    let mut f = FuncBuilder::new("main");
    let x = f.arg(ty(DType::F32, &["B"]));
    let rs = f.inst_multi(Op::Call("split".into()), &[x], &[ty(DType::F32, &["B"]), ty(DType::F32, &["B"])]);
    let p = program(vec![f.finish(&rs), split()]);
    let e = Interpreter::new(&p).run("main", &[f32s(&[3], &[1.0, 2.0, 3.0])]).unwrap_err();
    assert!(e.to_string().contains("%1 = call: result 1 is f32[], declared f32[B] = f32[3]"), "{e}");
}

#[test]
fn unused_second_results_are_removed_with_their_instruction_only_when_all_are_dead() {
    // main(x) -> exp(second result of split(x)): cleanup keeps the call whole.
    let mut f = FuncBuilder::new("main");
    let x = f.arg(ty(DType::F32, &["B"]));
    let _dead = f.inst(Op::Unary(archc_compiler::tir::UnaryOp::Neg), &[x], ty(DType::F32, &["B"]));
    let rs = f.inst_multi(Op::Call("split".into()), &[x], &[ty(DType::F32, &["B"]), ty(DType::F32, &[])]);
    let y = f.inst(Op::Unary(archc_compiler::tir::UnaryOp::Exp), &[rs[1]], ty(DType::F32, &[]));
    let mut p = program(vec![f.finish(&[y]), split()]);
    let x = f32s(&[2], &[0.5, -0.5]);
    let before = Interpreter::new(&p).run("main", &[x.clone()]).unwrap();
    archc_compiler::passes::cleanup(&mut p);
    archc_compiler::tir::verify(&p).unwrap();
    assert_eq!(p.main().body.len(), 2, "{p}");
    assert_eq!(p.main().body[0].result_ids().collect::<Vec<_>>(), [ValueId(1), ValueId(2)]);
    assert_eq!(Interpreter::new(&p).run("main", &[x]).unwrap(), before);
    assert_eq!(before[0], f32s(&[], &[1.0]));
}

#[test]
fn vmap_concatenates_kept_results_and_stacks_the_others() {
    // per(x: f32[1, 3]) -> (x + x : f32[1, 3], sum(x) : f32[]); out_keep = [true, false]
    // gives f32[B, 3] (concatenated) and f32[B] (stacked).
    let mut s = FuncBuilder::new("per");
    let x = s.arg(ty(DType::F32, &["1", "3"]));
    let dbl = s.inst(Op::Binary(BinaryOp::Add), &[x, x], ty(DType::F32, &["1", "3"]));
    let total = Op::Reduce { op: ReduceOp::Sum, axes: vec![0, 1], keepdim: false };
    let sum = s.inst(total, &[x], ty(DType::F32, &[]));
    let per = s.finish(&[dbl, sum]);
    let mut f = FuncBuilder::new("main");
    let xs = f.arg(ty(DType::F32, &["B", "3"]));
    let vm = Op::Vmap { func: "per".into(), keep: vec![true], out_keep: vec![true, false] };
    let rs = f.inst_multi(vm, &[xs], &[ty(DType::F32, &["B", "3"]), ty(DType::F32, &["B"])]);
    let p = program(vec![f.finish(&rs), per]);
    archc_compiler::tir::verify(&p).unwrap();
    let got = Interpreter::new(&p).run("main", &[f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])]).unwrap();
    assert_eq!(got[0], f32s(&[2, 3], &[2.0, 4.0, 6.0, 8.0, 10.0, 12.0]));
    assert_eq!(got[1], f32s(&[2], &[6.0, 15.0]));
    let empty = Interpreter::new(&p).run("main", &[Tensor::zeros(DType::F32, &[0, 3])]).unwrap();
    assert_eq!((empty[0].shape.clone(), empty[1].shape.clone()), (vec![0, 3], vec![0]));
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
