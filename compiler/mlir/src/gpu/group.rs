//! A text pass of the GPU path before `scf-parallel-loop-fusion` (`passes::pipelines::gpu_fuse`),
//! which merges only *adjacent* parallel loops over equal bounds: independent loops over
//! equal bounds are brought next to each other first. A spectral layer's gradient, for
//! one, interleaves einsums over `[B, o, m]` with einsums over `[i, o, m]`, and an
//! optimizer updates parameters of a few shapes in turn; each such loop was a kernel.
//!
//! Contract: [`group_loops`] takes a printed module (custom assembly form, after
//! [`super::fuse::mark_distinct`]) and, in each function body, moves a top-level
//! `scf.parallel` without results whose bounds and steps are constants up to just after
//! the nearest earlier top-level loop with the same bounds and steps, provided it is
//! independent of every op it moves past: it uses no value they define, writes no buffer
//! they read or write, and reads no buffer they write. Buffers are compared by root (a
//! view's source, a global's symbol, an argument or an allocation; distinct roots are
//! distinct buffers, which [`super::fuse`] establishes), and an op other than a parallel
//! loop, a view, a constant, an allocation or a global read is taken to write every
//! value it uses. The search stops at the first op it may not move past, or after
//! [`REACH`] ops. Nothing else changes; whether moved loops are then merged is for the
//! fusion pass to decide.

use super::hostwrap::{defined, map_bodies, parallel_header, split_ops, uses, TopOp};
use std::collections::{HashMap, HashSet};

/// How many ops back a loop looks for one with the same bounds.
pub const REACH: usize = 64;

/// Ops that define a view of their first operand.
const VIEWS: &[&str] = &[
    "memref.expand_shape",
    "memref.collapse_shape",
    "memref.subview",
    "memref.reinterpret_cast",
    "memref.cast",
    "memref.transpose",
    "memref.view",
];

/// Brings independent loops over equal bounds together; see the module docs.
pub fn group_loops(text: &str) -> String {
    map_bodies(text, group_body)
}

/// A top-level op with what the pass needs to know about it.
struct Item<'a> {
    op: TopOp<'a>,
    /// Bounds and steps (as constants) of a movable parallel loop.
    key: Option<Vec<i64>>,
    defs: Vec<String>,
    reads: HashSet<String>,
    writes: HashSet<String>,
}

impl Item<'_> {
    /// Whether `self` (a loop moving up) may move past `other`.
    fn independent_of(&self, other: &Item) -> bool {
        let text = self.op.lines.join("\n");
        !other.defs.iter().any(|d| uses(&text, d))
            && self.writes.is_disjoint(&other.reads)
            && self.writes.is_disjoint(&other.writes)
            && self.reads.is_disjoint(&other.writes)
    }
}

fn group_body(_head: &str, body: &[&str]) -> String {
    let mut consts: HashMap<String, i64> = HashMap::new();
    let mut roots: HashMap<String, String> = HashMap::new();
    let mut out: Vec<Item> = Vec::new();
    for op in split_ops(body) {
        let item = describe(op, &mut consts, &mut roots);
        let at = item.key.as_ref().and_then(|k| place(&out, &item, k));
        match at {
            Some(i) => out.insert(i, item),
            None => out.push(item),
        }
    }
    let mut text = String::new();
    for line in out.iter().flat_map(|i| &i.op.lines) {
        text.push_str(line);
        text.push('\n');
    }
    text
}

/// Where `item` (a loop with bounds `key`) goes: just after the nearest earlier loop
/// with the same bounds it may move up to, if any.
fn place(out: &[Item], item: &Item, key: &[i64]) -> Option<usize> {
    for (i, other) in out.iter().enumerate().rev().take(REACH) {
        if other.key.as_deref() == Some(key) {
            return (i + 1 < out.len()).then_some(i + 1);
        }
        if !item.independent_of(other) {
            return None;
        }
    }
    None
}

/// Reads the op's effects, recording constants and view roots as they are defined.
fn describe<'a>(op: TopOp<'a>, consts: &mut HashMap<String, i64>, roots: &mut HashMap<String, String>) -> Item<'a> {
    let first = op.lines[0];
    let defs = defined(first);
    let root = |n: &str, roots: &HashMap<String, String>| roots.get(n).cloned().unwrap_or_else(|| n.to_string());
    let used: Vec<String> =
        op.lines.iter().flat_map(|l| names(l)).filter(|n| !defs.contains(n) && !consts.contains_key(n)).collect();
    let (mut reads, mut writes) = (HashSet::new(), HashSet::new());
    let mut key = None;
    match op.name() {
        "arith.constant" => {
            if let (Some(d), Some(v)) = (defs.first(), index_constant(first)) {
                consts.insert(d.clone(), v);
            }
        }
        "memref.alloc" | "memref.alloca" => {}
        "memref.get_global" => {
            if let (Some(d), Some(sym)) = (defs.first(), first.split('@').nth(1)) {
                let sym = sym.split_whitespace().next().unwrap_or(sym);
                roots.insert(d.clone(), format!("@{sym}"));
            }
        }
        name if VIEWS.contains(&name) => {
            if let (Some(d), Some(src)) = (defs.first(), used.first()) {
                let r = root(src, roots);
                roots.insert(d.clone(), r);
            }
        }
        "scf.parallel" if defs.is_empty() => {
            key = loop_key(first, consts);
            let mut inner: HashSet<String> = op.lines.iter().skip(1).flat_map(|l| defined(l)).collect();
            inner.extend(op.lines.iter().flat_map(|l| induction_vars(l)));
            for line in &op.lines {
                let written = stored_to(line);
                for n in names(line).into_iter().filter(|n| !inner.contains(n) && !consts.contains_key(n)) {
                    let r = root(&n, roots);
                    match &written {
                        Some(t) if *t == n => writes.insert(r),
                        None if opaque(line) => writes.insert(r),
                        _ => reads.insert(r),
                    };
                }
            }
        }
        _ => writes.extend(used.iter().map(|n| root(n, roots))),
    }
    Item { op, key, defs, reads, writes }
}

/// The SSA names in a line.
fn names(line: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = line;
    while let Some(i) = rest.find('%') {
        let tail = &rest[i + 1..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '$' || c == '.' || c == '#'))
            .unwrap_or(tail.len());
        if end > 0 {
            out.push(format!("%{}", &tail[..end]));
        }
        rest = &tail[end..];
    }
    out
}

/// The induction variables a loop header line binds (`scf.parallel (%i, %j) = ...`,
/// `scf.for %k = ...`).
fn induction_vars(line: &str) -> Vec<String> {
    if let Some(h) = parallel_header(line) {
        return h.ivs.iter().map(|v| v.to_string()).collect();
    }
    let t = line.trim_start();
    let rest = t.strip_prefix("scf.for ").or_else(|| t.split_once(" = scf.for ").map(|(_, r)| r));
    rest.and_then(|r| r.split_whitespace().next()).map(|v| vec![v.to_string()]).unwrap_or_default()
}

/// `%c = arith.constant 12 : index` -> 12.
fn index_constant(line: &str) -> Option<i64> {
    let (_, rhs) = line.split_once("arith.constant ")?;
    let (v, ty) = rhs.split_once(" : ")?;
    (ty.trim() == "index").then(|| v.trim().parse().ok()).flatten()
}

/// The constant lower bounds, upper bounds and steps of a loop header.
fn loop_key(line: &str, consts: &HashMap<String, i64>) -> Option<Vec<i64>> {
    let h = parallel_header(line)?;
    h.lbs.iter().chain(&h.ubs).chain(&h.steps).map(|n| consts.get(*n).copied()).collect()
}

/// The buffer a `memref.store` / `memref.atomic_rmw` line writes.
fn stored_to(line: &str) -> Option<String> {
    let t = line.trim();
    let rest = t.strip_prefix("memref.store ").or_else(|| t.split_once("memref.atomic_rmw ").map(|(_, r)| r))?;
    let (_, target) = rest.split_once(", ")?;
    names(target).into_iter().next()
}

/// A line inside a loop that may write any buffer it names (a call, a copy).
fn opaque(line: &str) -> bool {
    let t = line.trim();
    ["call ", "func.call ", "memref.copy ", "gpu."].iter().any(|p| t.contains(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Loops `a` (writes %x), `b` (bounds 8, writes %y), `c` (bounds 4, writes %z),
    /// with `c` reading `source`.
    fn module(source: &str, between: &str) -> String {
        format!(
            "module {{
  func.func @f(%x: memref<4xf32>, %y: memref<8xf32>, %z: memref<4xf32>, %w: memref<4xf32>) {{
    %c0 = arith.constant 0 : index
    %c1 = arith.constant 1 : index
    %c4 = arith.constant 4 : index
    %c8 = arith.constant 8 : index
    %cst = arith.constant 1.0 : f32
    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {{
      memref.store %cst, %x[%i] : memref<4xf32>
      scf.reduce
    }}
    scf.parallel (%i) = (%c0) to (%c8) step (%c1) {{
      memref.store %cst, %y[%i] : memref<8xf32>
      scf.reduce
    }}
{between}    scf.parallel (%i) = (%c0) to (%c4) step (%c1) {{
      %v = memref.load {source}[%i] : memref<4xf32>
      memref.store %v, %z[%i] : memref<4xf32>
      scf.reduce
    }}
    return
  }}
}}
"
        )
    }

    /// The upper bounds of the top-level loops, in order.
    fn order(text: &str) -> Vec<String> {
        text.lines()
            .filter(|l| l.starts_with("    scf.parallel"))
            .map(|l| parallel_header(l).expect("header").ubs.join(","))
            .collect()
    }

    #[test]
    fn an_independent_loop_moves_next_to_one_with_equal_bounds() {
        let out = group_loops(&module("%w", ""));
        assert_eq!(order(&out), ["%c4", "%c4", "%c8"], "{out}");
        assert_eq!(out.lines().count(), module("%w", "").lines().count());
    }

    #[test]
    fn a_loop_reading_what_it_would_move_past_stays() {
        let out = group_loops(&module(
            "%y_view",
            "    %y_view = memref.subview %y[0] [4] [1] : memref<8xf32> to memref<4xf32>\n",
        ));
        assert_eq!(order(&out), ["%c4", "%c8", "%c4"], "{out}");
    }

    #[test]
    fn a_loop_reading_what_the_first_wrote_moves_for_the_fusion_to_judge() {
        let out = group_loops(&module("%x", ""));
        assert_eq!(order(&out), ["%c4", "%c4", "%c8"], "{out}");
    }

    #[test]
    fn ops_with_unknown_effects_and_defined_values_are_barriers() {
        let call = "    func.call @g(%w) : (memref<4xf32>) -> ()\n";
        assert_eq!(order(&group_loops(&module("%w", call))), ["%c4", "%c8", "%c4"]);
        let view = "    %w2 = memref.cast %w : memref<4xf32> to memref<4xf32>\n";
        assert_eq!(order(&group_loops(&module("%w2", view))), ["%c4", "%c8", "%c4"]);
        // An unrelated call does not stop it.
        let other = "    func.call @g(%y) : (memref<8xf32>) -> ()\n";
        assert_eq!(order(&group_loops(&module("%w", other))), ["%c4", "%c4", "%c8"]);
    }
}
