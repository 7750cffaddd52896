//! Runtime functions called by compiled code, registered as JIT symbols.
//!
//! Random values reproduce the interpreter's streams element by element: element `i` of a
//! `rand.uniform` op with key `k` is the `i`-th draw of `ChaCha8Rng::seed_from_u64(k)`
//! (one 32-bit word per f32, two per f64); `rand.normal` takes Box-Muller pair `i / 2`
//! (four words: two f64 uniforms), the cosine half for even `i` and the sine half for odd.

use rand::{Rng, RngCore, SeedableRng};
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

/// Every runtime symbol with its address.
pub fn symbols() -> Vec<(&'static str, *mut ())> {
    let _ = ChaCha8Rng::next_u32;
    vec![
        ("archc_rand_uniform_f32", archc_rand_uniform_f32 as *mut ()),
        ("archc_rand_uniform_f64", archc_rand_uniform_f64 as *mut ()),
        ("archc_rand_normal_f32", archc_rand_normal_f32 as *mut ()),
        ("archc_rand_normal_f64", archc_rand_normal_f64 as *mut ()),
        ("memrefCopy", memrefCopy as *mut ()),
    ]
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
/// # Safety
/// `src` and `dst` must describe live buffers of one shape with `elem_size`-byte elements.
#[no_mangle]
pub unsafe extern "C" fn memrefCopy(elem_size: i64, src: *const UnrankedMemRef, dst: *const UnrankedMemRef) {
    let (src, dst) = unsafe { (&*src, &*dst) };
    let rank = src.rank as usize;
    let words = |m: &UnrankedMemRef| unsafe { std::slice::from_raw_parts(m.desc, 3 + 2 * rank) };
    let (s, d) = (words(src), words(dst));
    let sizes = &s[3..3 + rank];
    if sizes.contains(&0) {
        return;
    }
    let es = elem_size as usize;
    let mut idx = vec![0i64; rank];
    loop {
        let off = |w: &[i64]| w[2] + (0..rank).map(|i| idx[i] * w[3 + rank + i]).sum::<i64>();
        let sp = (s[1] as *const u8).wrapping_add(off(s) as usize * es);
        let dp = (d[1] as *mut u8).wrapping_add(off(d) as usize * es);
        unsafe { std::ptr::copy_nonoverlapping(sp, dp, es) };
        let mut i = rank;
        loop {
            if i == 0 {
                return;
            }
            i -= 1;
            idx[i] += 1;
            if idx[i] < sizes[i] {
                break;
            }
            idx[i] = 0;
        }
    }
}
