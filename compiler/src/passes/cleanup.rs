//! `cleanup`: dead-code elimination, removal of unreferenced functions and parameters,
//! and renumbering of values (arguments first, then instructions in order).
//!
//! Every TIR op is pure (random ops included: their stream is a function of the seed),
//! so an instruction whose result is unused can be removed: `%3 = exp(%1)` with no use
//! of `%3` ;; drop.

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

fn dead_code(f: &mut Func) {
    let mut live: HashSet<ValueId> = f.results.iter().copied().collect();
    let mut keep = vec![false; f.body.len()];
    for (i, inst) in f.body.iter().enumerate().rev() {
        if live.contains(&inst.result) {
            keep[i] = true;
            live.extend(inst.args.iter().copied());
        }
    }
    let mut it = keep.into_iter();
    f.body.retain(|_| it.next().unwrap_or(false));
}

fn drop_unreferenced_funcs(p: &mut Program) {
    let mut reached: HashSet<String> = HashSet::from(["main".to_string()]);
    let mut work = vec!["main".to_string()];
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

fn drop_unreferenced_params(p: &mut Program) {
    let used: HashSet<&str> = p
        .funcs
        .iter()
        .flat_map(|f| f.body.iter())
        .filter_map(|i| match &i.op {
            Op::Param(n) => Some(n.as_str()),
            _ => None,
        })
        .collect();
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
    }
    for r in &mut f.results {
        *r = map[r];
    }
}
