//! Anomaly detection: which instruction of a step first produced a NaN or an infinity.
//!
//! The interpreter has no per-instruction hook, so this works on the program instead:
//! [`find_anomaly`] builds a *probe* copy of the program in which the examined function
//! returns every value it defines (each instruction's results, in body order), runs it
//! with the same inputs, parameters and interpreter seed through the public
//! `Interpreter::run`, and scans the values in program order. Same instructions, same
//! value ids, same seed: the probe recomputes exactly the values of the failing step
//! (top-level `rand.*` streams do not depend on the function's results).
//!
//! - A non-finite *argument* is reported as such (the step was handed a bad value).
//! - The first instruction with a non-finite f32/f64/c64 result is the anomaly: all of
//!   its operands were finite, so this instruction created the NaN/infinity.
//! - When that instruction is a `call`, the search descends into the callee, run
//!   standalone on the operand values (recorded in [`Anomaly::via`]). A callee's `rand.*`
//!   ops draw from a stream keyed by the call site inside a real call, so a standalone run
//!   of a callee with random ops may differ; when it finds nothing, the `call` itself is
//!   reported. `stack`, `vmap` and `scan` are reported at the instruction (their bodies
//!   run per block or per sample; the message names the functions involved).
//!
//! Cost: one extra run of the step that keeps every intermediate value alive. It is only
//! done after a step has failed, in `detect_anomaly` mode.

use crate::finite::is_finite;
use crate::interp::{Interpreter, RunError};
use crate::tensor::{Data, Tensor};
use archc_compiler::tir::{Op, Program, ValueId};
use archc_grammar::span::Span;
use std::collections::HashMap;
use std::fmt;

/// Where a non-finite value first appeared (see the module docs).
#[derive(Clone, Debug, PartialEq)]
pub struct Anomaly {
    /// The function holding the instruction.
    pub func: String,
    /// The instruction's text form, `%12 = log(%11) : f32[B, 10]`, or for a bad argument
    /// `argument %3 "param:fc.w"`.
    pub inst: String,
    /// The instruction's source span, when the compiler recorded one.
    pub span: Option<Span>,
    /// What is wrong: `NaN in 3 of 40 elements of %12`.
    pub detail: String,
    /// The `call` instructions descended through, outermost first (`@train_step: %30 = call(%2) ...`).
    pub via: Vec<String>,
}

impl fmt::Display for Anomaly {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "first non-finite value: in @{}, {} ({})", self.func, self.inst, self.detail)?;
        if let Some(s) = &self.span {
            write!(f, " at source bytes {}..{}", s.start, s.end)?;
        }
        for v in &self.via {
            write!(f, "\n  called from {v}")?;
        }
        Ok(())
    }
}

/// Counts of non-finite elements: `(nan, inf, total)`.
fn non_finite(t: &Tensor) -> (usize, usize, usize) {
    fn count<I: Iterator<Item = f64>>(it: I) -> (usize, usize) {
        it.fold((0, 0), |(n, i), x| (n + x.is_nan() as usize, i + x.is_infinite() as usize))
    }
    let (nan, inf) = match &t.data {
        Data::F32(v) => count(v.iter().map(|x| *x as f64)),
        Data::F64(v) => count(v.iter().cloned()),
        Data::C64(v) => count(v.iter().flat_map(|z| [z.re as f64, z.im as f64])),
        Data::I64(_) | Data::Bool(_) => (0, 0),
    };
    (nan, inf, t.numel())
}

fn describe(t: &Tensor, id: ValueId) -> String {
    let (nan, inf, n) = non_finite(t);
    let mut parts = Vec::new();
    if nan > 0 {
        parts.push(format!("NaN in {nan}"));
    }
    if inf > 0 {
        parts.push(format!("infinity in {inf}"));
    }
    format!("{} of {n} elements of {id}", parts.join(" and "))
}

/// Finds the first instruction of `func` that makes a non-finite value when run on
/// `inputs` with parameters `params` and interpreter seed `seed` (see the module docs).
/// `Ok(None)` when every value is finite.
pub fn find_anomaly(
    program: &Program,
    func: &str,
    inputs: &[Tensor],
    params: &HashMap<String, Tensor>,
    seed: u64,
) -> Result<Option<Anomaly>, RunError> {
    let f = program.func(func).ok_or_else(|| RunError::UnknownFunc(func.to_string()))?;
    for (i, ((id, _), x)) in f.args.iter().zip(inputs).enumerate() {
        if !is_finite(x) {
            let name = f.arg_names.get(i).map_or(String::new(), |n| format!(" {n:?}"));
            return Ok(Some(Anomaly {
                func: func.to_string(),
                inst: format!("argument {id}{name}"),
                span: None,
                detail: describe(x, *id),
                via: Vec::new(),
            }));
        }
    }
    // The probe: the same function returning every value it defines.
    let mut probe = program.clone();
    let pf = probe.funcs.iter_mut().find(|g| g.name == func).expect("found above");
    pf.results = pf.body.iter().flat_map(|inst| inst.result_ids()).collect();
    pf.result_names = pf.results.iter().map(|v| v.to_string()).collect();
    let ids = pf.results.clone();
    let mut interp = Interpreter::new(&probe);
    for (name, value) in params {
        interp.set_param(name, value.clone())?;
    }
    interp.set_seed(seed);
    let values = interp.run(func, inputs)?;
    let mut env: HashMap<ValueId, &Tensor> = f.args.iter().map(|(id, _)| *id).zip(inputs).collect();
    env.extend(ids.iter().cloned().zip(&values));
    for inst in &f.body {
        let Some((id, bad)) = inst.result_ids().map(|r| (r, env[&r])).find(|(_, t)| !is_finite(t)) else {
            continue;
        };
        let here = Anomaly {
            func: func.to_string(),
            inst: inst.to_string(),
            span: inst.span,
            detail: describe(bad, id),
            via: Vec::new(),
        };
        return Ok(Some(match &inst.op {
            Op::Call(callee) => {
                let args: Vec<Tensor> = inst.args.iter().map(|a| env[a].clone()).collect();
                match find_anomaly(program, callee, &args, params, seed)? {
                    Some(mut inner) => {
                        inner.via.insert(0, format!("@{func}: {inst}"));
                        inner
                    }
                    None => here,
                }
            }
            Op::Stack(fs) => Anomaly { detail: format!("{} (inside one of @{})", here.detail, fs.join(", @")), ..here },
            Op::Vmap { func: g, .. } | Op::Scan { func: g, .. } => {
                Anomaly { detail: format!("{} (inside @{g})", here.detail), ..here }
            }
            _ => here,
        }));
    }
    Ok(None)
}
