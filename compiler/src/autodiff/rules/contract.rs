//! Contractions: `matmul` and `einsum`. For complex operands the other operand is
//! conjugated (`d(a b)/da` pairs with `conj(b)`).

use super::super::emit::{Emitter, Res, V};
use crate::tir::infer::parse_einsum;
use crate::tir::{DType, Dim, Op};

fn conj(e: &mut Emitter, x: V) -> Res<V> {
    if e.ty(x).dtype == DType::C64 {
        e.conj(x)
    } else {
        Ok(x)
    }
}

fn swap_last(e: &mut Emitter, x: V) -> Res<V> {
    let r = e.ty(x).rank();
    let mut perm: Vec<usize> = (0..r).collect();
    perm.swap(r - 2, r - 1);
    e.permute(x, perm)
}

/// `y = a @ b`: `da = ct @ b^T`, `db = a^T @ ct`.
pub fn matmul(e: &mut Emitter, a: V, b: V, ct: V) -> Res<Vec<Option<V>>> {
    let bc = conj(e, b)?;
    let bt = swap_last(e, bc)?;
    let da = e.op(Op::MatMul, &[ct, bt], None)?;
    let ac = conj(e, a)?;
    let at = swap_last(e, ac)?;
    let db = e.op(Op::MatMul, &[at, ct], None)?;
    Ok(vec![Some(da), Some(db)])
}

/// `out = einsum(lhs, rhs)`: `d lhs = einsum(out, rhs -> lhs)`, with letters that occur
/// only in `lhs` (summed away) broadcast back.
pub fn einsum(e: &mut Emitter, spec: &str, args: &[V], ct: V) -> Res<Vec<Option<V>>> {
    let (ins, out) = parse_einsum(spec)?;
    let mut grads = Vec::new();
    for (k, &x) in args.iter().enumerate() {
        let others: Vec<(usize, &Vec<char>)> = ins.iter().enumerate().filter(|(j, _)| *j != k).collect();
        let target = &ins[k];
        if target.iter().enumerate().any(|(i, c)| target[..i].contains(c)) {
            return Err(format!("einsum `{spec}`: a repeated letter in one operand has no gradient rule"));
        }
        let avail: Vec<char> = out.iter().chain(others.iter().flat_map(|(_, s)| s.iter())).copied().collect();
        let reach: Vec<char> = target.iter().copied().filter(|c| avail.contains(c)).collect();
        let mut operands = vec![ct];
        let mut subs = vec![out.iter().collect::<String>()];
        for (j, s) in &others {
            operands.push(conj(e, args[*j])?);
            subs.push(s.iter().collect());
        }
        let g_spec = format!("{}->{}", subs.join(","), reach.iter().collect::<String>());
        let g = e.op(Op::Einsum(g_spec), &operands, None)?;
        let xt = e.ty(x);
        // Letters summed away in the forward pass come back by broadcasting.
        let kept: Vec<Dim> = target
            .iter()
            .enumerate()
            .map(|(i, c)| if reach.contains(c) { xt.shape[i].clone() } else { Dim::constant(1) })
            .collect();
        let order: Vec<usize> = reach.iter().map(|c| target.iter().position(|t| t == c).expect("letter")).collect();
        let mut sorted = order.clone();
        sorted.sort();
        let perm: Vec<usize> = sorted.iter().map(|p| order.iter().position(|o| o == p).expect("pos")).collect();
        let g = e.permute(g, perm)?;
        let g = e.reshape(g, kept)?;
        grads.push(Some(e.broadcast(g, &xt.shape)?));
    }
    Ok(grads)
}
