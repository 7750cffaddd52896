//! `einsum` as numpy writes it, on the TIR `einsum` op (distinct letters per operand, one
//! or two operands, an explicit output):
//! - `...` stands for the same axes in every operand that has it (right-aligned, equal
//!   sizes), named by fresh letters; in the output it is kept where written, and without
//!   `->` it leads the output;
//! - without `->` the output is every letter that appears once, in alphabetical order;
//! - a letter repeated within an operand takes that operand's diagonal (`ii->i`,
//!   `ii->` is the trace), as a gather of the flattened pair of axes;
//! - three or more operands are contracted left to right, each intermediate keeping the
//!   letters that a later operand or the output still reads.

use super::builtins::permute;
use super::resample::size_of;
use super::value::TVal;
use super::{Checker, R};
use crate::diag::Diagnostic;
use crate::tir::{BinaryOp, DType, Dim, Op, TensorType};
use archc_grammar::span::Span;

/// `einsum(spec, xs...)` (see the module docs).
pub fn einsum(c: &mut Checker, spec: &str, xs: &[TVal], span: Span) -> R<TVal> {
    let err = |m: String| Diagnostic::error(format!("einsum \"{spec}\": {m}"), span);
    let (lhs, out) = match spec.split_once("->") {
        Some((l, o)) => (l, Some(o)),
        None => (spec, None),
    };
    let raw: Vec<&str> = lhs.split(',').collect();
    if raw.len() != xs.len() {
        return Err(err(format!("{} operand subscripts for {} operands", raw.len(), xs.len())));
    }
    let ell = ellipsis_letters(spec, &raw, xs).map_err(err)?;
    let mut subs: Vec<Vec<char>> = Vec::new();
    for (s, x) in raw.iter().zip(xs) {
        subs.push(expand(s, x.ty.rank(), &ell).map_err(err)?);
    }
    let out: Vec<char> = match out {
        Some(o) => {
            let o: String = o.chars().filter(|c| !c.is_whitespace()).collect();
            let named = o.replace("...", "").chars().count();
            expand(&o, named + if o.contains("...") { ell.len() } else { 0 }, &ell).map_err(err)?
        }
        None => implicit_output(&subs, &ell),
    };
    if let Some(c) = out.iter().enumerate().find(|(i, c)| out[..*i].contains(c)).map(|(_, c)| c) {
        return Err(err(format!("output letter `{c}` repeats")));
    }
    let mut ops: Vec<TVal> = Vec::new();
    for (x, s) in xs.iter().zip(subs.iter_mut()) {
        ops.push(diagonals(c, x, s, span)?);
    }
    contract(c, ops, subs, &out, span)
}

/// Fresh letters for the axes `...` stands for (as many as the longest), checking that
/// every operand's `...` axes agree when right-aligned.
fn ellipsis_letters(spec: &str, raw: &[&str], xs: &[TVal]) -> Result<Vec<char>, String> {
    let used: Vec<char> = spec.chars().filter(char::is_ascii_alphabetic).collect();
    let mut dims: Vec<Dim> = Vec::new();
    for (s, x) in raw.iter().zip(xs) {
        if !s.contains("...") {
            continue;
        }
        let named = s.replace("...", "").chars().filter(|c| !c.is_whitespace()).count();
        let n =
            x.ty.rank().checked_sub(named).ok_or_else(|| format!("`{s}` has more letters than {} has axes", x.ty))?;
        let here = &x.ty.shape[..n];
        if n > dims.len() {
            let extra = dims.len();
            let mut longer = here[..n - extra].to_vec();
            longer.extend(dims.iter().cloned());
            dims = longer;
        }
        if dims[dims.len() - n..] != *here {
            let show = |d: &[Dim]| d.iter().map(Dim::to_string).collect::<Vec<_>>().join(", ");
            return Err(format!(
                "the axes `...` stands for differ between operands ([{}] and [{}])",
                show(&dims),
                show(here)
            ));
        }
    }
    let fresh = ('A'..='Z').chain('a'..='z').filter(|c| !used.contains(c));
    let letters: Vec<char> = fresh.take(dims.len()).collect();
    if letters.len() < dims.len() {
        return Err("too many axes for the letters left".into());
    }
    Ok(letters)
}

/// One operand's subscripts with `...` replaced by the last `rank - letters` of `ell`.
fn expand(s: &str, rank: usize, ell: &[char]) -> Result<Vec<char>, String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    let Some((before, after)) = s.split_once("...") else {
        return letters(&s);
    };
    let (b, a) = (letters(before)?, letters(after)?);
    let n = rank
        .checked_sub(b.len() + a.len())
        .filter(|&n| n <= ell.len())
        .ok_or_else(|| format!("`{s}` does not fit rank {rank}"))?;
    Ok(b.into_iter().chain(ell[ell.len() - n..].iter().copied()).chain(a).collect())
}

fn letters(s: &str) -> Result<Vec<char>, String> {
    match s.chars().find(|c| !c.is_ascii_alphabetic()) {
        Some(c) => Err(format!("`{c}` is not a letter")),
        None => Ok(s.chars().collect()),
    }
}

/// numpy's implicit output: the `...` letters, then the letters seen once, sorted.
fn implicit_output(subs: &[Vec<char>], ell: &[char]) -> Vec<char> {
    let all: Vec<char> = subs.iter().flatten().copied().collect();
    let mut once: Vec<char> =
        all.iter().copied().filter(|c| !ell.contains(c) && all.iter().filter(|d| *d == c).count() == 1).collect();
    once.sort_unstable();
    ell.iter().copied().chain(once).collect()
}

/// `x` with every repeated letter of `sub` reduced to its diagonal (`sub` updated).
fn diagonals(c: &mut Checker, x: &TVal, sub: &mut Vec<char>, span: Span) -> R<TVal> {
    let mut y = x.clone();
    while let Some((a, b)) = repeat_of(sub) {
        let (n, m) = (y.ty.shape[a].clone(), y.ty.shape[b].clone());
        if n != m {
            let l = sub[a];
            return Err(Diagnostic::error(format!("einsum: letter `{l}` has sizes {n} and {m} in one operand"), span));
        }
        let r = y.ty.rank();
        let perm: Vec<usize> = (0..r).filter(|&i| i != a && i != b).chain([a, b]).collect();
        let moved = permute(c, &y, perm.clone(), span)?;
        let mut shape: Vec<Dim> = moved.ty.shape[..r - 2].to_vec();
        shape.push(n.mul(&n));
        let flat = c.reshape(&moved, shape, span)?;
        let lane = vec![n.clone()];
        let i = c.emit(Op::Iota { axis: 0 }, &[], Some(TensorType::new(DType::I64, lane.clone())), span)?;
        let n_t = size_of(c, &n, &lane, span)?;
        let one = size_of(c, &Dim::constant(1), &lane, span)?;
        let stride = c.emit(Op::Binary(BinaryOp::Add), &[&n_t, &one], None, span)?;
        let idx = c.emit(Op::Binary(BinaryOp::Mul), &[&i, &stride], None, span)?;
        y = c.emit(Op::Gather { axis: r - 2 }, &[&flat, &idx], None, span)?;
        let letter = sub[a];
        let rest: Vec<char> = perm[..r - 2].iter().map(|&p| sub[p]).collect();
        *sub = rest.into_iter().chain([letter]).collect();
    }
    Ok(y)
}

/// The first pair of positions holding the same letter.
fn repeat_of(sub: &[char]) -> Option<(usize, usize)> {
    (0..sub.len()).find_map(|b| (0..b).find(|&a| sub[a] == sub[b]).map(|a| (a, b)))
}

/// Operands contracted left to right into `out`.
fn contract(c: &mut Checker, ops: Vec<TVal>, subs: Vec<Vec<char>>, out: &[char], span: Span) -> R<TVal> {
    let text = |s: &[char]| s.iter().collect::<String>();
    if ops.len() <= 2 {
        let ins: Vec<String> = subs.iter().map(|s| text(s)).collect();
        let spec = format!("{}->{}", ins.join(","), text(out));
        let refs: Vec<&TVal> = ops.iter().collect();
        return c.emit(Op::Einsum(spec), &refs, None, span);
    }
    let (mut acc, mut acc_sub) = (ops[0].clone(), subs[0].clone());
    for k in 1..ops.len() {
        let later: Vec<char> = subs[k + 1..].iter().flatten().chain(out).copied().collect();
        let mut keep: Vec<char> = Vec::new();
        for l in acc_sub.iter().chain(&subs[k]) {
            if (later.contains(l) || k + 1 == ops.len() && out.contains(l)) && !keep.contains(l) {
                keep.push(*l);
            }
        }
        let target = if k + 1 == ops.len() { out.to_vec() } else { keep };
        let spec = format!("{},{}->{}", text(&acc_sub), text(&subs[k]), text(&target));
        acc = c.emit(Op::Einsum(spec), &[&acc, &ops[k]], None, span)?;
        acc_sub = target;
    }
    Ok(acc)
}
