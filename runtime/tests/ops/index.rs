use crate::common::*;
use archc_compiler::tir::{DType, Dim, Op};
use archc_runtime::Tensor;

fn slice_op(start: &[i64], end: &[&str], step: &[i64]) -> Op {
    Op::Slice {
        start: start.iter().map(|&s| Dim::constant(s)).collect(),
        end: end.iter().map(|e| Dim::parse(e).unwrap()).collect(),
        step: step.to_vec(),
    }
}

#[test]
fn slice_with_steps_and_clamping() {
    let x = i64s(&[10], &(0..10).collect::<Vec<_>>());
    // 1, 4, 7 (8 is exclusive)
    assert_eq!(eval(slice_op(&[1], &["8"], &[3]), &[x.clone()], tt(DType::I64, &[3])).as_i64().unwrap(), &[1, 4, 7]);
    // The end clamps to 10: 7, 9
    assert_eq!(eval(slice_op(&[7], &["100"], &[2]), &[x.clone()], tt(DType::I64, &[2])).as_i64().unwrap(), &[7, 9]);
    // Empty when start >= end.
    assert_eq!(eval(slice_op(&[5], &["5"], &[1]), &[x.clone()], tt(DType::I64, &[0])).numel(), 0);
    assert_eq!(eval(slice_op(&[12], &["20"], &[1]), &[x.clone()], tt(DType::I64, &[0])).numel(), 0);
    let e = eval_err(slice_op(&[0], &["2"], &[0]), &[x], tt(DType::I64, &[2]));
    assert!(e.contains("not positive"), "{e}");
}

#[test]
fn slice_2d_with_symbolic_end() {
    // main(x: f32[B, 4]) -> x[0:B, 1:4:2]
    let mut f = FuncBuilder::new("main");
    let x = f.arg(ty(DType::F32, &["B", "4"]));
    let op = Op::Slice { start: vec![0.into(), 1.into()], end: vec![Dim::sym("B"), 4.into()], step: vec![1, 2] };
    let r = f.inst(op, &[x], ty(DType::F32, &["B", "2"]));
    let p = program(vec![f.finish(&[r])]);
    let input = f32s(&[3, 4], &(0..12).map(|v| v as f32).collect::<Vec<_>>());
    let got = archc_runtime::Interpreter::new(&p).run("main", &[input]).unwrap();
    assert_eq!(got[0].as_f32().unwrap(), &[1.0, 3.0, 5.0, 7.0, 9.0, 11.0]);
}

#[test]
fn gather_rows_and_columns() {
    // table [[1, 2], [3, 4], [5, 6]] at rows [2, 0, 2]
    let table = f32s(&[3, 2], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let idx = i64s(&[3], &[2, 0, 2]);
    let got = eval(Op::Gather { axis: 0 }, &[table.clone(), idx], tt(DType::F32, &[3, 2]));
    assert_eq!(got.as_f32().unwrap(), &[5.0, 6.0, 1.0, 2.0, 5.0, 6.0]);
    // x [[1, 2, 3], [4, 5, 6]] along axis 1 with idx [[0, 2], [1, 1]]:
    // result[o, p, q] = x[o, idx[p, q]] -> [[[1, 3], [2, 2]], [[4, 6], [5, 5]]]
    let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let idx = i64s(&[2, 2], &[0, 2, 1, 1]);
    let got = eval(Op::Gather { axis: 1 }, &[x.clone(), idx], tt(DType::F32, &[2, 2, 2]));
    assert_eq!(got.as_f32().unwrap(), &[1.0, 3.0, 2.0, 2.0, 4.0, 6.0, 5.0, 5.0]);
    let e = eval_err(Op::Gather { axis: 0 }, &[table.clone(), i64s(&[1], &[3])], tt(DType::F32, &[1, 2]));
    assert!(e.contains("index 3 out of range [-3, 3)"), "{e}");
    // Negative indices count from the end; below `-size` they are out of range.
    let got = eval(Op::Gather { axis: 0 }, &[table.clone(), i64s(&[2], &[-1, -3])], tt(DType::F32, &[2, 2]));
    assert_eq!(got.as_f32().unwrap(), &[5.0, 6.0, 1.0, 2.0]);
    let e = eval_err(Op::Gather { axis: 0 }, &[table, i64s(&[1], &[-4])], tt(DType::F32, &[1, 2]));
    assert!(e.contains("index -4 out of range [-3, 3)"), "{e}");
}

#[test]
fn scatter_add_accumulates_repeated_indices() {
    // Rows 2, 0, 2 receive [1, 1], [2, 2], [3, 3]: row 0 = 2, row 2 = 1 + 3 = 4.
    let x = f32s(&[3, 2], &[0.5; 6]);
    let idx = i64s(&[3], &[2, 0, 2]);
    let src = f32s(&[3, 2], &[1.0, 1.0, 2.0, 2.0, 3.0, 3.0]);
    let got = eval(Op::ScatterAdd { axis: 0 }, &[x, idx.clone(), src], tt(DType::F32, &[3, 2]));
    assert_eq!(got.as_f32().unwrap(), &[2.5, 2.5, 0.5, 0.5, 4.5, 4.5]);
    let e = eval_err(
        Op::ScatterAdd { axis: 0 },
        &[Tensor::zeros(DType::F32, &[3, 2]), idx, f32s(&[2, 2], &[0.0; 4])],
        tt(DType::F32, &[3, 2]),
    );
    assert!(e.contains("src is f32[2, 2], expected f32[3, 2]"), "{e}");
}

#[test]
fn gather_scatter_round_trip_and_adjoint() {
    let x = f32s(&[2, 4, 3], &noise(24, 3));
    // A permutation of axis 1: scattering the gathered rows back restores x.
    let perm = i64s(&[4], &[2, 0, 3, 1]);
    let g = eval(Op::Gather { axis: 1 }, &[x.clone(), perm.clone()], tt(DType::F32, &[2, 4, 3]));
    let zeros = Tensor::zeros(DType::F32, &[2, 4, 3]);
    let back = eval(Op::ScatterAdd { axis: 1 }, &[zeros.clone(), perm, g], tt(DType::F32, &[2, 4, 3]));
    assert_eq!(back, x);
    // Adjoint: <gather(x, idx), y> == <x, scatter_add(0, idx, y)> with repeats.
    let idx = i64s(&[5], &[1, 1, 3, 0, 1]);
    let y = f32s(&[2, 5, 3], &noise(30, 4));
    let g = eval(Op::Gather { axis: 1 }, &[x.clone(), idx.clone()], tt(DType::F32, &[2, 5, 3]));
    let s = eval(Op::ScatterAdd { axis: 1 }, &[zeros, idx, y.clone()], tt(DType::F32, &[2, 4, 3]));
    let dot = |a: &Tensor, b: &Tensor| -> f64 {
        a.as_f32().unwrap().iter().zip(b.as_f32().unwrap()).map(|(&p, &q)| p as f64 * q as f64).sum()
    };
    assert!((dot(&g, &y) - dot(&x, &s)).abs() < 1e-5);
}
