//! How much memory running a function needs, estimated from TIR before anything runs.
//!
//! With every size symbol bound (the inputs' shapes), [`estimate`] walks a function in
//! order, keeping each value alive from its definition to its last use: the peak of the
//! live bytes, plus the parameters, plus for calls (`call`, `stack`, `scan`, `vmap`) the
//! callee's own peak while it runs. It counts the tensors a program names; backends need
//! workspace beyond that (im2col buffers, transposed copies), so it is a lower bound on
//! the true peak, which is what a refusal must rest on: a program whose estimate exceeds
//! the limit cannot run within it.
//!
//! Contract: every size is computed in checked arithmetic; a product that would overflow
//! is reported as an error, never wrapped. Symbols a function's types use but the binding
//! lacks (a callee's own dims) count as 1.

use super::{DType, Dim, Func, Program, TensorType, ValueId};
use std::collections::HashMap;

/// The estimate, and the largest single tensor (what to blame in a message).
#[derive(Clone, Debug, PartialEq)]
pub struct Estimate {
    pub peak_bytes: u128,
    pub largest: Option<(TensorType, u128)>,
}

/// The bytes of one element of `dtype` as the runtimes store it.
pub fn dtype_bytes(dtype: DType) -> u128 {
    match dtype {
        DType::Bool => 1,
        DType::F32 => 4,
        DType::F64 | DType::I64 | DType::C64 => 8,
    }
}

/// The bytes of a tensor of type `t` with symbols bound by `env`.
pub fn type_bytes(t: &TensorType, env: &HashMap<String, i64>) -> Result<u128, String> {
    let mut n: u128 = dtype_bytes(t.dtype);
    for d in &t.shape {
        let v = dim_value(d, env).ok_or_else(|| format!("the size of {t} overflows"))?;
        n = n.checked_mul(v).ok_or_else(|| format!("the size of {t} overflows"))?;
    }
    Ok(n)
}

/// A dim's value in checked arithmetic (unbound symbols count as 1; negative as 0).
fn dim_value(d: &Dim, env: &HashMap<String, i64>) -> Option<u128> {
    if let Some(c) = d.as_const() {
        return Some(c.max(0) as u128);
    }
    let missing: Vec<String> = d.symbols().into_iter().filter(|s| !env.contains_key(s)).collect();
    let v = if missing.is_empty() {
        d.checked_eval(env)
    } else {
        let mut bound = env.clone();
        bound.extend(missing.into_iter().map(|s| (s, 1)));
        d.checked_eval(&bound)
    };
    v.map(|v| v.max(0) as u128)
}

/// The estimated peak memory of running `func` of `program` (see the module docs).
pub fn estimate(program: &Program, func: &str, env: &HashMap<String, i64>) -> Result<Estimate, String> {
    let mut params: u128 = 0;
    let mut largest: Option<(TensorType, u128)> = None;
    for p in &program.params {
        let b = type_bytes(&p.ty, env)?;
        params = params.checked_add(b).ok_or("the parameters' size overflows")?;
        note_largest(&mut largest, &p.ty, b);
    }
    let mut memo = HashMap::new();
    let peak = func_peak(program, func, env, &mut memo, &mut largest, 0)?;
    let peak_bytes = peak.checked_add(params).ok_or("the estimated size overflows")?;
    Ok(Estimate { peak_bytes, largest })
}

fn note_largest(largest: &mut Option<(TensorType, u128)>, t: &TensorType, b: u128) {
    if largest.as_ref().is_none_or(|(_, l)| b > *l) {
        *largest = Some((t.clone(), b));
    }
}

/// The peak of one function's live values, arguments included.
fn func_peak(
    program: &Program,
    name: &str,
    env: &HashMap<String, i64>,
    memo: &mut HashMap<String, u128>,
    largest: &mut Option<(TensorType, u128)>,
    depth: usize,
) -> Result<u128, String> {
    if let Some(&p) = memo.get(name) {
        return Ok(p);
    }
    let Some(f) = program.func(name) else { return Ok(0) };
    if depth > 64 {
        return Ok(0);
    }
    let last_use = last_uses(f);
    let mut sizes: HashMap<ValueId, u128> = HashMap::new();
    let mut live: u128 = 0;
    for (v, t) in &f.args {
        let b = type_bytes(t, env)?;
        note_largest(largest, t, b);
        sizes.insert(*v, b);
        live = live.checked_add(b).ok_or("the estimated size overflows")?;
    }
    let mut peak = live;
    for (i, inst) in f.body.iter().enumerate() {
        let mut callee: u128 = 0;
        for c in inst.op.callees() {
            callee = callee.max(func_peak(program, c, env, memo, largest, depth + 1)?);
        }
        for (v, t) in inst.results() {
            let b = type_bytes(t, env)?;
            note_largest(largest, t, b);
            sizes.insert(v, b);
            live = live.checked_add(b).ok_or("the estimated size overflows")?;
        }
        peak = peak.max(live.checked_add(callee).ok_or("the estimated size overflows")?);
        for v in inst.args.iter().chain(inst.result_ids().collect::<Vec<_>>().iter()) {
            if last_use.get(v).is_some_and(|&l| l == i) && !f.results.contains(v) {
                if let Some(b) = sizes.remove(v) {
                    live -= b;
                }
            }
        }
    }
    memo.insert(name.to_string(), peak);
    Ok(peak)
}

/// The index of the last instruction that uses each value (results never used: their
/// own instruction).
fn last_uses(f: &Func) -> HashMap<ValueId, usize> {
    let mut last = HashMap::new();
    for (i, inst) in f.body.iter().enumerate() {
        for v in inst.result_ids() {
            last.insert(v, i);
        }
        for a in &inst.args {
            last.insert(*a, i);
        }
    }
    last
}

/// `1.5 GiB`, `320 MiB`, `12 KiB`.
pub fn human_bytes(b: u128) -> String {
    const UNITS: [&str; 6] = ["bytes", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut v = b as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{b} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tir::parse_program;

    const MLP: &str = "program p\n\nparam @w : f32[4, 1000] = zeros()\n\nfunc @main(%0: f32[B, 4] \"x\") -> (f32[B, 1000] \"y\") {\n  %1 = param() {name=\"w\"} : f32[4, 1000]\n  %2 = matmul(%0, %1) : f32[B, 1000]\n  %3 = relu(%2) : f32[B, 1000]\n  return %3\n}\n";

    #[test]
    fn the_peak_counts_live_values_and_parameters() {
        let p = parse_program(MLP).expect("parses");
        let env = HashMap::from([("B".to_string(), 10)]);
        let e = estimate(&p, "main", &env).expect("estimates");
        // At the matmul: x 160 + the read of w 16000 + the product 40000 = 56160; at the
        // relu, x and w are dead: product + relu = 80000. Plus the parameters, 16000.
        assert_eq!(e.peak_bytes, 80_000 + 16_000);
        assert_eq!(e.largest.map(|(_, b)| b), Some(40_000));
    }

    #[test]
    fn absurd_sizes_are_errors_not_wrapped() {
        let p = parse_program(MLP).expect("parses");
        let env = HashMap::from([("B".to_string(), i64::MAX)]);
        let e = estimate(&p, "main", &env).expect("fits u128");
        assert!(e.peak_bytes > u64::MAX as u128);
        let t = TensorType::new(DType::F32, vec![Dim::constant(i64::MAX); 4]);
        assert!(type_bytes(&t, &HashMap::new()).is_err());
    }

    #[test]
    fn sizes_read_well() {
        assert_eq!(human_bytes(12), "12 bytes");
        assert_eq!(human_bytes(3 << 30), "3.0 GiB");
    }
}
