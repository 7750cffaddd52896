//! Native kernels of [`super::Kernel::Native`] plans: `matmul` (f32 and f64 by the
//! `gemm` crate, row-major and batched), the random fills (`rand.uniform`, `rand.normal`:
//! the interpreter's ChaCha8 streams, drawn in row-major order), and the dispatch to
//! [`super::window`] (`conv`, `pool`), [`super::index`] (`gather`, `scatter_add`,
//! `argmax`, `argsort`), [`super::fft`] (`rfft`, `irfft`) and [`super::einsum`] (two-operand real
//! contractions); `real`, `imag` and `complex` are loops here.
//!
//! [`supports`] says at compile time which instructions have one; [`run`] runs it.

use super::window::{conv, pool, ConvAttrs, PoolAttrs};
use super::{einsum, fft, index, Buf, Plan};
use archc_compiler::tir::{DType, Inst, Op, PoolOp, TensorType};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Whether `inst` (on operands of types `args`) has a native kernel.
pub fn supports(inst: &Inst, args: &[TensorType]) -> bool {
    let real = |t: &TensorType| matches!(t.dtype, DType::F32 | DType::F64);
    let d = |i: usize| args.get(i).map(|t| t.dtype);
    match &inst.op {
        Op::MatMul | Op::Conv { .. } => args.len() == 2 && args.iter().all(real),
        Op::Real | Op::Imag => args.len() == 1 && d(0) == Some(DType::C64),
        Op::Complex => args.len() == 2 && d(0) == Some(DType::F32) && d(1) == Some(DType::F32),
        Op::Einsum(spec) => {
            args.len() == 2 && args.iter().all(|t| real(t) && t.dtype == inst.ty.dtype) && einsum::plain(spec).is_some()
        }
        Op::RandUniform { .. } | Op::RandNormal { .. } => real(&inst.ty),
        Op::Pool { op: PoolOp::Max, .. } => args.len() == 1 && (real(&args[0]) || d(0) == Some(DType::I64)),
        Op::Pool { op: PoolOp::Avg, .. } => args.len() == 1 && real(&args[0]),
        Op::Gather { .. } => args.len() == 2 && d(1) == Some(DType::I64),
        Op::ScatterAdd { .. } => {
            args.len() == 3 && d(1) == Some(DType::I64) && matches!(d(0), Some(DType::F32 | DType::F64 | DType::I64))
        }
        Op::ArgMax { .. } => args.len() == 1 && d(0) != Some(DType::C64),
        Op::ArgSort { .. } => args.len() == 1 && matches!(d(0), Some(DType::F32 | DType::F64 | DType::I64)),
        Op::Rfft { .. } => args.len() == 1 && real(&args[0]) && inst.ty.dtype == DType::C64,
        Op::Irfft { .. } => args.len() == 1 && d(0) == Some(DType::C64) && real(&inst.ty),
        _ => false,
    }
}

/// Runs the native kernel of `plan`.
///
/// # Safety
/// As [`super::archc_clif_op`], for a plan [`supports`] accepted.
pub unsafe fn run(plan: &Plan, ins: &[Buf], outs: &[Buf], key: i64) -> Result<(), String> {
    let out = &outs[0];
    match (&plan.inst.op, plan.inst.ty.dtype) {
        (Op::MatMul, DType::F32) => unsafe { matmul::<f32>(&ins[0], &ins[1], out) },
        (Op::MatMul, DType::F64) => unsafe { matmul::<f64>(&ins[0], &ins[1], out) },
        (Op::Real | Op::Imag, _) => unsafe { parts(&ins[0], out, plan.inst.op == Op::Imag) },
        (Op::Complex, _) => unsafe { complex(&ins[0], &ins[1], out) },
        (Op::Einsum(spec), DType::F32) => unsafe { einsum::einsum::<f32>(spec, &ins[0], &ins[1], out) },
        (Op::Einsum(spec), DType::F64) => unsafe { einsum::einsum::<f64>(spec, &ins[0], &ins[1], out) },
        (Op::RandUniform { .. }, DType::F32) => {
            let mut rng = ChaCha8Rng::seed_from_u64(key as u64);
            unsafe { out.slice_mut::<f32>() }.iter_mut().for_each(|x| *x = rng.random::<f32>());
            Ok(())
        }
        (Op::RandUniform { .. }, DType::F64) => {
            let mut rng = ChaCha8Rng::seed_from_u64(key as u64);
            unsafe { out.slice_mut::<f64>() }.iter_mut().for_each(|x| *x = rng.random::<f64>());
            Ok(())
        }
        (Op::RandNormal { .. }, DType::F32) => {
            let z = normals(key, out.numel());
            unsafe { out.slice_mut::<f32>() }.iter_mut().zip(z).for_each(|(x, v)| *x = v as f32);
            Ok(())
        }
        (Op::RandNormal { .. }, DType::F64) => {
            unsafe { out.slice_mut::<f64>() }.copy_from_slice(&normals(key, out.numel()));
            Ok(())
        }
        (Op::Conv { stride, padding, dilation, groups }, dtype) => {
            let a = ConvAttrs { stride, padding, dilation, groups: *groups };
            match dtype {
                DType::F32 => unsafe { conv::<f32>(&ins[0], &ins[1], out, &a) },
                _ => unsafe { conv::<f64>(&ins[0], &ins[1], out, &a) },
            }
        }
        (Op::Pool { op, window, stride, padding }, dtype) => {
            let a = PoolAttrs { op: *op, window, stride, padding };
            match dtype {
                DType::F32 => unsafe { pool::<f32>(&ins[0], out, &a) },
                DType::F64 => unsafe { pool::<f64>(&ins[0], out, &a) },
                _ => unsafe { pool::<i64>(&ins[0], out, &a) },
            }
        }
        (Op::Gather { axis }, dtype) => {
            let es = crate::lower::elem_bytes(dtype);
            unsafe { index::gather(&ins[0], &ins[1], out, *axis, es) }
        }
        (Op::ScatterAdd { axis }, DType::F32) => unsafe {
            index::scatter_add::<f32>(&ins[0], &ins[1], &ins[2], out, *axis)
        },
        (Op::ScatterAdd { axis }, DType::F64) => unsafe {
            index::scatter_add::<f64>(&ins[0], &ins[1], &ins[2], out, *axis)
        },
        (Op::ScatterAdd { axis }, DType::I64) => unsafe {
            index::scatter_add::<i64>(&ins[0], &ins[1], &ins[2], out, *axis)
        },
        (Op::ArgMax { axis, .. }, _) => unsafe { index::argmax(&ins[0], out, *axis, plan.args[0].dtype) },
        (Op::ArgSort { axis, descending }, _) => unsafe {
            index::argsort(&ins[0], out, *axis, *descending, plan.args[0].dtype)
        },
        (Op::Rfft { axis }, _) => unsafe { fft::rfft(&ins[0], out, *axis, plan.args[0].dtype, plan.keep) },
        (Op::Irfft { axis, .. }, _) if ins.len() == 2 => unsafe { fft::irfft_parts(&ins[0], &ins[1], out, *axis) },
        (Op::Irfft { axis, .. }, dtype) => unsafe { fft::irfft(&ins[0], out, *axis, dtype, plan.keep) },
        (op, dtype) => Err(format!("no native kernel for {} on {dtype}", op.name())),
    }
}

/// `n` standard normal values of the stream `key` (the interpreter's Box-Muller pairs).
fn normals(key: i64, n: usize) -> Vec<f64> {
    let mut rng = ChaCha8Rng::seed_from_u64(key as u64);
    let mut v = Vec::with_capacity(n + 1);
    while v.len() < n {
        let u1 = 1.0 - rng.random::<f64>();
        let u2 = rng.random::<f64>();
        let (r, t) = ((-2.0 * u1.ln()).sqrt(), std::f64::consts::TAU * u2);
        v.push(r * t.cos());
        v.push(r * t.sin());
    }
    v.truncate(n);
    v
}

/// Element types `gemm` multiplies.
pub(crate) trait Gemm: Copy + Default + 'static {
    const ONE: Self;
}

impl Gemm for f32 {
    const ONE: f32 = 1.0;
}

impl Gemm for f64 {
    const ONE: f64 = 1.0;
}

/// The real (or imaginary) parts of a `c64` buffer.
///
/// # Safety
/// Live buffers of one shape: `z` of `c64`, `out` of `f32`.
unsafe fn parts(z: &Buf, out: &Buf, imag: bool) -> Result<(), String> {
    if z.shape != out.shape {
        return Err(format!("real/imag of {:?} into {:?}", z.shape, out.shape));
    }
    let (z, o) = unsafe { (z.slice::<archc_runtime::elem::C64>(), out.slice_mut::<f32>()) };
    o.iter_mut().zip(z).for_each(|(o, c)| *o = if imag { c.im } else { c.re });
    Ok(())
}

/// `complex(re, im)` of two `f32` buffers of one shape.
///
/// # Safety
/// Live buffers of one shape: `re`, `im` of `f32`, `out` of `c64`.
unsafe fn complex(re: &Buf, im: &Buf, out: &Buf) -> Result<(), String> {
    if re.shape != im.shape || re.shape != out.shape {
        return Err(format!("complex of {:?} and {:?} into {:?}", re.shape, im.shape, out.shape));
    }
    let (a, b) = unsafe { (re.slice::<f32>(), im.slice::<f32>()) };
    let o = unsafe { out.slice_mut::<archc_runtime::elem::C64>() };
    o.iter_mut().zip(a.iter().zip(b)).for_each(|(o, (&a, &b))| *o = archc_runtime::elem::C64::new(a, b));
    Ok(())
}

/// `[..., m, k] x [..., k, n] -> [..., m, n]`, contiguous row-major.
///
/// # Safety
/// Live buffers of those shapes.
unsafe fn matmul<T: Gemm>(a: &Buf, b: &Buf, c: &Buf) -> Result<(), String> {
    let r = a.shape.len();
    let (m, k, n) = (a.shape[r - 2], a.shape[r - 1], b.shape[r - 1]);
    if b.shape[r - 2] != k || c.shape[r - 2] != m || c.shape[r - 1] != n || a.shape[..r - 2] != b.shape[..r - 2] {
        return Err(format!("cannot matmul {:?} by {:?} into {:?}", a.shape, b.shape, c.shape));
    }
    let batch: usize = a.shape[..r - 2].iter().product();
    let (pa, pb, pc) = (a.ptr as *const T, b.ptr as *const T, c.ptr as *mut T);
    for i in 0..batch {
        unsafe { gemm_rows(m, k, n, pa.add(i * m * k), k, 1, pb.add(i * k * n), n, 1, pc.add(i * m * n)) };
    }
    Ok(())
}

/// Products of at least this many multiply-adds use every core (the MLIR backend's
/// threshold: below it, handing work to another thread costs more than it saves).
const PARALLEL_MACS: usize = 1 << 21;

/// `c = a @ b` with `c` contiguous `[m, n]` and `a`, `b` strided (`rs`, `cs`: row and
/// column strides in elements).
///
/// # Safety
/// Live, non-overlapping views of those shapes.
#[allow(clippy::too_many_arguments)]
pub(crate) unsafe fn gemm_rows<T: Gemm>(
    m: usize,
    k: usize,
    n: usize,
    a: *const T,
    a_rs: usize,
    a_cs: usize,
    b: *const T,
    b_rs: usize,
    b_cs: usize,
    c: *mut T,
) {
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        unsafe { std::slice::from_raw_parts_mut(c, m * n) }.fill(T::default());
        return;
    }
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c,
            1,
            n as isize,
            false,
            a,
            a_cs as isize,
            a_rs as isize,
            b,
            b_cs as isize,
            b_rs as isize,
            T::default(),
            T::ONE,
            false,
            false,
            false,
            if m * n * k >= PARALLEL_MACS { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None },
        )
    }
}
