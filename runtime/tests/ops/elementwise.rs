use crate::common::*;
use archc_compiler::tir::{BinaryOp as B, DType, Op, UnaryOp as U};
use archc_runtime::Tensor;
use num_complex::Complex;

fn unary_f32(op: U, x: &[f32]) -> Tensor {
    let t = f32s(&[x.len()], x);
    eval(Op::Unary(op), &[t], tt(DType::F32, &[x.len()]))
}

#[test]
fn unary_f32_values() {
    let e = std::f32::consts::E;
    let cases: Vec<(U, Vec<f32>, Vec<f32>)> = vec![
        (U::Neg, vec![1.5, -2.0], vec![-1.5, 2.0]),
        (U::Exp, vec![0.0, 1.0], vec![1.0, e]),
        (U::Log, vec![1.0, e], vec![0.0, 1.0]),
        (U::Log1p, vec![0.0, e - 1.0], vec![0.0, 1.0]),
        (U::Sqrt, vec![4.0, 2.25], vec![2.0, 1.5]),
        (U::Rsqrt, vec![4.0, 0.25], vec![0.5, 2.0]),
        // tanh(ln 2) = (2 - 1/2) / (2 + 1/2) = 0.6
        (U::Tanh, vec![0.0, 2f32.ln()], vec![0.0, 0.6]),
        // sigmoid(ln 3) = 1 / (1 + 1/3) = 0.75
        (U::Sigmoid, vec![0.0, 3f32.ln()], vec![0.5, 0.75]),
        (U::Relu, vec![-1.0, 0.0, 2.0], vec![0.0, 0.0, 2.0]),
        // erf(0.5) = 0.5204998778, erf(-1) = -0.8427007929
        (U::Erf, vec![0.0, 0.5, -1.0], vec![0.0, 0.520_499_9, -0.842_700_8]),
        (U::Abs, vec![-3.0, 2.0], vec![3.0, 2.0]),
        (U::Sin, vec![0.0, std::f32::consts::FRAC_PI_2], vec![0.0, 1.0]),
        (U::Cos, vec![0.0, std::f32::consts::PI], vec![1.0, -1.0]),
        (U::Sign, vec![-3.0, 0.0, 2.5], vec![-1.0, 0.0, 1.0]),
        (U::Floor, vec![-1.5, 1.5, 2.0], vec![-2.0, 1.0, 2.0]),
    ];
    for (op, x, want) in cases {
        let got = unary_f32(op, &x);
        let want = f32s(&[want.len()], &want);
        assert!(got.allclose(&want, 1e-6, 1e-6), "{op:?}: {got} vs {want}");
    }
}

#[test]
fn unary_special_values() {
    let got = unary_f32(U::Relu, &[f32::NAN]);
    assert!(got.as_f32().unwrap()[0].is_nan());
    let got = unary_f32(U::Sigmoid, &[-200.0, 200.0]);
    assert_eq!(got.as_f32().unwrap(), &[0.0, 1.0]);
}

#[test]
fn unary_f64_keeps_f64_precision() {
    let x = Tensor::from_f64(&[1], vec![1.0]);
    let got = eval(Op::Unary(U::Erf), &[x], tt(DType::F64, &[1]));
    assert!((got.as_f64().unwrap()[0] - 0.8427007929497149).abs() < 1e-15);
}

#[test]
fn unary_on_integers_bools_and_complex() {
    let x = i64s(&[3], &[-3, 0, 5]);
    let got = eval(Op::Unary(U::Neg), &[x.clone()], tt(DType::I64, &[3]));
    assert_eq!(got.as_i64().unwrap(), &[3, 0, -5]);
    let got = eval(Op::Unary(U::Sign), &[x.clone()], tt(DType::I64, &[3]));
    assert_eq!(got.as_i64().unwrap(), &[-1, 0, 1]);
    let got = eval(Op::Unary(U::Relu), &[x.clone()], tt(DType::I64, &[3]));
    assert_eq!(got.as_i64().unwrap(), &[0, 0, 5]);
    let e = eval_err(Op::Unary(U::Exp), &[x], tt(DType::I64, &[3]));
    assert!(e.contains("exp is not defined on i64"), "{e}");

    let b = bools(&[2], &[true, false]);
    let got = eval(Op::Unary(U::Not), &[b], tt(DType::Bool, &[2]));
    assert_eq!(got.as_bool().unwrap(), &[false, true]);

    // exp(i pi) = -1; |3 + 4i| = 5.
    let z = Tensor::from_c64(&[2], vec![Complex::new(0.0, std::f32::consts::PI), Complex::new(3.0, 4.0)]);
    let got = eval(Op::Unary(U::Exp), &[z.clone()], tt(DType::C64, &[2]));
    assert!((got.as_c64().unwrap()[0] - Complex::new(-1.0, 0.0)).norm() < 1e-6);
    let got = eval(Op::Unary(U::Abs), &[z.clone()], tt(DType::F32, &[2]));
    assert_eq!(got.as_f32().unwrap()[1], 5.0);
    let got = eval(Op::Unary(U::Neg), &[z], tt(DType::C64, &[2]));
    assert_eq!(got.as_c64().unwrap()[1], Complex::new(-3.0, -4.0));
}

fn binary(op: B, a: Tensor, b: Tensor, dtype: DType) -> Tensor {
    let shape = a.shape.clone();
    eval(Op::Binary(op), &[a, b], tt(dtype, &shape))
}

#[test]
fn binary_f32_arithmetic() {
    let a = f32s(&[4], &[2.0, -7.0, 7.0, 1.0]);
    let b = f32s(&[4], &[3.0, 3.0, -3.0, 4.0]);
    let cases: Vec<(B, Vec<f32>)> = vec![
        (B::Add, vec![5.0, -4.0, 4.0, 5.0]),
        (B::Sub, vec![-1.0, -10.0, 10.0, -3.0]),
        (B::Mul, vec![6.0, -21.0, -21.0, 4.0]),
        (B::Div, vec![2.0 / 3.0, -7.0 / 3.0, -7.0 / 3.0, 0.25]),
        // 2^3 = 8, (-7)^3 = -343, 7^-3 = 1/343, 1^4 = 1
        (B::Pow, vec![8.0, -343.0, 1.0 / 343.0, 1.0]),
        // floor remainder takes the divisor's sign: -7 mod 3 = 2, 7 mod -3 = -2
        (B::Rem, vec![2.0, 2.0, -2.0, 1.0]),
        (B::Max, vec![3.0, 3.0, 7.0, 4.0]),
        (B::Min, vec![2.0, -7.0, -3.0, 1.0]),
    ];
    for (op, want) in cases {
        let got = binary(op, a.clone(), b.clone(), DType::F32);
        assert_close(&got, &f32s(&[4], &want), 1e-6);
    }
}

#[test]
fn max_min_propagate_nan() {
    let a = f32s(&[2], &[f32::NAN, 1.0]);
    let b = f32s(&[2], &[1.0, f32::NAN]);
    for op in [B::Max, B::Min] {
        let got = binary(op, a.clone(), b.clone(), DType::F32);
        assert!(got.as_f32().unwrap().iter().all(|x| x.is_nan()), "{op:?}: {got}");
    }
}

#[test]
fn comparisons_give_bool() {
    let a = f32s(&[3], &[1.0, 2.0, 3.0]);
    let b = f32s(&[3], &[2.0, 2.0, 2.0]);
    let cases = [
        (B::Eq, [false, true, false]),
        (B::Ne, [true, false, true]),
        (B::Lt, [true, false, false]),
        (B::Le, [true, true, false]),
        (B::Gt, [false, false, true]),
        (B::Ge, [false, true, true]),
    ];
    for (op, want) in cases {
        let got = binary(op, a.clone(), b.clone(), DType::Bool);
        assert_eq!(got.as_bool().unwrap(), &want, "{op:?}");
        let got = binary(op, a.cast(DType::I64), b.cast(DType::I64), DType::Bool);
        assert_eq!(got.as_bool().unwrap(), &want, "i64 {op:?}");
    }
}

#[test]
fn integer_division_rounds_to_negative_infinity() {
    let a = i64s(&[4], &[-7, 7, -7, 7]);
    let b = i64s(&[4], &[2, -2, -2, 2]);
    // -7 / 2 = -3.5 -> -4; 7 / -2 -> -4; -7 / -2 = 3.5 -> 3; 7 / 2 -> 3
    assert_eq!(binary(B::Div, a.clone(), b.clone(), DType::I64).as_i64().unwrap(), &[-4, -4, 3, 3]);
    // a - b * floor(a / b): -7 - 2 * -4 = 1; 7 - (-2)(-4) = -1; -7 - (-2)(3) = -1; 7 - 2 * 3 = 1
    assert_eq!(binary(B::Rem, a.clone(), b.clone(), DType::I64).as_i64().unwrap(), &[1, -1, -1, 1]);
    let got = binary(B::Pow, i64s(&[2], &[3, -2]), i64s(&[2], &[4, 3]), DType::I64);
    assert_eq!(got.as_i64().unwrap(), &[81, -8]);
    let e = eval_err(Op::Binary(B::Div), &[a.clone(), i64s(&[4], &[1, 0, 1, 1])], tt(DType::I64, &[4]));
    assert!(e.contains("division by zero"), "{e}");
    let e = eval_err(Op::Binary(B::Pow), &[a, i64s(&[4], &[1, -1, 1, 1])], tt(DType::I64, &[4]));
    assert!(e.contains("negative exponent"), "{e}");
}

#[test]
fn bool_logic_and_complex_arithmetic() {
    let a = bools(&[4], &[false, false, true, true]);
    let b = bools(&[4], &[false, true, false, true]);
    assert_eq!(binary(B::And, a.clone(), b.clone(), DType::Bool).as_bool().unwrap(), &[false, false, false, true]);
    assert_eq!(binary(B::Or, a.clone(), b.clone(), DType::Bool).as_bool().unwrap(), &[false, true, true, true]);
    let e = eval_err(Op::Binary(B::And), &[f32s(&[1], &[1.0]), f32s(&[1], &[1.0])], tt(DType::Bool, &[1]));
    assert!(e.contains("and is not defined on f32"), "{e}");

    // (1 + 2i)(3 + 4i) = 3 + 4i + 6i + 8i^2 = -5 + 10i; (-5 + 10i) / (3 + 4i) = 1 + 2i
    let x = Tensor::from_c64(&[1], vec![Complex::new(1.0, 2.0)]);
    let y = Tensor::from_c64(&[1], vec![Complex::new(3.0, 4.0)]);
    let p = binary(B::Mul, x.clone(), y.clone(), DType::C64);
    assert_eq!(p.as_c64().unwrap(), &[Complex::new(-5.0, 10.0)]);
    let q = binary(B::Div, p, y.clone(), DType::C64);
    assert!((q.as_c64().unwrap()[0] - Complex::new(1.0, 2.0)).norm() < 1e-6);
    assert_eq!(binary(B::Add, x.clone(), y.clone(), DType::C64).as_c64().unwrap(), &[Complex::new(4.0, 6.0)]);
    assert_eq!(binary(B::Sub, x, y, DType::C64).as_c64().unwrap(), &[Complex::new(-2.0, -2.0)]);
}

#[test]
fn operand_shape_mismatch_is_an_error() {
    let e = eval_err(Op::Binary(B::Add), &[f32s(&[2], &[1.0, 2.0]), f32s(&[3], &[1.0; 3])], tt(DType::F32, &[2]));
    assert!(e.contains("%2 = add") && e.contains("operands differ"), "{e}");
    let e = eval_err(Op::Binary(B::Add), &[f32s(&[1], &[1.0]), i64s(&[1], &[1])], tt(DType::F32, &[1]));
    assert!(e.contains("operands differ"), "{e}");
}

#[test]
fn select_picks_elementwise() {
    let c = bools(&[2, 2], &[true, false, false, true]);
    let a = f32s(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let b = f32s(&[2, 2], &[-1.0, -2.0, -3.0, -4.0]);
    let got = eval(Op::Select, &[c, a, b], tt(DType::F32, &[2, 2]));
    assert_eq!(got.as_f32().unwrap(), &[1.0, -2.0, -3.0, 4.0]);
    let e = eval_err(Op::Select, &[f32s(&[1], &[1.0]), f32s(&[1], &[1.0]), f32s(&[1], &[1.0])], tt(DType::F32, &[1]));
    assert!(e.contains("expected bool"), "{e}");
}

#[test]
fn cast_between_dtypes() {
    let x = f32s(&[4], &[-1.7, 0.0, 2.9, 0.5]);
    let got = eval(Op::Cast, &[x.clone()], tt(DType::I64, &[4]));
    assert_eq!(got.as_i64().unwrap(), &[-1, 0, 2, 0]); // truncation toward zero
    let got = eval(Op::Cast, &[x.clone()], tt(DType::Bool, &[4]));
    assert_eq!(got.as_bool().unwrap(), &[true, false, true, true]);
    let got = eval(Op::Cast, &[x.clone()], tt(DType::F64, &[4]));
    assert_eq!(got.as_f64().unwrap()[3], 0.5);
    let got = eval(Op::Cast, &[x], tt(DType::C64, &[4]));
    assert_eq!(got.as_c64().unwrap()[2], Complex::new(2.9, 0.0));
    let got = eval(Op::Cast, &[bools(&[2], &[true, false])], tt(DType::F32, &[2]));
    assert_eq!(got.as_f32().unwrap(), &[1.0, 0.0]);
    let z = Tensor::from_c64(&[1], vec![Complex::new(3.5, -1.0)]);
    let got = eval(Op::Cast, &[z], tt(DType::F32, &[1]));
    assert_eq!(got.as_f32().unwrap(), &[3.5]); // the real part
}

#[test]
fn const_and_iota() {
    let got = eval(Op::Const(0.5), &[], tt(DType::F32, &[]));
    assert_eq!((got.shape.len(), got.as_f32().unwrap()), (0, &[0.5f32][..]));
    let got = eval(Op::Const(3.0), &[], tt(DType::I64, &[]));
    assert_eq!(got.as_i64().unwrap(), &[3]);
    let e = eval_err(Op::Const(1.0), &[], tt(DType::F32, &[2]));
    assert!(e.contains("result is f32[], declared f32[2]"), "{e}");
    // iota along axis 1 of [2, 3]: [[0, 1, 2], [0, 1, 2]]; along axis 0: [[0, 0, 0], [1, 1, 1]]
    let got = eval(Op::Iota { axis: 1 }, &[], tt(DType::I64, &[2, 3]));
    assert_eq!(got.as_i64().unwrap(), &[0, 1, 2, 0, 1, 2]);
    let got = eval(Op::Iota { axis: 0 }, &[], tt(DType::F32, &[2, 3]));
    assert_eq!(got.as_f32().unwrap(), &[0.0, 0.0, 0.0, 1.0, 1.0, 1.0]);
}
