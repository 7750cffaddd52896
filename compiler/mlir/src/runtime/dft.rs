//! DFT twiddle tables for the CPU target's real transforms (`emit::fft`), computed once
//! per process and shape and copied into the buffer compiled code hands over.
//!
//! Contract: `archc_dft_table_<f32|f64>(inverse, n, k, out)` fills `out` (a fresh,
//! contiguous buffer) with the table `emit::fft` describes, entry for entry as that
//! module's `linalg.generic` would compute it (f64 math, angles reduced modulo `n` first,
//! then rounded to the element type):
//! - forward (`inverse` 0), `[n, 2k]`: entry `(t, j)` is `cos(2 pi j t / n)` for `j < k`,
//!   `-sin(2 pi (j - k) t / n)` after;
//! - inverse (`inverse` 1), `[2k, n]`: entry `(j, t)` is `c cos(2 pi f t / n)` for
//!   `j < k` and `s sin(2 pi f t / n)` after (`f = j mod k`), where `c` is `1/n` at DC and
//!   (even `n`) Nyquist and `2/n` elsewhere, and `s` is 0 there and `-2/n` elsewhere.
//!
//! A forward pass of a spectral network used to compute every layer's tables with
//! `sincos` per entry on every run: a fifth of an FNO-1d forward (`B = 32`, `N = 1024`,
//! 16 modes) on a 2-core Zen 4.

use super::rt::UnrankedMemRef;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};

type Key = (bool, usize, usize);

/// A table's entries in both element types, so a run only copies them.
struct Table {
    f64: Vec<f64>,
    f32: Vec<f32>,
}

static TABLES: LazyLock<Mutex<HashMap<Key, Arc<Table>>>> = LazyLock::new(Mutex::default);

/// At most this many distinct tables are kept; past it the cache starts afresh.
const KEPT: usize = 64;

/// `(cos, sin)` of `2 pi ((f * t) mod n) / n`.
fn angle(f: usize, t: usize, n: usize) -> (f64, f64) {
    let th = ((f * t) % n) as f64 * (std::f64::consts::TAU / n as f64);
    (th.cos(), th.sin())
}

fn forward(n: usize, k: usize) -> Vec<f64> {
    let mut v = Vec::with_capacity(n * 2 * k);
    for t in 0..n {
        for j in 0..2 * k {
            let (c, s) = angle(j % k, t, n);
            v.push(if j >= k { -s } else { c });
        }
    }
    v
}

fn inverse(k: usize, n: usize) -> Vec<f64> {
    let (inv_n, two_n, m_two_n) = (1.0 / n as f64, 2.0 / n as f64, -2.0 / n as f64);
    let mut v = Vec::with_capacity(2 * k * n);
    for j in 0..2 * k {
        let f = j % k;
        let edge = f == 0 || (n.is_multiple_of(2) && f == n / 2);
        let (wc, ws) = if edge { (inv_n, 0.0) } else { (two_n, m_two_n) };
        for t in 0..n {
            let (c, s) = angle(f, t, n);
            v.push(if j >= k { s * ws } else { c * wc });
        }
    }
    v
}

/// The table for `key`, computed on first use.
fn table(key: Key) -> Arc<Table> {
    let mut tables = TABLES.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = tables.get(&key) {
        return t.clone();
    }
    let (inv, n, k) = key;
    let f64 = if inv { inverse(k, n) } else { forward(n, k) };
    let t = Arc::new(Table { f32: f64.iter().map(|&v| v as f32).collect(), f64 });
    if tables.len() >= KEPT {
        tables.clear();
    }
    tables.insert(key, t.clone());
    t
}

/// Fills `out` with the table (see the module doc) in the element type `pick` takes; a
/// size that does not match leaves it as it is (compiled code never passes one).
///
/// # Safety
/// `out` must describe a live, contiguous buffer of `T`.
unsafe fn fill<T: Copy>(inverse: i64, n: i64, k: i64, out: *const UnrankedMemRef, pick: impl Fn(&Table) -> &[T]) {
    let (Ok(n), Ok(k)) = (usize::try_from(n), usize::try_from(k)) else { return };
    if n == 0 || k == 0 {
        return;
    }
    // SAFETY: forwarded from this function's contract.
    let out = unsafe { super::rt::contiguous::<T>(out) };
    let t = table((inverse != 0, n, k));
    let entries = pick(&t);
    if out.len() == entries.len() {
        out.copy_from_slice(entries);
    }
}

/// `archc_dft_table_f32(inverse, n, k, memref<*xf32>)` (C interface).
///
/// # Safety
/// As [`fill`].
pub unsafe extern "C" fn archc_dft_table_f32(inverse: i64, n: i64, k: i64, out: *const UnrankedMemRef) {
    unsafe { fill(inverse, n, k, out, |t| &t.f32) }
}

/// `archc_dft_table_f64(inverse, n, k, memref<*xf64>)` (C interface).
///
/// # Safety
/// As [`fill`].
pub unsafe extern "C" fn archc_dft_table_f64(inverse: i64, n: i64, k: i64, out: *const UnrankedMemRef) {
    unsafe { fill(inverse, n, k, out, |t| &t.f64) }
}

/// This module's symbols.
pub fn symbols() -> Vec<(&'static str, *mut ())> {
    vec![
        ("_mlir_ciface_archc_dft_table_f32", archc_dft_table_f32 as *mut ()),
        ("_mlir_ciface_archc_dft_table_f64", archc_dft_table_f64 as *mut ()),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_hold_numpy_s_conventions() {
        let f = forward(4, 3);
        // t = 1: cos(0), cos(pi/2), cos(pi), then -sin of the same angles.
        let row1 = &f[6..12];
        let want = [1.0, 0.0, -1.0, 0.0, -1.0, 0.0];
        assert!(row1.iter().zip(want).all(|(a, b)| (a - b).abs() < 1e-12), "{row1:?}");
        let inv = inverse(3, 4);
        // DC and Nyquist rows weigh 1/n, the others 2/n; their sine rows are 0.
        assert!((inv[0] - 0.25).abs() < 1e-12 && (inv[4] - 0.5).abs() < 1e-12 && (inv[8] - 0.25).abs() < 1e-12);
        assert!(inv[12..16].iter().all(|&v| v == 0.0) && inv[20..24].iter().all(|&v| v == 0.0));
        assert!((inv[17] + 0.5).abs() < 1e-12, "{:?}", &inv[16..20]);
    }
}
