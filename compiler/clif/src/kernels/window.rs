//! Native windowed kernels: `conv` (f32, f64) as im2col and one `gemm` product per
//! sample and group (a pointwise convolution multiplies the input directly), and
//! `pool.{max,avg}` (f32, f64; max also i64), with the interpreter's semantics
//! (`runtime/src/interp/conv.rs`): padding reads zeros for `conv` and avg pooling, max
//! pooling ignores it, NaN propagates.

use super::native::{gemm_rows, Gemm};
use super::Buf;
use archc_compiler::tir::PoolOp;

/// Marks a tap that falls in the padding.
const PAD: usize = usize::MAX;

/// Geometry of one windowed op over the spatial axes.
pub(crate) struct Window {
    pub output: Vec<usize>,
    kernel: Vec<usize>,
    n_in: usize,
    /// `taps[k * n_out + o]`: flat spatial input position read by tap `k` at output `o`.
    taps: Vec<usize>,
}

impl Window {
    pub fn new(
        input: &[usize],
        kernel: &[usize],
        stride: &[i64],
        padding: &[(i64, i64)],
        dilation: &[i64],
    ) -> Result<Window, String> {
        let mut output = Vec::new();
        for d in 0..input.len() {
            if stride[d] < 1 || dilation[d] < 1 {
                return Err(format!("stride {stride:?} and dilation {dilation:?} must be >= 1"));
            }
            let span = input[d] as i64 + padding[d].0 + padding[d].1 - dilation[d] * (kernel[d] as i64 - 1) - 1;
            if span < 0 {
                return Err(format!(
                    "window {kernel:?} (dilation {dilation:?}) exceeds padded input {input:?} + {padding:?}"
                ));
            }
            output.push((span / stride[d] + 1) as usize);
        }
        let n_out: usize = output.iter().product();
        let n_taps: usize = kernel.iter().product();
        let mut in_st = vec![1usize; input.len()];
        for d in (0..input.len().saturating_sub(1)).rev() {
            in_st[d] = in_st[d + 1] * input[d + 1];
        }
        let mut taps = Vec::with_capacity(n_taps * n_out);
        for k in 0..n_taps {
            let kidx = unravel(k, kernel);
            for o in 0..n_out {
                let oidx = unravel(o, &output);
                let mut pos = 0;
                for d in 0..input.len() {
                    let c = oidx[d] as i64 * stride[d] - padding[d].0 + kidx[d] as i64 * dilation[d];
                    if c < 0 || c >= input[d] as i64 {
                        pos = PAD;
                        break;
                    }
                    pos += c as usize * in_st[d];
                }
                taps.push(pos);
            }
        }
        Ok(Window { output, kernel: kernel.to_vec(), n_in: input.iter().product(), taps })
    }

    fn n_out(&self) -> usize {
        self.output.iter().product()
    }

    fn n_taps(&self) -> usize {
        self.kernel.iter().product()
    }

    /// Whether every tap `k` reads input position `o` at output `o` (a pointwise window).
    fn is_identity(&self) -> bool {
        self.n_taps() == 1 && self.n_out() == self.n_in && self.taps.iter().enumerate().all(|(o, &p)| p == o)
    }
}

fn unravel(mut i: usize, shape: &[usize]) -> Vec<usize> {
    let mut idx = vec![0; shape.len()];
    for d in (0..shape.len()).rev() {
        idx[d] = i % shape[d].max(1);
        i /= shape[d].max(1);
    }
    idx
}

/// The attributes of a `conv`.
pub(crate) struct ConvAttrs<'a> {
    pub stride: &'a [i64],
    pub padding: &'a [(i64, i64)],
    pub dilation: &'a [i64],
    pub groups: i64,
}

/// `conv(x, w)` into `out`.
///
/// # Safety
/// Live buffers of the given shapes and of element type `T`.
pub(crate) unsafe fn conv<T: Gemm>(x: &Buf, w: &Buf, out: &Buf, a: &ConvAttrs) -> Result<(), String> {
    let nd = a.stride.len();
    let err = |why: &str| format!("cannot conv {:?} with {:?}: {why}", x.shape, w.shape);
    if x.shape.len() != nd + 2 || w.shape.len() != nd + 2 || a.padding.len() != nd || a.dilation.len() != nd {
        return Err(err("ranks do not match the attributes"));
    }
    let g = usize::try_from(a.groups).ok().filter(|&g| g >= 1).ok_or_else(|| err("groups < 1"))?;
    let (batch, c_in, c_out) = (x.shape[0], x.shape[1], w.shape[0]);
    if c_in % g != 0 || c_out % g != 0 || w.shape[1] * g != c_in {
        return Err(err("channels do not divide into groups"));
    }
    let win = Window::new(&x.shape[2..], &w.shape[2..], a.stride, a.padding, a.dilation)?;
    let mut shape = vec![batch, c_out];
    shape.extend(&win.output);
    if shape != out.shape {
        return Err(format!("result is {shape:?}, declared {:?}", out.shape));
    }
    let (n_in, n_out, n_taps) = (win.n_in, win.n_out(), win.n_taps());
    let (cin_g, cout_g) = (c_in / g, c_out / g);
    let (px, pw, po) = (x.ptr as *const T, w.ptr as *const T, out.ptr as *mut T);
    let direct = win.is_identity();
    let mut col: Vec<T> = if direct { Vec::new() } else { vec![T::default(); cin_g * n_taps * n_out] };
    for b in 0..batch {
        for gi in 0..g {
            let xg = unsafe { px.add((b * c_in + gi * cin_g) * n_in) };
            let rows = if direct {
                xg
            } else {
                for ic in 0..cin_g {
                    let row = unsafe { std::slice::from_raw_parts(xg.add(ic * n_in), n_in) };
                    for k in 0..n_taps {
                        let dst = &mut col[(ic * n_taps + k) * n_out..][..n_out];
                        for (d, &p) in dst.iter_mut().zip(&win.taps[k * n_out..(k + 1) * n_out]) {
                            *d = if p == PAD { T::default() } else { row[p] };
                        }
                    }
                }
                col.as_ptr()
            };
            let kk = cin_g * n_taps;
            let wg = unsafe { pw.add(gi * cout_g * kk) };
            let og = unsafe { po.add((b * c_out + gi * cout_g) * n_out) };
            unsafe { gemm_rows(cout_g, kk, n_out, wg, kk, 1, rows, n_out, 1, og) };
        }
    }
    Ok(())
}

/// Pooling attributes.
pub(crate) struct PoolAttrs<'a> {
    pub op: PoolOp,
    pub window: &'a [i64],
    pub stride: &'a [i64],
    pub padding: &'a [(i64, i64)],
}

/// Element types max pooling compares.
pub(crate) trait Pooled: Copy + PartialOrd {
    const LOWEST: Self;
    fn to_f64(self) -> f64;
    fn from_f64(v: f64) -> Self;
}

impl Pooled for f32 {
    const LOWEST: f32 = f32::NEG_INFINITY;
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> f32 {
        v as f32
    }
}

impl Pooled for f64 {
    const LOWEST: f64 = f64::NEG_INFINITY;
    fn to_f64(self) -> f64 {
        self
    }
    fn from_f64(v: f64) -> f64 {
        v
    }
}

impl Pooled for i64 {
    const LOWEST: i64 = i64::MIN;
    fn to_f64(self) -> f64 {
        self as f64
    }
    fn from_f64(v: f64) -> i64 {
        v as i64
    }
}

/// `pool(x)` into `out` (avg only for floats).
///
/// # Safety
/// Live buffers of the given shapes and of element type `T`.
#[allow(clippy::eq_op)]
pub(crate) unsafe fn pool<T: Pooled>(x: &Buf, out: &Buf, a: &PoolAttrs) -> Result<(), String> {
    let nd = a.window.len();
    let err = |why: &str| format!("cannot pool {:?} with window {:?}: {why}", x.shape, a.window);
    if x.shape.len() < nd || a.stride.len() != nd || a.padding.len() != nd || a.window.iter().any(|&k| k < 1) {
        return Err(err("attributes do not fit"));
    }
    let lead = x.shape.len() - nd;
    let kernel: Vec<usize> = a.window.iter().map(|&k| k as usize).collect();
    let win = Window::new(&x.shape[lead..], &kernel, a.stride, a.padding, &vec![1; nd])?;
    let mut shape = x.shape[..lead].to_vec();
    shape.extend(&win.output);
    if shape != out.shape {
        return Err(format!("result is {shape:?}, declared {:?}", out.shape));
    }
    let rows: usize = x.shape[..lead].iter().product();
    let (n_in, n_out, n_taps) = (win.n_in, win.n_out(), win.n_taps());
    let (xs, os) = unsafe { (x.slice::<T>(), out.slice_mut::<T>()) };
    for r in 0..rows {
        let row = &xs[r * n_in..(r + 1) * n_in];
        let dst = &mut os[r * n_out..(r + 1) * n_out];
        match a.op {
            PoolOp::Max => {
                dst.fill(T::LOWEST);
                for k in 0..n_taps {
                    for (m, &p) in dst.iter_mut().zip(&win.taps[k * n_out..(k + 1) * n_out]) {
                        // `v != v` only for NaN: once a NaN is taken it stays.
                        if p != PAD && *m == *m && (row[p] > *m || row[p] != row[p]) {
                            *m = row[p];
                        }
                    }
                }
            }
            PoolOp::Avg => {
                let mut acc = vec![0.0f64; n_out];
                for k in 0..n_taps {
                    for (s, &p) in acc.iter_mut().zip(&win.taps[k * n_out..(k + 1) * n_out]) {
                        if p != PAD {
                            *s += row[p].to_f64();
                        }
                    }
                }
                for (d, s) in dst.iter_mut().zip(acc) {
                    *d = T::from_f64(s / n_taps as f64);
                }
            }
        }
    }
    Ok(())
}
