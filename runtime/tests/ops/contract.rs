use crate::common::*;
use archc_compiler::tir::{DType, Op};
use archc_runtime::Tensor;

fn einsum(spec: &str, xs: &[Tensor], out: &[usize]) -> Tensor {
    eval(Op::Einsum(spec.into()), xs, tt(xs[0].dtype(), out))
}

/// A = [[1, 2, 3], [4, 5, 6]], B = [[7, 8], [9, 10], [11, 12]]
fn ab() -> (Tensor, Tensor) {
    (f32s(&[2, 3], &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), f32s(&[3, 2], &[7.0, 8.0, 9.0, 10.0, 11.0, 12.0]))
}

#[test]
fn matmul_2d_and_batched() {
    let (a, b) = ab();
    // [1*7 + 2*9 + 3*11, 1*8 + 2*10 + 3*12; 4*7 + 5*9 + 6*11, 4*8 + 5*10 + 6*12]
    let got = eval(Op::MatMul, &[a.clone(), b.clone()], tt(DType::F32, &[2, 2]));
    assert_eq!(got.as_f32().unwrap(), &[58.0, 64.0, 139.0, 154.0]);
    // Batch 0: [1, 2] . [3, 4] = 11; batch 1: [5, 6] . [7, 8] = 83.
    let x = f32s(&[2, 1, 2], &[1.0, 2.0, 5.0, 6.0]);
    let y = f32s(&[2, 2, 1], &[3.0, 4.0, 7.0, 8.0]);
    let got = eval(Op::MatMul, &[x, y], tt(DType::F32, &[2, 1, 1]));
    assert_eq!(got.as_f32().unwrap(), &[11.0, 83.0]);
    let got = eval(Op::MatMul, &[a.cast(DType::I64), b.cast(DType::I64)], tt(DType::I64, &[2, 2]));
    assert_eq!(got.as_i64().unwrap(), &[58, 64, 139, 154]);
    let got = eval(Op::MatMul, &[a.cast(DType::C64), b.cast(DType::C64)], tt(DType::C64, &[2, 2]));
    assert_eq!(got.as_c64().unwrap()[3].re, 154.0);
}

#[test]
fn matmul_rejects_bad_shapes() {
    let (a, _) = ab();
    let e = eval_err(Op::MatMul, &[a.clone(), a.clone()], tt(DType::F32, &[2, 3]));
    assert!(e.contains("cannot matmul f32[2, 3] by f32[2, 3]"), "{e}");
    let e = eval_err(Op::MatMul, &[f32s(&[3], &[1.0; 3]), f32s(&[3], &[1.0; 3])], tt(DType::F32, &[]));
    assert!(e.contains("cannot matmul"), "{e}");
    let e =
        eval_err(Op::MatMul, &[f32s(&[2, 1, 1], &[1.0; 2]), f32s(&[3, 1, 1], &[1.0; 3])], tt(DType::F32, &[2, 1, 1]));
    assert!(e.contains("cannot matmul"), "{e}");
}

#[test]
fn einsum_single_operand() {
    let m = f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    assert_eq!(einsum("ij->ji", &[m.clone()], &[2, 2]).as_f32().unwrap(), &[1.0, 3.0, 2.0, 4.0]);
    assert_eq!(einsum("ii->", &[m.clone()], &[]).as_f32().unwrap(), &[5.0]); // trace 1 + 4
    assert_eq!(einsum("ii->i", &[m.clone()], &[2]).as_f32().unwrap(), &[1.0, 4.0]); // diagonal
    assert_eq!(einsum("ij->", &[m.clone()], &[]).as_f32().unwrap(), &[10.0]);
    assert_eq!(einsum("ij->i", &[m.clone()], &[2]).as_f32().unwrap(), &[3.0, 7.0]);
    assert_eq!(einsum(" i j -> j ", &[m], &[2]).as_f32().unwrap(), &[4.0, 6.0]);
}

#[test]
fn einsum_two_operands() {
    let (a, b) = ab();
    assert_eq!(einsum("ij,jk->ik", &[a.clone(), b.clone()], &[2, 2]).as_f32().unwrap(), &[58.0, 64.0, 139.0, 154.0]);
    // The transposed product: (AB)^T.
    assert_eq!(einsum("ij,jk->ki", &[a.clone(), b.clone()], &[2, 2]).as_f32().unwrap(), &[58.0, 139.0, 64.0, 154.0]);
    // Outer product [1, 2] x [3, 4, 5].
    let u = f32s(&[2], &[1.0, 2.0]);
    let v = f32s(&[3], &[3.0, 4.0, 5.0]);
    assert_eq!(einsum("i,j->ij", &[u.clone(), v], &[2, 3]).as_f32().unwrap(), &[3.0, 4.0, 5.0, 6.0, 8.0, 10.0]);
    // Row-wise dot products: a . a^T diagonal = [1 + 4 + 9, 16 + 25 + 36].
    assert_eq!(einsum("ij,ij->i", &[a.clone(), a.clone()], &[2]).as_f32().unwrap(), &[14.0, 77.0]);
    // Vector-matrix: [1, 2] A = [1 + 8, 2 + 10, 3 + 12]
    assert_eq!(einsum("i,ij->j", &[u, a], &[3]).as_f32().unwrap(), &[9.0, 12.0, 15.0]);
}

#[test]
fn einsum_batched_matches_matmul() {
    // Attention-style scores q k^T over batch and heads, checked against matmul.
    let (b, h, q, k, d) = (2, 3, 4, 5, 6);
    let qs = f32s(&[b, h, q, d], &noise(b * h * q * d, 1));
    let ks = f32s(&[b, h, k, d], &noise(b * h * k * d, 2));
    let scores = einsum("bhqd,bhkd->bhqk", &[qs.clone(), ks.clone()], &[b, h, q, k]);
    let kt = eval(Op::Permute(vec![0, 1, 3, 2]), &[ks], tt(DType::F32, &[b, h, d, k]));
    let want = eval(Op::MatMul, &[qs, kt], tt(DType::F32, &[b, h, q, k]));
    assert_close(&scores, &want, 1e-6);
}

#[test]
fn einsum_errors() {
    let m = f32s(&[2, 2], &[1.0; 4]);
    let v = f32s(&[2], &[1.0; 2]);
    let cases = [
        ("ij,jk", "lacks `->`"),
        ("ij,j->k", "not in any input"),
        ("ij,j->ii", "repeated"),
        ("ijk,j->i", "does not fit"),
        ("i1,j->i", "not a letter"),
        ("ij->i", "names 1 operands, got 2"),
    ];
    for (spec, msg) in cases {
        let e = eval_err(Op::Einsum(spec.into()), &[m.clone(), v.clone()], tt(DType::F32, &[2]));
        assert!(e.contains(msg), "{spec}: {e}");
    }
    let v3 = f32s(&[3], &[1.0; 3]);
    let e = eval_err(Op::Einsum("ij,j->i".into()), &[m.clone(), v3], tt(DType::F32, &[2]));
    assert!(e.contains("letter `j` has sizes 2 and 3"), "{e}");
    let e = eval_err(Op::Einsum("ij,j->i".into()), &[m, v.cast(DType::F64)], tt(DType::F32, &[2]));
    assert!(e.contains("differ in dtype"), "{e}");
}
