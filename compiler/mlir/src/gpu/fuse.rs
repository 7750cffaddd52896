//! Text passes of the GPU path around MLIR's `scf-parallel-loop-fusion` (which merges
//! adjacent parallel loops over equal bounds into one, and so kernels): they tell it what
//! the runtime guarantees and the analysis cannot see, that the function's buffers do
//! not overlap.
//!
//! After bufferization each linalg op is one top-level `scf.parallel`. A reduction is
//! three loops over the same results (fill the accumulator, fold into it, cast it); an
//! elementwise op whose result has several users is a loop of its own, as is each of an
//! optimizer's updates of a parameter and its moments. The fusion pass merges two
//! adjacent loops when the second reads what the first wrote only at the same index and
//! no buffer the first writes may alias one the second reads (and the other way round);
//! only ops without memory effects may sit between them. MLIR's local alias analysis
//! knows that two allocations are distinct, but not that an allocation and an argument
//! are, or two arguments; and an `alloc` between two loops keeps them apart.
//!
//! Contract: [`mark_distinct`] takes a printed module (custom assembly form) and, in each
//! function body, moves the top-level allocations without operands (static shapes) up
//! to follow the reads of globals, then routes the function's memref arguments, the
//! globals it reads once and those allocations through one `memref.distinct_objects` op
//! whose results replace them below it. The runtime gives every input and output a buffer
//! of its own, globals are distinct from them, and buffers are freed only at the end of
//! the function (ownership-based deallocation frees at the end of the block), so the
//! claim holds and the earlier allocations lengthen no lifetime. The pass
//! `archc-unmark-distinct` (`passes::distinct`) removes the op after fusion.

/// The SSA name `memref.distinct_objects` results take (`%archc_distinct#i`).
const DISTINCT: &str = "%archc_distinct";

use super::hostwrap::{map_bodies, rename, split_ops, TopOp};
use std::collections::{HashMap, HashSet};

/// Routes each function's buffers through one `memref.distinct_objects`; see the module
/// docs. Functions with fewer than two buffers are left alone.
pub fn mark_distinct(text: &str) -> String {
    map_bodies(text, mark_body)
}

/// One function body with its buffers marked distinct.
fn mark_body(head: &str, body: &[&str]) -> String {
    let ops = split_ops(body);
    // Globals read once each (a symbol read twice would be two names for one buffer).
    let globals: Vec<(usize, String, String, String)> = ops
        .iter()
        .enumerate()
        .filter_map(|(k, o)| get_global(o.lines[0]).map(|(name, sym, ty)| (k, name, sym, ty)))
        .collect();
    let once = |sym: &str| globals.iter().filter(|g| g.2 == sym).count() == 1;
    let insert_at = globals.iter().map(|g| g.0 + 1).max().unwrap_or(0);
    let allocs: Vec<(usize, String, String)> = ops
        .iter()
        .enumerate()
        .skip(insert_at)
        .filter_map(|(k, o)| static_alloc(o).map(|(name, ty)| (k, name, ty)))
        .collect();
    let mut buffers: Vec<(String, String)> = memref_params(head);
    buffers.extend(globals.iter().filter(|g| once(&g.2)).map(|g| (g.1.clone(), g.3.clone())));
    buffers.extend(allocs.iter().map(|a| (a.1.clone(), a.2.clone())));
    let mut out = String::new();
    let mut push = |l: &str| {
        out.push_str(l);
        out.push('\n');
    };
    if buffers.len() < 2 {
        body.iter().for_each(|l| push(l));
        return out;
    }
    ops[..insert_at].iter().flat_map(|o| &o.lines).for_each(|l| push(l));
    allocs.iter().for_each(|a| push(ops[a.0].lines[0]));
    let names: Vec<&str> = buffers.iter().map(|b| b.0.as_str()).collect();
    let types: Vec<&str> = buffers.iter().map(|b| b.1.as_str()).collect();
    push(&format!(
        "    {DISTINCT}:{} = memref.distinct_objects {} : {}",
        names.len(),
        names.join(", "),
        types.join(", ")
    ));
    let to: HashMap<String, String> =
        names.iter().enumerate().map(|(k, n)| (n.to_string(), format!("{DISTINCT}#{k}"))).collect();
    let moved: HashSet<usize> = allocs.iter().map(|a| a.0).collect();
    for (_, o) in ops.iter().enumerate().skip(insert_at).filter(|(k, _)| !moved.contains(k)) {
        o.lines.iter().for_each(|l| push(&rename(l, &to)));
    }
    out
}

/// `%a = memref.alloc() ... : memref<...>` (one line, no operands) -> (`%a`, its type).
fn static_alloc(op: &TopOp) -> Option<(String, String)> {
    let line = op.lines[0].trim();
    if op.lines.len() != 1 || op.name() != "memref.alloc" {
        return None;
    }
    let (lhs, rhs) = line.split_once(" = memref.alloc() ")?;
    let (_, ty) = rhs.rsplit_once(" : ")?;
    Some((lhs.to_string(), ty.to_string()))
}

/// `%g = memref.get_global @sym : memref<...>` -> (`%g`, `@sym`, `memref<...>`).
fn get_global(line: &str) -> Option<(String, String, String)> {
    let (lhs, rhs) = line.trim().split_once(" = memref.get_global ")?;
    let (sym, ty) = rhs.split_once(" : ")?;
    Some((lhs.to_string(), sym.to_string(), ty.to_string()))
}

/// The memref parameters of a `func.func` header: (name, type).
fn memref_params(head: &str) -> Vec<(String, String)> {
    let Some(open) = head.find('(') else { return Vec::new() };
    let mut params = Vec::new();
    let (mut depth, mut start) = (0i32, open + 1);
    for (i, c) in head.char_indices().skip(open + 1) {
        match c {
            '(' | '<' | '[' | '{' => depth += 1,
            ')' | '>' | ']' | '}' if depth > 0 => depth -= 1,
            ',' | ')' if depth == 0 => {
                params.push(head[start..i].trim());
                start = i + 1;
                if c == ')' {
                    break;
                }
            }
            _ => {}
        }
    }
    params
        .into_iter()
        .filter_map(|p| p.split_once(": ").filter(|(_, ty)| ty.starts_with("memref<")))
        .map(|(name, ty)| (name.to_string(), ty.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::mark_distinct;

    const ENTRY: &str = "module {
  memref.global \"private\" @w : memref<4xf32> = dense<0.0>
  func.func @e(%arg0: i64, %arg1: memref<4xf32>, %arg2: memref<?x?xf32, strided<[?, ?], offset: ?>>) {
    %0 = memref.get_global @w : memref<4xf32>
    %c0 = arith.constant 0 : index
    %v = memref.load %arg1[%c0] : memref<4xf32>
    memref.store %v, %0[%c0] : memref<4xf32>
    %alloc = memref.alloc() {alignment = 64 : i64} : memref<2xf64>
    memref.store %v, %alloc[%c0] : memref<2xf64>
    %arg10 = memref.load %arg1[%c0] : memref<4xf32>
    return
  }
}
";

    #[test]
    fn buffers_are_marked_distinct() {
        let marked = mark_distinct(ENTRY);
        assert!(
            marked.contains(
                "    %alloc = memref.alloc() {alignment = 64 : i64} : memref<2xf64>
    %archc_distinct:4 = memref.distinct_objects %arg1, %arg2, %0, %alloc : memref<4xf32>, \
memref<?x?xf32, strided<[?, ?], offset: ?>>, memref<4xf32>, memref<2xf64>\n"
            ),
            "the allocation moves up to be marked:\n{marked}"
        );
        assert!(marked.contains("memref.store %v, %archc_distinct#3[%c0]"), "{marked}");
        assert!(marked.contains("memref.load %archc_distinct#0[%c0]"), "{marked}");
        assert!(marked.contains("memref.store %v, %archc_distinct#2[%c0]"), "{marked}");
        assert!(marked.contains("%arg10 = memref.load %archc_distinct#0"), "a longer name is another name:\n{marked}");
        let op = marked.lines().position(|l| l.contains("distinct_objects")).unwrap();
        let global = marked.lines().position(|l| l.contains("get_global")).unwrap();
        assert!(global < op, "{marked}");
    }

    #[test]
    fn a_global_read_twice_is_not_marked() {
        let text = ENTRY.replace("    %c0 = arith", "    %1 = memref.get_global @w : memref<4xf32>\n    %c0 = arith");
        let marked = mark_distinct(&text);
        assert!(marked.contains("memref.distinct_objects %arg1, %arg2, %alloc : "), "{marked}");
    }
}
