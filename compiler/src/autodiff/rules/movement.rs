//! Data movement, selection and casts: cotangents are moved back to where the values
//! came from.

use super::super::emit::{Emitter, Res, V};
use crate::tir::{Dim, Op};

/// `select(c, a, b)`: `ct` goes to `a` where `c`, else to `b`.
pub fn select(e: &mut Emitter, c: V, ct: V) -> Res<Vec<Option<V>>> {
    let zero = e.fill(0.0, &e.ty(ct))?;
    let ga = e.op(Op::Select, &[c, ct, zero], None)?;
    let gb = e.op(Op::Select, &[c, zero, ct], None)?;
    Ok(vec![None, Some(ga), Some(gb)])
}

/// `cast(x)`: cast the cotangent back (no gradient into integers or booleans).
pub fn cast(e: &mut Emitter, x: V, ct: V) -> Res<Vec<Option<V>>> {
    let xt = e.ty(x);
    if !xt.dtype.is_inexact() || !e.ty(ct).dtype.is_inexact() {
        return Ok(vec![None]);
    }
    if xt.dtype == crate::tir::DType::C64 || e.ty(ct).dtype == crate::tir::DType::C64 {
        return Err("no gradient rule for casts between real and complex; use real/imag/complex".into());
    }
    Ok(vec![Some(e.cast(ct, xt.dtype)?)])
}

/// `permute(x, perm)`: the inverse permutation.
pub fn permute_back(e: &mut Emitter, perm: &[usize], ct: V) -> Res<V> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    e.permute(ct, inv)
}

/// `slice(x)`: the cotangent, dilated by the step and padded back to `x`'s extent.
pub fn slice_back(e: &mut Emitter, x: V, start: &[Dim], end: &[Dim], step: &[i64], ct: V) -> Res<V> {
    let xt = e.ty(x);
    let mut g = ct;
    for ax in 0..xt.rank() {
        let size = &xt.shape[ax];
        let trivial = start[ax].as_const() == Some(0) && &end[ax] == size && step[ax] == 1;
        if trivial {
            continue;
        }
        g = e.dilate(g, ax, step[ax])?;
        let placed = e.ty(g).shape[ax].clone();
        let after = size.sub(&start[ax]).sub(&placed);
        g = e.pad_dims(g, ax, &start[ax], &after)?;
    }
    Ok(g)
}

/// `concat(xs, axis)`: each operand gets its slice of the cotangent.
pub fn concat_back(e: &mut Emitter, axis: usize, args: &[V], ct: V) -> Res<Vec<Option<V>>> {
    if let Some(pieces) = same_pieces(e, axis, args, ct) {
        return Ok(pieces.into_iter().map(Some).collect());
    }
    let mut off = Dim::constant(0);
    let mut out = Vec::new();
    for &a in args {
        let len = e.ty(a).shape[axis].clone();
        let end = off.add(&len);
        out.push(Some(e.slice_axis(ct, axis, off.clone(), end.clone(), 1)?));
        off = end;
    }
    Ok(out)
}

/// A cotangent that is itself a concatenation along `axis` of pieces the sizes of
/// `args`: those pieces.
fn same_pieces(e: &Emitter, axis: usize, args: &[V], ct: V) -> Option<Vec<V>> {
    let def = e.def(ct).filter(|d| d.op == Op::Concat { axis } && d.args.len() == args.len())?;
    let fits = def.args.iter().zip(args).all(|(&p, &a)| e.ty(p).shape[axis] == e.ty(a).shape[axis]);
    fits.then(|| def.args.clone())
}

/// `pad(x)`: the cotangent cropped to `x`.
pub fn pad_back(e: &mut Emitter, x: V, padding: &[(i64, i64)], ct: V) -> Res<V> {
    let xt = e.ty(x);
    let mut g = ct;
    for (ax, &(lo, _)) in padding.iter().enumerate() {
        g = e.slice_axis(g, ax, Dim::constant(lo), Dim::constant(lo).add(&xt.shape[ax]), 1)?;
    }
    Ok(g)
}

/// `gather(x, idx)`: scatter-add the cotangent into zeros shaped like `x`.
pub fn gather_back(e: &mut Emitter, axis: usize, x: V, idx: V, ct: V) -> Res<Vec<Option<V>>> {
    let zeros = e.fill(0.0, &e.ty(x))?;
    let g = e.op(Op::ScatterAdd { axis }, &[zeros, idx, ct], None)?;
    Ok(vec![Some(g), None])
}

/// `scatter_add(x, idx, src)`: `x` gets the cotangent, `src` gathers it.
pub fn scatter_back(e: &mut Emitter, axis: usize, idx: V, ct: V) -> Res<Vec<Option<V>>> {
    let g = e.op(Op::Gather { axis }, &[ct, idx], None)?;
    Ok(vec![Some(ct), None, Some(g)])
}
