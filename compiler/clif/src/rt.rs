//! The runtime of compiled code: the per-run context, buffer allocation, run-time
//! refusals, random key mixing and the scalar math functions compiled code calls, all
//! registered as JIT symbols ([`symbols`]).
//!
//! Contract: compiled functions receive a [`Ctx`] pointer. It holds the values of the
//! entry's size symbols (every size in compiled code is a polynomial of them), the
//! parameter buffers in the program's declaration order, the run's seed and the first
//! failure of the run. Compiled code that meets an input it must refuse calls
//! [`archc_clif_fail`] and goes on with safe values; the executor turns the recorded
//! failure into the run's error. Math functions are the ones the interpreter calls (the
//! same `std` functions, in the same precision), so elementwise results agree bit for bit
//! (f32 `erf` excepted: compiled code computes it inline, `lower/ew.rs`).

use archc_runtime::interp::random::mix;
use std::alloc::Layout;

/// What compiled code reads at run time. `#[repr(C)]`: compiled code loads the first
/// three fields at their offsets ([`SYMS`], [`PARAMS`], [`SEED`]).
#[repr(C)]
pub struct Ctx {
    /// The entry's size symbols, in the order of `Compiled::symbols`.
    pub syms: *const i64,
    /// One buffer per declared parameter (null where the function reads none).
    pub params: *const *const u8,
    /// The run's random seed.
    pub seed: i64,
    /// The module's kernel plans (compiled code passes an index).
    pub plans: *const crate::kernels::Plan,
    /// The first refusal of the run.
    pub failure: Option<String>,
}

pub const SYMS: i32 = std::mem::offset_of!(Ctx, syms) as i32;
pub const PARAMS: i32 = std::mem::offset_of!(Ctx, params) as i32;
pub const SEED: i32 = std::mem::offset_of!(Ctx, seed) as i32;

impl Ctx {
    /// Records a refusal (the first of a run wins).
    pub fn fail(&mut self, message: String) {
        self.failure.get_or_insert(message);
    }
}

/// Buffers are aligned to this many bytes.
const ALIGN: usize = 16;

/// A fresh uninitialised buffer of `bytes` bytes (a dangling aligned pointer for none):
/// a buffer of that size freed earlier on this thread ([`cache`]) or a new one.
pub extern "C" fn archc_clif_alloc(bytes: i64) -> *mut u8 {
    if bytes <= 0 {
        return ALIGN as *mut u8;
    }
    if let Some(p) = cache::take(bytes as usize) {
        return p;
    }
    let layout = Layout::from_size_align(bytes as usize, ALIGN).expect("sizes are checked before a run");
    // SAFETY: a non-zero size.
    let p = unsafe { std::alloc::alloc(layout) };
    if p.is_null() {
        std::alloc::handle_alloc_error(layout);
    }
    p
}

/// Frees a buffer of [`archc_clif_alloc`] with the same size (kept in [`cache`] when
/// there is room).
///
/// # Safety
/// `p` must come from `archc_clif_alloc(bytes)` and not be freed before.
pub unsafe extern "C" fn archc_clif_free(p: *mut u8, bytes: i64) {
    if bytes > 0 && !cache::put(p, bytes as usize) {
        let layout = Layout::from_size_align(bytes as usize, ALIGN).expect("allocated with this layout");
        // SAFETY: the caller's contract.
        unsafe { std::alloc::dealloc(p, layout) }
    }
}

/// Freed buffers kept per thread for the next allocation of the same size: a train step
/// or forward pass allocates the same sizes on every call, and returning large buffers
/// to the system (and faulting their pages in again) costs more than the work on them.
/// Buffers of at least [`cache::MIN`] bytes, at most [`cache::MAX`] bytes in all.
mod cache {
    use std::cell::RefCell;
    use std::collections::HashMap;

    pub const MIN: usize = 4096;
    pub const MAX: usize = 256 << 20;

    #[derive(Default)]
    struct Cache {
        free: HashMap<usize, Vec<usize>>,
        bytes: usize,
    }

    impl Drop for Cache {
        fn drop(&mut self) {
            for (&bytes, ptrs) in &self.free {
                let layout = std::alloc::Layout::from_size_align(bytes, super::ALIGN).expect("allocated so");
                for &p in ptrs {
                    // SAFETY: allocated with this layout and owned by the cache.
                    unsafe { std::alloc::dealloc(p as *mut u8, layout) };
                }
            }
        }
    }

    thread_local! {
        static CACHE: RefCell<Cache> = RefCell::new(Cache::default());
    }

    /// A cached buffer of exactly `bytes` bytes.
    pub fn take(bytes: usize) -> Option<*mut u8> {
        if bytes < MIN {
            return None;
        }
        CACHE
            .try_with(|c| {
                let mut c = c.borrow_mut();
                let p = c.free.get_mut(&bytes)?.pop()?;
                c.bytes -= bytes;
                Some(p as *mut u8)
            })
            .ok()
            .flatten()
    }

    /// Keeps `p` (of `bytes` bytes) for later; `false` when it does not fit.
    pub fn put(p: *mut u8, bytes: usize) -> bool {
        if bytes < MIN {
            return false;
        }
        CACHE
            .try_with(|c| {
                let mut c = c.borrow_mut();
                if c.bytes + bytes > MAX {
                    return false;
                }
                c.bytes += bytes;
                c.free.entry(bytes).or_default().push(p as usize);
                true
            })
            .unwrap_or(false)
    }
}

/// `memmove(dst, src, bytes)`.
///
/// # Safety
/// Both ranges must be live.
pub unsafe extern "C" fn archc_clif_copy(dst: *mut u8, src: *const u8, bytes: i64) {
    if bytes > 0 && !std::ptr::eq(dst, src) {
        // SAFETY: the caller's contract.
        unsafe { std::ptr::copy(src, dst, bytes as usize) }
    }
}

/// What compiled code refused (the `kind` of [`archc_clif_fail`]).
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
#[repr(i64)]
pub enum Failure {
    /// `(op, 0, 0)`: `reduce.max` (0) or `reduce.min` (1) over no elements.
    EmptyReduction = 2,
}

/// The message of a failure, worded as the interpreter's.
pub fn failure_message(kind: i64, a: i64, b: i64, c: i64) -> String {
    match kind {
        2 if a == 0 => "reduce.max over zero elements".to_string(),
        2 => "reduce.min over zero elements".to_string(),
        _ => format!("compiled code failed (code {kind}: {a}, {b}, {c})"),
    }
}

/// Records a refusal of compiled code.
///
/// # Safety
/// `ctx` must be the run's live context.
pub unsafe extern "C" fn archc_clif_fail(ctx: *mut Ctx, kind: i64, a: i64, b: i64, c: i64) {
    // SAFETY: the caller's contract.
    unsafe { (*ctx).fail(failure_message(kind, a, b, c)) }
}

/// The interpreter's frame key of a nested activation ([`mix`]).
pub extern "C" fn archc_clif_mix(key: i64, site: i64, index: i64) -> i64 {
    mix(key as u64, site as u32, index as u64) as i64
}

macro_rules! math {
    ($($name:ident: $t:ty => $f:expr;)*) => {
        $(
            pub extern "C" fn $name(x: $t) -> $t {
                let f: fn($t) -> $t = $f;
                f(x)
            }
        )*
    };
}

math! {
    archc_clif_exp_f32: f32 => f32::exp;
    archc_clif_exp_f64: f64 => f64::exp;
    archc_clif_log_f32: f32 => f32::ln;
    archc_clif_log_f64: f64 => f64::ln;
    archc_clif_log1p_f32: f32 => f32::ln_1p;
    archc_clif_log1p_f64: f64 => f64::ln_1p;
    archc_clif_tanh_f32: f32 => f32::tanh;
    archc_clif_tanh_f64: f64 => f64::tanh;
    archc_clif_sin_f32: f32 => f32::sin;
    archc_clif_sin_f64: f64 => f64::sin;
    archc_clif_cos_f32: f32 => f32::cos;
    archc_clif_cos_f64: f64 => f64::cos;
    archc_clif_erf_f32: f32 => |x| unsafe { erff(x) };
    archc_clif_erf_f64: f64 => |x| unsafe { erf(x) };
}

unsafe extern "C" {
    /// The C library's error functions (what MLIR's `math-to-libm` calls too): within an
    /// ulp or two, where the interpreter's series is exact to f64 but much slower.
    fn erff(x: f32) -> f32;
    fn erf(x: f64) -> f64;
}

pub extern "C" fn archc_clif_pow_f32(x: f32, y: f32) -> f32 {
    x.powf(y)
}

pub extern "C" fn archc_clif_pow_f64(x: f64, y: f64) -> f64 {
    x.powf(y)
}

/// `x % y` with the sign of `y` (the interpreter's `rem` on floats).
pub extern "C" fn archc_clif_rem_f32(x: f32, y: f32) -> f32 {
    let r = x % y;
    if r != 0.0 && ((r < 0.0) != (y < 0.0)) {
        r + y
    } else {
        r
    }
}

pub extern "C" fn archc_clif_rem_f64(x: f64, y: f64) -> f64 {
    let r = x % y;
    if r != 0.0 && ((r < 0.0) != (y < 0.0)) {
        r + y
    } else {
        r
    }
}

/// Every runtime symbol with its address.
pub fn symbols() -> Vec<(&'static str, *const u8)> {
    macro_rules! syms {
        ($($f:ident),* $(,)?) => { vec![$((stringify!($f), $f as *const u8)),*] };
    }
    let mut v = syms![
        archc_clif_alloc,
        archc_clif_free,
        archc_clif_copy,
        archc_clif_fail,
        archc_clif_mix,
        archc_clif_exp_f32,
        archc_clif_exp_f64,
        archc_clif_log_f32,
        archc_clif_log_f64,
        archc_clif_log1p_f32,
        archc_clif_log1p_f64,
        archc_clif_tanh_f32,
        archc_clif_tanh_f64,
        archc_clif_sin_f32,
        archc_clif_sin_f64,
        archc_clif_cos_f32,
        archc_clif_cos_f64,
        archc_clif_erf_f32,
        archc_clif_erf_f64,
        archc_clif_pow_f32,
        archc_clif_pow_f64,
        archc_clif_rem_f32,
        archc_clif_rem_f64,
    ];
    v.push(("archc_clif_op", crate::kernels::archc_clif_op as *const u8));
    v.push(("archc_clif_copy_view", crate::kernels::copy::archc_clif_copy_view as *const u8));
    v
}
