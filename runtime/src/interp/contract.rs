//! Contractions: batched `matmul` and general `einsum`.
//!
//! Contract:
//! - `matmul`: `[..., m, k] x [..., k, n] -> [..., m, n]`, both of rank >= 2 with identical
//!   batch dims and dtypes.
//! - `einsum`: explicit `in1[,in2...]->out` subscripts of ASCII letters (spaces ignored); a
//!   letter repeated within one operand takes the diagonal; output letters are distinct
//!   and each appears in some input; every letter not in the output is summed over.
//!
//! Both cover f32 (accumulated in f64, rounded once per output element), f64, i64
//! (wrapping) and c64 (accumulated in c128).

use crate::elem::Num;
use crate::tensor::{strides, view_indices, Data, Tensor};
use std::collections::HashMap;

pub fn matmul(a: &Tensor, b: &Tensor) -> Result<Tensor, String> {
    let (r, err) = (a.rank(), || format!("cannot matmul {} by {}", a.type_string(), b.type_string()));
    if r < 2 || b.rank() != r || a.shape[..r - 2] != b.shape[..r - 2] || a.shape[r - 1] != b.shape[r - 2] {
        return Err(err());
    }
    let dims =
        MatDims { batch: a.shape[..r - 2].iter().product(), m: a.shape[r - 2], k: a.shape[r - 1], n: b.shape[r - 1] };
    let data = match (&a.data, &b.data) {
        (Data::F32(x), Data::F32(y)) => Data::F32(matmul_kernel(x, y, &dims)),
        (Data::F64(x), Data::F64(y)) => Data::F64(matmul_kernel(x, y, &dims)),
        (Data::I64(x), Data::I64(y)) => Data::I64(matmul_kernel(x, y, &dims)),
        (Data::C64(x), Data::C64(y)) => Data::C64(matmul_kernel(x, y, &dims)),
        _ => return Err(err()),
    };
    let mut shape = a.shape.clone();
    shape[r - 1] = dims.n;
    Ok(Tensor { shape, data })
}

struct MatDims {
    batch: usize,
    m: usize,
    k: usize,
    n: usize,
}

/// Row-by-row `i, p, j` loops over contiguous rows, one accumulator row per output row.
fn matmul_kernel<T: Num>(a: &[T], b: &[T], d: &MatDims) -> Vec<T> {
    let mut out = Vec::with_capacity(d.batch * d.m * d.n);
    let mut acc = vec![T::zero(); d.n];
    for bt in 0..d.batch {
        let (a, b) = (&a[bt * d.m * d.k..], &b[bt * d.k * d.n..]);
        for i in 0..d.m {
            acc.fill(T::zero());
            for p in 0..d.k {
                let av = a[i * d.k + p].acc();
                for (s, &bv) in acc.iter_mut().zip(&b[p * d.n..(p + 1) * d.n]) {
                    *s = *s + av * bv.acc();
                }
            }
            out.extend(acc.iter().map(|&s| T::from_acc(s)));
        }
    }
    out
}

/// A parsed einsum: operand subscripts, output subscript, and every letter's size.
struct Spec {
    inputs: Vec<Vec<char>>,
    output: Vec<char>,
    sizes: HashMap<char, usize>,
}

fn parse_spec(spec: &str, xs: &[&Tensor]) -> Result<Spec, String> {
    let text: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, out) = text.split_once("->").ok_or_else(|| format!("einsum `{spec}` lacks `->`"))?;
    let inputs: Vec<Vec<char>> = lhs.split(',').map(|s| s.chars().collect()).collect();
    let output: Vec<char> = out.chars().collect();
    if inputs.len() != xs.len() {
        return Err(format!("einsum `{spec}` names {} operands, got {}", inputs.len(), xs.len()));
    }
    if let Some(c) = inputs.iter().flatten().chain(&output).find(|c| !c.is_ascii_alphabetic()) {
        return Err(format!("einsum `{spec}`: `{c}` is not a letter"));
    }
    let mut sizes = HashMap::new();
    for (sub, x) in inputs.iter().zip(xs) {
        if sub.len() != x.rank() {
            return Err(format!(
                "einsum `{spec}`: `{}` does not fit {}",
                sub.iter().collect::<String>(),
                x.type_string()
            ));
        }
        for (&c, &d) in sub.iter().zip(&x.shape) {
            if *sizes.entry(c).or_insert(d) != d {
                return Err(format!("einsum `{spec}`: letter `{c}` has sizes {} and {d}", sizes[&c]));
            }
        }
    }
    for (i, c) in output.iter().enumerate() {
        if !sizes.contains_key(c) || output[..i].contains(c) {
            return Err(format!("einsum `{spec}`: output letter `{c}` is repeated or not in any input"));
        }
    }
    Ok(Spec { inputs, output, sizes })
}

/// Per-letter strides of one operand (repeated letters add up: the diagonal).
fn letter_strides(sub: &[char], shape: &[usize], letters: &[char]) -> Vec<usize> {
    let st = strides(shape);
    letters.iter().map(|l| sub.iter().zip(&st).filter(|(c, _)| *c == l).map(|(_, s)| s).sum()).collect()
}

pub fn einsum(spec_text: &str, xs: &[&Tensor]) -> Result<Tensor, String> {
    let spec = parse_spec(spec_text, xs)?;
    let first = xs.first().ok_or("einsum of no operands")?;
    if xs.iter().any(|x| x.dtype() != first.dtype()) {
        return Err(format!("einsum `{spec_text}` operands differ in dtype"));
    }
    let mut summed: Vec<char> = spec.inputs.iter().flatten().copied().filter(|c| !spec.output.contains(c)).collect();
    summed.sort_unstable();
    summed.dedup();
    let out_shape: Vec<usize> = spec.output.iter().map(|c| spec.sizes[c]).collect();
    let sum_shape: Vec<usize> = summed.iter().map(|c| spec.sizes[c]).collect();
    // Per operand: flat offsets of every output position and of every summed position.
    let offsets: Vec<(Vec<usize>, Vec<usize>)> = spec
        .inputs
        .iter()
        .zip(xs)
        .map(|(sub, x)| {
            let out_st = letter_strides(sub, &x.shape, &spec.output);
            let sum_st = letter_strides(sub, &x.shape, &summed);
            (view_indices(&out_shape, 0, &out_st), view_indices(&sum_shape, 0, &sum_st))
        })
        .collect();
    macro_rules! run {
        ($variant:ident) => {{
            let vs: Vec<&[_]> = xs
                .iter()
                .map(|x| match &x.data {
                    Data::$variant(v) => v.as_slice(),
                    _ => unreachable!("dtypes checked"),
                })
                .collect();
            Data::$variant(einsum_kernel(&vs, &offsets, out_shape.iter().product(), sum_shape.iter().product()))
        }};
    }
    let data = match first.dtype() {
        archc_compiler::tir::DType::F32 => run!(F32),
        archc_compiler::tir::DType::F64 => run!(F64),
        archc_compiler::tir::DType::I64 => run!(I64),
        archc_compiler::tir::DType::C64 => run!(C64),
        d => return Err(format!("einsum is not defined on {d}")),
    };
    Ok(Tensor { shape: out_shape, data })
}

/// `out[o] = sum_s prod_k x_k[out_off_k[o] + sum_off_k[s]]` (one and two operands
/// have straight loops; more take the general product).
fn einsum_kernel<T: Num>(xs: &[&[T]], offsets: &[(Vec<usize>, Vec<usize>)], n_out: usize, n_sum: usize) -> Vec<T> {
    let term = |o: usize, s: usize| -> T::Acc {
        let mut terms = xs.iter().zip(offsets).map(|(x, (oo, so))| x[oo[o] + so[s]].acc());
        let first = terms.next().expect("at least one operand");
        terms.fold(first, |p, v| p * v)
    };
    (0..n_out)
        .map(|o| {
            let acc = match (xs, offsets) {
                ([x], [(oo, so)]) => so.iter().fold(T::zero(), |acc, &s| acc + x[oo[o] + s].acc()),
                ([x, y], [(xo, xs_), (yo, ys)]) => {
                    let (xb, yb) = (&x[xo[o]..], &y[yo[o]..]);
                    xs_.iter().zip(ys).fold(T::zero(), |acc, (&i, &j)| acc + xb[i].acc() * yb[j].acc())
                }
                _ => (0..n_sum).fold(T::zero(), |acc, s| acc + term(o, s)),
            };
            T::from_acc(acc)
        })
        .collect()
}
