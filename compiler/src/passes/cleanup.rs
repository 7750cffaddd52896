//! `cleanup`: dead-code elimination, removal of unreferenced functions and parameters,
//! and renumbering of values (arguments first, then instructions in order).
//!
//! Every TIR op is pure (random ops included: their stream is a function of the seed),
//! so an instruction none of whose results is used can be removed: `%3 = exp(%1)` with
//! no use of `%3` ;; drop. An instruction with several results stays whole while any of
//! them is used (`%3, %4 = scan(...)` with only `%4` used keeps both). Renumbering gives
//! an instruction's results consecutive numbers, in order.

use crate::tir::{Func, Op, Program, ValueId};
use std::collections::{HashMap, HashSet};

pub fn cleanup(p: &mut Program) {
    for f in &mut p.funcs {
        dead_code(f);
    }
    drop_unreferenced_funcs(p);
    drop_unreferenced_params(p);
    for f in &mut p.funcs {
        renumber(f);
    }
}

/// Removes instructions none of whose results is used.
pub fn dead_code(f: &mut Func) {
    let mut live: HashSet<ValueId> = f.results.iter().copied().collect();
    let mut keep = vec![false; f.body.len()];
    for (i, inst) in f.body.iter().enumerate().rev() {
        if inst.result_ids().any(|r| live.contains(&r)) {
            keep[i] = true;
            live.extend(inst.args.iter().copied());
        }
    }
    let mut it = keep.into_iter();
    f.body.retain(|_| it.next().unwrap_or(false));
}

/// Functions that are called from outside the program: inference, the train-step ABI
/// and the split step of supernets.
pub const ENTRY_POINTS: &[&str] = &["main", "train_step", "eval_step", "grad_step", "apply_step"];

fn drop_unreferenced_funcs(p: &mut Program) {
    drop_unreached(p, ENTRY_POINTS);
}

/// Drops the functions that none of `roots` calls, directly or not.
pub fn drop_unreached(p: &mut Program, roots: &[&str]) {
    let mut reached: HashSet<String> = roots.iter().map(|s| s.to_string()).collect();
    let mut work: Vec<String> = roots.iter().map(|s| s.to_string()).collect();
    while let Some(name) = work.pop() {
        let Some(f) = p.func(&name) else { continue };
        let callees: Vec<String> = f.body.iter().flat_map(|i| i.op.callees()).map(str::to_string).collect();
        for c in callees {
            if reached.insert(c.clone()) {
                work.push(c);
            }
        }
    }
    p.funcs.retain(|f| reached.contains(&f.name));
}

/// Drops the declarations no function reads: neither by a `param` op nor as a
/// `param:NAME` argument (how train steps take parameters).
fn drop_unreferenced_params(p: &mut Program) {
    let read = p.funcs.iter().flat_map(|f| f.body.iter()).filter_map(|i| match &i.op {
        Op::Param(n) => Some(n.as_str()),
        _ => None,
    });
    let taken = p.funcs.iter().flat_map(|f| f.arg_names.iter()).filter_map(|n| n.strip_prefix("param:"));
    let used: HashSet<&str> = read.chain(taken).collect();
    let used: HashSet<String> = used.into_iter().map(str::to_string).collect();
    p.params.retain(|d| used.contains(&d.name));
}

fn renumber(f: &mut Func) {
    let mut map: HashMap<ValueId, ValueId> = HashMap::new();
    let mut next = 0u32;
    let mut fresh = |old: ValueId, map: &mut HashMap<ValueId, ValueId>| {
        let new = ValueId(next);
        next += 1;
        map.insert(old, new);
        new
    };
    for (v, _) in &mut f.args {
        *v = fresh(*v, &mut map);
    }
    for inst in &mut f.body {
        for a in &mut inst.args {
            *a = map[a];
        }
        inst.result = fresh(inst.result, &mut map);
        for (r, _) in &mut inst.extra {
            *r = fresh(*r, &mut map);
        }
    }
    for r in &mut f.results {
        *r = map[r];
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tir::{parse_program, verify};

    fn cleaned(text: &str) -> String {
        let mut p = parse_program(text).unwrap_or_else(|e| panic!("{e}"));
        cleanup(&mut p);
        verify(&p).unwrap_or_else(|e| panic!("{e:?}"));
        p.to_string()
    }

    const SPLIT: &str = "func @split(%0: f32[N] \"x\") -> (f32[N] \"a\", f32[] \"b\") {
  %1 = reduce.sum(%0) {axes=[0], keepdim=false} : f32[]
  %2 = exp(%0) : f32[N]
  return %2, %1
}
";

    #[test]
    fn an_instruction_stays_while_any_result_is_used() {
        // Only the second result of the call is used: the call stays (with both results,
        // renumbered in order); the dead `neg` goes.
        let text = format!(
            "program P
func @main(%0: f32[B] \"x\") -> (f32[] \"y\") {{
  %7 = neg(%0) : f32[B]
  %5, %9 = call(%0) {{func=@split}} : f32[B], f32[]
  %3 = exp(%9) : f32[]
  return %3
}}
{SPLIT}"
        );
        let expected = format!(
            "program P

func @main(%0: f32[B] \"x\") -> (f32[] \"y\") {{
  %1, %2 = call(%0) {{func=@split}} : f32[B], f32[]
  %3 = exp(%2) : f32[]
  return %3
}}

{SPLIT}"
        );
        assert_eq!(cleaned(&text), expected);
    }

    #[test]
    fn an_instruction_with_no_used_result_is_dropped() {
        let text = format!(
            "program P
func @main(%0: f32[B] \"x\") -> (f32[B] \"y\") {{
  %1, %2 = call(%0) {{func=@split}} : f32[B], f32[]
  return %0
}}
{SPLIT}"
        );
        let out = cleaned(&text);
        assert!(!out.contains("call") && !out.contains("@split"), "{out}");
    }
}
