//! Matrix products by the host's BLAS: OpenBLAS from the distribution
//! (`libopenblas0-pthread` on Debian and Ubuntu), whose kernels are chosen when it loads
//! for the CPU at hand (AVX-512 on hosts that have it, AVX2 on the others; its
//! `OPENBLAS_CORETYPE` variable forces a kind, e.g. `Haswell` for the AVX2 kernels).
//!
//! Contract:
//! - [`gemm`] computes `c = a @ b` on strided row-major views and returns `true`, or does
//!   nothing and returns `false`: when no OpenBLAS was found, after [`disable`] (the
//!   CLI's `ARCHC_BLAS=off`), or
//!   when a view has no unit stride along either axis (a broadcast, a strided slice) or a
//!   size beyond BLAS's 32-bit integers. The caller then runs its own kernel: a BLAS is
//!   an accelerator, never a requirement.
//! - The library is opened once per process (`libopenblas.so.0`, then
//!   `libopenblas.so`) with its own threads set to one: every call runs on the calling
//!   thread, and callers split large products over their threads (OpenBLAS's threads,
//!   spinning after each product, would compete with theirs; measured slower).
//! - The CLI sets `OPENBLAS_NUM_THREADS=1` at the top of `main` (unless set), which keeps
//!   OpenBLAS from starting the worker threads it would never use (set to one thread
//!   afterwards, its idle worker still delayed archc's helpers: measured, 1024³ products
//!   took 5 or 10 ms at random).
//! - [`describe`] names what was loaded, for `archc devices` and benchmark reports.

use libloading::Library;
use std::ffi::{c_char, c_int, CStr};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

const ROW_MAJOR: c_int = 101;
const NO_TRANS: c_int = 111;
const TRANS: c_int = 112;

/// `cblas_?gemm`.
#[doc(hidden)]
pub type Gemm<T> = unsafe extern "C" fn(
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    c_int,
    T,
    *const T,
    c_int,
    *const T,
    c_int,
    T,
    *mut T,
    c_int,
);

/// The loaded library and the entry points archc calls.
struct Blas {
    sgemm: Gemm<f32>,
    dgemm: Gemm<f64>,
    name: String,
    // Keeps the library mapped for the process's life (the pointers above point into it).
    _lib: Library,
}

fn blas() -> Option<&'static Blas> {
    static BLAS: OnceLock<Option<Blas>> = OnceLock::new();
    if DISABLED.load(Ordering::Relaxed) {
        return None;
    }
    BLAS.get_or_init(open).as_ref()
}

static DISABLED: AtomicBool = AtomicBool::new(false);

/// Products run archc's own kernels from now on, even where OpenBLAS is installed (the
/// CLI's `ARCHC_BLAS=off`).
pub fn disable() {
    DISABLED.store(true, Ordering::Relaxed);
}

fn open() -> Option<Blas> {
    // SAFETY: OpenBLAS's initialisers only read the CPU's features and the environment.
    let lib = ["libopenblas.so.0", "libopenblas.so"].iter().find_map(|n| unsafe { Library::new(n) }.ok())?;
    // SAFETY: the symbols' types are OpenBLAS's C API (cblas.h, 32-bit `blasint`).
    unsafe {
        let sgemm = *lib.get::<Gemm<f32>>(b"cblas_sgemm\0").ok()?;
        let dgemm = *lib.get::<Gemm<f64>>(b"cblas_dgemm\0").ok()?;
        // Callers split products over their own threads; OpenBLAS's would compete.
        let set = lib.get::<unsafe extern "C" fn(c_int)>(b"openblas_set_num_threads\0").ok()?;
        set(1);
        let text = |sym: &[u8]| -> Option<String> {
            let f = lib.get::<unsafe extern "C" fn() -> *const c_char>(sym).ok()?;
            let p = f();
            (!p.is_null()).then(|| CStr::from_ptr(p).to_string_lossy().trim().to_string())
        };
        let core = text(b"openblas_get_corename\0").unwrap_or_else(|| "?".into());
        let config = text(b"openblas_get_config\0").unwrap_or_else(|| "OpenBLAS".into());
        let name = format!("{config}, {core} kernels");
        Some(Blas { sgemm, dgemm, name, _lib: lib })
    }
}

/// What [`gemm`] runs on: the BLAS loaded and its kernels, or `None`.
pub fn describe() -> Option<String> {
    blas().map(|b| b.name.clone())
}

/// An element type BLAS multiplies.
pub trait Element: Copy + 'static {
    const ONE: Self;
    const ZERO: Self;
    #[doc(hidden)]
    fn pick(s: Gemm<f32>, d: Gemm<f64>) -> Gemm<Self>;
}
impl Element for f32 {
    const ONE: f32 = 1.0;
    const ZERO: f32 = 0.0;
    fn pick(s: Gemm<f32>, _: Gemm<f64>) -> Gemm<f32> {
        s
    }
}
impl Element for f64 {
    const ONE: f64 = 1.0;
    const ZERO: f64 = 0.0;
    fn pick(_: Gemm<f32>, d: Gemm<f64>) -> Gemm<f64> {
        d
    }
}

/// A matrix operand as BLAS reads it: transposed or not, and its leading dimension.
fn layout(rows: usize, cols: usize, (rs, cs): (isize, isize)) -> Option<(c_int, c_int)> {
    let ld = |s: isize, min: usize| c_int::try_from(s).ok().filter(|&l| l as usize >= min.max(1));
    if cs == 1 || cols <= 1 {
        let s = if rows <= 1 { cols.max(1) as isize } else { rs };
        return Some((NO_TRANS, ld(s, cols)?));
    }
    if rs == 1 || rows <= 1 {
        return Some((TRANS, ld(cs, rows)?));
    }
    None
}

/// `c = a @ b` (`a: [m, k]`, `b: [k, n]`, `c: [m, n]`; strides in elements, row then
/// column) by the BLAS; `false` when it cannot (see the module docs).
///
/// # Safety
/// The pointers and strides must describe live views of those shapes; `c` must not
/// overlap `a` or `b`.
pub unsafe fn gemm<T: Element>(
    (m, n, k): (usize, usize, usize),
    a: (*const T, (isize, isize)),
    b: (*const T, (isize, isize)),
    c: (*mut T, (isize, isize)),
) -> bool {
    let Some(lib) = blas() else { return false };
    let fits = |v: usize| c_int::try_from(v).is_ok();
    if !(fits(m) && fits(n) && fits(k)) || m == 0 || n == 0 || k == 0 {
        return false;
    }
    let (Some((ta, lda)), Some((tb, ldb))) = (layout(m, k, a.1), layout(k, n, b.1)) else {
        return false;
    };
    let Some((NO_TRANS, ldc)) = layout(m, n, c.1) else { return false };
    // SAFETY: the caller's views, in the layouts checked above.
    unsafe {
        T::pick(lib.sgemm, lib.dgemm)(
            ROW_MAJOR,
            ta,
            tb,
            m as c_int,
            n as c_int,
            k as c_int,
            T::ONE,
            a.0,
            lda,
            b.0,
            ldb,
            T::ZERO,
            c.0,
            ldc,
        )
    };
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(m: usize, n: usize, k: usize, a: &[f64], b: &[f64]) -> Vec<f64> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    #[test]
    fn layouts_read_rows_or_columns_with_a_unit_stride_and_refuse_the_rest() {
        assert_eq!(layout(3, 4, (4, 1)), Some((NO_TRANS, 4)));
        assert_eq!(layout(3, 4, (8, 1)), Some((NO_TRANS, 8)));
        assert_eq!(layout(3, 4, (1, 3)), Some((TRANS, 3)));
        assert_eq!(layout(3, 4, (2, 1)), None, "rows overlap");
        assert_eq!(layout(3, 4, (8, 2)), None, "no unit stride");
        assert_eq!(layout(3, 4, (0, 1)), None, "a broadcast row");
        assert_eq!(layout(1, 4, (0, 1)), Some((NO_TRANS, 4)), "one row: its stride is never used");
    }

    #[test]
    fn products_match_a_plain_loop_in_every_layout_when_a_blas_is_present() {
        if describe().is_none() {
            eprintln!("no OpenBLAS on this host: nothing to compare");
            return;
        }
        let (m, n, k) = (5, 7, 3);
        let a: Vec<f64> = (0..m * k).map(|i| (i as f64 * 0.37).sin()).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i as f64 * 0.11).cos()).collect();
        let want = reference(m, n, k, &a, &b);
        // `a` read through its transpose's storage: column-major [m, k].
        let at: Vec<f64> = (0..k * m).map(|i| a[(i % m) * k + i / m]).collect();
        let mut c = vec![f64::NAN; m * n];
        let ok = unsafe {
            gemm(
                (m, n, k),
                (at.as_ptr(), (1, m as isize)),
                (b.as_ptr(), (n as isize, 1)),
                (c.as_mut_ptr(), (n as isize, 1)),
            )
        };
        assert!(ok);
        for (x, y) in c.iter().zip(&want) {
            assert!((x - y).abs() < 1e-12, "{x} vs {y}");
        }
        let ok = unsafe {
            gemm((m, n, k), (a.as_ptr(), (0, 1)), (b.as_ptr(), (n as isize, 1)), (c.as_mut_ptr(), (n as isize, 1)))
        };
        assert!(!ok, "a broadcast operand is left to the caller");
    }
}
