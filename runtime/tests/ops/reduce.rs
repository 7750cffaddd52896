use crate::common::*;
use archc_compiler::tir::{DType, Op, ReduceOp as R};
use archc_runtime::Tensor;

fn reduce(op: R, x: &Tensor, axes: &[usize], keepdim: bool, out: &[usize]) -> Tensor {
    let op = Op::Reduce { op, axes: axes.to_vec(), keepdim };
    eval(op, &[x.clone()], tt(x.dtype(), out))
}

/// [[1, 2, 3], [4, 5, 6]]
fn m23() -> Tensor {
    f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
}

#[test]
fn sum_mean_max_min_over_axes() {
    let x = m23();
    assert_eq!(reduce(R::Sum, &x, &[1], false, &[2]).as_f32().unwrap(), &[6.0, 15.0]);
    assert_eq!(reduce(R::Sum, &x, &[1], true, &[2, 1]).as_f32().unwrap(), &[6.0, 15.0]);
    assert_eq!(reduce(R::Sum, &x, &[0], false, &[3]).as_f32().unwrap(), &[5.0, 7.0, 9.0]);
    assert_eq!(reduce(R::Sum, &x, &[0, 1], false, &[]).as_f32().unwrap(), &[21.0]);
    assert_eq!(reduce(R::Sum, &x, &[1, 0], true, &[1, 1]).as_f32().unwrap(), &[21.0]);
    assert_eq!(reduce(R::Mean, &x, &[1], false, &[2]).as_f32().unwrap(), &[2.0, 5.0]);
    assert_eq!(reduce(R::Max, &x, &[0], false, &[3]).as_f32().unwrap(), &[4.0, 5.0, 6.0]);
    assert_eq!(reduce(R::Min, &x, &[1], false, &[2]).as_f32().unwrap(), &[1.0, 4.0]);
    // No axes: the identity.
    assert_eq!(reduce(R::Sum, &x, &[], false, &[2, 3]), x);
}

#[test]
fn non_adjacent_axes() {
    // x[i, j, k] = 6i + 2j + k, shape [2, 3, 2]. Summing over i and k:
    // sum_{i,k} = (0 + 6) * 2 + 2j * 4 + (0 + 1) * 2 = 14 + 8j -> [14, 22, 30]
    let x = f32s(&[2, 3, 2], &(0..12).map(|v| v as f32).collect::<Vec<_>>());
    assert_eq!(reduce(R::Sum, &x, &[0, 2], false, &[3]).as_f32().unwrap(), &[14.0, 22.0, 30.0]);
    let got = reduce(R::Mean, &x, &[2, 0], true, &[1, 3, 1]);
    assert_eq!(got.as_f32().unwrap(), &[3.5, 5.5, 7.5]);
}

#[test]
fn integer_bool_and_f64_reductions() {
    let x = i64s(&[2, 2], &[1, -5, 7, 2]);
    assert_eq!(reduce(R::Sum, &x, &[1], false, &[2]).as_i64().unwrap(), &[-4, 9]);
    assert_eq!(reduce(R::Max, &x, &[0], false, &[2]).as_i64().unwrap(), &[7, 2]);
    let b = bools(&[2, 2], &[false, true, false, false]);
    assert_eq!(reduce(R::Max, &b, &[1], false, &[2]).as_bool().unwrap(), &[true, false]); // any
    assert_eq!(reduce(R::Min, &b, &[1], false, &[2]).as_bool().unwrap(), &[false, false]); // all
    let e = eval_err(Op::Reduce { op: R::Sum, axes: vec![0], keepdim: false }, &[b], tt(DType::Bool, &[2]));
    assert!(e.contains("reduce.sum is not defined on bool"), "{e}");
    let e = eval_err(Op::Reduce { op: R::Mean, axes: vec![0], keepdim: false }, &[x], tt(DType::I64, &[2]));
    assert!(e.contains("reduce.mean is not defined on i64"), "{e}");
    let d = m23().cast(DType::F64);
    assert_eq!(reduce(R::Mean, &d, &[0, 1], false, &[]).as_f64().unwrap(), &[3.5]);
}

#[test]
fn f32_sums_accumulate_in_f64() {
    // In f32, 16777216 + 1 rounds back to 16777216 (twice); in f64 the sum is exactly
    // 16777218, which f32 represents.
    let x = f32s(&[3], &[16_777_216.0, 1.0, 1.0]);
    assert_eq!(reduce(R::Sum, &x, &[0], false, &[]).as_f32().unwrap(), &[16_777_218.0]);
}

#[test]
fn nan_and_empty_cases() {
    let x = f32s(&[3], &[1.0, f32::NAN, 3.0]);
    assert!(reduce(R::Max, &x, &[0], false, &[]).as_f32().unwrap()[0].is_nan());
    assert!(reduce(R::Min, &x, &[0], false, &[]).as_f32().unwrap()[0].is_nan());
    let empty = Tensor::zeros(DType::F32, &[2, 0]);
    assert_eq!(reduce(R::Sum, &empty, &[1], false, &[2]).as_f32().unwrap(), &[0.0, 0.0]);
    assert!(reduce(R::Mean, &empty, &[1], false, &[2]).as_f32().unwrap()[0].is_nan());
    let e = eval_err(Op::Reduce { op: R::Max, axes: vec![1], keepdim: false }, &[empty], tt(DType::F32, &[2]));
    assert!(e.contains("over zero elements"), "{e}");
    let e = eval_err(Op::Reduce { op: R::Sum, axes: vec![0, 0], keepdim: false }, &[m23()], tt(DType::F32, &[3]));
    assert!(e.contains("bad reduction axes"), "{e}");
}

#[test]
fn argmax_first_maximum() {
    // [[1, 3, 3], [5, 0, 5]]: rows -> [1, 0] (first of the ties); columns -> [1, 0, 1]
    let x = f32s(&[2, 3], &[1.0, 3.0, 3.0, 5.0, 0.0, 5.0]);
    let got = eval(Op::ArgMax { axis: 1, keepdim: false }, &[x.clone()], tt(DType::I64, &[2]));
    assert_eq!(got.as_i64().unwrap(), &[1, 0]);
    let got = eval(Op::ArgMax { axis: 0, keepdim: true }, &[x], tt(DType::I64, &[1, 3]));
    assert_eq!(got.as_i64().unwrap(), &[1, 0, 1]);
    let got = eval(Op::ArgMax { axis: 0, keepdim: false }, &[f32s(&[3], &[1.0, f32::NAN, 9.0])], tt(DType::I64, &[]));
    assert_eq!(got.as_i64().unwrap(), &[1]);
    let got = eval(Op::ArgMax { axis: 0, keepdim: false }, &[i64s(&[3], &[-1, 4, 4])], tt(DType::I64, &[]));
    assert_eq!(got.as_i64().unwrap(), &[1]);
}

#[test]
fn argsort_is_stable_with_nan_largest() {
    let sort = |x: Tensor, axis, descending, shape: &[usize]| {
        eval(Op::ArgSort { axis, descending }, &[x], tt(DType::I64, shape)).as_i64().unwrap().to_vec()
    };
    // [3, 1, NaN, 1, -inf, -0.0, 0.0]: ties keep their order in both directions.
    let (nan, inf) = (f32::NAN, f32::INFINITY);
    let x = f32s(&[7], &[3.0, 1.0, nan, 1.0, -inf, -0.0, 0.0]);
    assert_eq!(sort(x.clone(), 0, false, &[7]), [4, 5, 6, 1, 3, 0, 2]);
    assert_eq!(sort(x, 0, true, &[7]), [2, 0, 1, 3, 5, 6, 4]);
    // Along axis 0 of [[2, 0], [1, 0], [2, -1]]: columns sort independently.
    let m = i64s(&[3, 2], &[2, 0, 1, 0, 2, -1]);
    assert_eq!(sort(m.clone(), 0, false, &[3, 2]), [1, 2, 0, 0, 2, 1]);
    assert_eq!(sort(m, 1, true, &[3, 2]), [0, 1, 0, 1, 0, 1]);
    // Two NaNs are equal: they keep their order.
    assert_eq!(sort(f32s(&[3], &[nan, 0.5, nan]), 0, true, &[3]), [0, 2, 1]);
    let empty = Tensor::new(vec![2, 0], archc_runtime::tensor::Data::F64(vec![])).unwrap();
    assert!(sort(empty, 1, false, &[2, 0]).is_empty());
    let e = eval_err(Op::ArgSort { axis: 0, descending: false }, &[bools(&[2], &[true, false])], tt(DType::I64, &[2]));
    assert!(e.contains("not defined"), "{e}");
}

#[test]
fn stop_gradient_is_its_operand() {
    let x = f32s(&[2], &[1.5, f32::NAN]);
    let got = eval(Op::StopGradient, &[x.clone()], tt(DType::F32, &[2]));
    assert_eq!(got.as_f32().unwrap()[0], 1.5);
    assert!(got.as_f32().unwrap()[1].is_nan());
}
