use crate::common::*;
use archc_compiler::tir::{DType, Dim, Op};
use archc_runtime::Tensor;
use num_complex::Complex;

fn c(re: f32, im: f32) -> Complex<f32> {
    Complex::new(re, im)
}

fn c64s(shape: &[usize], v: &[Complex<f32>]) -> Tensor {
    Tensor::from_c64(shape, v.to_vec())
}

fn irfft(z: Tensor, axis: usize, n: usize, out: &[usize]) -> Tensor {
    eval(Op::Irfft { axis, n: Dim::constant(n as i64) }, &[z], tt(DType::F32, out))
}

#[test]
fn rfft_known_values() {
    // X[k] = sum_t x[t] e^{-2 pi i k t / 4} for x = [1, 2, 3, 4]:
    // X0 = 10; X1 = 1 - 2i - 3 + 4i = -2 + 2i; X2 = 1 - 2 + 3 - 4 = -2.
    let got = eval(Op::Rfft { axis: 0 }, &[f32s(&[4], &[1.0, 2.0, 3.0, 4.0])], tt(DType::C64, &[3]));
    assert_close(&got, &c64s(&[3], &[c(10.0, 0.0), c(-2.0, 2.0), c(-2.0, 0.0)]), 1e-6);
    // An impulse has a flat spectrum; odd n = 5 gives 5 / 2 + 1 = 3 outputs.
    let got = eval(Op::Rfft { axis: 0 }, &[f32s(&[5], &[1.0, 0.0, 0.0, 0.0, 0.0])], tt(DType::C64, &[3]));
    assert_close(&got, &c64s(&[3], &[c(1.0, 0.0); 3]), 1e-7);
}

#[test]
fn rfft_along_a_leading_axis() {
    // Columns of [[1, 0], [2, 1], [3, 0], [4, 0]]: [1, 2, 3, 4] -> [10, -2 + 2i, -2];
    // [0, 1, 0, 0] (a shifted impulse) -> e^{-2 pi i k / 4} = [1, -i, -1].
    let x = f32s(&[4, 2], &[1.0, 0.0, 2.0, 1.0, 3.0, 0.0, 4.0, 0.0]);
    let got = eval(Op::Rfft { axis: 0 }, &[x.clone()], tt(DType::C64, &[3, 2]));
    let want = c64s(&[3, 2], &[c(10.0, 0.0), c(1.0, 0.0), c(-2.0, 2.0), c(0.0, -1.0), c(-2.0, 0.0), c(-1.0, 0.0)]);
    assert_close(&got, &want, 1e-6);
    // Back along axis 0 with n = 4.
    assert_close(&irfft(got, 0, 4, &[4, 2]), &x, 1e-6);
}

#[test]
fn irfft_inverts_rfft_for_even_and_odd_lengths() {
    for n in [1usize, 2, 5, 8, 9] {
        let x = f32s(&[2, n], &noise(2 * n, n as u64));
        let z = eval(Op::Rfft { axis: 1 }, &[x.clone()], tt(DType::C64, &[2, n / 2 + 1]));
        assert_close(&irfft(z, 1, n, &[2, n]), &x, 1e-5);
    }
    let z = c64s(&[3], &[c(10.0, 0.0), c(-2.0, 2.0), c(-2.0, 0.0)]);
    assert_close(&irfft(z, 0, 4, &[4]), &f32s(&[4], &[1.0, 2.0, 3.0, 4.0]), 1e-6);
}

#[test]
fn irfft_numpy_conventions() {
    // The imaginary part of the DC term is ignored.
    assert_close(&irfft(c64s(&[1], &[c(1.0, 5.0)]), 0, 1, &[1]), &f32s(&[1], &[1.0]), 0.0);
    // Even n: the Nyquist imaginary part is ignored; X = [0, 0, 1] -> x[t] = (-1)^t / 4.
    let got = irfft(c64s(&[3], &[c(0.0, 0.0), c(0.0, 0.0), c(1.0, 7.0)]), 0, 4, &[4]);
    assert_close(&got, &f32s(&[4], &[0.25, -0.25, 0.25, -0.25]), 1e-7);
    // Too few inputs are zero-padded: X = [2] (n = 4) -> 2 / 4 everywhere.
    assert_close(&irfft(c64s(&[1], &[c(2.0, 0.0)]), 0, 4, &[4]), &f32s(&[4], &[0.5; 4]), 1e-7);
    // Too many are truncated: n = 2 uses X[0..2] = [4, 0] -> [2, 2].
    let z = c64s(&[5], &[c(4.0, 0.0), c(0.0, 0.0), c(0.0, 0.0), c(0.0, 0.0), c(99.0, 0.0)]);
    assert_close(&irfft(z, 0, 2, &[2]), &f32s(&[2], &[2.0, 2.0]), 1e-7);
    // Odd n = 3: X = [0, i] -> x[t] = (i e^{2 pi i t/3} - i e^{-2 pi i t/3}) / 3 = -2 sin(2 pi t/3) / 3
    let got = irfft(c64s(&[2], &[c(0.0, 0.0), c(0.0, 1.0)]), 0, 3, &[3]);
    let s = (2.0 * std::f32::consts::PI / 3.0).sin();
    assert_close(&got, &f32s(&[3], &[0.0, -2.0 * s / 3.0, 2.0 * s / 3.0]), 1e-6);
}

#[test]
fn irfft_with_symbolic_n() {
    // main(z: c64[B, M], x: f32[B, N]) -> irfft(z) {n = N}; N comes from the second input.
    let mut f = FuncBuilder::new("main");
    let z = f.arg(ty(DType::C64, &["B", "N / 2 + 1"]));
    let _x = f.arg(ty(DType::F32, &["B", "N"]));
    let r = f.inst(Op::Irfft { axis: 1, n: Dim::sym("N") }, &[z], ty(DType::F32, &["B", "N"]));
    let p = program(vec![f.finish(&[r])]);
    let zs = c64s(&[1, 3], &[c(10.0, 0.0), c(-2.0, 2.0), c(-2.0, 0.0)]);
    let got = archc_runtime::Interpreter::new(&p).run("main", &[zs, Tensor::zeros(DType::F32, &[1, 4])]).unwrap();
    assert_close(&got[0], &f32s(&[1, 4], &[1.0, 2.0, 3.0, 4.0]), 1e-6);
}

#[test]
fn real_imag_complex() {
    let z = c64s(&[2], &[c(1.0, 2.0), c(-3.0, 0.5)]);
    assert_eq!(eval(Op::Real, &[z.clone()], tt(DType::F32, &[2])).as_f32().unwrap(), &[1.0, -3.0]);
    assert_eq!(eval(Op::Imag, &[z.clone()], tt(DType::F32, &[2])).as_f32().unwrap(), &[2.0, 0.5]);
    let re = f32s(&[2], &[1.0, -3.0]);
    let im = f32s(&[2], &[2.0, 0.5]);
    assert_eq!(eval(Op::Complex, &[re.clone(), im], tt(DType::C64, &[2])), z);
    assert_eq!(eval(Op::Imag, &[re.clone()], tt(DType::F32, &[2])).as_f32().unwrap(), &[0.0, 0.0]);
    let e = eval_err(Op::Complex, &[re, f32s(&[1], &[0.0])], tt(DType::C64, &[2]));
    assert!(e.contains("complex of f32[2] and f32[1]"), "{e}");
    let e = eval_err(Op::Rfft { axis: 0 }, &[z], tt(DType::C64, &[2]));
    assert!(e.contains("real f32/f64 input"), "{e}");
}
