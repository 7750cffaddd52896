//! Native real FFTs: the interpreter's [`RealFft`] run by run along the axis (in f64,
//! results rounded as the interpreter rounds them), so transforms agree bit for bit.

use super::Buf;
use archc_compiler::tir::DType;
use archc_runtime::elem::C64;
use archc_runtime::interp::RealFft;

/// `(outer, n, inner)` of `shape` around `axis`.
fn split(shape: &[usize], axis: usize) -> (usize, usize, usize) {
    (shape[..axis].iter().product(), shape[axis], shape[axis + 1..].iter().product())
}

/// `rfft(x, axis)`: f32 or f64 input, c64 output with `n / 2 + 1` points.
///
/// # Safety
/// Live buffers of the given shapes; `x` of `dtype`.
pub(crate) unsafe fn rfft(x: &Buf, out: &Buf, axis: usize, dtype: DType) -> Result<(), String> {
    let (outer, n, inner) = split(&x.shape, axis);
    let m = n / 2 + 1;
    let mut want = x.shape.clone();
    want[axis] = m;
    if n == 0 || want != out.shape {
        return Err(format!("rfft of {:?} along axis {axis} into {:?}", x.shape, out.shape));
    }
    let plan = RealFft::new(n);
    let read: Box<dyn Fn(usize) -> f64> = unsafe {
        match dtype {
            DType::F32 => {
                let v = x.slice::<f32>();
                Box::new(move |i| v[i] as f64)
            }
            _ => {
                let v = x.slice::<f64>();
                Box::new(move |i| v[i])
            }
        }
    };
    let os = unsafe { out.slice_mut::<C64>() };
    for o in 0..outer {
        for j in 0..inner {
            let run = (0..n).map(|t| read((o * n + t) * inner + j));
            for (k, z) in plan.forward(run, m).iter().enumerate() {
                os[(o * m + k) * inner + j] = C64::new(z.re as f32, z.im as f32);
            }
        }
    }
    Ok(())
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
    let plan = RealFft::new(n);
    let zs = unsafe { z.slice::<C64>() };
    let mut write: Box<dyn FnMut(usize, f64)> = unsafe {
        match dtype {
            DType::F32 => {
                let s = out.slice_mut::<f32>();
                Box::new(move |i, v| s[i] = v as f32)
            }
            _ => {
                let s = out.slice_mut::<f64>();
                Box::new(move |i, v| s[i] = v)
            }
        }
    };
    for o in 0..outer {
        for j in 0..inner {
            let half = (0..k).map(|t| {
                let v = zs[(o * k + t) * inner + j];
                (v.re as f64, v.im as f64)
            });
            let values = plan.inverse(half);
            for (t, v) in values.into_iter().enumerate() {
                write((o * n + t) * inner + j, v);
            }
        }
    }
    Ok(())
}
