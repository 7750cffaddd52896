//! The winner's trained weights for `best.arch`. The space's checkpoint holds them under
//! the space's names and, for elastic (`shared`) sizes, at the largest option; `best.arch`
//! declares the same parameters and buffers in the same order under its own names and
//! at the chosen sizes. Each is taken from its counterpart at the same position (same
//! kind and rank, no dim larger): its leading block, which is what the space's slicing
//! read. Declarations that do not line up are refused, never guessed.

use archc_compiler::tir::Program;
use archc_runtime::tensor::Data;
use archc_runtime::Tensor;
use std::collections::BTreeMap;

/// `plain`'s parameters (name, value) from the candidate's `trained` values.
pub fn for_plain(
    candidate: &Program,
    plain: &Program,
    trained: &BTreeMap<String, Tensor>,
) -> Result<Vec<(String, Tensor)>, String> {
    if candidate.params.len() != plain.params.len() {
        return Err(format!(
            "the plain program declares {} parameters, the candidate {}",
            plain.params.len(),
            candidate.params.len()
        ));
    }
    let mut out = Vec::new();
    for (c, p) in candidate.params.iter().zip(&plain.params) {
        let want: Option<Vec<usize>> = p.ty.shape.iter().map(|d| d.as_const().map(|v| v as usize)).collect();
        let want = want.ok_or_else(|| format!("`{}` has a symbolic shape", p.name))?;
        let t = trained.get(&c.name).ok_or_else(|| format!("the checkpoint has no `{}`", c.name))?;
        if c.trainable != p.trainable || c.ty.dtype != p.ty.dtype {
            return Err(format!("`{}` and `{}` do not correspond", c.name, p.name));
        }
        let block = leading_block(t, &want)
            .ok_or_else(|| format!("`{}` {:?} does not hold `{}` {want:?}", c.name, t.shape(), p.name))?;
        out.push((p.name.clone(), block));
    }
    Ok(out)
}

/// The leading `want` block of `t` (same rank, no dim larger), for float tensors.
pub fn leading_block(t: &Tensor, want: &[usize]) -> Option<Tensor> {
    let shape = t.shape();
    if shape.len() != want.len() || want.iter().zip(shape).any(|(w, s)| w > s) {
        return None;
    }
    if shape == want {
        return Some(t.clone());
    }
    let mut strides = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        strides[i] = strides[i + 1] * shape[i + 1];
    }
    let count: usize = want.iter().product();
    let source = |mut k: usize| {
        let mut at = 0;
        for i in (0..want.len()).rev() {
            at += (k % want[i]) * strides[i];
            k /= want[i];
        }
        at
    };
    let data = match &t.data {
        Data::F32(v) => Data::F32((0..count).map(|k| v[source(k)]).collect()),
        Data::F64(v) => Data::F64((0..count).map(|k| v[source(k)]).collect()),
        _ => return None,
    };
    Tensor::new(want.to_vec(), data).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_leading_block_is_what_slicing_reads() {
        let t = Tensor::from_f32(&[3, 4], (0..12).map(|v| v as f32).collect());
        let b = leading_block(&t, &[2, 3]).expect("fits");
        assert_eq!(b.shape(), &[2, 3]);
        assert_eq!(b.to_f64_vec().expect("floats"), vec![0.0, 1.0, 2.0, 4.0, 5.0, 6.0]);
        assert!(leading_block(&t, &[4, 3]).is_none());
        assert!(leading_block(&t, &[12]).is_none());
    }
}
