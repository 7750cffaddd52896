//! Runtime functions called by compiled code, registered as JIT symbols.
//!
//! Matrix products (`archc_matmul_*`, batched `archc_bmm_*`, through MLIR's C interface
//! `_mlir_ciface_*`: pointers to memref descriptors) are split over the cores
//! ([`crate::runtime::omp`]'s threads) when large, each part one single-threaded product by the
//! host's OpenBLAS where there is one ([`archc_runtime::blas`]: AVX-512 kernels on CPUs
//! that have them), else by the `gemm` crate's kernels on the strided views.
//!
//! Random values reproduce the interpreter's streams element by element: element `i` of a
//! `rand.uniform` op with key `k` is the `i`-th draw of `ChaCha8Rng::seed_from_u64(k)`
//! (one 32-bit word per f32, two per f64); `rand.normal` takes Box-Muller pair `i / 2`
//! (four words: two f64 uniforms), the cosine half for even `i` and the sine half for odd.
//!
//! Long real FFTs (`archc_rfft_*`, `archc_irfft_*`) run the interpreter's
//! [`RealFft`] row by row, so their memory is the data's (a DFT matrix would grow with the
//! square of the length) and their values are the interpreter's.
//!
//! Long sorts (`archc_argsort_*`) sort each row stably in the interpreter's order.
//!
//! Run-time refusals: compiled code that finds an input it must refuse (an index out of
//! range, a slice past the end of an axis, a reduction over no elements) calls
//! [`archc_fail`] with a [`Failure`] code and goes on with safe values; the first failure
//! of a run is kept for the calling thread, and the caller of the entry must take it with
//! [`take_failure`] after the run and fail the run with its message.

use archc_runtime::blas::{self, Element};
use archc_runtime::elem::C64;
use archc_runtime::interp::RealFft;
use archc_runtime::strided::{for_each_outer, merged_axes};
use std::cell::RefCell;
use std::cmp::Ordering;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

fn stream_at(key: i64, word: u128) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(key as u64);
    rng.set_word_pos(word);
    rng
}

pub extern "C" fn archc_rand_uniform_f32(key: i64, i: i64) -> f32 {
    stream_at(key, i as u128).random::<f32>()
}

pub extern "C" fn archc_rand_uniform_f64(key: i64, i: i64) -> f64 {
    stream_at(key, 2 * i as u128).random::<f64>()
}

fn normal(key: i64, i: i64) -> f64 {
    let mut rng = stream_at(key, 4 * (i as u128 / 2));
    let u1 = 1.0 - rng.random::<f64>();
    let u2 = rng.random::<f64>();
    let (r, t) = ((-2.0 * u1.ln()).sqrt(), std::f64::consts::TAU * u2);
    if i % 2 == 0 {
        r * t.cos()
    } else {
        r * t.sin()
    }
}

pub extern "C" fn archc_rand_normal_f32(key: i64, i: i64) -> f32 {
    normal(key, i) as f32
}

pub extern "C" fn archc_rand_normal_f64(key: i64, i: i64) -> f64 {
    normal(key, i)
}

/// The elements of a contiguous memref (a fresh buffer) behind an unranked descriptor.
///
/// # Safety
/// `m` must describe a live, contiguous row-major buffer of `T`.
pub(crate) unsafe fn contiguous<'a, T>(m: *const UnrankedMemRef) -> &'a mut [T] {
    let m = unsafe { &*m };
    let rank = m.rank as usize;
    let w = unsafe { std::slice::from_raw_parts(m.desc, 3 + 2 * rank) };
    let n: i64 = w[3..3 + rank].iter().product();
    unsafe { std::slice::from_raw_parts_mut((w[1] as *mut T).offset(w[2] as isize), n as usize) }
}

macro_rules! rand_fill {
    ($name:ident, $t:ty, $f:ident) => {
        /// Fills a fresh buffer with element `i` = `$f(key, i)` in row-major order.
        ///
        /// # Safety
        /// `m` must describe a live, contiguous buffer of this element type.
        pub unsafe extern "C" fn $name(key: i64, m: *const UnrankedMemRef) {
            for (i, x) in unsafe { contiguous::<$t>(m) }.iter_mut().enumerate() {
                *x = $f(key, i as i64);
            }
        }
    };
}

rand_fill!(archc_rand_fill_uniform_f32, f32, archc_rand_uniform_f32);
rand_fill!(archc_rand_fill_uniform_f64, f64, archc_rand_uniform_f64);
rand_fill!(archc_rand_fill_normal_f32, f32, archc_rand_normal_f32);
rand_fill!(archc_rand_fill_normal_f64, f64, archc_rand_normal_f64);

macro_rules! typed_copy {
    ($name:ident, $bytes:expr) => {
        /// `memref.copy` of one element type, routed through the runtime (see
        /// the pass `passes::route_copies`).
        ///
        /// # Safety
        /// As [`memrefCopy`].
        pub unsafe extern "C" fn $name(src: *const UnrankedMemRef, dst: *const UnrankedMemRef) {
            unsafe { memrefCopy($bytes, src, dst) }
        }
    };
}

typed_copy!(archc_copy_f32, 4);
typed_copy!(archc_copy_f64, 8);
typed_copy!(archc_copy_i64, 8);
typed_copy!(archc_copy_i32, 4);
typed_copy!(archc_copy_i1, 1);
typed_copy!(archc_copy_c64, 8);
typed_copy!(archc_copy_index, 8);

/// The typed copies by C-interface symbol.
pub fn copy_symbols() -> Vec<(&'static str, *mut ())> {
    vec![
        ("_mlir_ciface_archc_copy_f32", archc_copy_f32 as *mut ()),
        ("_mlir_ciface_archc_copy_f64", archc_copy_f64 as *mut ()),
        ("_mlir_ciface_archc_copy_i64", archc_copy_i64 as *mut ()),
        ("_mlir_ciface_archc_copy_i32", archc_copy_i32 as *mut ()),
        ("_mlir_ciface_archc_copy_i1", archc_copy_i1 as *mut ()),
        ("_mlir_ciface_archc_copy_c64", archc_copy_c64 as *mut ()),
        ("_mlir_ciface_archc_copy_index", archc_copy_index as *mut ()),
    ]
}

/// Every runtime symbol with its address.
pub fn symbols() -> Vec<(&'static str, *mut ())> {
    let mut v = copy_symbols();
    v.extend(super::dft::symbols());
    v.extend([
        ("archc_rand_uniform_f32", archc_rand_uniform_f32 as *mut ()),
        ("archc_rand_uniform_f64", archc_rand_uniform_f64 as *mut ()),
        ("archc_rand_normal_f32", archc_rand_normal_f32 as *mut ()),
        ("archc_rand_normal_f64", archc_rand_normal_f64 as *mut ()),
        ("memrefCopy", memrefCopy as *mut ()),
        ("_mlir_ciface_archc_rand_fill_uniform_f32", archc_rand_fill_uniform_f32 as *mut ()),
        ("_mlir_ciface_archc_rand_fill_uniform_f64", archc_rand_fill_uniform_f64 as *mut ()),
        ("_mlir_ciface_archc_rand_fill_normal_f32", archc_rand_fill_normal_f32 as *mut ()),
        ("_mlir_ciface_archc_rand_fill_normal_f64", archc_rand_fill_normal_f64 as *mut ()),
        ("_mlir_ciface_archc_matmul_f32", archc_matmul_f32 as *mut ()),
        ("_mlir_ciface_archc_bmm_f32", archc_bmm_f32 as *mut ()),
        ("_mlir_ciface_archc_matmul_f64", archc_matmul_f64 as *mut ()),
        ("_mlir_ciface_archc_bmm_f64", archc_bmm_f64 as *mut ()),
        ("_mlir_ciface_archc_rfft_f32", archc_rfft_f32 as *mut ()),
        ("_mlir_ciface_archc_rfft_f64", archc_rfft_f64 as *mut ()),
        ("_mlir_ciface_archc_irfft_f32", archc_irfft_f32 as *mut ()),
        ("_mlir_ciface_archc_irfft_f64", archc_irfft_f64 as *mut ()),
        ("_mlir_ciface_archc_argsort_f32_asc", archc_argsort_f32_asc as *mut ()),
        ("_mlir_ciface_archc_argsort_f32_desc", archc_argsort_f32_desc as *mut ()),
        ("_mlir_ciface_archc_argsort_f64_asc", archc_argsort_f64_asc as *mut ()),
        ("_mlir_ciface_archc_argsort_f64_desc", archc_argsort_f64_desc as *mut ()),
        ("_mlir_ciface_archc_argsort_i64_asc", archc_argsort_i64_asc as *mut ()),
        ("_mlir_ciface_archc_argsort_i64_desc", archc_argsort_i64_desc as *mut ()),
        ("archc_fail", archc_fail as *mut ()),
        ("_mlir_ciface_archc_check_begin", archc_check_begin as *mut ()),
        ("_mlir_ciface_archc_check_record", archc_check_record as *mut ()),
    ]);
    v
}

/// An unranked memref as MLIR passes it: the rank and a pointer to a ranked descriptor
/// `{allocated, aligned, offset, sizes[rank], strides[rank]}` (all 64-bit words).
#[repr(C)]
pub struct UnrankedMemRef {
    rank: i64,
    desc: *const i64,
}

/// MLIR's `memrefCopy` runtime function (strided element copy between two memrefs of one
/// shape), which lowered `memref.copy` calls for non-contiguous layouts.
///
/// Axes of size 1 are dropped and axes that are contiguous with the next one on both
/// sides are merged, so a copy between two dense buffers is one `memcpy` and a copy of a
/// dense slab into a strided view is one `memcpy` per row; copies with a strided innermost
/// axis move elements one by one, in loops typed by the element size.
///
/// # Safety
/// `src` and `dst` must describe live buffers of one shape with `elem_size`-byte elements.
#[no_mangle]
pub unsafe extern "C" fn memrefCopy(elem_size: i64, src: *const UnrankedMemRef, dst: *const UnrankedMemRef) {
    let (src, dst) = unsafe { (&*src, &*dst) };
    let rank = src.rank as usize;
    let words = |m: &UnrankedMemRef| unsafe { std::slice::from_raw_parts(m.desc, 3 + 2 * rank) };
    let (s, d) = (words(src), words(dst));
    if s[3..3 + rank].contains(&0) {
        return;
    }
    let mut axes = merged_axes(&s[3..3 + rank], &s[3 + rank..3 + 2 * rank], &d[3 + rank..3 + 2 * rank]);
    let es = elem_size as usize;
    let sp = (s[1] as *const u8).wrapping_add(s[2] as usize * es);
    let dp = (d[1] as *mut u8).wrapping_add(d[2] as usize * es);
    // The innermost axis as rows when both sides are unit-stride there.
    let (row_elems, inner) = match axes.last() {
        Some(&(n, 1, 1)) => {
            axes.pop();
            (n as usize, None)
        }
        Some(&(n, ss, ds)) => {
            axes.pop();
            (1, Some((n as usize, ss as isize * es as isize, ds as isize * es as isize)))
        }
        None => (1, None),
    };
    let row = |sp: *const u8, dp: *mut u8| match inner {
        // SAFETY: both descriptors cover the row from these addresses (same shape). The
        // views may overlap (compiled code that refused a slice goes on with clamped
        // views of one buffer), so this is a `memmove`, as fast as `memcpy` here.
        None => unsafe { std::ptr::copy(sp, dp, es * row_elems) },
        Some((n, ss, ds)) => unsafe { strided_row(es, n, sp, ss, dp, ds) },
    };
    for_each_outer(&axes, |so, dof| row(sp.wrapping_offset(so * es as isize), dp.wrapping_offset(dof * es as isize)));
}

/// `n` elements of `es` bytes from `sp` (byte stride `ss`) to `dp` (byte stride `ds`).
///
/// # Safety
/// Both ranges must be live (they may overlap; elements move in index order).
unsafe fn strided_row(es: usize, n: usize, sp: *const u8, ss: isize, dp: *mut u8, ds: isize) {
    macro_rules! typed {
        ($t:ty) => {
            for i in 0..n as isize {
                // SAFETY: element i of both rows (the caller's contract); unaligned
                // accesses because strides are in bytes.
                unsafe {
                    let v = (sp.offset(i * ss) as *const $t).read_unaligned();
                    (dp.offset(i * ds) as *mut $t).write_unaligned(v);
                }
            }
        };
    }
    match es {
        1 => typed!(u8),
        2 => typed!(u16),
        4 => typed!(u32),
        8 => typed!(u64),
        16 => typed!(u128),
        _ => {
            for i in 0..n as isize {
                // SAFETY: as above (`copy`: the rows may overlap).
                unsafe { std::ptr::copy(sp.offset(i * ss), dp.offset(i * ds), es) };
            }
        }
    }
}

/// What compiled code refused (the `kind` argument of [`archc_fail`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Failure {
    /// `(index, size, axis)`: a `gather` / `scatter_add` index outside `[-size, size)`.
    Index = 1,
    /// `(end, size, axis)`: a slice whose declared length needs `end` elements on an axis
    /// of `size`.
    SliceEnd = 2,
    /// `(op, 0, 0)`: `reduce.max` (op 0), `reduce.min` (1) or `argmax` (2) over no
    /// elements.
    EmptyReduction = 3,
}

impl Failure {
    /// The message for a failure with payload `(a, b, c)`, worded as the interpreter's.
    pub fn message(kind: i64, a: i64, b: i64, c: i64) -> String {
        match kind {
            1 => format!("index {a} out of range [-{b}, {b}) on axis {c}"),
            2 => format!("slice: axis {c} has {b} elements, but the declared type needs {a}"),
            3 => match a {
                0 => "reduce.max over zero elements".to_string(),
                1 => "reduce.min over zero elements".to_string(),
                _ => "argmax over zero elements".to_string(),
            },
            _ => format!("compiled code failed (code {kind}: {a}, {b}, {c})"),
        }
    }
}

thread_local! {
    static FAILED: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Records that the running entry refused its input (the first failure of a run wins).
pub extern "C" fn archc_fail(kind: i64, a: i64, b: i64, c: i64) {
    FAILED.with(|f| {
        f.borrow_mut().get_or_insert_with(|| Failure::message(kind, a, b, c));
    });
}

/// `archc_check_begin(memref<4xi64>)`: zeroes a fresh check record (see
/// [`archc_check_record`]; the GPU runners queue the fill on their stream instead).
///
/// # Safety
/// `rec` must describe a live, contiguous buffer of 4 `i64` in host memory.
pub unsafe extern "C" fn archc_check_begin(rec: *const UnrankedMemRef) {
    unsafe { contiguous::<i64>(rec) }.fill(0);
}

/// `archc_check_record(memref<4xi64>)`: a check whose condition compiled code computed
/// into a record `[kind or 0, a, b, c]` (the GPU target's index checks, see `emit::check`),
/// read where it lies: a kind other than 0 is recorded as [`archc_fail`] would. The GPU
/// runners register their own, which copies the record out of device memory.
///
/// # Safety
/// `rec` must describe a live, contiguous buffer of 4 `i64` in host memory.
pub unsafe extern "C" fn archc_check_record(rec: *const UnrankedMemRef) {
    let r = unsafe { contiguous::<i64>(rec) };
    if let [kind, a, b, c] = *r {
        if kind != 0 {
            archc_fail(kind, a, b, c);
        }
    }
}

/// Records a failure on this thread unless one is recorded already (the first wins):
/// how a parallel region hands its helpers' refusals to the thread that runs the entry.
pub fn record_failure(message: String) {
    FAILED.with(|f| {
        f.borrow_mut().get_or_insert(message);
    });
}

/// The failure compiled code recorded on this thread since the last call, if any.
pub fn take_failure() -> Option<String> {
    FAILED.with(|f| f.borrow_mut().take())
}

/// Element `(i, j)` of a 2-d view.
///
/// # Safety
/// `(i, j)` must be inside the view, over a live buffer.
unsafe fn at<T>(m: &MemRef<T, 2>, i: i64, j: i64) -> *mut T {
    unsafe { m.aligned.offset((m.offset + i * m.strides[0] + j * m.strides[1]) as isize) }
}

/// `y[r, :] = rfft(x[r, :])[..k]` for each row `r` of `x: [R, n]` (`y: [R, k]`).
///
/// # Safety
/// Live views of those shapes; `y` does not overlap `x`.
unsafe fn rfft_rows<T: Copy + Into<f64>>(x: &MemRef<T, 2>, y: &MemRef<C64, 2>) {
    let (rows, n, k) = (x.sizes[0], x.sizes[1], y.sizes[1]);
    if rows == 0 || n == 0 {
        return;
    }
    let plans = RealFft::new(n as usize);
    for r in 0..rows {
        let run = (0..n).map(|t| unsafe { *at(x, r, t) }.into());
        for (j, z) in plans.forward(run, k as usize).iter().enumerate() {
            unsafe { *at(y, r, j as i64) = C64::new(z.re as f32, z.im as f32) };
        }
    }
}

/// `y[r, :] = irfft(complex(re[r, :], im[r, :]), n)` for each row (`re, im: [R, k]`,
/// `y: [R, n]`), rounded to `T` by `round`.
///
/// # Safety
/// Live views of those shapes; `y` overlaps neither input.
unsafe fn irfft_rows<T: Copy + Into<f64>>(re: &MemRef<T, 2>, im: &MemRef<T, 2>, y: &MemRef<T, 2>, round: fn(f64) -> T) {
    let (rows, k, n) = (re.sizes[0], re.sizes[1], y.sizes[1]);
    if rows == 0 || n == 0 {
        return;
    }
    let plans = RealFft::new(n as usize);
    for r in 0..rows {
        let half = (0..k).map(|j| unsafe { ((*at(re, r, j)).into(), (*at(im, r, j)).into()) });
        for (t, v) in plans.inverse(half).into_iter().enumerate() {
            unsafe { *at(y, r, t as i64) = round(v) };
        }
    }
}

macro_rules! fft_fns {
    ($t:ty, $rfft:ident, $irfft:ident) => {
        /// # Safety
        /// See [`rfft_rows`].
        pub unsafe extern "C" fn $rfft(x: *const MemRef<$t, 2>, y: *const MemRef<C64, 2>) {
            unsafe { rfft_rows(&*x, &*y) }
        }

        /// # Safety
        /// See [`irfft_rows`].
        pub unsafe extern "C" fn $irfft(re: *const MemRef<$t, 2>, im: *const MemRef<$t, 2>, y: *const MemRef<$t, 2>) {
            unsafe { irfft_rows(&*re, &*im, &*y, |v| v as $t) }
        }
    };
}

fft_fns!(f32, archc_rfft_f32, archc_irfft_f32);
fft_fns!(f64, archc_rfft_f64, archc_irfft_f64);

/// `y[r, :]` = the indices that sort row `r` of `x: [R, n]` (`y: [R, n]` i64), stably, in
/// the interpreter's order (`archc_runtime::interp::sort`: NaN largest, `-0.0 == 0.0`);
/// descending keeps equal values in their order too.
///
/// # Safety
/// Live views of those shapes; `y` does not overlap `x`.
unsafe fn argsort_rows<T: Copy>(x: &MemRef<T, 2>, y: &MemRef<i64, 2>, order: fn(T, T) -> Ordering, descending: bool) {
    let (rows, n) = (x.sizes[0], x.sizes[1]);
    let mut row: Vec<T> = Vec::with_capacity(n as usize);
    let mut idx: Vec<usize> = Vec::with_capacity(n as usize);
    for r in 0..rows {
        row.clear();
        row.extend((0..n).map(|j| unsafe { *at(x, r, j) }));
        idx.clear();
        idx.extend(0..n as usize);
        match descending {
            false => idx.sort_by(|&i, &j| order(row[i], row[j])),
            true => idx.sort_by(|&i, &j| order(row[j], row[i])),
        }
        for (k, &i) in idx.iter().enumerate() {
            unsafe { *at(y, r, k as i64) = i as i64 };
        }
    }
}

fn order_f32(a: f32, b: f32) -> Ordering {
    archc_runtime::interp::sort::sort_order(f64::from(a), f64::from(b))
}

fn order_f64(a: f64, b: f64) -> Ordering {
    archc_runtime::interp::sort::sort_order(a, b)
}

macro_rules! argsort_fns {
    ($t:ty, $order:expr, $asc:ident, $desc:ident) => {
        /// # Safety
        /// See [`argsort_rows`].
        pub unsafe extern "C" fn $asc(x: *const MemRef<$t, 2>, y: *const MemRef<i64, 2>) {
            unsafe { argsort_rows(&*x, &*y, $order, false) }
        }

        /// # Safety
        /// See [`argsort_rows`].
        pub unsafe extern "C" fn $desc(x: *const MemRef<$t, 2>, y: *const MemRef<i64, 2>) {
            unsafe { argsort_rows(&*x, &*y, $order, true) }
        }
    };
}

argsort_fns!(f32, order_f32, archc_argsort_f32_asc, archc_argsort_f32_desc);
argsort_fns!(f64, order_f64, archc_argsort_f64_asc, archc_argsort_f64_desc);
argsort_fns!(i64, |a: i64, b: i64| a.cmp(&b), archc_argsort_i64_asc, archc_argsort_i64_desc);

/// A ranked memref descriptor as MLIR's C interface passes it.
#[repr(C)]
pub struct MemRef<T, const R: usize> {
    allocated: *mut T,
    aligned: *mut T,
    offset: i64,
    sizes: [i64; R],
    strides: [i64; R],
}

/// Products of at least this many multiply-adds (m * n * k) are split over the cores
/// (below it, handing half to another thread costs more than it saves). A fork to a
/// spinning helper costs about a microsecond, a 2^18 product some 5-10 µs: at 2^18
/// instead of 2^21 a MNIST-1D CNN epoch took 15.9 against 17.4 ms and a digits epoch 0.92
/// against 0.96 ms (2-core Zen 4), mnist_5k unchanged.
pub const PARALLEL_MACS: usize = 1 << 18;

/// Splits of the larger output dimension are multiples of this many elements (a 64-byte
/// line of f32).
const SPLIT_ALIGN: usize = 16;

/// Parts per core of a split product. One: every part packs the operand all parts share
/// (OpenBLAS copies it into its panel layout per call), so more parts repeat that copy;
/// a part its core has not started when the caller finishes is taken by the caller.
const SPLIT_PARTS: usize = 1;

/// A raw pointer shared by the members of a team that write disjoint parts of it.
struct Shared<T>(*mut T);
impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<T> Copy for Shared<T> {}
// SAFETY: members only touch disjoint elements (or read), and the fork joins them.
unsafe impl<T> Sync for Shared<T> {}
unsafe impl<T> Send for Shared<T> {}

/// `c = a @ b` for strided row-major views (`c` is overwritten); large products are split
/// by output rows or columns into one part per core, which the cores
/// ([`crate::runtime::omp::parallel`]) take in turn, each part one single-threaded product
/// ([`matmul_part`]).
///
/// # Safety
/// The descriptors must describe live, non-overlapping views with `a: [m, k]`, `b: [k, n]`,
/// `c: [m, n]`.
unsafe fn matmul<T: Copy + 'static + Default + Sync + Element>(
    a: &MemRef<T, 2>,
    b: &MemRef<T, 2>,
    c: &MemRef<T, 2>,
    one: T,
) {
    let (m, n) = (a.sizes[0] as usize, b.sizes[1] as usize);
    let team = if m * n * a.sizes[1] as usize >= PARALLEL_MACS { crate::runtime::omp::max_team() } else { 1 };
    if team < 2 || m.max(n) < 2 * SPLIT_ALIGN {
        // SAFETY: the caller's views.
        unsafe { matmul_part(a, b, c, one, 0..m, 0..n) };
        return;
    }
    let (a, b, c) =
        (Shared(a as *const _ as *mut MemRef<T, 2>), Shared(b as *const _ as *mut _), Shared(c as *const _ as *mut _));
    let by_cols = n >= m;
    let len = if by_cols { n } else { m };
    // Parts taken in turn: a member that comes late (asleep, descheduled) takes none.
    let chunk = len.div_ceil(SPLIT_PARTS * team).next_multiple_of(SPLIT_ALIGN);
    let parts = len.div_ceil(chunk);
    let next = std::sync::atomic::AtomicUsize::new(0);
    crate::runtime::omp::parallel(&|_, _| loop {
        let p = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        if p >= parts {
            return;
        }
        let part = p * chunk..((p + 1) * chunk).min(len);
        let (rows, cols) = if by_cols { (0..m, part) } else { (part, 0..n) };
        let (a, b, c) = (a, b, c);
        // SAFETY: the caller's views; parts write disjoint blocks of `c`.
        unsafe { matmul_part(&*a.0, &*b.0, &*c.0, one, rows, cols) };
    });
}

/// `c[rows, cols] = a[rows, :] @ b[:, cols]` by one single-threaded call of the host's
/// BLAS, or of the `gemm` crate where there is none or it cannot read these views.
///
/// # Safety
/// As [`matmul`], with the ranges inside the views.
unsafe fn matmul_part<T: Copy + 'static + Default + Element>(
    a: &MemRef<T, 2>,
    b: &MemRef<T, 2>,
    c: &MemRef<T, 2>,
    one: T,
    rows: std::ops::Range<usize>,
    cols: std::ops::Range<usize>,
) {
    let k = a.sizes[1] as usize;
    let (m, n) = (rows.len(), cols.len());
    let (r0, c0) = (rows.start as isize, cols.start as isize);
    let (pa, pb, pc) = unsafe {
        (
            a.aligned.offset(a.offset as isize + r0 * a.strides[0] as isize),
            b.aligned.offset(b.offset as isize + c0 * b.strides[1] as isize),
            c.aligned.offset(c.offset as isize + r0 * c.strides[0] as isize + c0 * c.strides[1] as isize),
        )
    };
    let strides = |m: &MemRef<T, 2>| (m.strides[0] as isize, m.strides[1] as isize);
    // SAFETY: the caller's views, offset to the part.
    if unsafe { blas::gemm((m, n, k), (pa as *const T, strides(a)), (pb as *const T, strides(b)), (pc, strides(c))) } {
        return;
    }
    if k == 0 {
        for i in 0..m {
            for j in 0..n {
                unsafe {
                    *pc.offset(i as isize * c.strides[0] as isize + j as isize * c.strides[1] as isize) = T::default()
                };
            }
        }
        return;
    }
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            pc,
            c.strides[1] as isize,
            c.strides[0] as isize,
            false,
            pa,
            a.strides[1] as isize,
            a.strides[0] as isize,
            pb,
            b.strides[1] as isize,
            b.strides[0] as isize,
            T::default(),
            one,
            false,
            false,
            false,
            gemm::Parallelism::None,
        )
    }
}

/// The view `i` of a batch `[batch, rows, cols]` as a 2-d descriptor.
fn batch_view<T>(x: &MemRef<T, 3>, i: i64) -> MemRef<T, 2> {
    MemRef {
        allocated: x.allocated,
        aligned: x.aligned,
        offset: x.offset + i * x.strides[0],
        sizes: [x.sizes[1], x.sizes[2]],
        strides: [x.strides[1], x.strides[2]],
    }
}

macro_rules! matmul_fns {
    ($t:ty, $mm:ident, $bmm:ident) => {
        /// # Safety
        /// See [`matmul`].
        pub unsafe extern "C" fn $mm(a: *const MemRef<$t, 2>, b: *const MemRef<$t, 2>, c: *const MemRef<$t, 2>) {
            unsafe { matmul(&*a, &*b, &*c, 1.0) }
        }

        /// # Safety
        /// See [`matmul`]; batched over axis 0.
        pub unsafe extern "C" fn $bmm(a: *const MemRef<$t, 3>, b: *const MemRef<$t, 3>, c: *const MemRef<$t, 3>) {
            let (a, b, c) = unsafe { (&*a, &*b, &*c) };
            let batch = a.sizes[0] as usize;
            let macs = batch * (a.sizes[1] * a.sizes[2] * b.sizes[2]) as usize;
            if batch >= 2 && macs >= PARALLEL_MACS && crate::runtime::omp::max_team() > 1 {
                // Whole products per core.
                let (a, b, c) = (
                    Shared(a as *const _ as *mut MemRef<$t, 3>),
                    Shared(b as *const _ as *mut _),
                    Shared(c as *const _ as *mut _),
                );
                crate::runtime::omp::parallel(&|tid, size| {
                    let (a, b, c) = (a, b, c);
                    let (a, b, c) = unsafe { (&*a.0, &*b.0, &*c.0) };
                    let chunk = batch.div_ceil(size);
                    for i in (tid * chunk).min(batch)..((tid + 1) * chunk).min(batch) {
                        let (av, bv, cv) = (batch_view(a, i as i64), batch_view(b, i as i64), batch_view(c, i as i64));
                        let (m, n) = (av.sizes[0] as usize, bv.sizes[1] as usize);
                        // SAFETY: product i of the batch; members write disjoint products.
                        unsafe { matmul_part(&av, &bv, &cv, 1.0, 0..m, 0..n) }
                    }
                });
                return;
            }
            for i in 0..a.sizes[0] {
                unsafe { matmul(&batch_view(a, i), &batch_view(b, i), &batch_view(c, i), 1.0) }
            }
        }
    };
}

matmul_fns!(f32, archc_matmul_f32, archc_bmm_f32);
matmul_fns!(f64, archc_matmul_f64, archc_bmm_f64);

/// Readies the process for compiled code, once per backend: lends the runtime's
/// finiteness scans (run after every train step) the threads compiled loops run on, and
/// tunes the allocator ([`tune_allocator`]).
pub fn prepare_host() {
    archc_runtime::finite::use_team(crate::runtime::omp::parallel);
    tune_allocator();
}

/// Keeps freed tensor buffers in the process heap: compiled code allocates and frees
/// every intermediate each run, and with glibc's defaults buffers above 128 KiB are
/// mapped and unmapped each time, so every run pays page faults to re-zero them (a
/// quarter of an FNO forward pass). glibc only.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        extern "C" {
            fn mallopt(param: i32, value: i32) -> i32;
        }
        const M_TRIM_THRESHOLD: i32 = -1;
        const M_MMAP_THRESHOLD: i32 = -3;
        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            // SAFETY: mallopt only changes allocator tuning parameters.
            unsafe {
                mallopt(M_MMAP_THRESHOLD, 32 << 20);
                mallopt(M_TRIM_THRESHOLD, 1 << 30);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A naive element-by-element copy of strided views: the reference for `memrefCopy`.
    fn naive(sizes: &[i64], src: &[u32], so: i64, ss: &[i64], dst: &mut [u32], dof: i64, ds: &[i64]) {
        let n: i64 = sizes.iter().product();
        for flat in 0..n {
            let (mut rem, mut a, mut b) = (flat, so, dof);
            for i in (0..sizes.len()).rev() {
                let k = rem % sizes[i];
                rem /= sizes[i];
                a += k * ss[i];
                b += k * ds[i];
            }
            dst[b as usize] = src[a as usize];
        }
    }

    /// `memrefCopy` agrees with an element loop on dense, transposed, sliced and
    /// size-1-axis views.
    #[test]
    fn memref_copy_matches_element_loop() {
        type Case = (Vec<i64>, i64, Vec<i64>, i64, Vec<i64>);
        let cases: Vec<Case> = vec![
            (vec![], 3, vec![], 5, vec![]),
            (vec![2, 3, 4], 0, vec![12, 4, 1], 0, vec![12, 4, 1]),
            (vec![2, 3, 4], 1, vec![12, 4, 1], 2, vec![1, 8, 2]),
            (vec![3, 1, 4], 2, vec![20, 7, 1], 0, vec![4, 4, 1]),
            (vec![5, 4], 0, vec![1, 5], 3, vec![9, 2]),
            (vec![2, 2, 3], 4, vec![30, 6, 2], 1, vec![12, 6, 1]),
            (vec![4, 1, 1, 6], 0, vec![6, 6, 6, 1], 0, vec![7, 7, 7, 1]),
        ];
        for (sizes, so, ss, dof, ds) in cases {
            let src: Vec<u32> = (0..200).collect();
            let mut want = vec![u32::MAX; 200];
            naive(&sizes, &src, so, &ss, &mut want, dof, &ds);
            let mut got = vec![u32::MAX; 200];
            let desc = |p: i64, off: i64, st: &[i64]| [vec![p, p, off], sizes.clone(), st.to_vec()].concat();
            let sd = desc(src.as_ptr() as i64, so, &ss);
            let dd = desc(got.as_mut_ptr() as i64, dof, &ds);
            let rank = sizes.len() as i64;
            // SAFETY: both descriptors stay within the 200-element buffers.
            unsafe {
                memrefCopy(4, &UnrankedMemRef { rank, desc: sd.as_ptr() }, &UnrankedMemRef { rank, desc: dd.as_ptr() })
            };
            assert_eq!(got, want, "sizes {sizes:?} src {so} {ss:?} dst {dof} {ds:?}");
        }
    }

    /// Views of one buffer that overlap (what compiled code copies after refusing a slice,
    /// with clamped offsets) are copied as by `memmove`, without undefined behaviour.
    #[test]
    fn memref_copy_of_overlapping_rows_is_a_move() {
        let mut buf: Vec<u32> = (0..16).collect();
        let p = buf.as_mut_ptr() as i64;
        let (src, dst) = ([p, p, 0, 2, 6, 6, 1], [p, p, 2, 2, 6, 6, 1]);
        // SAFETY: both views lie inside the 16-element buffer.
        unsafe {
            memrefCopy(
                4,
                &UnrankedMemRef { rank: 2, desc: src.as_ptr() },
                &UnrankedMemRef { rank: 2, desc: dst.as_ptr() },
            )
        };
        let want: Vec<u32> = [vec![0, 1], (0..12).collect(), vec![14, 15]].concat();
        assert_eq!(buf, want);
    }

    /// The fill functions give the per-element streams, in row-major order.
    #[test]
    fn fills_match_the_element_functions() {
        let mut buf = vec![0f32; 6];
        let desc: [i64; 7] = [buf.as_mut_ptr() as i64, buf.as_mut_ptr() as i64, 0, 2, 3, 3, 1];
        let m = UnrankedMemRef { rank: 2, desc: desc.as_ptr() };
        // SAFETY: the descriptor covers `buf` (2 x 3, contiguous).
        unsafe { archc_rand_fill_normal_f32(77, &m) };
        let want: Vec<f32> = (0..6).map(|i| archc_rand_normal_f32(77, i)).collect();
        assert_eq!(buf, want);
        let mut one = [0f64; 1];
        let desc0: [i64; 3] = [one.as_mut_ptr() as i64, one.as_mut_ptr() as i64, 0];
        // SAFETY: a rank-0 descriptor of one f64.
        unsafe { archc_rand_fill_uniform_f64(5, &UnrankedMemRef { rank: 0, desc: desc0.as_ptr() }) };
        assert_eq!(one[0], archc_rand_uniform_f64(5, 0));
    }
}
