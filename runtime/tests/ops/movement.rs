use crate::common::*;
use archc_compiler::tir::{DType, Op};

#[test]
fn reshape_keeps_row_major_order() {
    let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let got = eval(Op::Reshape, &[x.clone()], tt(DType::F32, &[3, 2]));
    assert_eq!((got.shape.as_slice(), got.as_f32().unwrap()), (&[3, 2][..], x.as_f32().unwrap()));
    let e = eval_err(Op::Reshape, &[x], tt(DType::F32, &[4, 2]));
    assert!(e.contains("cannot reshape f32[2, 3]"), "{e}");
}

#[test]
fn permute_moves_axes() {
    // [[1, 2, 3], [4, 5, 6]]^T = [[1, 4], [2, 5], [3, 6]]
    let x = f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    let got = eval(Op::Permute(vec![1, 0]), &[x], tt(DType::F32, &[3, 2]));
    assert_eq!(got.as_f32().unwrap(), &[1.0, 4.0, 2.0, 5.0, 3.0, 6.0]);
    // x[i, j, k] = 100i + 10j + k of shape [2, 2, 3]; result[i, k, j] = x[i, j, k].
    let v: Vec<i64> =
        (0..2).flat_map(|i| (0..2).flat_map(move |j| (0..3).map(move |k| 100 * i + 10 * j + k))).collect();
    let got = eval(Op::Permute(vec![0, 2, 1]), &[i64s(&[2, 2, 3], &v)], tt(DType::I64, &[2, 3, 2]));
    assert_eq!(got.as_i64().unwrap(), &[0, 10, 1, 11, 2, 12, 100, 110, 101, 111, 102, 112]);
    let e = eval_err(Op::Permute(vec![0, 0]), &[f32s(&[1, 1], &[1.0])], tt(DType::F32, &[1, 1]));
    assert!(e.contains("not a permutation"), "{e}");
}

#[test]
fn broadcast_stretches_size_one_axes() {
    // [3] -> [2, 3]: rows repeat.
    let got = eval(Op::Broadcast, &[f32s(&[3], &[1.0, 2.0, 3.0])], tt(DType::F32, &[2, 3]));
    assert_eq!(got.as_f32().unwrap(), &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0]);
    // [2, 1] -> [2, 3]: columns repeat.
    let got = eval(Op::Broadcast, &[f32s(&[2, 1], &[1.0, 2.0])], tt(DType::F32, &[2, 3]));
    assert_eq!(got.as_f32().unwrap(), &[1.0, 1.0, 1.0, 2.0, 2.0, 2.0]);
    // [1, 2] -> [2, 2, 2] and a scalar -> [2].
    let got = eval(Op::Broadcast, &[i64s(&[1, 2], &[7, 8])], tt(DType::I64, &[2, 2, 2]));
    assert_eq!(got.as_i64().unwrap(), &[7, 8, 7, 8, 7, 8, 7, 8]);
    let got = eval(Op::Broadcast, &[bools(&[], &[true])], tt(DType::Bool, &[2]));
    assert_eq!(got.as_bool().unwrap(), &[true, true]);
    let e = eval_err(Op::Broadcast, &[f32s(&[2], &[1.0, 2.0])], tt(DType::F32, &[3]));
    assert!(e.contains("cannot broadcast f32[2] to [3]"), "{e}");
    let e = eval_err(Op::Broadcast, &[f32s(&[1, 1], &[1.0])], tt(DType::F32, &[3]));
    assert!(e.contains("cannot broadcast"), "{e}");
}

#[test]
fn concat_along_each_axis() {
    let a = f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let b = f32s(&[2, 1], &[5.0, 6.0]);
    let got = eval(Op::Concat { axis: 1 }, &[a.clone(), b.clone()], tt(DType::F32, &[2, 3]));
    assert_eq!(got.as_f32().unwrap(), &[1.0, 2.0, 5.0, 3.0, 4.0, 6.0]);
    let c = f32s(&[1, 2], &[7.0, 8.0]);
    let got = eval(Op::Concat { axis: 0 }, &[a.clone(), c, a.clone()], tt(DType::F32, &[5, 2]));
    assert_eq!(got.as_f32().unwrap(), &[1.0, 2.0, 3.0, 4.0, 7.0, 8.0, 1.0, 2.0, 3.0, 4.0]);
    let e = eval_err(Op::Concat { axis: 0 }, &[a.clone(), b], tt(DType::F32, &[4, 2]));
    assert!(e.contains("cannot concat f32[2, 1] with f32[2, 2]"), "{e}");
    let e = eval_err(Op::Concat { axis: 0 }, &[a.clone(), a.cast(DType::F64)], tt(DType::F32, &[4, 2]));
    assert!(e.contains("cannot concat"), "{e}");
}

#[test]
fn pad_with_constants() {
    // [[1, 2], [3, 4]] padded by (0, 1) rows and (1, 2) columns with 9.
    let x = f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let got = eval(Op::Pad { padding: vec![(0, 1), (1, 2)], value: 9.0 }, &[x.clone()], tt(DType::F32, &[3, 5]));
    #[rustfmt::skip]
    let want = [
        9.0, 1.0, 2.0, 9.0, 9.0,
        9.0, 3.0, 4.0, 9.0, 9.0,
        9.0, 9.0, 9.0, 9.0, 9.0,
    ];
    assert_eq!(got.as_f32().unwrap(), &want);
    let got = eval(Op::Pad { padding: vec![(1, 0)], value: 0.0 }, &[bools(&[1], &[true])], tt(DType::Bool, &[2]));
    assert_eq!(got.as_bool().unwrap(), &[false, true]);
    let e = eval_err(Op::Pad { padding: vec![(-1, 0), (0, 0)], value: 0.0 }, &[x], tt(DType::F32, &[1, 2]));
    assert!(e.contains("non-negative"), "{e}");
}
