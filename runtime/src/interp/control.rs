//! Control ops: `call`, `stack` and `vmap`, which run other functions of the program.
//!
//! Contract:
//! - `call(args) {func}`: runs `func` on the operands; it must return one result.
//! - `stack(x, rest...) {funcs}`: `x = f(x, rest...)` for each function in order (this
//!   interpreter never skips or repeats entries); each must return one result.
//! - `vmap(args) {func, keep}`: every operand has the same size `B` along axis 0; for each
//!   sample `i`, operand `j` is passed as `x[i:i+1]` when `keep[j]`, else `x[i]`; the
//!   single result of each sample must have rank >= 1, and the results are concatenated
//!   along axis 0. With `B = 0` the result is the empty tensor of the declared type.
//!
//! - `scan(init, xs) {func, axis}`: `T = xs.shape[axis]`; `state = func(state, x_t)` for
//!   `t = 0..T`, where `x_t` is `xs` with `axis` removed; every state must keep `init`'s
//!   type. The result stacks the states after each step along `axis`
//!   (`init.shape[..axis] + [T] + init.shape[axis..]`).
//!
//! Errors inside a called function come back as `RunError::Nested`. Each activation gets
//! its own random stream key (see `random::mix`).

use super::movement::{axis_last_perm, concat, permute_unchecked};
use super::random::mix;
use super::{Frame, Interpreter, OpError, OpResult, Out, RunError};
use crate::tensor::Tensor;
use archc_compiler::tir::ValueId;

/// Runs `name` and returns its single result.
fn call_one(interp: &Interpreter, name: &str, args: &[&Tensor], frame: Frame) -> OpResult {
    let func = interp.program().func(name).ok_or_else(|| OpError::Nested(RunError::UnknownFunc(name.to_string())))?;
    let mut results = interp.call_func(func, args, frame).map_err(OpError::Nested)?;
    if results.len() != 1 {
        return Err(OpError::Msg(format!("@{name} returns {} results, expected 1", results.len())));
    }
    Ok(results.pop().expect("one result"))
}

fn child(frame: Frame, site: ValueId, index: u64) -> Frame {
    Frame { key: mix(frame.key, site.0, index), depth: frame.depth + 1 }
}

pub fn call(interp: &Interpreter, name: &str, args: &[&Tensor], frame: Frame, site: ValueId) -> OpResult {
    call_one(interp, name, args, child(frame, site, 0))
}

pub fn stack(interp: &Interpreter, names: &[String], args: &[&Tensor], frame: Frame, site: ValueId) -> OpResult {
    let (first, rest) = args.split_first().ok_or_else(|| "stack of no operands".to_string())?;
    let mut x = (*first).clone();
    for (j, name) in names.iter().enumerate() {
        let inputs: Vec<&Tensor> = std::iter::once(&x).chain(rest.iter().copied()).collect();
        x = call_one(interp, name, &inputs, child(frame, site, j as u64))?;
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

pub fn vmap(
    interp: &Interpreter,
    name: &str,
    keep: &[bool],
    args: &[&Tensor],
    out: &Out,
    frame: Frame,
    site: ValueId,
) -> OpResult {
    if keep.len() != args.len() || args.is_empty() {
        return Err(format!("vmap has {} operands and {} keep flags", args.len(), keep.len()).into());
    }
    let batch = args[0].shape.first().copied();
    if batch.is_none() || args.iter().any(|a| a.shape.first().copied() != batch) {
        let types: Vec<String> = args.iter().map(|a| a.type_string()).collect();
        return Err(format!("vmap operands need one size along axis 0: {}", types.join(", ")).into());
    }
    let batch = batch.expect("checked");
    if batch == 0 {
        return Ok(Tensor::zeros(out.dtype, &out.shape));
    }
    let mut results = Vec::with_capacity(batch);
    for i in 0..batch {
        let inputs: Vec<Tensor> = args.iter().zip(keep).map(|(a, &k)| sample(a, i, k)).collect();
        let refs: Vec<&Tensor> = inputs.iter().collect();
        let r = call_one(interp, name, &refs, child(frame, site, i as u64))?;
        if r.rank() == 0 {
            return Err(format!("@{name} returns a rank-0 result, which vmap cannot concatenate").into());
        }
        results.push(r);
    }
    let refs: Vec<&Tensor> = results.iter().collect();
    Ok(concat(&refs, 0)?)
}

/// `xs` with `axis` moved first, so step `t` is the contiguous run `t`.
fn steps_first(xs: &Tensor, axis: usize) -> Tensor {
    let mut perm = axis_last_perm(xs.rank(), axis);
    perm.rotate_right(1);
    permute_unchecked(xs, &perm)
}

pub fn scan(
    interp: &Interpreter,
    name: &str,
    axis: usize,
    args: &[&Tensor],
    out: &Out,
    frame: Frame,
    site: ValueId,
) -> OpResult {
    let [init, xs] = args else {
        return Err(format!("scan expects 2 operands (init, xs), got {}", args.len()).into());
    };
    if axis >= xs.rank() || axis > init.rank() {
        return Err(
            format!("scan axis {axis} does not fit init {} and xs {}", init.type_string(), xs.type_string()).into()
        );
    }
    let steps = steps_first(xs, axis);
    let mut state = (*init).clone();
    let mut states = Vec::with_capacity(xs.shape[axis]);
    for t in 0..xs.shape[axis] {
        let x_t = sample(&steps, t, false);
        let next = call_one(interp, name, &[&state, &x_t], child(frame, site, t as u64))?;
        if next.dtype() != init.dtype() || next.shape != init.shape {
            return Err(
                format!("@{name} returns {}, but the state is {}", next.type_string(), init.type_string()).into()
            );
        }
        let mut shape = next.shape.clone();
        shape.insert(axis, 1);
        states.push(Tensor { shape, data: next.data.clone() });
        state = next;
    }
    if states.is_empty() {
        return Ok(Tensor::zeros(out.dtype, &out.shape));
    }
    let refs: Vec<&Tensor> = states.iter().collect();
    Ok(concat(&refs, axis)?)
}
