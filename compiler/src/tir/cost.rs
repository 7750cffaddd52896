//! Static cost measures of a program, computed from TIR before anything runs: the number
//! of trainable parameters ([`param_count`]) and the floating-point operations of one
//! call of a function at given sizes ([`flops`]). Training-free architecture search
//! ranks candidates by them.
//!
//! Contract of [`flops`]:
//! - a multiply-add counts 2: `matmul` `[.., m, k] x [.., k, n]` is `2 m n k` per batch
//!   entry; `conv` is `2 * numel(out) * (C_in / groups) * prod(kernel)`; `einsum` with `n`
//!   operands is `n` per term of its full index product (2 for the usual two operands,
//!   1 for a one-operand sum);
//! - elementwise ops (unary, binary, `select`) count one per output element; reductions
//!   (`reduce.*`, `argmax`) one per *input* element (each element is added or compared
//!   once); `argsort` `numel * ceil(log2 n)` comparisons for `n` along its axis; pooling
//!   `numel(out) * prod(window)`; `scatter_add` one per added element;
//!   `rfft`/`irfft` `5/2 * n * ceil(log2 n)` per real transform of length `n` (rough);
//! - data movement, constants, casts and random draws count 0 (`param`, `const`, `iota`,
//!   `cast`, `reshape`, `permute`, `broadcast`, `slice`, `concat`, `pad`, `gather`,
//!   `real`, `imag`, `complex`, `rand.*`);
//! - control ops count their callees: `call` once, `stack` each block once, `scan` its
//!   cell times the trip count, `vmap` its body times the mapped size. A callee's size
//!   symbols are bound from the concrete shapes of its operands (a bare symbol dim takes
//!   the operand's size; other symbols keep the caller's value);
//! - every size and count is computed in checked arithmetic: an overflow, a size symbol
//!   with no value, or calls nested more than 64 deep are errors, never a wrapped or
//!   guessed number.

use super::{Dim, Func, Op, Program, TensorType, ValueId};
use std::collections::HashMap;

/// Calls nested deeper than this are an error (a recursive program).
const MAX_DEPTH: usize = 64;

/// The number of trainable scalars (buffers, such as BatchNorm's running statistics, are
/// not counted). A symbolic dim in a parameter's shape (no standard layer has one)
/// counts as its constant part, at least 1. Saturates at `u128::MAX`.
pub fn param_count(p: &Program) -> u128 {
    p.params.iter().filter(|d| d.trainable).map(|d| const_numel(&d.ty)).fold(0u128, u128::saturating_add)
}

fn const_numel(t: &TensorType) -> u128 {
    t.shape.iter().map(|d| d.as_const().map_or(1, |c| c.max(0) as u128)).fold(1u128, u128::saturating_mul)
}

/// The floating-point operations of one call of `func` with its size symbols bound by
/// `sizes` (see the module docs for what counts).
pub fn flops(p: &Program, func: &str, sizes: &HashMap<String, i64>) -> Result<u128, String> {
    let f = p.func(func).ok_or_else(|| format!("no function `{func}`"))?;
    Counter { program: p, memo: HashMap::new() }.func(f, sizes, 0)
}

/// Concrete sizes of one tensor.
type Shape = Vec<u128>;

struct Counter<'p> {
    program: &'p Program,
    /// Callee costs by name and operand shapes.
    memo: HashMap<(String, Vec<Shape>), u128>,
}

impl Counter<'_> {
    fn func(&mut self, f: &Func, env: &HashMap<String, i64>, depth: usize) -> Result<u128, String> {
        if depth > MAX_DEPTH {
            return Err(format!("calls nest deeper than {MAX_DEPTH} (at `{}`)", f.name));
        }
        let types = value_types(f);
        let mut total: u128 = 0;
        for inst in &f.body {
            let operands: Vec<Shape> =
                inst.args.iter().map(|a| shape(types.get(a).copied(), env)).collect::<Result<_, _>>()?;
            let results: Vec<Shape> = inst.results().map(|(_, t)| shape(Some(t), env)).collect::<Result<_, _>>()?;
            let c = match control_callees(&inst.op) {
                true => self.control(&inst.op, &operands, &results, env, depth)?,
                false => op_flops(&inst.op, &operands, &results[0])?,
            };
            total = add(total, c)?;
        }
        Ok(total)
    }

    /// The cost of `call`, `stack`, `scan` and `vmap`.
    fn control(
        &mut self,
        op: &Op,
        operands: &[Shape],
        results: &[Shape],
        env: &HashMap<String, i64>,
        depth: usize,
    ) -> Result<u128, String> {
        match op {
            Op::Call(name) => self.callee(name, operands.to_vec(), env, depth),
            Op::Stack(names) => {
                let mut total = 0;
                for name in names {
                    total = add(total, self.callee(name, operands.to_vec(), env, depth)?)?;
                }
                Ok(total)
            }
            Op::Scan { func, axis, carries, xs, .. } => {
                let trips = scan_trips(operands, results, *axis, *carries, *xs)?;
                let mut step = operands.to_vec();
                for s in step.iter_mut().skip(*carries).take(*xs) {
                    remove_axis(s, *axis)?;
                }
                mul(trips, self.callee(func, step, env, depth)?)
            }
            Op::Vmap { func, keep, .. } => {
                let n = operands.first().and_then(|s| s.first().copied()).ok_or("vmap without a mapped operand")?;
                let mut one = operands.to_vec();
                for (s, &k) in one.iter_mut().zip(keep) {
                    match k {
                        true => *s.first_mut().ok_or("a vmap operand without a mapped axis")? = 1,
                        false => remove_axis(s, 0)?,
                    }
                }
                mul(n, self.callee(func, one, env, depth)?)
            }
            _ => unreachable!("control_callees lists the control ops"),
        }
    }

    /// One call of function `name` on operands of the given shapes.
    fn callee(
        &mut self,
        name: &str,
        shapes: Vec<Shape>,
        caller: &HashMap<String, i64>,
        depth: usize,
    ) -> Result<u128, String> {
        let key = (name.to_string(), shapes);
        if let Some(&c) = self.memo.get(&key) {
            return Ok(c);
        }
        let program = self.program;
        let f = program.func(name).ok_or_else(|| format!("no function `{name}`"))?;
        let env = bind(f, &key.1, caller)?;
        let c = self.func(f, &env, depth + 1)?;
        self.memo.insert(key, c);
        Ok(c)
    }
}

fn control_callees(op: &Op) -> bool {
    matches!(op, Op::Call(_) | Op::Stack(_) | Op::Scan { .. } | Op::Vmap { .. })
}

/// The cost of one primitive op (see the module docs).
fn op_flops(op: &Op, operands: &[Shape], out: &Shape) -> Result<u128, String> {
    let arg = |i: usize| operands.get(i).ok_or_else(|| format!("`{}` lacks operand {i}", op.name()));
    match op {
        Op::MatMul => {
            let k = arg(0)?.last().copied().ok_or("matmul of a scalar")?;
            mul(2, mul(numel(out)?, k)?)
        }
        Op::Conv { .. } => {
            let w = arg(1)?;
            let per_output = w.iter().skip(1).try_fold(1u128, |acc, &d| mul(acc, d))?;
            mul(2, mul(numel(out)?, per_output)?)
        }
        Op::Einsum(spec) => einsum_flops(spec, operands),
        Op::Unary(_) | Op::Binary(_) | Op::Select => numel(out),
        Op::Reduce { .. } | Op::ArgMax { .. } => numel(arg(0)?),
        Op::ArgSort { axis, .. } => {
            let x = arg(0)?;
            let n = x.get(*axis).copied().unwrap_or(1).max(1);
            mul(numel(x)?, u128::from(n.next_power_of_two().trailing_zeros().max(1)))
        }
        Op::Pool { window, .. } => {
            let w = window.iter().try_fold(1u128, |acc, &k| mul(acc, k.max(0) as u128))?;
            mul(numel(out)?, w)
        }
        Op::ScatterAdd { .. } => numel(arg(2)?),
        Op::Rfft { axis } => fft_flops(arg(0)?, *axis),
        Op::Irfft { axis, .. } => fft_flops(out, *axis),
        _ => Ok(0),
    }
}

/// `n_operands` per term of the full index product of `lhs,rhs->out`.
fn einsum_flops(spec: &str, operands: &[Shape]) -> Result<u128, String> {
    let inputs = spec.split("->").next().unwrap_or(spec);
    let mut sizes: HashMap<char, u128> = HashMap::new();
    let parts: Vec<&str> = inputs.split(',').collect();
    for (letters, s) in parts.iter().zip(operands) {
        for (c, &d) in letters.chars().zip(s) {
            sizes.insert(c, d);
        }
    }
    let terms = sizes.values().try_fold(1u128, |acc, &d| mul(acc, d))?;
    mul(parts.len() as u128, terms)
}

/// `5/2 * n * ceil(log2 n)` per real transform of length `n` along `axis`.
fn fft_flops(real: &Shape, axis: usize) -> Result<u128, String> {
    let n = *real.get(axis).ok_or("an FFT axis out of range")?;
    let log = if n <= 1 { 0 } else { 128 - (n - 1).leading_zeros() as u128 };
    Ok(mul(mul(numel(real)?, log)?, 5)? / 2)
}

/// The trip count of a scan: the length of its first sequence along `axis` (of its first
/// stacked output when it has no sequence).
fn scan_trips(operands: &[Shape], results: &[Shape], axis: usize, carries: usize, xs: usize) -> Result<u128, String> {
    let seq = if xs > 0 { operands.get(carries) } else { results.get(carries) };
    seq.and_then(|s| s.get(axis).copied()).ok_or_else(|| "a scan with neither sequences nor outputs".to_string())
}

fn remove_axis(s: &mut Shape, axis: usize) -> Result<(), String> {
    if axis >= s.len() {
        return Err(format!("axis {axis} of a rank-{} operand", s.len()));
    }
    s.remove(axis);
    Ok(())
}

/// A callee's size symbols: the caller's values, overridden by every argument dim that
/// is a bare symbol, bound to the operand's size.
fn bind(f: &Func, shapes: &[Shape], caller: &HashMap<String, i64>) -> Result<HashMap<String, i64>, String> {
    if f.args.len() != shapes.len() {
        return Err(format!("`{}` takes {} operands, given {}", f.name, f.args.len(), shapes.len()));
    }
    let mut env = caller.clone();
    for ((_, t), s) in f.args.iter().zip(shapes) {
        if t.rank() != s.len() {
            return Err(format!("`{}` takes {t}, given an operand of rank {}", f.name, s.len()));
        }
        for (d, &v) in t.shape.iter().zip(s) {
            if let Some(name) = bare_symbol(d) {
                let v = i64::try_from(v).map_err(|_| format!("size {v} of `{name}` overflows"))?;
                env.insert(name, v);
            }
        }
    }
    Ok(env)
}

fn bare_symbol(d: &Dim) -> Option<String> {
    match d.symbols().as_slice() {
        [s] if *d == Dim::sym(s.clone()) => Some(s.clone()),
        _ => None,
    }
}

/// The type of every argument and instruction result of `f`.
fn value_types(f: &Func) -> HashMap<ValueId, &TensorType> {
    let mut types: HashMap<ValueId, &TensorType> = f.args.iter().map(|(v, t)| (*v, t)).collect();
    for inst in &f.body {
        types.extend(inst.results());
    }
    types
}

/// Concrete sizes of `t` (a missing type is an internal error of the program).
fn shape(t: Option<&TensorType>, env: &HashMap<String, i64>) -> Result<Shape, String> {
    let t = t.ok_or("an operand without a type (the program does not verify)")?;
    t.shape.iter().map(|d| dim_value(d, t, env)).collect()
}

fn dim_value(d: &Dim, t: &TensorType, env: &HashMap<String, i64>) -> Result<u128, String> {
    if let Some(missing) = d.symbols().into_iter().find(|s| !env.contains_key(s)) {
        return Err(format!("the size `{missing}` of {t} is not given"));
    }
    let v = d.checked_eval(env).ok_or_else(|| format!("the size of {t} overflows"))?;
    Ok(v.max(0) as u128)
}

fn numel(s: &Shape) -> Result<u128, String> {
    s.iter().try_fold(1u128, |acc, &d| mul(acc, d))
}

fn mul(a: u128, b: u128) -> Result<u128, String> {
    a.checked_mul(b).ok_or_else(|| "the FLOP count overflows".to_string())
}

fn add(a: u128, b: u128) -> Result<u128, String> {
    a.checked_add(b).ok_or_else(|| "the FLOP count overflows".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tir::parse_program;

    fn env(pairs: &[(&str, i64)]) -> HashMap<String, i64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// `nn.Linear(8, 6)` on `[B, 8]`, beside a buffer that is not a parameter.
    const LINEAR: &str = "program p\n\
        param @fc.w : f32[8, 6] = zeros()\n\
        param @fc.b : f32[6] = zeros()\n\
        buffer @bn.running_mean : f32[6] = zeros()\n\
        func @main(%0: f32[B, 8] \"x\") -> (f32[B, 6] \"y\") {\n\
          %1 = param() {name=\"fc.w\"} : f32[8, 6]\n\
          %2 = param() {name=\"fc.b\"} : f32[6]\n\
          %3 = matmul(%0, %1) : f32[B, 6]\n\
          %4 = broadcast(%2) : f32[B, 6]\n\
          %5 = add(%3, %4) : f32[B, 6]\n\
          return %5\n\
        }\n";

    #[test]
    fn a_linear_layer() {
        let p = parse_program(LINEAR).expect("parses");
        assert_eq!(param_count(&p), 8 * 6 + 6);
        // matmul 2 * B * 6 * 8 = 384 at B = 4, the bias add 4 * 6 = 24; the broadcast is free.
        assert_eq!(flops(&p, "main", &env(&[("B", 4)])), Ok(384 + 24));
    }

    /// `nn.Conv1d(4, 6, 3, stride=2, padding=1, dilation=2, groups=2)` on `[B, 4, 11]`.
    const CONV1D: &str = "program p\n\
        param @conv.w : f32[6, 2, 3] = zeros()\n\
        param @conv.b : f32[6] = zeros()\n\
        func @main(%0: f32[B, 4, 11] \"x\") -> (f32[B, 6, 5] \"y\") {\n\
          %1 = param() {name=\"conv.w\"} : f32[6, 2, 3]\n\
          %2 = param() {name=\"conv.b\"} : f32[6]\n\
          %3 = conv(%0, %1) {stride=[2], padding=[[1, 1]], dilation=[2], groups=2} : f32[B, 6, 5]\n\
          %4 = reshape(%2) : f32[1, 6, 1]\n\
          %5 = broadcast(%4) : f32[B, 6, 5]\n\
          %6 = add(%3, %5) : f32[B, 6, 5]\n\
          return %6\n\
        }\n";

    #[test]
    fn a_conv1d_layer() {
        let p = parse_program(CONV1D).expect("parses");
        assert_eq!(param_count(&p), 6 * 2 * 3 + 6);
        // Each of the B * 6 * 5 outputs sums 2 channels x 3 taps: 2 * 60 * 6 = 720 at
        // B = 2; the bias add 60.
        assert_eq!(flops(&p, "main", &env(&[("B", 2)])), Ok(720 + 60));
    }

    /// A scan over 5 steps of a cell with its own size symbol, a call, a vmap and a
    /// reduction.
    const CONTROL: &str = "program p\n\
        func @main(%0: f32[B, 5, 3] \"x\", %1: f32[3, 3] \"w\") -> (f32[B]) {\n\
          %2 = const() {value=0.0} : f32[]\n\
          %3 = broadcast(%2) : f32[B, 3]\n\
          %4, %5 = scan(%3, %0, %1) {func=@cell, axis=1, carries=1, xs=1, reverse=false} : f32[B, 3], f32[B, 5, 3]\n\
          %6 = call(%4) {func=@twice} : f32[B, 3]\n\
          %7 = vmap(%6) {func=@twice, keep=[true], out_keep=[true]} : f32[B, 3]\n\
          %8 = reduce.sum(%7) {axes=[1], keepdim=false} : f32[B]\n\
          return %8\n\
        }\n\
        func @cell(%0: f32[N, 3] \"h\", %1: f32[N, 3] \"x\", %2: f32[3, 3] \"w\") -> (f32[N, 3], f32[N, 3]) {\n\
          %3 = matmul(%0, %2) : f32[N, 3]\n\
          %4 = add(%3, %1) : f32[N, 3]\n\
          %5 = tanh(%4) : f32[N, 3]\n\
          return %5, %5\n\
        }\n\
        func @twice(%0: f32[M, 3] \"h\") -> (f32[M, 3]) {\n\
          %1 = add(%0, %0) : f32[M, 3]\n\
          return %1\n\
        }\n";

    #[test]
    fn control_ops_count_their_callees() {
        let p = parse_program(CONTROL).expect("parses");
        let b = 2u128;
        // A step: matmul 2 * N * 3 * 3 + add N * 3 + tanh N * 3, at N = B.
        let step = 2 * b * 9 + 2 * b * 3;
        // The call: B * 3; the vmap: B samples of 1 * 3; the reduction reads B * 3.
        let expected = 5 * step + b * 3 + b * 3 + b * 3;
        assert_eq!(flops(&p, "main", &env(&[("B", 2)])), Ok(expected));
    }

    #[test]
    fn missing_sizes_and_overflows_are_errors() {
        let p = parse_program(LINEAR).expect("parses");
        let missing = flops(&p, "main", &HashMap::new()).unwrap_err();
        assert!(missing.contains("`B`"), "{missing}");
        let p = parse_program(CONTROL).expect("parses");
        let huge = flops(&p, "main", &env(&[("B", i64::MAX)]));
        assert!(huge.is_ok(), "i64::MAX * 45 fits u128: {huge:?}");
        let p = parse_program(&CONV1D.replace("f32[B, 6, 5]", "f32[B, 6, B, B, B]")).expect("parses");
        assert!(flops(&p, "main", &env(&[("B", i64::MAX)])).is_err());
        assert!(flops(&p, "nope", &HashMap::new()).is_err());
    }
}
