//! Windowed ops: N-d `conv` (cross-correlation, PyTorch layout) and `pool.{max,avg}`.
//!
//! Contract:
//! - `conv(x, w)`: x `[B, C_in, *S]`, w `[C_out, C_in / groups, *K]`, one stride, dilation
//!   (both >= 1) and `(lo, hi)` padding per spatial axis; output size per axis
//!   `(S + lo + hi - dilation * (K - 1) - 1) / stride + 1` (the padded input must hold one
//!   dilated kernel). Input channel group `g` feeds output channels
//!   `g * C_out / groups ..`. Padding reads zeros (negative padding crops), which are
//!   multiplied by the weights like any input (a NaN or infinite weight makes every
//!   output it touches NaN, as in PyTorch).
//!   f32 (accumulated in f64), f64, i64 (wrapping), c64 (in c128).
//! - `pool(x)`: over the trailing `window.len()` axes, output size
//!   `(S + lo + hi - window) / stride + 1`. Max ignores padding (f32, f64, i64; NaN
//!   propagates); avg counts padding as zeros and divides by the window size (f32 in f64,
//!   f64).
//!
//! Both precompute, for each kernel tap and output position, the flat input position it
//! reads (or none, in padding), then stream over channels with contiguous rows; conv
//! gathers each input row's taps once for all the output channels that read it.

use crate::elem::{Num, Real};
use crate::tensor::{strides, unravel, Data, Tensor};
use archc_compiler::tir::PoolOp;

/// Marks a tap that falls in the padding.
const PAD: usize = usize::MAX;

/// Geometry of one windowed op over the spatial axes.
struct Window {
    /// Spatial input sizes, kernel/window sizes, output sizes.
    input: Vec<usize>,
    kernel: Vec<usize>,
    output: Vec<usize>,
    /// `taps[k * n_out + o]`: flat spatial input position read by tap `k` at output `o`.
    taps: Vec<usize>,
}

impl Window {
    fn new(
        input: &[usize],
        kernel: &[usize],
        stride: &[i64],
        padding: &[(i64, i64)],
        dilation: &[i64],
    ) -> Result<Window, String> {
        let mut output = Vec::new();
        for d in 0..input.len() {
            if stride[d] < 1 || dilation[d] < 1 {
                return Err(format!("stride {:?} and dilation {:?} must be >= 1", stride, dilation));
            }
            let span = input[d] as i64 + padding[d].0 + padding[d].1 - dilation[d] * (kernel[d] as i64 - 1) - 1;
            if span < 0 {
                return Err(format!(
                    "window {kernel:?} (dilation {dilation:?}) exceeds padded input {input:?} + {padding:?}"
                ));
            }
            output.push((span / stride[d] + 1) as usize);
        }
        let mut w = Window { input: input.to_vec(), kernel: kernel.to_vec(), output, taps: Vec::new() };
        w.taps = w.tap_table(stride, padding, dilation);
        Ok(w)
    }

    fn n_out(&self) -> usize {
        self.output.iter().product()
    }

    fn n_taps(&self) -> usize {
        self.kernel.iter().product()
    }

    fn n_in(&self) -> usize {
        self.input.iter().product()
    }

    fn tap_table(&self, stride: &[i64], padding: &[(i64, i64)], dilation: &[i64]) -> Vec<usize> {
        let in_st = strides(&self.input);
        let outs: Vec<Vec<usize>> = (0..self.n_out()).map(|o| unravel(o, &self.output)).collect();
        let mut taps = Vec::with_capacity(self.n_taps() * self.n_out());
        for k in 0..self.n_taps() {
            let kidx = unravel(k, &self.kernel);
            for oidx in &outs {
                let mut pos = 0;
                for d in 0..self.input.len() {
                    let c = oidx[d] as i64 * stride[d] - padding[d].0 + kidx[d] as i64 * dilation[d];
                    if c < 0 || c >= self.input[d] as i64 {
                        pos = PAD;
                        break;
                    }
                    pos += c as usize * in_st[d];
                }
                taps.push(pos);
            }
        }
        taps
    }
}

/// Attributes of a `conv` op.
pub struct ConvSpec<'a> {
    pub stride: &'a [i64],
    pub padding: &'a [(i64, i64)],
    pub dilation: &'a [i64],
    pub groups: i64,
}

/// Channel counts of a conv.
struct Channels {
    batch: usize,
    c_in: usize,
    c_out: usize,
    groups: usize,
}

pub fn conv(x: &Tensor, w: &Tensor, spec: &ConvSpec) -> Result<Tensor, String> {
    let nd = spec.stride.len();
    let err = |why: &str| format!("cannot conv {} with {}: {why}", x.type_string(), w.type_string());
    if x.rank() != nd + 2 || w.rank() != nd + 2 || spec.padding.len() != nd || spec.dilation.len() != nd {
        return Err(err("ranks do not match the attributes"));
    }
    let g = usize::try_from(spec.groups).ok().filter(|&g| g >= 1).ok_or_else(|| err("groups < 1"))?;
    let ch = Channels { batch: x.shape[0], c_in: x.shape[1], c_out: w.shape[0], groups: g };
    if ch.c_in % g != 0 || ch.c_out % g != 0 || w.shape[1] * g != ch.c_in {
        return Err(err("channels do not divide into groups"));
    }
    let win = Window::new(&x.shape[2..], &w.shape[2..], spec.stride, spec.padding, spec.dilation)?;
    let data = match (&x.data, &w.data) {
        (Data::F32(a), Data::F32(b)) => Data::F32(conv_kernel(a, b, &ch, &win)),
        (Data::F64(a), Data::F64(b)) => Data::F64(conv_kernel(a, b, &ch, &win)),
        (Data::I64(a), Data::I64(b)) => Data::I64(conv_kernel(a, b, &ch, &win)),
        (Data::C64(a), Data::C64(b)) => Data::C64(conv_kernel(a, b, &ch, &win)),
        _ => return Err(err("dtypes")),
    };
    let mut shape = vec![ch.batch, ch.c_out];
    shape.extend(&win.output);
    Ok(Tensor { shape, data })
}

/// Per input row, the taps are gathered once (`cols[k * n_out + o]`, zero in padding)
/// and every output channel of its group accumulates them with contiguous multiply-adds.
/// Each output sums over (input channel, tap) in the same order as a direct loop would.
fn conv_kernel<T: Num>(x: &[T], w: &[T], ch: &Channels, win: &Window) -> Vec<T> {
    let (n_in, n_out, n_taps) = (win.n_in(), win.n_out(), win.n_taps());
    let (cin_g, cout_g) = (ch.c_in / ch.groups, ch.c_out / ch.groups);
    if n_out == 0 {
        return Vec::new();
    }
    let mut out = Vec::with_capacity(ch.batch * ch.c_out * n_out);
    let mut acc = vec![T::zero(); cout_g * n_out];
    let mut cols = vec![T::zero(); n_taps * n_out];
    for b in 0..ch.batch {
        for g in 0..ch.groups {
            acc.fill(T::zero());
            for ic in 0..cin_g {
                let row = &x[(b * ch.c_in + g * cin_g + ic) * n_in..][..n_in];
                for (c, &pos) in cols.iter_mut().zip(&win.taps) {
                    *c = if pos != PAD { row[pos].acc() } else { T::zero() };
                }
                for (j, acc) in acc.chunks_exact_mut(n_out).enumerate() {
                    let kernel = &w[((g * cout_g + j) * cin_g + ic) * n_taps..][..n_taps];
                    for (wv, col) in kernel.iter().zip(cols.chunks_exact(n_out)) {
                        let wv = wv.acc();
                        for (s, &v) in acc.iter_mut().zip(col) {
                            *s = *s + wv * v;
                        }
                    }
                }
            }
            out.extend(acc.iter().map(|&s| T::from_acc(s)));
        }
    }
    out
}

pub fn pool(op: PoolOp, x: &Tensor, window: &[i64], stride: &[i64], padding: &[(i64, i64)]) -> Result<Tensor, String> {
    let nd = window.len();
    let err = |why: &str| format!("cannot pool {} with window {window:?}: {why}", x.type_string());
    if x.rank() < nd || stride.len() != nd || padding.len() != nd || window.iter().any(|&k| k < 1) {
        return Err(err("attributes do not fit"));
    }
    let lead = x.rank() - nd;
    let kernel: Vec<usize> = window.iter().map(|&k| k as usize).collect();
    let win = Window::new(&x.shape[lead..], &kernel, stride, padding, &vec![1; nd])?;
    let rows: usize = x.shape[..lead].iter().product();
    let data = match (op, &x.data) {
        (PoolOp::Max, Data::F32(v)) => Data::F32(max_pool(v, rows, &win, f32::NEG_INFINITY)),
        (PoolOp::Max, Data::F64(v)) => Data::F64(max_pool(v, rows, &win, f64::NEG_INFINITY)),
        (PoolOp::Max, Data::I64(v)) => Data::I64(max_pool(v, rows, &win, i64::MIN)),
        (PoolOp::Avg, Data::F32(v)) => Data::F32(avg_pool(v, rows, &win)),
        (PoolOp::Avg, Data::F64(v)) => Data::F64(avg_pool(v, rows, &win)),
        _ => return Err(err("dtype")),
    };
    let mut shape = x.shape[..lead].to_vec();
    shape.extend(&win.output);
    Ok(Tensor { shape, data })
}

/// Max over each window; padding is ignored (an all-padding window gives `lowest`).
#[allow(clippy::eq_op)]
fn max_pool<T: Copy + PartialOrd>(x: &[T], rows: usize, win: &Window, lowest: T) -> Vec<T> {
    let (n_in, n_out) = (win.n_in(), win.n_out());
    let mut out = Vec::with_capacity(rows * n_out);
    for r in 0..rows {
        let row = &x[r * n_in..(r + 1) * n_in];
        let mut best = vec![lowest; n_out];
        for k in 0..win.n_taps() {
            for (m, &pos) in best.iter_mut().zip(&win.taps[k * n_out..(k + 1) * n_out]) {
                // `v != v` only for NaN: once a NaN is taken it stays.
                if pos != PAD && *m == *m && (row[pos] > *m || row[pos] != row[pos]) {
                    *m = row[pos];
                }
            }
        }
        out.extend(best);
    }
    out
}

/// Mean over each window, padding counted as zeros.
fn avg_pool<T: Real + Num<Acc = f64>>(x: &[T], rows: usize, win: &Window) -> Vec<T> {
    let (n_in, n_out, size) = (win.n_in(), win.n_out(), win.n_taps() as f64);
    let mut out = Vec::with_capacity(rows * n_out);
    for r in 0..rows {
        let row = &x[r * n_in..(r + 1) * n_in];
        let mut acc = vec![0.0f64; n_out];
        for k in 0..win.n_taps() {
            for (s, &pos) in acc.iter_mut().zip(&win.taps[k * n_out..(k + 1) * n_out]) {
                if pos != PAD {
                    *s += row[pos].acc();
                }
            }
        }
        out.extend(acc.iter().map(|&s| T::from_acc(s / size)));
    }
    out
}
