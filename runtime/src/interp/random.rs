//! Randomness: the `rand.uniform` / `rand.normal` ops and parameter initialisation.
//!
//! Contract (all deterministic, ChaCha8 from `rand_chacha`):
//! - A `rand.*` op draws from `ChaCha8Rng::seed_from_u64(key)` where `key` is
//!   `interpreter seed ^ op seed ^ frame key`; the frame key is 0 in the function passed to
//!   `run` and is re-derived by [`mix`] for each call site (the instruction's first
//!   result) with an index: 0 for `call`, the stack entry, the vmap sample, or the scan
//!   step's time index (the same in a forward and a reverse scan).
//!   Uniform values are in `[0, 1)` (`rand`'s standard f32/f64 sampling, per dtype).
//!   Normal values use Box-Muller in f64 (pairs `r cos t, r sin t`), rounded to the dtype.
//! - [`init_param`] seeds `ChaCha8Rng` with `seed ^ fnv1a64(name)` (a stable hash), so a
//!   parameter's value depends only on the seed, its name and its declaration. `normal`
//!   is `mean + std * z`, `uniform` is `low + (high - low) * u` with `u` in `[0, 1)`, both
//!   computed in f64 and converted to the dtype as by `cast`.

use super::Out;
use crate::elem::Elem;
use crate::tensor::{Data, Tensor};
use archc_compiler::tir::{DType, Init, ParamDecl};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// FNV-1a, 64 bit: a stable hash of parameter names.
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// SplitMix64's finaliser: a bijective scramble of 64 bits.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The frame key of a nested activation: the parent's key, the call site, and an index
/// (stack entry, vmap sample or scan time index; 0 for `call`).
pub fn mix(key: u64, site: u32, index: u64) -> u64 {
    splitmix(key ^ splitmix(((site as u64) << 32) ^ splitmix(index)))
}

fn n_elems(out: &Out) -> usize {
    out.shape.iter().product()
}

pub(crate) fn uniform(key: u64, out: &Out) -> Result<Tensor, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(key);
    let n = n_elems(out);
    let data = match out.dtype {
        DType::F32 => Data::F32((0..n).map(|_| rng.random::<f32>()).collect()),
        DType::F64 => Data::F64((0..n).map(|_| rng.random::<f64>()).collect()),
        d => return Err(format!("rand.uniform of dtype {d}")),
    };
    Ok(Tensor { shape: out.shape.clone(), data })
}

/// `n` standard normal values (Box-Muller pairs).
fn normals(rng: &mut ChaCha8Rng, n: usize) -> Vec<f64> {
    let mut v = Vec::with_capacity(n + 1);
    while v.len() < n {
        let u1 = 1.0 - rng.random::<f64>(); // (0, 1]: ln is finite
        let u2 = rng.random::<f64>();
        let (r, t) = ((-2.0 * u1.ln()).sqrt(), std::f64::consts::TAU * u2);
        v.push(r * t.cos());
        v.push(r * t.sin());
    }
    v.truncate(n);
    v
}

pub(crate) fn normal(key: u64, out: &Out) -> Result<Tensor, String> {
    let mut rng = ChaCha8Rng::seed_from_u64(key);
    let z = normals(&mut rng, n_elems(out));
    let data = match out.dtype {
        DType::F32 => Data::F32(z.into_iter().map(|v| v as f32).collect()),
        DType::F64 => Data::F64(z),
        d => return Err(format!("rand.normal of dtype {d}")),
    };
    Ok(Tensor { shape: out.shape.clone(), data })
}

/// The concrete shape of a parameter (symbolic dims are an error).
pub fn param_shape(decl: &ParamDecl) -> Result<Vec<usize>, String> {
    decl.ty.const_shape().ok_or_else(|| format!("declared type {} is not concrete", decl.ty))
}

/// The initial value of a parameter (see the module docs).
pub fn init_param(decl: &ParamDecl, seed: u64) -> Result<Tensor, String> {
    let shape = param_shape(decl)?;
    let n: usize = shape.iter().product();
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ fnv1a64(decl.name.as_bytes()));
    let values: Vec<f64> = match decl.init {
        Init::Zeros => vec![0.0; n],
        Init::Ones => vec![1.0; n],
        Init::Constant(c) => vec![c; n],
        Init::Normal { mean, std } => normals(&mut rng, n).into_iter().map(|z| mean + std * z).collect(),
        Init::Uniform { low, high } => (0..n).map(|_| low + (high - low) * rng.random::<f64>()).collect(),
    };
    let data = match decl.ty.dtype {
        DType::F32 => Data::F32(values.iter().map(|&v| f32::from_f64(v)).collect()),
        DType::F64 => Data::F64(values),
        DType::I64 => Data::I64(values.iter().map(|&v| i64::from_f64(v)).collect()),
        DType::Bool => Data::Bool(values.iter().map(|&v| bool::from_f64(v)).collect()),
        DType::C64 => Data::C64(values.iter().map(|&v| crate::elem::C64::from_f64(v)).collect()),
    };
    Ok(Tensor { shape, data })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_known_values() {
        // Published FNV-1a test vectors.
        assert_eq!(fnv1a64(b""), 0xcbf29ce484222325);
        assert_eq!(fnv1a64(b"a"), 0xaf63dc4c8601ec8c);
        assert_eq!(fnv1a64(b"foobar"), 0x85944171f73967e8);
    }

    #[test]
    fn mix_separates_sites_and_samples() {
        let keys = [mix(0, 1, 0), mix(0, 1, 1), mix(0, 2, 0), mix(5, 1, 0)];
        for i in 0..keys.len() {
            for j in 0..i {
                assert_ne!(keys[i], keys[j]);
            }
        }
    }
}
