//! Two-operand real `einsum` as batched `gemm`: the letters of `a,b->out` sort into batch
//! (in `a`, `b` and `out`), `m` (in `a` and `out`), `n` (in `b` and `out`) and `k` (in
//! `a` and `b`, summed); `a` is copied into `[batch, m, k]` order, `b` into
//! `[batch, k, n]`, each batch is one `gemm`, and the `[batch, m, n]` product is copied
//! into `out`'s order. Where each role has one letter at most (`bim,iom->bom`), every
//! operand is already a strided matrix per batch and `gemm` reads and writes them in
//! place.
//!
//! Contract: [`plain`] accepts the specs this kernel runs (explicit `->`, letters only,
//! none repeated within an operand or in the output, every summed letter in both
//! operands); other specs (diagonals, letters summed in one operand, three or more
//! operands) stay with the interpreter's kernel. Shapes are checked against the spec
//! before anything is written. f32 products accumulate in f32 (as `matmul` does here and
//! on the MLIR backend), within the tier's 1e-5 of the interpreter's f64 accumulation.

use super::native::{gemm_rows, Gemm};
use super::Buf;
use archc_runtime::tensor::view_indices;
use std::collections::HashMap;

/// The operand and output subscripts of `spec`, when [`einsum`] runs it.
pub fn plain(spec: &str) -> Option<[Vec<char>; 3]> {
    let text: String = spec.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, out) = text.split_once("->")?;
    let (a, b) = lhs.split_once(',')?;
    let subs = [a.chars().collect::<Vec<_>>(), b.chars().collect(), out.chars().collect()];
    let distinct = |s: &Vec<char>| s.iter().enumerate().all(|(i, c)| c.is_ascii_alphabetic() && !s[..i].contains(c));
    if !subs.iter().all(distinct) {
        return None;
    }
    let [a, b, out] = &subs;
    let summed_in_both = a.iter().chain(b).filter(|c| !out.contains(c)).all(|c| a.contains(c) && b.contains(c));
    let outs_known = out.iter().all(|c| a.contains(c) || b.contains(c));
    (summed_in_both && outs_known).then_some(subs)
}

/// Letters in row-major order of the three packed operands.
struct Roles {
    batch: Vec<char>,
    m: Vec<char>,
    n: Vec<char>,
    k: Vec<char>,
}

fn roles([a, b, out]: &[Vec<char>; 3]) -> Roles {
    let pick = |from: &[char], keep: &dyn Fn(&char) -> bool| from.iter().copied().filter(|c| keep(c)).collect();
    Roles {
        batch: pick(out, &|c| a.contains(c) && b.contains(c)),
        m: pick(out, &|c| !b.contains(c)),
        n: pick(out, &|c| !a.contains(c)),
        k: pick(a, &|c| !out.contains(c)),
    }
}

/// `out = einsum(spec, a, b)` for a spec [`plain`] accepts.
///
/// # Safety
/// Live, contiguous buffers of their shapes holding `T`.
pub unsafe fn einsum<T: Gemm>(spec: &str, a: &Buf, b: &Buf, out: &Buf) -> Result<(), String> {
    let subs = plain(spec).ok_or_else(|| format!("einsum `{spec}` is not a plain two-operand contraction"))?;
    let sizes = letter_sizes(spec, &subs, [&a.shape, &b.shape, &out.shape])?;
    let r = roles(&subs);
    let len = |ls: &[char]| ls.iter().map(|c| sizes[c]).product::<usize>();
    let (nb, m, n, k) = (len(&r.batch), len(&r.m), len(&r.n), len(&r.k));
    if [&r.batch, &r.m, &r.n, &r.k].iter().all(|ls| ls.len() <= 1) {
        // Each role one letter at most: every operand is a strided matrix per batch.
        let st = |sub: &[char], ls: &[char]| ls.first().map_or(0, |c| strides_of(&[*c], sub, &sizes)[0]);
        let (ap, bp, cp) = (a.ptr as *const T, b.ptr as *const T, out.ptr as *mut T);
        let [sa, sb, so] = &subs;
        let parallel = if m * n * k >= 1 << 21 { gemm::Parallelism::Rayon(0) } else { gemm::Parallelism::None };
        for i in 0..nb {
            if k == 0 {
                for x in 0..m {
                    for y in 0..n {
                        // SAFETY: inside `out` (its sizes are the letters').
                        unsafe { *cp.add(i * st(so, &r.batch) + x * st(so, &r.m) + y * st(so, &r.n)) = T::default() };
                    }
                }
                continue;
            }
            if m == 0 || n == 0 {
                continue;
            }
            // SAFETY: strided views inside the live buffers, `out` apart from the operands.
            unsafe {
                gemm::gemm(
                    m,
                    n,
                    k,
                    cp.add(i * st(so, &r.batch)),
                    st(so, &r.n) as isize,
                    st(so, &r.m) as isize,
                    false,
                    ap.add(i * st(sa, &r.batch)),
                    st(sa, &r.k) as isize,
                    st(sa, &r.m) as isize,
                    bp.add(i * st(sb, &r.batch)),
                    st(sb, &r.n) as isize,
                    st(sb, &r.k) as isize,
                    T::default(),
                    T::ONE,
                    false,
                    false,
                    false,
                    parallel,
                )
            };
        }
        return Ok(());
    }
    let order = |parts: [&[char]; 3]| -> Vec<char> { parts.concat() };
    let pa = gather(unsafe { a.slice::<T>() }, &order([&r.batch, &r.m, &r.k]), &subs[0], &sizes);
    let pb = gather(unsafe { b.slice::<T>() }, &order([&r.batch, &r.k, &r.n]), &subs[1], &sizes);
    let mut pc = vec![T::default(); nb * m * n];
    for i in 0..nb {
        let (x, y, z) = (pa[i * m * k..].as_ptr(), pb[i * k * n..].as_ptr(), pc[i * m * n..].as_mut_ptr());
        // SAFETY: the packed operands hold `nb` blocks of `m*k`, `k*n` and `m*n`.
        unsafe { gemm_rows(m, k, n, x, k, 1, y, n, 1, z) };
    }
    scatter(&pc, &order([&r.batch, &r.m, &r.n]), &subs[2], &sizes, unsafe { out.slice_mut::<T>() });
    Ok(())
}

/// Every letter's size, checked: each operand's rank fits its subscript, a letter has one
/// size, and the output has the sizes of its letters.
fn letter_sizes(spec: &str, subs: &[Vec<char>; 3], shapes: [&[usize]; 3]) -> Result<HashMap<char, usize>, String> {
    let mut sizes = HashMap::new();
    for (sub, shape) in subs.iter().zip(shapes) {
        if sub.len() != shape.len() {
            return Err(format!("einsum `{spec}`: `{}` does not fit {shape:?}", sub.iter().collect::<String>()));
        }
        for (&c, &d) in sub.iter().zip(shape) {
            if *sizes.entry(c).or_insert(d) != d {
                return Err(format!("einsum `{spec}`: letter `{c}` has sizes {} and {d}", sizes[&c]));
            }
        }
    }
    Ok(sizes)
}

/// The strides of `sub`'s contiguous row-major layout, per letter of `order`.
fn strides_of(order: &[char], sub: &[char], sizes: &HashMap<char, usize>) -> Vec<usize> {
    let mut st = vec![0; sub.len()];
    let mut acc = 1;
    for i in (0..sub.len()).rev() {
        st[i] = acc;
        acc *= sizes[&sub[i]];
    }
    order.iter().map(|c| sub.iter().position(|s| s == c).map_or(0, |i| st[i])).collect()
}

/// The elements of `src` (laid out as `sub`) in row-major order of the letters `order`.
fn gather<T: Copy>(src: &[T], order: &[char], sub: &[char], sizes: &HashMap<char, usize>) -> Vec<T> {
    let dims: Vec<usize> = order.iter().map(|c| sizes[c]).collect();
    view_indices(&dims, 0, &strides_of(order, sub, sizes)).into_iter().map(|at| src[at]).collect()
}

/// Writes `vals` (row-major over the letters `order`) into `dst`, laid out as `sub`.
fn scatter<T: Copy>(vals: &[T], order: &[char], sub: &[char], sizes: &HashMap<char, usize>, dst: &mut [T]) {
    let dims: Vec<usize> = order.iter().map(|c| sizes[c]).collect();
    for (at, &v) in view_indices(&dims, 0, &strides_of(order, sub, sizes)).into_iter().zip(vals) {
        dst[at] = v;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_specs_are_two_operand_contractions_without_diagonals() {
        assert!(plain("bim,iom->bom").is_some());
        assert!(plain("ij,jk->ik").is_some());
        assert!(plain("i,i->").is_some());
        assert!(plain("ii,ij->j").is_none(), "a diagonal");
        assert!(plain("ij,k->j").is_none(), "`i` summed in one operand only");
        assert!(plain("ij,jk,kl->il").is_none(), "three operands");
        assert!(plain("ij->ji").is_none(), "one operand");
        assert!(plain("ij,jk->iki").is_none(), "a repeated output letter");
    }
}
