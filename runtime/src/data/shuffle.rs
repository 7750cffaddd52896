//! Seeded permutations that are the same on every machine and every build.
//!
//! Contract of [`permutation`]`(n, seed, stream)`:
//! - The generator is ChaCha8 (`rand_chacha::ChaCha8Rng`) built with `from_seed(key)`,
//!   where `key` is `seed` as 8 little-endian bytes followed by 24 zero bytes, then
//!   `set_stream(stream)`. No `seed_from_u64`, no `rand` algorithms: only the ChaCha
//!   keystream, which is fixed by its specification: 8 rounds, state = constants, key,
//!   a 64-bit block counter from 0 (words 12-13) and the stream (words 14-15); output is
//!   the blocks' 32-bit words in order, and `next_u64` is `lo | hi << 32` of two of them.
//! - Fisher-Yates from the end: starting from the identity, for `i` from `n - 1` down to
//!   1, swap positions `i` and `j`, with `j` uniform in `0..=i` drawn by rejection:
//!   take `x = next_u64()` until `x < zone`, where `zone = (2^64 / (i + 1)) * (i + 1)`
//!   (integer division; `2^64` computed as `u64::MAX` + 1 in u128), and `j = x % (i + 1)`.
//! - The same `(n, seed, stream)` gives the same permutation forever; different streams
//!   of one seed are independent.

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// The documented generator for `(seed, stream)`.
pub fn generator(seed: u64, stream: u64) -> ChaCha8Rng {
    let mut key = [0u8; 32];
    key[..8].copy_from_slice(&seed.to_le_bytes());
    let mut rng = ChaCha8Rng::from_seed(key);
    rng.set_stream(stream);
    rng
}

/// A uniform integer in `0..bound` (`bound >= 1`), by rejection (see the module docs).
pub fn below(rng: &mut ChaCha8Rng, bound: u64) -> u64 {
    let zone = (1u128 << 64) / bound as u128 * bound as u128;
    loop {
        let x = rng.next_u64();
        if (x as u128) < zone {
            return x % bound;
        }
    }
}

/// A permutation of `0..n` (see the module docs).
pub fn permutation(n: usize, seed: u64, stream: u64) -> Vec<usize> {
    let mut rng = generator(seed, stream);
    let mut p: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        let j = below(&mut rng, i as u64 + 1) as usize;
        p.swap(i, j);
    }
    p
}

#[cfg(test)]
mod tests {
    use super::permutation;

    /// The values `scripts/gallery/common.py` computes with its own ChaCha8: the PyTorch
    /// reference scripts see the rows and batches that archc sees.
    #[test]
    fn shuffle_matches_the_python_reference() {
        assert_eq!(permutation(10, 7, 3), [4, 9, 8, 1, 2, 3, 7, 5, 0, 6]);
        let p = permutation(1000, 12345, u64::MAX);
        assert_eq!(p[..8], [247, 127, 993, 808, 734, 809, 312, 416]);
        let split = crate::data::split_rows(1797, &[0.8, 0.2], 0).unwrap();
        assert_eq!(split[1][..6], [1087, 325, 525, 454, 1539, 1496]);
    }
}
