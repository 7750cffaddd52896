//! Control ops: `call`, `stack`, `vmap` and `scan`, which run other functions of the
//! program.
//!
//! Contract:
//! - `call(args) {func}`: runs `func` on the operands; the results are all of its results.
//! - `stack(x, rest...) {funcs}`: `x = f(x, rest...)` for each function in order (this
//!   interpreter never skips or repeats entries); each must return one result.
//! - `vmap(args) {func, keep, out_keep}`: every operand has the same size `B` along axis
//!   0; for each sample `i`, operand `j` is passed as `x[i:i+1]` when `keep[j]`, else
//!   `x[i]`. Each sample returns one value per entry of `out_keep`; result `k` is the
//!   per-sample values concatenated along axis 0 when `out_keep[k]` (each must have a
//!   rank of 1 or more), else stacked along a new axis 0. With `B = 0` every result is
//!   the empty tensor of its declared type.
//! - `scan(carries..., xs..., invariants...) {func, axis, carries, xs, reverse}`: every
//!   sequence has one length `T` along `axis`. With `carry` starting at the initial
//!   carries, each step `t` (`0..T`, or `T - 1` down to 0 when `reverse`) runs
//!   `(carry..., y_t...) = func(carry..., x_t..., invariants...)`, where `x_t` is each
//!   sequence at index `t` with `axis` removed; every carry must keep its initial type,
//!   and each output keeps the type it has at the first step run. The results are the
//!   final carries, then each output stacked along `axis` with `y_t` at index `t`. With
//!   `T = 0` the carries are the initial values and every output is the empty tensor of
//!   its declared type.
//!
//! Errors inside a called function come back as `RunError::Nested`. Each activation gets
//! its own random stream key, `random::mix` of the caller's key, the call site and an
//! index: 0 for `call`, the entry for `stack`, the sample for `vmap`, the time index `t`
//! for `scan` (so a step's stream does not depend on the direction).

use super::movement::{axis_last_perm, concat, permute_unchecked};
use super::random::mix;
use super::{Frame, Interpreter, OpError, OpResult, OpResults, Out, RunError};
use crate::tensor::Tensor;
use archc_compiler::tir::ValueId;

/// Runs `name` and returns all its results.
fn call_all(interp: &Interpreter, name: &str, args: &[&Tensor], frame: Frame) -> OpResults {
    let func = interp.program().func(name).ok_or_else(|| OpError::Nested(RunError::UnknownFunc(name.to_string())))?;
    interp.call_func(func, args, frame).map_err(OpError::Nested)
}

/// Runs `name` and returns its results, which must be `n`.
fn call_n(interp: &Interpreter, name: &str, args: &[&Tensor], frame: Frame, n: usize) -> OpResults {
    let results = call_all(interp, name, args, frame)?;
    if results.len() != n {
        return Err(OpError::Msg(format!("@{name} returns {} results, expected {n}", results.len())));
    }
    Ok(results)
}

fn child(frame: Frame, site: ValueId, index: u64) -> Frame {
    Frame { key: mix(frame.key, site.0, index), depth: frame.depth + 1 }
}

pub fn call(interp: &Interpreter, name: &str, args: &[&Tensor], frame: Frame, site: ValueId) -> OpResults {
    call_all(interp, name, args, child(frame, site, 0))
}

pub fn stack(interp: &Interpreter, names: &[String], args: &[&Tensor], frame: Frame, site: ValueId) -> OpResult {
    let (first, rest) = args.split_first().ok_or_else(|| "stack of no operands".to_string())?;
    let mut x = (*first).clone();
    for (j, name) in names.iter().enumerate() {
        let inputs: Vec<&Tensor> = std::iter::once(&x).chain(rest.iter().copied()).collect();
        x = call_n(interp, name, &inputs, child(frame, site, j as u64), 1)?.pop().expect("one result");
    }
    Ok(x)
}

/// Sample `i` along axis 0, keeping the axis (size 1) or dropping it.
fn sample(x: &Tensor, i: usize, keep: bool) -> Tensor {
    let inner: usize = x.shape[1..].iter().product();
    let data = x.data.slice(i * inner..(i + 1) * inner);
    let shape = if keep { [&[1][..], &x.shape[1..]].concat() } else { x.shape[1..].to_vec() };
    Tensor { shape, data }
}

/// `x` with a new axis of size 1 at `axis` (no copy of the layout).
fn with_unit_axis(x: Tensor, axis: usize) -> Tensor {
    let mut shape = x.shape;
    shape.insert(axis, 1);
    Tensor { shape, data: x.data }
}

/// The empty results of a map or loop with no iterations: zeros of the declared types.
fn empty(outs: &[Out]) -> Vec<Tensor> {
    outs.iter().map(|o| Tensor::zeros(o.dtype, &o.shape)).collect()
}

#[allow(clippy::too_many_arguments)]
pub fn vmap(
    interp: &Interpreter,
    name: &str,
    keep: &[bool],
    out_keep: &[bool],
    args: &[&Tensor],
    outs: &[Out],
    frame: Frame,
    site: ValueId,
) -> OpResults {
    if keep.len() != args.len() || args.is_empty() {
        return Err(format!("vmap has {} operands and {} keep flags", args.len(), keep.len()).into());
    }
    if out_keep.len() != outs.len() {
        return Err(format!("vmap has {} results and {} out_keep flags", outs.len(), out_keep.len()).into());
    }
    let batch = args[0].shape.first().copied();
    if batch.is_none() || args.iter().any(|a| a.shape.first().copied() != batch) {
        let types: Vec<String> = args.iter().map(|a| a.type_string()).collect();
        return Err(format!("vmap operands need one size along axis 0: {}", types.join(", ")).into());
    }
    let batch = batch.expect("checked");
    if batch == 0 {
        return Ok(empty(outs));
    }
    // per_result[k][i]: result k of sample i, already shaped for concatenation on axis 0.
    let mut per_result: Vec<Vec<Tensor>> = out_keep.iter().map(|_| Vec::with_capacity(batch)).collect();
    for i in 0..batch {
        let inputs: Vec<Tensor> = args.iter().zip(keep).map(|(a, &k)| sample(a, i, k)).collect();
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let rs = call_n(interp, name, &refs, child(frame, site, i as u64), out_keep.len())?;
        for (k, (r, &kept)) in rs.into_iter().zip(out_keep).enumerate() {
            let r = match kept {
                true if r.rank() == 0 => {
                    return Err(format!("@{name} returns a rank-0 result {k}, which vmap cannot concatenate").into());
                }
                true => r,
                false => with_unit_axis(r, 0),
            };
            per_result[k].push(r);
        }
    }
    per_result
        .iter()
        .map(|rs| {
            let refs: Vec<&Tensor> = rs.iter().collect();
            concat(&refs, 0).map_err(OpError::Msg)
        })
        .collect()
}

/// The attributes of a `scan`.
pub struct ScanSpec {
    pub axis: usize,
    pub carries: usize,
    pub xs: usize,
    pub reverse: bool,
}

/// `xs` with `axis` moved first, so step `t` is the contiguous run `t`.
fn steps_first(xs: &Tensor, axis: usize) -> Tensor {
    let mut perm = axis_last_perm(xs.rank(), axis);
    perm.rotate_right(1);
    permute_unchecked(xs, &perm)
}

fn same_type(a: &Tensor, b: &Tensor) -> bool {
    a.dtype() == b.dtype() && a.shape == b.shape
}

pub fn scan(
    interp: &Interpreter,
    name: &str,
    spec: &ScanSpec,
    args: &[&Tensor],
    outs: &[Out],
    frame: Frame,
    site: ValueId,
) -> OpResults {
    let ScanSpec { axis, carries, xs: n_xs, reverse } = *spec;
    if n_xs == 0 || args.len() < carries.saturating_add(n_xs) {
        return Err(format!(
            "scan expects {carries} carries and {n_xs} sequences (at least one), got {} operands",
            args.len()
        )
        .into());
    }
    if outs.len() < carries {
        return Err(format!("scan has {} results, fewer than its {carries} carries", outs.len()).into());
    }
    let (inits, rest) = args.split_at(carries);
    let (xs, invariants) = rest.split_at(n_xs);
    let steps = xs[0].shape.get(axis).copied().unwrap_or(0);
    for x in xs {
        if axis >= x.rank() || x.shape[axis] != steps {
            let types: Vec<String> = xs.iter().map(|x| x.type_string()).collect();
            return Err(format!("scan sequences need one length along axis {axis}: {}", types.join(", ")).into());
        }
    }
    let n_ys = outs.len() - carries;
    let seqs: Vec<Tensor> = xs.iter().map(|x| steps_first(x, axis)).collect();
    let mut carry: Vec<Tensor> = inits.iter().map(|t| (*t).clone()).collect();
    // ys[j][t]: output j of step t, with `axis` inserted (size 1).
    let mut ys: Vec<Vec<Option<Tensor>>> = (0..n_ys).map(|_| vec![None; steps]).collect();
    let mut first_y: Vec<Option<Tensor>> = vec![None; n_ys];
    let order: Box<dyn Iterator<Item = usize>> = if reverse { Box::new((0..steps).rev()) } else { Box::new(0..steps) };
    for t in order {
        let x_t: Vec<Tensor> = seqs.iter().map(|s| sample(s, t, false)).collect();
        let inputs: Vec<&Tensor> = carry.iter().chain(&x_t).chain(invariants.iter().copied()).collect();
        let mut rs = call_n(interp, name, &inputs, child(frame, site, t as u64), outs.len())?;
        let new_ys = rs.split_off(carries);
        for (i, (next, init)) in rs.iter().zip(inits).enumerate() {
            if !same_type(next, init) {
                return Err(format!(
                    "@{name} returns {} for carry {i}, whose type is {}",
                    next.type_string(),
                    init.type_string()
                )
                .into());
            }
        }
        carry = rs;
        for (j, y) in new_ys.into_iter().enumerate() {
            if axis > y.rank() {
                return Err(format!("scan axis {axis} does not fit output {j} of @{name}, {}", y.type_string()).into());
            }
            match &first_y[j] {
                Some(f) if !same_type(f, &y) => {
                    return Err(format!(
                        "@{name} returns {} for output {j} at step {t} but {} at an earlier step",
                        y.type_string(),
                        f.type_string()
                    )
                    .into());
                }
                Some(_) => {}
                None => first_y[j] = Some(y.clone()),
            }
            ys[j][t] = Some(with_unit_axis(y, axis));
        }
    }
    if steps == 0 {
        let mut results = carry;
        results.extend(empty(&outs[carries..]));
        return Ok(results);
    }
    let mut results = carry;
    for per_step in ys {
        let refs: Vec<&Tensor> = per_step.iter().map(|y| y.as_ref().expect("every step ran")).collect();
        results.push(concat(&refs, axis)?);
    }
    Ok(results)
}
