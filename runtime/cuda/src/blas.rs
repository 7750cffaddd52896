//! Matrix products for the mlir-gpu backend's host code, on the GPU with cuBLAS: the same
//! symbols as the CPU runtime's (`_mlir_ciface_archc_matmul_f32`, `..._f64`,
//! `_mlir_ciface_archc_bmm_f32`, `..._f64`), so that no product touches managed memory
//! from the host.
//!
//! Contract:
//! - Each function takes three pointers to [`MemRef`] descriptors (MLIR's C interface) and
//!   overwrites `c` with `a @ b`: matmul `a: [m, k]`, `b: [k, n]`, `c: [m, n]`; bmm the same
//!   with a leading batch dimension of one size in all three, where `a`'s and `b`'s batch
//!   strides may be 0 (broadcast). Views are strided: any offset and strides. Shapes that do
//!   not match are recorded as an error (see [`crate::take_error`]) and nothing is written.
//!   `m`, `n` or the batch 0: nothing; `k` 0: `c` is zeroed.
//! - cuBLAS is opened at run time (see [`gemm_backend`]): `libcublas.so.13`, `.so.12`,
//!   `.so` by the loader's search, then the newest `libcublas.so*` (after its
//!   `libcublasLt.so*`) in [`crate::CudaOptions::cublas_dir`] (the CLI's
//!   `ARCHC_CUBLAS_DIR`), `/usr/local/cuda/lib64` and the torch
//!   wheels' `nvidia/cublas/lib` and `nvidia/cu13/lib`; the first that loads and creates a
//!   handle is used (a library too new for the driver fails `cublasCreate_v2`, and the next
//!   is tried). One handle, created on first use, runs on the process's one stream
//!   (`mgpuStreamCreate`'s) in `CUBLAS_DEFAULT_MATH`: full FP32 and FP64 arithmetic (no
//!   TF32, which needs `CUBLAS_TF32_TENSOR_OP_MATH`, and no emulation, which needs its own
//!   math mode or `CUBLAS_EMULATE_*`; `CUBLAS_PEDANTIC_MATH` is not needed for that).
//!   Pointer mode is host (the default); calls on the handle are serialised.
//! - Row-major products are column-major ones transposed: with `c` row-major (unit stride
//!   in columns), `cᵀ = bᵀ aᵀ` is `gemm(n, m, k, b, a)`; with `c` column-major (unit stride
//!   in rows), `gemm(m, n, k, a, b)`. An operand that is row-major or column-major (its
//!   leading dimension at least its row, resp. column, length and within `i32`) is used in
//!   place, with the transpose flag where its layout differs from `c`'s. Any other operand
//!   (neither stride 1, overlapping or broadcast rows) is first copied into a contiguous
//!   temporary managed buffer by the host, after `cuCtxSynchronize` (one copy for a
//!   batch-broadcast operand); any other `c` is computed into one and copied back by the
//!   host after the products. A batch is one `cublas?gemmStridedBatched` call, or one call
//!   per matrix where `c`'s batch stride is not positive or a stride is negative.
//!   `k == 0` zeroes `c` with `cuMemsetD2D32Async` (or on the host if `c` is strided).
//! - The stream is synchronised before returning, so the host code may read `c` at once,
//!   unless `set_sync_launches(false)` says it reads no buffer. A path that needs the host
//!   to touch an operand in device memory (staging, the host fallback) is not taken: the
//!   error recorded is a [`CudaError::NeedsHostMemory`].
//! - Host fallback (an exact triple loop, after `cuCtxSynchronize`): when cuBLAS cannot be
//!   loaded or set up (said once on stderr), when [`crate::CudaOptions::host_gemm`] is set
//!   (the CLI's `ARCHC_GPU_HOST_GEMM=1`), when a dimension
//!   exceeds `i32`, or when an operand's memory is unknown to the driver (plain host memory,
//!   which kernels cannot read). Without a CUDA device (no driver, no device) the loop runs
//!   directly on host memory and nothing is recorded. While an error is pending nothing is
//!   computed, like the `mgpu` calls.
//! - Errors (cuBLAS statuses, driver calls) are recorded as the `mgpu` functions' are,
//!   named `archc_matmul_f32: ...` and so on.

use std::ffi::{c_int, c_void};
use std::path::{Path, PathBuf};
use std::ptr::null_mut;
use std::sync::{Mutex, MutexGuard, Once, OnceLock};

use libloading::Library;

use crate::driver::CUstream;
use crate::mgpu::{failed, record, stream};
use crate::{cuda, options, pool, Cuda, CudaError};

/// A ranked memref descriptor as MLIR's C interface passes it (offset and strides in
/// elements).
#[repr(C)]
#[derive(Clone, Copy, Debug)]
pub struct MemRef<T, const R: usize> {
    pub allocated: *mut T,
    pub aligned: *mut T,
    pub offset: i64,
    pub sizes: [i64; R],
    pub strides: [i64; R],
}

/// The symbols of this module, for the JIT's symbol map.
pub fn symbols() -> Vec<(&'static str, *mut ())> {
    vec![
        ("_mlir_ciface_archc_matmul_f32", archc_matmul_f32 as *mut ()),
        ("_mlir_ciface_archc_matmul_f64", archc_matmul_f64 as *mut ()),
        ("_mlir_ciface_archc_bmm_f32", archc_bmm_f32 as *mut ()),
        ("_mlir_ciface_archc_bmm_f64", archc_bmm_f64 as *mut ()),
    ]
}

macro_rules! products {
    ($t:ty, $mm:ident, $bmm:ident) => {
        #[doc = concat!("`c = a @ b` for `", stringify!($t), "` matrices (see the module doc).")]
        ///
        /// # Safety
        /// The pointers point to descriptors of live, non-overlapping views of the shapes
        /// above; `c`'s view is writable.
        pub unsafe extern "C" fn $mm(a: *const MemRef<$t, 2>, b: *const MemRef<$t, 2>, c: *const MemRef<$t, 2>) {
            // SAFETY: the descriptors are readable (this function's contract).
            let (a, b, c) = unsafe { (View::matrix(&*a), View::matrix(&*b), View::matrix(&*c)) };
            // SAFETY: forwarded from this function's contract.
            unsafe { product(stringify!($mm), false, a, b, c) }
        }

        #[doc = concat!("`c[i] = a[i] @ b[i]` for batches of `", stringify!($t), "` matrices (see the module doc).")]
        ///
        /// # Safety
        /// As for the matrix product, with a leading batch dimension.
        pub unsafe extern "C" fn $bmm(a: *const MemRef<$t, 3>, b: *const MemRef<$t, 3>, c: *const MemRef<$t, 3>) {
            // SAFETY: the descriptors are readable (this function's contract).
            let (a, b, c) = unsafe { (View::batch(&*a), View::batch(&*b), View::batch(&*c)) };
            // SAFETY: forwarded from this function's contract.
            unsafe { product(stringify!($bmm), true, a, b, c) }
        }
    };
}

products!(f32, archc_matmul_f32, archc_bmm_f32);
products!(f64, archc_matmul_f64, archc_bmm_f64);

/// Which implementation the products use: `Ok("cuBLAS <version> (<library path>)")`, or
/// `Err(why they run on the host)`: no device, [`crate::CudaOptions::host_gemm`] (the CLI's
/// `ARCHC_GPU_HOST_GEMM=1`), or no cuBLAS.
pub fn gemm_backend() -> Result<String, CudaError> {
    if options().host_gemm {
        return Err(CudaError::NoBlas("ARCHC_GPU_HOST_GEMM=1: matrix products run on the host".into()));
    }
    let cuda = cuda()?;
    Blas::get(cuda).map(|blas| blas.description.clone())
}

/// An element type cuBLAS multiplies.
pub(crate) trait Element:
    Copy + Default + PartialEq + std::ops::Add<Output = Self> + std::ops::Mul<Output = Self> + 'static
{
    const ONE: Self;
    /// `cublasSgemm_v2` or `cublasDgemm_v2`.
    const GEMM: &'static str;
    /// `cublasSgemmStridedBatched` or `cublasDgemmStridedBatched`.
    const BATCHED: &'static str;
    fn gemm(api: &Api) -> GemmFn<Self>;
    fn batched(api: &Api) -> BatchedFn<Self>;
}

impl Element for f32 {
    const ONE: f32 = 1.0;
    const GEMM: &'static str = "cublasSgemm_v2";
    const BATCHED: &'static str = "cublasSgemmStridedBatched";
    fn gemm(api: &Api) -> GemmFn<f32> {
        api.sgemm
    }
    fn batched(api: &Api) -> BatchedFn<f32> {
        api.sgemm_batched
    }
}

impl Element for f64 {
    const ONE: f64 = 1.0;
    const GEMM: &'static str = "cublasDgemm_v2";
    const BATCHED: &'static str = "cublasDgemmStridedBatched";
    fn gemm(api: &Api) -> GemmFn<f64> {
        api.dgemm
    }
    fn batched(api: &Api) -> BatchedFn<f64> {
        api.dgemm_batched
    }
}

/// A strided batch of matrices `[batch, rows, cols]`; `ptr` is the address of element
/// `[0, 0, 0]` (the descriptor's offset applied). Matrices are batches of one.
#[derive(Debug)]
pub(crate) struct View<T> {
    pub ptr: *mut T,
    pub sizes: [i64; 3],
    pub strides: [i64; 3],
}

impl<T> Clone for View<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for View<T> {}

impl<T> View<T> {
    fn matrix(m: &MemRef<T, 2>) -> View<T> {
        let ptr = m.aligned.wrapping_offset(m.offset as isize);
        View { ptr, sizes: [1, m.sizes[0], m.sizes[1]], strides: [0, m.strides[0], m.strides[1]] }
    }

    fn batch(m: &MemRef<T, 3>) -> View<T> {
        View { ptr: m.aligned.wrapping_offset(m.offset as isize), sizes: m.sizes, strides: m.strides }
    }

    /// The address of element `[b, i, j]`.
    fn at(&self, b: i64, i: i64, j: i64) -> *mut T {
        let [sb, si, sj] = self.strides;
        self.ptr.wrapping_offset((b * sb + i * si + j * sj) as isize)
    }

    /// The distance between matrices (0 for a batch of one, or a broadcast).
    fn batch_stride(&self) -> i64 {
        if self.sizes[0] <= 1 {
            0
        } else {
            self.strides[0]
        }
    }

    fn layout(&self) -> Layout {
        layout(self.sizes[1], self.sizes[2], self.strides[1], self.strides[2])
    }

    /// A dense row-major batch of this shape at `ptr`; one matrix, broadcast, for a
    /// broadcast batch when `share` is set.
    fn dense(&self, ptr: *mut T, share: bool) -> View<T> {
        let [batch, rows, cols] = self.sizes;
        let broadcast = share && batch > 1 && self.strides[0] == 0;
        View { ptr, sizes: [batch, rows, cols], strides: [if broadcast { 0 } else { rows * cols }, cols, 1] }
    }

    /// How many distinct matrices `dense(_, true)` holds.
    fn distinct(&self) -> i64 {
        if self.sizes[0] > 1 && self.strides[0] == 0 {
            1
        } else {
            self.sizes[0]
        }
    }
}

/// How a matrix lies in memory, for cuBLAS: `Rows(ld)`: unit stride along rows (row-major,
/// rows `ld` apart), `Cols(ld)`: unit stride down columns; `ld` at least the run length,
/// at least 1, within `i32`. Strides of dimensions of size 0 or 1 do not matter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Layout {
    Rows(i32),
    Cols(i32),
    Strided,
}

pub(crate) fn layout(rows: i64, cols: i64, row_stride: i64, col_stride: i64) -> Layout {
    let fits = |ld: i64| i32::try_from(ld).ok();
    if (cols <= 1 || col_stride == 1) && (rows <= 1 || row_stride >= cols.max(1)) {
        if let Some(ld) = fits(if rows <= 1 { cols.max(1) } else { row_stride }) {
            return Layout::Rows(ld);
        }
    }
    if (rows <= 1 || row_stride == 1) && (cols <= 1 || col_stride >= rows.max(1)) {
        if let Some(ld) = fits(if cols <= 1 { rows.max(1) } else { col_stride }) {
            return Layout::Cols(ld);
        }
    }
    Layout::Strided
}

/// One `cublas?gemm` (`batch == 1`) or `cublas?gemmStridedBatched` call, column-major:
/// `C = op(A) op(B)` with `op(A): m x k`, `op(B): k x n`, `C: m x n`.
#[derive(Debug)]
pub(crate) struct Gemm<T> {
    pub trans_a: bool,
    pub trans_b: bool,
    pub m: i32,
    pub n: i32,
    pub k: i32,
    pub a: *const T,
    pub lda: i32,
    pub stride_a: i64,
    pub b: *const T,
    pub ldb: i32,
    pub stride_b: i64,
    pub c: *mut T,
    pub ldc: i32,
    pub stride_c: i64,
    pub batch: i32,
}

/// Zeroing `height` rows of `width` 32-bit words, `pitch` bytes apart, at `ptr`
/// (`cuMemsetD2D32Async`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fill {
    pub ptr: usize,
    pub pitch: usize,
    pub width: usize,
    pub height: usize,
}

/// What the products run on: cuBLAS on the stream, or a stand-in in the tests.
pub(crate) trait Device<T: Element> {
    /// A temporary buffer of `len` elements, valid until the device is dropped.
    fn temp(&mut self, len: usize) -> Result<*mut T, CudaError>;
    /// Waits for all queued work, before the host touches operands.
    fn wait(&mut self) -> Result<(), CudaError>;
    /// Queues one call.
    ///
    /// # Safety
    /// The call's matrices are live and within their buffers.
    unsafe fn gemm(&mut self, call: &Gemm<T>) -> Result<(), CudaError>;
    /// Queues zeroing rows.
    ///
    /// # Safety
    /// The rows are live and writable.
    unsafe fn fill(&mut self, fill: &Fill) -> Result<(), CudaError>;
    /// Waits for the queued calls.
    fn finish(&mut self) -> Result<(), CudaError>;
}

/// `c = a @ b` with the shapes checked, on `device` (see the module doc). Operands of
/// cuBLAS calls are used in place or staged; dimensions must fit `i32` ([`fits_cublas`]).
///
/// # Safety
/// The views are live and cover their elements; `c`'s is writable and overlaps neither.
pub(crate) unsafe fn run<T: Element>(
    device: &mut impl Device<T>,
    a: View<T>,
    b: View<T>,
    c: View<T>,
) -> Result<(), CudaError> {
    let [batch, m, n] = c.sizes;
    let k = a.sizes[2];
    if batch == 0 || m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        let Some(fills) = zero_fills(c) else {
            device.wait()?;
            // SAFETY: the device is idle; `c` is writable (this function's contract).
            unsafe { host_product(a, b, c) };
            return Ok(());
        };
        for fill in &fills {
            // SAFETY: the rows lie within `c`'s view.
            unsafe { device.fill(fill)? };
        }
        return device.finish();
    }
    let mut waited = false;
    // SAFETY: forwarded from this function's contract.
    let (a, b) = unsafe { (stage(device, &mut waited, a)?, stage(device, &mut waited, b)?) };
    let out = if c.layout() == Layout::Strided {
        let len = usize::try_from(batch * m * n).map_err(|_| CudaError::Internal("output too large".into()))?;
        c.dense(device.temp(len)?, false)
    } else {
        c
    };
    for call in plan(a, b, out) {
        // SAFETY: the plan's matrices lie within the views.
        unsafe { device.gemm(&call)? };
    }
    device.finish()?;
    if out.ptr != c.ptr {
        device.wait()?;
        // SAFETY: the device is idle; both views cover their elements.
        unsafe { copy_view(out, c) };
    }
    Ok(())
}

/// `v` itself if cuBLAS can read it in place, else a dense copy made by the host.
///
/// # Safety
/// `v` is live and covers its elements.
unsafe fn stage<T: Element>(device: &mut impl Device<T>, waited: &mut bool, v: View<T>) -> Result<View<T>, CudaError> {
    if v.layout() != Layout::Strided {
        return Ok(v);
    }
    let [_, rows, cols] = v.sizes;
    let len = usize::try_from(v.distinct() * rows * cols);
    let len = len.map_err(|_| CudaError::Internal("operand too large".into()))?;
    let staged = v.dense(device.temp(len)?, true);
    if !*waited {
        device.wait()?;
        *waited = true;
    }
    let distinct = v.distinct();
    let (from, to) = (View { sizes: [distinct, rows, cols], ..v }, View { sizes: [distinct, rows, cols], ..staged });
    // SAFETY: the device is idle; `staged` was just allocated for these elements.
    unsafe { copy_view(from, to) };
    Ok(staged)
}

/// Whether every dimension fits cuBLAS's `int` (else the host computes the product).
pub(crate) fn fits_cublas<T>(a: &View<T>, c: &View<T>) -> bool {
    [c.sizes[1], c.sizes[2], a.sizes[2]].iter().all(|&d| i32::try_from(d).is_ok())
}

/// The cuBLAS calls computing `c = a @ b` for non-empty views that are all row- or
/// column-major (see the module doc).
pub(crate) fn plan<T>(a: View<T>, b: View<T>, c: View<T>) -> Vec<Gemm<T>> {
    let [batch, m, n] = c.sizes;
    let k = a.sizes[2];
    let int = |x: i64| i32::try_from(x).expect("dimensions fit i32 (fits_cublas)");
    let split = |l: Layout| match l {
        Layout::Rows(ld) => (true, ld),
        Layout::Cols(ld) => (false, ld),
        Layout::Strided => unreachable!("strided operands are staged"),
    };
    let ((a_rows, lda), (b_rows, ldb), (c_rows, ldc)) = (split(a.layout()), split(b.layout()), split(c.layout()));
    let (sa, sb, sc) = (a.batch_stride(), b.batch_stride(), c.batch_stride());
    let together = batch == 1 || (sa >= 0 && sb >= 0 && sc > 0 && batch <= i32::MAX as i64);
    let groups: Vec<(i64, i64)> = if together { vec![(0, batch)] } else { (0..batch).map(|i| (i, 1)).collect() };
    groups
        .into_iter()
        .map(|(first, count)| {
            let (pa, pb, pc) = (a.at(first, 0, 0).cast_const(), b.at(first, 0, 0).cast_const(), c.at(first, 0, 0));
            let batch = int(count);
            if c_rows {
                // cᵀ = bᵀ aᵀ, column-major: an operand's storage is its transpose when it is
                // row-major too.
                Gemm {
                    trans_a: !b_rows,
                    trans_b: !a_rows,
                    m: int(n),
                    n: int(m),
                    k: int(k),
                    a: pb,
                    lda: ldb,
                    stride_a: sb,
                    b: pa,
                    ldb: lda,
                    stride_b: sa,
                    c: pc,
                    ldc,
                    stride_c: sc,
                    batch,
                }
            } else {
                Gemm {
                    trans_a: a_rows,
                    trans_b: b_rows,
                    m: int(m),
                    n: int(n),
                    k: int(k),
                    a: pa,
                    lda,
                    stride_a: sa,
                    b: pb,
                    ldb,
                    stride_b: sb,
                    c: pc,
                    ldc,
                    stride_c: sc,
                    batch,
                }
            }
        })
        .collect()
}

/// Zeroing a non-empty `c` by rows of 32-bit words, one fill per matrix; `None` if `c` is
/// neither row- nor column-major.
pub(crate) fn zero_fills<T>(c: View<T>) -> Option<Vec<Fill>> {
    let [batch, m, n] = c.sizes;
    let words = std::mem::size_of::<T>() / 4;
    let (width, height, pitch) = match c.layout() {
        Layout::Rows(ld) => (n, m, ld),
        Layout::Cols(ld) => (m, n, ld),
        Layout::Strided => return None,
    };
    let fill = |i| Fill {
        ptr: c.at(i, 0, 0) as usize,
        pitch: pitch as usize * std::mem::size_of::<T>(),
        width: width as usize * words,
        height: height as usize,
    };
    Some((0..batch).map(fill).collect())
}

/// `c = a @ b` by the host, accumulating each row of `c` in order of `k`.
///
/// # Safety
/// The views are live and cover their elements; `c`'s is writable; no device work
/// touches them meanwhile.
pub(crate) unsafe fn host_product<T: Element>(a: View<T>, b: View<T>, c: View<T>) {
    let [batch, m, n] = c.sizes;
    let k = a.sizes[2];
    let mut row = vec![T::default(); n as usize];
    for t in 0..batch {
        for i in 0..m {
            row.fill(T::default());
            for p in 0..k {
                // SAFETY: indices within the views' sizes.
                let x = unsafe { a.at(t, i, p).read() };
                for (j, acc) in row.iter_mut().enumerate() {
                    // SAFETY: as above.
                    *acc = *acc + x * unsafe { b.at(t, p, j as i64).read() };
                }
            }
            for (j, &value) in row.iter().enumerate() {
                // SAFETY: as above; `c` is writable.
                unsafe { c.at(t, i, j as i64).write(value) };
            }
        }
    }
}

/// Copies every element of `from` to `to` (same sizes) by the host.
///
/// # Safety
/// Both views are live and cover their elements; `to`'s is writable; no device work
/// touches them meanwhile.
unsafe fn copy_view<T>(from: View<T>, to: View<T>) {
    let [batch, rows, cols] = from.sizes;
    for t in 0..batch {
        for i in 0..rows {
            for j in 0..cols {
                // SAFETY: indices within the views' sizes.
                unsafe { to.at(t, i, j).write(from.at(t, i, j).read()) };
            }
        }
    }
}

/// Checks `a: [batch, m, k]`, `b: [batch, k, n]`, `c: [batch, m, n]`.
fn check_shapes<T>(batched: bool, a: &View<T>, b: &View<T>, c: &View<T>) -> Result<(), CudaError> {
    let ([ba, m, k], [bb, k2, n], [bc, m2, n2]) = (a.sizes, b.sizes, c.sizes);
    let ok = ba == bc && bb == bc && k == k2 && m == m2 && n == n2 && c.sizes.iter().chain(&[k]).all(|&d| d >= 0);
    if ok {
        return Ok(());
    }
    let shape = |v: &View<T>| if batched { format!("{:?}", v.sizes) } else { format!("{:?}", &v.sizes[1..]) };
    Err(CudaError::Internal(format!("shapes {} @ {} -> {} do not match", shape(a), shape(b), shape(c))))
}

/// The entry points' common body (see the module doc).
///
/// # Safety
/// As for the entry points.
unsafe fn product<T: Element>(name: &str, batched: bool, a: View<T>, b: View<T>, c: View<T>) {
    if failed() {
        return;
    }
    if let Err(error) = check_shapes(batched, &a, &b, &c) {
        return record(error.context(name));
    }
    let Ok(cuda) = cuda() else {
        // SAFETY: no device, so host memory (this function's contract).
        return unsafe { host_product(a, b, c) };
    };
    // SAFETY: forwarded from this function's contract.
    if let Err(error) = unsafe { on_device(cuda, a, b, c) } {
        record(error.context(name));
    }
}

/// The product by cuBLAS, or by the host after synchronising (see the module doc).
///
/// # Safety
/// As for the entry points.
unsafe fn on_device<T: Element>(cuda: &'static Cuda, a: View<T>, b: View<T>, c: View<T>) -> Result<(), CudaError> {
    let [batch, m, n] = c.sizes;
    if batch == 0 || m == 0 || n == 0 {
        return Ok(());
    }
    let blas = if options().host_gemm { None } else { Blas::get_or_warn(cuda) };
    // Kernels read only what the driver knows; with k == 0 only `c` is touched.
    let addresses = [a.ptr as usize, b.ptr as usize, c.ptr as usize];
    let used = if a.sizes[2] == 0 { &addresses[2..] } else { &addresses[..] };
    let readable = || used.iter().all(|&address| cuda.knows_address(address as u64));
    let host_ok = used.iter().all(|&address| cuda.host_accessible(address as u64));
    let blas = blas.filter(|_| fits_cublas(&a, &c) && readable());
    let Some(blas) = blas else {
        if !host_ok {
            return Err(CudaError::needs_host_memory("a product on the host", ""));
        }
        crate::stats::bump(crate::stats::Counter::Wait);
        cuda.synchronize()?;
        // SAFETY: the device is idle (this function's contract for the rest).
        unsafe { host_product(a, b, c) };
        return Ok(());
    };
    let (handle, stream) = (blas.lock(), stream(cuda)?);
    let mut gpu = Gpu { cuda, api: &blas.api, handle, stream, temps: Vec::new(), host_ok };
    // SAFETY: forwarded from this function's contract.
    unsafe { run(&mut gpu, a, b, c) }
}

/// `cublasHandle_t`.
type Handle = *mut c_void;
/// `cublasStatus_t`: 0 is `CUBLAS_STATUS_SUCCESS`.
type Status = c_int;
/// `cublasOperation_t`.
const CUBLAS_OP_N: c_int = 0;
const CUBLAS_OP_T: c_int = 1;
/// `cublasMath_t` `CUBLAS_DEFAULT_MATH`.
const CUBLAS_DEFAULT_MATH: c_int = 0;

/// `cublas?gemm_v2(handle, transa, transb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc)`.
pub(crate) type GemmFn<T> = unsafe extern "C" fn(
    Handle,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    *const T,
    *const T,
    c_int,
    *const T,
    c_int,
    *const T,
    *mut T,
    c_int,
) -> Status;

/// `cublas?gemmStridedBatched(handle, transa, transb, m, n, k, alpha, A, lda, strideA, B,
/// ldb, strideB, beta, C, ldc, strideC, batchCount)`, strides `long long`.
pub(crate) type BatchedFn<T> = unsafe extern "C" fn(
    Handle,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    *const T,
    *const T,
    c_int,
    i64,
    *const T,
    c_int,
    i64,
    *const T,
    *mut T,
    c_int,
    i64,
    c_int,
) -> Status;

/// The cuBLAS entry points used, typed as in `cublas_api.h`.
pub(crate) struct Api {
    create: unsafe extern "C" fn(*mut Handle) -> Status,
    set_stream: unsafe extern "C" fn(Handle, CUstream) -> Status,
    set_math_mode: unsafe extern "C" fn(Handle, c_int) -> Status,
    get_version: unsafe extern "C" fn(Handle, *mut c_int) -> Status,
    sgemm: GemmFn<f32>,
    dgemm: GemmFn<f64>,
    sgemm_batched: BatchedFn<f32>,
    dgemm_batched: BatchedFn<f64>,
    /// Kept open while the pointers above are used (`libcublasLt` first, if opened).
    _libraries: Vec<Library>,
}

impl Api {
    fn load(libraries: Vec<Library>) -> Result<Api, CudaError> {
        let library = libraries.last().expect("libcublas is opened");
        /// # Safety
        /// `F` is the prototype of `name` in `cublas_api.h`.
        unsafe fn get<F: Copy>(library: &Library, name: &str) -> Result<F, CudaError> {
            // SAFETY: the caller vouches for the type; the pointer copied out lives no
            // longer than the library, kept beside it.
            unsafe { library.get::<F>(name.as_bytes()) }
                .map(|symbol| *symbol)
                .map_err(|e| CudaError::NoBlas(format!("cuBLAS: no {name} ({e})")))
        }
        // SAFETY: each type is the symbol's prototype (see `GemmFn` and `BatchedFn`).
        unsafe {
            Ok(Api {
                create: get(library, "cublasCreate_v2")?,
                set_stream: get(library, "cublasSetStream_v2")?,
                set_math_mode: get(library, "cublasSetMathMode")?,
                get_version: get(library, "cublasGetVersion_v2")?,
                sgemm: get(library, f32::GEMM)?,
                dgemm: get(library, f64::GEMM)?,
                sgemm_batched: get(library, f32::BATCHED)?,
                dgemm_batched: get(library, f64::BATCHED)?,
                _libraries: libraries,
            })
        }
    }
}

/// cuBLAS with its one handle, set up for the process's stream.
struct Blas {
    api: Api,
    /// The handle (as an address); calls on it are serialised.
    handle: Mutex<usize>,
    description: String,
}

static BLAS: OnceLock<Result<Blas, CudaError>> = OnceLock::new();

impl Blas {
    fn get(cuda: &Cuda) -> Result<&'static Blas, CudaError> {
        BLAS.get_or_init(|| Blas::init(cuda)).as_ref().map_err(CudaError::clone)
    }

    /// cuBLAS, or `None` after saying once on stderr why not.
    fn get_or_warn(cuda: &Cuda) -> Option<&'static Blas> {
        static WARNING: Once = Once::new();
        Blas::get(cuda)
            .inspect_err(|e| WARNING.call_once(|| eprintln!("archc-cuda: {e}; matrix products run on the host")))
            .ok()
    }

    /// Sets up the first candidate library that loads and creates a handle.
    fn init(cuda: &Cuda) -> Result<Blas, CudaError> {
        let dirs = search_dirs();
        let (mut not_found, mut failure) = (None, None);
        for candidate in candidates(&dirs) {
            match candidate.open() {
                Ok((libraries, label)) => match Blas::set_up(cuda, libraries, &label) {
                    Ok(blas) => return Ok(blas),
                    Err(e) => failure = failure.or(Some(format!("{label}: {e}"))),
                },
                Err(e) => not_found = not_found.or(Some(e)),
            }
        }
        let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        Err(CudaError::NoBlas(failure.unwrap_or_else(|| {
            format!(
                "cuBLAS not found ({}; nor in {}; set ARCHC_CUBLAS_DIR)",
                not_found.map(|e: CudaError| e.to_string()).unwrap_or_default(),
                searched.join(", ")
            )
        })))
    }

    fn set_up(cuda: &Cuda, libraries: Vec<Library>, label: &str) -> Result<Blas, CudaError> {
        let api = Api::load(libraries)?;
        let mut handle = null_mut();
        // SAFETY: `handle` is a valid out-pointer; the context is current on this thread.
        check(unsafe { (api.create)(&mut handle) }, "cublasCreate_v2")?;
        // SAFETY: a live handle and the process's stream.
        check(unsafe { (api.set_stream)(handle, stream(cuda)?) }, "cublasSetStream_v2")?;
        // SAFETY: a live handle and a valid cublasMath_t.
        check(unsafe { (api.set_math_mode)(handle, CUBLAS_DEFAULT_MATH) }, "cublasSetMathMode")?;
        let mut version = 0;
        // SAFETY: a live handle and a valid out-pointer.
        check(unsafe { (api.get_version)(handle, &mut version) }, "cublasGetVersion_v2")?;
        let description = format!("cuBLAS {version} ({label})");
        Ok(Blas { api, handle: Mutex::new(handle as usize), description })
    }

    fn lock(&self) -> MutexGuard<'_, usize> {
        // The handle stays valid whatever a panicking holder did.
        self.handle.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

// SAFETY: the handle is used only under its mutex, and the library's functions are
// callable from any thread with the context current.
unsafe impl Send for Blas {}
// SAFETY: as above.
unsafe impl Sync for Blas {}

/// `Ok(())` for `CUBLAS_STATUS_SUCCESS`, else the error `cuBLAS error NAME (n) in {call}`.
fn check(status: Status, call: &'static str) -> Result<(), CudaError> {
    let name = match status {
        0 => return Ok(()),
        1 => "CUBLAS_STATUS_NOT_INITIALIZED",
        3 => "CUBLAS_STATUS_ALLOC_FAILED",
        7 => "CUBLAS_STATUS_INVALID_VALUE",
        8 => "CUBLAS_STATUS_ARCH_MISMATCH",
        11 => "CUBLAS_STATUS_MAPPING_ERROR",
        13 => "CUBLAS_STATUS_EXECUTION_FAILED",
        14 => "CUBLAS_STATUS_INTERNAL_ERROR",
        15 => "CUBLAS_STATUS_NOT_SUPPORTED",
        16 => "CUBLAS_STATUS_LICENSE_ERROR",
        _ => "unknown status",
    };
    Err(CudaError::Blas { call, status, name, detail: String::new() })
}

/// The python wheels' library directories (torch's virtual environment).
const TORCH_NVIDIA: &str = "/opt/torch/.venv/lib/python3.12/site-packages/nvidia";

/// Where to look for libcublas after the loader's own search (see the module doc).
fn search_dirs() -> Vec<PathBuf> {
    let mut dirs: Vec<PathBuf> = options().cublas_dir.iter().cloned().collect();
    dirs.push("/usr/local/cuda/lib64".into());
    dirs.push(Path::new(TORCH_NVIDIA).join("cublas/lib"));
    dirs.push(Path::new(TORCH_NVIDIA).join("cu13/lib"));
    dirs
}

/// A libcublas to try: a name for the loader's search, or a file with the libcublasLt
/// beside it.
enum Candidate {
    Name(&'static str),
    File { cublas: PathBuf, lt: Option<PathBuf> },
}

/// The candidates in order: the sonames, then the newest file in each directory.
fn candidates(dirs: &[PathBuf]) -> Vec<Candidate> {
    let names = ["libcublas.so.13", "libcublas.so.12", "libcublas.so"].map(Candidate::Name);
    let files = dirs.iter().filter_map(|dir| {
        let cublas = newest(dir, "libcublas.so")?;
        Some(Candidate::File { cublas, lt: newest(dir, "libcublasLt.so") })
    });
    names.into_iter().chain(files).collect()
}

impl Candidate {
    /// The libraries to keep open, libcublas last, and its name or path.
    fn open(&self) -> Result<(Vec<Library>, String), CudaError> {
        let not_found = |e: libloading::Error| CudaError::NoBlas(e.to_string());
        match self {
            Candidate::Name(name) => {
                // SAFETY: opening cuBLAS runs only its own initialisers.
                let library = unsafe { Library::new(name) }.map_err(not_found)?;
                Ok((vec![library], name.to_string()))
            }
            Candidate::File { cublas, lt } => {
                // libcublas needs libcublasLt beside it, which the loader may not search:
                // loaded first, it satisfies the dependency by its soname.
                // SAFETY: as above.
                let lt = lt.as_ref().and_then(|lt| unsafe { Library::new(lt) }.ok());
                // SAFETY: as above.
                let library = unsafe { Library::new(cublas) }.map_err(not_found)?;
                Ok((lt.into_iter().chain([library]).collect(), cublas.display().to_string()))
            }
        }
    }
}

/// The file in `dir` named `prefix` or `prefix.N.N...` with the highest version.
fn newest(dir: &Path, prefix: &str) -> Option<PathBuf> {
    let version = |name: &str| -> Option<Vec<u64>> {
        let rest = name.strip_prefix(prefix)?;
        if rest.is_empty() {
            return Some(Vec::new());
        }
        rest.strip_prefix('.')?.split('.').map(|part| part.parse().ok()).collect()
    };
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
        .filter_map(|name| Some((version(&name)?, name)))
        .max()
        .map(|(_, name)| dir.join(name))
}

/// cuBLAS on the process's stream, with temporaries from the managed pool.
struct Gpu<'a> {
    cuda: &'static Cuda,
    api: &'a Api,
    handle: MutexGuard<'a, usize>,
    stream: CUstream,
    temps: Vec<*mut u8>,
    /// Whether the host may touch the operands (none is device memory).
    host_ok: bool,
}

impl<T: Element> Device<T> for Gpu<'_> {
    fn temp(&mut self, len: usize) -> Result<*mut T, CudaError> {
        let bytes = len.checked_mul(std::mem::size_of::<T>());
        let bytes = bytes.ok_or_else(|| CudaError::Internal("temporary too large".into()))?;
        let ptr = pool::alloc_managed(bytes)?;
        self.temps.push(ptr);
        Ok(ptr.cast())
    }

    fn wait(&mut self) -> Result<(), CudaError> {
        if !self.host_ok {
            return Err(CudaError::needs_host_memory("staging a strided operand on the host", ""));
        }
        crate::stats::bump(crate::stats::Counter::Wait);
        self.cuda.synchronize()
    }

    unsafe fn gemm(&mut self, g: &Gemm<T>) -> Result<(), CudaError> {
        crate::stats::bump(crate::stats::Counter::Gemm);
        let (one, zero) = (T::ONE, T::default());
        let op = |t: bool| if t { CUBLAS_OP_T } else { CUBLAS_OP_N };
        let (ta, tb, handle) = (op(g.trans_a), op(g.trans_b), *self.handle as Handle);
        let label = || format!("{} m={} n={} k={} batch {}", T::GEMM, g.m, g.n, g.k, g.batch);
        let (status, name) = crate::timing::timed(self.cuda, self.stream, label, || {
            if g.batch == 1 {
                // SAFETY: the arguments satisfy cuBLAS's requirements (`plan`); the caller
                // vouches for the matrices.
                let status = unsafe {
                    T::gemm(self.api)(handle, ta, tb, g.m, g.n, g.k, &one, g.a, g.lda, g.b, g.ldb, &zero, g.c, g.ldc)
                };
                (status, T::GEMM)
            } else {
                // SAFETY: as above.
                let status = unsafe {
                    T::batched(self.api)(
                        handle, ta, tb, g.m, g.n, g.k, &one, g.a, g.lda, g.stride_a, g.b, g.ldb, g.stride_b, &zero,
                        g.c, g.ldc, g.stride_c, g.batch,
                    )
                };
                (status, T::BATCHED)
            }
        });
        check(status, name)
            .map_err(|e| e.with_detail(format_args!("m={}, n={}, k={}, batch {}", g.m, g.n, g.k, g.batch)))
    }

    unsafe fn fill(&mut self, f: &Fill) -> Result<(), CudaError> {
        self.cuda.memset2d32_async(f.ptr as u64, f.pitch, 0, f.width, f.height, self.stream)
    }

    fn finish(&mut self) -> Result<(), CudaError> {
        if !crate::mgpu::host_waits() {
            return Ok(());
        }
        crate::stats::bump(crate::stats::Counter::Wait);
        self.cuda.stream_synchronize_raw(self.stream)
    }
}

impl Drop for Gpu<'_> {
    /// Returns the temporaries to the pool (all work on them is queued on the one stream,
    /// which the pool relies on).
    fn drop(&mut self) {
        for &ptr in &self.temps {
            if let Err(error) = pool::free(ptr) {
                record(error);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    //! The planning and staging logic against a column-major stand-in for cuBLAS that
    //! checks cuBLAS's argument rules, on host memory.

    use super::*;

    /// A column-major `gemm` with cuBLAS's semantics and argument checks.
    #[derive(Default)]
    struct Reference {
        temps: Vec<Vec<f64>>,
        calls: Vec<(i32, bool, bool)>,
        waits: usize,
        fills: usize,
    }

    impl Device<f64> for Reference {
        fn temp(&mut self, len: usize) -> Result<*mut f64, CudaError> {
            self.temps.push(vec![f64::NAN; len]);
            Ok(self.temps.last_mut().unwrap().as_mut_ptr())
        }

        fn wait(&mut self) -> Result<(), CudaError> {
            self.waits += 1;
            Ok(())
        }

        unsafe fn gemm(&mut self, g: &Gemm<f64>) -> Result<(), CudaError> {
            let (rows_a, rows_b) = (if g.trans_a { g.k } else { g.m }, if g.trans_b { g.n } else { g.k });
            let valid = g.m >= 0
                && g.n >= 0
                && g.k >= 0
                && g.batch >= 1
                && g.lda >= rows_a.max(1)
                && g.ldb >= rows_b.max(1)
                && g.ldc >= g.m.max(1)
                && (g.batch == 1 || g.stride_c != 0);
            if !valid {
                return Err(CudaError::Internal(format!("CUBLAS_STATUS_INVALID_VALUE: {g:?}")));
            }
            self.calls.push((g.batch, g.trans_a, g.trans_b));
            let (lda, ldb, ldc) = (g.lda as isize, g.ldb as isize, g.ldc as isize);
            for t in 0..g.batch as isize {
                let (a, b) =
                    (g.a.wrapping_offset(t * g.stride_a as isize), g.b.wrapping_offset(t * g.stride_b as isize));
                let c = g.c.wrapping_offset(t * g.stride_c as isize);
                for i in 0..g.m as isize {
                    for j in 0..g.n as isize {
                        let mut sum = 0.0;
                        for p in 0..g.k as isize {
                            let x =
                                if g.trans_a { a.wrapping_offset(p + i * lda) } else { a.wrapping_offset(i + p * lda) };
                            let y =
                                if g.trans_b { b.wrapping_offset(j + p * ldb) } else { b.wrapping_offset(p + j * ldb) };
                            // SAFETY: within the operands (what the test checks).
                            sum += unsafe { *x * *y };
                        }
                        // SAFETY: as above.
                        unsafe { *c.wrapping_offset(i + j * ldc) = sum };
                    }
                }
            }
            Ok(())
        }

        unsafe fn fill(&mut self, f: &Fill) -> Result<(), CudaError> {
            assert!(f.height <= 1 || f.pitch >= 4 * f.width, "{f:?}");
            self.fills += 1;
            for row in 0..f.height {
                let p = (f.ptr + row * f.pitch) as *mut u32;
                // SAFETY: within `c` (what the test checks).
                unsafe { std::slice::from_raw_parts_mut(p, f.width).fill(0) };
            }
            Ok(())
        }

        fn finish(&mut self) -> Result<(), CudaError> {
            Ok(())
        }
    }

    /// A view of shape `[batch, rows, cols]` in a buffer, laid out as `kind` says.
    struct Operand {
        buffer: Vec<f64>,
        offset: i64,
        sizes: [i64; 3],
        strides: [i64; 3],
    }

    const KINDS: [&str; 7] = ["rows", "cols", "padded", "offset-cols", "strided", "broadcast-rows", "batch-broadcast"];

    impl Operand {
        fn new(sizes: [i64; 3], kind: &str, seed: &mut u64) -> Operand {
            let [batch, rows, cols] = sizes;
            let (offset, mut strides) = match kind {
                "rows" => (0, [rows * cols, cols, 1]),
                "cols" => (0, [rows * cols, 1, rows]),
                "padded" => (0, [rows * (cols + 3), cols + 3, 1]),
                "offset-cols" => (5, [rows * (rows + 2) * cols + 1, 1, rows + 2]),
                "strided" => (2, [2 * rows * cols * 3, 3 * cols, 2]),
                "broadcast-rows" => (1, [cols + 1, 0, 1]),
                "batch-broadcast" => (0, [0, cols, 1]),
                _ => unreachable!(),
            };
            if batch <= 1 {
                strides[0] = strides[0].max(1);
            }
            let span = offset + (0..3).map(|d| (sizes[d] - 1).max(0) * strides[d]).sum::<i64>() + 1;
            let buffer = (0..span).map(|_| random(seed)).collect();
            Operand { buffer, offset, sizes, strides }
        }

        fn view(&mut self) -> View<f64> {
            View {
                ptr: self.buffer.as_mut_ptr().wrapping_offset(self.offset as isize),
                sizes: self.sizes,
                strides: self.strides,
            }
        }

        fn get(&self, t: i64, i: i64, j: i64) -> f64 {
            self.buffer[(self.offset + t * self.strides[0] + i * self.strides[1] + j * self.strides[2]) as usize]
        }
    }

    fn random(seed: &mut u64) -> f64 {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        (*seed >> 11) as f64 / (1u64 << 53) as f64 * 2.0 - 1.0
    }

    #[test]
    fn layouts_follow_unit_strides_and_leading_dimensions() {
        assert_eq!(layout(3, 4, 4, 1), Layout::Rows(4));
        assert_eq!(layout(3, 4, 1, 3), Layout::Cols(3));
        assert_eq!(layout(3, 4, 6, 1), Layout::Rows(6));
        assert_eq!(layout(3, 4, 2, 1), Layout::Strided, "overlapping rows");
        assert_eq!(layout(3, 4, 0, 1), Layout::Strided, "broadcast rows");
        assert_eq!(layout(3, 4, 8, 2), Layout::Strided);
        assert_eq!(layout(1, 4, 0, 1), Layout::Rows(4), "one row: its stride does not matter");
        assert_eq!(layout(3, 1, 7, 0), Layout::Rows(7), "one column");
        assert_eq!(layout(3, 1, 1, 0), Layout::Rows(1));
        assert_eq!(layout(1, 1, 0, 0), Layout::Rows(1));
        assert_eq!(layout(3, 4, 1 << 32, 1), Layout::Strided, "ld beyond i32");
        assert_eq!(layout(3, 4, -4, 1), Layout::Strided);
    }

    #[test]
    fn planned_calls_match_the_naive_product() {
        let mut seed = 0x1234_5678_9abc_def1u64;
        let dims = [1i64, 2, 3, 5];
        let mut cases = 0;
        for (ka, kind_a) in KINDS.iter().enumerate() {
            for kind_b in KINDS {
                for kind_c in ["rows", "cols", "padded", "offset-cols", "strided"] {
                    for &batch in &[1i64, 3] {
                        let pick = |s: &mut u64| dims[(random(s).abs() * 4.0) as usize % 4];
                        let (m, k, n) = (pick(&mut seed), pick(&mut seed), pick(&mut seed));
                        let mut a = Operand::new([batch, m, k], kind_a, &mut seed);
                        let mut b = Operand::new([batch, k, n], kind_b, &mut seed);
                        let mut c = Operand::new([batch, m, n], kind_c, &mut seed);
                        let mut device = Reference::default();
                        let what = format!("{kind_a} {kind_b} {kind_c} [{batch}, {m}, {k}, {n}]");
                        // SAFETY: the views lie within their buffers.
                        unsafe { run(&mut device, a.view(), b.view(), c.view()) }
                            .unwrap_or_else(|e| panic!("{what}: {e}"));
                        for t in 0..batch {
                            for i in 0..m {
                                for j in 0..n {
                                    let want: f64 = (0..k).map(|p| a.get(t, i, p) * b.get(t, p, j)).sum();
                                    let got = c.get(t, i, j);
                                    assert!((got - want).abs() <= 1e-12, "{what}: c[{t},{i},{j}] = {got}, want {want}");
                                }
                            }
                        }
                        let strided = [a.view(), b.view(), c.view()].map(|v| v.layout() == Layout::Strided);
                        assert_eq!(device.temps.len(), strided.iter().filter(|&&s| s).count(), "{what}: staged");
                        let waits = usize::from(strided[0] || strided[1]) + usize::from(strided[2]);
                        assert_eq!(device.waits, waits, "{what}: one wait to stage, one to copy out");
                        if m > 1 && k > 1 {
                            assert_eq!(strided[0], ka == 4 || ka == 5, "{what}: a's layout");
                        }
                        if batch > 1 && kind_c != "strided" {
                            assert_eq!(device.calls.len(), 1, "{what}: one batched call");
                        }
                        cases += 1;
                    }
                }
            }
        }
        assert_eq!(cases, 7 * 7 * 5 * 2);
    }

    #[test]
    fn transposed_operands_use_the_transpose_flags() {
        let mut seed = 7;
        let mut a = Operand::new([1, 4, 3], "cols", &mut seed);
        let mut b = Operand::new([1, 3, 5], "rows", &mut seed);
        let mut c = Operand::new([1, 4, 5], "rows", &mut seed);
        let mut device = Reference::default();
        // SAFETY: the views lie within their buffers.
        unsafe { run(&mut device, a.view(), b.view(), c.view()) }.unwrap();
        assert_eq!(device.calls, [(1, false, true)], "cᵀ = bᵀ aᵀ with aᵀ stored column-major");
        assert!(device.temps.is_empty() && device.waits == 0, "nothing staged");
    }

    #[test]
    fn k_zero_zeroes_c_and_empty_products_do_nothing() {
        let mut seed = 9;
        for kind in ["rows", "cols", "padded", "strided"] {
            let mut a = Operand::new([2, 3, 0], "rows", &mut seed);
            let mut b = Operand::new([2, 0, 4], "rows", &mut seed);
            let mut c = Operand::new([2, 3, 4], kind, &mut seed);
            let mut device = Reference::default();
            // SAFETY: the views lie within their buffers (a and b are empty).
            unsafe { run(&mut device, a.view(), b.view(), c.view()) }.unwrap();
            assert!((0..2).all(|t| (0..3).all(|i| (0..4).all(|j| c.get(t, i, j) == 0.0))), "{kind}");
            assert_eq!(device.fills, if kind == "strided" { 0 } else { 2 }, "{kind}");
            assert!(device.calls.is_empty());
        }
        let mut a = Operand::new([1, 0, 3], "rows", &mut seed);
        let mut b = Operand::new([1, 3, 4], "rows", &mut seed);
        let mut c = Operand::new([1, 0, 4], "rows", &mut seed);
        let mut device = Reference::default();
        // SAFETY: empty.
        unsafe { run(&mut device, a.view(), b.view(), c.view()) }.unwrap();
        assert!(device.calls.is_empty() && device.fills == 0);
    }

    #[test]
    fn a_batch_with_a_zero_output_stride_runs_matrix_by_matrix() {
        let mut seed = 11;
        let mut a = Operand::new([3, 2, 2], "rows", &mut seed);
        let mut b = Operand::new([3, 2, 2], "rows", &mut seed);
        let mut c = Operand::new([3, 2, 2], "batch-broadcast", &mut seed);
        let mut device = Reference::default();
        // SAFETY: the views lie within their buffers.
        unsafe { run(&mut device, a.view(), b.view(), c.view()) }.unwrap();
        assert_eq!(device.calls.len(), 3);
        let want: f64 = (0..2).map(|p| a.get(2, 1, p) * b.get(2, p, 0)).sum();
        assert!((c.get(0, 1, 0) - want).abs() < 1e-12, "the last matrix is written last");
    }

    #[test]
    fn library_versions_are_compared_numerically() {
        let dir = std::env::temp_dir().join(format!("archc-cuda-newest-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["libcublas.so", "libcublas.so.9", "libcublas.so.12", "libcublas.so.12.8.4.1", "libcublasLt.so.13"]
        {
            std::fs::write(dir.join(name), b"").unwrap();
        }
        assert_eq!(newest(&dir, "libcublas.so"), Some(dir.join("libcublas.so.12.8.4.1")));
        assert_eq!(newest(&dir, "libcublasLt.so"), Some(dir.join("libcublasLt.so.13")));
        assert_eq!(newest(&dir, "libcusparse.so"), None);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
