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
pub(crate) unsafe fn rfft(x: &Buf, out: &Buf, axis: usize, dtype: DType, keep: Option<usize>) -> Result<(), String> {
    let (_, n, _) = split(&x.shape, axis);
    let mut want = x.shape.clone();
    want[axis] = n / 2 + 1;
    if n == 0 || want != out.shape {
        return Err(format!("rfft of {:?} along axis {axis} into {:?}", x.shape, out.shape));
    }
    if let Some(k) = keep.map(|k| k.min(n / 2 + 1)).filter(|&k| dtype == DType::F32 && truncated(n, k)) {
        unsafe { truncated_rfft(x, out, axis, k) };
        return Ok(());
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
pub(crate) unsafe fn irfft(z: &Buf, out: &Buf, axis: usize, dtype: DType, keep: Option<usize>) -> Result<(), String> {
    let (outer, k, inner) = split(&z.shape, axis);
    let n = out.shape[axis];
    let mut want = z.shape.clone();
    want[axis] = n;
    if n < 1 || want != out.shape {
        return Err(format!("irfft needs a c64 input and n >= 1, got {:?} and n = {n}", z.shape));
    }
    let used = keep.map(|keep| keep.min(k).min(n / 2 + 1));
    if let Some(used) = used.filter(|&used| dtype == DType::F32 && truncated(n, used)) {
        unsafe { truncated_irfft(z, out, axis, used) };
        return Ok(());
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

// -------------------------------------------------------------------------------------
// Truncated transforms: only the first `k` coefficients, as DFT matrix products (`gemm`,
// f32) with cached tables, for f32 data where the program reads (or has nonzero) only
// those (`Plan::keep`, as the MLIR backend's `emit::fft`).

/// The most entries of a DFT table (`n x 2k`).
const MAX_TABLE: usize = 1 << 19;

/// Whether `k` coefficients of `n` points are cheaper as a DFT product than a full FFT.
fn truncated(n: usize, k: usize) -> bool {
    let bits = (usize::BITS - n.leading_zeros()) as usize;
    k >= 1 && k <= 4 * bits && n * 2 * k <= MAX_TABLE
}

thread_local! {
    static TABLES: RefCell<std::collections::HashMap<(bool, usize, usize), Arc<Vec<f32>>>> =
        RefCell::new(std::collections::HashMap::new());
}

/// `cos` and `sin` of `2 pi j t / n` (the angle reduced modulo `n`; the sine exactly 0 at
/// multiples of `pi`).
fn angle(j: usize, t: usize, n: usize) -> (f64, f64) {
    let r = (j * t) % n;
    if r == 0 {
        return (1.0, 0.0);
    }
    if 2 * r == n {
        return (-1.0, 0.0);
    }
    let a = std::f64::consts::TAU * r as f64 / n as f64;
    (a.cos(), a.sin())
}

/// The forward table `[n, 2k]` (row `t`, columns `2j`, `2j + 1`: `cos`, `-sin` of
/// `2 pi j t / n`), or the inverse one `[2k, n]` (rows `2j`, `2j + 1`: `c_j cos / n`,
/// `-s_j sin / n`, `c_j` 1 at DC and Nyquist and 2 else, `s_j` likewise but 0 there).
fn table(inverse: bool, n: usize, k: usize) -> Arc<Vec<f32>> {
    TABLES.with(|t| {
        t.borrow_mut()
            .entry((inverse, n, k))
            .or_insert_with(|| {
                let mut v = vec![0f32; 2 * k * n];
                for t in 0..n {
                    for j in 0..k {
                        let (c, s) = angle(j, t, n);
                        if inverse {
                            let edge = j == 0 || 2 * j == n;
                            let (wc, ws) = if edge { (1.0, 0.0) } else { (2.0, 2.0) };
                            v[2 * j * n + t] = (wc * c / n as f64) as f32;
                            v[(2 * j + 1) * n + t] = (-ws * s / n as f64) as f32;
                        } else {
                            v[t * 2 * k + 2 * j] = c as f32;
                            v[t * 2 * k + 2 * j + 1] = (-s) as f32;
                        }
                    }
                }
                Arc::new(v)
            })
            .clone()
    })
}

/// `dst[m, n] (+)= lhs[m, k] @ rhs[k, n]`, every operand strided (`rs`, `cs`: row and
/// column strides in elements).
///
/// # Safety
/// Live views of those shapes; `dst` apart from the others.
#[allow(clippy::too_many_arguments)]
unsafe fn gemm_strided(
    (m, k, n): (usize, usize, usize),
    (dst, dst_rs, dst_cs): (*mut f32, usize, usize),
    accumulate: bool,
    (lhs, lhs_rs, lhs_cs): (*const f32, usize, usize),
    (rhs, rhs_rs, rhs_cs): (*const f32, usize, usize),
) {
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    let parallel = if m * n * k >= 1 << 21 { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst,
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs,
            lhs_cs as isize,
            lhs_rs as isize,
            rhs,
            rhs_cs as isize,
            rhs_rs as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            parallel,
        )
    }
}

/// The first `k` coefficients of `rfft(x)` (f32 `x`) into `out` (its other coefficients
/// are left unwritten: nothing reads them).
///
/// # Safety
/// As [`rfft`], shapes checked.
unsafe fn truncated_rfft(x: &Buf, out: &Buf, axis: usize, k: usize) {
    let (outer, n, inner) = split(&x.shape, axis);
    let m = n / 2 + 1;
    let tab = table(false, n, k);
    let xs = x.ptr as *const f32;
    // The output as f32 pairs.
    let os = out.ptr as *mut f32;
    if inner == 1 {
        // [outer, n] @ [n, 2k] into rows of `2m` floats, re and im interleaved.
        unsafe { gemm_strided((outer, n, 2 * k), (os, 2 * m, 1), false, (xs, n, 1), (tab.as_ptr(), 2 * k, 1)) };
        return;
    }
    for o in 0..outer {
        for part in 0..2 {
            // Rows: the `inner` runs; columns: coefficient `j` at `2 j inner` floats.
            let dst = unsafe { os.add(2 * o * m * inner + part) };
            let lhs = unsafe { xs.add(o * n * inner) };
            let rhs = unsafe { tab.as_ptr().add(part) };
            unsafe { gemm_strided((inner, n, k), (dst, 2, 2 * inner), false, (lhs, 1, inner), (rhs, 2 * k, 2)) };
        }
    }
}

/// `irfft(z)` to f32 `out` from the first `k` coefficients of `z` (the others are zeros).
///
/// # Safety
/// As [`irfft`], shapes checked, `k` at most `z`'s length along `axis` and `n / 2 + 1`.
unsafe fn truncated_irfft(z: &Buf, out: &Buf, axis: usize, k: usize) {
    let zs = z.ptr as *const f32;
    unsafe { contract((zs, zs.wrapping_add(1), 2), split(&z.shape, axis), out, axis, k) };
}

/// `out = irfft` of the first `k` coefficients of `(outer, kin, inner)` runs whose real
/// and imaginary parts are at `re` and `im`, `step` floats apart (2 for c64 data, 1 for
/// separate f32 parts): the real parts times the table's cosine rows plus the imaginary
/// parts (but the DC and Nyquist ones, which the transform ignores) times its sine rows.
///
/// # Safety
/// Live views of those shapes; `k` at most `kin` and `n / 2 + 1`.
unsafe fn contract(
    (re, im, step): (*const f32, *const f32, usize),
    (outer, kin, inner): (usize, usize, usize),
    out: &Buf,
    axis: usize,
    k: usize,
) {
    let n = out.shape[axis];
    let tab = table(true, n, k);
    let os = out.ptr as *mut f32;
    // Imaginary parts of coefficients 1 to below the Nyquist one.
    let k_im = k.min(n.div_ceil(2)).saturating_sub(1);
    let (t_re, t_im) = (tab.as_ptr(), tab.as_ptr().wrapping_add(3 * n));
    for (src, t, cols, acc) in [(re, t_re, k, false), (im.wrapping_add(step * inner), t_im, k_im, true)] {
        if cols == 0 {
            if !acc {
                unsafe { out.slice_mut::<f32>() }.fill(0.0);
            }
            continue;
        }
        if inner == 1 {
            unsafe { gemm_strided((outer, cols, n), (os, n, 1), acc, (src, step * kin, step), (t, 2 * n, 1)) };
            continue;
        }
        for o in 0..outer {
            let dst = unsafe { os.add(o * n * inner) };
            let lhs = src.wrapping_add(step * o * kin * inner);
            unsafe { gemm_strided((inner, cols, n), (dst, 1, inner), acc, (lhs, step, step * inner), (t, 2 * n, 1)) };
        }
    }
}

/// `irfft(complex(re, im))` to f32 `out` along `axis` for f32 `re` and `im` of equal
/// shapes, coefficients past theirs being zeros (the heads of a zero-padded operand).
///
/// # Safety
/// Live buffers of the given shapes.
pub(crate) unsafe fn irfft_parts(re: &Buf, im: &Buf, out: &Buf, axis: usize) -> Result<(), String> {
    let (outer, kin, inner) = split(&re.shape, axis);
    let n = out.shape[axis];
    let mut want = re.shape.clone();
    want[axis] = n;
    if n < 1 || want != out.shape || re.shape != im.shape {
        return Err(format!("irfft of parts {:?} and {:?} to n = {n}", re.shape, im.shape));
    }
    let k = kin.min(n / 2 + 1);
    if !truncated(n, k) {
        let (rs, is) = unsafe { (re.slice::<f32>(), im.slice::<f32>()) };
        let mut z: Vec<C64> = rs.iter().zip(is).map(|(&a, &b)| C64::new(a, b)).collect();
        let zb = Buf { shape: re.shape.clone(), ptr: z.as_mut_ptr() as *mut u8 };
        return unsafe { irfft(&zb, out, axis, DType::F32, None) };
    }
    unsafe { contract((re.ptr as *const f32, im.ptr as *const f32, 1), (outer, kin, inner), out, axis, k) };
    Ok(())
}
