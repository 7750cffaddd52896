//! Inputs for `archc run`: symbolic dims bound from `--dim` (default `B=2`, others 16),
//! tensors read from `.npy` files or drawn at random (deterministically from a seed).

use archc_compiler::tir::{DType, Func};
use archc_runtime::Tensor;
use std::collections::HashMap;

/// Default size of a symbolic dim that `--dim` does not set.
pub fn default_dim(name: &str) -> i64 {
    if name == "B" {
        2
    } else {
        16
    }
}

/// Concrete shapes of `main`'s arguments.
pub fn arg_shapes(f: &Func, dims: &HashMap<String, i64>) -> Result<Vec<Vec<usize>>, String> {
    let mut env = dims.clone();
    for (_, t) in &f.args {
        for d in &t.shape {
            for s in d.symbols() {
                env.entry(s.clone()).or_insert_with(|| default_dim(&s));
            }
        }
    }
    f.args
        .iter()
        .map(|(_, t)| {
            t.shape
                .iter()
                .map(|d| {
                    let v = d.eval(&env).ok_or_else(|| format!("cannot size dim `{d}`"))?;
                    usize::try_from(v).map_err(|_| format!("dim `{d}` = {v} is negative"))
                })
                .collect()
        })
        .collect()
}

/// A random tensor: normal floats, ints in [0, 2), random bools.
pub fn random_tensor(dtype: DType, shape: &[usize], seed: u64) -> Tensor {
    let n: usize = shape.iter().product();
    let mut rng = SplitMix(seed);
    match dtype {
        DType::F32 => Tensor::from_f32(shape, (0..n).map(|_| rng.normal() as f32).collect()),
        DType::F64 | DType::C64 => Tensor::from_f64(shape, (0..n).map(|_| rng.normal()).collect()),
        DType::I64 => Tensor::from_i64(shape, (0..n).map(|_| (rng.next() % 2) as i64).collect()),
        DType::Bool => Tensor::from_bool(shape, (0..n).map(|_| rng.next() % 2 == 0).collect()),
    }
}

struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e3779b97f4a7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58476d1ce4e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d049bb133111eb);
        z ^ (z >> 31)
    }

    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Box–Muller.
    fn normal(&mut self) -> f64 {
        let u = self.uniform().max(1e-300);
        let v = self.uniform();
        (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
    }
}
