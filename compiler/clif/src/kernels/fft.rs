//! Native real FFTs by rustfft, in f64 as the interpreter computes them (an f32 transform
//! of inputs with large cancelling values would be off by far more than the tier's
//! tolerance), results rounded to c64 or f32 once; they agree with the interpreter's
//! within rounding, not bit for bit. Plans are cached per thread. An even length `n` runs as a complex FFT of `n / 2` points (even and odd
//! samples as real and imaginary parts, split by twiddles), an odd one as a complex FFT
//! of `n` points; runs along the axis are transformed a chunk at a time, by two threads
//! for large transforms.

use super::Buf;
use archc_compiler::tir::DType;
use archc_runtime::elem::C64;
use rustfft::num_complex::Complex;
use rustfft::num_traits::{Float, FromPrimitive};
use rustfft::{Fft, FftNum, FftPlanner};
use std::cell::RefCell;
use std::sync::Arc;

/// Runs transformed per chunk (bounds the working buffers).
const CHUNK: usize = 16;

/// A real type rustfft plans for, with this thread's planner.
trait Real: FftNum + Float {
    fn plan(n: usize, inverse: bool) -> Arc<dyn Fft<Self>>;
    fn of(x: f64) -> Self {
        <Self as FromPrimitive>::from_f64(x).expect("a float")
    }
}

thread_local! {
    static PLANS64: RefCell<FftPlanner<f64>> = RefCell::new(FftPlanner::new());
}

impl Real for f64 {
    fn plan(n: usize, inverse: bool) -> Arc<dyn Fft<f64>> {
        PLANS64.with(|p| {
            let mut p = p.borrow_mut();
            if inverse {
                p.plan_fft_inverse(n)
            } else {
                p.plan_fft_forward(n)
            }
        })
    }
}

/// `(outer, n, inner)` of `shape` around `axis`.
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

/// One length's transforms: the complex FFT (of `n / 2` points for even `n`, else `n`),
/// the twiddles `exp(-2 pi i k / n)` for `k <= n / 2`, and work buffers.
struct Transform<T: Real> {
    n: usize,
    fft: Arc<dyn Fft<T>>,
    tw: Vec<Complex<T>>,
    buf: Vec<Complex<T>>,
    scratch: Vec<Complex<T>>,
}

impl<T: Real> Transform<T> {
    fn new(n: usize, inverse: bool) -> Self {
        let len = if n % 2 == 0 { n / 2 } else { n };
        let fft = T::plan(len, inverse);
        let tw = (0..=n / 2)
            .map(|k| {
                let a = -std::f64::consts::TAU * k as f64 / n as f64;
                Complex::new(T::of(a.cos()), T::of(a.sin()))
            })
            .collect();
        Transform { n, fft, tw, buf: Vec::new(), scratch: Vec::new() }
    }

    /// This transform with work buffers of its own (for one thread).
    fn fresh(&self) -> Self {
        let zero = Complex::new(T::zero(), T::zero());
        Transform {
            n: self.n,
            fft: self.fft.clone(),
            tw: self.tw.clone(),
            buf: vec![zero; CHUNK * self.len()],
            scratch: vec![zero; self.fft.get_inplace_scratch_len()],
        }
    }

    /// The complex points per run.
    fn len(&self) -> usize {
        if self.n % 2 == 0 {
            self.n / 2
        } else {
            self.n
        }
    }

    /// Transforms the first `runs` runs of `buf` in place.
    fn process(&mut self, runs: usize) {
        let len = self.len();
        self.fft.process_with_scratch(&mut self.buf[..runs * len], &mut self.scratch);
    }
}

/// The `n / 2 + 1` coefficients of a run from its complex FFT `z` (of the packed even and
/// odd samples for even `n`, of the samples for odd `n`).
fn unpack<T: Real>(t: &Transform<T>, z: &[Complex<T>], mut out: impl FnMut(usize, Complex<T>)) {
    let n = t.n;
    if n % 2 == 1 {
        z[..n / 2 + 1].iter().enumerate().for_each(|(k, &v)| out(k, v));
        return;
    }
    let h = n / 2;
    let half = T::of(0.5);
    let point = |k: usize, a: Complex<T>, b: Complex<T>| {
        let (e, d) = ((a + b) * half, (a - b) * half);
        // e + w^k (-i d)
        e + t.tw[k] * Complex::new(d.im, -d.re)
    };
    out(0, point(0, z[0], z[0].conj()));
    for k in 1..h {
        out(k, point(k, z[k], z[h - k].conj()));
    }
    out(h, point(h, z[0], z[0].conj()));
}

/// The packed spectrum of a run (for the inverse complex FFT) from its first `n / 2 + 1`
/// coefficients `x` (imaginary parts of the DC and Nyquist terms ignored).
fn pack<T: Real>((n, tw): (usize, &[Complex<T>]), x: &mut [Complex<T>], z: &mut [Complex<T>]) {
    let h = n / 2;
    x[0].im = T::zero();
    if n % 2 == 0 {
        x[h].im = T::zero();
    }
    if n % 2 == 1 {
        z[..=h].copy_from_slice(&x[..=h]);
        for k in 1..=h {
            z[n - k] = x[k].conj();
        }
        return;
    }
    let half = T::of(0.5);
    for k in 0..h {
        let (a, b) = (x[k], x[h - k].conj());
        let e = (a + b) * half;
        let o = (a - b) * half * tw[k].conj();
        // z = e + i o
        z[k] = Complex::new(e.re - o.im, e.im + o.re);
    }
}

/// `rfft(x, axis)`: f32 or f64 input, c64 output with `n / 2 + 1` points.
///
/// # Safety
/// Live buffers of the given shapes; `x` of `dtype`.
pub(crate) unsafe fn rfft(x: &Buf, out: &Buf, axis: usize, dtype: DType) -> Result<(), String> {
    let (_, n, _) = split(&x.shape, axis);
    let mut want = x.shape.clone();
    want[axis] = n / 2 + 1;
    if n == 0 || want != out.shape {
        return Err(format!("rfft of {:?} along axis {axis} into {:?}", x.shape, out.shape));
    }
    let os = unsafe { out.slice_mut::<C64>() };
    match dtype {
        DType::F32 => forward::<f64, f32>(unsafe { x.slice::<f32>() }, os, split(&x.shape, axis)),
        _ => forward::<f64, f64>(unsafe { x.slice::<f64>() }, os, split(&x.shape, axis)),
    }
    Ok(())
}

/// Every run of `xs` (`outer` x `n` x `inner`) transformed into `os`.
fn forward<T: Real, S: Copy + Sync + Into<f64>>(xs: &[S], os: &mut [C64], (outer, n, inner): (usize, usize, usize)) {
    let t = Transform::<T>::new(n, false);
    let out = Shared(os.as_mut_ptr());
    let m = n / 2 + 1;
    in_parallel(outer * inner, n, |runs| {
        let mut t = t.fresh();
        let len = t.len();
        let out = &out;
        for first in runs.clone().step_by(CHUNK) {
            let count = CHUNK.min(runs.end - first);
            for r in 0..count {
                let o = first + r;
                let base = (o / inner * n) * inner + o % inner;
                let z = &mut t.buf[r * len..(r + 1) * len];
                if n % 2 == 0 && inner == 1 {
                    let x = &xs[base..base + n];
                    z.iter_mut()
                        .zip(x.chunks_exact(2))
                        .for_each(|(v, p)| *v = Complex::new(T::of(p[0].into()), T::of(p[1].into())));
                } else if n % 2 == 0 {
                    let x = |p: usize| T::of(xs[base + p * inner].into());
                    z.iter_mut().enumerate().for_each(|(j, v)| *v = Complex::new(x(2 * j), x(2 * j + 1)));
                } else {
                    z.iter_mut()
                        .enumerate()
                        .for_each(|(j, v)| *v = Complex::new(T::of(xs[base + j * inner].into()), T::zero()));
                }
            }
            t.process(count);
            for r in 0..count {
                let o = first + r;
                let z = &t.buf[r * len..(r + 1) * len];
                let base = (o / inner * m) * inner + o % inner;
                if inner == 1 {
                    // SAFETY: this run's points, written by this thread only, inside `os`.
                    let dst = unsafe { std::slice::from_raw_parts_mut(out.0.add(base), m) };
                    unpack(&t, z, |k, v| {
                        dst[k] = C64::new(v.re.to_f32().unwrap_or(f32::NAN), v.im.to_f32().unwrap_or(f32::NAN))
                    });
                    continue;
                }
                unpack(&t, z, |k, v| {
                    let c = C64::new(v.re.to_f32().unwrap_or(f32::NAN), v.im.to_f32().unwrap_or(f32::NAN));
                    // SAFETY: each run's points are written by one thread, inside `os`.
                    unsafe { *out.0.add(base + k * inner) = c };
                });
            }
        }
    });
}

/// A pointer into a result buffer whose runs threads write apart.
struct Shared<P>(*mut P);
unsafe impl<P> Sync for Shared<P> {}

/// Transforms of at least this many points in all use two threads.
const PARALLEL_POINTS: usize = 1 << 18;

/// `f` over `0..runs` (runs of `n` points), split between two threads when large.
fn in_parallel(runs: usize, n: usize, f: impl Fn(std::ops::Range<usize>) + Sync) {
    let threads = std::thread::available_parallelism().map_or(1, |t| t.get().min(2));
    if threads < 2 || runs < 2 || runs * n < PARALLEL_POINTS {
        f(0..runs);
        return;
    }
    let mid = runs / 2;
    std::thread::scope(|s| {
        s.spawn(|| f(mid..runs));
        f(0..mid);
    });
}

/// `irfft(z, axis)` to `out`'s `n` points along `axis` (f32 or f64, `dtype`).
///
/// # Safety
/// Live buffers of the given shapes; `out` of `dtype`.
pub(crate) unsafe fn irfft(z: &Buf, out: &Buf, axis: usize, dtype: DType) -> Result<(), String> {
    let (outer, k, inner) = split(&z.shape, axis);
    let n = out.shape[axis];
    let mut want = z.shape.clone();
    want[axis] = n;
    if n < 1 || want != out.shape {
        return Err(format!("irfft needs a c64 input and n >= 1, got {:?} and n = {n}", z.shape));
    }
    let zs = unsafe { z.slice::<C64>() };
    match dtype {
        DType::F32 => inverse::<f64, f32>(zs, unsafe { out.slice_mut::<f32>() }, (outer, k, inner), n, |v| v as f32),
        _ => inverse::<f64, f64>(zs, unsafe { out.slice_mut::<f64>() }, (outer, k, inner), n, |v| v),
    }
    Ok(())
}

/// Every run of `zs` (`outer` x `k` x `inner`) inverted to `n` points in `os`.
fn inverse<T: Real, O: Copy>(
    zs: &[C64],
    os: &mut [O],
    (outer, k, inner): (usize, usize, usize),
    n: usize,
    to: fn(T) -> O,
) {
    let t = Transform::<T>::new(n, true);
    let out = Shared(os.as_mut_ptr());
    let scale = T::of(1.0 / n as f64) * if n % 2 == 0 { T::of(2.0) } else { T::one() };
    in_parallel(outer * inner, n, |runs| {
        let mut t = t.fresh();
        let len = t.len();
        let out = &out;
        let mut row = vec![Complex::new(T::zero(), T::zero()); n / 2 + 1];
        for first in runs.clone().step_by(CHUNK) {
            let count = CHUNK.min(runs.end - first);
            for r in 0..count {
                let o = first + r;
                let base = (o / inner * k) * inner + o % inner;
                let have = k.min(row.len());
                let c64 = |c: C64| Complex::new(T::of(c.re as f64), T::of(c.im as f64));
                if inner == 1 {
                    row[..have].iter_mut().zip(&zs[base..base + have]).for_each(|(v, &c)| *v = c64(c));
                } else {
                    row[..have].iter_mut().enumerate().for_each(|(p, v)| *v = c64(zs[base + p * inner]));
                }
                row[have..].fill(Complex::new(T::zero(), T::zero()));
                pack((n, &t.tw), &mut row, &mut t.buf[r * len..(r + 1) * len]);
            }
            t.process(count);
            for r in 0..count {
                let o = first + r;
                let base = (o / inner * n) * inner + o % inner;
                let z = &t.buf[r * len..(r + 1) * len];
                if inner == 1 {
                    // SAFETY: this run's points, written by this thread only, inside `os`.
                    let dst = unsafe { std::slice::from_raw_parts_mut(out.0.add(base), n) };
                    if n % 2 == 0 {
                        dst.chunks_exact_mut(2).zip(z).for_each(|(d, v)| {
                            d[0] = to(v.re * scale);
                            d[1] = to(v.im * scale);
                        });
                    } else {
                        dst.iter_mut().zip(z).for_each(|(d, v)| *d = to(v.re * scale));
                    }
                    continue;
                }
                // SAFETY: each run's points are written by one thread, inside `os`.
                let put = |p: usize, v: T| unsafe { *out.0.add(base + p * inner) = to(v) };
                if n % 2 == 0 {
                    for (j, v) in z.iter().enumerate() {
                        put(2 * j, v.re * scale);
                        put(2 * j + 1, v.im * scale);
                    }
                } else {
                    z.iter().enumerate().for_each(|(j, v)| put(j, v.re * scale));
                }
            }
        }
    });
}
