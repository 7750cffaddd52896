//! Whether a tensor holds only finite numbers: the scan a training run makes of its loss
//! and every updated state after each step, so it must cost little next to the step.
//!
//! A float is non-finite exactly when its exponent bits are all ones (NaN or infinity).
//! The scan tests that pattern on blocks of lanes with independent accumulators, which
//! vectorises; the build targets baseline x86-64 (SSE2), so on x86-64 the same loop is
//! also compiled for AVX2 and AVX-512 and picked at run time by the CPU's features.
//! Long scans are split over a team of threads when a backend lends one ([`use_team`]:
//! the MLIR CPU backend lends the threads its compiled loops run on).

use crate::tensor::{Data, Tensor};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::OnceLock;

/// Runs `f(member, team size)` once for every member of a team of threads and returns when
/// all have finished.
pub type Team = fn(&(dyn Fn(usize, usize) + Sync));

static TEAM: OnceLock<Team> = OnceLock::new();

/// Scans of at least this many floats are split over the team.
const SPLIT_MIN: usize = 1 << 16;

/// Lends the scans a team of threads (the first team lent stays).
pub fn use_team(team: Team) {
    let _ = TEAM.set(team);
}

const EXP32: u32 = 0x7f80_0000;
const EXP64: u64 = 0x7ff0_0000_0000_0000;

/// Whether every element of `t` is finite (always true for integers and bools).
pub fn is_finite(t: &Tensor) -> bool {
    match &t.data {
        Data::F32(v) => all_finite_f32(v),
        Data::F64(v) => v.iter().all(|x| x.to_bits() & EXP64 != EXP64),
        Data::C64(v) => all_finite_f32(complex_parts(v)),
        Data::I64(_) | Data::Bool(_) => true,
    }
}

/// The real and imaginary parts of `v`, in order.
fn complex_parts(v: &[crate::elem::C64]) -> &[f32] {
    // SAFETY: `C64` is num_complex's `#[repr(C)]` `{ re: f32, im: f32 }`: 2 * len f32s.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<f32>(), v.len() * 2) }
}

/// Whether no element of `v` has an all-ones exponent: on the lent team's threads when
/// `v` is long, each part on the widest vectors the CPU has.
pub fn all_finite_f32(v: &[f32]) -> bool {
    let Some(team) = TEAM.get().filter(|_| v.len() >= SPLIT_MIN) else {
        return all_finite_here(v);
    };
    let bad = AtomicBool::new(false);
    team(&|member, size| {
        let chunk = v.len().div_ceil(size);
        let part = v.get(member * chunk..v.len().min((member + 1) * chunk)).unwrap_or(&[]);
        if !all_finite_here(part) {
            bad.store(true, Ordering::Relaxed);
        }
    });
    !bad.load(Ordering::Relaxed)
}

/// [`all_finite_f32`] on the calling thread.
fn all_finite_here(v: &[f32]) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, the only feature the function enables.
            return unsafe { scan_avx512(v) };
        }
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: as above, for AVX2.
            return unsafe { scan_avx2(v) };
        }
    }
    scan(v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn scan_avx512(v: &[f32]) -> bool {
    scan(v)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn scan_avx2(v: &[f32]) -> bool {
    scan(v)
}

/// The scan itself, inlined into each feature-specific copy: 64 lanes ored into
/// independent flags per block (no loop-carried chain longer than one `or`).
#[inline(always)]
fn scan(v: &[f32]) -> bool {
    const LANES: usize = 64;
    let mut flags = [0u32; LANES];
    let blocks = v.chunks_exact(LANES);
    let tail = blocks.remainder();
    for block in blocks {
        for (f, x) in flags.iter_mut().zip(block) {
            *f |= u32::from(x.to_bits() & EXP32 == EXP32);
        }
    }
    let bad =
        flags.iter().fold(0, |a, f| a | f) | tail.iter().fold(0, |a, x| a | u32::from(x.to_bits() & EXP32 == EXP32));
    bad == 0
}

#[cfg(test)]
mod tests {
    use super::{is_finite, scan};
    use crate::elem::C64;
    use crate::tensor::{Data, Tensor};

    fn f32s(v: Vec<f32>) -> Tensor {
        Tensor::new(vec![v.len()], Data::F32(v)).unwrap()
    }

    #[test]
    fn every_non_finite_float_is_found_and_every_finite_one_passes() {
        let edge = vec![0.0, -0.0, f32::MIN_POSITIVE / 2.0, -f32::MAX, f32::MAX, 1.0];
        assert!(is_finite(&f32s(edge.clone())));
        assert!(is_finite(&f32s(vec![])));
        for bad in [f32::NAN, -f32::NAN, f32::INFINITY, f32::NEG_INFINITY] {
            let mut v = edge.clone();
            v.insert(3, bad);
            assert!(!is_finite(&f32s(v)), "{bad} not found");
        }
        let f64s = |v: Vec<f64>| Tensor::new(vec![v.len()], Data::F64(v)).unwrap();
        assert!(is_finite(&f64s(vec![f64::MAX, -0.0])));
        assert!(!is_finite(&f64s(vec![1.0, f64::NEG_INFINITY])));
        let c = |re: f32, im: f32| Tensor::new(vec![2], Data::C64(vec![C64::new(1.0, 2.0), C64::new(re, im)])).unwrap();
        assert!(is_finite(&c(3.0, -4.0)));
        assert!(!is_finite(&c(3.0, f32::NAN)) && !is_finite(&c(f32::INFINITY, 0.0)));
    }

    /// A long scan split over a team (here one that runs its members in turn) finds a bad
    /// value in any member's part, and passes a finite tensor.
    #[test]
    fn a_scan_split_over_a_team_finds_a_bad_value_in_any_part() {
        super::use_team(|f| (0..3).for_each(|m| f(m, 3)));
        let n = super::SPLIT_MIN * 2 + 5;
        let good: Vec<f32> = (0..n).map(|i| i as f32).collect();
        assert!(is_finite(&f32s(good.clone())));
        for at in [0, n / 3, n / 2, n - 1] {
            let mut v = good.clone();
            v[at] = f32::NAN;
            assert!(!is_finite(&f32s(v)), "NaN at {at} of {n}");
        }
    }

    /// A NaN or infinity at every position of lengths around the block size is found, by
    /// the dispatched scan and the portable one alike.
    #[test]
    fn the_blocked_scan_finds_a_bad_value_at_any_position() {
        for len in [1, 63, 64, 65, 128, 200] {
            let good: Vec<f32> = (0..len).map(|i| i as f32 * -1.3e36).collect();
            assert!(is_finite(&f32s(good.clone())) && scan(&good), "len {len}");
            for at in 0..len {
                for bad in [f32::NAN, f32::NEG_INFINITY] {
                    let mut v = good.clone();
                    v[at] = bad;
                    assert!(!is_finite(&f32s(v.clone())) && !scan(&v), "len {len}, {bad} at {at}");
                }
            }
        }
    }
}
