//! Spectral ops: `rfft`, `irfft`, `real`, `imag`, `complex`.
//!
//! Contract (numpy semantics, computed in f64 with rustfft, results rounded to c64/f32):
//! - `rfft(x) {axis}`: real f32/f64 input with `n >= 1` points along `axis` gives the
//!   `n / 2 + 1` unnormalised coefficients `X[k] = sum_t x[t] exp(-2 pi i k t / n)`, c64.
//! - `irfft(z) {axis, n}`: c64 input, `n >= 1` real outputs along `axis` (f32 or f64, the
//!   declared dtype): the first `n / 2 + 1` inputs are used (zero-padded if fewer), the
//!   imaginary parts of the DC term and (for even `n`) the Nyquist term are ignored, the
//!   Hermitian spectrum is inverted and scaled by `1 / n`.
//! - `real`/`imag`: c64 -> f32 parts; on real input, `real` is the identity and `imag`
//!   gives zeros of the same dtype.
//! - `complex(re, im)`: two f32 (or two f64, rounded) tensors of one shape -> c64.
//!
//! [`RealFft`] is the per-run transform pair both ops use; compiled code calls it too
//! (the MLIR backend's runtime FFT), so long transforms agree bit for bit.

use super::bind::eval_dim;
use super::movement::{axis_last_perm, inverse_perm, permute_unchecked};
use super::Out;
use crate::elem::{Elem, C64};
use crate::tensor::{Data, Tensor};
use archc_compiler::tir::{DType, Dim};
use num_complex::Complex;
use rustfft::{Fft, FftPlanner};
use std::sync::Arc;

/// Applies `f` to every run along `axis` (as f64 values of the input), producing runs of
/// `out_len`, and reassembles them with `axis` back in place.
fn along_axis<T: Copy>(
    x: &Tensor,
    axis: usize,
    out_len: usize,
    f: impl FnMut(&[Complex<f64>]) -> Vec<T>,
    wrap: fn(Vec<T>) -> Data,
) -> Tensor {
    let perm = axis_last_perm(x.rank(), axis);
    let moved = permute_unchecked(x, &perm);
    let n = x.shape[axis];
    let values: Vec<Complex<f64>> = (0..moved.numel()).map(|i| moved.data.get_c128(i)).collect();
    let mut f = f;
    let runs: usize = moved.shape[..moved.rank() - 1].iter().product();
    let out: Vec<T> = (0..runs).flat_map(|r| f(&values[r * n..(r + 1) * n])).collect();
    let mut shape: Vec<usize> = perm.iter().map(|&p| x.shape[p]).collect();
    *shape.last_mut().expect("rank >= 1") = out_len;
    permute_unchecked(&Tensor { shape, data: wrap(out) }, &inverse_perm(&perm))
}

fn check_axis(x: &Tensor, axis: usize) -> Result<(), String> {
    if axis >= x.rank() {
        return Err(format!("axis {axis} out of range for {}", x.type_string()));
    }
    Ok(())
}

/// Real transforms of runs of `n` points, planned once and applied run by run (in f64).
pub struct RealFft {
    n: usize,
    forward: Arc<dyn Fft<f64>>,
    inverse: Arc<dyn Fft<f64>>,
}

impl RealFft {
    pub fn new(n: usize) -> RealFft {
        let mut planner = FftPlanner::<f64>::new();
        RealFft { n, forward: planner.plan_fft_forward(n), inverse: planner.plan_fft_inverse(n) }
    }

    /// The first `keep` (at most `n / 2 + 1`) coefficients of the run `x` (`n` values).
    pub fn forward(&self, x: impl Iterator<Item = f64>, keep: usize) -> Vec<Complex<f64>> {
        let mut buf: Vec<Complex<f64>> = x.map(|v| Complex::new(v, 0.0)).collect();
        self.forward.process(&mut buf);
        buf.truncate(keep.min(self.n / 2 + 1));
        buf
    }

    /// The `n` real values whose spectrum starts with `half` (`(re, im)` pairs; numpy's
    /// `irfft`: missing coefficients are zeros, extra ones ignored), scaled by `1 / n`.
    pub fn inverse(&self, half: impl Iterator<Item = (f64, f64)>) -> Vec<f64> {
        let half: Vec<Complex<f64>> = half.take(self.n / 2 + 1).map(|(re, im)| Complex::new(re, im)).collect();
        let mut buf = hermitian(&half, self.n);
        self.inverse.process(&mut buf);
        buf.iter().map(|v| v.re / self.n as f64).collect()
    }
}

pub fn rfft(x: &Tensor, axis: usize) -> Result<Tensor, String> {
    check_axis(x, axis)?;
    if !matches!(x.dtype(), DType::F32 | DType::F64) || x.shape[axis] == 0 {
        return Err(format!("rfft needs a real f32/f64 input with points along axis {axis}, got {}", x.type_string()));
    }
    let n = x.shape[axis];
    let plans = RealFft::new(n);
    let m = n / 2 + 1;
    let transform = |run: &[Complex<f64>]| {
        let y = plans.forward(run.iter().map(|z| z.re), m);
        y.iter().map(|z| Complex::new(z.re as f32, z.im as f32)).collect::<Vec<C64>>()
    };
    Ok(along_axis(x, axis, m, transform, Data::C64))
}

pub fn irfft(z: &Tensor, axis: usize, n: &Dim, out: &Out) -> Result<Tensor, String> {
    check_axis(z, axis)?;
    let n = eval_dim(n, out.dims)?;
    if z.dtype() != DType::C64 || n < 1 {
        return Err(format!("irfft needs a c64 input and n >= 1, got {} and n = {n}", z.type_string()));
    }
    let n = n as usize;
    let plans = RealFft::new(n);
    let t = along_axis(z, axis, n, |run| plans.inverse(run.iter().map(|z| (z.re, z.im))), Data::F64);
    match out.dtype {
        DType::F64 => Ok(t),
        DType::F32 => Ok(t.cast(DType::F32)),
        d => Err(format!("irfft result dtype {d}, expected f32 or f64")),
    }
}

/// The full length-`n` spectrum whose first half is `half` (numpy's c2r conventions).
fn hermitian(half: &[Complex<f64>], n: usize) -> Vec<Complex<f64>> {
    let zero = Complex::new(0.0, 0.0);
    let mut full = vec![zero; n];
    for (k, slot) in full.iter_mut().enumerate().take(n / 2 + 1) {
        *slot = half.get(k).copied().unwrap_or(zero);
    }
    full[0].im = 0.0;
    if n % 2 == 0 {
        full[n / 2].im = 0.0;
    }
    for k in 1..n.div_ceil(2) {
        full[n - k] = full[k].conj();
    }
    full
}

/// `real` (`imag = false`) or `imag` of a tensor.
pub fn real_part(z: &Tensor, imag: bool) -> Result<Tensor, String> {
    let data = match (&z.data, imag) {
        (Data::C64(v), false) => Data::F32(v.iter().map(|c| c.re).collect()),
        (Data::C64(v), true) => Data::F32(v.iter().map(|c| c.im).collect()),
        (Data::F32(_) | Data::F64(_), false) => z.data.clone(),
        (Data::F32(_) | Data::F64(_), true) => Data::full(z.dtype(), z.numel(), 0.0),
        _ => return Err(format!("real/imag of {}", z.type_string())),
    };
    Ok(Tensor { shape: z.shape.clone(), data })
}

pub fn complex(re: &Tensor, im: &Tensor) -> Result<Tensor, String> {
    let pair = |a: f32, b: f32| Complex::new(a, b);
    let data = match (&re.data, &im.data) {
        _ if re.shape != im.shape => None,
        (Data::F32(a), Data::F32(b)) => Some(a.iter().zip(b).map(|(&a, &b)| pair(a, b)).collect()),
        (Data::F64(a), Data::F64(b)) => Some(a.iter().zip(b).map(|(&a, &b)| pair(a.to_f32(), b.to_f32())).collect()),
        _ => None,
    };
    let data = data.ok_or_else(|| format!("complex of {} and {}", re.type_string(), im.type_string()))?;
    Ok(Tensor { shape: re.shape.clone(), data: Data::C64(data) })
}
